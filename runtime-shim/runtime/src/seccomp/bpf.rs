//! Classic BPF, as much of it as a seccomp filter needs: the instruction type, the opcodes,
//! the layout of `struct seccomp_data`, and an assembler that builds a program backwards so
//! that every jump target is already placed when the jump is written.

/// One classic BPF instruction, laid out exactly like the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Instruction {
    /// Opcode: class | size | mode, or class | op | source.
    pub code: u16,
    /// Instructions to skip when a conditional jump is taken.
    pub jt: u8,
    /// Instructions to skip when it is not.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

// Instruction classes, sizes, modes and operations (linux/bpf_common.h).
pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_K: u16 = 0x00;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;
pub(crate) const BPF_JSET: u16 = 0x40;

/// The kernel refuses longer programs (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// Offsets into `struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer;
/// __u64 args[6]; }`.
pub(crate) const NR_OFFSET: u32 = 0;
pub(crate) const ARCH_OFFSET: u32 = 4;
const ARGS_OFFSET: u32 = 16;

/// Offset of the low 32 bits of argument `index`. The filter runs on the host, so the
/// host's byte order decides which half comes first, whatever architecture the
/// syscall came from.
pub(crate) fn arg_lo(index: u8) -> u32 {
    let base = ARGS_OFFSET + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        base
    } else {
        base + 4
    }
}

/// Offset of the high 32 bits of argument `index`.
pub(crate) fn arg_hi(index: u8) -> u32 {
    let base = ARGS_OFFSET + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        base + 4
    } else {
        base
    }
}

/// A placed instruction, named by its distance from the end of the program (the last
/// instruction is 0). Positions from the end do not move as more code is prepended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Builds a program from its last instruction to its first. Straight-line instructions
/// fall through to the instruction emitted just before them; jumps are always forward, so
/// their targets exist and their distances are known when they are emitted. Conditional
/// jumps reach at most 255 instructions: farther targets get a `ja` trampoline.
#[derive(Default)]
pub(crate) struct Builder {
    reversed: Vec<Instruction>,
}

impl Builder {
    /// The most recently emitted instruction: where the next one falls through to.
    pub(crate) fn next(&self) -> Option<Label> {
        self.reversed.len().checked_sub(1).map(Label)
    }

    fn push(&mut self, insn: Instruction) -> Label {
        self.reversed.push(insn);
        Label(self.reversed.len() - 1)
    }

    /// Forward distance from an instruction emitted now to `target`.
    fn distance(&self, target: Label) -> usize {
        self.reversed.len() - target.0 - 1
    }

    /// `ret k`. Consecutive identical returns are shared.
    pub(crate) fn ret(&mut self, k: u32) -> Label {
        let insn = Instruction {
            code: BPF_RET | BPF_K,
            jt: 0,
            jf: 0,
            k,
        };
        match self.reversed.last() {
            Some(last) if *last == insn => Label(self.reversed.len() - 1),
            _ => self.push(insn),
        }
    }

    /// Make sure control reaches `target` from the instruction emitted next: nothing to
    /// do if `target` is the next instruction, else an unconditional jump.
    pub(crate) fn goto(&mut self, target: Label) -> Label {
        if self.next() == Some(target) {
            return target;
        }
        let k = u32::try_from(self.distance(target)).expect("BPF program longer than 2^32");
        self.push(Instruction {
            code: BPF_JMP | BPF_JA,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// A straight-line instruction (load or ALU) followed by `then`.
    pub(crate) fn stmt(&mut self, code: u16, k: u32, then: Label) -> Label {
        self.goto(then);
        self.push(Instruction {
            code,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `A = seccomp_data[offset]` (32 bits), then `then`.
    pub(crate) fn load(&mut self, offset: u32, then: Label) -> Label {
        self.stmt(BPF_LD | BPF_W | BPF_ABS, offset, then)
    }

    /// A conditional jump `if A <op> k goto jt else goto jf`.
    pub(crate) fn jump(&mut self, op: u16, k: u32, jt: Label, jf: Label) -> Label {
        let (mut jt, mut jf) = (jt, jf);
        if jt == jf {
            return self.goto(jt);
        }
        if self.distance(jt) > usize::from(u8::MAX) {
            jt = self.trampoline(jt);
        }
        if self.distance(jf) > usize::from(u8::MAX) {
            jf = self.trampoline(jf);
        }
        // A trampoline for jf pushed jt one further away; it is then at most 256, and a
        // second trampoline (for jt) brings it back within reach.
        if self.distance(jt) > usize::from(u8::MAX) {
            jt = self.trampoline(jt);
        }
        let (t, f) = (self.distance(jt), self.distance(jf));
        self.push(Instruction {
            code: BPF_JMP | op | BPF_K,
            jt: u8::try_from(t).expect("trampoline within reach"),
            jf: u8::try_from(f).expect("trampoline within reach"),
            k,
        })
    }

    fn trampoline(&mut self, target: Label) -> Label {
        let k = u32::try_from(self.distance(target)).expect("BPF program longer than 2^32");
        self.push(Instruction {
            code: BPF_JMP | BPF_JA,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// The program, first instruction first.
    pub(crate) fn finish(mut self) -> Vec<Instruction> {
        self.reversed.reverse();
        self.reversed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_jumps_get_trampolines() {
        let mut b = Builder::default();
        let far = b.ret(1);
        // 300 distinct instructions between the jump and its target.
        let mut near = far;
        for i in 0..300 {
            near = b.ret(1000 + i);
        }
        let entry = b.jump(BPF_JEQ, 7, far, near);
        let entry = b.load(NR_OFFSET, entry);
        let prog = b.finish();
        assert_eq!(entry.0, prog.len() - 1, "entry is the first instruction");
        // load, jeq, ja (the trampoline to `far`), the 300 returns, `far`.
        assert_eq!(prog[0].code, BPF_LD | BPF_W | BPF_ABS);
        assert_eq!(prog[1].code, BPF_JMP | BPF_JEQ);
        assert_eq!(prog[1].jt, 0);
        assert_eq!(prog[1].jf, 1);
        assert_eq!(prog[2].code, BPF_JMP | BPF_JA);
        assert_eq!(3 + prog[2].k as usize, prog.len() - 1);
        assert_eq!(prog[prog.len() - 1].k, 1);
    }

    #[test]
    fn both_targets_far() {
        let mut b = Builder::default();
        let a = b.ret(1);
        let c = b.ret(2);
        for i in 0..400 {
            b.ret(1000 + i);
        }
        b.jump(BPF_JGT, 9, a, c);
        let prog = b.finish();
        let j = prog[0];
        // Follow both edges to their return values.
        let follow = |mut pc: usize| loop {
            let insn = prog[pc];
            if insn.code == BPF_JMP | BPF_JA {
                pc += 1 + insn.k as usize;
            } else {
                return insn.k;
            }
        };
        assert_eq!(follow(1 + usize::from(j.jt)), 1);
        assert_eq!(follow(1 + usize::from(j.jf)), 2);
    }

    #[test]
    fn argument_offsets() {
        if cfg!(target_endian = "little") {
            assert_eq!((arg_lo(0), arg_hi(0)), (16, 20));
            assert_eq!((arg_lo(5), arg_hi(5)), (56, 60));
        } else {
            assert_eq!((arg_lo(0), arg_hi(0)), (20, 16));
        }
    }
}
