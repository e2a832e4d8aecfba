//! Which namespaces a container gets: new ones through clone flags, existing ones joined
//! through their /proc or bind-mounted paths.

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{Linux, LinuxNamespaceType};

use crate::error::{Error, IoContext, Result, SysContext};

/// A namespace to join, opened by the parent before the init exists.
#[derive(Debug)]
pub struct Join {
    /// The namespace type.
    pub kind: LinuxNamespaceType,
    /// The opened namespace file.
    pub fd: OwnedFd,
    /// Where it came from, for error messages.
    pub path: String,
}

/// The namespace plan of one container.
#[derive(Debug)]
pub struct Namespaces {
    /// Namespaces to create with clone(2). Never includes CLONE_NEWCGROUP: the cgroup
    /// namespace is unshared by the init after it has been moved into its cgroup, so that
    /// the container's cgroup becomes its root.
    pub clone_flags: CloneFlags,
    /// Create a new cgroup namespace once placed in the cgroup.
    pub new_cgroup: bool,
    /// Existing namespaces to join, in the order they must be joined.
    pub join: Vec<Join>,
}

/// The clone flag of a namespace type.
pub fn flag(kind: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(kind as libc::c_int)
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            clone_flags: CloneFlags::empty(),
            new_cgroup: false,
            join: Vec::new(),
        }
    }
}

impl Namespaces {
    /// Build the plan from the spec, opening every namespace path to join.
    pub fn from_spec(linux: Option<&Linux>) -> Result<Self> {
        let mut plan = Namespaces::default();
        for ns in linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
        {
            match ns.path() {
                Some(path) => {
                    let file = File::open(path).io("open namespace", path)?;
                    plan.join.push(Join {
                        kind: ns.typ(),
                        fd: file.into(),
                        path: path.display().to_string(),
                    });
                }
                None if ns.typ() == LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                None => plan.clone_flags |= flag(ns.typ()),
            }
        }
        // The mount namespace is joined last: after it, other namespace paths may no
        // longer resolve (they are opened already, but keep the order runc uses).
        plan.join
            .sort_by_key(|j| matches!(j.kind, LinuxNamespaceType::Mount));
        Ok(plan)
    }

    /// True if the container gets a mount namespace, new or joined.
    pub fn has_mount(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWNS)
            || self
                .join
                .iter()
                .any(|j| j.kind == LinuxNamespaceType::Mount)
    }

    /// True if the container gets a new user namespace.
    pub fn new_user(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// True if the container gets its own (new) uts namespace.
    pub fn new_uts(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUTS)
    }

    /// Join the pid namespace, if one is to be joined. Called in the parent just before
    /// clone: setns(CLONE_NEWPID) only affects children created afterwards.
    pub fn join_pid(&self) -> Result<()> {
        for j in self
            .join
            .iter()
            .filter(|j| j.kind == LinuxNamespaceType::Pid)
        {
            setns(&j.fd, CloneFlags::CLONE_NEWPID).sys("setns", &j.path)?;
        }
        Ok(())
    }

    /// Join every other namespace to be joined. Called in the init.
    pub fn join_others(&self) -> Result<()> {
        for j in self
            .join
            .iter()
            .filter(|j| j.kind != LinuxNamespaceType::Pid)
        {
            setns(&j.fd, flag(j.kind)).map_err(|errno| {
                Error::sys("setns", format!("{} namespace {}", j.kind, j.path), errno)
            })?;
        }
        Ok(())
    }
}
