//! The lifecycle of a container as the engine sees it, and the one place that decides
//! which changes are legal.
//!
//! ```text
//! queued → creating → created → running ⇄ paused
//!                        │         │        │
//!                        └────→ stopped ←───┘ → deleted
//! any live state → failed{reason} → deleted;   queued → deleted (cancelled)
//! ```

use std::fmt;

use berth_runtime_types::Status;
use serde::{Deserialize, Serialize};

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Accepted and waiting in the start queue.
    Queued,
    /// A worker took it and its shim is setting it up.
    Creating,
    /// The init is set up and waits for `start`.
    Created,
    /// The user process runs.
    Running,
    /// Frozen.
    Paused,
    /// The init exited; the exit code is known.
    Stopped,
    /// Removed; the record is about to disappear.
    Deleted,
    /// Creating or supervising it failed; the record's `error` says why.
    Failed,
}

impl State {
    /// Every state, in lifecycle order (for gauges and listings).
    pub const ALL: [State; 8] = [
        State::Queued,
        State::Creating,
        State::Created,
        State::Running,
        State::Paused,
        State::Stopped,
        State::Deleted,
        State::Failed,
    ];

    /// The lowercase name used in JSON, metrics labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Creating => "creating",
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Stopped => "stopped",
            State::Deleted => "deleted",
            State::Failed => "failed",
        }
    }

    /// Index into [`State::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The engine's state for a shim's (the runtime's) status: the one translation
    /// table between the two machines. The engine's own states (queued, deleted,
    /// failed) have no runtime status.
    pub fn from_runtime(status: Status) -> State {
        match status {
            Status::Creating => State::Creating,
            Status::Created => State::Created,
            Status::Running => State::Running,
            Status::Paused => State::Paused,
            Status::Stopped => State::Stopped,
        }
    }

    /// Whether `self → to` is a legal change. The single source of truth.
    pub fn can_become(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Queued, Creating | Deleted | Failed)
                | (Creating, Created | Failed)
                | (Created, Running | Stopped | Failed)
                | (Running, Paused | Stopped | Failed)
                | (Paused, Running | Stopped | Failed)
                | (Stopped | Failed, Deleted)
        )
    }

    /// A shim may still exist for a container in this state.
    pub fn has_shim(self) -> bool {
        matches!(
            self,
            State::Creating | State::Created | State::Running | State::Paused | State::Stopped
        )
    }

    /// Nothing further happens to the container by itself.
    pub fn is_final(self) -> bool {
        matches!(self, State::Stopped | State::Deleted | State::Failed)
    }

    /// Guard: a signal can reach the container.
    pub fn can_kill(self) -> bool {
        matches!(self, State::Created | State::Running | State::Paused)
    }

    /// Guard: the container can be removed without force.
    pub fn can_delete(self) -> bool {
        matches!(self, State::Queued | State::Stopped | State::Failed)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change the state machine refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container {id}: cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The container.
    pub id: String,
    /// Its current state.
    pub from: State,
    /// The state asked for.
    pub to: State,
}

/// Check `from → to` for container `id`.
pub fn transition(id: &str, from: State, to: State) -> Result<State, IllegalTransition> {
    if from.can_become(to) {
        Ok(to)
    } else {
        Err(IllegalTransition {
            id: id.to_owned(),
            from,
            to,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;

    #[test]
    fn every_runtime_status_has_the_state_of_the_same_name() {
        for status in [
            Status::Creating,
            Status::Created,
            Status::Running,
            Status::Paused,
            Status::Stopped,
        ] {
            assert_eq!(State::from_runtime(status).as_str(), status.to_string());
        }
    }

    #[test]
    fn the_happy_path_is_legal() {
        let path = [
            Queued, Creating, Created, Running, Paused, Running, Stopped, Deleted,
        ];
        for w in path.windows(2) {
            assert!(transition("c", w[0], w[1]).is_ok(), "{} → {}", w[0], w[1]);
        }
    }

    #[test]
    fn failures_are_legal_from_live_states_only() {
        for s in [Queued, Creating, Created, Running, Paused] {
            assert!(s.can_become(Failed), "{s}");
        }
        for s in [Stopped, Deleted, Failed] {
            assert!(!s.can_become(Failed), "{s}");
        }
        assert!(Failed.can_become(Deleted));
    }

    #[test]
    fn illegal_transitions_are_refused() {
        let bad = [
            (Queued, Running),
            (Queued, Created),
            (Creating, Running),
            (Created, Paused),
            (Running, Created),
            (Running, Deleted),
            (Stopped, Running),
            (Deleted, Queued),
            (Deleted, Deleted),
            (Running, Running),
            (Failed, Running),
        ];
        for (from, to) in bad {
            let err = transition("web", from, to).unwrap_err();
            assert_eq!(err.from, from);
            assert_eq!(err.to, to);
            assert_eq!(
                err.to_string(),
                format!("container web: cannot go from {from} to {to}")
            );
        }
    }

    #[test]
    fn names_round_trip_through_json() {
        for s in State::ALL {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<State>(&j).unwrap(), s);
            assert_eq!(State::ALL[s.index()], s);
        }
    }
}
