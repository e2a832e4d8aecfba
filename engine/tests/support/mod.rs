//! Shared by the test suites that run real containers through `berth-shim` (the
//! engine's and the API's): the shim binary, a root filesystem made from the host's own
//! binaries, and bundles running in it. Included by path from api/tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The berth-shim binary of this workspace: `cargo test --workspace` builds it beside the
/// test binaries; only when it is missing (a lone `cargo test -p …`) is it built here, with
/// the workspace's own feature set so no dependency is compiled a second time.
pub fn shim_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let bin = dir.join("berth-shim");
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "--workspace", "--bins"])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok && bin.exists(),
                "cannot build berth-shim at {}",
                bin.display()
            );
        }
        bin
    })
    .clone()
}

/// A root filesystem from the host's own binaries and their libraries, built once per
/// scratch directory (so it goes when the directory goes).
pub fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    if root.join("bin/sleep").exists() {
        return root;
    }
    for d in ["proc", "dev", "sys", "tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for bin in ["/bin/sh", "/bin/sleep", "/bin/true"] {
        let real = fs::canonicalize(bin).unwrap();
        let mut files = vec![real.clone(), PathBuf::from(bin)];
        let ldd = Command::new("ldd").arg(&real).output().unwrap();
        for word in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
            if word.starts_with('/') {
                files.push(PathBuf::from(word));
            }
        }
        for f in &files {
            let dest = root.join(f.strip_prefix("/").unwrap());
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            if !dest.exists() {
                fs::copy(f, &dest).unwrap();
            }
        }
    }
    root
}

/// A bundle running `args`, with a cgroup of its own.
pub fn bundle(dir: &Path, id: &str, args: &[&str]) -> PathBuf {
    let mut spec = berth_engine::runtime::default_spec::default_spec(false, 0, 0);
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
    if let Ok(list) = berth_engine::runtime::container::list(&state.join("runtime")) {
        for c in list {
            let _ = c.delete(true);
        }
    }
}
