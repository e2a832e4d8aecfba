//! Container status and the state each container keeps under the runtime root.
//!
//! Layout: `<root>/<id>/state.json` (written atomically: temp file + rename) and, while the
//! container is `created`, `<root>/<id>/exec.fifo`, which `start` opens to release the init.
//! The directory itself is created with `mkdir`, which is what makes ids unique even when
//! many `create`s race.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, IoContext, Result};
use crate::process_info;

/// The container's cgroup, recorded by `create` before it makes it (so that the cleanup
/// of a `create` killed before `state.json` was written can remove it).
const CGROUP_FILE: &str = "cgroup.json";

/// How long [`ContainerDir::remove_abandoned`] waits for the processes of a half-made
/// container's cgroup to die after SIGKILL.
const ABANDONED_KILL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Name of the persisted state file inside a container's directory.
const STATE_FILE: &str = "state.json";
/// Name of the FIFO the init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";

pub use berth_runtime_types::Status;

/// What the runtime remembers of a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The container id.
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// The init's start time in clock ticks since boot, to tell it from a recycled pid.
    pub pid_start_time: u64,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup, so `delete` can remove it without the spec.
    pub cgroup: Cgroup,
    /// The spec's hooks, so start and delete run those of create time.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The spec has no `process` (optional at create): `start` is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_process: bool,
    /// The container shares the runtime's mount namespace: the mount points that were
    /// below its root before create; delete unmounts every other one there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_mounts: Option<Vec<PathBuf>>,
}

/// The runtime-spec state document, as `state` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    /// Version of the runtime spec.
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// Host pid of the init, 0 once stopped.
    pub pid: i32,
    /// Lifecycle status.
    pub status: Status,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Owner of the container (runc prints an empty string for root).
    pub owner: String,
    /// The spec's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// The version of the runtime spec Berth implements.
pub use berth_runtime_types::OCI_VERSION;

impl Record {
    /// The container's live status: read from the kernel, not from the file.
    pub fn status(&self, dir: &ContainerDir) -> Status {
        if !process_info::is_alive(self.pid, self.pid_start_time) {
            Status::Stopped
        } else if dir.path().join(EXEC_FIFO).exists() {
            Status::Created
        } else if self.cgroup.is_frozen().unwrap_or(false) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The runtime-spec state document for this record in `status`.
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

/// One container's directory under the runtime root.
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    path: PathBuf,
}

impl ContainerDir {
    /// Claim `id` under `root` by creating its directory; refuses an id that exists.
    pub fn create(root: &Path, id: &str) -> Result<Self> {
        // Only root may reach into the runtime root (as runc's): a container's exec FIFO
        // must not be opened by anyone else, or `start` would wait for their end.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .io("create runtime root", root)?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => Ok(ContainerDir {
                id: id.to_string(),
                path,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(id.to_string()))
            }
            Err(e) => Err(Error::io("create state directory", path, e)),
        }
    }

    /// Open the directory of an existing container.
    pub fn open(root: &Path, id: &str) -> Result<Self> {
        let path = root.join(id);
        if !path.is_dir() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
        })
    }

    /// Path of the directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runtime root the directory is in.
    pub fn root(&self) -> &Path {
        self.path.parent().unwrap_or(&self.path)
    }

    /// Take the container's exclusive lock, serialising start/kill/delete of one id.
    pub fn lock(&self) -> Result<Flock<File>> {
        let file = File::open(&self.path).io("open state directory", &self.path)?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::sys("flock", self.path.display(), errno))
    }

    /// Remove the directory of a `create` that died before recording the container
    /// (killed, or the machine's power): only if no live `create` holds its lock.
    pub fn remove_abandoned(self) -> Result<()> {
        let file = File::open(&self.path).io("open state directory", &self.path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                self.remove_abandoned_cgroup()?;
                drop(lock);
                self.remove()
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(Error::WrongState {
                id: self.id.clone(),
                action: "delete",
                status: Status::Creating,
            }),
            Err((_, errno)) => Err(Error::sys("flock", self.path.display(), errno)),
        }
    }

    /// Kill what is in the cgroup `create` recorded (if it made it) and remove it.
    fn remove_abandoned_cgroup(&self) -> Result<()> {
        let file = self.path.join(CGROUP_FILE);
        let cgroup: Cgroup = match fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Config {
                path: file.clone(),
                reason: format!("corrupt cgroup file: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("read", file, e)),
        };
        if cgroup.created() {
            let deadline = std::time::Instant::now() + ABANDONED_KILL_PATIENCE;
            loop {
                let pids = cgroup.pids()?;
                if pids.is_empty() || std::time::Instant::now() > deadline {
                    break;
                }
                for pid in pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        Ok(cgroup.destroy()?)
    }

    /// Record the cgroup `create` is about to make (see [`CGROUP_FILE`]).
    pub fn write_cgroup(&self, cgroup: &Cgroup) -> Result<()> {
        let file = self.path.join(CGROUP_FILE);
        let bytes = serde_json::to_vec(cgroup).map_err(|e| Error::Config {
            path: file.clone(),
            reason: format!("cannot encode cgroup: {e}"),
        })?;
        berth_atomic_file::write(&file, &bytes).io("write", &file)
    }

    /// Read the record, or `None` while `create` has not yet written it.
    pub fn read(&self) -> Result<Option<Record>> {
        let file = self.path.join(STATE_FILE);
        match fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Config {
                    path: file,
                    reason: format!("corrupt state file: {e}"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.path.exists() {
                    Ok(None)
                } else {
                    Err(Error::NotFound(self.id.clone()))
                }
            }
            Err(e) => Err(Error::io("read", file, e)),
        }
    }

    /// Persist the record atomically: a reader sees the old file or the new one, never half.
    pub fn write(&self, record: &Record) -> Result<()> {
        let file = self.path.join(STATE_FILE);
        let bytes = serde_json::to_vec(record).map_err(|e| Error::Config {
            path: file.clone(),
            reason: format!("cannot encode state: {e}"),
        })?;
        berth_atomic_file::write(&file, &bytes).io("write", &file)
    }

    /// Remove the directory and everything in it.
    pub fn remove(self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove state directory", &self.path, e))
            }
            _ => Ok(()),
        }
    }
}

/// All container ids under `root`, sorted. Directories whose name is not an id (the
/// seccomp cache) are not containers.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read runtime root", root, e)),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| berth_runtime_types::id::check(name).is_ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Current time as RFC 3339 with nanoseconds, as runc prints `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_follow_the_lifecycle() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(!Status::Stopped.can_kill());
        assert!(Status::Running.can_kill());
        assert!(!Status::Running.can_delete());
        assert!(!Status::Created.can_delete());
        assert!(Status::Stopped.can_delete());
    }

    #[test]
    fn same_id_is_claimed_once() {
        let root = tempfile::tempdir().unwrap();
        let first = ContainerDir::create(root.path(), "c1").unwrap();
        assert!(matches!(
            ContainerDir::create(root.path(), "c1"),
            Err(Error::Exists(_))
        ));
        assert!(first.read().unwrap().is_none());
        first.remove().unwrap();
        assert!(matches!(
            ContainerDir::open(root.path(), "c1"),
            Err(Error::NotFound(_))
        ));
    }
}
