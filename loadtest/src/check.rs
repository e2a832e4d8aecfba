//! `--check K`: look at running containers from the host, as the kernel sees them —
//! their own namespaces, their init as pid 1, their own cgroup.

use std::path::PathBuf;

/// The namespaces every container must have of its own.
const NAMESPACES: [&str; 5] = ["pid", "mnt", "uts", "ipc", "net"];

/// Verify the container whose init has host pid `pid`; `Err` says what is wrong.
pub fn container(id: &str, pid: i32) -> Result<(), String> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    for ns in NAMESPACES {
        let theirs = std::fs::read_link(proc_dir.join("ns").join(ns))
            .map_err(|e| format!("{id}: /proc/{pid}/ns/{ns}: {e}"))?;
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .map_err(|e| format!("/proc/self/ns/{ns}: {e}"))?;
        if theirs == ours {
            return Err(format!(
                "{id}: shares the host's {ns} namespace ({})",
                ours.display()
            ));
        }
    }
    let status = std::fs::read_to_string(proc_dir.join("status"))
        .map_err(|e| format!("{id}: /proc/{pid}/status: {e}"))?;
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .ok_or_else(|| format!("{id}: no NSpid in /proc/{pid}/status"))?;
    let inner = nspid.split_whitespace().last().unwrap_or("");
    if inner != "1" {
        return Err(format!(
            "{id}: its init is pid {inner} in its namespace, not 1 (NSpid:{nspid})"
        ));
    }
    let cgroups = std::fs::read_to_string(proc_dir.join("cgroup"))
        .map_err(|e| format!("{id}: /proc/{pid}/cgroup: {e}"))?;
    cgroup_of(&cgroups, pid).map_err(|e| format!("{id}: {e}"))
}

/// Some hierarchy puts `pid` in a cgroup of its own (not the root) whose directory
/// exists and lists it.
fn cgroup_of(cgroups: &str, pid: i32) -> Result<(), String> {
    let mut seen = Vec::new();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(c), Some(p)) => (h, c, p),
            _ => continue,
        };
        if path == "/" {
            continue;
        }
        let base = if controllers.is_empty() {
            // The v2 hierarchy: /sys/fs/cgroup itself, or "unified" on a hybrid host.
            if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                PathBuf::from("/sys/fs/cgroup")
            } else {
                PathBuf::from("/sys/fs/cgroup/unified")
            }
        } else {
            let name = controllers.strip_prefix("name=").unwrap_or(controllers);
            PathBuf::from("/sys/fs/cgroup").join(name)
        };
        let dir = base.join(path.trim_start_matches('/'));
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        if procs.lines().any(|l| l.trim() == pid.to_string()) {
            return Ok(());
        }
        seen.push(dir.display().to_string());
    }
    Err(format!(
        "no cgroup directory of its own lists pid {pid} (looked in: {})",
        if seen.is_empty() {
            "none: every hierarchy says /".to_owned()
        } else {
            seen.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_in_root_cgroups_only_fails() {
        let e = cgroup_of("12:memory:/\n0::/\n", 1).unwrap_err();
        assert!(e.contains("every hierarchy says /"), "{e}");
    }

    #[test]
    fn this_process_is_not_its_own_container() {
        let e = container("self", std::process::id() as i32).unwrap_err();
        assert!(e.contains("shares the host's"), "{e}");
    }
}
