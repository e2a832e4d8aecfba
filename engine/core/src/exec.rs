//! Running one more process in a running container, as `runc exec` does: the
//! container's own process settings (user, capabilities, env, limits, LSM profile) with
//! the command, extra environment, working directory and user asked for. The shim starts
//! it; its exit comes back as an [`EventKind::Exec`] event. One with an output file of
//! its own also has its exit recorded beside it by the shim, so its result
//! ([`read_result`]) outlives a daemon that missed the event, for [`RESULT_KEEP`]
//! ([`sweep_results`]) or until fetched ([`remove_output`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_shim_adapter::protocol::{exec_exit_file, ExitRecord, Message, Request};
use oci_spec::runtime::{Process, Spec, UserBuilder};

use crate::control::ControlError;
use crate::engine::Engine;
use crate::events::{EventKind, Item, Subscription};
use crate::record::SpecSource;
use crate::state_machine::State;

/// What to run, and as whom.
#[derive(Debug, Clone, Default)]
pub struct ExecArgs {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries added to (or replacing in) the container's environment.
    pub env: Vec<String>,
    /// Working directory (absolute, inside the container); `None`: the container's.
    pub cwd: Option<String>,
    /// `(uid, gid)` to run as; `None`: the container's user.
    pub user: Option<(u32, u32)>,
}

/// Why no process was started.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The request itself is wrong (no command, a malformed env entry, a relative cwd).
    #[error("{0}")]
    Invalid(String),
    /// No such container.
    #[error("no container {0}")]
    NotFound(String),
    /// Only a running container runs more processes.
    #[error("container {id} is {}; only a running container can exec", state.as_str())]
    NotRunning {
        /// The container.
        id: String,
        /// Its state.
        state: State,
    },
    /// The bundle's config.json no longer reads.
    #[error("container {id}: reading {path}: {message}")]
    BundleChanged {
        /// The container.
        id: String,
        /// The config file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The shim could not be asked.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The shim could not start the process.
    #[error("container {id}: {message}")]
    Failed {
        /// The container.
        id: String,
        /// The shim's reason.
        message: String,
    },
    /// The shim answered something else than a pid.
    #[error("container {id}: the shim answered {reply} to exec")]
    Unexpected {
        /// The container.
        id: String,
        /// Its answer.
        reply: String,
    },
}

impl ExecArgs {
    /// Refuse what no container could run.
    fn validate(&self) -> Result<(), ExecError> {
        if self.args.first().is_none_or(|a| a.is_empty()) {
            return Err(ExecError::Invalid(
                "args must name the command to run".into(),
            ));
        }
        if let Some(bad) = self
            .env
            .iter()
            .find(|e| !e.contains('=') || e.starts_with('='))
        {
            return Err(ExecError::Invalid(format!(
                "env entry {bad:?}: expected KEY=VALUE"
            )));
        }
        if let Some(cwd) = self.cwd.as_deref().filter(|c| !c.starts_with('/')) {
            return Err(ExecError::Invalid(format!(
                "cwd {cwd:?}: expected an absolute path"
            )));
        }
        Ok(())
    }

    /// The container's process settings with these overrides.
    fn process(self, id: &str, source: &SpecSource) -> Result<Process, ExecError> {
        let spec = match source {
            SpecSource::Inline { spec, .. } => (**spec).clone(),
            SpecSource::Bundle(bundle) => {
                let path = bundle.join("config.json");
                Spec::load(&path).map_err(|e| ExecError::BundleChanged {
                    id: id.to_owned(),
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
        };
        let mut process = spec.process().clone().unwrap_or_default();
        let mut env = process.env().clone().unwrap_or_default();
        for entry in self.env {
            let key = entry.split('=').next().unwrap_or_default().to_owned();
            env.retain(|e| e.split('=').next() != Some(key.as_str()));
            env.push(entry);
        }
        process.set_env(Some(env));
        process.set_args(Some(self.args));
        process.set_terminal(Some(false));
        process.set_console_size(None);
        if let Some(cwd) = self.cwd {
            process.set_cwd(cwd.into());
        }
        if let Some((uid, gid)) = self.user {
            let user = UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .build()
                .map_err(|e| ExecError::Invalid(format!("user: {e}")))?;
            process.set_user(user);
        }
        Ok(process)
    }
}

impl Engine {
    /// Start `args` in running container `id`, waiting up to `timeout` for its shim.
    /// With `output` (a file the shim makes, capped) the process's stdout and stderr go
    /// there instead of the container's log, and a subscription made before the start
    /// comes back, so [`exec_end`] cannot miss the exit. Returns the process's host pid.
    pub fn exec(
        &self,
        id: &str,
        args: ExecArgs,
        output: Option<PathBuf>,
        timeout: Duration,
    ) -> Result<(i32, Option<Subscription>), ExecError> {
        args.validate()?;
        let record = self
            .get(id)
            .ok_or_else(|| ExecError::NotFound(id.to_owned()))?;
        if record.state != State::Running {
            return Err(ExecError::NotRunning {
                id: id.to_owned(),
                state: record.state,
            });
        }
        let process = args.process(id, &record.spec.source)?;
        let subscription = output.is_some().then(|| self.subscribe());
        let request = Request::Exec {
            process: Box::new(process),
            output,
        };
        match self.control(id, request, timeout)? {
            Message::Exec { pid } => Ok((pid, subscription)),
            Message::Error { message } => Err(ExecError::Failed {
                id: id.to_owned(),
                message,
            }),
            other => Err(ExecError::Unexpected {
                id: id.to_owned(),
                reply: format!("{other:?}"),
            }),
        }
    }
}

/// Whether `item` ends exec'd process `pid` of container `id`: `Some(code)` — the code
/// is `None` when the container went away and took the process with it.
pub fn exec_end(item: &Item, id: &str, pid: i32) -> Option<Option<i32>> {
    match item {
        Item::Event(e) if e.id == id && e.kind == EventKind::Exec && e.pid == Some(pid) => {
            Some(e.exit_code)
        }
        Item::Event(e)
            if e.id == id && matches!(e.state, State::Stopped | State::Failed | State::Deleted) =>
        {
            Some(None)
        }
        _ => None,
    }
}

/// An exec's output file (lossy UTF-8): the newest `max` bytes at most, and whether
/// older output was cut (the shim caps the file and rotates once into `<file>.1`).
pub fn read_output(path: &Path, max: u64) -> (String, bool) {
    let mut buf = Vec::new();
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(max).read_to_end(&mut buf);
    }
    (
        String::from_utf8_lossy(&buf).into_owned(),
        rotated(path).exists() || len > max,
    )
}

/// How long the result of an exec that had an output file of its own is kept once the
/// process exited, unless fetched sooner: long enough for a daemon to be restarted and
/// a client to ask again, short enough that results nobody fetches (at most 2 MiB
/// each: the shim's cap and one rotated part) do not pile up in the state directory.
pub const RESULT_KEEP: Duration = Duration::from_secs(15 * 60);

/// The result of an exec that had an output file of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// Exit status, once the process exited (128 + signal when killed).
    pub exit_code: Option<i32>,
    /// Its output (stdout and stderr together), the newest `max` bytes at most.
    pub output: String,
    /// Whether older output was cut.
    pub truncated: bool,
}

/// The result of the exec whose output file is `path` (the exit the shim recorded
/// beside it, and the output so far); `None` if there is no such exec (never started,
/// fetched already or expired).
pub fn read_result(path: &Path, max: u64) -> Option<ExecResult> {
    if !path.exists() {
        return None;
    }
    let exit_code = std::fs::read(exec_exit_file(path))
        .ok()
        .and_then(|b| serde_json::from_slice::<ExitRecord>(&b).ok())
        .map(|e| e.code);
    let (output, truncated) = read_output(path, max);
    Some(ExecResult {
        exit_code,
        output,
        truncated,
    })
}

/// Remove an exec's output file, its rotated part and its exit record.
pub fn remove_output(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(rotated(path));
    let _ = std::fs::remove_file(exec_exit_file(path));
}

/// Remove the results in shim directory `dir` kept longer than `keep`: those whose
/// process exited that long ago and, when no process of the container can still be
/// running (`live` false), those whose output file is that old. Returns how many went.
pub fn sweep_results(dir: &Path, keep: Duration, live: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let old = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= keep))
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_output = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("exec-") && n.ends_with(".out"));
        if !is_output {
            continue;
        }
        let exit = exec_exit_file(&path);
        if old(&exit) || (!live && !exit.exists() && old(&path)) {
            remove_output(&path);
            removed += 1;
        }
    }
    removed
}

/// Where the shim moves older output.
fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_no_container_could_run_are_refused() {
        let ok = ExecArgs {
            args: vec!["true".into()],
            ..ExecArgs::default()
        };
        assert!(ok.validate().is_ok());
        for bad in [
            ExecArgs::default(),
            ExecArgs {
                args: vec![String::new()],
                ..ExecArgs::default()
            },
            ExecArgs {
                env: vec!["NOEQUALS".into()],
                ..ok.clone()
            },
            ExecArgs {
                env: vec!["=x".into()],
                ..ok.clone()
            },
            ExecArgs {
                cwd: Some("rel".into()),
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(ExecError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_containers_process_gets_the_overrides() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "args": ["sleep", "1"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                "env": ["PATH=/bin", "A=1"]
            },
            "root": {"path": "rootfs"}
        }))
        .unwrap();
        let source = SpecSource::Inline {
            spec: Box::new(spec),
            rootfs: "/r".into(),
        };
        let args = ExecArgs {
            args: vec!["id".into()],
            env: vec!["A=2".into(), "B=3".into()],
            cwd: Some("/tmp".into()),
            user: Some((7, 8)),
        };
        let p = args.process("c", &source).unwrap();
        assert_eq!(p.args().as_deref(), Some(&["id".to_string()][..]));
        assert_eq!(
            p.env().as_deref(),
            Some(&["PATH=/bin".to_string(), "A=2".into(), "B=3".into()][..])
        );
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
        assert_eq!(p.terminal(), Some(false));
    }

    #[test]
    fn output_is_read_capped_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exec.out");
        std::fs::write(&path, "hello\n").unwrap();
        assert_eq!(read_output(&path, 100), ("hello\n".into(), false));
        assert_eq!(read_output(&path, 3), ("hel".into(), true));
        std::fs::write(rotated(&path), "older").unwrap();
        assert!(read_output(&path, 100).1);
        remove_output(&path);
        assert!(!path.exists() && !rotated(&path).exists());
    }

    #[test]
    fn a_result_is_the_recorded_exit_and_the_output_and_old_ones_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exec-a.out");
        assert_eq!(read_result(&path, 100), None);
        std::fs::write(&path, "out\n").unwrap();
        let running = read_result(&path, 100).unwrap();
        assert_eq!(
            (running.exit_code, running.output.as_str()),
            (None, "out\n")
        );
        std::fs::write(exec_exit_file(&path), r#"{"code":3,"at":"t"}"#).unwrap();
        assert_eq!(read_result(&path, 100).unwrap().exit_code, Some(3));
        let other = dir.path().join("exec-b.out");
        std::fs::write(&other, "").unwrap();
        // Kept while young; a running process's result is kept while the container lives.
        assert_eq!(sweep_results(dir.path(), RESULT_KEEP, true), 0);
        assert_eq!(sweep_results(dir.path(), Duration::ZERO, true), 1);
        assert!(!path.exists() && !exec_exit_file(&path).exists() && other.exists());
        assert_eq!(sweep_results(dir.path(), Duration::ZERO, false), 1);
        assert!(!other.exists());
    }
}
