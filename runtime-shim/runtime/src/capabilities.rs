//! `process.capabilities`: the five capability sets of the container's process, and
//! `process.noNewPrivileges`.
//!
//! The sets are applied in two halves around the switch to the container's user, as runc
//! does: the bounding set is dropped while the process is still root (dropping needs
//! CAP_SETPCAP), "keep capabilities" carries the permitted set across `setresuid`, and
//! afterwards effective, permitted and inheritable are set exactly and the ambient set is
//! raised. [`before_user_switch`] and [`after_user_switch`] wrap those steps for a
//! `process` object; the single steps are public for `exec`, which applies the same.
//!
//! What the spec says (config.md, "Linux Process"): names are those of capabilities(7);
//! a value that cannot be mapped to a kernel interface, or cannot be granted, MUST be
//! logged as a warning and SHOULD NOT fail the container. So:
//! - a name that is no capability at all (`CAP_FOO`) already fails parsing config.json:
//!   oci-spec refuses it with "no variant for CAP_FOO", under the field's JSON path;
//! - a capability this kernel does not know (numbered past `cap_last_cap`), or one the
//!   runtime cannot grant (not in its own permitted set, an effective one that is not
//!   permitted, an inheritable one outside the bounding set, an ambient one not both
//!   permitted and inheritable) is left out with a warning, as runc does;
//! - a system call that fails nonetheless is an error naming the set and capabilities.
//!
//! `process.capabilities` absent: the spec says nothing; runc (libcontainer/capabilities
//! `New(nil)`) then leaves every set as it is. Berth does the same: a root process keeps
//! the runtime's capabilities, and for any other user the kernel's own rule applies — the
//! switch to a non-zero uid clears them.
//!
//! Keep in mind when checking a container from inside: execve recomputes the sets. A
//! process running as uid 0 gets permitted = effective = bounding ∪ inheritable after
//! exec (file capabilities count as all-ones for root); any other user keeps, for a file
//! without capabilities, only its ambient set. That is the kernel's rule, and runc's too.

use std::fmt;

use caps::{CapSet, CapsHashSet};
use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process};

/// Where the kernel publishes the highest capability number it knows.
const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";

/// A capability step that failed.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    /// A prctl(2) on one capability failed.
    #[error("prctl {op} {cap}: {errno}")]
    Prctl {
        /// The prctl operation, e.g. `PR_CAPBSET_DROP`.
        op: &'static str,
        /// The capability's name.
        cap: String,
        /// What the kernel said.
        errno: Errno,
    },
    /// Setting a whole set failed.
    #[error("set {set} capabilities to {caps}: {reason}")]
    Set {
        /// `effective`, `permitted`, `inheritable` or `ambient`.
        set: &'static str,
        /// The capabilities the set was to hold.
        caps: Names,
        /// What failed.
        reason: String,
    },
    /// A process-wide flag could not be set.
    #[error("prctl {op}: {errno}")]
    Flag {
        /// The prctl operation, e.g. `PR_SET_NO_NEW_PRIVS`.
        op: &'static str,
        /// What the kernel said.
        errno: Errno,
    },
}

/// Capability names for messages: `[CAP_CHOWN, CAP_KILL]`, sorted by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names(Vec<caps::Capability>);

impl Names {
    fn of(set: &CapsHashSet) -> Self {
        let mut caps: Vec<_> = set.iter().copied().collect();
        caps.sort_by_key(|c| c.index());
        Names(caps)
    }
}

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, cap) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{cap}")?;
        }
        f.write_str("]")
    }
}

/// The first half, while still root: drop the bounding set to `process.capabilities`
/// and keep the permitted set across the coming uid switch. Does nothing when
/// `process.capabilities` is absent (see the module notes).
pub fn before_user_switch(process: &Process) -> Result<(), CapError> {
    match process.capabilities() {
        Some(caps) => {
            drop_bounding(caps)?;
            keep_across_setuid()
        }
        None => Ok(()),
    }
}

/// The second half, right after the uid switch: set effective, permitted, inheritable
/// and ambient to `process.capabilities`. Does nothing when it is absent.
pub fn after_user_switch(process: &Process) -> Result<(), CapError> {
    match process.capabilities() {
        Some(caps) => apply_sets(caps),
        None => Ok(()),
    }
}

/// Drop the bounding set to `caps.bounding` (absent: empty): PR_CAPBSET_DROP for every
/// capability the kernel knows that is not listed — numbers past what this crate names
/// included, so a capability newer than the runtime is dropped too. Call while still
/// root (dropping needs CAP_SETPCAP), before the uid switch.
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<(), CapError> {
    let last = last_cap();
    let keep = mask(&known(caps.bounding(), "bounding", last));
    for index in 0..=last {
        if keep & (1u64 << index) != 0 {
            continue;
        }
        // SAFETY: PR_CAPBSET_READ/DROP take an integer and touch no memory of ours.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(index)) };
        match present {
            1 => {}
            0 => continue,
            // A failed read (a seccomp profile denying prctl, say) must not pass for
            // "not in the set": the capability would be kept silently.
            _ => {
                return Err(CapError::Prctl {
                    op: "PR_CAPBSET_READ",
                    cap: name(index),
                    errno: Errno::last(),
                })
            }
        }
        // SAFETY: as above.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index)) };
        if rc != 0 {
            return Err(CapError::Prctl {
                op: "PR_CAPBSET_DROP",
                cap: name(index),
                errno: Errno::last(),
            });
        }
    }
    Ok(())
}

/// Keep the permitted set across the uid switch: PR_SET_KEEPCAPS, before setresuid.
/// (The switch still clears the effective set; [`apply_sets`] sets it again.)
pub fn keep_across_setuid() -> Result<(), CapError> {
    nix::sys::prctl::set_keepcaps(true).map_err(|errno| CapError::Flag {
        op: "PR_SET_KEEPCAPS",
        errno,
    })
}

/// After the uid switch: set effective, permitted and inheritable to exactly what
/// `caps` lists (less what cannot be granted, with a warning), then clear the ambient
/// set and raise the listed ambient capabilities, and clear "keep capabilities".
pub fn apply_sets(caps: &LinuxCapabilities) -> Result<(), CapError> {
    let last = last_cap();
    let wanted = Sets {
        effective: known(caps.effective(), "effective", last),
        permitted: known(caps.permitted(), "permitted", last),
        inheritable: known(caps.inheritable(), "inheritable", last),
        ambient: known(caps.ambient(), "ambient", last),
    };
    let current = Current {
        effective: read(CapSet::Effective, "effective")?,
        permitted: read(CapSet::Permitted, "permitted")?,
        inheritable: read(CapSet::Inheritable, "inheritable")?,
        bounding: read(CapSet::Bounding, "bounding")?,
    };
    let (sets, warnings) = grantable(wanted, &current);
    for warning in &warnings {
        tracing::warn!("capabilities: {warning}");
    }

    // One set per capset(2), in the order that keeps every step legal: inheritable while
    // the old effective set (CAP_SETPCAP) and permitted set still allow it, effective
    // before permitted so that effective is always a subset of permitted.
    set(CapSet::Inheritable, "inheritable", &sets.inheritable)?;
    set(CapSet::Effective, "effective", &sets.effective)?;
    set(CapSet::Permitted, "permitted", &sets.permitted)?;

    if let Err(e) = caps::clear(None, CapSet::Ambient) {
        // A kernel without ambient capabilities (before 4.3) has none to clear.
        if !sets.ambient.is_empty() {
            return Err(set_error("ambient", &sets.ambient, e));
        }
    }
    for cap in &sets.ambient {
        caps::raise(None, CapSet::Ambient, *cap)
            .map_err(|e| set_error("ambient", &CapsHashSet::from([*cap]), e))?;
    }
    nix::sys::prctl::set_keepcaps(false).map_err(|errno| CapError::Flag {
        op: "PR_SET_KEEPCAPS",
        errno,
    })
}

/// PR_SET_NO_NEW_PRIVS: execve never grants privileges again (setuid bits and file
/// capabilities are ignored). For `process.noNewPrivileges`; it must come before seccomp,
/// which an unprivileged process may only load once it is set.
pub fn set_no_new_privileges() -> Result<(), CapError> {
    nix::sys::prctl::set_no_new_privs().map_err(|errno| CapError::Flag {
        op: "PR_SET_NO_NEW_PRIVS",
        errno,
    })
}

/// The four sets [`apply_sets`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sets {
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

/// The calling thread's sets before [`apply_sets`].
#[derive(Debug, Clone)]
struct Current {
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    bounding: CapsHashSet,
}

/// Narrow `wanted` to what capset(2) and PR_CAP_AMBIENT_RAISE will grant from `current`
/// (the kernel's rules, security/commoncap.c), with a warning for everything left out.
fn grantable(wanted: Sets, current: &Current) -> (Sets, Vec<String>) {
    let mut warnings = Vec::new();
    let mut keep = |set: CapsHashSet, allowed: &CapsHashSet, what: &str| -> CapsHashSet {
        let (kept, dropped): (CapsHashSet, CapsHashSet) =
            set.into_iter().partition(|c| allowed.contains(c));
        if !dropped.is_empty() {
            warnings.push(format!("ignoring {}: {what}", Names::of(&dropped)));
        }
        kept
    };
    // New permitted ⊆ old permitted.
    let permitted = keep(
        wanted.permitted,
        &current.permitted,
        "permitted, but the runtime does not hold them",
    );
    // New effective ⊆ new permitted.
    let effective = keep(wanted.effective, &permitted, "effective, but not permitted");
    // New inheritable ⊆ old inheritable ∪ bounding, and without CAP_SETPCAP in the old
    // effective set also ⊆ old inheritable ∪ old permitted.
    let mut allowed: CapsHashSet = current
        .inheritable
        .union(&current.bounding)
        .copied()
        .collect();
    if !current.effective.contains(&caps::Capability::CAP_SETPCAP) {
        let held: CapsHashSet = current
            .inheritable
            .union(&current.permitted)
            .copied()
            .collect();
        allowed.retain(|c| held.contains(c));
    }
    let inheritable = keep(
        wanted.inheritable,
        &allowed,
        "inheritable, but outside the bounding set or not held by the runtime",
    );
    // Ambient ⊆ permitted ∩ inheritable.
    let both: CapsHashSet = permitted.intersection(&inheritable).copied().collect();
    let ambient = keep(
        wanted.ambient,
        &both,
        "ambient, but not both permitted and inheritable",
    );
    let sets = Sets {
        effective,
        permitted,
        inheritable,
        ambient,
    };
    (sets, warnings)
}

/// The capabilities of one spec set that this kernel knows; the others are left out
/// with a warning. An absent set is empty.
fn known(set: &Option<Capabilities>, which: &str, last: u8) -> CapsHashSet {
    let mut out = CapsHashSet::new();
    let mut unknown = CapsHashSet::new();
    for cap in set.iter().flatten() {
        let cap = to_kernel(*cap);
        if cap.index() <= last {
            out.insert(cap);
        } else {
            unknown.insert(cap);
        }
    }
    if !unknown.is_empty() {
        tracing::warn!(
            "capabilities: ignoring {} in the {which} set: unknown to this kernel",
            Names::of(&unknown)
        );
    }
    out
}

/// The highest capability number the running kernel knows: `cap_last_cap`, or, where
/// /proc is not there (inside a container before or without its proc mount), the last
/// number PR_CAPBSET_READ accepts.
fn last_cap() -> u8 {
    if let Some(last) = std::fs::read_to_string(CAP_LAST_CAP)
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
    {
        // Sets are 64 bits wide; a kernel with more would need a wider ABI anyway.
        return last.min(63);
    }
    probe_last_cap()
}

/// The last capability number PR_CAPBSET_READ accepts (it fails with EINVAL past it).
fn probe_last_cap() -> u8 {
    let mut last = 0;
    for index in 0..64u8 {
        // SAFETY: PR_CAPBSET_READ takes an integer and touches no memory of ours.
        if unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(index)) } < 0 {
            break;
        }
        last = index;
    }
    last
}

/// The bit mask of a set, as /proc/<pid>/status shows it.
fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

/// The name of capability number `index`, for messages.
fn name(index: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == index)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("capability {index}"))
}

/// Read one of the calling thread's sets.
fn read(set: CapSet, which: &'static str) -> Result<CapsHashSet, CapError> {
    caps::read(None, set).map_err(|e| CapError::Set {
        set: which,
        caps: Names(Vec::new()),
        reason: format!("cannot read it: {e}"),
    })
}

/// Set one of the calling thread's sets.
fn set(set: CapSet, which: &'static str, value: &CapsHashSet) -> Result<(), CapError> {
    caps::set(None, set, value).map_err(|e| set_error(which, value, e))
}

fn set_error(which: &'static str, value: &CapsHashSet, e: caps::errors::CapsError) -> CapError {
    CapError::Set {
        set: which,
        caps: Names::of(value),
        reason: e.to_string(),
    }
}

/// The kernel's capability for an OCI one (both enums name exactly capabilities(7)).
fn to_kernel(cap: Capability) -> caps::Capability {
    use caps::Capability as K;
    match cap {
        Capability::AuditControl => K::CAP_AUDIT_CONTROL,
        Capability::AuditRead => K::CAP_AUDIT_READ,
        Capability::AuditWrite => K::CAP_AUDIT_WRITE,
        Capability::BlockSuspend => K::CAP_BLOCK_SUSPEND,
        Capability::Bpf => K::CAP_BPF,
        Capability::CheckpointRestore => K::CAP_CHECKPOINT_RESTORE,
        Capability::Chown => K::CAP_CHOWN,
        Capability::DacOverride => K::CAP_DAC_OVERRIDE,
        Capability::DacReadSearch => K::CAP_DAC_READ_SEARCH,
        Capability::Fowner => K::CAP_FOWNER,
        Capability::Fsetid => K::CAP_FSETID,
        Capability::IpcLock => K::CAP_IPC_LOCK,
        Capability::IpcOwner => K::CAP_IPC_OWNER,
        Capability::Kill => K::CAP_KILL,
        Capability::Lease => K::CAP_LEASE,
        Capability::LinuxImmutable => K::CAP_LINUX_IMMUTABLE,
        Capability::MacAdmin => K::CAP_MAC_ADMIN,
        Capability::MacOverride => K::CAP_MAC_OVERRIDE,
        Capability::Mknod => K::CAP_MKNOD,
        Capability::NetAdmin => K::CAP_NET_ADMIN,
        Capability::NetBindService => K::CAP_NET_BIND_SERVICE,
        Capability::NetBroadcast => K::CAP_NET_BROADCAST,
        Capability::NetRaw => K::CAP_NET_RAW,
        Capability::Perfmon => K::CAP_PERFMON,
        Capability::Setgid => K::CAP_SETGID,
        Capability::Setfcap => K::CAP_SETFCAP,
        Capability::Setpcap => K::CAP_SETPCAP,
        Capability::Setuid => K::CAP_SETUID,
        Capability::SysAdmin => K::CAP_SYS_ADMIN,
        Capability::SysBoot => K::CAP_SYS_BOOT,
        Capability::SysChroot => K::CAP_SYS_CHROOT,
        Capability::SysModule => K::CAP_SYS_MODULE,
        Capability::SysNice => K::CAP_SYS_NICE,
        Capability::SysPacct => K::CAP_SYS_PACCT,
        Capability::SysPtrace => K::CAP_SYS_PTRACE,
        Capability::SysRawio => K::CAP_SYS_RAWIO,
        Capability::SysResource => K::CAP_SYS_RESOURCE,
        Capability::SysTime => K::CAP_SYS_TIME,
        Capability::SysTtyConfig => K::CAP_SYS_TTY_CONFIG,
        Capability::Syslog => K::CAP_SYSLOG,
        Capability::WakeAlarm => K::CAP_WAKE_ALARM,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::{Read, Write};

    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, pipe, setresgid, setresuid, ForkResult, Gid, Uid};

    use super::*;

    const CHOWN: u64 = 1 << 0;
    const KILL: u64 = 1 << 5;
    const NET_BIND_SERVICE: u64 = 1 << 10;
    const SETPCAP: u64 = 1 << 8;

    fn root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        eprintln!("skipping: capability tests need root");
        false
    }

    /// Run `f` in a forked child, since capability changes are per process and cannot be
    /// undone. The child reports a failure's text through a pipe and exits non-zero.
    fn in_child(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        let (read_end, write_end) = pipe().unwrap();
        // SAFETY: the child only makes system calls, reads /proc and allocates (glibc's
        // malloc is fork-safe), then leaves with _exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                drop(read_end);
                let code = match f() {
                    Ok(()) => 0,
                    Err(message) => {
                        let _ = std::fs::File::from(write_end).write_all(message.as_bytes());
                        1
                    }
                };
                // SAFETY: leaves the child without running the test harness's teardown.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(write_end);
                let mut message = String::new();
                std::fs::File::from(read_end)
                    .read_to_string(&mut message)
                    .unwrap();
                match waitpid(child, None).unwrap() {
                    WaitStatus::Exited(_, 0) => Ok(()),
                    other => Err(format!("child {other:?}: {message}")),
                }
            }
        }
    }

    /// CapInh, CapPrm, CapEff, CapBnd and CapAmb of the calling process.
    fn status() -> HashMap<String, u64> {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.starts_with("Cap")
                    .then(|| (key.to_string(), u64::from_str_radix(value.trim(), 16).ok()))
            })
            .filter_map(|(k, v)| Some((k, v?)))
            .collect()
    }

    fn expect(key: &str, want: u64) -> Result<(), String> {
        let got = status()[key];
        if got == want {
            Ok(())
        } else {
            Err(format!("{key} is {got:#x}, expected {want:#x}"))
        }
    }

    /// Sets as config.json gives them: a set left out is absent (the oci-spec builder
    /// would fill it with its own defaults instead).
    fn spec(json: &str) -> LinuxCapabilities {
        serde_json::from_str(json).unwrap()
    }

    fn switch_to(uid: u32) -> Result<(), String> {
        setresgid(Gid::from_raw(uid), Gid::from_raw(uid), Gid::from_raw(uid))
            .map_err(|e| format!("setresgid: {e}"))?;
        setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))
            .map_err(|e| format!("setresuid: {e}"))
    }

    #[test]
    fn every_oci_name_maps_to_the_kernel_capability_of_that_name() {
        for kernel in caps::all() {
            let oci: Capability = serde_json::from_str(&format!("\"{kernel}\"")).unwrap();
            assert_eq!(to_kernel(oci), kernel);
        }
    }

    #[test]
    fn unknown_names_fail_the_spec_and_name_the_capability() {
        let config = r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
                "capabilities": {"bounding": ["CAP_KILL", "CAP_NO_SUCH_THING"]}}}"#;
        let err = crate::bundle::parse_spec(config.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CAP_NO_SUCH_THING"), "{err}");
        assert!(err.contains("process.capabilities.bounding"), "{err}");
    }

    #[test]
    fn probing_finds_the_kernels_last_capability() {
        let published: u8 = std::fs::read_to_string(CAP_LAST_CAP)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(probe_last_cap(), published);
        assert_eq!(last_cap(), published);
    }

    #[test]
    fn grantable_leaves_out_what_the_kernel_would_refuse() {
        use caps::Capability as K;
        let current = Current {
            effective: CapsHashSet::new(),
            permitted: CapsHashSet::from([K::CAP_KILL, K::CAP_CHOWN, K::CAP_NET_RAW]),
            inheritable: CapsHashSet::new(),
            bounding: CapsHashSet::from([K::CAP_KILL, K::CAP_CHOWN, K::CAP_SYS_ADMIN]),
        };
        let wanted = Sets {
            effective: CapsHashSet::from([K::CAP_KILL, K::CAP_SYS_TIME]),
            permitted: CapsHashSet::from([K::CAP_KILL, K::CAP_CHOWN, K::CAP_SYS_TIME]),
            // SYS_ADMIN is in the bounding set but not held; NET_RAW is held but not in
            // the bounding set.
            inheritable: CapsHashSet::from([K::CAP_CHOWN, K::CAP_SYS_ADMIN, K::CAP_NET_RAW]),
            ambient: CapsHashSet::from([K::CAP_CHOWN, K::CAP_KILL]),
        };
        let (sets, warnings) = grantable(wanted, &current);
        assert_eq!(
            sets,
            Sets {
                effective: CapsHashSet::from([K::CAP_KILL]),
                permitted: CapsHashSet::from([K::CAP_KILL, K::CAP_CHOWN]),
                inheritable: CapsHashSet::from([K::CAP_CHOWN]),
                ambient: CapsHashSet::from([K::CAP_CHOWN]),
            }
        );
        let all = warnings.join("\n");
        assert!(
            all.contains("[CAP_SYS_TIME]: permitted, but the runtime"),
            "{all}"
        );
        assert!(
            all.contains("[CAP_SYS_TIME]: effective, but not permitted"),
            "{all}"
        );
        assert!(
            all.contains("[CAP_NET_RAW, CAP_SYS_ADMIN]: inheritable"),
            "{all}"
        );
        assert!(all.contains("[CAP_KILL]: ambient"), "{all}");

        // With CAP_SETPCAP in effective, the inheritable set may take anything in the
        // bounding set.
        let current = Current {
            effective: CapsHashSet::from([K::CAP_SETPCAP]),
            ..current
        };
        let wanted = Sets {
            effective: CapsHashSet::new(),
            permitted: CapsHashSet::new(),
            inheritable: CapsHashSet::from([K::CAP_SYS_ADMIN]),
            ambient: CapsHashSet::new(),
        };
        let (sets, warnings) = grantable(wanted, &current);
        assert_eq!(sets.inheritable, CapsHashSet::from([K::CAP_SYS_ADMIN]));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn drops_the_bounding_set_to_the_listed_capabilities() {
        if !root() {
            return;
        }
        let caps = spec(r#"{"bounding": ["CAP_KILL", "CAP_CHOWN"]}"#);
        in_child(|| {
            drop_bounding(&caps).map_err(|e| e.to_string())?;
            expect("CapBnd", KILL | CHOWN)
        })
        .unwrap();
    }

    #[test]
    fn sets_every_set_exactly_across_a_switch_to_another_user() {
        if !root() {
            return;
        }
        let caps = spec(
            r#"{"bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "inheritable": ["CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_NET_BIND_SERVICE"]}"#,
        );
        in_child(|| {
            drop_bounding(&caps).map_err(|e| e.to_string())?;
            keep_across_setuid().map_err(|e| e.to_string())?;
            switch_to(1000)?;
            apply_sets(&caps).map_err(|e| e.to_string())?;
            expect("CapBnd", KILL | CHOWN | NET_BIND_SERVICE)?;
            expect("CapEff", KILL)?;
            expect("CapPrm", KILL | NET_BIND_SERVICE)?;
            expect("CapInh", NET_BIND_SERVICE)?;
            expect("CapAmb", NET_BIND_SERVICE)?;
            match nix::sys::prctl::get_keepcaps() {
                Ok(false) => Ok(()),
                other => Err(format!("keepcaps after apply_sets: {other:?}")),
            }
        })
        .unwrap();
    }

    #[test]
    fn a_refused_drop_names_the_capability() {
        if !root() {
            return;
        }
        let caps = spec(r#"{"bounding": []}"#);
        in_child(|| {
            switch_to(1000)?;
            match drop_bounding(&caps) {
                Err(e)
                    if e.to_string()
                        == "prctl PR_CAPBSET_DROP CAP_CHOWN: EPERM: Operation not permitted" =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        })
        .unwrap();
    }

    #[test]
    fn without_keepcaps_the_switch_loses_everything() {
        if !root() {
            return;
        }
        // The control for the test above: it is keep_across_setuid that carries the
        // permitted set over.
        in_child(|| {
            switch_to(1000)?;
            expect("CapPrm", 0)?;
            expect("CapEff", 0)
        })
        .unwrap();
    }

    #[test]
    fn root_gets_exactly_the_listed_sets_and_ungrantable_ones_only_warn() {
        if !root() {
            return;
        }
        // CAP_SYS_ADMIN is effective but not permitted, CAP_SYS_TIME inheritable but
        // outside the bounding set: both are left out with a warning, not an error.
        let caps = spec(
            r#"{"bounding": ["CAP_KILL", "CAP_SETPCAP"],
                "effective": ["CAP_KILL", "CAP_SYS_ADMIN"],
                "permitted": ["CAP_KILL", "CAP_SETPCAP"],
                "inheritable": ["CAP_KILL", "CAP_SYS_TIME"]}"#,
        );
        in_child(|| {
            drop_bounding(&caps).map_err(|e| e.to_string())?;
            apply_sets(&caps).map_err(|e| e.to_string())?;
            expect("CapBnd", KILL | SETPCAP)?;
            expect("CapEff", KILL)?;
            expect("CapPrm", KILL | SETPCAP)?;
            expect("CapInh", KILL)?;
            expect("CapAmb", 0)
        })
        .unwrap();
    }

    #[test]
    fn absent_capabilities_leave_the_process_alone() {
        if !root() {
            return;
        }
        let process: Process =
            serde_json::from_str(r#"{"cwd": "/", "user": {"uid": 0, "gid": 0}}"#).unwrap();
        assert!(process.capabilities().is_none());
        let before = status();
        in_child(|| {
            before_user_switch(&process).map_err(|e| e.to_string())?;
            after_user_switch(&process).map_err(|e| e.to_string())?;
            for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
                expect(key, before[key])?;
            }
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn no_new_privileges_shows_in_status() {
        in_child(|| {
            set_no_new_privileges().map_err(|e| e.to_string())?;
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            if status
                .lines()
                .any(|l| l.replace(' ', "") == "NoNewPrivs:\t1")
            {
                Ok(())
            } else {
                Err("NoNewPrivs is not 1".into())
            }
        })
        .unwrap();
    }
}
