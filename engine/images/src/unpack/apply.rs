//! Tar entries written under the layer root: each kind of entry with as few syscalls as
//! it needs (the hot path of a pull), ownership before modes (chown clears setuid),
//! capabilities after chown (chown clears them too), directory times last (creating
//! children changes them).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use super::dirs::{self, DirError, Dirs, EntryPath};
use super::{LayerStats, UnpackError};

/// The copy buffer for file contents.
const COPY_BUF: usize = 128 * 1024;
/// overlayfs's mark of a directory that hides what lower layers have in it.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The prefix of the xattrs overlayfs reads.
const OVERLAY_XATTRS: &[u8] = b"trusted.overlay.";

/// An entry's attributes, from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Applies a layer's entries under one root.
pub struct Applier {
    dirs: Dirs,
    buf: Vec<u8>,
    /// Permission bits the umask strips at creation: a chmod restores them.
    umask: u32,
    euid: u32,
    egid: u32,
    /// The setgid directories of this layer ("" for a setgid root): what is created in
    /// one inherits its group (and a directory its setgid bit), so chown and chmod then.
    setgid_dirs: HashSet<Vec<u8>>,
    /// Whether the current entry's parent is one of them.
    in_setgid: bool,
    dir_times: Vec<(EntryPath, Timespec)>,
    /// Whether any entry replaced an earlier one (then directory times are checked).
    replaced: bool,
    stats: LayerStats,
}

impl Applier {
    /// Over the existing directory `dest`.
    pub fn new(dest: &Path) -> Result<Applier, UnpackError> {
        let dest_err = |e: Errno| UnpackError::Dest {
            path: dest.to_path_buf(),
            source: e.into(),
        };
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = rustix::fs::open(dest, flags, Mode::empty()).map_err(dest_err)?;
        let st = rustix::fs::fstat(&root).map_err(dest_err)?;
        Ok(Applier {
            dirs: Dirs::new(root),
            buf: vec![0; COPY_BUF],
            umask: current_umask(),
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
            setgid_dirs: if st.st_mode & 0o2000 != 0 {
                HashSet::from([Vec::new()])
            } else {
                HashSet::new()
            },
            in_setgid: false,
            dir_times: Vec::new(),
            replaced: false,
            stats: LayerStats::default(),
        })
    }

    /// Applies one entry.
    pub fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let path = match dirs::normalize(&raw) {
            None => return Err(escape(&raw, None)),
            Some(None) => return Ok(()), // the root itself: the layer dir is ours already
            Some(Some(p)) => p,
        };
        let ctx = Ctx { raw: &raw };
        let meta = read_meta(&mut entry).map_err(|e| ctx.read(e))?;
        self.stats.files += 1;
        if let Some(target) = path.name.strip_prefix(b".wh.") {
            return self.whiteout(&ctx, &path.parent, target);
        }
        self.in_setgid = !self.setgid_dirs.is_empty() && self.setgid_dirs.contains(&path.parent);
        let parent = self.parent(&ctx, &path.parent)?;
        let parent = parent.as_fd();
        let name = path.name.as_slice();
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&ctx, &mut entry, parent, name, &meta)
            }
            EntryType::Directory => {
                self.dir(&ctx, parent, name, &meta)?;
                if meta.mode & 0o2000 != 0 {
                    self.setgid_dirs.insert(joined(&path));
                }
                self.dir_times.push((path, meta.mtime));
                Ok(())
            }
            EntryType::Symlink => self.symlink(&ctx, &entry, parent, name, &meta),
            EntryType::Link => self.hardlink(&ctx, &entry, parent, &path),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.node(&ctx, &entry, parent, name, &meta)
            }
            other => Err(UnpackError::Unsupported {
                entry: ctx.entry(),
                kind: format!("{:?}", other),
            }),
        }
    }

    /// Sets the directories' times, now that nothing more is created in them.
    pub fn finish(mut self) -> Result<LayerStats, UnpackError> {
        let times = std::mem::take(&mut self.dir_times);
        for (path, mtime) in times.iter().rev() {
            let Ok(parent) = self.dirs.get(&path.parent, false) else {
                continue; // removed by a later entry
            };
            // A later entry may have put something else there: leave that alone.
            if self.replaced && !is_dir_at(parent.as_fd(), &path.name) {
                continue;
            }
            let ts = stamps(*mtime);
            match rustix::fs::utimensat(&*parent, &path.name, &ts, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(sys(&joined(path), "utimensat", e)),
            }
        }
        Ok(self.stats)
    }

    fn parent(&mut self, ctx: &Ctx<'_>, parent: &[u8]) -> Result<Rc<OwnedFd>, UnpackError> {
        self.dirs.get(parent, true).map_err(|e| ctx.dir(e))
    }

    fn file<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        entry: &mut tar::Entry<'_, R>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(meta.mode & 0o777);
        let open = || rustix::fs::openat(parent, name, flags, mode);
        let fd = self.replacing(ctx, parent, name, "openat", open)?;
        let mut file = File::from(fd);
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ctx.read(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| ctx.sys("write", e))?;
            self.stats.bytes += n as u64;
        }
        if self.needs_chown(meta) {
            rustix::fs::fchown(&file, uid(meta), gid(meta)).map_err(|e| ctx.errno("fchown", e))?;
        }
        if self.needs_chmod(meta) {
            let mode = Mode::from_raw_mode(meta.mode & 0o7777);
            rustix::fs::fchmod(&file, mode).map_err(|e| ctx.errno("fchmod", e))?;
        }
        set_xattrs(ctx, file.as_fd(), meta)?;
        rustix::fs::futimens(&file, &stamps(meta.mtime)).map_err(|e| ctx.errno("futimens", e))
    }

    fn dir(
        &mut self,
        ctx: &Ctx<'_>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let mode = Mode::from_raw_mode(meta.mode & 0o777);
        let existed = match rustix::fs::mkdirat(parent, name, mode) {
            Ok(()) => false,
            Err(Errno::EXIST) if self.clear(ctx, parent, name, true)? => true,
            Err(Errno::EXIST) => {
                rustix::fs::mkdirat(parent, name, mode).map_err(|e| ctx.errno("mkdirat", e))?;
                false
            }
            Err(e) => return Err(ctx.errno("mkdirat", e)),
        };
        self.owner_and_mode_at(ctx, parent, name, meta, existed)?;
        if !meta.xattrs.is_empty() {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let dir = rustix::fs::openat(parent, name, flags, Mode::empty())
                .map_err(|e| ctx.errno("openat", e))?;
            set_xattrs(ctx, dir.as_fd(), meta)?;
        }
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        entry: &tar::Entry<'_, R>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let target = entry.link_name_bytes().unwrap_or_default();
        let target = OsStr::from_bytes(&target);
        let make = || rustix::fs::symlinkat(target, parent, name);
        self.replacing(ctx, parent, name, "symlinkat", make)?;
        if self.needs_chown(meta) {
            rustix::fs::chownat(
                parent,
                name,
                uid(meta),
                gid(meta),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| ctx.errno("fchownat", e))?;
        }
        if !meta.xattrs.is_empty() {
            self.xattrs_by_path(ctx, parent, name, meta)?;
        }
        rustix::fs::utimensat(parent, name, &stamps(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ctx.errno("utimensat", e))
    }

    /// A hard link to an earlier entry of this layer, looked up beneath the root.
    fn hardlink<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        entry: &tar::Entry<'_, R>,
        parent: BorrowedFd<'_>,
        path: &EntryPath,
    ) -> Result<(), UnpackError> {
        let raw_target = entry.link_name_bytes().unwrap_or_default().into_owned();
        let via = || Some(String::from_utf8_lossy(&raw_target).into_owned());
        let Some(Some(target)) = dirs::normalize(&raw_target) else {
            return Err(escape(ctx.raw, via()));
        };
        let tdir = match self.dirs.get(&target.parent, false) {
            Err(DirError::Escape) => return Err(escape(ctx.raw, via())),
            Err(DirError::Sys(call, e)) => return Err(ctx.sys(call, e)),
            Ok(d) => d,
        };
        if target == *path {
            return Ok(()); // a link to itself: already there
        }
        let name = path.name.as_slice();
        let link = || rustix::fs::linkat(&*tdir, &target.name, parent, name, AtFlags::empty());
        self.replacing(ctx, parent, name, "linkat", link)
    }

    /// Char and block devices and fifos.
    fn node<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        entry: &tar::Entry<'_, R>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let h = entry.header();
        let kind = match h.entry_type() {
            EntryType::Char => FileType::CharacterDevice,
            EntryType::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        let major = h.device_major().ok().flatten().unwrap_or(0);
        let minor = h.device_minor().ok().flatten().unwrap_or(0);
        let dev = rustix::fs::makedev(major, minor);
        let mode = Mode::from_raw_mode(meta.mode & 0o777);
        let make = || rustix::fs::mknodat(parent, name, kind, mode, dev);
        self.replacing(ctx, parent, name, "mknodat", make)?;
        self.owner_and_mode_at(ctx, parent, name, meta, false)?;
        if !meta.xattrs.is_empty() {
            self.xattrs_by_path(ctx, parent, name, meta)?;
        }
        rustix::fs::utimensat(parent, name, &stamps(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ctx.errno("utimensat", e))
    }

    /// `.wh..wh..opq` marks the parent opaque; `.wh.NAME` becomes a 0/0 char device
    /// NAME; other `.wh..wh.` names (aufs bookkeeping) are dropped.
    fn whiteout(&mut self, ctx: &Ctx<'_>, parent: &[u8], target: &[u8]) -> Result<(), UnpackError> {
        let dir = self.parent(ctx, parent)?;
        if target == b".wh..opq" {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(&*dir, ".", flags, Mode::empty())
                .map_err(|e| ctx.errno("openat", e))?;
            return rustix::fs::fsetxattr(&fd, OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(|e| ctx.errno("fsetxattr", e));
        }
        if target.starts_with(b".wh.") {
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
            return Err(escape(ctx.raw, None));
        }
        let dir = dir.as_fd();
        let make = || rustix::fs::mknodat(dir, target, FileType::CharacterDevice, Mode::empty(), 0);
        self.replacing(ctx, dir, target, "mknodat", make)
    }

    /// Runs `make` (one creating syscall); if the name is taken by an earlier entry,
    /// removes that (docker's rule: a later entry replaces an earlier one) and retries.
    fn replacing<T>(
        &mut self,
        ctx: &Ctx<'_>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        call: &'static str,
        make: impl Fn() -> Result<T, Errno>,
    ) -> Result<T, UnpackError> {
        match make() {
            Err(Errno::EXIST) => {
                self.clear(ctx, parent, name, false)?;
                make().map_err(|e| ctx.errno(call, e))
            }
            other => other.map_err(|e| ctx.errno(call, e)),
        }
    }

    /// Removes what `name` is, unless it is a directory and `keep_dir` is set: then says
    /// so (true) and leaves it, as a directory entry over a directory only updates it.
    fn clear(
        &mut self,
        ctx: &Ctx<'_>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        keep_dir: bool,
    ) -> Result<bool, UnpackError> {
        let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ctx.errno("fstatat", e))?;
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(true);
        }
        // What goes may have been (or led to) a directory the cache holds open.
        self.dirs.invalidate();
        self.replaced = true;
        if !is_dir {
            rustix::fs::unlinkat(parent, name, AtFlags::empty())
                .map_err(|e| ctx.errno("unlinkat", e))?;
            return Ok(false);
        }
        // The tree is removed through the verified parent's descriptor; std's
        // remove_dir_all does not follow symlinks inside it.
        let mut path = PathBuf::from(format!("/proc/self/fd/{}", raw_fd(parent)));
        path.push(OsStr::from_bytes(name));
        std::fs::remove_dir_all(&path).map_err(|e| ctx.sys("remove_dir_all", e))?;
        Ok(false)
    }

    fn needs_chown(&self, meta: &Meta) -> bool {
        self.in_setgid || meta.uid != self.euid || meta.gid != self.egid
    }

    /// Whether creation left other bits than the entry's: the umask cut some, or there
    /// are setuid/setgid/sticky bits (which creation and chown do not keep).
    fn needs_chmod(&self, meta: &Meta) -> bool {
        self.in_setgid || meta.mode & 0o7000 != 0 || meta.mode & self.umask != 0
    }

    /// Owner, then mode, of what `name` is (not a symlink: no chmod through one); both
    /// always for something that was there before (`existed`).
    fn owner_and_mode_at(
        &self,
        ctx: &Ctx<'_>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        meta: &Meta,
        existed: bool,
    ) -> Result<(), UnpackError> {
        if existed || self.needs_chown(meta) {
            rustix::fs::chownat(
                parent,
                name,
                uid(meta),
                gid(meta),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| ctx.errno("fchownat", e))?;
        }
        if existed || self.needs_chmod(meta) {
            let mode = Mode::from_raw_mode(meta.mode & 0o7777);
            rustix::fs::chmodat(parent, name, mode, AtFlags::empty())
                .map_err(|e| ctx.errno("fchmodat", e))?;
        }
        Ok(())
    }

    /// xattrs of something that cannot be opened for them (a symlink, a device), by a
    /// path anchored at the verified parent's descriptor.
    fn xattrs_by_path(
        &self,
        ctx: &Ctx<'_>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let mut path = PathBuf::from(format!("/proc/self/fd/{}", raw_fd(parent)));
        path.push(OsStr::from_bytes(name));
        for (key, value) in &meta.xattrs {
            let set =
                rustix::fs::lsetxattr(&path, OsStr::from_bytes(key), value, XattrFlags::empty());
            xattr_result(ctx, "lsetxattr", set)?;
        }
        Ok(())
    }
}

/// The entry being applied, for errors.
struct Ctx<'a> {
    raw: &'a [u8],
}

impl Ctx<'_> {
    fn entry(&self) -> String {
        String::from_utf8_lossy(self.raw).into_owned()
    }

    fn sys(&self, syscall: &'static str, source: io::Error) -> UnpackError {
        UnpackError::Syscall {
            entry: self.entry(),
            syscall,
            source,
        }
    }

    fn errno(&self, syscall: &'static str, e: Errno) -> UnpackError {
        self.sys(syscall, e.into())
    }

    fn read(&self, e: io::Error) -> UnpackError {
        UnpackError::from_read(e)
    }

    fn dir(&self, e: DirError) -> UnpackError {
        match e {
            DirError::Escape => escape(self.raw, None),
            DirError::Sys(call, e) => self.sys(call, e),
        }
    }
}

fn escape(raw: &[u8], via: Option<String>) -> UnpackError {
    UnpackError::Escape {
        entry: String::from_utf8_lossy(raw).into_owned(),
        via,
    }
}

fn sys(raw: &[u8], syscall: &'static str, e: Errno) -> UnpackError {
    Ctx { raw }.errno(syscall, e)
}

/// The entry's whole path, relative to the root.
fn joined(path: &EntryPath) -> Vec<u8> {
    if path.parent.is_empty() {
        path.name.clone()
    } else {
        [&path.parent[..], &path.name].join(&b'/')
    }
}

fn is_dir_at(parent: BorrowedFd<'_>, name: &[u8]) -> bool {
    rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

fn raw_fd(fd: BorrowedFd<'_>) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

fn set_xattrs(ctx: &Ctx<'_>, fd: BorrowedFd<'_>, meta: &Meta) -> Result<(), UnpackError> {
    for (key, value) in &meta.xattrs {
        let set = rustix::fs::fsetxattr(fd, OsStr::from_bytes(key), value, XattrFlags::empty());
        xattr_result(ctx, "fsetxattr", set)?;
    }
    Ok(())
}

/// As docker: an xattr the filesystem does not support, or may not be set here, is
/// skipped; any other failure fails the layer.
fn xattr_result(
    ctx: &Ctx<'_>,
    call: &'static str,
    r: Result<(), Errno>,
) -> Result<(), UnpackError> {
    match r {
        Ok(()) | Err(Errno::NOTSUP) | Err(Errno::PERM) => Ok(()),
        Err(e) => Err(ctx.errno(call, e)),
    }
}

fn uid(meta: &Meta) -> Option<Uid> {
    Some(Uid::from_raw(meta.uid))
}

fn gid(meta: &Meta) -> Option<Gid> {
    Some(Gid::from_raw(meta.gid))
}

fn stamps(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

/// The header's attributes, overridden by PAX records (large ids, sub-second times),
/// and the `SCHILY.xattr.*` records as xattrs.
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode()?,
        uid: id(h.uid()?)?,
        gid: id(h.gid()?)?,
        mtime: Timespec {
            tv_sec: h.mtime()? as i64,
            tv_nsec: 0,
        },
        xattrs: Vec::new(),
    };
    let Some(exts) = entry.pax_extensions()? else {
        return Ok(meta);
    };
    for ext in exts {
        let ext = ext?;
        let value = ext.value_bytes();
        match ext.key_bytes() {
            b"uid" => meta.uid = id(parse_num(value)?)?,
            b"gid" => meta.gid = id(parse_num(value)?)?,
            b"mtime" => meta.mtime = parse_time(value)?,
            key => {
                // overlayfs's own xattrs come only from whiteouts: a layer that set
                // them itself could redirect lookups or fake metadata-only copies.
                let name = key.strip_prefix(b"SCHILY.xattr.");
                if let Some(name) = name.filter(|n| !n.starts_with(OVERLAY_XATTRS)) {
                    meta.xattrs.push((name.to_vec(), value.to_vec()));
                }
            }
        }
    }
    Ok(meta)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad {what} in tar header"),
    )
}

fn id(n: u64) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| bad("uid/gid"))
}

fn parse_num(v: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("number"))
}

/// A PAX time: seconds, optionally a fraction (`1700000000.123456789`).
fn parse_time(v: &[u8]) -> io::Result<Timespec> {
    let s = std::str::from_utf8(v).map_err(|_| bad("mtime"))?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().map_err(|_| bad("mtime"))?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        let n: i64 = digits.parse().map_err(|_| bad("mtime"))?;
        n * 10i64.pow(9 - digits.len() as u32)
    };
    Ok(Timespec { tv_sec, tv_nsec })
}

/// The process's umask, read without changing it (`umask(2)` can only set it, and the
/// daemon has other threads); all bits when unknown, so a chmod always follows.
fn current_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .unwrap_or(0o7777)
}
