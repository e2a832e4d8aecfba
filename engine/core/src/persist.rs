//! Records on disk: `<state>/containers/<id>/record.json`, each change written to a
//! temporary file beside it and renamed over it, so a reader (or a daemon restarted
//! after SIGKILL) sees the old record or the new one, never half of one. No fsync: the
//! state must survive a crash of the daemon, not a reboot (see DESIGN.md).

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use crate::record::Record;

/// Directory under the state dir holding one directory per container.
pub const CONTAINERS_DIR: &str = "containers";
/// The record's file name.
pub const RECORD_FILE: &str = "record.json";

/// A failure reading or writing the state directory, with the path.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A filesystem call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A record file is not valid JSON of a record.
    #[error("{path} is not a valid record: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PersistError + 'a {
    move |source| PersistError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The records under one state directory.
#[derive(Debug, Clone)]
pub struct Store {
    containers: PathBuf,
}

/// What [`Store::load_all`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Records read.
    pub records: Vec<Record>,
    /// Files that could not be read, with why.
    pub errors: Vec<PersistError>,
}

impl Store {
    /// The store under `state_dir` (created on first write).
    pub fn new(state_dir: impl AsRef<Path>) -> Self {
        Store {
            containers: state_dir.as_ref().join(CONTAINERS_DIR),
        }
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.containers.join(id)
    }

    /// The record file of container `id`.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir(id).join(RECORD_FILE)
    }

    /// Write `record` atomically (temp file + rename, `berth_atomic_file`).
    pub fn save(&self, record: &Record) -> Result<(), PersistError> {
        let dir = self.dir(&record.id);
        let path = dir.join(RECORD_FILE);
        let json = serde_json::to_vec(record).expect("a record always serialises");
        if let Err(e) = berth_atomic_file::write(&path, &json) {
            if e.kind() != ErrorKind::NotFound {
                return Err(io_err("write", &path)(e));
            }
            // First write of this container: make its directory (one syscall saved on
            // every later write).
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
            berth_atomic_file::write(&path, &json).map_err(io_err("write", &path))?;
        }
        Ok(())
    }

    /// Read the record of `id`.
    pub fn load(&self, id: &str) -> Result<Record, PersistError> {
        read_record(&self.path(id))
    }

    /// Remove container `id`'s directory and all in it. Absent already is fine.
    pub fn remove(&self, id: &str) -> Result<(), PersistError> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
            _ => Ok(()),
        }
    }

    /// Every record under the state directory (for recovery). Leftover temp files are
    /// ignored: the rename never happened, so the record file is the truth.
    pub fn load_all(&self) -> Loaded {
        let mut out = Loaded::default();
        let entries = match fs::read_dir(&self.containers) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return out,
            Err(e) => {
                out.errors.push(io_err("read", &self.containers)(e));
                return out;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.errors.push(io_err("read", &self.containers)(e));
                    continue;
                }
            };
            let path = entry.path().join(RECORD_FILE);
            match read_record(&path) {
                Ok(r) => out.records.push(r),
                // A directory without a record (a crash before the first rename).
                Err(PersistError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
                Err(e) => out.errors.push(e),
            }
        }
        out.records.sort_by_key(|r| r.timestamps.queued);
        out
    }
}

fn read_record(path: &Path) -> Result<Record, PersistError> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| PersistError::Corrupt {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::record::{Change, ContainerSpec, Timestamp};

    fn rec(id: &str) -> Record {
        Record::queued(Arc::new(ContainerSpec::bundle(id, "/b")), Timestamp::now())
    }

    #[test]
    fn round_trip_and_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let mut r = rec("a");
        store.save(&r).unwrap();
        assert_eq!(store.load("a").unwrap(), r);
        r.apply(Change::Dequeued, Timestamp::now()).unwrap();
        store.save(&r).unwrap();
        assert_eq!(store.load("a").unwrap(), r);
        // Only the record is left: the temp file was renamed away.
        let names: Vec<_> = fs::read_dir(store.dir("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [RECORD_FILE]);
        store.remove("a").unwrap();
        store.remove("a").unwrap();
        assert!(!store.dir("a").exists());
    }

    #[test]
    fn a_torn_temp_file_never_replaces_the_record() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let r = rec("b");
        store.save(&r).unwrap();
        // A crash mid-write leaves a partial temp file; the record is intact.
        let torn = store.dir("b").join(".record.json.1.0.tmp");
        fs::write(&torn, b"{\"id\": \"b\", \"sta").unwrap();
        let loaded = store.load_all();
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.records, std::slice::from_ref(&r));
        // And the next save writes the record all the same.
        store.save(&r).unwrap();
        assert_eq!(store.load("b").unwrap(), r);
    }

    #[test]
    fn rename_is_atomic_for_concurrent_readers() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let mut r = rec("c");
        store.save(&r).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Every read parses: never a half-written file.
                    store.load("c").unwrap();
                }
            });
            for i in 0..500 {
                r.error = Some("x".repeat(i % 300));
                store.save(&r).unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }

    #[test]
    fn load_all_reports_corrupt_records_and_keeps_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        for id in ["x", "y"] {
            store.save(&rec(id)).unwrap();
        }
        fs::write(store.path("y"), b"not json").unwrap();
        fs::create_dir_all(store.dir("empty")).unwrap();
        let loaded = store.load_all();
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.records[0].id, "x");
        assert_eq!(loaded.errors.len(), 1);
        assert!(loaded.errors[0].to_string().contains("not a valid record"));
        assert!(Store::new(tmp.path().join("nothing"))
            .load_all()
            .records
            .is_empty());
    }
}
