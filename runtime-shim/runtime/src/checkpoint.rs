//! `checkpoint` and `restore` through the `criu` binary, as runc drives it: criu dumps the
//! container's process tree into an image directory and restores it later, in the same
//! root filesystem and a fresh cgroup. Before either, `criu check` must pass: where criu
//! is missing or cannot work on this kernel, the error says so instead of a half-dump.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::Spec;

use crate::bundle::Bundle;
use crate::cgroups::Cgroup;
use crate::container::{Container, CreateOptions, Rollback};
use crate::error::{Error, IoContext, Result};
use crate::rootfs::mount_options::MountOptions;
use crate::state::Status;
use crate::state::{self, ContainerDir, Record};
use crate::{id, process_info};

/// Options shared by checkpoint and restore.
#[derive(Debug, Clone)]
pub struct CriuOptions {
    /// The criu binary (a name looked up on PATH, or a path).
    pub criu: PathBuf,
    /// Where the images are written (checkpoint) or read (restore).
    pub image_path: PathBuf,
    /// Where criu puts its logs and work files (default: the image directory).
    pub work_path: Option<PathBuf>,
    /// Keep the container running after the dump.
    pub leave_running: bool,
    /// Allow established TCP connections in the dump.
    pub tcp_established: bool,
    /// Allow external unix sockets.
    pub ext_unix_sk: bool,
    /// Allow a process attached to a terminal (implied by `process.terminal`).
    pub shell_job: bool,
    /// Dump and restore file locks.
    pub file_locks: bool,
    /// Namespaces to create empty on restore (e.g. `network`).
    pub empty_ns: Vec<String>,
    /// Images of a previous (pre-)dump, for incremental dumps.
    pub parent_path: Option<PathBuf>,
    /// Dump memory only, leaving the container running.
    pub pre_dump: bool,
    /// Send the memory pages to a criu page server at ADDRESS:PORT.
    pub page_server: Option<String>,
    /// criu's cgroup mode (soft, full, strict, ignore).
    pub manage_cgroups_mode: Option<String>,
}

impl CriuOptions {
    /// The options common to dump and restore.
    fn common_args(&self, spec: &Spec) -> Vec<String> {
        let mut args = Vec::new();
        match &self.manage_cgroups_mode {
            Some(mode) => args.push(format!("--manage-cgroups={mode}")),
            None => args.push("--manage-cgroups".into()),
        }
        for (on, flag) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.file_locks, "--file-locks"),
            (
                self.shell_job || spec.process().as_ref().and_then(|p| p.terminal()) == Some(true),
                "--shell-job",
            ),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        args
    }
}

/// Why criu cannot be used here, or `Ok` if `criu check` passes.
pub fn check(criu: &Path) -> Result<()> {
    let out = Command::new(criu).arg("check").output().map_err(|e| {
        Error::CriuUnavailable(format!(
            "cannot run {}: {e} (is criu installed?)",
            criu.display()
        ))
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let reason = text
        .lines()
        .rev()
        .find(|l| l.contains("Error"))
        .or_else(|| text.lines().last())
        .unwrap_or("no output")
        .trim()
        .to_string();
    Err(Error::CriuUnavailable(format!(
        "`criu check` fails on this host: {reason}"
    )))
}

/// The `--external`/`--ext-mount-map` arguments for the spec's bind mounts: criu cannot
/// dump a mount whose source lies outside the container, so each is named as external
/// (on dump) and mapped back to its source (on restore).
fn external_mounts(spec: &Spec, restore: bool) -> Vec<String> {
    let mut args = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        if !opts.is_bind() && m.typ().as_deref() != Some("bind") {
            continue;
        }
        let dest = m.destination().display().to_string();
        if restore {
            let source = m
                .source()
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default();
            args.push("--ext-mount-map".to_string());
            args.push(format!("{dest}:{source}"));
        } else {
            args.push("--external".to_string());
            args.push(format!("mnt[{dest}]:{dest}"));
        }
    }
    args
}

/// The arguments of `criu dump` for a container.
fn dump_args(pid: i32, rootfs: &Path, spec: &Spec, opts: &CriuOptions) -> Vec<String> {
    let work = opts.work_path.as_ref().unwrap_or(&opts.image_path);
    let mut args = vec![
        if opts.pre_dump { "pre-dump" } else { "dump" }.to_string(),
        "--tree".into(),
        pid.to_string(),
        "--images-dir".into(),
        opts.image_path.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--log-file".into(),
        "dump.log".into(),
        "-v4".into(),
        "--root".into(),
        rootfs.display().to_string(),
    ];
    args.extend(opts.common_args(spec));
    if opts.leave_running {
        args.push("--leave-running".into());
    }
    if let Some(parent) = &opts.parent_path {
        args.push("--prev-images-dir".into());
        args.push(parent.display().to_string());
    }
    if let Some(server) = &opts.page_server {
        let (address, port) = server.rsplit_once(':').unwrap_or((server.as_str(), ""));
        args.extend([
            "--page-server".into(),
            "--address".into(),
            address.to_string(),
        ]);
        if !port.is_empty() {
            args.extend(["--port".into(), port.to_string()]);
        }
    }
    args.extend(external_mounts(spec, false));
    args
}

/// The arguments of `criu restore` for a container.
pub(crate) fn restore_args(
    rootfs: &Path,
    spec: &Spec,
    pid_file: &Path,
    opts: &CriuOptions,
) -> Vec<String> {
    let work = opts.work_path.as_ref().unwrap_or(&opts.image_path);
    let mut args = vec![
        "restore".to_string(),
        "--images-dir".into(),
        opts.image_path.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--log-file".into(),
        "restore.log".into(),
        "-v4".into(),
        "--root".into(),
        rootfs.display().to_string(),
        "--restore-detached".into(),
        "--pidfile".into(),
        pid_file.display().to_string(),
    ];
    args.extend(opts.common_args(spec));
    for ns in &opts.empty_ns {
        args.push("--empty-ns".into());
        args.push(if ns == "network" {
            "net".into()
        } else {
            ns.clone()
        });
    }
    args.extend(external_mounts(spec, true));
    args
}

/// Run criu with `args`; on failure the error carries the last lines of its log.
pub(crate) fn run_criu(opts: &CriuOptions, args: &[String], log: &str) -> Result<()> {
    let status = Command::new(&opts.criu)
        .args(args)
        .status()
        .io("run", &opts.criu)?;
    if status.success() {
        return Ok(());
    }
    let log = opts
        .work_path
        .as_ref()
        .unwrap_or(&opts.image_path)
        .join(log);
    let tail = std::fs::read_to_string(&log)
        .map(|t| t.lines().rev().take(3).collect::<Vec<_>>().join(" | "))
        .unwrap_or_default();
    Err(Error::CriuFailed(format!(
        "criu {} {status}: {tail} (log: {})",
        args[0],
        log.display()
    )))
}

impl Container {
    /// Dump the container with criu. Unless `leave_running`, the container is stopped and
    /// removed afterwards (its image can be restored under the same or another id).
    pub fn checkpoint(self, opts: &CriuOptions) -> Result<()> {
        let status = self.status();
        // containerd pauses a container before it checkpoints it.
        if !matches!(status, Status::Running | Status::Paused) {
            return Err(Error::WrongState {
                id: self.id().to_string(),
                action: "checkpoint",
                status,
            });
        }
        check(&opts.criu)?;
        std::fs::create_dir_all(&opts.image_path).io("create image directory", &opts.image_path)?;
        let bundle = self.spec_bundle()?;
        let args = dump_args(self.pid(), &self.record().rootfs, &bundle.spec, opts);
        run_criu(opts, &args, "dump.log")?;
        if !opts.leave_running {
            self.delete(true)?;
        }
        Ok(())
    }
}

/// Restore a container from a criu image into the bundle's root filesystem and a fresh
/// cgroup, under `opts.id`. On error nothing is left behind.
pub fn restore(opts: &CreateOptions, criu: &CriuOptions) -> Result<Container> {
    id::validate(&opts.id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    check(&criu.criu)?;
    let linux = bundle.spec.linux().as_ref();
    let mut cgroup = Cgroup::new(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &opts.id,
        &opts.root,
    )?;
    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    let _lock = dir.lock()?;
    let pid_file = dir.path().join("restore.pid");
    let mut rollback = Rollback {
        dir: Some(dir),
        cgroup: None,
        init: None,
        shared_mounts: None,
    };
    cgroup.create(linux.and_then(|l| l.resources().as_ref()))?;
    rollback.cgroup = Some(&cgroup);
    run_criu(
        criu,
        &restore_args(&bundle.rootfs, &bundle.spec, &pid_file, criu),
        "restore.log",
    )?;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .io("read", &pid_file)?
        .trim()
        .parse()
        .map_err(|_| Error::CriuFailed(format!("criu wrote no pid to {}", pid_file.display())))?;
    rollback.init = Some(nix::unistd::Pid::from_raw(pid));
    cgroup.add_process(pid)?;
    let record = Record {
        id: opts.id.clone(),
        pid,
        pid_start_time: process_info::start_time(pid).ok_or_else(|| Error::InitLost {
            id: opts.id.clone(),
            reason: "exited right after restore".into(),
        })?,
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        hooks: bundle.spec.hooks().clone(),
        no_process: false,
        shared_mounts: None,
    };
    rollback.dir.as_ref().expect("armed").write(&record)?;
    if let Some(path) = &opts.pid_file {
        crate::container::write_pid_file(path, pid)?;
    }
    Ok(Container::from_parts(rollback.disarm(), record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        serde_json::from_str(
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"terminal":true},
                "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
                          {"destination":"/data","type":"bind","source":"/srv/data","options":["rbind","ro"]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn dump_names_bind_mounts_external() {
        let opts = CriuOptions {
            criu: "criu".into(),
            image_path: "/img".into(),
            work_path: None,
            leave_running: true,
            tcp_established: false,
            ext_unix_sk: false,
            shell_job: false,
            file_locks: true,
            empty_ns: vec!["network".into()],
            parent_path: None,
            pre_dump: false,
            page_server: None,
            manage_cgroups_mode: None,
        };
        let args = dump_args(42, Path::new("/rootfs"), &spec(), &opts);
        let joined = args.join(" ");
        assert!(
            joined.starts_with("dump --tree 42 --images-dir /img --work-dir /img"),
            "{joined}"
        );
        assert!(joined.contains("--leave-running"));
        assert!(joined.contains("--shell-job"));
        assert!(joined.contains("--external mnt[/data]:/data"));
        assert!(!joined.contains("/proc]"));
        let restore = restore_args(Path::new("/rootfs"), &spec(), Path::new("/p"), &opts).join(" ");
        assert!(
            restore.contains("--ext-mount-map /data:/srv/data"),
            "{restore}"
        );
        assert!(restore.contains("--restore-detached --pidfile /p"));
        assert!(restore.contains("--empty-ns net"), "{restore}");
    }

    #[test]
    fn missing_criu_is_named() {
        let err = check(Path::new("/nonexistent/criu"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("criu"), "{err}");
    }
}
