//! Removing a container whatever its state: stop it through its shim when asked to
//! (`force`), wait for the stop to be reported, then forget it. One call for what a
//! client means by "delete".

use std::time::{Duration, Instant};

use crate::control::ControlError;
use crate::engine::{ChangeError, Engine};
use crate::launcher::Op;
use crate::state_machine::State;

/// Why a container was not removed. It is left as it was, except after `StopTimeout`
/// (the shim was told to delete it).
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// No such container.
    #[error("no container {0}")]
    NotFound(String),
    /// It is being created; retry once it is running or failed.
    #[error("container {0} is being created; retry once it is running or failed")]
    Busy(String),
    /// It is live and `force` was not given.
    #[error("container {id} is {}; stop it first or remove it with force", state.as_str())]
    Live {
        /// The container.
        id: String,
        /// Its state.
        state: State,
    },
    /// Its shim refused or could not be asked.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The shim did not report the stop in time.
    #[error("container {0} did not stop in time")]
    StopTimeout(String),
}

impl Engine {
    /// Remove `id`: a queued one is cancelled; a stopped or failed one has its shim
    /// delete it; a created, running or paused one only with `force` (killed first).
    /// Waits at most `timeout` for the shim.
    pub fn remove(&self, id: &str, force: bool, timeout: Duration) -> Result<(), RemoveError> {
        self.remove_by(id, force, Instant::now() + timeout)
    }

    /// [`Engine::remove`] with everything done by `deadline`.
    fn remove_by(&self, id: &str, force: bool, deadline: Instant) -> Result<(), RemoveError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let state = self
            .get(id)
            .ok_or_else(|| RemoveError::NotFound(id.to_owned()))?
            .state;
        match state {
            State::Queued | State::Deleted => {}
            State::Creating => return Err(RemoveError::Busy(id.to_owned())),
            State::Created | State::Running | State::Paused if !force => {
                return Err(RemoveError::Live {
                    id: id.to_owned(),
                    state,
                })
            }
            live => self.delete_through_shim(id, live, timeout)?,
        }
        match self.delete(id) {
            Ok(_) | Err(ChangeError::NotFound(_)) => Ok(()),
            // Changed meanwhile (a queued one started): its shim must remove it, within
            // the time that is left.
            Err(ChangeError::Illegal(_)) => self.remove_by(id, force, deadline),
        }
    }

    /// Have the shim of `id` (in state `live`) delete the container, and wait until
    /// the engine has heard it stop.
    fn delete_through_shim(
        &self,
        id: &str,
        live: State,
        timeout: Duration,
    ) -> Result<(), RemoveError> {
        let deadline = Instant::now() + timeout;
        // Subscribed first, so the stop cannot be missed.
        let mut sub = self.subscribe();
        let op = Op::Delete {
            force: live != State::Stopped,
        };
        match self.control(id, op, timeout) {
            Ok(_) => {}
            // A failed container's shim is usually gone already.
            // A shim lost after its container stopped or failed may have left it:
            // removed first, so the id is free. (A live one's loss is the monitor's.)
            Err(ControlError::Shim { ref error, .. })
                if live == State::Failed || error.kind == "shim_gone" =>
            {
                if live.is_final() {
                    self.launcher()
                        .clean_up(id)
                        .map_err(|error| ControlError::Shim {
                            id: id.to_owned(),
                            error,
                        })?;
                }
            }
            Err(ControlError::NotFound(_)) => return Err(RemoveError::NotFound(id.to_owned())),
            Err(e) => return Err(e.into()),
        }
        let stopped = |s: State| matches!(s, State::Stopped | State::Failed | State::Deleted);
        loop {
            match self.get(id).map(|r| r.state) {
                None => return Ok(()),
                Some(s) if stopped(s) => return Ok(()),
                Some(_) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RemoveError::StopTimeout(id.to_owned()));
            }
            // Any event (or a lag) is a reason to look at the record again.
            let _ = sub.recv_timeout(left);
        }
    }
}
