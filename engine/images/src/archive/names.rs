//! Image names in archives, normalised to full references as docker does
//! (`busybox:latest` → `docker.io/library/busybox:latest`). The crate's reference module
//! replaces this small normaliser once it is written.

use super::ArchiveError;
use crate::Digest;

const DEFAULT_REGISTRY: &str = "docker.io";

/// `name` as a full reference: registry, repository, and `:latest` unless it has a tag
/// or digest.
pub(super) fn normalize(name: &str) -> Result<String, ArchiveError> {
    let bad = |reason| ArchiveError::BadName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("empty or has spaces"));
    }
    let (rest, digest) = match name.split_once('@') {
        Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|_| bad("bad digest"))?)),
        None => (name, None),
    };
    let (repo, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (rest, None),
    };
    let (registry, path) = match repo.split_once('/') {
        Some((first, p)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first, p.to_string())
        }
        _ => (DEFAULT_REGISTRY, repo.to_string()),
    };
    let registry = if registry == "index.docker.io" {
        DEFAULT_REGISTRY
    } else {
        registry
    };
    let path = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let path_ok = path.split('/').all(|c| {
        !c.is_empty()
            && c.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
    });
    if !path_ok {
        return Err(bad(
            "repository must be lower-case letters, digits, '.', '_', '-' and '/'",
        ));
    }
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(bad("bad tag"));
        }
    }
    let mut out = format!("{registry}/{path}");
    match (tag, &digest) {
        (Some(t), _) => out.push_str(&format!(":{t}")),
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push_str(&format!("@{d}"));
    }
    Ok(out)
}

/// The short form docker shows and `docker load` reads in `RepoTags`
/// (`docker.io/library/busybox:latest` → `busybox:latest`); `None` for names without a tag.
pub(super) fn familiar_tagged(full: &str) -> Option<String> {
    if full.contains('@') || full.starts_with("sha256:") {
        return None;
    }
    let short = full
        .strip_prefix("docker.io/library/")
        .or_else(|| full.strip_prefix("docker.io/"))
        .unwrap_or(full);
    let last = short.rsplit('/').next().unwrap_or(short);
    last.contains(':').then(|| short.to_string())
}

/// The tag of a full name (`…:latest` → `latest`), if it has one.
pub(super) fn tag_of(full: &str) -> Option<&str> {
    let before_digest = full.split('@').next().unwrap_or(full);
    let last = before_digest.rsplit('/').next().unwrap_or(before_digest);
    last.split_once(':').map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_as_docker_does() {
        let d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        for (input, want) in [
            ("busybox", "docker.io/library/busybox:latest".to_string()),
            ("busybox:1.36", "docker.io/library/busybox:1.36".into()),
            ("user/app:v1", "docker.io/user/app:v1".into()),
            ("localhost:5000/a/b", "localhost:5000/a/b:latest".into()),
            ("127.0.0.1:5000/x:t", "127.0.0.1:5000/x:t".into()),
            (
                "index.docker.io/library/alpine:3",
                "docker.io/library/alpine:3".into(),
            ),
            (
                &format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
        ] {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
        for bad in ["", "Busybox", "a b", "x:", "x@sha256:00", "a//b"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            familiar_tagged("docker.io/library/busybox:latest").as_deref(),
            Some("busybox:latest")
        );
        assert_eq!(
            familiar_tagged("localhost:5000/a/b:t").as_deref(),
            Some("localhost:5000/a/b:t")
        );
        assert_eq!(
            familiar_tagged(&format!("docker.io/library/busybox@{d}")),
            None
        );
        assert_eq!(tag_of("localhost:5000/a/b:t"), Some("t"));
        assert_eq!(tag_of("localhost:5000/a/b"), None);
    }
}
