//! The one mountinfo parser of Berth: the lines of `/proc/<pid>/mountinfo` as mounts
//! (proc(5)). The cgroup code, the rootfs cleanup, the tests and the loadtest all read
//! mounts here.

use std::io;
use std::path::PathBuf;

/// One line of mountinfo:
/// `36 35 98:0 /root /mount/point rw,noatime master:1 - ext4 /dev/sda1 rw,errors=continue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Field 4: the directory of the file system shown at the mount point.
    pub root: PathBuf,
    /// Field 5: where it is mounted.
    pub mountpoint: PathBuf,
    /// Field 6: per-mount options (`rw,nosuid`).
    pub mount_options: String,
    /// The optional fields (`shared:1 master:2`), space-separated; empty if none.
    pub optional: String,
    /// The file-system type (`ext4`, `cgroup2`).
    pub fstype: String,
    /// The mount source (`/dev/sda1`, `proc`).
    pub source: String,
    /// Per-superblock options (`rw,cpu,cpuacct`); empty if absent.
    pub super_options: String,
}

/// The mounts in mountinfo `text`, in file order (parents before children). Lines that
/// do not parse are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

/// The calling process's mounts.
pub fn read_self() -> io::Result<Vec<MountInfo>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let (before, after) = line.split_once(" - ")?;
    let before: Vec<&str> = before.split(' ').collect();
    let mut after = after.split(' ');
    let (root, mountpoint, mount_options) = (before.get(3)?, before.get(4)?, before.get(5)?);
    Some(MountInfo {
        root: PathBuf::from(unescape(root)),
        mountpoint: PathBuf::from(unescape(mountpoint)),
        mount_options: (*mount_options).to_owned(),
        optional: before[6..].join(" "),
        fstype: after.next()?.to_owned(),
        source: unescape(after.next()?),
        super_options: after.next().unwrap_or("").to_owned(),
    })
}

/// Undo mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TEXT: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
35 22 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 master:3 - cgroup cgroup rw,cpu,cpuacct
40 22 0:31 /sub /my\\040dir\\134x rw - tmpfs my\\040src
not a mount line
41 22 0:32 / /short - tmpfs
";

    #[test]
    fn every_field_of_a_line() {
        let mounts = parse(TEXT);
        assert_eq!(mounts.len(), 3, "{mounts:#?}");
        let cg = &mounts[1];
        assert_eq!(cg.root, PathBuf::from("/"));
        assert_eq!(cg.mountpoint, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cg.mount_options, "rw,nosuid");
        assert_eq!(cg.optional, "shared:9 master:3");
        assert_eq!(cg.fstype, "cgroup");
        assert_eq!(cg.source, "cgroup");
        assert_eq!(cg.super_options, "rw,cpu,cpuacct");
    }

    #[test]
    fn escapes_are_undone_and_missing_parts_are_empty() {
        let m = &parse(TEXT)[2];
        assert_eq!(m.root, PathBuf::from("/sub"));
        assert_eq!(m.mountpoint, PathBuf::from("/my dir\\x"));
        assert_eq!(m.optional, "");
        assert_eq!(m.source, "my src");
        assert_eq!(m.super_options, "");
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape(r"/trailing\"), r"/trailing\");
        assert_eq!(unescape(r"/x\9yz"), r"/x\9yz");
        assert_eq!(unescape(r"a\04"), r"a\04");
    }

    #[test]
    fn this_process_has_a_root_mount() {
        let mounts = read_self().unwrap();
        assert!(mounts.iter().any(|m| m.mountpoint == Path::new("/")));
    }
}
