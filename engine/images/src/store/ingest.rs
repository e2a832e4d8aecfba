//! Writing blobs: one writer per digest across threads and processes (a `flock` on a
//! per-digest lock file), partial files that never appear under `blobs/` unless complete.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use super::{Store, StoreError};
use crate::manifest::Descriptor;
use crate::{Digest, DigestError};

/// The answer of [`Store::ingest`].
// Short-lived and moved once: boxing the writer would only add an allocation per blob.
#[allow(clippy::large_enum_variant)]
#[must_use]
pub enum Ingest {
    /// The blob is in the store already.
    Present,
    /// The caller writes it: nobody else does until this writer commits or is dropped.
    Writer(IngestWriter),
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ingest::Present => f.write_str("Present"),
            Ingest::Writer(w) => write!(
                f,
                "Writer({})",
                w.expected.as_ref().map_or("?".into(), |d| d.to_string())
            ),
        }
    }
}

/// A held `flock` on a lock file in `ingest/`; the file is unlinked when the holder is done.
struct HeldLock {
    file: File,
    path: PathBuf,
}

impl HeldLock {
    /// Blocks until this process holds `path`'s lock. The file may be unlinked by its
    /// previous holder meanwhile, so the lock counts only if `path` still names the
    /// locked inode; otherwise try again with the new file.
    fn acquire(path: &Path) -> Result<HeldLock, StoreError> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(|e| StoreError::io("open lock file", path, e))?;
            flock(&file, libc::LOCK_EX).map_err(|e| StoreError::io("flock", path, e))?;
            if same_inode(&file, path) {
                return Ok(HeldLock {
                    file,
                    path: path.to_path_buf(),
                });
            }
        }
    }

    /// Takes `path`'s lock (making the file) if nobody holds it; `None` when someone does.
    pub(super) fn try_acquire(path: &Path) -> Option<HeldLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .ok()?;
        flock(&file, libc::LOCK_EX | libc::LOCK_NB).ok()?;
        same_inode(&file, path).then(|| HeldLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Unlinks the lock file while still holding it, then lets go.
    pub(super) fn release(self) {
        let _ = fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// `flock(2)` on `file`.
fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor this File owns; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether `path` still names the inode `file` has open.
fn same_inode(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Bytes an [`IngestWriter`] gathers before it writes to its file (few large writes for
/// a layer that arrives in small pieces).
const WRITE_BUFFER: usize = 256 << 10;

/// Writes one blob into `ingest/`, hashing as it goes; [`IngestWriter::commit`] moves it
/// into `blobs/` after checking it. Dropped without commit, it removes its partial file.
pub struct IngestWriter {
    file: Option<BufWriter<File>>,
    partial: PathBuf,
    blobs: PathBuf,
    lock: Option<HeldLock>,
    hasher: Sha256,
    written: u64,
    /// The digest and size the content must have; `None` for content named by its hash.
    expected: Option<Digest>,
    size: Option<u64>,
}

impl IngestWriter {
    fn new(
        store: &Store,
        stem: &str,
        lock: HeldLock,
        expected: Option<&Descriptor>,
    ) -> Result<IngestWriter, StoreError> {
        let partial = store.ingest_dir().join(format!("{stem}.partial"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&partial)
            .map_err(|e| StoreError::io("create partial file", &partial, e))?;
        Ok(IngestWriter {
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            partial,
            blobs: store.blob_dir(),
            lock: Some(lock),
            hasher: Sha256::new(),
            written: 0,
            expected: expected.map(|d| d.digest.clone()),
            size: expected.map(|d| d.size),
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Checks size and digest, then renames the content into `blobs/`; returns its
    /// digest and size. On a mismatch nothing enters `blobs/`.
    pub fn commit(mut self) -> Result<(Digest, u64), StoreError> {
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(expected) = &self.expected {
            if let Some(size) = self.size.filter(|&s| s != self.written) {
                return Err(StoreError::Content(DigestError::Size {
                    digest: expected.clone(),
                    expected: size,
                    actual: self.written,
                }));
            }
            if actual != *expected {
                return Err(StoreError::Content(DigestError::Mismatch {
                    expected: expected.clone(),
                    actual,
                }));
            }
        }
        let file = self.file.take();
        if let Some(mut f) = file {
            f.flush()
                .map_err(|e| StoreError::io("write", &self.partial, e))?;
        }
        let target = self.blobs.join(actual.hex());
        fs::rename(&self.partial, &target)
            .map_err(|e| StoreError::io("rename into blobs", &target, e))?;
        if let Some(lock) = self.lock.take() {
            lock.release();
        }
        Ok((actual, self.written))
    }
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let (Some(size), Some(d)) = (self.size, &self.expected) {
            if self.written + buf.len() as u64 > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DigestError::Size {
                        digest: d.clone(),
                        expected: size,
                        actual: self.written + buf.len() as u64,
                    },
                ));
            }
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for IngestWriter {
    fn drop(&mut self) {
        if self.lock.is_some() {
            // The partial goes away: its buffered tail need not be written first.
            let _ = self.file.take().map(BufWriter::into_parts);
            let _ = fs::remove_file(&self.partial);
            if let Some(lock) = self.lock.take() {
                lock.release();
            }
        }
    }
}

impl Store {
    /// Starts writing the blob `desc` names, or says it is present. One writer per digest
    /// at a time across threads and processes: a second caller waits until the first
    /// commits (then sees `Present`) or gives up (then it becomes the writer).
    pub fn ingest(&self, desc: &Descriptor) -> Result<Ingest, StoreError> {
        if self.has_blob(&desc.digest) {
            return Ok(Ingest::Present);
        }
        let stem = desc.digest.hex().to_string();
        let lock = HeldLock::acquire(&self.ingest_dir().join(format!("{stem}.lock")))?;
        if self.has_blob(&desc.digest) {
            lock.release();
            return Ok(Ingest::Present);
        }
        Ok(Ingest::Writer(IngestWriter::new(
            self,
            &stem,
            lock,
            Some(desc),
        )?))
    }

    /// Starts writing a blob whose digest is not known yet (e.g. a `docker save` layer):
    /// commit names it by its hash. Two such writers of the same content both succeed.
    pub fn ingest_unknown(&self) -> Result<IngestWriter, StoreError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let stem = format!(
            "anon-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let lock = HeldLock::acquire(&self.ingest_dir().join(format!("{stem}.lock")))?;
        IngestWriter::new(self, &stem, lock, None)
    }

    /// Removes partial files no live writer holds (left by a crash).
    pub(super) fn clean_ingest(&self) -> Result<(), StoreError> {
        let dir = self.ingest_dir();
        let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("read dir", &dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name
                .strip_suffix(".partial")
                .or_else(|| name.strip_suffix(".lock"))
            else {
                continue;
            };
            let lock_path = dir.join(format!("{stem}.lock"));
            let partial = dir.join(format!("{stem}.partial"));
            // A writer holds its lock from before it makes the partial until after the
            // partial is gone: a partial whose lock is free is stale.
            if let Some(lock) = HeldLock::try_acquire(&lock_path) {
                let _ = fs::remove_file(&partial);
                lock.release();
            }
        }
        Ok(())
    }
}
