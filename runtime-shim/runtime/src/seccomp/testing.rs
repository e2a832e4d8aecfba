//! Test helpers: a classic BPF interpreter that runs a program on a `seccomp_data` as the
//! kernel would, and a forked child to install a filter in for real.

use oci_spec::runtime::LinuxSeccomp;

use super::bpf::*;
use super::{install, Program};

/// `struct seccomp_data`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Data {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl Data {
    fn bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        out[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        // instruction_pointer (8..16) stays 0.
        for (i, arg) in self.args.iter().enumerate() {
            out[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        out
    }
}

/// The checks the kernel makes before accepting a program (bpf_check_classic and
/// seccomp_check_filter, for the instructions we emit).
pub(crate) fn check(prog: &[Instruction]) {
    assert!(
        !prog.is_empty() && prog.len() <= MAX_INSTRUCTIONS,
        "length {}",
        prog.len()
    );
    for (pc, insn) in prog.iter().enumerate() {
        let rest = prog.len() - pc - 1;
        match insn.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                assert!(insn.k % 4 == 0 && insn.k < 64, "load of {} at {pc}", insn.k)
            }
            c if c == BPF_ALU | BPF_AND | BPF_K || c == BPF_RET | BPF_K => {}
            c if c == BPF_JMP | BPF_JA => assert!((insn.k as usize) < rest, "ja out at {pc}"),
            c if [BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET]
                .iter()
                .any(|op| c == BPF_JMP | op | BPF_K) =>
            {
                assert!(
                    usize::from(insn.jt) < rest && usize::from(insn.jf) < rest,
                    "jump out at {pc}"
                )
            }
            c => panic!("unexpected opcode {c:#x} at {pc}"),
        }
    }
    assert_eq!(
        prog.last().unwrap().code,
        BPF_RET | BPF_K,
        "ends with a return"
    );
}

/// Run `prog` on `data`; the value the filter returns.
pub(crate) fn run(prog: &[Instruction], data: &Data) -> u32 {
    let bytes = data.bytes();
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let insn = prog[pc];
        pc += 1;
        let op = insn.code;
        if op == BPF_LD | BPF_W | BPF_ABS {
            let k = insn.k as usize;
            a = u32::from_ne_bytes(bytes[k..k + 4].try_into().unwrap());
        } else if op == BPF_ALU | BPF_AND | BPF_K {
            a &= insn.k;
        } else if op == BPF_JMP | BPF_JA {
            pc += insn.k as usize;
        } else if op == BPF_RET | BPF_K {
            return insn.k;
        } else {
            let taken = match op & !BPF_JMP {
                BPF_JEQ => a == insn.k,
                BPF_JGT => a > insn.k,
                BPF_JGE => a >= insn.k,
                BPF_JSET => a & insn.k != 0,
                _ => panic!("unexpected opcode {op:#x}"),
            };
            pc += usize::from(if taken { insn.jt } else { insn.jf });
        }
    }
}

/// Parse a profile written as JSON.
pub(crate) fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test profile: {e}\n{json}"))
}

/// How a forked child ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Exited(i32),
    Signaled(i32),
}

/// Exit codes of the child when the filter could not be installed.
pub(crate) const INSTALL_FAILED: i32 = 250;

/// Fork; in the child, forbid core dumps (SIGSYS dumps core), set no_new_privs, install
/// `program`, run `body` and exit with what it returns. Only raw syscalls in between:
/// the child of a multithreaded test harness must not allocate or lock.
pub(crate) fn in_child(program: &Program, body: impl FnOnce(Option<i32>) -> i32) -> Outcome {
    // SAFETY: the child only makes syscalls and calls `body`, which must do the same.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            // SAFETY: plain syscalls on valid arguments.
            unsafe {
                let no_core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(INSTALL_FAILED);
                }
            }
            let code = match install(program) {
                Ok(listener) => body(listener.map(std::os::fd::IntoRawFd::into_raw_fd)),
                Err(_) => INSTALL_FAILED,
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        pid => wait(pid),
    }
}

pub(crate) fn wait(pid: libc::pid_t) -> Outcome {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) {
        Outcome::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Outcome::Signaled(libc::WTERMSIG(status))
    } else {
        panic!("unexpected wait status {status:#x}")
    }
}

/// errno of the last failed call in this thread.
pub(crate) fn errno() -> i32 {
    // SAFETY: the thread's errno location is always valid.
    unsafe { *libc::__errno_location() }
}

/// The errno a raw syscall fails with, 0 when it succeeds.
pub(crate) fn failure(rc: libc::c_long) -> i32 {
    if rc == -1 {
        errno()
    } else {
        0
    }
}
