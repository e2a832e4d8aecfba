//! `linux.seccomp`: the spec's seccomp object compiled to a classic BPF program in pure
//! Rust (no C libseccomp), and installed in the calling process.
//!
//! ```no_run
//! # fn demo(spec: &oci_spec::runtime::LinuxSeccomp) -> Result<(), berth_runtime::seccomp::SeccompError> {
//! use berth_runtime::seccomp;
//! let program = seccomp::compile(spec)?; // before fork: allocates, may log
//! // … in the container's init, as late as possible before exec:
//! let listener = seccomp::install(&program)?; // no allocation, no logging
//! # Ok(()) }
//! ```
//!
//! - [`compile`]: validates the rules and generates the program; [`compile_cached`] keeps
//!   compiled programs in a directory, as crun does.
//! - Semantics: every action (errno and trace data default to EPERM), every operator on
//!   64-bit arguments (the low 32 bits on x86, x32 and arm), conditions of a rule ANDed
//!   (even two on the same argument, which runc turns into separate rules), a syscall's
//!   rules with conditions tried in config order before its first unconditional rule. The native architecture is always covered, plus those listed
//!   that Berth has tables for (x86_64, x86, x32, aarch64, arm, riscv64, s390x, ppc64,
//!   ppc64le, loongarch64); syscalls of any other architecture are killed. When the
//!   default action refuses, numbers above the largest syscall the profile names return
//!   ENOSYS (as runc does), so libc falls back from syscalls newer than the profile.
//! - [`install`]: `seccomp(SECCOMP_SET_MODE_FILTER)` with the spec's flags, or
//!   `prctl(PR_SET_SECCOMP)` when there are none; returns the notify listener when a rule
//!   uses SCMP_ACT_NOTIFY, which [`send_listener`] hands to the agent at `listenerPath`.

mod arch;
mod bpf;
mod cache;
mod compile;
mod install;
mod listener;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use bpf::{Instruction, MAX_INSTRUCTIONS};
pub use cache::compile_cached;
pub use compile::compile;
pub use install::install;
pub use listener::send_listener;

/// The `SCMP_ARCH_*` names a filter can cover (those with a syscall table here).
pub fn supported_architectures() -> Vec<String> {
    use oci_spec::runtime::Arch;
    [
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX86,
        Arch::ScmpArchX32,
        Arch::ScmpArchAarch64,
        Arch::ScmpArchArm,
        Arch::ScmpArchRiscv64,
        Arch::ScmpArchS390x,
        Arch::ScmpArchPpc64,
        Arch::ScmpArchPpc64le,
        Arch::ScmpArchLoongarch64,
    ]
    .into_iter()
    .filter(|a| arch::Target::from_oci(*a).is_some())
    .filter_map(|a| serde_json::to_value(a).ok()?.as_str().map(str::to_owned))
    .collect()
}

/// What can go wrong compiling or installing a filter. Rule errors name the rule as
/// `linux.seccomp.syscalls[N] (names…)`.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A rule lists no syscall names.
    #[error("seccomp: {rule}: no syscall names")]
    NoNames { rule: String },

    /// errnoRet (or defaultErrnoRet) on an action that takes no errno.
    #[error("seccomp: {rule}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}")]
    ErrnoRetNotAllowed { rule: String, action: String },

    /// An errno the kernel cannot return.
    #[error("seccomp: {rule}: errnoRet {errno} is out of range (at most 4095 for SCMP_ACT_ERRNO, 65535 for SCMP_ACT_TRACE)")]
    ErrnoOutOfRange { rule: String, errno: u32 },

    /// A syscall has six arguments, numbered 0 to 5.
    #[error("seccomp: {rule}: argument index {index} is out of range (0 to 5)")]
    ArgIndex { rule: String, index: usize },

    /// valueTwo only makes sense for SCMP_CMP_MASKED_EQ.
    #[error(
        "seccomp: {rule}: valueTwo ({value_two}) is only valid with SCMP_CMP_MASKED_EQ, not {op}"
    )]
    ValueTwo {
        rule: String,
        op: String,
        value_two: u64,
    },

    /// SCMP_ACT_NOTIFY as the default would block the runtime's own syscalls before exec.
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be the defaultAction")]
    NotifyDefault,

    /// The spec requires listenerPath when a rule notifies.
    #[error("seccomp: {rule}: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")]
    NotifyWithoutListener { rule: String },

    /// Berth has no syscall table for the machine it runs on.
    #[error(
        "seccomp: not supported on this architecture ({})",
        std::env::consts::ARCH
    )]
    UnsupportedHost,

    /// The program exceeds the kernel's limit.
    #[error("seccomp: the compiled filter has {instructions} instructions, more than the kernel's limit of 4096")]
    TooLarge { instructions: usize },

    /// The kernel refused the filter.
    #[error("seccomp: {call}: {errno}{}", hint(*.errno))]
    Install {
        call: &'static str,
        errno: nix::errno::Errno,
    },

    /// The seccomp agent at listenerPath could not be given the listener.
    #[error("seccomp: listenerPath {}: {source}", path.display())]
    Listener {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    /// SECCOMP_FILTER_FLAG_TSYNC could not synchronize a thread.
    #[error("seccomp: SECCOMP_FILTER_FLAG_TSYNC: thread {tid} could not be synchronized")]
    Tsync { tid: libc::c_long },
}

fn hint(errno: nix::errno::Errno) -> &'static str {
    match errno {
        nix::errno::Errno::EACCES => " (needs no_new_privs or CAP_SYS_ADMIN)",
        nix::errno::Errno::EINVAL => " (a flag or action this kernel does not support?)",
        _ => "",
    }
}

/// A compiled filter, ready to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    instructions: Vec<Instruction>,
    /// `SECCOMP_FILTER_FLAG_*`.
    flags: libc::c_ulong,
}

impl Program {
    /// The BPF instructions, first first.
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits [`install`] passes to `seccomp(2)`.
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// Whether a rule uses SCMP_ACT_NOTIFY, so that [`install`] returns a listener fd,
    /// which the runtime passes on to `listenerPath`.
    pub fn has_listener(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }
}
