//! Tests of the whole module: compiled programs run in a BPF interpreter against the rule
//! semantics, and filters installed for real in forked children.

use std::ffi::CString;

use libc::{
    SECCOMP_RET_ALLOW as ALLOW, SECCOMP_RET_ERRNO as ERRNO,
    SECCOMP_RET_KILL_PROCESS as KILL_PROCESS, SECCOMP_RET_KILL_THREAD as KILL_THREAD,
    SECCOMP_RET_LOG as LOG, SECCOMP_RET_TRACE as TRACE, SECCOMP_RET_TRAP as TRAP,
    SECCOMP_RET_USER_NOTIF as NOTIFY,
};
use oci_spec::runtime::LinuxSeccomp;

use super::arch::{Target, X32_SYSCALL_BIT};
use super::testing::{check, failure, in_child, profile, run, Data, Outcome, INSTALL_FAILED};
use super::{compile, Program, SeccompError};

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;
const X86_64: u32 = 0xC000_003E;
const I386: u32 = 0x4000_0003;
const AARCH64: u32 = 0xC000_00B7;

/// Compile, check as the kernel would, and return the program.
fn build(json: &str) -> Program {
    let program = compile(&profile(json)).unwrap_or_else(|e| panic!("{e}\n{json}"));
    check(program.instructions());
    program
}

/// What the program returns for syscall `name` of `target` with `args`.
fn verdict(program: &Program, target: Target, name: &str, args: [u64; 6]) -> u32 {
    let nr = target
        .syscall_nr(name)
        .unwrap_or_else(|| panic!("{name} on {target:?}"));
    run(
        program.instructions(),
        &Data {
            nr,
            arch: target.audit_arch(),
            args,
        },
    )
}

fn x86_64(program: &Program, name: &str) -> u32 {
    verdict(program, Target::X86_64, name, [0; 6])
}

/// A profile on x86_64 (and the native arch): `default`, and one rule for mkdir.
fn mkdir_rule(default: &str, rule: &str) -> Program {
    build(&format!(
        r#"{{"defaultAction":{default},"architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{{"names":["mkdir"],{rule}}}]}}"#
    ))
}

#[test]
fn every_action() {
    let cases = [
        (r#""action":"SCMP_ACT_ALLOW""#, ALLOW),
        (r#""action":"SCMP_ACT_ERRNO","errnoRet":42"#, ERRNO | 42),
        (r#""action":"SCMP_ACT_ERRNO""#, ERRNO | EPERM),
        (r#""action":"SCMP_ACT_ERRNO","errnoRet":0"#, ERRNO),
        (r#""action":"SCMP_ACT_KILL""#, KILL_THREAD),
        (r#""action":"SCMP_ACT_KILL_THREAD""#, KILL_THREAD),
        (r#""action":"SCMP_ACT_KILL_PROCESS""#, KILL_PROCESS),
        (r#""action":"SCMP_ACT_TRAP""#, TRAP),
        (r#""action":"SCMP_ACT_TRACE","errnoRet":1234"#, TRACE | 1234),
        (r#""action":"SCMP_ACT_TRACE""#, TRACE | EPERM),
        (r#""action":"SCMP_ACT_LOG""#, LOG),
    ];
    for (rule, expected) in cases {
        let program = mkdir_rule(r#""SCMP_ACT_ALLOW""#, rule);
        assert_eq!(x86_64(&program, "mkdir"), expected, "{rule}");
        assert_eq!(x86_64(&program, "getpid"), ALLOW, "{rule}");
        assert!(!program.has_listener());
    }

    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "listenerPath":"/run/agent.sock",
            "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert_eq!(x86_64(&program, "mkdir"), NOTIFY);
    assert!(program.has_listener());
}

#[test]
fn default_action_and_errno() {
    let cases = [
        (r#""SCMP_ACT_ALLOW""#, ALLOW),
        (r#""SCMP_ACT_ERRNO""#, ERRNO | EPERM),
        (r#""SCMP_ACT_ERRNO","defaultErrnoRet":99"#, ERRNO | 99),
        (r#""SCMP_ACT_KILL_PROCESS""#, KILL_PROCESS),
        (r#""SCMP_ACT_KILL""#, KILL_THREAD),
        (r#""SCMP_ACT_TRAP""#, TRAP),
        (r#""SCMP_ACT_TRACE","defaultErrnoRet":7"#, TRACE | 7),
        (r#""SCMP_ACT_LOG""#, LOG),
    ];
    for (default, expected) in cases {
        // read (0) is below mkdir (83): the default applies, not the ENOSYS for newer ones.
        let program = mkdir_rule(default, r#""action":"SCMP_ACT_ERRNO","errnoRet":5"#);
        assert_eq!(x86_64(&program, "mkdir"), ERRNO | 5, "{default}");
        assert_eq!(x86_64(&program, "read"), expected, "{default}");
    }
}

#[test]
fn syscalls_above_the_profile_get_enosys_when_the_default_refuses() {
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["read","mkdir"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(x86_64(&program, "read"), ALLOW);
    assert_eq!(
        x86_64(&program, "write"),
        ERRNO | EPERM,
        "below the largest named"
    );
    assert_eq!(x86_64(&program, "openat"), ERRNO | ENOSYS, "above it");
    assert_eq!(x86_64(&program, "clone3"), ERRNO | ENOSYS);

    // Not when the default lets syscalls through, nor when it is ENOSYS already.
    let program = mkdir_rule(r#""SCMP_ACT_LOG""#, r#""action":"SCMP_ACT_ERRNO""#);
    assert_eq!(x86_64(&program, "openat"), LOG);
    let program = mkdir_rule(r#""SCMP_ACT_KILL_PROCESS""#, r#""action":"SCMP_ACT_ALLOW""#);
    assert_eq!(x86_64(&program, "openat"), ERRNO | ENOSYS);
    assert_eq!(x86_64(&program, "read"), KILL_PROCESS);
}

/// Whether `arg0 <op> value` matches for `arg`, per the compiled filter.
fn matches(op: &str, value: u64, value_two: Option<u64>, target: Target, arg: u64) -> bool {
    let arch = match target {
        Target::X86_64 => "SCMP_ARCH_X86_64",
        Target::X86 => "SCMP_ARCH_X86",
        _ => unreachable!(),
    };
    let two = value_two
        .map(|v| format!(r#","valueTwo":{v}"#))
        .unwrap_or_default();
    let program = build(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["{arch}"],
            "syscalls":[{{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":42,
                         "args":[{{"index":0,"value":{value}{two},"op":"{op}"}}]}}]}}"#
    ));
    match verdict(&program, target, "mkdir", [arg, 0, 0, 0, 0, 0]) {
        v if v == ERRNO | 42 => true,
        ALLOW => false,
        v => panic!("unexpected {v:#x}"),
    }
}

#[test]
fn every_operator_on_64_bit_arguments() {
    const BIG: u64 = 0x0000_0001_0000_0005; // high half 1, low half 5
    let values = [
        0,
        4,
        5,
        6,
        0xffff_ffff,
        BIG - 1,
        BIG,
        BIG + 1,
        0x0000_0002_0000_0000,
        0x0000_0000_ffff_fffe,
        u64::MAX,
    ];
    type Holds = fn(u64, u64) -> bool;
    let ops: [(&str, Holds); 6] = [
        ("SCMP_CMP_EQ", |a, v| a == v),
        ("SCMP_CMP_NE", |a, v| a != v),
        ("SCMP_CMP_LT", |a, v| a < v),
        ("SCMP_CMP_LE", |a, v| a <= v),
        ("SCMP_CMP_GT", |a, v| a > v),
        ("SCMP_CMP_GE", |a, v| a >= v),
    ];
    for (op, f) in ops {
        for value in [5, BIG, 0xffff_ffff, u64::MAX, 0] {
            for arg in values {
                assert_eq!(
                    matches(op, value, None, Target::X86_64, arg),
                    f(arg, value),
                    "{arg:#x} {op} {value:#x}"
                );
            }
        }
    }
}

#[test]
fn masked_eq() {
    // (arg & mask) == valueTwo, with masks on either half.
    let cases = [
        (0o700, 0o700, 0o755, true),
        (0o700, 0o700, 0o644, false),
        (0x7E02_0000, 0, 0x0001_1200, true), // clone without namespace flags
        (0x7E02_0000, 0, 0x1001_1200, false), // CLONE_NEWUSER
        (
            0xffff_0000_0000_0000,
            0x1234_0000_0000_0000,
            0x1234_5678_9abc_def0,
            true,
        ),
        (
            0xffff_0000_0000_0000,
            0x1234_0000_0000_0000,
            0x1235_5678_9abc_def0,
            false,
        ),
        (
            0x0000_0001_0000_0001,
            0x0000_0001_0000_0000,
            0x0000_0001_0000_0002,
            true,
        ),
        (
            0x0000_0001_0000_0001,
            0x0000_0001_0000_0000,
            0x0000_0001_0000_0003,
            false,
        ),
        // A datum outside the mask never matches.
        (0xff, 0x1_0000_0000, 0x1_0000_0000, false),
    ];
    for (mask, datum, arg, expected) in cases {
        assert_eq!(
            matches("SCMP_CMP_MASKED_EQ", mask, Some(datum), Target::X86_64, arg),
            expected,
            "({arg:#x} & {mask:#x}) == {datum:#x}"
        );
    }
    // valueTwo absent means 0.
    assert!(matches(
        "SCMP_CMP_MASKED_EQ",
        0xf0,
        None,
        Target::X86_64,
        0x0f
    ));
    assert!(!matches(
        "SCMP_CMP_MASKED_EQ",
        0xf0,
        None,
        Target::X86_64,
        0x1f
    ));
}

#[test]
fn thirty_two_bit_abis_compare_the_low_half() {
    // On x86 the kernel zero-extends arguments; a value's high half is ignored.
    assert!(matches(
        "SCMP_CMP_EQ",
        0xffff_ffff,
        None,
        Target::X86,
        0xffff_ffff
    ));
    assert!(matches(
        "SCMP_CMP_EQ",
        u64::MAX,
        None,
        Target::X86,
        0xffff_ffff
    ));
    assert!(matches("SCMP_CMP_GT", 5, None, Target::X86, 6));
    assert!(!matches("SCMP_CMP_GT", 5, None, Target::X86, 5));
    assert!(matches("SCMP_CMP_LT", 5, None, Target::X86, 4));
    assert!(matches(
        "SCMP_CMP_MASKED_EQ",
        0xff,
        Some(0x12),
        Target::X86,
        0x3412
    ));
}

#[test]
fn conditions_and_rules_combine() {
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[
              {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
               "args":[{"index":0,"value":10,"op":"SCMP_CMP_EQ"},
                       {"index":1,"value":20,"op":"SCMP_CMP_GE"}]},
              {"names":["mkdir","rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":2,
               "args":[{"index":5,"value":30,"op":"SCMP_CMP_EQ"}]},
              {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":3},
              {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":4,
               "args":[{"index":2,"value":1,"op":"SCMP_CMP_EQ"}]},
              {"names":["rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":5,
               "args":[{"index":0,"value":1,"op":"SCMP_CMP_GE"},
                       {"index":0,"value":3,"op":"SCMP_CMP_LE"}]}
            ]}"#,
    );
    let v = |name, args| verdict(&program, Target::X86_64, name, args);
    // ANDed: both conditions of the first rule.
    assert_eq!(v("mkdir", [10, 20, 0, 0, 0, 0]), ERRNO | 1);
    assert_eq!(v("mkdir", [10, 19, 0, 0, 0, 0]), ERRNO | 3);
    // ORed, in order: the second rule when the first does not match…
    assert_eq!(v("mkdir", [0, 0, 0, 0, 0, 30]), ERRNO | 2);
    assert_eq!(v("mkdir", [10, 20, 0, 0, 0, 30]), ERRNO | 1);
    // …conditional rules before the unconditional one, wherever it is listed.
    assert_eq!(v("mkdir", [0, 0, 1, 0, 0, 0]), ERRNO | 4);
    assert_eq!(v("mkdir", [0; 6]), ERRNO | 3);
    // Two conditions on one argument are ANDed too: a range.
    assert_eq!(v("rmdir", [0; 6]), ALLOW);
    assert_eq!(v("rmdir", [2, 0, 0, 0, 0, 0]), ERRNO | 5);
    assert_eq!(v("rmdir", [4, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(v("rmdir", [0, 0, 0, 0, 0, 30]), ERRNO | 2);
}

#[test]
fn architectures() {
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_AARCH64","SCMP_ARCH_MIPS"],
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    assert_eq!(
        verdict(&program, Target::X86_64, "mkdir", [0; 6]),
        ERRNO | 42
    );
    assert_eq!(verdict(&program, Target::X86, "mkdir", [0; 6]), ERRNO | 42);
    assert_eq!(
        verdict(&program, Target::Aarch64, "mkdirat", [0; 6]),
        ERRNO | 42
    );
    // x86's mkdir is 39, x86_64's getpid: each arch has its own numbers.
    assert_eq!(
        run(
            program.instructions(),
            &Data {
                nr: 39,
                arch: X86_64,
                args: [0; 6]
            }
        ),
        ALLOW
    );
    assert_eq!(
        run(
            program.instructions(),
            &Data {
                nr: 39,
                arch: I386,
                args: [0; 6]
            }
        ),
        ERRNO | 42
    );
    // An architecture not covered (MIPS has no table; arm was not listed), and x32
    // syscalls when x32 was not listed: killed.
    for data in [
        Data {
            nr: 39,
            arch: 0x4000_0028,
            args: [0; 6],
        },
        Data {
            nr: 4039,
            arch: 0x0000_0008,
            args: [0; 6],
        },
        Data {
            nr: X32_SYSCALL_BIT | 83,
            arch: X86_64,
            args: [0; 6],
        },
    ] {
        assert_eq!(run(program.instructions(), &data), KILL_PROCESS, "{data:?}");
    }

    // With x32 listed, its syscalls are filtered with its own numbers.
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"],
            "syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    assert_eq!(
        verdict(&program, Target::X86_64, "ioctl", [0; 6]),
        ERRNO | 42
    );
    assert_eq!(verdict(&program, Target::X32, "ioctl", [0; 6]), ERRNO | 42);
    assert_eq!(verdict(&program, Target::X32, "read", [0; 6]), ALLOW);
    // x32's ioctl is 514; 16 (x86_64's ioctl) with the x32 bit is not ioctl for x32.
    assert_eq!(
        run(
            program.instructions(),
            &Data {
                nr: X32_SYSCALL_BIT | 16,
                arch: X86_64,
                args: [0; 6]
            }
        ),
        ALLOW
    );

    // No architectures: the native one only.
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    let native = Target::native().unwrap();
    assert_eq!(verdict(&program, native, "mkdirat", [0; 6]), ERRNO | 42);
    if native != Target::Aarch64 {
        assert_eq!(
            verdict(&program, Target::Aarch64, "mkdirat", [0; 6]),
            KILL_PROCESS
        );
    }
}

#[test]
fn unknown_syscalls_are_skipped() {
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["no_such_syscall","mkdir"],"action":"SCMP_ACT_ERRNO"},
                        {"names":["another_unknown"],"action":"SCMP_ACT_KILL"}]}"#,
    );
    assert_eq!(x86_64(&program, "mkdir"), ERRNO | EPERM);
    assert_eq!(x86_64(&program, "read"), ALLOW);
}

#[test]
fn malformed_profiles_are_errors_naming_the_rule() {
    let cases = [
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#,
            "seccomp: linux.seccomp.syscalls[0]: no syscall names",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["read"],"action":"SCMP_ACT_ALLOW"},
                {"names":["mkdir","rmdir"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#,
            "seccomp: linux.seccomp.syscalls[1] (mkdir, rmdir): errnoRet is only valid with \
             SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}"#,
            "seccomp: defaultAction: errnoRet is only valid with SCMP_ACT_ERRNO or \
             SCMP_ACT_TRACE, not SCMP_ACT_ALLOW",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5000}"#,
            "seccomp: defaultAction: errnoRet 5000 is out of range (at most 4095 for \
             SCMP_ACT_ERRNO, 65535 for SCMP_ACT_TRACE)",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
                "action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "seccomp: linux.seccomp.syscalls[0] (read): argument index 6 is out of range (0 to 5)",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a","b","c","d","e"],
                "action":"SCMP_ACT_ERRNO",
                "args":[{"index":0,"value":1,"valueTwo":2,"op":"SCMP_CMP_EQ"}]}]}"#,
            "seccomp: linux.seccomp.syscalls[0] (a, b, c, … 2 more): valueTwo (2) is only \
             valid with SCMP_CMP_MASKED_EQ, not SCMP_CMP_EQ",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/x"}"#,
            "seccomp: SCMP_ACT_NOTIFY cannot be the defaultAction",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],
                "action":"SCMP_ACT_NOTIFY"}]}"#,
            "seccomp: linux.seccomp.syscalls[0] (mkdir): SCMP_ACT_NOTIFY needs \
             linux.seccomp.listenerPath",
        ),
    ];
    for (json, message) in cases {
        let err = compile(&profile(json)).expect_err(json);
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn too_large_a_filter_is_refused() {
    // Many conditional rules: each costs instructions on every architecture.
    let rules: Vec<String> = (0..1500)
        .map(|i| {
            format!(
                r#"{{"names":["ioctl"],"action":"SCMP_ACT_ALLOW",
                    "args":[{{"index":1,"value":{i},"op":"SCMP_CMP_EQ"}}]}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{}]}}"#,
        rules.join(",")
    );
    match compile(&profile(&json)) {
        Err(SeccompError::TooLarge { instructions }) => assert!(instructions > 4096),
        other => panic!("{other:?}"),
    }
}

#[test]
fn flags() {
    let flags = |json: &str| build(json).flags();
    assert_eq!(flags(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#), 0);
    assert_eq!(
        flags(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#
        ),
        (libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            | libc::SECCOMP_FILTER_FLAG_TSYNC)
    );
    assert_eq!(
        flags(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x",
                "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#
        ),
        (libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
            | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
    );
}

// ---------------------------------------------------------------------------------------
// Random profiles against a direct evaluation of the rules.

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "close",
    "mkdir",
    "mkdirat",
    "ioctl",
    "socket",
    "clone",
    "futex",
    "getpid",
    "socketcall",
    "rt_sigaction",
    "no_such_syscall",
];
const VALUES: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0xffff_ffff_0000_0000,
    0x8000_0000_0000_0000,
    u64::MAX,
];
const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
const ACTIONS: &[&str] = &[
    r#""action":"SCMP_ACT_ALLOW""#,
    r#""action":"SCMP_ACT_ERRNO","errnoRet":11"#,
    r#""action":"SCMP_ACT_ERRNO","errnoRet":22"#,
    r#""action":"SCMP_ACT_ERRNO""#,
    r#""action":"SCMP_ACT_KILL_PROCESS""#,
    r#""action":"SCMP_ACT_KILL""#,
    r#""action":"SCMP_ACT_TRAP""#,
    r#""action":"SCMP_ACT_TRACE","errnoRet":3"#,
    r#""action":"SCMP_ACT_LOG""#,
    r#""action":"SCMP_ACT_NOTIFY""#,
];
const DEFAULTS: &[&str] = &[
    r#""SCMP_ACT_ALLOW""#,
    r#""SCMP_ACT_ERRNO""#,
    r#""SCMP_ACT_ERRNO","defaultErrnoRet":38"#,
    r#""SCMP_ACT_KILL_PROCESS""#,
    r#""SCMP_ACT_LOG""#,
    r#""SCMP_ACT_TRACE""#,
];
const ARCHES: &[(&str, Target)] = &[
    ("SCMP_ARCH_X86_64", Target::X86_64),
    ("SCMP_ARCH_X86", Target::X86),
    ("SCMP_ARCH_X32", Target::X32),
    ("SCMP_ARCH_AARCH64", Target::Aarch64),
    ("SCMP_ARCH_ARM", Target::Arm),
];

fn value(rng: &mut Rng) -> u64 {
    let v = *rng.pick(VALUES);
    match rng.below(4) {
        0 => v.wrapping_add(1),
        1 => v.wrapping_sub(1),
        2 => rng.next(),
        _ => v,
    }
}

fn random_profile(rng: &mut Rng) -> String {
    let arches: Vec<&str> = ARCHES
        .iter()
        .filter(|_| rng.below(2) == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut rules = Vec::new();
    // Now and then a large profile, whose jumps need trampolines.
    let count = if rng.below(8) == 0 {
        40 + rng.below(60)
    } else {
        1 + rng.below(8)
    };
    for _ in 0..count {
        let names: Vec<String> = (0..1 + rng.below(3))
            .map(|_| format!("{:?}", rng.pick(NAMES)))
            .collect();
        let args: Vec<String> = (0..rng.below(4))
            .map(|_| {
                let op = *rng.pick(OPS);
                let two = if op == "SCMP_CMP_MASKED_EQ" {
                    format!(r#","valueTwo":{}"#, value(rng))
                } else {
                    String::new()
                };
                format!(
                    r#"{{"index":{},"value":{}{two},"op":"{op}"}}"#,
                    rng.below(6),
                    value(rng)
                )
            })
            .collect();
        rules.push(format!(
            r#"{{"names":[{}],{},"args":[{}]}}"#,
            names.join(","),
            rng.pick(ACTIONS),
            args.join(",")
        ));
    }
    format!(
        r#"{{"defaultAction":{},"listenerPath":"/x","architectures":[{}],"syscalls":[{}]}}"#,
        rng.pick(DEFAULTS),
        arches
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(","),
        rules.join(",")
    )
}

/// The rules evaluated directly: what the filter must return.
fn reference(spec: &LinuxSeccomp, data: &Data) -> u32 {
    fn action(action: oci_spec::runtime::LinuxSeccompAction, errno: Option<u32>) -> u32 {
        use oci_spec::runtime::LinuxSeccompAction as A;
        match action {
            A::ScmpActAllow => ALLOW,
            A::ScmpActErrno => ERRNO | errno.unwrap_or(EPERM),
            A::ScmpActKill | A::ScmpActKillThread => KILL_THREAD,
            A::ScmpActKillProcess => KILL_PROCESS,
            A::ScmpActTrap => TRAP,
            A::ScmpActTrace => TRACE | errno.unwrap_or(EPERM),
            A::ScmpActLog => LOG,
            A::ScmpActNotify => NOTIFY,
        }
    }
    let mut targets = vec![Target::native().unwrap()];
    for arch in spec.architectures().iter().flatten() {
        if let Some(t) = Target::from_oci(*arch) {
            targets.push(t);
        }
    }
    let Some(target) = targets.into_iter().find(|t| {
        t.audit_arch() == data.arch
            && (t.audit_arch() != X86_64 || (data.nr & X32_SYSCALL_BIT != 0) == (*t == Target::X32))
    }) else {
        return KILL_PROCESS;
    };
    let rules = spec.syscalls().clone().unwrap_or_default();
    let applies = |r: &&oci_spec::runtime::LinuxSyscall| {
        r.names()
            .iter()
            .any(|n| target.syscall_nr(n) == Some(data.nr))
    };
    let holds = |a: &oci_spec::runtime::LinuxSeccompArg| {
        let mut arg = data.args[a.index()];
        let (mut v, mut two) = (a.value(), a.value_two().unwrap_or(0));
        if target.args_are_32bit() {
            arg &= 0xffff_ffff;
            v &= 0xffff_ffff;
            two &= 0xffff_ffff;
        }
        use oci_spec::runtime::LinuxSeccompOperator as O;
        match a.op() {
            O::ScmpCmpNe => arg != v,
            O::ScmpCmpLt => arg < v,
            O::ScmpCmpLe => arg <= v,
            O::ScmpCmpEq => arg == v,
            O::ScmpCmpGe => arg >= v,
            O::ScmpCmpGt => arg > v,
            O::ScmpCmpMaskedEq => arg & v == two,
        }
    };
    let conditional = rules
        .iter()
        .filter(applies)
        .filter(|r| r.args().as_ref().is_some_and(|a| !a.is_empty()));
    for rule in conditional {
        if rule.args().as_ref().unwrap().iter().all(holds) {
            return action(rule.action(), rule.errno_ret());
        }
    }
    if let Some(rule) = rules
        .iter()
        .filter(applies)
        .find(|r| r.args().as_deref().unwrap_or_default().is_empty())
    {
        return action(rule.action(), rule.errno_ret());
    }
    let default = action(spec.default_action(), spec.default_errno_ret());
    use oci_spec::runtime::LinuxSeccompAction as A;
    let permissive = matches!(
        spec.default_action(),
        A::ScmpActAllow | A::ScmpActLog | A::ScmpActTrace
    );
    let ceiling = rules
        .iter()
        .flat_map(|r| r.names())
        .filter_map(|n| target.syscall_nr(n))
        .max();
    match ceiling {
        Some(c) if !permissive && default != ERRNO | ENOSYS && data.nr > c => ERRNO | ENOSYS,
        _ => default,
    }
}

#[test]
fn random_profiles_match_the_rules() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut checked, mut with_trampolines) = (0, 0);
    for _ in 0..400 {
        let json = random_profile(&mut rng);
        let spec = profile(&json);
        let program = match compile(&spec) {
            Ok(p) => p,
            Err(SeccompError::ValueTwo { .. } | SeccompError::TooLarge { .. }) => continue,
            Err(e) => panic!("{e}\n{json}"),
        };
        check(program.instructions());
        // BPF_JMP | BPF_JA over more than a conditional jump reaches.
        if program
            .instructions()
            .iter()
            .any(|i| i.code == 0x05 && i.k > 255)
        {
            with_trampolines += 1;
        }
        for _ in 0..300 {
            let (_, target) = *rng.pick(ARCHES);
            let nr = match rng.below(3) {
                0 => rng.next() as u32,
                _ => {
                    let name: &&str = rng.pick(NAMES);
                    target.syscall_nr(name).unwrap_or(0)
                }
            };
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = value(&mut rng);
            }
            let data = Data {
                nr,
                arch: if rng.below(20) == 0 {
                    AARCH64 ^ 1
                } else {
                    target.audit_arch()
                },
                args,
            };
            assert_eq!(
                run(program.instructions(), &data),
                reference(&spec, &data),
                "{data:?}\n{json}"
            );
            checked += 1;
        }
    }
    assert!(checked > 50_000, "only {checked} cases");
    assert!(
        with_trampolines > 5,
        "only {with_trampolines} programs with long jumps"
    );
}

// ---------------------------------------------------------------------------------------
// The fixture: a Docker-like default profile.

const DEFAULT_PROFILE: &str = include_str!("../../fixtures/seccomp-default.json");

#[test]
fn default_profile_compiles() {
    let spec = profile(DEFAULT_PROFILE);
    // Every name is a real syscall on one of its architectures: no typos.
    for rule in spec.syscalls().as_ref().unwrap() {
        for name in rule.names() {
            assert!(
                [Target::X86_64, Target::X86, Target::X32]
                    .iter()
                    .any(|t| t.syscall_nr(name).is_some()),
                "{name}"
            );
        }
    }
    let program = compile(&spec).unwrap();
    check(program.instructions());
    assert!(
        program.instructions().len() < 1500,
        "{}",
        program.instructions().len()
    );

    let v = |target, name, args| verdict(&program, target, name, args);
    for target in [Target::X86_64, Target::X86, Target::X32] {
        assert_eq!(v(target, "read", [0; 6]), ALLOW, "{target:?}");
        assert_eq!(v(target, "execve", [0; 6]), ALLOW, "{target:?}");
        assert_eq!(v(target, "reboot", [0; 6]), ERRNO | EPERM, "{target:?}");
        assert_eq!(v(target, "clone3", [0; 6]), ERRNO | ENOSYS, "{target:?}");
        // clone with SIGCHLD: allowed; with CLONE_NEWUSER: refused.
        assert_eq!(v(target, "clone", [17, 0, 0, 0, 0, 0]), ALLOW, "{target:?}");
        assert_eq!(
            v(target, "clone", [0x1000_0011, 0, 0, 0, 0, 0]),
            ERRNO | EPERM
        );
        assert_eq!(
            v(target, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(v(target, "personality", [1, 0, 0, 0, 0, 0]), ERRNO | EPERM);
    }
    assert_eq!(v(Target::X86_64, "socket", [1, 1, 0, 0, 0, 0]), ALLOW);
    assert_eq!(
        v(Target::X86_64, "socket", [40, 1, 0, 0, 0, 0]),
        ERRNO | EPERM
    );
    assert_eq!(v(Target::X86, "socketcall", [0; 6]), ALLOW);
    // A syscall newer than the profile knows: ENOSYS, so libc can fall back.
    assert_eq!(
        run(
            program.instructions(),
            &Data {
                nr: 999,
                arch: X86_64,
                args: [0; 6]
            }
        ),
        ERRNO | ENOSYS
    );
    assert_eq!(
        run(
            program.instructions(),
            &Data {
                nr: 0,
                arch: AARCH64,
                args: [0; 6]
            }
        ),
        KILL_PROCESS
    );
}

// ---------------------------------------------------------------------------------------
// Installed for real, in forked children.

/// A path whose parent does not exist: mkdirat fails with ENOENT when allowed.
const NOWHERE: &std::ffi::CStr = c"/berth-seccomp-test-nonexistent/dir";

fn mkdirat(mode: libc::mode_t) -> i32 {
    // SAFETY: a valid C string.
    failure(unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, NOWHERE.as_ptr(), mode) })
}

fn with_mkdirat_rule(rule: &str) -> Program {
    build(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["mkdirat"],{rule}}}]}}"#
    ))
}

#[test]
fn installed_errno_rule() {
    let program = with_mkdirat_rule(r#""action":"SCMP_ACT_ERRNO","errnoRet":42"#);
    assert_eq!(in_child(&program, |_| mkdirat(0o755)), Outcome::Exited(42));
    // The parent (the test harness) is unaffected.
    assert_eq!(mkdirat(0o755), libc::ENOENT);
}

#[test]
fn installed_filter_shows_in_proc_status() {
    let program = with_mkdirat_rule(r#""action":"SCMP_ACT_ERRNO""#);
    let outcome = in_child(&program, |_| {
        let mut buf = [0u8; 4096];
        // SAFETY: raw syscalls into a stack buffer.
        let n = unsafe {
            let fd = libc::open(c"/proc/self/status".as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return 1;
            }
            libc::read(fd, buf.as_mut_ptr().cast(), buf.len())
        };
        let text = &buf[..usize::try_from(n).unwrap_or(0)];
        let needle = b"Seccomp:\t2";
        i32::from(!text.windows(needle.len()).any(|w| w == needle))
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn installed_masked_eq_rule() {
    let program = with_mkdirat_rule(
        r#""action":"SCMP_ACT_ERRNO","errnoRet":42,
           "args":[{"index":2,"value":448,"valueTwo":448,"op":"SCMP_CMP_MASKED_EQ"}]"#,
    );
    let outcome = in_child(&program, |_| {
        let (owner_rwx, owner_rw) = (mkdirat(0o755), mkdirat(0o644));
        if owner_rwx == 42 && owner_rw == libc::ENOENT {
            0
        } else {
            1
        }
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn installed_killing_actions() {
    for action in [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let program = with_mkdirat_rule(&format!(r#""action":"{action}""#));
        assert_eq!(
            in_child(&program, |_| mkdirat(0o755)),
            Outcome::Signaled(libc::SIGSYS),
            "{action}"
        );
    }
}

#[test]
fn installed_log_and_trace() {
    // LOG lets the call through.
    let program = with_mkdirat_rule(r#""action":"SCMP_ACT_LOG""#);
    assert_eq!(
        in_child(&program, |_| mkdirat(0o755)),
        Outcome::Exited(libc::ENOENT)
    );
    // TRACE without a tracer: the call is skipped and fails with ENOSYS.
    let program = with_mkdirat_rule(r#""action":"SCMP_ACT_TRACE""#);
    assert_eq!(
        in_child(&program, |_| mkdirat(0o755)),
        Outcome::Exited(libc::ENOSYS)
    );
}

#[test]
fn installed_default_errno_and_enosys() {
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":77,
            "syscalls":[{"names":["exit","exit_group","mkdirat"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let outcome = in_child(&program, |_| {
        // SAFETY: raw syscalls without pointers.
        let below = failure(unsafe { libc::syscall(libc::SYS_getppid) });
        // SAFETY: as above; a null path with dirfd -1 is refused, never read.
        let above = failure(unsafe { libc::syscall(libc::SYS_faccessat2, -1, 0, 0, 0) });
        if below == 77 && above == libc::ENOSYS {
            0
        } else {
            100 + below
        }
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn installed_with_flags_through_seccomp_syscall() {
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG",
                     "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32",
                             "SCMP_ARCH_AARCH64","SCMP_ARCH_ARM","SCMP_ARCH_MIPS"],
            "syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    assert_ne!(program.flags(), 0);
    assert_eq!(in_child(&program, |_| mkdirat(0o755)), Outcome::Exited(42));
}

#[test]
fn installed_notify_returns_a_listener() {
    let program = build(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/unused",
            "syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    let outcome = in_child(&program, |listener| {
        let Some(listener) = listener else {
            return 1;
        };
        // A grandchild makes the call and waits for our answer.
        // SAFETY: raw syscalls on our own fds and processes, into stack structures.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(mkdirat(0o755));
            }
            let mut request: libc::seccomp_notif = std::mem::zeroed();
            if libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut request) != 0 {
                return 2;
            }
            if request.data.nr != libc::SYS_mkdirat as i32 || request.pid as i32 != pid {
                return 3;
            }
            let response = libc::seccomp_notif_resp {
                id: request.id,
                val: 0,
                error: -libc::EXDEV,
                flags: 0,
            };
            if libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &response) != 0 {
                return 4;
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                5
            }
        }
    });
    assert_eq!(outcome, Outcome::Exited(libc::EXDEV));
}

#[test]
fn install_without_privilege_fails_clearly() {
    // No no_new_privs and no CAP_SYS_ADMIN: EACCES, named.
    // SAFETY: a query without pointers.
    if unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } == 1 {
        eprintln!("skipped: the test harness already runs with no_new_privs");
        return;
    }
    let program = with_mkdirat_rule(r#""action":"SCMP_ACT_ERRNO""#);
    // SAFETY: the child only makes raw syscalls.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // Drop CAP_SYS_ADMIN from the effective set (capset with raw structures).
        // SAFETY: capget/capset with buffers that live across the calls; the child only.
        let code = unsafe {
            let mut header = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this thread
            let mut data = [0u32; 6];
            libc::syscall(libc::SYS_capget, header.as_mut_ptr(), data.as_mut_ptr());
            const CAP_SYS_ADMIN: u32 = 21;
            data[0] &= !(1 << CAP_SYS_ADMIN);
            libc::syscall(libc::SYS_capset, header.as_mut_ptr(), data.as_ptr());
            match super::install(&program) {
                Err(SeccompError::Install {
                    errno: nix::errno::Errno::EACCES,
                    ..
                }) => 0,
                Ok(_) => 1,
                Err(_) => 2,
            }
        };
        // SAFETY: _exit in the forked child skips the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    assert_eq!(super::testing::wait(pid), Outcome::Exited(0));
    let message = SeccompError::Install {
        call: "prctl(PR_SET_SECCOMP)",
        errno: nix::errno::Errno::EACCES,
    }
    .to_string();
    assert!(
        message.contains("needs no_new_privs or CAP_SYS_ADMIN"),
        "{message}"
    );
}

#[test]
fn default_profile_runs_a_shell() {
    let program = compile(&profile(DEFAULT_PROFILE)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "set -e; cd {dir}; echo hello > f; cat f; mkdir d; mv f d/g; ls d; rm -r d; \
         uname -s; id -u; ls / > /dev/null; (sleep 0; echo sub) & wait; \
         grep Seccomp: /proc/self/status; \
         unshare -U true 2>/dev/null && echo unshare-allowed || echo unshare-refused",
        dir = dir.path().display()
    );
    let argv_owned = [
        c"sh".to_owned(),
        c"-c".to_owned(),
        CString::new(script).unwrap(),
    ];
    let argv: Vec<*const libc::c_char> = argv_owned
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut pipe = [0; 2];
    // SAFETY: a two-int array.
    let rc = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0);
    let (read_end, write_end) = (pipe[0], pipe[1]);

    // SAFETY: the child makes raw syscalls and execs.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the forked child only duplicates descriptors and execs.
        unsafe {
            libc::dup2(write_end, 1);
            libc::dup2(write_end, 2);
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if super::install(&program).is_err() {
                libc::_exit(INSTALL_FAILED);
            }
            libc::execv(c"/bin/sh".as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: our own fd.
    unsafe { libc::close(write_end) };
    let mut output = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a stack buffer.
        let n = unsafe { libc::read(read_end, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        output.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: our own fd.
    unsafe { libc::close(read_end) };
    let outcome = super::testing::wait(pid);
    let output = String::from_utf8_lossy(&output);
    assert_eq!(outcome, Outcome::Exited(0), "{output}");
    for line in [
        "hello",
        "g",
        "Linux",
        "0",
        "sub",
        "Seccomp:\t2",
        "unshare-refused",
    ] {
        assert!(
            output.lines().any(|l| l == line),
            "no line {line:?} in:\n{output}"
        );
    }
}
