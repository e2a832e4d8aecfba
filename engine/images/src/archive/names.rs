//! Image names in archives, normalised to full references as docker does
//! (`busybox:latest` → `docker.io/library/busybox:latest`) by [`crate::reference`].

use super::ArchiveError;
use crate::reference::Reference;

/// `name` as a full reference: registry, repository, and `:latest` unless it has a tag
/// or digest.
pub(super) fn normalize(name: &str) -> Result<String, ArchiveError> {
    name.parse::<Reference>()
        .map(|r| r.to_string())
        .map_err(|e| ArchiveError::BadName {
            name: name.to_string(),
            reason: e.to_string(),
        })
}

/// The short form docker shows and `docker load` reads in `RepoTags`
/// (`docker.io/library/busybox:latest` → `busybox:latest`); `None` for names without a tag.
pub(super) fn familiar_tagged(full: &str) -> Option<String> {
    let r = full.parse::<Reference>().ok()?;
    (r.digest.is_none() && r.tag.is_some()).then(|| r.familiar())
}

/// The tag of a full name (`…:latest` → `latest`), if it has one.
pub(super) fn tag_of(full: &str) -> Option<String> {
    full.parse::<Reference>().ok()?.tag
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
        assert_eq!(tag_of("localhost:5000/a/b:t").as_deref(), Some("t"));
    }
}
