//! Pulling: a reference resolved to a manifest for this platform, the config fetched, and
//! every layer streamed once from the registry into the content store and, in the same
//! pass, unpacked into its snapshot — layers in parallel, nothing buffered whole.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::images::{Images, ImagesError};
use crate::manifest::Descriptor;
use crate::metrics as m;
use crate::reference::Reference;
use crate::registry::Credentials;
use crate::snapshot::LayerSlot;
use crate::store::{ImageRecord, Ingest, LayerRecord, MAX_DOCUMENT};
use crate::unpack::apply_layer;
use crate::Digest;

/// How often a download reports its progress.
const PROGRESS_EVERY: u64 = 1 << 20;

/// What a pull reports while it runs (one JSON object per line in the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Progress {
    /// The reference resolved to a manifest for this platform.
    Resolved {
        /// The full reference.
        reference: String,
        /// The manifest's digest.
        manifest: Digest,
        /// How many layers the image has.
        layers: usize,
    },
    /// A layer was already here (blob and snapshot).
    Exists {
        /// The layer blob's digest.
        layer: Digest,
    },
    /// Bytes of a layer downloaded so far.
    Downloading {
        /// The layer blob's digest.
        layer: Digest,
        /// Bytes so far.
        current: u64,
        /// The blob's size.
        total: u64,
    },
    /// A layer is stored and unpacked.
    Unpacked {
        /// The layer blob's digest.
        layer: Digest,
    },
    /// The image is recorded under its name.
    Done {
        /// The full reference.
        reference: String,
        /// The image id (its config's digest).
        id: Digest,
    },
}

/// Where a layer blob missing from the store comes from (`None`: nowhere, it must be
/// there).
pub(crate) struct Source<'a> {
    pub reference: &'a Reference,
    pub creds: Option<&'a Credentials>,
}

impl Images {
    /// Pull `reference` (docker's short forms allowed) for this engine's platform,
    /// reporting progress to `progress`, and record it. Layers already here are not
    /// fetched again; concurrent pulls of one blob fetch it once.
    pub fn pull(
        &self,
        reference: &str,
        creds: Option<&Credentials>,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<ImageRecord, ImagesError> {
        let began = std::time::Instant::now();
        let writing = self.writing.read().unwrap_or_else(|p| p.into_inner());
        let pulled = self.pull_inner(reference, creds, progress);
        drop(writing);
        match &pulled {
            Ok(_) => {
                metrics::histogram!(m::PULL_DURATION).record(began.elapsed());
                metrics::counter!(m::PULLS).increment(1);
            }
            Err(_) => metrics::counter!(m::PULL_FAILURES).increment(1),
        }
        pulled
    }

    fn pull_inner(
        &self,
        reference: &str,
        creds: Option<&Credentials>,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<ImageRecord, ImagesError> {
        let r: Reference = reference.parse()?;
        let creds = creds.or_else(|| self.config.registry.credentials.get(&r.registry));
        let resolved = self.client.resolve(&r, &self.config.platform, creds)?;
        if let Some((digest, bytes)) = &resolved.index {
            self.store_document(digest, bytes)?;
        }
        self.store_document(&resolved.manifest_digest, &resolved.manifest_bytes)?;
        let source = Source {
            reference: &r,
            creds,
        };
        self.fetch_config(&resolved.manifest.config, &source)?;
        let record = self.store.image_record(
            &r.to_string(),
            resolved.target(),
            &resolved.manifest_digest,
        )?;
        progress(Progress::Resolved {
            reference: record.name.clone(),
            manifest: record.manifest.clone(),
            layers: record.layers.len(),
        });
        self.fetch_layers(&record.layers, Some(&source), progress)?;
        self.store.put_image(&record)?;
        self.announce("pulled", &record);
        progress(Progress::Done {
            reference: record.name.clone(),
            id: record.config.clone(),
        });
        Ok(record)
    }

    /// Keep a small document (index, manifest) in the store under the digest it was
    /// fetched by.
    fn store_document(&self, digest: &Digest, bytes: &[u8]) -> Result<(), ImagesError> {
        if !self.store.has_blob(digest) {
            digest.verify(bytes).map_err(ImagesError::Digest)?;
            self.store.write_blob(bytes)?;
        }
        Ok(())
    }

    /// Fetch the image config `desc` into the store unless it is there.
    fn fetch_config(&self, desc: &Descriptor, source: &Source<'_>) -> Result<(), ImagesError> {
        if !self.store.has_blob(&desc.digest) {
            let bytes =
                self.client
                    .blob_bytes(source.reference, desc, source.creds, MAX_DOCUMENT)?;
            self.store.write_blob(&bytes)?;
        }
        Ok(())
    }

    /// Make sure every layer's blob is stored and its snapshot unpacked, a few layers at
    /// a time; the first failure stops the others from starting new layers.
    pub(crate) fn fetch_layers(
        &self,
        layers: &[LayerRecord],
        source: Option<&Source<'_>>,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(), ImagesError> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_error = Mutex::new(None);
        let threads = self.config.parallel_layers.clamp(1, layers.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(layer) = layers.get(i) else { break };
                        if let Err(e) = self.fetch_layer(layer, source, progress) {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                        }
                    }
                });
            }
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One layer: nothing if blob and snapshot are here; else unpack it from the stored
    /// blob, or stream it from the registry into the store and the snapshot at once.
    fn fetch_layer(
        &self,
        layer: &LayerRecord,
        source: Option<&Source<'_>>,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(), ImagesError> {
        let desc = &layer.descriptor;
        let pending = match self.snapshots.begin_layer(&layer.chain_id)? {
            LayerSlot::Present => {
                if !self.store.has_blob(&desc.digest) {
                    // Kept for `image save` and for images sharing the blob.
                    self.download(desc, source, &mut io::sink(), progress)?;
                }
                progress(Progress::Exists {
                    layer: desc.digest.clone(),
                });
                return Ok(());
            }
            LayerSlot::Writer(pending) => pending,
        };
        let unpack = |blob: &mut dyn Read| -> Result<(), ImagesError> {
            apply_layer(&mut *blob, &desc.media_type, pending.path(), &layer.diff_id).map_err(
                |e| ImagesError::Unpack {
                    layer: desc.digest.clone(),
                    source: e,
                },
            )?;
            // The tar's end may come before the stream's: read the rest, so the blob's
            // digest is checked over all of it.
            io::copy(blob, &mut io::sink()).map_err(|e| ImagesError::io(&desc.digest, e))?;
            Ok(())
        };
        if self.store.has_blob(&desc.digest) {
            let mut blob =
                io::BufReader::with_capacity(1 << 20, self.store.open_blob(&desc.digest)?);
            unpack(&mut blob)?;
        } else {
            self.download(desc, source, &mut Unpacking(&unpack), progress)?;
        }
        pending.commit()?;
        progress(Progress::Unpacked {
            layer: desc.digest.clone(),
        });
        Ok(())
    }

    /// Stream blob `desc` from `source` into the store, handing the same bytes to `also`
    /// as they arrive. Another pull fetching the same blob meanwhile is waited for.
    fn download(
        &self,
        desc: &Descriptor,
        source: Option<&Source<'_>>,
        also: &mut dyn Consumer,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(), ImagesError> {
        let mut writer = match self.store.ingest(desc)? {
            Ingest::Present => {
                let mut blob =
                    io::BufReader::with_capacity(1 << 20, self.store.open_blob(&desc.digest)?);
                return also.consume(&mut blob);
            }
            Ingest::Writer(writer) => writer,
        };
        let source = source.ok_or_else(|| ImagesError::MissingBlob(desc.digest.clone()))?;
        let blob = self.client.blob(source.reference, desc, source.creds)?;
        let mut tee = Tee {
            inner: blob,
            copy: &mut writer,
            seen: 0,
            reported: 0,
            total: desc.size,
            layer: &desc.digest,
            progress,
        };
        also.consume(&mut tee)?;
        io::copy(&mut tee, &mut io::sink()).map_err(|e| ImagesError::io(&desc.digest, e))?;
        metrics::counter!(m::PULL_BYTES).increment(tee.seen);
        writer.commit()?;
        Ok(())
    }
}

/// What a download feeds besides the store.
trait Consumer {
    /// Read `blob` (to its end or not: the caller drains the rest).
    fn consume(&mut self, blob: &mut dyn Read) -> Result<(), ImagesError>;
}

impl Consumer for io::Sink {
    fn consume(&mut self, _blob: &mut dyn Read) -> Result<(), ImagesError> {
        Ok(())
    }
}

/// A consumer that unpacks the blob as it streams.
struct Unpacking<'f, F>(&'f F);

impl<F> Consumer for Unpacking<'_, F>
where
    F: Fn(&mut dyn Read) -> Result<(), ImagesError>,
{
    fn consume(&mut self, blob: &mut dyn Read) -> Result<(), ImagesError> {
        (self.0)(blob)
    }
}

/// A reader that writes what it reads into the store's ingest file and reports
/// progress now and then.
struct Tee<'a, R> {
    inner: R,
    copy: &'a mut dyn Write,
    seen: u64,
    reported: u64,
    total: u64,
    layer: &'a Digest,
    progress: &'a (dyn Fn(Progress) + Sync),
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        self.seen += n as u64;
        if self.seen - self.reported >= PROGRESS_EVERY || (n == 0 && self.seen > self.reported) {
            self.reported = self.seen;
            (self.progress)(Progress::Downloading {
                layer: self.layer.clone(),
                current: self.seen,
                total: self.total,
            });
        }
        Ok(n)
    }
}
