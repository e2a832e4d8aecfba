//! Image records (one JSON file per name) and garbage collection of blobs.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;

use super::{is_index, parse, GcStats, ImageRecord, Store, StoreError, MAX_DOCUMENT};
use crate::manifest::{Index, Manifest};
use crate::Digest;

/// Shortest hex prefix of a config digest accepted as an image id (docker's short id).
const MIN_ID_PREFIX: usize = 12;

impl Store {
    /// The record file of `name`: named by the name's sha256, so any name is safe.
    fn record_path(&self, name: &str) -> PathBuf {
        self.image_dir()
            .join(format!("{}.json", Digest::of(name.as_bytes()).hex()))
    }

    /// Stores (or replaces) the record of `rec.name`, atomically.
    pub fn put_image(&self, rec: &ImageRecord) -> Result<(), StoreError> {
        let path = self.record_path(&rec.name);
        let json = serde_json::to_vec_pretty(rec)
            .map_err(|e| StoreError::io("encode record", &path, io::Error::other(e)))?;
        berth_atomic_file::write(&path, &json).map_err(|e| StoreError::io("write record", &path, e))
    }

    /// The record stored under exactly `name`.
    fn record(&self, name: &str) -> Option<ImageRecord> {
        let bytes = fs::read(self.record_path(name)).ok()?;
        serde_json::from_slice::<ImageRecord>(&bytes)
            .ok()
            .filter(|r| r.name == name)
    }

    /// The image a full name, a full `sha256:` target/manifest/config digest, or a unique
    /// prefix (≥ 12 hex digits) of a config digest names; `None` when none or several do.
    pub fn get_image(&self, name_or_id: &str) -> Option<ImageRecord> {
        self.resolve_image(name_or_id).ok()
    }

    /// As [`Store::get_image`], saying why nothing was found.
    pub fn resolve_image(&self, name_or_id: &str) -> Result<ImageRecord, StoreError> {
        if let Some(rec) = self.record(name_or_id) {
            return Ok(rec);
        }
        let all = self.list_images();
        if let Ok(d) = name_or_id.parse::<Digest>() {
            return all
                .into_iter()
                .find(|r| r.target == d || r.manifest == d || r.config == d)
                .ok_or_else(|| StoreError::ImageNotFound(name_or_id.into()));
        }
        let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        let is_prefix = hex.len() >= MIN_ID_PREFIX
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_prefix {
            return Err(StoreError::ImageNotFound(name_or_id.into()));
        }
        let matching: Vec<ImageRecord> = all
            .into_iter()
            .filter(|r| r.config.hex().starts_with(hex))
            .collect();
        let configs: BTreeSet<&Digest> = matching.iter().map(|r| &r.config).collect();
        match configs.len() {
            0 => Err(StoreError::ImageNotFound(name_or_id.into())),
            1 => Ok(matching[0].clone()),
            _ => Err(StoreError::Ambiguous(name_or_id.into())),
        }
    }

    /// Every image record, sorted by name (files that do not parse are skipped).
    pub fn list_images(&self) -> Vec<ImageRecord> {
        let Ok(entries) = fs::read_dir(self.image_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<ImageRecord> = entries
            .flatten()
            .filter(|e| {
                e.file_name().to_string_lossy().ends_with(".json")
                    && !e.file_name().to_string_lossy().starts_with('.')
            })
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a: &ImageRecord, b| a.name.cmp(&b.name));
        out
    }

    /// Removes the record of exactly `name` (its blobs stay until [`Store::gc_blobs`]).
    pub fn remove_image(&self, name: &str) -> Result<ImageRecord, StoreError> {
        let rec = self
            .record(name)
            .ok_or_else(|| StoreError::ImageNotFound(name.into()))?;
        let path = self.record_path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(rec),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::ImageNotFound(name.into()))
            }
            Err(e) => Err(StoreError::io("remove record", &path, e)),
        }
    }

    /// The blobs the records reach: target, manifest, config, layers; for an index target
    /// the index and every manifest it lists that is stored (with their configs and layers).
    pub fn referenced_blobs(&self) -> Result<BTreeSet<Digest>, StoreError> {
        let mut keep = BTreeSet::new();
        for rec in self.list_images() {
            keep.insert(rec.target.clone());
            keep.insert(rec.manifest.clone());
            keep.insert(rec.config.clone());
            keep.extend(rec.layers.iter().map(|l| l.descriptor.digest.clone()));
            if rec.target != rec.manifest && self.has_blob(&rec.target) {
                self.keep_index(&rec.target, &mut keep)?;
            }
        }
        Ok(keep)
    }

    /// Marks the manifests an index lists (those stored) and their parts.
    fn keep_index(&self, index: &Digest, keep: &mut BTreeSet<Digest>) -> Result<(), StoreError> {
        let idx: Index = parse(&self.read_blob(index, MAX_DOCUMENT)?, "index", index)?;
        for entry in idx.manifests.iter().filter(|m| self.has_blob(&m.digest)) {
            if !keep.insert(entry.digest.clone()) {
                continue;
            }
            if is_index(&entry.media_type) {
                self.keep_index(&entry.digest, keep)?;
            } else if let Ok(m) = parse::<Manifest>(
                &self.read_blob(&entry.digest, MAX_DOCUMENT)?,
                "manifest",
                &entry.digest,
            ) {
                keep.insert(m.config.digest);
                keep.extend(m.layers.into_iter().map(|l| l.digest));
            }
        }
        Ok(())
    }

    /// Removes the blobs no image record reaches.
    pub fn gc_blobs(&self) -> Result<GcStats, StoreError> {
        let keep = self.referenced_blobs()?;
        let mut stats = GcStats::default();
        for (d, size) in self.blobs()? {
            if keep.contains(&d) {
                stats.kept += 1;
                continue;
            }
            let path = self.blob_path(&d);
            match fs::remove_file(&path) {
                Ok(()) => {
                    stats.removed += 1;
                    stats.bytes += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove blob", &path, e)),
            }
        }
        Ok(stats)
    }
}
