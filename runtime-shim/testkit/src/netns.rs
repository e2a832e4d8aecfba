//! A network namespace of a test's own: a private "host" for the bridges, addresses,
//! routes and firewall rules a test makes, so that no test touches the machine's own
//! network. It lives at `/run/netns/<name>` (so `ip -n <name>` reaches it) and goes away,
//! with everything made in it, when the value is dropped — also when the test panics.

use std::ffi::OsStr;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where named network namespaces live (as `ip netns` keeps them).
const NETNS_DIR: &str = "/run/netns";

/// Make /run/netns a shared mount point of its own, as `ip netns add` does, before any
/// namespace is mounted in it. Otherwise a later `ip netns add` (a test, a benchmark)
/// stacks a bind mount of the directory over it, hiding the namespaces mounted before:
/// they could then be neither unmounted nor removed.
fn share_netns_dir() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        fs::create_dir_all(NETNS_DIR).unwrap();
        let is_mount_point = crate::runc::mountinfo()
            .iter()
            .any(|m| m.mountpoint == Path::new(NETNS_DIR));
        if !is_mount_point {
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .unwrap_or_else(|e| panic!("bind-mounting {NETNS_DIR} onto itself: {e}"));
        }
        mount(
            None::<&str>,
            NETNS_DIR,
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("making {NETNS_DIR} shared: {e}"));
    });
}

/// A network namespace made for one test, with its loopback up.
pub struct TestNetns {
    name: String,
    path: PathBuf,
}

impl TestNetns {
    /// A fresh namespace named `berth-<prefix>-<pid>-<n>`.
    pub fn new(prefix: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "berth-{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        share_netns_dir();
        let path = Path::new(NETNS_DIR).join(&name);
        fs::File::create(&path).unwrap();
        // From now on Drop removes the file (and the mount, once made).
        let ns = TestNetns { name, path };
        let target = ns.path.clone();
        // unshare(CLONE_NEWNET) changes only the calling thread: a thread of its own.
        std::thread::spawn(move || -> nix::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        })
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("making network namespace {}: {e}", ns.name));
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Its name (`ip -n NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Make `cmd` start inside the namespace.
    pub fn enter(&self, cmd: &mut Command) {
        let ns = fs::File::open(&self.path).unwrap();
        // SAFETY: between fork and exec the child only calls setns(2), which is
        // async-signal-safe, on a descriptor opened before the fork.
        unsafe {
            cmd.pre_exec(move || {
                setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
            });
        }
    }

    /// A command for `program`, run inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.enter(&mut cmd);
        cmd
    }

    /// `ip -n <name> ARGS`, which must succeed; its stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
        assert!(
            out.status.success(),
            "ip -n {} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run `f` on a thread that has entered the namespace (netlink sockets, binds and
    /// connects it makes are the namespace's).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = fs::File::open(&self.path).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("entering {}: {e}", self.name));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

/// Connections to a loopback port inside a [`TestNetns`] carried to the same port on the
/// machine's loopback (a registry the test started there): traffic stays on the two
/// loopbacks. Stops on drop.
pub struct LoopbackForward {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestNetns {
    /// Forward `127.0.0.1:port` inside the namespace to `127.0.0.1:port` outside.
    pub fn forward_loopback(&self, port: u16) -> LoopbackForward {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = self
            .run(|| TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("binding {addr} in {}: {e}", self.name));
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // This thread is in the machine's namespace: its connects reach the outside port.
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inside, _)) => {
                        let _ = inside.set_nonblocking(false);
                        if let Ok(outside) = TcpStream::connect(addr) {
                            splice(inside, outside);
                        }
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        LoopbackForward {
            stop,
            thread: Some(thread),
        }
    }
}

/// Copy both ways until either side closes.
fn splice(a: TcpStream, b: TcpStream) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let pump = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    };
    pump(a, b2);
    pump(b, a2);
}

impl Drop for LoopbackForward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        // Bridges, veths, addresses and firewall rules go with the namespace once no
        // process holds it.
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        let _ = fs::remove_file(&self.path);
    }
}
