//! Image references (`busybox`, `host:5000/a/b:t`, `name@sha256:…`), parsed and
//! normalised by docker's rules (the distribution project's reference grammar).

use std::fmt;
use std::str::FromStr;

use crate::Digest;

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
/// The tag a name without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the length of registry plus repository.
pub const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A normalised image reference: where the image lives and which one it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub registry: String,
    /// The repository path, e.g. `library/busybox`.
    pub repository: String,
    /// The tag; `latest` when the input named neither tag nor digest.
    pub tag: Option<String>,
    /// The manifest (or index) digest, when the input pinned one.
    pub digest: Option<Digest>,
}

/// Why an image reference was refused; each names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing was given.
    #[error("invalid image reference \"\": empty")]
    Empty,
    /// Registry plus repository is longer than docker allows.
    #[error("invalid image reference {input:?}: the name is longer than {NAME_MAX} characters")]
    TooLong {
        /// The input.
        input: String,
    },
    /// The repository has upper-case letters.
    #[error("invalid image reference {input:?}: the repository name must be lower case")]
    Uppercase {
        /// The input.
        input: String,
    },
    /// A 64-hex-digit name, which docker reserves for image ids.
    #[error("invalid image reference {input:?}: a 64-digit hex string is an image id, not a name")]
    HexName {
        /// The input.
        input: String,
    },
    /// The registry part is not a host name, IP address or `[IPv6]` with an optional port.
    #[error("invalid image reference {input:?}: bad registry {registry:?}")]
    Registry {
        /// The input.
        input: String,
        /// The registry part.
        registry: String,
    },
    /// A repository path component is not `[a-z0-9]+` joined by `.`, `_`, `__` or dashes.
    #[error("invalid image reference {input:?}: bad repository {repository:?}")]
    Repository {
        /// The input.
        input: String,
        /// The repository part.
        repository: String,
    },
    /// The tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid image reference {input:?}: bad tag {tag:?}")]
    Tag {
        /// The input.
        input: String,
        /// The tag part.
        tag: String,
    },
    /// The part after `@` is not a sha256 digest.
    #[error("invalid image reference {input:?}: bad digest {digest:?}")]
    Digest {
        /// The input.
        input: String,
        /// The digest part.
        digest: String,
    },
}

impl Reference {
    /// The short form docker prints: `busybox:latest`, `user/app:1`,
    /// `localhost:5000/a@sha256:…` (Docker Hub's `docker.io/` and `library/` left out).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// The short name without tag or digest: `busybox`, `localhost:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.registry != DOCKER_HUB {
            return self.name();
        }
        match self.repository.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.repository.clone(),
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What the manifest URL names: the digest if pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// This reference pinned to `digest` (the tag kept for display).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input)
    }
}

fn parse(input: &str) -> Result<Reference, ReferenceError> {
    if input.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let own = || input.to_string();
    if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ReferenceError::HexName { input: own() });
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, d)) => {
            let digest = d.parse::<Digest>().map_err(|_| ReferenceError::Digest {
                input: own(),
                digest: d.to_string(),
            })?;
            (rest, Some(digest))
        }
        None => (input, None),
    };
    let (name, tag) = split_tag(rest);
    if let Some(t) = tag.filter(|t| !valid_tag(t)) {
        return Err(ReferenceError::Tag {
            input: own(),
            tag: t.to_string(),
        });
    }
    let (registry, repository) = split_registry(name);
    check_name(input, &registry, &repository, name)?;
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_string()),
    };
    Ok(Reference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Splits `name[:tag]`: the tag is after the last `:` that follows the last `/`.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
        None => (s, None),
    }
}

/// Docker's domain split: the first component is a registry only if it looks like a
/// host (has `.` or `:`, is `localhost`, or has upper case); Hub names get `library/`.
fn split_registry(name: &str) -> (String, String) {
    let (registry, repo) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        registry
    };
    if registry == DOCKER_HUB && !repo.contains('/') {
        return (registry, format!("library/{repo}"));
    }
    (registry, repo)
}

fn check_name(input: &str, registry: &str, repo: &str, raw: &str) -> Result<(), ReferenceError> {
    if !valid_registry(registry) {
        return Err(ReferenceError::Registry {
            input: input.to_string(),
            registry: registry.to_string(),
        });
    }
    if repo.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase {
            input: input.to_string(),
        });
    }
    if !repo.split('/').all(valid_path_component) {
        return Err(ReferenceError::Repository {
            input: input.to_string(),
            repository: repo.to_string(),
        });
    }
    if raw.len() > NAME_MAX {
        return Err(ReferenceError::TooLong {
            input: input.to_string(),
        });
    }
    Ok(())
}

/// `host[:port]`, `a.b.c[:port]`, or `[ipv6][:port]`.
fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => {
                let ok =
                    !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
                if !ok || !(rest.is_empty() || rest.starts_with(':')) {
                    return false;
                }
                (None, rest.strip_prefix(':'))
            }
            None => return false,
        },
        None => match r.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(r), None),
        },
    };
    let host_ok = host.is_none_or(|h| h.split('.').all(valid_domain_component));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

/// `[a-z0-9]+` joined by one of `.`, `_`, `__` or `-+`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}` (`\w` = ASCII letters, digits, `_`).
fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn full(s: &str) -> String {
        s.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn names_normalise_as_docker_does() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("user/app", "docker.io/user/app:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/library/x:y", "docker.io/library/x:y"),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/a/b:t", "localhost:5000/a/b:t"),
            ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"),
            ("host.example/x", "host.example/x:latest"),
            ("[::1]:5000/x:y", "[::1]:5000/x:y"),
            ("Host.Example/x", "Host.Example/x:latest"),
            ("a/b/c/d", "docker.io/a/b/c/d:latest"),
            ("a_b__c-d---e/f.g_h", "docker.io/a_b__c-d---e/f.g_h:latest"),
            ("x:V1_.-a", "docker.io/library/x:V1_.-a"),
        ];
        for (input, want) in cases {
            assert_eq!(full(input), want, "{input}");
        }
    }

    #[test]
    fn digests_pin_and_drop_the_default_tag() {
        let r: Reference = format!("busybox@{D}").parse().unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.manifest_ref(), D);
        let r: Reference = format!("localhost:5000/a:t@{D}").parse().unwrap();
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.familiar(), format!("localhost:5000/a:t@{D}"));
        assert_eq!(r.manifest_ref(), D);
    }

    #[test]
    fn familiar_forms_leave_out_the_hub() {
        let f = |s: &str| s.parse::<Reference>().unwrap().familiar();
        assert_eq!(f("busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(f("user/app"), "user/app:latest");
        assert_eq!(f("library/a/b"), "library/a/b:latest");
        assert_eq!(f("127.0.0.1:5000/x:t"), "127.0.0.1:5000/x:t");
    }

    #[test]
    fn bad_names_are_refused_with_the_input() {
        let long_repo = format!("a/{}", "b".repeat(260));
        let long_tag = format!("x:{}", "t".repeat(129));
        let hex = "a".repeat(64);
        let bad = [
            "",
            ":",
            "Busybox",
            "user/App",
            "busybox:",
            "busybox:-x",
            "busybox:.x",
            "busybox:a b",
            "busybox:a/b",
            long_tag.as_str(),
            "busybox@",
            "busybox@sha256:abc",
            "busybox@md5:abc",
            "busybox@sha256:AB",
            "/busybox",
            "busybox/",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a.-b",
            "a b",
            "a@b@c",
            "host:port/x",
            "host:123456/x",
            "-host.example/x",
            "host..example/x",
            "[::1/x",
            "[zz]/x",
            "localhost:5000/",
            long_repo.as_str(),
            hex.as_str(),
            "ünicode",
        ];
        for input in bad {
            let err = input.parse::<Reference>().expect_err(input);
            if !input.is_empty() {
                assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
            }
        }
    }

    #[test]
    fn error_kinds_say_what_was_wrong() {
        let e = |s: &str| s.parse::<Reference>().unwrap_err();
        assert!(matches!(e("Busybox"), ReferenceError::Uppercase { .. }));
        assert!(matches!(e("x:-t"), ReferenceError::Tag { .. }));
        assert!(matches!(e("x@sha256:1"), ReferenceError::Digest { .. }));
        assert!(matches!(e("h..x/y"), ReferenceError::Registry { .. }));
        assert!(matches!(e("a//b"), ReferenceError::Repository { .. }));
        assert!(matches!(e(&"0".repeat(64)), ReferenceError::HexName { .. }));
        assert!(matches!(
            e(&format!("a/{}", "b".repeat(300))),
            ReferenceError::TooLong { .. }
        ));
    }
}
