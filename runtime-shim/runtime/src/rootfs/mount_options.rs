//! The `options` of an OCI mount, split into mount(2) flags, propagation changes and the
//! filesystem-specific data string.

use nix::mount::MsFlags;

/// A mount's options, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself.
    pub flags: MsFlags,
    /// Propagation changes, applied one by one after the mount.
    pub propagation: Vec<MsFlags>,
    /// Options mount(2) does not know, passed to the filesystem (e.g. `mode=755`).
    pub data: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
        }
    }
}

impl MountOptions {
    /// Decode a list of options as runc does.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Self {
        let mut out = MountOptions::default();
        let mut data = Vec::new();
        for opt in options {
            let opt = opt.as_ref();
            if let Some((clear, flag)) = flag_of(opt) {
                if clear {
                    out.flags.remove(flag);
                } else {
                    out.flags.insert(flag);
                }
            } else if let Some(p) = propagation_of(opt) {
                out.propagation.push(p);
            } else if !opt.is_empty() && !ignored(opt) {
                data.push(opt);
            }
        }
        out.data = data.join(",");
        out
    }

    /// True for bind and rbind mounts.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Every option name this runtime understands (flags and propagation), for `features`.
pub const KNOWN: &[&str] = &[
    "defaults",
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "mand",
    "nomand",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "remount",
    "bind",
    "rbind",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "tmpcopyup",
    "rro",
    "rrw",
];

/// Options that are mount(2) flags: (true if the option clears the flag, the flag).
fn flag_of(opt: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match opt {
        "defaults" => (false, F::empty()),
        "ro" => (false, F::MS_RDONLY),
        "rw" => (true, F::MS_RDONLY),
        "nosuid" => (false, F::MS_NOSUID),
        "suid" => (true, F::MS_NOSUID),
        "nodev" => (false, F::MS_NODEV),
        "dev" => (true, F::MS_NODEV),
        "noexec" => (false, F::MS_NOEXEC),
        "exec" => (true, F::MS_NOEXEC),
        "sync" => (false, F::MS_SYNCHRONOUS),
        "async" => (true, F::MS_SYNCHRONOUS),
        "dirsync" => (false, F::MS_DIRSYNC),
        "mand" => (false, F::MS_MANDLOCK),
        "nomand" => (true, F::MS_MANDLOCK),
        "noatime" => (false, F::MS_NOATIME),
        "atime" => (true, F::MS_NOATIME),
        "nodiratime" => (false, F::MS_NODIRATIME),
        "diratime" => (true, F::MS_NODIRATIME),
        "relatime" => (false, F::MS_RELATIME),
        "norelatime" => (true, F::MS_RELATIME),
        "strictatime" => (false, F::MS_STRICTATIME),
        "nostrictatime" => (true, F::MS_STRICTATIME),
        "remount" => (false, F::MS_REMOUNT),
        "bind" => (false, F::MS_BIND),
        "rbind" => (false, F::MS_BIND | F::MS_REC),
        _ => return None,
    })
}

/// Options that change propagation.
pub fn propagation_of(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

/// runc extensions that are not for the kernel and that Berth does not act on.
fn ignored(opt: &str) -> bool {
    matches!(opt, "tmpcopyup" | "rro" | "rrw")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_propagation_and_data() {
        let o = MountOptions::parse(&["rbind", "ro", "nosuid", "rprivate", "mode=755", "size=64k"]);
        assert!(o.is_bind());
        assert!(o
            .flags
            .contains(MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.data, "mode=755,size=64k");
    }

    #[test]
    fn every_known_option_is_understood() {
        for opt in KNOWN {
            assert!(
                flag_of(opt).is_some() || propagation_of(opt).is_some() || ignored(opt),
                "{opt}"
            );
        }
    }

    #[test]
    fn later_options_win() {
        let o = MountOptions::parse(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }
}
