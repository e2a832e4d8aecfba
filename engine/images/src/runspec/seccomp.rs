//! Berth's default seccomp profile: an allowlist (default action EPERM) that blocks what
//! docker's default profile blocks.
//!
//! Why an allowlist: a syscall the kernel adds later is refused until someone decides it
//! is safe, instead of reaching the kernel from every container on the day it ships. The
//! runtime's compiler answers ENOSYS (not EPERM) for numbers above the largest one named
//! here, so libc falls back from syscalls newer than this list as it would on an older
//! kernel. Blocked (EPERM): the kernel keyring (`add_key`, `keyctl`, `request_key`),
//! modules, kexec, reboot, swap, mounts and the new mount API, `pivot_root`, `unshare`
//! and `setns`, `clone` with namespace flags, `bpf`, `perf_event_open`, `userfaultfd`,
//! `open_by_handle_at`, `personality` beyond the common domains, setting clocks, `acct`,
//! quotas, `lookup_dcookie`, `vm86`, `uselib`, `ustat`, `sysfs`, `_sysctl`, NUMA
//! policy, `syslog`, `vhangup`, `io_uring_*` (a large attack surface docker also shut)
//! and AF_VSOCK sockets. `clone3` answers ENOSYS, so libc falls back to `clone`, whose
//! flags the filter can see.
//!
//! As docker does, a capability the container is given lifts the block of the syscalls
//! it is meant to grant (CAP_SYS_ADMIN: mount, unshare, setns, namespaced clone, …).

use serde_json::{json, Value};

/// Allowed for every container.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    // Files and descriptors.
    "access", "chdir", "chmod", "chown", "close", "close_range", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir",
    "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "flock",
    "fstat", "fstatfs", "fsync", "ftruncate", "getcwd", "getdents", "getdents64", "lchown",
    "link", "linkat", "lseek", "lstat", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat",
    "open", "openat", "openat2", "pipe", "pipe2", "pread64", "preadv", "preadv2", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "rename",
    "renameat", "renameat2", "rmdir", "sendfile", "splice", "stat", "statfs", "statx",
    "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "umask",
    "unlink", "unlinkat", "utime", "utimensat", "utimes", "futimesat", "vmsplice", "write",
    "writev", "ioctl", "file_getattr", "file_setattr",
    // Extended attributes.
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr",
    "listxattr", "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
    "getxattrat", "listxattrat", "removexattrat", "setxattrat",
    // Waiting for events.
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "poll", "ppoll", "pselect6", "select", "signalfd",
    "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_settime",
    // Asynchronous I/O (the old interface; io_uring stays blocked).
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
    // Memory.
    "brk", "cachestat", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "mincore",
    "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mremap", "mseal", "msync", "munlock",
    "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
    // Processes, threads and signals.
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork",
    "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list",
    "get_thread_area", "getcpu", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getrlimit", "getrusage", "getsid", "gettid", "ioprio_get", "ioprio_set",
    "kill", "modify_ldt", "pause", "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64",
    "process_mrelease", "restart_syscall", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_tgsigqueueinfo", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
    "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "set_robust_list", "set_thread_area",
    "set_tid_address", "setpgid", "setpriority", "setrlimit", "setsid", "sigaltstack", "tgkill",
    "tkill", "vfork", "wait4", "waitid", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr",
    "uretprobe", "ptrace", "kcmp", "process_vm_readv", "process_vm_writev",
    // Credentials.
    "getegid", "geteuid", "getgid", "getgroups", "getresgid", "getresuid", "getuid", "setfsgid",
    "setfsuid", "setgid", "setgroups", "setregid", "setresgid", "setresuid", "setreuid",
    "setuid",
    // Time (reading it; adjtimex only changes the clock with CAP_SYS_TIME).
    "adjtimex", "alarm", "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep",
    "getitimer", "gettimeofday", "nanosleep", "setitimer", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime", "times",
    // System information.
    "statmount", "listmount", "sysinfo", "uname",
    // Sockets.
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto", "setsockopt",
    "shutdown", "socketpair",
    // System V and POSIX IPC (namespaced).
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
    "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop", "shmat",
    "shmctl", "shmdt", "shmget",
    // The 32-bit x86 ABI's own names (and its 64-bit time variants).
    "_llseek", "_newselect", "chown32", "fchown32", "lchown32", "fcntl64", "fstat64",
    "fstatat64", "lstat64", "stat64", "statfs64", "fstatfs64", "ftruncate64", "truncate64",
    "getegid32", "geteuid32", "getgid32", "getuid32", "getgroups32", "setgroups32",
    "getresgid32", "getresuid32", "setfsgid32", "setfsuid32", "setgid32", "setuid32",
    "setregid32", "setreuid32", "setresgid32", "setresuid32", "mmap2", "sendfile64",
    "sigaction", "sigpending", "sigprocmask", "sigreturn", "sigsuspend", "signal", "socketcall",
    "ipc", "ugetrlimit", "waitpid", "fadvise64_64", "nice", "readdir", "clock_gettime64",
    "clock_getres_time64", "clock_nanosleep_time64", "clock_adjtime64", "futex_time64",
    "io_pgetevents_time64", "mq_timedreceive_time64", "mq_timedsend_time64", "ppoll_time64",
    "pselect6_time64", "recvmmsg_time64", "rt_sigtimedwait_time64",
    "sched_rr_get_interval_time64", "semtimedop_time64", "timer_gettime64", "timer_settime64",
    "timerfd_gettime64", "timerfd_settime64", "utimensat_time64",
];

/// Syscalls a capability lifts the block of (docker's pairs).
#[rustfmt::skip]
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_SYS_ADMIN", &[
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
        "open_tree", "open_tree_attr", "perf_event_open", "quotactl", "quotactl_fd",
        "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
    ]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["pidfd_getfd", "process_madvise"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &[
        "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages",
        "move_pages",
    ]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at", "name_to_handle_at"]),
];

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
/// CLONE_NEWPID | CLONE_NEWNET`: `clone` with none of them is an ordinary fork or thread.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `personality` domains programs use: PER_LINUX, PER_LINUX32, UNAME26, both, and the
/// query (0xffffffff).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// AF_VSOCK: talks to the hypervisor; docker refuses it.
const AF_VSOCK: u64 = 40;

/// The architectures the filter covers on this host (the runtime always adds the
/// native one; its syscalls of others are killed).
fn architectures() -> Vec<&'static str> {
    if cfg!(target_arch = "x86_64") {
        vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    } else if cfg!(target_arch = "aarch64") {
        vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else {
        Vec::new()
    }
}

/// The profile as `linux.seccomp` JSON, for a container whose bounding set is `caps`
/// (`CAP_…` names).
pub fn profile(caps: &[String]) -> Value {
    let has = |cap: &str| caps.iter().any(|c| c == cap);
    let mut allowed: Vec<&str> = ALLOWED.to_vec();
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            allowed.extend(names.iter().copied());
        }
    }
    allowed.sort_unstable();
    allowed.dedup();
    let mut rules = vec![json!({"names": allowed, "action": "SCMP_ACT_ALLOW"})];
    if !has("CAP_SYS_ADMIN") {
        rules.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                      "op": "SCMP_CMP_MASKED_EQ"}]
        }));
        rules.push(json!({
            "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 /* ENOSYS */
        }));
    }
    for p in PERSONALITIES {
        rules.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]
        }));
    }
    rules.push(json!({
        "names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]
    }));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1, // EPERM
        "architectures": architectures(),
        "syscalls": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccomp;

    fn known(name: &str) -> bool {
        use std::str::FromStr;
        syscalls::x86_64::Sysno::from_str(name).is_ok()
            || syscalls::x86::Sysno::from_str(name).is_ok()
    }

    #[test]
    fn every_name_is_a_syscall_on_x86() {
        let all = ALLOWED
            .iter()
            .chain(BY_CAPABILITY.iter().flat_map(|(_, n)| n.iter()));
        let unknown: Vec<_> = all.filter(|n| !known(n)).collect();
        assert!(unknown.is_empty(), "{unknown:?}");
    }

    #[test]
    fn the_blocked_syscalls_are_not_allowed_unconditionally() {
        let p: LinuxSeccomp = serde_json::from_value(profile(&[])).unwrap();
        let unconditional: Vec<&String> = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.args().is_none())
            .filter(|r| r.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow)
            .flat_map(|r| r.names())
            .collect();
        for blocked in [
            "add_key",
            "keyctl",
            "request_key",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "kexec_file_load",
            "reboot",
            "swapon",
            "swapoff",
            "mount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "open_by_handle_at",
            "personality",
            "settimeofday",
            "clock_settime",
            "acct",
            "quotactl",
            "lookup_dcookie",
            "vm86",
            "vm86old",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "io_uring_setup",
            "fsopen",
            "move_mount",
            "open_tree",
            "socket",
        ] {
            assert!(
                !unconditional.iter().any(|n| *n == blocked),
                "{blocked} allowed"
            );
        }
    }

    #[test]
    fn sys_admin_lifts_the_mount_and_namespace_blocks() {
        let p = profile(&["CAP_SYS_ADMIN".into()]);
        let first = p["syscalls"][0]["names"].as_array().unwrap();
        for n in ["mount", "unshare", "setns", "clone", "clone3"] {
            assert!(first.iter().any(|v| v == n), "{n}");
        }
        let text = p.to_string();
        assert!(
            !text.contains("\"errnoRet\":38"),
            "clone3 is allowed, not ENOSYS"
        );
    }
}
