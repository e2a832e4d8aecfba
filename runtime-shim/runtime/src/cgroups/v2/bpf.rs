//! eBPF for the v2 device controller: the instruction encoding its programs are built
//! from, and the few `bpf(2)` commands it needs: load a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program, attach it to a cgroup directory, and find and detach the programs it
//! replaces. Below `devices` (which builds the programs), never the other way. Raw
//! syscalls with `#[repr(C)]` attribute structs laid out as in `<linux/bpf.h>`; no C
//! library.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::cgroups::CgroupError;

// Opcodes (class | operation | source).
pub(crate) const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(crate) const ALU_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const ALU_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub(crate) const ALU_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
pub(crate) const ALU_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub(crate) const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub(crate) const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub(crate) const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
pub(crate) const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// One eBPF instruction, `struct bpf_insn`: opcode, destination register in the low
/// nibble and source register in the high nibble of `regs` (little-endian bitfields),
/// jump offset, immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    pub(crate) regs: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

impl Insn {
    /// `dst` and `src` are register numbers (0–10).
    pub(crate) const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Self {
            code,
            regs: dst | (src << 4),
            off,
            imm,
        }
    }

    /// A jump whose offset a program builder fills in (not `exit`).
    pub(crate) fn is_jump(self) -> bool {
        self.code & 0x07 == 0x05 && self.code != JMP_EXIT
    }
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
/// The verifier log kept when a load fails, to explain why.
const LOG_SIZE: usize = 64 * 1024;
/// How many attached programs [`query`] can report; runc-style managers attach one.
const MAX_QUERY: usize = 64;

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH` and `BPF_PROG_DETACH`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `union bpf_attr` for `BPF_PROG_QUERY`.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `union bpf_attr` for `BPF_PROG_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `bpf(cmd, attr, sizeof attr)`.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] attribute struct of the layout
    // `cmd` expects, and the size passed is its own; the kernel reads (and for queries
    // writes) only within it and within the buffers its pointers name, which the callers
    // keep alive across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            std::mem::size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn fd_from(ret: libc::c_long) -> std::io::Result<OwnedFd> {
    let fd = i32::try_from(ret).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this new descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: &impl AsRawFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// Load `program` as a cgroup device program (license "Apache", as runc's). On failure
/// the load is repeated with the verifier log on, and the log is part of the error.
pub(crate) fn load(dir: &Path, program: &[Insn]) -> Result<OwnedFd, CgroupError> {
    let license = c"Apache";
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"berth_devs");
    let attr = |log: &mut Vec<u8>| ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(program.len()).unwrap_or(u32::MAX),
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: u32::try_from(log.len()).unwrap_or(0),
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    let mut no_log = Vec::new();
    let err = match bpf(BPF_PROG_LOAD, &mut attr(&mut no_log)) {
        Ok(fd) => return fd_from(fd).map_err(|source| bpf_error(dir, "BPF_PROG_LOAD", source)),
        Err(err) => err,
    };
    let mut log = vec![0u8; LOG_SIZE];
    let detail = match bpf(BPF_PROG_LOAD, &mut attr(&mut log)) {
        Ok(fd) => {
            // Loaded the second time (a transient failure): use it.
            return fd_from(fd).map_err(|source| bpf_error(dir, "BPF_PROG_LOAD", source));
        }
        Err(_) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = one_line_tail(&String::from_utf8_lossy(&log[..end]));
            if text.is_empty() {
                String::new()
            } else {
                format!(" (verifier log: {text})")
            }
        }
    };
    Err(CgroupError::Bpf {
        path: dir.to_path_buf(),
        operation: "BPF_PROG_LOAD",
        source: err,
        detail,
    })
}

/// Attach `program` to the cgroup open as `cgroup` with `BPF_F_ALLOW_MULTI`, so other
/// managers' programs (and the one being replaced) can stay attached meanwhile.
pub(crate) fn attach(dir: &Path, cgroup: &OwnedFd, program: &OwnedFd) -> Result<(), CgroupError> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(program),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..AttachAttr::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map(drop)
        .map_err(|source| bpf_error(dir, "BPF_PROG_ATTACH", source))
}

/// The ids of the device programs attached directly to the cgroup open as `cgroup`.
pub(crate) fn query(dir: &Path, cgroup: &OwnedFd) -> Result<Vec<u32>, CgroupError> {
    let mut ids = vec![0u32; MAX_QUERY];
    let mut attr = QueryAttr {
        target_fd: fd_u32(cgroup),
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(ids.len()).unwrap_or(0),
        ..QueryAttr::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|source| bpf_error(dir, "BPF_PROG_QUERY", source))?;
    ids.truncate(usize::try_from(attr.prog_cnt).unwrap_or(0).min(MAX_QUERY));
    Ok(ids)
}

/// Detach the program with id `id` from the cgroup open as `cgroup`.
pub(crate) fn detach(dir: &Path, cgroup: &OwnedFd, id: u32) -> Result<(), CgroupError> {
    let mut get = GetFdAttr {
        prog_id: id,
        ..GetFdAttr::default()
    };
    let program = bpf(BPF_PROG_GET_FD_BY_ID, &mut get)
        .and_then(fd_from)
        .map_err(|source| bpf_error(dir, "BPF_PROG_GET_FD_BY_ID", source))?;
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(&program),
        attach_type: BPF_CGROUP_DEVICE,
        ..AttachAttr::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr)
        .map(drop)
        .map_err(|source| bpf_error(dir, "BPF_PROG_DETACH", source))
}

/// The verifier log on one line (errors are one line), keeping its end, where the
/// verifier says what it refused.
fn one_line_tail(log: &str) -> String {
    const KEEP: usize = 400;
    let line = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match line.char_indices().rev().nth(KEEP) {
        Some((cut, _)) => format!("…{}", &line[cut + 1..]),
        None => line,
    }
}

fn bpf_error(dir: &Path, operation: &'static str, source: std::io::Error) -> CgroupError {
    CgroupError::Bpf {
        path: dir.to_path_buf(),
        operation,
        source,
        detail: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_log_is_one_line_ending_in_the_reason() {
        assert_eq!(
            one_line_tail("0: (61) r2 = *(u32 *)(r1 +0)\n\nR0 !read_ok\n"),
            "0: (61) r2 = *(u32 *)(r1 +0); R0 !read_ok"
        );
        let long = format!("{}\nthe reason", "x".repeat(1000));
        let tail = one_line_tail(&long);
        assert!(
            tail.starts_with('…') && tail.ends_with("the reason"),
            "{tail}"
        );
        assert!(tail.chars().count() <= 401);
    }

    /// The attribute structs must match the kernel's field offsets.
    #[test]
    fn attr_layouts() {
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, insns), 8);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, log_buf), 32);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::size_of::<AttachAttr>(), 20);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_cnt), 24);
        assert_eq!(std::mem::size_of::<GetFdAttr>(), 12);
    }
}
