//! Finding (or building) the daemon, the shim and the runtime CLI the experiment runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The three binaries of one build.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `berthd`.
    pub berthd: PathBuf,
    /// `berth-shim`.
    pub shim: PathBuf,
    /// `berth-runc` (it writes the default spec).
    pub runc: PathBuf,
}

const NAMES: [&str; 3] = ["berthd", "berth-shim", "berth-runc"];

impl Binaries {
    fn in_dir(dir: &Path) -> Option<Self> {
        let all = NAMES.iter().all(|n| dir.join(n).is_file());
        all.then(|| Binaries {
            berthd: dir.join("berthd"),
            shim: dir.join("berth-shim"),
            runc: dir.join("berth-runc"),
        })
    }

    /// Copy them into `dir`, so a concurrent `cargo build` cannot swap a binary under a
    /// running experiment.
    pub fn copy_to(&self, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        for src in [&self.berthd, &self.shim, &self.runc] {
            let name = src.file_name().unwrap_or_default();
            let dest = dir.join(name);
            std::fs::copy(src, &dest).map_err(|e| Error::io("copying", src, e))?;
        }
        Binaries::in_dir(dir).ok_or_else(|| Error::Binaries(format!("copies in {}", dir.display())))
    }
}

/// The binaries in `dir` if given; else beside this executable (target/release or
/// target/debug); else built with `cargo build --release` in this workspace.
pub fn locate(dir: Option<&Path>) -> Result<Binaries> {
    if let Some(dir) = dir {
        return Binaries::in_dir(dir).ok_or_else(|| {
            Error::Binaries(format!(
                "--bin-dir {}: needs {}",
                dir.display(),
                NAMES.join(", ")
            ))
        });
    }
    let here = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    if let Some(found) = here.as_deref().and_then(Binaries::in_dir) {
        return Ok(found);
    }
    build_release()
}

/// `cargo build --release -p berthd -p berth-runc -p berth-shim` in the workspace this harness
/// was built from.
fn build_release() -> Result<Binaries> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if !workspace.join("Cargo.toml").is_file() {
        return Err(Error::Binaries(format!(
            "berthd, berth-shim and berth-runc are not beside this executable and the \
             workspace {} is gone: pass --bin-dir",
            workspace.display()
        )));
    }
    eprintln!("berth-loadtest: building berthd, berth-shim and berth-runc (cargo build --release)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "berthd",
            "-p",
            "berth-runc",
            "-p",
            "berth-shim",
        ])
        .current_dir(&workspace)
        .status()
        .map_err(|e| Error::Program {
            program: "cargo".into(),
            message: e.to_string(),
        })?;
    if !status.success() {
        return Err(Error::Program {
            program: "cargo build --release".into(),
            message: format!("failed ({status})"),
        });
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let dir = target.join("release");
    Binaries::in_dir(&dir)
        .ok_or_else(|| Error::Binaries(format!("cargo built, yet {} lacks them", dir.display())))
}
