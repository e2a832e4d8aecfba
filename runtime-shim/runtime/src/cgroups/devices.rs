//! The device rules of `linux.resources.devices`, shared by the v1 `devices` controller
//! and the v2 eBPF device program.
//!
//! The spec's rules are replayed, in order, through an [`Emulator`] of the v1 kernel's
//! semantics (as runc does), starting from "deny everything", with runc's default
//! allowed devices appended. The result is one list: either "deny all, allow these" or
//! "allow all, deny these". Both cgroup versions enforce that same list, so a spec means
//! the same on either — including refusing to punch a hole into a wildcard rule, which v1
//! would silently ignore.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{CgroupError, ResourceError};

/// Device numbers above this cannot be matched by the eBPF program's 32-bit immediates;
/// real ones are far smaller (12-bit majors, 20-bit minors).
const MAX_NUMBER: i64 = i32::MAX as i64;

/// Block or character device (`a`, all types, only exists as a reset of the whole list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// `b`
    Block,
    /// `c`
    Char,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Self::Block => 'b',
            Self::Char => 'c',
        }
    }
}

/// A set of `r` (read), `w` (write), `m` (mknod), as bits in the kernel's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Access(u8);

impl Access {
    /// `m`: the kernel's `DEVCG_ACC_MKNOD` / `BPF_DEVCG_ACC_MKNOD`.
    pub(crate) const MKNOD: Self = Self(1);
    /// `r`
    pub(crate) const READ: Self = Self(2);
    /// `w`
    pub(crate) const WRITE: Self = Self(4);
    /// `rwm`
    pub(crate) const ALL: Self = Self(7);

    /// Parse an OCI/cgroupfs access string (`"rwm"`, `"r"`, …); `None` if it holds
    /// anything else or nothing.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut bits = 0;
        for c in text.chars() {
            bits |= match c {
                'm' => Self::MKNOD.0,
                'r' => Self::READ.0,
                'w' => Self::WRITE.0,
                _ => return None,
            };
        }
        (bits != 0).then_some(Self(bits))
    }

    /// The bits, as the eBPF program compares them.
    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    fn minus(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    fn overlaps(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [(Self::READ, 'r'), (Self::WRITE, 'w'), (Self::MKNOD, 'm')] {
            if self.overlaps(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// Which devices a rule is about; `None` numbers are wildcards (`*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Match {
    pub(crate) kind: Kind,
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        write!(
            f,
            "{} {}:{}",
            self.kind.letter(),
            number(self.major),
            number(self.minor)
        )
    }
}

/// One rule as the kernel takes it: `kind` `None` is `a` (every device, any access),
/// which resets the whole list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) allow: bool,
    pub(crate) kind: Option<Kind>,
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
    pub(crate) access: Access,
}

impl Rule {
    const fn allow(kind: Kind, major: Option<u32>, minor: Option<u32>, access: Access) -> Self {
        Self {
            allow: true,
            kind: Some(kind),
            major,
            minor,
            access,
        }
    }

    /// The spec's rule number `index`, checked as runc checks it.
    pub(crate) fn from_spec(index: usize, rule: &LinuxDeviceCgroup) -> Result<Self, ResourceError> {
        let kind = match rule.typ().unwrap_or_default() {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(Kind::Block),
            LinuxDeviceType::C => Some(Kind::Char),
            other => {
                return Err(ResourceError::DeviceType {
                    index,
                    typ: other.as_str().to_owned(),
                })
            }
        };
        let number = |value: Option<i64>, what: &'static str| match value {
            None => Ok(None),
            Some(n) if n < 0 => Ok(None), // -1 is runc's wildcard
            Some(value) if value > MAX_NUMBER => {
                Err(ResourceError::DeviceNumberTooLarge { index, what, value })
            }
            Some(n) => Ok(u32::try_from(n).ok()),
        };
        let access_text = rule.access().as_deref().unwrap_or("");
        if access_text.is_empty() {
            return Err(ResourceError::EmptyAccess(index));
        }
        let access = Access::parse(access_text).ok_or_else(|| ResourceError::BadAccess {
            index,
            access: access_text.to_owned(),
        })?;
        Ok(Self {
            allow: rule.allow(),
            kind,
            major: number(rule.major(), "major")?,
            minor: number(rule.minor(), "minor")?,
            access,
        })
    }
}

/// The devices a container may always use, appended after the spec's own rules (runc's
/// `AllowedDevices`): mknod of anything, the standard character devices, ptys and tun.
pub(crate) const DEFAULT_ALLOWED: &[Rule] = &[
    Rule::allow(Kind::Char, None, None, Access::MKNOD),
    Rule::allow(Kind::Block, None, None, Access::MKNOD),
    Rule::allow(Kind::Char, Some(1), Some(3), Access::ALL), // /dev/null
    Rule::allow(Kind::Char, Some(1), Some(8), Access::ALL), // /dev/random
    Rule::allow(Kind::Char, Some(1), Some(7), Access::ALL), // /dev/full
    Rule::allow(Kind::Char, Some(5), Some(0), Access::ALL), // /dev/tty
    Rule::allow(Kind::Char, Some(1), Some(5), Access::ALL), // /dev/zero
    Rule::allow(Kind::Char, Some(1), Some(9), Access::ALL), // /dev/urandom
    Rule::allow(Kind::Char, Some(136), None, Access::ALL),  // /dev/pts/*
    Rule::allow(Kind::Char, Some(5), Some(2), Access::ALL), // /dev/ptmx
    Rule::allow(Kind::Char, Some(10), Some(200), Access::ALL), // /dev/net/tun
];

/// Whether `resources` set a device list (an empty one too: the defaults alone).
pub(crate) fn needed(resources: &LinuxResources) -> bool {
    resources.devices().is_some()
}

/// The list `resources` ask for, on either version (see [`Emulator::for_spec`]); a bad
/// rule is an error about the `devices` resource of the cgroup at `dir`.
pub(crate) fn target(dir: &Path, resources: &LinuxResources) -> Result<Emulator, CgroupError> {
    let rules = resources.devices().as_deref().unwrap_or_default();
    Emulator::for_spec(rules).map_err(CgroupError::refused("devices", dir))
}

/// The v1 devices controller's state machine: a default (allow or deny everything) and
/// exceptions to it, each merged per device match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Emulator {
    default_allow: bool,
    exceptions: BTreeMap<Match, Access>,
}

impl Default for Emulator {
    /// Deny everything (a container's starting point).
    fn default() -> Self {
        Self {
            default_allow: false,
            exceptions: BTreeMap::new(),
        }
    }
}

impl Emulator {
    /// The container's effective rules: deny everything, then the spec's `rules` in
    /// order, then [`DEFAULT_ALLOWED`].
    pub(crate) fn for_spec(rules: &[LinuxDeviceCgroup]) -> Result<Self, ResourceError> {
        let mut emulator = Self::default();
        for (index, rule) in rules.iter().enumerate() {
            emulator.apply(Rule::from_spec(index, rule)?)?;
        }
        for rule in DEFAULT_ALLOWED {
            emulator.apply(*rule)?;
        }
        Ok(emulator)
    }

    /// Apply one rule as the kernel would (writing it to `devices.allow`/`devices.deny`).
    pub(crate) fn apply(&mut self, rule: Rule) -> Result<(), ResourceError> {
        let Some(kind) = rule.kind else {
            // "a": start over, allowing or denying everything.
            *self = Self {
                default_allow: rule.allow,
                exceptions: BTreeMap::new(),
            };
            return Ok(());
        };
        let target = Match {
            kind,
            major: rule.major,
            minor: rule.minor,
        };
        if rule.allow == self.default_allow {
            self.remove(target, rule.access)
        } else {
            let access = self.exceptions.entry(target).or_default();
            *access = access.union(rule.access);
            Ok(())
        }
    }

    /// Take `access` out of the exception for exactly `target`. Refused if a wildcard
    /// exception also covers it: v1 would keep the wildcard and silently ignore the
    /// request, leaving access the spec meant to change.
    fn remove(&mut self, target: Match, access: Access) -> Result<(), ResourceError> {
        let wider = [
            Match {
                major: None,
                ..target
            },
            Match {
                minor: None,
                ..target
            },
            Match {
                major: None,
                minor: None,
                ..target
            },
        ];
        for wide in wider.into_iter().filter(|wide| *wide != target) {
            if let Some(existing) = self.exceptions.get(&wide) {
                if existing.overlaps(access) {
                    return Err(ResourceError::WildcardHole {
                        rule: format!("{target} {access}"),
                        wildcard: format!("{wide} {existing}"),
                    });
                }
            }
        }
        if let Some(existing) = self.exceptions.get_mut(&target) {
            *existing = existing.minus(access);
            if existing.is_empty() {
                self.exceptions.remove(&target);
            }
        }
        Ok(())
    }

    /// Whether devices not in [`Self::exceptions`] are allowed.
    pub(crate) fn default_allow(&self) -> bool {
        self.default_allow
    }

    /// The exceptions to the default, in a stable order: allowed devices when the default
    /// is deny, denied ones when it is allow.
    pub(crate) fn exceptions(&self) -> impl Iterator<Item = (Match, Access)> + '_ {
        self.exceptions.iter().map(|(m, a)| (*m, *a))
    }

    /// The list as v1's `devices.list` shows it: `a *:* rwm` when everything is allowed
    /// (the kernel does not list deny exceptions), else one allowed match per line.
    #[cfg(test)]
    pub(crate) fn v1_list(&self) -> Vec<String> {
        if self.default_allow {
            return vec!["a *:* rwm".to_owned()];
        }
        self.exceptions()
            .map(|(m, access)| format!("{m} {access}"))
            .collect()
    }

    /// Parse v1's `devices.list`. `None` if it cannot be compared (a deny list, whose
    /// exceptions the kernel does not show, or a line we do not understand).
    pub(crate) fn from_v1_list(text: &str) -> Option<Self> {
        let mut emulator = Self::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut fields = line.split(' ');
            let (kind, numbers, access) = (fields.next()?, fields.next()?, fields.next()?);
            let kind = match kind {
                "a" => return None,
                "b" => Kind::Block,
                "c" => Kind::Char,
                _ => return None,
            };
            let (major, minor) = numbers.split_once(':')?;
            let number = |n: &str| match n {
                "*" => Some(None),
                n => n.parse().ok().map(Some),
            };
            emulator
                .apply(Rule::allow(
                    kind,
                    number(major)?,
                    number(minor)?,
                    Access::parse(access)?,
                ))
                .ok()?;
        }
        Some(emulator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn access_round_trips() {
        assert_eq!(Access::parse("mwr"), Some(Access::ALL));
        assert_eq!(Access::parse("rwm").unwrap().to_string(), "rwm");
        assert_eq!(Access::parse("m").unwrap().to_string(), "m");
        assert_eq!(Access::parse("wr").unwrap().to_string(), "rw");
        assert_eq!(Access::parse(""), None);
        assert_eq!(Access::parse("rx"), None);
    }

    #[test]
    fn deny_all_then_allow_plus_defaults() {
        let rules = spec(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "access": "r"}]"#,
        );
        let emulator = Emulator::for_spec(&rules).unwrap();
        assert!(!emulator.default_allow());
        let list = emulator.v1_list();
        assert!(list.contains(&"c 1:3 rwm".to_owned()), "{list:?}");
        assert!(list.contains(&"b 8:* r".to_owned()), "{list:?}");
        assert!(list.contains(&"c 136:* rwm".to_owned()), "{list:?}");
        assert!(list.contains(&"c *:* m".to_owned()), "{list:?}");
        assert_eq!(list.len(), 12, "null merged with the default: {list:?}");
    }

    #[test]
    fn allow_all_resets_and_later_denies_are_exceptions() {
        let rules = spec(
            r#"[{"allow": true, "type": "c", "major": 4, "minor": 1, "access": "r"},
                {"allow": true, "access": "rwm"},
                {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rw"}]"#,
        );
        let emulator = Emulator::for_spec(&rules).unwrap();
        assert!(emulator.default_allow());
        let exceptions: Vec<_> = emulator.exceptions().collect();
        assert_eq!(
            exceptions,
            [(
                Match {
                    kind: Kind::Char,
                    major: Some(10),
                    minor: Some(229)
                },
                Access::parse("rw").unwrap()
            )],
            "the defaults are allows and change nothing in an allow-all list"
        );
        assert_eq!(emulator.v1_list(), ["a *:* rwm"]);
    }

    #[test]
    fn deny_takes_away_from_an_allow() {
        let rules = spec(
            r#"[{"allow": true, "type": "c", "major": 7, "minor": 7, "access": "rwm"},
                {"allow": false, "type": "c", "major": 7, "minor": 7, "access": "w"}]"#,
        );
        let emulator = Emulator::for_spec(&rules).unwrap();
        assert!(emulator.v1_list().contains(&"c 7:7 rm".to_owned()));
    }

    #[test]
    fn hole_in_a_wildcard_is_refused() {
        let rules = spec(
            r#"[{"allow": true, "type": "c", "major": 7, "access": "rw"},
                {"allow": false, "type": "c", "major": 7, "minor": 1, "access": "w"}]"#,
        );
        let err = Emulator::for_spec(&rules).unwrap_err();
        assert!(matches!(err, ResourceError::WildcardHole { .. }), "{err}");
        assert!(err.to_string().contains("c 7:* rw"), "{err}");
    }

    #[test]
    fn bad_rules_are_refused() {
        for (json, want) in [
            (r#"[{"allow": true, "type": "p", "access": "r"}]"#, "type"),
            (r#"[{"allow": true, "type": "c"}]"#, "empty"),
            (r#"[{"allow": true, "type": "c", "access": ""}]"#, "empty"),
            (
                r#"[{"allow": true, "type": "c", "access": "rx"}]"#,
                "\"rx\"",
            ),
            (
                r#"[{"allow": true, "type": "c", "major": 4294967296, "access": "r"}]"#,
                "too large",
            ),
        ] {
            let err = Emulator::for_spec(&spec(json)).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
            assert!(err.starts_with("devices[0]"), "{err}");
        }
    }

    #[test]
    fn minus_one_is_a_wildcard() {
        let rules =
            spec(r#"[{"allow": true, "type": "b", "major": -1, "minor": -1, "access": "r"}]"#);
        let emulator = Emulator::for_spec(&rules).unwrap();
        assert!(emulator.v1_list().contains(&"b *:* rm".to_owned()));
    }

    #[test]
    fn parses_the_kernels_list() {
        let emulator = Emulator::for_spec(&spec(r#"[{"allow": false, "access": "rwm"}]"#)).unwrap();
        let text = emulator.v1_list().join("\n");
        assert_eq!(Emulator::from_v1_list(&text), Some(emulator));
        assert_eq!(Emulator::from_v1_list("a *:* rwm\n"), None);
        assert_eq!(Emulator::from_v1_list(""), Some(Emulator::default()));
        assert_eq!(Emulator::from_v1_list("x 1:2 r"), None);
    }
}
