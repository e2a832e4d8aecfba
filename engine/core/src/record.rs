//! Container records: what the engine knows of one container, and how a change is
//! applied to it (through [`crate::state_machine::transition`], the one gate).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_runtime_types::CgroupDirs;
use serde::{Deserialize, Serialize};

use crate::state_machine::{transition, IllegalTransition, State};

/// A wall-clock instant, RFC 3339 (nanoseconds, UTC) in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Timestamp(SystemTime::now())
    }

    /// `later - self`, zero if the clock stepped back.
    pub fn until(self, later: Timestamp) -> Duration {
        later.0.duration_since(self.0).unwrap_or_default()
    }

    /// Parse RFC 3339 (as the shim writes `exited_at`).
    pub fn parse(s: &str) -> Option<Self> {
        humantime::parse_rfc3339_weak(s).ok().map(Timestamp)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_nanos(self.0))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339(&s)
            .map(Timestamp)
            .map_err(|e| serde::de::Error::custom(format!("bad timestamp {s:?}: {e}")))
    }
}

/// Where the container's configuration comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecSource {
    /// An OCI bundle directory (`config.json` + rootfs).
    Bundle(PathBuf),
    /// An inline runtime spec and the root filesystem it runs in.
    Inline {
        /// The OCI runtime spec.
        spec: Box<oci_spec::runtime::Spec>,
        /// Path of the root filesystem.
        rootfs: PathBuf,
    },
    /// An image, run as docker would run it (its own overlay root filesystem), with
    /// the request's overrides.
    Image(ImageRun),
}

/// A container made from an image: which image, what the request overrides, and
/// whether the image may be pulled first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageRun {
    /// The image: a name (docker's short forms allowed) or an image id.
    pub image: String,
    /// Replaces the image's entrypoint (and drops its Cmd unless `args` is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's Cmd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// `KEY=value` pairs added to (or replacing those of) the image's environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Replaces the image's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Replaces the image's user (`name`, `uid`, `name:group`, `uid:gid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// When the image is pulled.
    #[serde(default)]
    pub pull: PullPolicy,
}

/// When an image is pulled for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Only if it is not here (the default).
    #[default]
    Missing,
    /// Never: a missing image is an error.
    Never,
    /// Always, before the container is made.
    Always,
}

/// What a client asks the engine to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container id (see [`crate::engine::validate_id`]).
    pub id: String,
    /// Bundle or inline spec.
    pub source: SpecSource,
    /// An external OCI runtime binary; `None` is the built-in runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<PathBuf>,
    /// Start the container once created (default), or leave it `created`.
    #[serde(default = "yes")]
    pub start: bool,
    /// Its network: none given keeps what the spec says (a bundle's, an inline spec's)
    /// or, for an image, the engine's default network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<berth_network::NetworkRequest>,
}

fn yes() -> bool {
    true
}

impl ContainerSpec {
    /// A spec that starts the bundle at `bundle`.
    pub fn bundle(id: impl Into<String>, bundle: impl Into<PathBuf>) -> Self {
        ContainerSpec {
            id: id.into(),
            source: SpecSource::Bundle(bundle.into()),
            runtime: None,
            start: true,
            network: None,
        }
    }
}

/// When each step of the container's life happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamps {
    /// Accepted and queued.
    pub queued: Option<Timestamp>,
    /// Taken off the queue by a worker.
    pub dequeued: Option<Timestamp>,
    /// The shim reported `created`.
    pub created: Option<Timestamp>,
    /// The shim reported `started`.
    pub started: Option<Timestamp>,
    /// The init exited.
    pub exited: Option<Timestamp>,
    /// Failed or deleted.
    pub finished: Option<Timestamp>,
}

/// One container as the engine knows it; also its on-disk form (`record.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// Lifecycle state.
    pub state: State,
    /// What was asked for.
    pub spec: Arc<ContainerSpec>,
    /// Host pid of the container's init, once created.
    pub pid: Option<i32>,
    /// Pid of its `berth-shim`, once launched.
    pub shim_pid: Option<i32>,
    /// Where its cgroup is, once created (as its shim found it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<CgroupDirs>,
    /// Exit status once stopped (128 + signal for a killed init).
    pub exit_code: Option<i32>,
    /// Why it failed, one line.
    pub error: Option<String>,
    /// When each step happened.
    pub timestamps: Timestamps,
    /// Sequence number of the last event about this container.
    pub seq: u64,
}

/// A change to a record; [`Record::apply`] checks it against the state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A worker took the job: → creating.
    Dequeued,
    /// The shim created the container: → created.
    Created {
        /// Host pid of the init.
        pid: i32,
        /// Pid of the shim, if known.
        shim_pid: Option<i32>,
        /// Where its cgroup is, if known.
        cgroups: Option<CgroupDirs>,
    },
    /// The user process runs: → running.
    Started,
    /// Frozen: → paused.
    Paused,
    /// Thawed: → running.
    Resumed,
    /// The init exited: → stopped.
    Exited {
        /// Exit status.
        code: i32,
        /// When, if the shim said.
        at: Option<Timestamp>,
    },
    /// Something went wrong: → failed.
    Failed {
        /// Why, one line.
        reason: String,
    },
    /// Removed: → deleted.
    Deleted,
}

impl Change {
    /// The state this change leads to.
    pub fn target(&self) -> State {
        match self {
            Change::Dequeued => State::Creating,
            Change::Created { .. } => State::Created,
            Change::Started | Change::Resumed => State::Running,
            Change::Paused => State::Paused,
            Change::Exited { .. } => State::Stopped,
            Change::Failed { .. } => State::Failed,
            Change::Deleted => State::Deleted,
        }
    }
}

impl Record {
    /// A freshly queued record.
    pub fn queued(spec: Arc<ContainerSpec>, now: Timestamp) -> Self {
        Record {
            id: spec.id.clone(),
            state: State::Queued,
            spec,
            pid: None,
            shim_pid: None,
            cgroups: None,
            exit_code: None,
            error: None,
            timestamps: Timestamps {
                queued: Some(now),
                ..Timestamps::default()
            },
            seq: 0,
        }
    }

    /// Apply `change` at `now`; returns the previous state, or the refusal (the record
    /// is then untouched). `Resumed` is only legal from `paused`, `Started` only from
    /// `created`.
    pub fn apply(&mut self, change: Change, now: Timestamp) -> Result<State, IllegalTransition> {
        let from = self.state;
        let to = change.target();
        let refuse = || IllegalTransition {
            id: self.id.clone(),
            from,
            to,
        };
        match change {
            Change::Started if from != State::Created => return Err(refuse()),
            Change::Resumed if from != State::Paused => return Err(refuse()),
            _ => {}
        }
        self.state = transition(&self.id, from, to)?;
        let t = &mut self.timestamps;
        match change {
            Change::Dequeued => t.dequeued = Some(now),
            Change::Created {
                pid,
                shim_pid,
                cgroups,
            } => {
                t.created = Some(now);
                self.pid = Some(pid);
                if shim_pid.is_some() {
                    self.shim_pid = shim_pid;
                }
                if cgroups.is_some() {
                    self.cgroups = cgroups;
                }
            }
            Change::Started => t.started = Some(now),
            Change::Paused | Change::Resumed => {}
            Change::Exited { code, at } => {
                t.exited = Some(at.unwrap_or(now));
                self.exit_code = Some(code);
            }
            Change::Failed { reason } => {
                t.finished = Some(now);
                self.error = Some(reason);
            }
            Change::Deleted => t.finished = Some(now),
        }
        Ok(from)
    }

    /// Time spent waiting in the queue.
    pub fn queue_wait(&self) -> Option<Duration> {
        let t = &self.timestamps;
        Some(t.queued?.until(t.dequeued?))
    }

    /// Time from a worker taking the job to the user process running.
    pub fn start_latency(&self) -> Option<Duration> {
        let t = &self.timestamps;
        Some(t.dequeued?.until(t.started?))
    }

    /// Time from acceptance to the user process running.
    pub fn total_start_time(&self) -> Option<Duration> {
        let t = &self.timestamps;
        Some(t.queued?.until(t.started?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record::queued(
            Arc::new(ContainerSpec::bundle("c1", "/b")),
            Timestamp::now(),
        )
    }

    #[test]
    fn a_full_life_sets_every_timestamp() {
        let mut r = rec();
        let now = Timestamp::now;
        r.apply(Change::Dequeued, now()).unwrap();
        r.apply(
            Change::Created {
                pid: 42,
                shim_pid: Some(41),
                cgroups: None,
            },
            now(),
        )
        .unwrap();
        r.apply(Change::Started, now()).unwrap();
        r.apply(Change::Paused, now()).unwrap();
        r.apply(Change::Resumed, now()).unwrap();
        r.apply(Change::Exited { code: 3, at: None }, now())
            .unwrap();
        assert_eq!(
            (r.pid, r.shim_pid, r.exit_code),
            (Some(42), Some(41), Some(3))
        );
        assert!(r.queue_wait().is_some() && r.start_latency().is_some());
        assert!(r.timestamps.exited.is_some());
        r.apply(Change::Deleted, now()).unwrap();
        assert_eq!(r.state, State::Deleted);
    }

    #[test]
    fn refused_changes_leave_the_record_alone() {
        let mut r = rec();
        let before = r.clone();
        assert!(r.apply(Change::Started, Timestamp::now()).is_err());
        assert!(r.apply(Change::Resumed, Timestamp::now()).is_err());
        assert!(r
            .apply(Change::Exited { code: 0, at: None }, Timestamp::now())
            .is_err());
        assert_eq!(r, before);
    }

    #[test]
    fn records_round_trip_through_json() {
        let mut r = rec();
        r.apply(
            Change::Failed {
                reason: "no such bundle".into(),
            },
            Timestamp::now(),
        )
        .unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"state\":\"failed\""), "{j}");
        let back: Record = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
    }
}
