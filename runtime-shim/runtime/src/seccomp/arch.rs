//! The architectures a filter can cover: their audit numbers (what the kernel puts in
//! `seccomp_data.arch`) and their syscall name → number tables.
//!
//! The tables come from the `syscalls` crate (generated from the kernel's own tables), plus
//! the two things it lacks: the x32 ABI (x86_64 numbers with bit 30 set, and 36 syscalls
//! of its own at 512–547) and ARM's private syscalls (`cacheflush`, `set_tls`, …).

use std::collections::HashMap;
use std::sync::OnceLock;

use oci_spec::runtime::Arch;

/// Bit 30 marks an x32 syscall; x32 shares `AUDIT_ARCH_X86_64` with x86_64.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture the filter generator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Target {
    X86_64,
    X32,
    X86,
    Aarch64,
    Arm,
    Riscv64,
    S390x,
    Ppc64,
    Ppc64le,
    Loongarch64,
}

impl Target {
    /// The architecture of the machine this runtime was built for.
    pub(crate) fn native() -> Option<Target> {
        if cfg!(all(target_arch = "x86_64", target_pointer_width = "64")) {
            Some(Target::X86_64)
        } else if cfg!(target_arch = "x86_64") {
            Some(Target::X32)
        } else if cfg!(target_arch = "x86") {
            Some(Target::X86)
        } else if cfg!(target_arch = "aarch64") {
            Some(Target::Aarch64)
        } else if cfg!(target_arch = "arm") {
            Some(Target::Arm)
        } else if cfg!(target_arch = "riscv64") {
            Some(Target::Riscv64)
        } else if cfg!(target_arch = "s390x") {
            Some(Target::S390x)
        } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
            Some(Target::Ppc64le)
        } else if cfg!(target_arch = "powerpc64") {
            Some(Target::Ppc64)
        } else if cfg!(target_arch = "loongarch64") {
            Some(Target::Loongarch64)
        } else {
            None
        }
    }

    /// The target for an OCI architecture name; `None` when Berth has no syscall table
    /// for it (the native one is resolved).
    pub(crate) fn from_oci(arch: Arch) -> Option<Target> {
        match arch {
            Arch::ScmpArchNative => Target::native(),
            Arch::ScmpArchX86_64 => Some(Target::X86_64),
            Arch::ScmpArchX32 => Some(Target::X32),
            Arch::ScmpArchX86 => Some(Target::X86),
            Arch::ScmpArchAarch64 => Some(Target::Aarch64),
            Arch::ScmpArchArm => Some(Target::Arm),
            Arch::ScmpArchRiscv64 => Some(Target::Riscv64),
            Arch::ScmpArchS390x => Some(Target::S390x),
            Arch::ScmpArchPpc64 => Some(Target::Ppc64),
            Arch::ScmpArchPpc64le => Some(Target::Ppc64le),
            Arch::ScmpArchLoongarch64 => Some(Target::Loongarch64),
            _ => None,
        }
    }

    /// `AUDIT_ARCH_*`: the value of `seccomp_data.arch` for syscalls of this ABI.
    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            Target::X86_64 | Target::X32 => 0xC000_003E,
            Target::X86 => 0x4000_0003,
            Target::Aarch64 => 0xC000_00B7,
            Target::Arm => 0x4000_0028,
            Target::Riscv64 => 0xC000_00F3,
            Target::S390x => 0x8000_0016,
            Target::Ppc64 => 0x8000_0015,
            Target::Ppc64le => 0xC000_0015,
            Target::Loongarch64 => 0xC000_0102,
        }
    }

    /// Whether syscall arguments are 32 bits wide in this ABI: only their low halves are
    /// compared (the kernel zero-extends them, as libseccomp assumes).
    pub(crate) fn args_are_32bit(self) -> bool {
        matches!(self, Target::X86 | Target::X32 | Target::Arm)
    }

    /// The syscall number of `name` in this ABI, as the filter sees it in
    /// `seccomp_data.nr`.
    pub(crate) fn syscall_nr(self, name: &str) -> Option<u32> {
        self.table().get(name).copied()
    }

    /// Name → number, built on first use: a hash lookup beats the `syscalls` crate's
    /// `FromStr`, a `match` over ~450 string arms.
    fn table(self) -> &'static HashMap<&'static str, u32> {
        macro_rules! table {
            ($arch:ident, $fixup:expr) => {{
                static TABLE: OnceLock<HashMap<&'static str, u32>> = OnceLock::new();
                TABLE.get_or_init(|| {
                    use syscalls::$arch::Sysno;
                    let mut table = (Sysno::first().id()..=Sysno::last().id())
                        .filter_map(|nr| Sysno::new(nr as usize))
                        .map(|s| (s.name(), s.id() as u32))
                        .collect();
                    $fixup(&mut table);
                    table
                })
            }};
        }
        let as_is = |_: &mut HashMap<&'static str, u32>| {};
        match self {
            Target::X86_64 => table!(x86_64, as_is),
            Target::X32 => table!(x86_64, x32_table),
            Target::X86 => table!(x86, as_is),
            Target::Aarch64 => table!(aarch64, as_is),
            Target::Arm => table!(arm, arm_table),
            Target::Riscv64 => table!(riscv64, as_is),
            Target::S390x => table!(s390x, as_is),
            Target::Ppc64 | Target::Ppc64le => table!(powerpc64, as_is),
            Target::Loongarch64 => table!(loongarch64, as_is),
        }
    }
}

/// x32 syscalls whose x32 entry differs from the x86_64 one (arch/x86/entry/syscalls/
/// syscall_64.tbl, the `x32` lines): they take 32-bit pointers to structures.
const X32_OWN: &[(&str, u32)] = &[
    ("rt_sigaction", 512),
    ("rt_sigreturn", 513),
    ("ioctl", 514),
    ("readv", 515),
    ("writev", 516),
    ("recvfrom", 517),
    ("sendmsg", 518),
    ("recvmsg", 519),
    ("execve", 520),
    ("ptrace", 521),
    ("rt_sigpending", 522),
    ("rt_sigtimedwait", 523),
    ("rt_sigqueueinfo", 524),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("mq_notify", 527),
    ("kexec_load", 528),
    ("waitid", 529),
    ("set_robust_list", 530),
    ("get_robust_list", 531),
    ("vmsplice", 532),
    ("move_pages", 533),
    ("preadv", 534),
    ("pwritev", 535),
    ("rt_tgsigqueueinfo", 536),
    ("recvmmsg", 537),
    ("sendmmsg", 538),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("setsockopt", 541),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("execveat", 545),
    ("preadv2", 546),
    ("pwritev2", 547),
];

/// x32: the x86_64 numbers with its own entries in place, all with bit 30 set.
fn x32_table(table: &mut HashMap<&'static str, u32>) {
    for (name, nr) in X32_OWN {
        table.insert(name, *nr);
    }
    for nr in table.values_mut() {
        *nr |= X32_SYSCALL_BIT;
    }
}

/// ARM's private syscalls (`__ARM_NR_*`, arch/arm/include/uapi/asm/unistd.h), above the
/// regular table at 0x0f0000.
fn arm_table(table: &mut HashMap<&'static str, u32>) {
    const BASE: u32 = 0x000f_0000;
    let private = [
        ("breakpoint", 1),
        ("cacheflush", 2),
        ("usr26", 3),
        ("usr32", 4),
        ("set_tls", 5),
        ("get_tls", 6),
    ];
    for (name, offset) in private {
        table.insert(name, BASE + offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        assert_eq!(Target::X86_64.syscall_nr("read"), Some(0));
        assert_eq!(Target::X86_64.syscall_nr("mkdir"), Some(83));
        assert_eq!(Target::X86_64.syscall_nr("clone3"), Some(435));
        assert_eq!(Target::X86.syscall_nr("mkdir"), Some(39));
        assert_eq!(Target::X86.syscall_nr("socketcall"), Some(102));
        assert_eq!(Target::Aarch64.syscall_nr("mkdirat"), Some(34));
        assert_eq!(Target::Aarch64.syscall_nr("mkdir"), None);
        assert_eq!(Target::Arm.syscall_nr("mkdir"), Some(39));
        assert_eq!(Target::Arm.syscall_nr("cacheflush"), Some(0x000f_0002));
        assert_eq!(Target::X32.syscall_nr("read"), Some(X32_SYSCALL_BIT));
        assert_eq!(Target::X32.syscall_nr("ioctl"), Some(X32_SYSCALL_BIT | 514));
        assert_eq!(Target::X86_64.syscall_nr("no_such_syscall"), None);
        assert_eq!(Target::X32.syscall_nr("no_such_syscall"), None);
        // The first and last entries of the tables.
        assert_eq!(Target::X86.syscall_nr("restart_syscall"), Some(0));
        assert_eq!(Target::X86_64.syscall_nr("file_setattr"), Some(469));
    }

    #[test]
    fn native_is_known() {
        let native = Target::native().expect("a supported host");
        assert_eq!(Target::from_oci(Arch::ScmpArchNative), Some(native));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(native, Target::X86_64);
        }
    }

    #[test]
    fn audit_numbers_match_libseccomp_tokens() {
        // libseccomp's SCMP_ARCH_* tokens are the AUDIT_ARCH_* values (x32 aside), and
        // oci-spec's Arch enum carries them as discriminants.
        for arch in [
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchAarch64,
            Arch::ScmpArchArm,
            Arch::ScmpArchRiscv64,
            Arch::ScmpArchS390x,
            Arch::ScmpArchPpc64,
            Arch::ScmpArchPpc64le,
            Arch::ScmpArchLoongarch64,
        ] {
            let target = Target::from_oci(arch).unwrap();
            assert_eq!(target.audit_arch(), arch as u32, "{arch}");
        }
    }
}
