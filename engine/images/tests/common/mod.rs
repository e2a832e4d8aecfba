//! Test fixtures shared by the images tests: tar layers built in memory.

#![allow(dead_code)]

use std::io::Write;

use tar::{EntryType, Header};

/// A tar stream under construction.
pub struct Layer(pub tar::Builder<Vec<u8>>);

impl Layer {
    pub fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    /// An entry with a raw name (the tar crate's setters refuse `..`, which the tests
    /// need), owner 0:0 and mtime 1000 unless changed with `with`.
    pub fn raw(
        &mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        data: &[u8],
        with: impl FnOnce(&mut Header),
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1000);
        h.set_uid(0);
        h.set_gid(0);
        with(&mut h);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(name, EntryType::Directory, 0o755, b"", |_| {})
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name, EntryType::Regular, 0o644, data, |_| {})
    }

    pub fn link(&mut self, name: &str, kind: EntryType, target: &str) -> &mut Self {
        self.raw(name, kind, 0o777, b"", |h| {
            h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes())
        })
    }

    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.0
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    pub fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
