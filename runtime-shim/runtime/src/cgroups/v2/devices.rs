//! v2 device access control: cgroup v2 has no devices files, so the device list is
//! compiled into an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program and attached to the
//! cgroup directory, as runc's `devicefilter` does.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (the device type in the low 16 bits of `access_type`, the requested access in the
//! high 16) and returns 1 to allow, 0 to deny. It is one block per exception of the
//! [`Emulator`]'s list, each jumping to the next block on a mismatch and returning the
//! exception's verdict on a match, then the list's default.

use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::bpf::{
    self, Insn, ALU_AND_K, ALU_MOV_K, ALU_MOV_X, ALU_RSH_K, JMP_EXIT, JMP_JEQ_K, JMP_JNE_K,
    JMP_JNE_X, LDX_MEM_W,
};
use crate::cgroups::devices::{self, Access, Emulator, Kind, Match};
use crate::cgroups::{CgroupError, Controller};

/// `BPF_DEVCG_DEV_BLOCK` and `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

// Registers: R0 the verdict, R1 the context (then scratch), R2 type, R3 access,
// R4 major, R5 minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// Writes no files: compiles the device list (the spec's rules plus the defaults, see
/// [`crate::cgroups::devices`]) into an eBPF program and attaches it, replacing any
/// device program attached before (an `update`).
pub(crate) struct Devices;

impl Controller for Devices {
    const NAME: &'static str = "devices";

    fn needed(resources: &LinuxResources) -> bool {
        devices::needed(resources)
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let emulator = devices::target(dir, resources)?;
        let program = bpf::load(dir, &program(&emulator))?;
        let cgroup = open_dir(dir)?;
        let old = bpf::query(dir, &cgroup)?;
        bpf::attach(dir, &cgroup, &program)?;
        // The new program is in force; only now drop the ones it replaces, so the
        // container is never without a device filter.
        for id in old {
            bpf::detach(dir, &cgroup, id)?;
        }
        Ok(())
    }
}

/// How many device programs are attached directly to the cgroup at `dir`.
#[cfg(test)]
pub(crate) fn attached(dir: &Path) -> Result<usize, CgroupError> {
    Ok(bpf::query(dir, &open_dir(dir)?)?.len())
}

fn open_dir(dir: &Path) -> Result<OwnedFd, CgroupError> {
    nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| CgroupError::Read {
        path: dir.to_path_buf(),
        source: errno.into(),
    })
}

/// The device filter for `emulator`'s list.
pub(crate) fn program(emulator: &Emulator) -> Vec<Insn> {
    let mut insns = vec![
        Insn::new(LDX_MEM_W, R2, R1, 0, 0),     // R2 = access_type
        Insn::new(ALU_AND_K, R2, 0, 0, 0xffff), // R2 &= 0xffff: the device type
        Insn::new(LDX_MEM_W, R3, R1, 0, 0),     // R3 = access_type
        Insn::new(ALU_RSH_K, R3, 0, 0, 16),     // R3 >>= 16: the requested access
        Insn::new(LDX_MEM_W, R4, R1, 4, 0),     // R4 = major
        Insn::new(LDX_MEM_W, R5, R1, 8, 0),     // R5 = minor
    ];
    // Exceptions allow when the default is deny, and deny when it is allow.
    let verdict = !emulator.default_allow();
    for (matched, access) in emulator.exceptions() {
        insns.extend(block(matched, access, verdict));
    }
    insns.push(Insn::new(
        ALU_MOV_K,
        R0,
        0,
        0,
        i32::from(emulator.default_allow()),
    ));
    insns.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    insns
}

/// One exception: every check jumps past the block on a mismatch; falling through all
/// of them returns `allow`.
fn block(matched: Match, access: Access, allow: bool) -> Vec<Insn> {
    const NEXT: i16 = 0; // patched below to the end of the block
    let kind = match matched.kind {
        Kind::Block => DEV_BLOCK,
        Kind::Char => DEV_CHAR,
    };
    let mut block = vec![Insn::new(JMP_JNE_K, R2, 0, NEXT, kind)];
    if access != Access::ALL {
        block.push(Insn::new(ALU_MOV_X, R1, R3, 0, 0));
        block.push(Insn::new(ALU_AND_K, R1, 0, 0, i32::from(access.bits())));
        if allow {
            // Allowed only if every requested bit is in the rule: (R3 & rule) == R3.
            block.push(Insn::new(JMP_JNE_X, R1, R3, NEXT, 0));
        } else {
            // Denied if any requested bit is in the rule, as v1 denies.
            block.push(Insn::new(JMP_JEQ_K, R1, 0, NEXT, 0));
        }
    }
    // Device numbers fit in i32 (checked when the rule was read).
    if let Some(major) = matched.major {
        block.push(Insn::new(
            JMP_JNE_K,
            R4,
            0,
            NEXT,
            i32::try_from(major).unwrap_or(-1),
        ));
    }
    if let Some(minor) = matched.minor {
        block.push(Insn::new(
            JMP_JNE_K,
            R5,
            0,
            NEXT,
            i32::try_from(minor).unwrap_or(-1),
        ));
    }
    block.push(Insn::new(ALU_MOV_K, R0, 0, 0, i32::from(allow)));
    block.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    let len = block.len();
    for (index, insn) in block.iter_mut().enumerate() {
        if insn.is_jump() {
            insn.off = i16::try_from(len - index - 1).unwrap_or(i16::MAX);
        }
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `program` as the kernel would for one device access: a small interpreter for
    /// the instructions [`program`] emits.
    fn run(program: &[Insn], kind: i32, access: u8, major: u32, minor: u32) -> u64 {
        let mut regs = [0u64; 11];
        let ctx = [
            u32::try_from(kind).unwrap() | (u32::from(access) << 16),
            major,
            minor,
        ];
        let mut pc = 0usize;
        loop {
            let insn = program[pc];
            let (dst, src) = (usize::from(insn.regs & 0xf), usize::from(insn.regs >> 4));
            let imm64 = i64::from(insn.imm) as u64; // sign-extended, as the kernel does
            let imm32 = insn.imm as u32;
            let jump = |taken: bool| {
                if taken {
                    pc + 1 + usize::try_from(insn.off).unwrap()
                } else {
                    pc + 1
                }
            };
            pc = match insn.code {
                LDX_MEM_W => {
                    assert_eq!(src, usize::from(R1), "loads only from the context");
                    regs[dst] = u64::from(ctx[usize::try_from(insn.off).unwrap() / 4]);
                    pc + 1
                }
                ALU_AND_K => {
                    regs[dst] = u64::from((regs[dst] as u32) & imm32);
                    pc + 1
                }
                ALU_RSH_K => {
                    regs[dst] = u64::from((regs[dst] as u32) >> imm32);
                    pc + 1
                }
                ALU_MOV_K => {
                    regs[dst] = u64::from(imm32);
                    pc + 1
                }
                ALU_MOV_X => {
                    regs[dst] = u64::from(regs[src] as u32);
                    pc + 1
                }
                JMP_JEQ_K => jump(regs[dst] == imm64),
                JMP_JNE_K => jump(regs[dst] != imm64),
                JMP_JNE_X => jump(regs[dst] != regs[src]),
                JMP_EXIT => return regs[0],
                other => panic!("unexpected opcode {other:#x}"),
            };
        }
    }

    const R: u8 = 2;
    const W: u8 = 4;
    const M: u8 = 1;

    fn compile(json: &str) -> Vec<Insn> {
        let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        program(&Emulator::for_spec(&rules).unwrap())
    }

    #[test]
    fn default_deny_with_the_default_devices() {
        let program = compile(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}]"#,
        );
        // Allowed: the defaults and the spec's rule.
        assert_eq!(run(&program, DEV_CHAR, R | W, 1, 3), 1, "/dev/null rw");
        assert_eq!(run(&program, DEV_CHAR, R, 1, 9), 1, "/dev/urandom");
        assert_eq!(run(&program, DEV_CHAR, R | W, 136, 42), 1, "a pty");
        assert_eq!(
            run(&program, DEV_CHAR, M, 4, 1),
            1,
            "mknod of any char device"
        );
        assert_eq!(
            run(&program, DEV_BLOCK, M, 8, 0),
            1,
            "mknod of any block device"
        );
        assert_eq!(run(&program, DEV_BLOCK, R, 8, 0), 1, "the spec's read rule");
        // Denied.
        assert_eq!(
            run(&program, DEV_BLOCK, R | W, 8, 0),
            0,
            "write is not in the rule"
        );
        assert_eq!(run(&program, DEV_BLOCK, R, 8, 1), 0, "another minor");
        assert_eq!(run(&program, DEV_CHAR, R, 1, 11), 0, "/dev/kmsg");
        assert_eq!(run(&program, DEV_CHAR, R, 8, 0), 0, "char, not block");
        assert_eq!(run(&program, DEV_CHAR, R | M, 4, 1), 0, "mknod alone only");
    }

    #[test]
    fn default_allow_with_denied_devices() {
        let program = compile(
            r#"[{"allow": true, "access": "rwm"},
                {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                {"allow": false, "type": "b", "major": 7, "access": "rwm"}]"#,
        );
        assert_eq!(run(&program, DEV_CHAR, R, 10, 229), 0);
        assert_eq!(
            run(&program, DEV_CHAR, R | M, 10, 229),
            0,
            "any overlap denies"
        );
        assert_eq!(
            run(&program, DEV_CHAR, M, 10, 229),
            1,
            "mknod was not denied"
        );
        assert_eq!(run(&program, DEV_BLOCK, R, 7, 3), 0, "the whole loop major");
        assert_eq!(run(&program, DEV_BLOCK, R, 8, 0), 1);
        assert_eq!(run(&program, DEV_CHAR, R | W, 1, 1), 1);
    }

    #[test]
    fn empty_list_is_the_default_alone() {
        let deny_all = program(&Emulator::default());
        assert_eq!(deny_all.len(), 8);
        assert_eq!(deny_all[6], Insn::new(ALU_MOV_K, R0, 0, 0, 0));
        assert_eq!(run(&deny_all, DEV_CHAR, R, 1, 3), 0);
    }

    #[test]
    fn block_layout_and_jump_offsets() {
        let matched = Match {
            kind: Kind::Char,
            major: Some(1),
            minor: Some(3),
        };
        let block = block(matched, Access::parse("r").unwrap(), true);
        assert_eq!(
            block,
            [
                Insn::new(JMP_JNE_K, R2, 0, 7, DEV_CHAR),
                Insn::new(ALU_MOV_X, R1, R3, 0, 0),
                Insn::new(ALU_AND_K, R1, 0, 0, 2),
                Insn::new(JMP_JNE_X, R1, R3, 4, 0),
                Insn::new(JMP_JNE_K, R4, 0, 3, 1),
                Insn::new(JMP_JNE_K, R5, 0, 2, 3),
                Insn::new(ALU_MOV_K, R0, 0, 0, 1),
                Insn::new(JMP_EXIT, 0, 0, 0, 0),
            ]
        );
        let wildcard = super::block(
            Match {
                kind: Kind::Block,
                major: None,
                minor: None,
            },
            Access::ALL,
            false,
        );
        assert_eq!(
            wildcard.len(),
            3,
            "rwm and wildcards need no checks: {wildcard:?}"
        );
    }

    #[test]
    fn insn_encoding() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let insn = Insn::new(JMP_JNE_X, R1, R3, 4, 0);
        assert_eq!(insn.regs, 0x31);
        assert!(insn.is_jump());
        assert!(!Insn::new(JMP_EXIT, 0, 0, 0, 0).is_jump());
        assert!(!Insn::new(ALU_MOV_K, R0, 0, 0, 1).is_jump());
    }
}
