//! Device nodes and the standard /dev symlinks of a container whose /dev is a fresh tmpfs.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, AtFlags, OFlag};
use nix::sys::stat::{makedev, mknod, mknodat, Mode, SFlag};
use nix::unistd::{chown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::secure_join::secure_join;
use crate::error::{Error, IoContext, Result, SysContext};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Path inside the container.
    pub path: PathBuf,
    /// Character, block or FIFO.
    pub kind: SFlag,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The devices every container gets, as in runc.
pub fn default_devices() -> Vec<Device> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| Device {
        path: path.into(),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Convert a spec device, refusing types mknod cannot make.
pub fn from_spec(d: &LinuxDevice) -> Result<Device> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::sys(
                "mknod",
                format!(
                    "{}: device type \"a\" is only valid in cgroup rules",
                    d.path().display()
                ),
                nix::errno::Errno::EINVAL,
            ))
        }
    };
    let number = |n: i64, what: &str| {
        u64::try_from(n).map_err(|_| {
            Error::sys(
                "mknod",
                format!("{}: negative {what} number {n}", d.path().display()),
                nix::errno::Errno::EINVAL,
            )
        })
    };
    Ok(Device {
        path: d.path().clone(),
        kind,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create `dev` under `rootfs`, replacing whatever was at its path. In a user namespace,
/// where mknod is not allowed, the host's node is bind-mounted instead.
pub fn create(rootfs: &Path, dev: &Device, userns: bool) -> Result<()> {
    let dest = secure_join(rootfs, &dev.path)?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).io("create device directory", parent)?;
    }
    let _ = fs::remove_file(&dest);
    if userns {
        return bind_host_node(dev, &dest);
    }
    mknod(
        &dest,
        dev.kind,
        Mode::from_bits_truncate(dev.mode),
        makedev(dev.major, dev.minor),
    )
    .sys("mknod", dest.display())?;
    chown(
        &dest,
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
    )
    .sys("chown", dest.display())
}

/// Bind the host's node at `dev.path` onto an empty file at `dest`.
fn bind_host_node(dev: &Device, dest: &Path) -> Result<()> {
    fs::File::create(dest).io("create device mount point", dest)?;
    nix::mount::mount(
        Some(&dev.path),
        dest,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .sys(
        "mount",
        format!("bind {} on {}", dev.path.display(), dest.display()),
    )
}

/// A container's own, freshly mounted /dev, held open: its standard nodes and links are
/// made relative to this one descriptor, so the rootfs path is not resolved again for
/// each of them.
pub struct FreshDev(OwnedFd);

impl FreshDev {
    /// Open `rootfs`'s /dev (resolved inside the root, as every mount destination).
    pub fn open(rootfs: &Path) -> Result<FreshDev> {
        let path = secure_join(rootfs, Path::new("/dev"))?;
        open(
            &path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(FreshDev)
        .sys("open", path.display())
    }

    /// The nodes of [`default_devices`]. In a user namespace, where mknod is not
    /// allowed, the host's nodes are bind-mounted instead (through their paths).
    pub fn create_default_nodes(&self, rootfs: &Path, userns: bool) -> Result<()> {
        for dev in default_devices() {
            if userns {
                create(rootfs, &dev, true)?;
                continue;
            }
            let name = dev.path.strip_prefix("/dev").unwrap_or(&dev.path);
            let mode = Mode::from_bits_truncate(dev.mode);
            let number = makedev(dev.major, dev.minor);
            self.replace(name, || mknodat(&self.0, name, dev.kind, mode, number))
                .sys("mknod", dev.path.display())?;
            fchownat(
                &self.0,
                name,
                Some(Uid::from_raw(dev.uid)),
                Some(Gid::from_raw(dev.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .sys("chown", dev.path.display())?;
        }
        Ok(())
    }

    /// The /dev symlinks programs expect: /dev/fd, the stdio names and /dev/ptmx.
    pub fn create_links(&self) -> Result<()> {
        let mut links = vec![
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
            ("pts/ptmx", "ptmx"),
        ];
        if Path::new("/proc/kcore").exists() {
            links.push(("/proc/kcore", "core"));
        }
        for (target, name) in links {
            self.replace(name, || symlinkat(target, &self.0, name))
                .sys("symlink", format!("/dev/{name}"))?;
        }
        Ok(())
    }

    /// Make `name` with `make`, replacing whatever a mount or the image put there.
    fn replace(
        &self,
        name: impl AsRef<Path>,
        make: impl Fn() -> nix::Result<()>,
    ) -> nix::Result<()> {
        match make() {
            Err(Errno::EEXIST) => {
                unlinkat(&self.0, name.as_ref(), UnlinkatFlags::NoRemoveDir)?;
                make()
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn spec_devices_convert() {
        let d = LinuxDeviceBuilder::default()
            .path("/dev/mynull")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(0o640u32)
            .build()
            .unwrap();
        let dev = from_spec(&d).unwrap();
        assert_eq!(
            (dev.kind, dev.major, dev.minor, dev.mode),
            (SFlag::S_IFCHR, 1, 3, 0o640)
        );
        let all = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::A)
            .build()
            .unwrap();
        assert!(from_spec(&all).is_err());
    }
}
