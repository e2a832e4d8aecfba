//! Running one more process in a running container, as `runc exec` does: the
//! container's own process settings (user, capabilities, env, limits, LSM profile) with
//! the command, extra environment, working directory and user asked for. The shim starts
//! it; its exit comes back as an [`EventKind::Exec`] event. One with an output file of
//! its own also has its exit recorded beside it by the shim, so its result
//! ([`read_result`]) outlives a daemon that missed the event, for [`RESULT_KEEP`]
//! ([`sweep_results`]) or until fetched ([`remove_output`]).

use std::path::PathBuf;
use std::time::Duration;

use oci_spec::runtime::{Process, Spec, UserBuilder};

pub use berth_shim_adapter::exec_files::{
    read_output, read_result, remove_output, sweep_results, ExecResult, RESULT_KEEP,
};

use crate::control::ControlError;
use crate::engine::Engine;
use crate::events::{EventKind, Item, Subscription};
use crate::launcher::{Op, Reply};
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
    /// `bundle` is where the launcher wrote the bundle of an image container.
    fn process(
        self,
        id: &str,
        source: &SpecSource,
        bundle: Option<PathBuf>,
    ) -> Result<Process, ExecError> {
        let load = |bundle: &std::path::Path| {
            let path = bundle.join("config.json");
            Spec::load(&path).map_err(|e| ExecError::BundleChanged {
                id: id.to_owned(),
                path: path.clone(),
                message: e.to_string(),
            })
        };
        let spec = match source {
            SpecSource::Inline { spec, .. } => (**spec).clone(),
            SpecSource::Bundle(bundle) => load(bundle)?,
            SpecSource::Image(_) => load(&bundle.ok_or_else(|| ExecError::BundleChanged {
                id: id.to_owned(),
                path: PathBuf::new(),
                message: "the launcher keeps no bundle for this image container".into(),
            })?)?,
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
        let process = args.process(id, &record.spec.source, self.launcher().bundle_dir(id))?;
        let subscription = output.is_some().then(|| self.subscribe());
        let op = Op::Exec {
            process: Box::new(process),
            output,
        };
        match self.control(id, op, timeout) {
            Ok(Reply::Exec { pid }) => Ok((pid, subscription)),
            // A shim's refusal stays a control error (the API's 409), as it always was.
            Err(e) => Err(e.into()),
            Ok(other) => Err(ExecError::Unexpected {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        let p = args.process("c", &source, None).unwrap();
        assert_eq!(p.args().as_deref(), Some(&["id".to_string()][..]));
        assert_eq!(
            p.env().as_deref(),
            Some(&["PATH=/bin".to_string(), "A=2".into(), "B=3".into()][..])
        );
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
        assert_eq!(p.terminal(), Some(false));
    }
}
