//! `--network`: the run's private network namespace. Its berthd, bridges, veths,
//! addresses and firewall rules live in it, never in the machine's own namespace; it is
//! a file under the run's temp dir (a bind mount of a thread's namespace), removed —
//! with everything made in it — when the value is dropped.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// A network namespace of the run's own, with its loopback up.
pub struct RunNetns {
    path: PathBuf,
    mounted: bool,
}

impl RunNetns {
    /// Make a fresh namespace and pin it at `path` (a file the harness creates).
    pub fn new(path: &Path) -> Result<Self> {
        File::create(path).map_err(|e| Error::io("creating", path, e))?;
        let mut ns = RunNetns {
            path: path.to_path_buf(),
            mounted: false,
        };
        let target = cstring(path)?;
        // unshare(CLONE_NEWNET) changes only the calling thread: a thread of its own,
        // which pins its namespace onto the file and sets its loopback up.
        std::thread::spawn(move || pin_new_namespace(&target))
            .join()
            .map_err(|_| Error::Network("the namespace thread panicked".into()))?
            .map_err(|e| {
                Error::Network(format!("making a namespace at {}: {e}", path.display()))
            })?;
        ns.mounted = true;
        Ok(ns)
    }

    /// Where it is pinned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `program args` inside the namespace; its stdout, or why it failed.
    pub fn output(&self, program: &str, args: &[&str]) -> std::result::Result<String, String> {
        let mut cmd = Command::new(program);
        cmd.args(args);
        enter(&mut cmd, &self.path).map_err(|e| e.to_string())?;
        let out = cmd
            .output()
            .map_err(|e| format!("running {program}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} {}: {} {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What berthd left in the namespace after every container of the run was
    /// deleted: veth interfaces, and firewall rules naming a container of the run.
    pub fn leftovers(&self, prefix: &str) -> Vec<String> {
        let mut left = Vec::new();
        match self.output("ip", &["-o", "link", "show", "type", "veth"]) {
            Ok(text) => {
                let veths: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.split(':').nth(1).map(str::trim))
                    .collect();
                if !veths.is_empty() {
                    left.push(format!(
                        "{} veth interface(s) in the run's namespace, e.g. {}",
                        veths.len(),
                        veths[0]
                    ));
                }
            }
            Err(e) => left.push(format!("cannot list veth interfaces: {e}")),
        }
        // No iptables at all: berthd could have made no rule either.
        if let Some(save) = find_program("iptables-save") {
            match self.output(&save.to_string_lossy(), &[]) {
                Ok(text) => {
                    let rules = rules_naming(&text, prefix);
                    if !rules.is_empty() {
                        left.push(format!(
                            "{} iptables rule(s) naming the run's containers, e.g. {}",
                            rules.len(),
                            rules[0]
                        ));
                    }
                }
                Err(e) => left.push(format!("cannot read the firewall rules: {e}")),
            }
        }
        left
    }

    /// Unmount and remove it (what Drop does), saying what failed.
    pub fn remove(mut self) -> std::result::Result<(), String> {
        self.teardown()
    }

    fn teardown(&mut self) -> std::result::Result<(), String> {
        if self.mounted {
            let c = cstring(&self.path).map_err(|e| e.to_string())?;
            // SAFETY: umount2 with a valid NUL-terminated path.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(format!("unmounting {}: {e}", self.path.display()));
            }
            self.mounted = false;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("removing {}: {e}", self.path.display())),
        }
    }
}

impl Drop for RunNetns {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("berth-loadtest: {e}");
        }
    }
}

/// Make `cmd` start inside the network namespace pinned at `path`.
pub fn enter(cmd: &mut Command, path: &Path) -> Result<()> {
    let ns = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    // SAFETY: between fork and exec the child only calls setns(2), which is
    // async-signal-safe, on a descriptor opened before the fork (moved into the
    // closure, so it stays open until the command is dropped).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    Ok(())
}

/// The rules of `iptables-save` output that name a container whose id starts with
/// `prefix` (every rule berthd or a CNI plugin adds for a container names its id).
fn rules_naming<'a>(save: &'a str, prefix: &str) -> Vec<&'a str> {
    save.lines()
        .filter(|l| l.starts_with("-A ") && l.contains(prefix))
        .collect()
}

/// `program` in `$PATH` or the usual sbin directories.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Network(format!("{}: a NUL in the path", path.display())))
}

/// On a thread of its own: a new network namespace, bound onto `target`, loopback up.
fn pin_new_namespace(target: &CString) -> std::io::Result<()> {
    // SAFETY: unshare(2) on this thread only (the thread ends right after).
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let source = c"/proc/thread-self/ns/net";
    // SAFETY: a bind mount between two valid NUL-terminated paths.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    loopback_up()
}

/// `ip link set lo up` in the calling thread's namespace, by SIOCSIFFLAGS.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the union's flags member, just filled by the kernel.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rules_naming_the_run_count() {
        let save = "*nat\n:BERTH-C-0011 - [0:0]\n\
            -A BERTH-PREROUTING -m comment --comment berth:ctr:lt-ab-3 -j BERTH-C-0011\n\
            -A BERTH-POSTROUTING -m comment --comment berth:net:berth0 -j MASQUERADE\n\
            -A CNI-HOSTPORT-DNAT -m comment --comment \"dnat name: \\\"n\\\" id: \\\"lt-ab-12\\\"\" -j X\n\
            COMMIT\n";
        let rules = rules_naming(save, "lt-ab-");
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert!(rules_naming(save, "lt-cd-").is_empty());
    }

    #[test]
    fn a_veth_left_in_the_namespace_is_found_and_removal_takes_it_away() {
        let dir = tempfile::tempdir().unwrap();
        let ns = RunNetns::new(&dir.path().join("netns")).unwrap();
        let lo = ns.output("ip", &["-o", "link", "show", "lo"]).unwrap();
        assert!(lo.contains(",UP"), "{lo}");
        assert!(ns.leftovers("lt-ab-").is_empty());
        // Made inside the run's namespace only.
        ns.output(
            "ip",
            &[
                "link", "add", "vlt0", "type", "veth", "peer", "name", "vlt1",
            ],
        )
        .unwrap();
        let left = ns.leftovers("lt-ab-");
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].starts_with("2 veth interface(s)"), "{left:?}");
        let path = ns.path().to_path_buf();
        ns.remove().unwrap();
        assert!(!path.exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&*path.to_string_lossy()), "{mounts}");
    }
}
