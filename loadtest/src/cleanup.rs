//! Taking a run down: every container it made is deleted through the API (concurrently),
//! or — when the daemon is gone — its shims and container processes are killed and its
//! cgroups removed; then what is left is looked for.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::api;
use crate::client::Conn;
use crate::procfs;

/// What the cleanup did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Cleaned {
    /// Containers deleted through the API.
    pub deleted: usize,
    /// Seconds the deletes took.
    pub delete_seconds: f64,
    /// Errors met on the way.
    pub errors: Vec<String>,
}

/// Delete every container whose id starts with `prefix` with `concurrency` clients,
/// retrying the ones being created, until none is listed or `deadline`.
pub async fn delete_all(
    socket: &Path,
    prefix: &str,
    concurrency: usize,
    deadline: Instant,
) -> Cleaned {
    let began = Instant::now();
    let mut cleaned = Cleaned::default();
    let mut conn = Conn::new(socket);
    loop {
        let ids: Vec<String> = match api::records(&mut conn, prefix).await {
            Ok(r) => r.into_iter().map(|r| r.id).collect(),
            Err(e) => {
                cleaned.errors.push(format!("listing containers: {e}"));
                break;
            }
        };
        if ids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            cleaned.errors.push(format!(
                "{} container(s) still listed at the deadline",
                ids.len()
            ));
            break;
        }
        let queue = Arc::new(Mutex::new(ids));
        let tasks: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                let queue = Arc::clone(&queue);
                let socket = socket.to_path_buf();
                tokio::spawn(async move {
                    let mut conn = Conn::new(&socket);
                    let (mut done, mut errors) = (0usize, Vec::new());
                    loop {
                        let Some(id) = queue.lock().await.pop() else {
                            return (done, errors);
                        };
                        match api::delete(&mut conn, &id).await {
                            Ok(Ok(true)) => done += 1,
                            Ok(Ok(false)) => {} // being created: the next round retries
                            Ok(Err(why)) => errors.push(format!("DELETE {id}: {why}")),
                            Err(e) => {
                                errors.push(e.to_string());
                                return (done, errors);
                            }
                        }
                    }
                })
            })
            .collect();
        let mut broken = false;
        for t in tasks {
            if let Ok((done, errors)) = t.await {
                cleaned.deleted += done;
                broken |= errors.iter().any(|e| e.contains("connecting"));
                cleaned.errors.extend(errors);
            }
        }
        if broken {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cleaned.errors.truncate(20);
    cleaned.delete_seconds = began.elapsed().as_secs_f64();
    cleaned
}

/// Without a daemon to ask: SIGKILL the run's shims and every process in its cgroups.
pub fn kill_leftovers(prefix: &str, cgroup_parent: &str) {
    for pid in procfs::shims_of(prefix) {
        signal_kill(pid);
    }
    for dir in cgroup_dirs(cgroup_parent) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            signal_kill(pid);
        }
    }
}

fn signal_kill(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        if pid > 1 {
            // SAFETY: kill(2) has no memory effects; the pid was just read from /proc.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The run's cgroup directories (`<hierarchy>/<parent>` and below), deepest first.
fn cgroup_dirs(cgroup_parent: &str) -> Vec<PathBuf> {
    let rel = cgroup_parent.trim_start_matches('/');
    let mut roots = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        // Skip the comma-named aliases' symlinks (cpu -> cpu,cpuacct): same directory.
        if h.file_type().is_ok_and(|t| t.is_dir()) {
            roots.push(h.path().join(rel));
        }
    }
    roots.push(Path::new("/sys/fs/cgroup").join(rel));
    let mut out = Vec::new();
    for r in roots {
        collect_dirs(&r, &mut out);
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
}

/// Remove the run's (empty) cgroup directories, waiting a little for killed processes
/// to leave them.
pub fn remove_cgroups(cgroup_parent: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let dirs = cgroup_dirs(cgroup_parent);
        let mut left = false;
        for d in &dirs {
            left |= std::fs::remove_dir(d).is_err() && d.exists();
        }
        if !left || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Detach every mount under `dir`, deepest first: berthd puts its state directory on a
/// tmpfs of its own and leaves it mounted when it dies with containers still in it.
pub fn unmount_under(dir: &Path) {
    let mut points: Vec<PathBuf> = own_mounts()
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        let Ok(c) = std::ffi::CString::new(point.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: umount2 with a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// What the run left behind: shims, cgroup directories, mounts under `tmp`.
pub fn leftovers(prefix: &str, cgroup_parent: &str, tmp: Option<&Path>) -> Vec<String> {
    let mut left = Vec::new();
    // Shims exit right after their container is deleted; give them a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut shims = procfs::shims_of(prefix);
    while !shims.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        shims = procfs::shims_of(prefix);
    }
    if !shims.is_empty() {
        left.push(format!(
            "{} berth-shim process(es): {:?}",
            shims.len(),
            shims
        ));
    }
    let dirs = cgroup_dirs(cgroup_parent);
    if !dirs.is_empty() {
        left.push(format!(
            "{} cgroup dir(s), e.g. {}",
            dirs.len(),
            dirs[dirs.len() - 1].display()
        ));
    }
    let mounts: Vec<PathBuf> = own_mounts()
        .into_iter()
        .filter(|m| tmp.is_some_and(|t| m.starts_with(t)) || m.to_string_lossy().contains(prefix))
        .collect();
    if !mounts.is_empty() {
        left.push(format!(
            "{} mount(s), e.g. {}",
            mounts.len(),
            mounts[0].display()
        ));
    }
    left
}

/// What the daemon's network state still holds after every container was deleted:
/// attachment files (`<state>/network/attachments/`) and address allocations
/// (`<state>/network/ipam/<network>/<address>`).
pub fn network_state_leftovers(state_dir: &Path) -> Vec<String> {
    let network = state_dir.join("network");
    let mut left = Vec::new();
    let attachments = files_in(&network.join("attachments"));
    if !attachments.is_empty() {
        left.push(format!(
            "{} network attachment file(s), e.g. {}",
            attachments.len(),
            attachments[0].display()
        ));
    }
    let allocations: Vec<PathBuf> = std::fs::read_dir(network.join("ipam"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|net| files_in(&net.path()))
        .collect();
    if !allocations.is_empty() {
        left.push(format!(
            "{} address allocation(s), e.g. {}",
            allocations.len(),
            allocations[0].display()
        ));
    }
    left
}

/// The files in `dir` (none if it does not exist), skipping hidden ones (a store's
/// temporaries of a write in progress are not a leftover of a container).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// This process's mount points, from the one mountinfo parser (berth-procfs).
fn own_mounts() -> Vec<PathBuf> {
    berth_procfs::mountinfo::read_self()
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mountpoint)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_and_allocations_are_leftovers_and_empty_dirs_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("network");
        std::fs::create_dir_all(net.join("attachments")).unwrap();
        std::fs::create_dir_all(net.join("ipam/n1")).unwrap();
        assert!(network_state_leftovers(dir.path()).is_empty());
        assert!(network_state_leftovers(&dir.path().join("missing")).is_empty());
        std::fs::write(net.join("ipam/n1/.7-1.tmp"), "x").unwrap();
        assert!(network_state_leftovers(dir.path()).is_empty());
        std::fs::write(net.join("attachments/lt-a-1.json"), "{}").unwrap();
        std::fs::write(net.join("ipam/n1/172.17.0.2"), "lt-a-1").unwrap();
        let left = network_state_leftovers(dir.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(
            left[0].starts_with("1 network attachment file(s)"),
            "{left:?}"
        );
        assert!(left[1].contains("ipam/n1/172.17.0.2"), "{left:?}");
    }
}
