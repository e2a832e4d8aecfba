//! Platforms (`linux/amd64`, `linux/arm64/v8`) and picking one out of an index.

use std::fmt;
use std::str::FromStr;

use crate::manifest::{Descriptor, PlatformSpec};

/// The platform an image is wanted for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64` (Go's names, as images use them).
    pub architecture: String,
    /// e.g. `v8`; `None` accepts any variant.
    pub variant: Option<String>,
}

/// A platform string that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: want os/architecture[/variant], e.g. linux/arm64/v8")]
pub struct PlatformError(pub String);

impl Platform {
    /// The platform this process runs on, in image terms (`x86_64` is `amd64`).
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Whether an index entry's platform is this one (arm64's variant `v8` is its default).
    pub fn matches(&self, spec: &PlatformSpec) -> bool {
        if spec.os != self.os || spec.architecture != self.architecture {
            return false;
        }
        let Some(want) = &self.variant else {
            return true;
        };
        match spec.variant.as_deref() {
            Some(v) => v == want,
            None => self.architecture == "arm64" && want == "v8",
        }
    }

    /// The entry of `manifests` for this platform: an exact variant match first.
    pub fn select<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let with = |d: &&Descriptor| d.platform.as_ref().is_some_and(|p| self.matches(p));
        let exact = manifests.iter().filter(with).find(|d| {
            d.platform.as_ref().and_then(|p| p.variant.as_ref()) == self.variant.as_ref()
        });
        exact.or_else(|| manifests.iter().find(with))
    }
}

/// `os/arch[/variant]` of an index entry, for messages.
pub fn describe(spec: Option<&PlatformSpec>) -> String {
    match spec {
        Some(p) => match &p.variant {
            Some(v) => format!("{}/{}/{}", p.os, p.architecture, v),
            None => format!("{}/{}", p.os, p.architecture),
        },
        None => "(no platform)".to_string(),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok =
            |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(PlatformError(s.to_string()));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(os: &str, arch: &str, variant: Option<&str>) -> PlatformSpec {
        PlatformSpec {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    #[test]
    fn platforms_parse_print_and_match() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches(&spec("linux", "arm64", None)));
        assert!(p.matches(&spec("linux", "arm64", Some("v8"))));
        assert!(!p.matches(&spec("linux", "arm", Some("v8"))));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(!v7.matches(&spec("linux", "arm", Some("v6"))));
        let any: Platform = "linux/amd64".parse().unwrap();
        assert!(any.matches(&spec("linux", "amd64", Some("v3"))));
        assert!(!any.matches(&spec("windows", "amd64", None)));
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        assert_eq!(Platform::host().os, "linux");
    }
}
