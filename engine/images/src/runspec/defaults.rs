//! The parts of the spec every image gets, as docker sets them: namespaces, capabilities,
//! mounts, masked and read-only paths, devices, the open-file limit, seccomp.

use nix::sys::resource::{getrlimit, Resource};
use serde_json::{json, Value};

use super::{seccomp, RunspecError};

/// docker's default capability set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, in kernel order (what `ALL` adds).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths hidden from the container (docker's list): /dev/null over files, an empty
/// read-only tmpfs over directories.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only (docker's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// docker's open-file limit where the host allows it.
const NOFILE: u64 = 1 << 20;

/// The bounding set: docker's defaults, then `drop` removed and `add` added (an add
/// wins over a drop of the same capability); `ALL` in `add` starts from every capability
/// (minus the drops), `ALL` in `drop` from none. Names with or without `CAP_`, any case.
pub fn capabilities(add: &[String], drop: &[String]) -> Result<Vec<String>, RunspecError> {
    let add = normalize(add)?;
    let drop = normalize(drop)?;
    let all = |list: &[String]| list.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if all(&add) {
        ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else if all(&drop) {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    };
    caps.retain(|c| !drop.contains(c));
    for cap in add.into_iter().filter(|c| c != "ALL") {
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    Ok(caps)
}

/// `net_admin` → `CAP_NET_ADMIN`; unknown names are an error naming them.
fn normalize(list: &[String]) -> Result<Vec<String>, RunspecError> {
    list.iter()
        .map(|raw| {
            let upper = raw.trim().to_ascii_uppercase();
            if upper == "ALL" {
                return Ok(upper);
            }
            let name = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if ALL_CAPABILITIES.contains(&name.as_str()) {
                Ok(name)
            } else {
                Err(RunspecError::UnknownCapability { name: raw.clone() })
            }
        })
        .collect()
}

/// `RLIMIT_NOFILE`: docker's 1048576, capped at this process's hard limit — without
/// CAP_SYS_RESOURCE (root lacks it on some hosts, this one among them) the runtime
/// cannot raise a hard limit, and a container asking for more would fail to start.
pub fn nofile_limit() -> u64 {
    let hard = getrlimit(Resource::RLIMIT_NOFILE).map_or(NOFILE, |(_, hard)| hard);
    hard.min(NOFILE)
}

/// Everything but the process, root, hostname and annotations.
pub fn base(caps: &[String]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "mounts": mounts(),
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "network"}, {"type": "cgroup"}
            ],
            // Deny every device; the runtime appends the standard ones (null, zero, full,
            // random, urandom, tty, ptmx, pts, tun) and creates their nodes itself.
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            // As docker, in a network namespace of the container's own: low ports and
            // ICMP echo sockets need no privilege.
            "sysctl": {
                "net.ipv4.ip_unprivileged_port_start": "0",
                "net.ipv4.ping_group_range": "0 2147483647"
            },
            "seccomp": seccomp::profile(caps),
        }
    })
}

fn mounts() -> Value {
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capabilities_add_and_drop_as_docker() {
        assert_eq!(capabilities(&[], &[]).unwrap(), v(DEFAULT_CAPABILITIES));
        let c = capabilities(
            &v(&["net_admin", "CAP_SYS_ADMIN"]),
            &v(&["MKNOD", "cap_kill"]),
        )
        .unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".into()) && c.contains(&"CAP_SYS_ADMIN".into()));
        assert!(!c.contains(&"CAP_MKNOD".into()) && !c.contains(&"CAP_KILL".into()));
        assert_eq!(c.len(), DEFAULT_CAPABILITIES.len());
        assert_eq!(
            capabilities(&v(&["chown"]), &v(&["all"])).unwrap(),
            v(&["CAP_CHOWN"])
        );
        let all = capabilities(&v(&["ALL"]), &v(&["SYS_ADMIN"])).unwrap();
        assert_eq!(all.len(), ALL_CAPABILITIES.len() - 1);
        // An add wins over a drop of the same capability.
        assert!(capabilities(&v(&["KILL"]), &v(&["KILL"]))
            .unwrap()
            .contains(&"CAP_KILL".into()));
    }

    #[test]
    fn an_unknown_capability_is_named() {
        let e = capabilities(&v(&["CAP_FLY"]), &[]).unwrap_err();
        assert!(e.to_string().contains("CAP_FLY"), "{e}");
    }

    #[test]
    fn nofile_never_exceeds_the_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(nofile_limit(), hard.min(1 << 20));
    }
}
