//! What the loadtest's integration tests share: a private TMPDIR per harness run, the
//! workspace's binaries, the harness command and its JSON report.

#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// A private TMPDIR for one harness run (so its temp dir can be found); removed on
/// drop, also when the test fails.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// `<tmp>/berth-lt-<name>-<pid>`, made empty.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("berth-lt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Whatever the harness left in its TMPDIR.
    pub fn left(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .flatten()
            .map(|e| e.path().display().to_string())
            .collect()
    }

    /// The harness left nothing in its TMPDIR.
    pub fn assert_empty(&self) {
        assert!(self.left().is_empty(), "files left: {:?}", self.left());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A network namespace the harness failed to remove is still bound under the dir.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let needle = self.0.display().to_string();
        for point in mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&needle))
        {
            let _ = Command::new("umount").args(["-l", point]).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The directory of this build's berthd, berth-shim and berth-runc. `cargo test
/// --workspace` builds them beside the harness; only when one is missing (a lone `cargo
/// test -p berth-loadtest`) are they built here, with the workspace's feature set, so no
/// dependency is compiled a second time.
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(build_bins).clone()
}

fn build_bins() -> PathBuf {
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_berth-loadtest"));
    let dir = harness.parent().unwrap().to_path_buf();
    if ["berthd", "berth-shim", "berth-runc"]
        .iter()
        .all(|b| dir.join(b).exists())
    {
        return dir;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--workspace", "--bins"]);
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let ok = build
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cannot build berthd, berth-shim and berth-runc");
    dir
}

/// The harness with this build's binaries, a 120 s limit and `args`, its TMPDIR the
/// scratch directory.
pub fn harness(scratch: &Scratch, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth-loadtest"));
    cmd.arg("--bin-dir")
        .arg(bin_dir())
        .args(["--timeout", "120"])
        .args(args)
        .env("TMPDIR", &scratch.0)
        .stdin(Stdio::null());
    cmd
}

/// The JSON report on stdout (`--json`).
pub fn json_of(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
