//! One operation at a time per (network, container): threads of this process wait on a
//! set of busy keys, processes on an flock(2) of a lock file in the cache directory.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use nix::fcntl::{Flock, FlockArg};

use super::CniError;

/// The keys busy in this process.
#[derive(Default)]
pub(crate) struct KeyLocks {
    busy: Mutex<HashSet<(String, String)>>,
    freed: Condvar,
}

/// Held while one operation runs: the key in-process and the lock file across processes.
pub(crate) struct Held<'a> {
    locks: &'a KeyLocks,
    key: (String, String),
    file: Option<Flock<File>>,
    path: PathBuf,
}

impl KeyLocks {
    /// Wait until (network, container) is free here and in every other process, and
    /// take it: the lock file is `dir/<network>@<container>.lock`.
    pub fn lock(&self, dir: &Path, network: &str, container: &str) -> Result<Held<'_>, CniError> {
        let key = (network.to_owned(), container.to_owned());
        let mut busy = self.busy_set();
        while busy.contains(&key) {
            busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        busy.insert(key.clone());
        drop(busy);
        let path = dir.join(format!("{network}@{container}.lock"));
        let mut held = Held {
            locks: self,
            key,
            file: None,
            path,
        };
        held.file = Some(flock(&held.path)?);
        Ok(held)
    }

    fn busy_set(&self) -> MutexGuard<'_, HashSet<(String, String)>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Held<'_> {
    /// Remove the lock file (the attachment is gone); safe while held, as a process that
    /// locked the removed file sees that it is no longer at the path and locks anew.
    pub fn remove_file(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.file.take());
        self.locks.busy_set().remove(&self.key);
        self.locks.freed.notify_all();
    }
}

/// flock(2) the file at `path`, made if missing; retried when the file was removed or
/// replaced between the open and the lock.
fn flock(path: &Path) -> Result<Flock<File>, CniError> {
    let err = |source| CniError::Cache {
        path: path.to_owned(),
        source,
    };
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(err)?;
        let locked = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| err(std::io::Error::from(errno)))?;
        let ours = locked.metadata().map_err(err)?;
        match fs::metadata(path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => return Ok(locked),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_holder_at_a_time_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let locks = KeyLocks::default();
        let inside = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let held = locks.lock(dir.path(), "net", "c1").unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        held.remove_file();
                    }
                });
            }
        });
        // Another key is not blocked by a held one.
        let _a = locks.lock(dir.path(), "net", "c1").unwrap();
        let _b = locks.lock(dir.path(), "net", "c2").unwrap();
    }
}
