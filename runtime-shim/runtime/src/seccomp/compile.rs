//! From `linux.seccomp` to a BPF program.
//!
//! The program, per architecture listed (and always the native one, as runc does):
//!
//! ```text
//!   A = arch;  if A == AUDIT_ARCH_a goto a; if A == AUDIT_ARCH_b goto b; …; return KILL_PROCESS
//! a:  A = nr                      (x86_64: bit 30 set → the x32 body, or KILL_PROCESS)
//!     binary search over the syscall numbers, whose leaves are either a return
//!     (syscalls with one unconditional action, merged into ranges with their
//!     neighbours) or the chain of a syscall's conditional rules:
//!       rule 1: arg checks ANDed → return its action; any check fails → rule 2 …
//!       no rule matched → the syscall's unconditional action, or the default action
//! ```
//!
//! For a syscall, rules with argument conditions are tried first, in the order of the
//! config, then the first unconditional rule. A 64-bit argument is compared as two 32-bit
//! halves, high half first; on 32-bit ABIs (x86, x32, arm) only the low half is compared.
//!
//! As runc does, when the default action refuses syscalls, numbers above the largest one
//! the config names (for that architecture) return ENOSYS instead: syscalls newer than the
//! profile then look unimplemented, and libc falls back to older ones (clone3 → clone).

use std::collections::{BTreeMap, HashMap, HashSet};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Op, LinuxSyscall,
};

use super::arch::{Target, X32_SYSCALL_BIT};
use super::bpf::{
    arg_hi, arg_lo, Builder, Instruction, Label, ARCH_OFFSET, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JGE,
    BPF_JGT, BPF_JSET, BPF_K, MAX_INSTRUCTIONS, NR_OFFSET,
};
use super::{Program, SeccompError};

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;
/// The largest errno the kernel passes through (MAX_ERRNO); larger data is clamped.
const MAX_ERRNO: u32 = 4095;
/// ARM's private syscalls sit far above the regular table.
const ARM_PRIVATE_BASE: u32 = 0x000f_0000;

/// Compile the spec's seccomp object. Unknown syscall names are skipped with a warning (as
/// runc does); a malformed rule (no names, errnoRet on an action that takes none, an
/// argument index above 5, valueTwo on an operator other than SCMP_CMP_MASKED_EQ, …) is an
/// error naming the rule.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let default_action = seccomp.default_action();
    if default_action == Action::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action_value(default_action, seccomp.default_errno_ret(), || {
        "defaultAction".to_string()
    })?;

    let targets = targets(seccomp.architectures().as_deref().unwrap_or_default())?;

    let empty = Vec::new();
    let syscalls = seccomp.syscalls().as_ref().unwrap_or(&empty);
    let rules = syscalls
        .iter()
        .enumerate()
        .map(|(number, syscall)| Rule::parse(number, syscall))
        .collect::<Result<Vec<_>, _>>()?;

    let notifying = rules
        .iter()
        .find(|r| r.action == libc::SECCOMP_RET_USER_NOTIF);
    if let (Some(rule), None) = (notifying, seccomp.listener_path()) {
        return Err(SeccompError::NotifyWithoutListener {
            rule: describe(rule.number, &rule.names),
        });
    }
    let listener = notifying.is_some();

    warn_about_names(&rules, &targets);

    // As runc: a permissive default lets new syscalls through anyway, and a default of
    // ENOSYS already is one.
    let enosys = !matches!(
        default_action,
        Action::ScmpActAllow | Action::ScmpActLog | Action::ScmpActTrace
    ) && default != libc::SECCOMP_RET_ERRNO | ENOSYS;

    let instructions = generate(&targets, &rules, default, enosys);
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLarge {
            instructions: instructions.len(),
        });
    }

    Ok(Program {
        instructions,
        flags: kernel_flags(seccomp.flags().as_deref().unwrap_or_default(), listener),
    })
}

/// The kernel's return value for an action (`SECCOMP_RET_*` | data).
fn action_value(
    action: Action,
    errno_ret: Option<u32>,
    what: impl Fn() -> String,
) -> Result<u32, SeccompError> {
    let value = match action {
        Action::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
        Action::ScmpActKill | Action::ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
        Action::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        Action::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        Action::ScmpActLog => libc::SECCOMP_RET_LOG,
        Action::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
        Action::ScmpActErrno => {
            let errno = errno_ret.unwrap_or(EPERM);
            if errno > MAX_ERRNO {
                return Err(SeccompError::ErrnoOutOfRange {
                    rule: what(),
                    errno,
                });
            }
            return Ok(libc::SECCOMP_RET_ERRNO | errno);
        }
        Action::ScmpActTrace => {
            let data = errno_ret.unwrap_or(EPERM);
            if data > libc::SECCOMP_RET_DATA {
                return Err(SeccompError::ErrnoOutOfRange {
                    rule: what(),
                    errno: data,
                });
            }
            return Ok(libc::SECCOMP_RET_TRACE | data);
        }
    };
    if errno_ret.is_some() {
        return Err(SeccompError::ErrnoRetNotAllowed {
            rule: what(),
            action: action.to_string(),
        });
    }
    Ok(value)
}

/// The architectures to cover: the native one first, then those listed that Berth has
/// tables for. Others are left out with a warning: their syscalls meet the bad-arch
/// action (KILL_PROCESS), which fails closed.
fn targets(listed: &[Arch]) -> Result<Vec<Target>, SeccompError> {
    let native = Target::native().ok_or(SeccompError::UnsupportedHost)?;
    let mut targets = vec![native];
    for &arch in listed {
        match Target::from_oci(arch) {
            Some(t) if !targets.contains(&t) => targets.push(t),
            Some(_) => {}
            None => tracing::warn!(
                architecture = %arch,
                "seccomp: no syscall table for this architecture; its syscalls will be killed"
            ),
        }
    }
    Ok(targets)
}

/// `SECCOMP_FILTER_FLAG_*` for `seccomp(2)`.
fn kernel_flags(flags: &[LinuxSeccompFilterFlag], listener: bool) -> libc::c_ulong {
    use LinuxSeccompFilterFlag as F;
    let mut bits = 0;
    for flag in flags {
        bits |= match flag {
            F::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            F::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            F::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            F::SeccompFilterFlagWaitKillableRecv if listener => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            F::SeccompFilterFlagWaitKillableRecv => {
                tracing::warn!(
                    "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no rule uses \
                     SCMP_ACT_NOTIFY"
                );
                0
            }
        };
    }
    if listener {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // TSYNC reports a failure as a thread id, which would be mistaken for the
        // listener fd: the kernel insists on TSYNC_ESRCH with NEW_LISTENER.
        if bits & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    bits
}

/// A syscall rule of the spec, checked.
struct Rule {
    /// Its index in `linux.seccomp.syscalls`, for messages.
    number: usize,
    names: Vec<String>,
    action: u32,
    /// ANDed.
    conditions: Vec<Condition>,
}

/// One argument comparison. 64-bit, unsigned.
#[derive(Clone, Copy, Debug)]
struct Condition {
    index: u8,
    cmp: Cmp,
    value: u64,
}

#[derive(Clone, Copy, Debug)]
enum Cmp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
    },
}

impl Rule {
    fn parse(number: usize, syscall: &LinuxSyscall) -> Result<Rule, SeccompError> {
        let names = syscall.names().clone();
        if names.is_empty() {
            return Err(SeccompError::NoNames {
                rule: describe(number, &names),
            });
        }
        let action = action_value(syscall.action(), syscall.errno_ret(), || {
            describe(number, &names)
        })?;
        let conditions = syscall
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|arg| Condition::parse(arg).map_err(|e| e.in_rule(describe(number, &names))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule {
            number,
            names,
            action,
            conditions,
        })
    }
}

/// What is wrong with an argument condition, before the rule is known.
enum ArgProblem {
    Index(usize),
    ValueTwo(Op, u64),
}

impl ArgProblem {
    fn in_rule(self, rule: String) -> SeccompError {
        match self {
            ArgProblem::Index(index) => SeccompError::ArgIndex { rule, index },
            ArgProblem::ValueTwo(op, value_two) => SeccompError::ValueTwo {
                rule,
                op: op.to_string(),
                value_two,
            },
        }
    }
}

impl Condition {
    fn parse(arg: &LinuxSeccompArg) -> Result<Condition, ArgProblem> {
        let index = u8::try_from(arg.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or(ArgProblem::Index(arg.index()))?;
        let value_two = arg.value_two().unwrap_or(0);
        let op = arg.op();
        if op != Op::ScmpCmpMaskedEq && value_two != 0 {
            return Err(ArgProblem::ValueTwo(op, value_two));
        }
        let (cmp, value) = match op {
            Op::ScmpCmpNe => (Cmp::Ne, arg.value()),
            Op::ScmpCmpLt => (Cmp::Lt, arg.value()),
            Op::ScmpCmpLe => (Cmp::Le, arg.value()),
            Op::ScmpCmpEq => (Cmp::Eq, arg.value()),
            Op::ScmpCmpGe => (Cmp::Ge, arg.value()),
            Op::ScmpCmpGt => (Cmp::Gt, arg.value()),
            // As libseccomp and runc: `value` is the mask, `valueTwo` the datum.
            Op::ScmpCmpMaskedEq => (Cmp::MaskedEq { mask: arg.value() }, value_two),
        };
        Ok(Condition { index, cmp, value })
    }
}

/// "linux.seccomp.syscalls[3] (mkdir, mkdirat)", for messages.
fn describe(number: usize, names: &[String]) -> String {
    const SHOWN: usize = 3;
    if names.is_empty() {
        return format!("linux.seccomp.syscalls[{number}]");
    }
    let mut list = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(", … {} more", names.len() - SHOWN));
    }
    format!("linux.seccomp.syscalls[{number}] ({list})")
}

/// Warn once per name the filter cannot use: unknown on every architecture covered
/// (a typo, or a syscall newer than our tables), and per rule that can never apply
/// because an earlier unconditional rule decides the syscall.
fn warn_about_names(rules: &[Rule], targets: &[Target]) {
    let mut seen = HashSet::new();
    let mut decided: HashMap<&str, usize> = HashMap::new();
    for rule in rules {
        for name in &rule.names {
            if seen.insert(name.as_str()) && targets.iter().all(|t| t.syscall_nr(name).is_none()) {
                tracing::warn!(
                    syscall = %name,
                    rule = rule.number,
                    "seccomp: unknown syscall skipped"
                );
            }
            if !rule.conditions.is_empty() {
                continue;
            }
            match decided.get(name.as_str()) {
                Some(&first) if rules[first].action != rule.action => tracing::warn!(
                    syscall = %name,
                    rule = rule.number,
                    earlier = first,
                    "seccomp: rule never applies to this syscall: an earlier unconditional rule \
                     decides it"
                ),
                Some(_) => {}
                None => {
                    decided.insert(name, rule.number);
                }
            }
        }
    }
}

/// What one architecture's filter does for one syscall number.
struct Plan<'a> {
    /// Rules with conditions, tried in order.
    conditional: Vec<&'a Rule>,
    /// The first unconditional rule's action, else the default.
    fallback: u32,
}

fn plans<'a>(target: Target, rules: &'a [Rule], default: u32) -> BTreeMap<u32, Plan<'a>> {
    let mut unconditional: BTreeMap<u32, u32> = BTreeMap::new();
    let mut conditional: BTreeMap<u32, Vec<&Rule>> = BTreeMap::new();
    for rule in rules {
        for name in &rule.names {
            let Some(nr) = target.syscall_nr(name) else {
                continue;
            };
            if rule.conditions.is_empty() {
                unconditional.entry(nr).or_insert(rule.action);
            } else {
                let list = conditional.entry(nr).or_default();
                // A name listed twice in one rule.
                if !list.last().is_some_and(|last| std::ptr::eq(*last, rule)) {
                    list.push(rule);
                }
            }
        }
    }
    let mut plans: BTreeMap<u32, Plan> = unconditional
        .iter()
        .map(|(&nr, &action)| {
            (
                nr,
                Plan {
                    conditional: Vec::new(),
                    fallback: action,
                },
            )
        })
        .collect();
    for (nr, mut rules) in conditional {
        let fallback = unconditional.get(&nr).copied().unwrap_or(default);
        // Trailing rules that end where falling through ends anyway are dead weight.
        while rules.last().is_some_and(|r| r.action == fallback) {
            rules.pop();
        }
        plans.insert(
            nr,
            Plan {
                conditional: rules,
                fallback,
            },
        );
    }
    plans
}

/// Where the binary search over syscall numbers ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    Return(u32),
    /// The conditional chain of this syscall number.
    Chain(u32),
}

/// The whole 32-bit number space as sorted, contiguous ranges, each given by its start.
fn ranges(
    target: Target,
    plans: &BTreeMap<u32, Plan>,
    default: u32,
    enosys: bool,
) -> Vec<(u32, Leaf)> {
    // Numbers above the largest regular syscall named get ENOSYS (see the module doc).
    let ceiling = enosys
        .then(|| {
            plans
                .keys()
                .copied()
                .filter(|&nr| !(target == Target::Arm && nr >= ARM_PRIVATE_BASE))
                .max()
        })
        .flatten();
    let gap = |start: u64| match ceiling {
        Some(ceiling) if start > u64::from(ceiling) => {
            Leaf::Return(libc::SECCOMP_RET_ERRNO | ENOSYS)
        }
        _ => Leaf::Return(default),
    };

    let mut out: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u64, leaf: Leaf| {
        let mergeable = matches!(leaf, Leaf::Return(_));
        if !(mergeable && out.last().is_some_and(|(_, last)| *last == leaf)) {
            out.push((start as u32, leaf));
        }
    };
    let mut next: u64 = 0;
    for (&nr, plan) in plans {
        if u64::from(nr) > next {
            push(next, gap(next));
        }
        let leaf = if plan.conditional.is_empty() {
            Leaf::Return(plan.fallback)
        } else {
            Leaf::Chain(nr)
        };
        push(u64::from(nr), leaf);
        next = u64::from(nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        push(next, gap(next));
    }
    out
}

fn generate(targets: &[Target], rules: &[Rule], default: u32, enosys: bool) -> Vec<Instruction> {
    let mut b = Builder::default();

    // Emitted last to first: the bodies (expecting A = nr), then the per-arch headers,
    // then the dispatch on the arch, which comes first in the program.
    let mut bodies: HashMap<Target, Label> = HashMap::new();
    for &target in targets.iter().rev() {
        let label = emit_body(&mut b, target, rules, default, enosys);
        bodies.insert(target, label);
    }

    let bad_arch = b.ret(libc::SECCOMP_RET_KILL_PROCESS);
    let mut audits: Vec<u32> = Vec::new();
    for target in targets {
        if !audits.contains(&target.audit_arch()) {
            audits.push(target.audit_arch());
        }
    }
    let mut headers = Vec::new();
    for &audit in audits.iter().rev() {
        let entry = if audit == Target::X86_64.audit_arch() {
            // x86_64 and x32 share the audit arch; bit 30 of the number tells them apart.
            let x86_64 = bodies.get(&Target::X86_64).copied().unwrap_or(bad_arch);
            let x32 = bodies.get(&Target::X32).copied().unwrap_or(bad_arch);
            let split = b.jump(BPF_JSET, X32_SYSCALL_BIT, x32, x86_64);
            b.load(NR_OFFSET, split)
        } else {
            let body = targets
                .iter()
                .find(|t| t.audit_arch() == audit)
                .and_then(|t| bodies.get(t))
                .copied()
                .expect("a body per target");
            b.load(NR_OFFSET, body)
        };
        headers.push((audit, entry));
    }

    let mut next = b.ret(libc::SECCOMP_RET_KILL_PROCESS);
    for &(audit, entry) in &headers {
        next = b.jump(BPF_JEQ, audit, entry, next);
    }
    b.load(ARCH_OFFSET, next);
    b.finish()
}

/// One architecture's decision, from A = nr.
fn emit_body(b: &mut Builder, target: Target, rules: &[Rule], default: u32, enosys: bool) -> Label {
    let plans = plans(target, rules, default);
    let mut chains = HashMap::new();
    for (&nr, plan) in plans.iter().rev() {
        if !plan.conditional.is_empty() {
            chains.insert(nr, emit_chain(b, target, plan));
        }
    }
    let ranges = ranges(target, &plans, default, enosys);
    emit_search(b, &ranges, &chains)
}

/// A balanced binary search over the ranges: `if nr >= start(mid) …`.
fn emit_search(b: &mut Builder, ranges: &[(u32, Leaf)], chains: &HashMap<u32, Label>) -> Label {
    if let [(_, leaf)] = ranges {
        return match *leaf {
            Leaf::Return(action) => b.ret(action),
            Leaf::Chain(nr) => chains[&nr],
        };
    }
    let mid = ranges.len() / 2;
    let upper = emit_search(b, &ranges[mid..], chains);
    let lower = emit_search(b, &ranges[..mid], chains);
    b.jump(BPF_JGE, ranges[mid].0, upper, lower)
}

/// A syscall's conditional rules in order, then its fallback.
fn emit_chain(b: &mut Builder, target: Target, plan: &Plan) -> Label {
    let mut next = b.ret(plan.fallback);
    for rule in plan.conditional.iter().rev() {
        let mut pass = b.ret(rule.action);
        for condition in rule.conditions.iter().rev() {
            pass = emit_condition(b, target, condition, pass, next);
        }
        next = pass;
    }
    next
}

/// Test one argument: go to `pass` or `fail`. Leaves A clobbered.
fn emit_condition(
    b: &mut Builder,
    target: Target,
    c: &Condition,
    pass: Label,
    fail: Label,
) -> Label {
    let (value_hi, value_lo) = ((c.value >> 32) as u32, c.value as u32);
    let wide = !target.args_are_32bit();
    if let Cmp::MaskedEq { mask } = c.cmp {
        // (hi & 0) is 0: it can never equal a non-zero high half.
        if wide && mask >> 32 == 0 && value_hi != 0 {
            return fail;
        }
    }

    // The low half: the whole test on a 32-bit ABI, the tie-breaker on a 64-bit one.
    let low = match c.cmp {
        Cmp::Eq => b.jump(BPF_JEQ, value_lo, pass, fail),
        Cmp::Ne => b.jump(BPF_JEQ, value_lo, fail, pass),
        Cmp::Gt => b.jump(BPF_JGT, value_lo, pass, fail),
        Cmp::Ge => b.jump(BPF_JGE, value_lo, pass, fail),
        Cmp::Lt => b.jump(BPF_JGE, value_lo, fail, pass),
        Cmp::Le => b.jump(BPF_JGT, value_lo, fail, pass),
        Cmp::MaskedEq { mask } => {
            let test = b.jump(BPF_JEQ, value_lo, pass, fail);
            b.stmt(BPF_ALU | BPF_AND | BPF_K, mask as u32, test)
        }
    };
    let low = b.load(arg_lo(c.index), low);
    if !wide {
        return low;
    }

    // The high half decides unless it is equal.
    let high = match c.cmp {
        Cmp::Eq => b.jump(BPF_JEQ, value_hi, low, fail),
        Cmp::Ne => b.jump(BPF_JEQ, value_hi, low, pass),
        Cmp::Gt | Cmp::Ge => {
            let equal = b.jump(BPF_JEQ, value_hi, low, fail);
            b.jump(BPF_JGT, value_hi, pass, equal)
        }
        Cmp::Lt | Cmp::Le => {
            let equal = b.jump(BPF_JEQ, value_hi, low, pass);
            b.jump(BPF_JGT, value_hi, fail, equal)
        }
        Cmp::MaskedEq { mask } => {
            let mask_hi = (mask >> 32) as u32;
            if mask_hi == 0 {
                // (hi & 0) == 0 always holds (a non-zero value_hi was ruled out above).
                return low;
            }
            let test = b.jump(BPF_JEQ, value_hi, low, fail);
            b.stmt(BPF_ALU | BPF_AND | BPF_K, mask_hi, test)
        }
    };
    b.load(arg_hi(c.index), high)
}
