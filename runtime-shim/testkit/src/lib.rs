//! Berth's test kit, a dev-dependency of every crate whose tests run real containers:
//! the workspace's binaries, a root filesystem made from the host's own binaries,
//! bundles running in it, and the clean-up of whatever a test left under a state
//! directory. May depend on the runtime library and the floor-0 helpers (berth-procfs,
//! berth-host-rootfs: the root filesystem builder); nothing depends on it but
//! tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod daemon;
mod host_rootfs;
pub mod http;
pub mod image;
pub mod netns;
pub mod registry;
pub mod runc;

/// The /proc reader, for tests that look at processes (parents, sessions, states).
pub use berth_procfs as procfs;
/// The runtime library, for tests that check what it made (its cgroup paths, say).
pub use berth_runtime as runtime;

/// The workspace's binaries (berth-runc, berth-shim, berthd, berth): `cargo test
/// --workspace` builds them beside the test binaries; only when one is missing (a lone
/// `cargo test -p …`) are they built here, with the workspace's own feature set so no
/// dependency is compiled a second time.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<bool> = OnceLock::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = dir.join(name);
    if !bin.exists() {
        let ok = *BUILT.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            Command::new(cargo)
                .args(["build", "--workspace", "--bins"])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(ok && bin.exists(), "cannot build {}", bin.display());
    }
    bin
}

/// The berth-shim binary of this workspace.
pub fn shim_binary() -> PathBuf {
    binary("berth-shim")
}

/// A root filesystem from the host's own binaries and their libraries
/// ([`runc::build_rootfs`]), built once per scratch directory (so it goes when the
/// directory goes).
pub fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    if root.join("bin/sleep").exists() {
        return root;
    }
    // Built aside and renamed into place: callers racing on one directory each see a
    // whole root filesystem, and the loser's copy goes.
    fs::create_dir_all(dir).unwrap();
    let aside = tempfile::Builder::new()
        .prefix(".rootfs-")
        .tempdir_in(dir)
        .unwrap();
    host_rootfs::build_rootfs(&aside.path().join("rootfs"));
    let _ = fs::rename(aside.path().join("rootfs"), &root);
    root
}

/// A bundle running `args`, with a cgroup of its own.
pub fn bundle(dir: &Path, id: &str, args: &[&str]) -> PathBuf {
    let mut spec = berth_runtime::default_spec::default_spec(false, 0, 0);
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(args);
    spec["root"]["path"] = serde_json::json!(rootfs(dir));
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{id}"));
    let b = dir.join("bundles").join(id);
    fs::create_dir_all(&b).unwrap();
    fs::write(b.join("config.json"), spec.to_string()).unwrap();
    b
}

/// Stop what a test left under the state directory `state`: SIGKILL every shim that
/// wrote its pid there, then remove (with force) every container of its runtime root.
/// For guards that clean up also when a test fails.
pub fn stop_everything_in(state: &Path) {
    for entry in fs::read_dir(state.join("shims"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let pid = fs::read_to_string(entry.path().join("shim.pid"));
        if let Some(pid) = pid.ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    if let Ok(list) = berth_runtime::container::list(&state.join("runtime")) {
        for c in list {
            let _ = c.delete(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rootfs_per_directory_even_when_callers_race() {
        let top = tempfile::tempdir().unwrap();
        // A scratch directory not made yet, as the engine's tests pass.
        let dir = &top.path().join("scratch");
        let roots: Vec<PathBuf> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..3).map(|_| s.spawn(|| rootfs(dir))).collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(roots.iter().all(|r| *r == dir.join("rootfs")));
        for bin in ["bin/sh", "bin/sleep", "bin/true", "usr/bin/sh"] {
            assert!(roots[0].join(bin).exists(), "{bin}");
        }
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["rootfs"], "the losers' copies are gone");
    }
}
