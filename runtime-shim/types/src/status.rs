//! The OCI lifecycle status of a container, with the operations each status allows.

use serde::{Deserialize, Serialize};

/// The OCI lifecycle status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is still setting the container up.
    Creating,
    /// The init is set up and waits for `start`.
    Created,
    /// The user process runs.
    Running,
    /// The container's processes are frozen (`pause`).
    Paused,
    /// The init has exited.
    Stopped,
}

impl Status {
    /// `start` is only meaningful once, on a created container.
    pub fn can_start(self) -> bool {
        self == Status::Created
    }

    /// Signals can reach a created, running or paused init (a paused one acts on them
    /// once resumed; SIGKILL is delivered when `delete --force` thaws it).
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }

    /// Only a running container can be paused.
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }

    /// Only a paused container can be resumed.
    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }

    /// New processes can join a created or running container, not a frozen one.
    pub fn can_exec(self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }

    /// Plain `delete` (without force) removes stopped containers only: the spec says
    /// deleting one that is not stopped MUST fail (runc deletes a created one).
    pub fn can_delete(self) -> bool {
        self == Status::Stopped
    }

    /// Plain `delete` of a created container first kills its init, which waits for
    /// `start` (as runc does); other statuses need it stopped, or `--force`.
    pub fn delete_kills_init(self) -> bool {
        self == Status::Created
    }

    /// The status after a successful `start`: a created container runs; any other
    /// status is unchanged.
    pub fn started(self) -> Status {
        if self.can_start() {
            Status::Running
        } else {
            self
        }
    }

    /// The status after a successful pause (`pause` true) or resume of a live init:
    /// running ⇄ paused where the guards allow it; any other status is unchanged.
    pub fn paused(self, pause: bool) -> Status {
        match pause {
            true if self.can_pause() => Status::Paused,
            false if self.can_resume() => Status::Running,
            _ => self,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Status; 5] = [
        Status::Creating,
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Stopped,
    ];

    #[test]
    fn transitions_follow_the_guards() {
        for s in ALL {
            let started = if s == Status::Created {
                Status::Running
            } else {
                s
            };
            assert_eq!(s.started(), started, "{s}");
            let paused = if s == Status::Running {
                Status::Paused
            } else {
                s
            };
            assert_eq!(s.paused(true), paused, "{s}");
            let resumed = if s == Status::Paused {
                Status::Running
            } else {
                s
            };
            assert_eq!(s.paused(false), resumed, "{s}");
            assert_eq!(s.delete_kills_init(), s == Status::Created, "{s}");
        }
    }
}
