//! An OCI bundle on disk: its config.json, parsed and checked, and its root filesystem.

use std::fs;
use std::path::{Path, PathBuf};

use berth_overlay::OverlayPlan;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, ParseError, Result, SpecError};

/// File name of the spec inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// A loaded and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub path: PathBuf,
    /// The parsed spec.
    pub spec: Spec,
    /// Absolute, symlink-free path of the root filesystem.
    pub rootfs: PathBuf,
    /// The overlay the init mounts on `rootfs` in the container's mount namespace
    /// (the spec's [`berth_overlay::ANNOTATION`]), checked.
    pub overlay: Option<OverlayPlan>,
}

impl Bundle {
    /// Read `<dir>/config.json` and check everything `create` relies on.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = fs::canonicalize(dir).map_err(|e| Error::Config {
            path: dir.to_path_buf(),
            reason: format!("bundle directory: {e}"),
        })?;
        let config = path.join(CONFIG_FILE);
        let bytes = fs::read(&config).map_err(|e| Error::Config {
            path: config.clone(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => "no such file: is this an OCI bundle?".into(),
                _ => e.to_string(),
            },
        })?;
        let spec = parse_spec(&bytes).map_err(|source| Error::Parse {
            path: config.clone(),
            source,
        })?;
        let checked = validate(&spec, &path).and_then(|rootfs| Ok((rootfs, overlay_of(&spec)?)));
        let (rootfs, overlay) = checked.map_err(|reason| Error::InvalidSpec {
            path: config,
            reason: Box::new(reason),
        })?;
        Ok(Bundle {
            path,
            spec,
            rootfs,
            overlay,
        })
    }
}

/// Parse config.json, naming the JSON path of the first bad field.
pub fn parse_spec(bytes: &[u8]) -> std::result::Result<Spec, ParseError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ParseError::Syntax(inner)
        } else {
            ParseError::Field {
                path,
                source: inner,
            }
        }
    })
}

/// Check what the runtime needs of a spec; returns the canonical rootfs path.
fn validate(spec: &Spec, bundle: &Path) -> std::result::Result<PathBuf, SpecError> {
    let root = spec.root().as_ref().ok_or(SpecError::NoRoot)?;
    let rootfs = bundle.join(root.path());
    let rootfs = fs::canonicalize(&rootfs).map_err(|source| SpecError::Rootfs {
        path: rootfs,
        source,
    })?;
    if !rootfs.is_dir() {
        return Err(SpecError::RootfsNotDir(rootfs));
    }

    // Optional at create, required at start (runtime-spec): `start` refuses without.
    if let Some(process) = spec.process() {
        validate_process(process)?;
    }

    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for ns in linux.namespaces().iter().flatten() {
            if seen.contains(&ns.typ()) {
                return Err(SpecError::NamespaceTwice(ns.typ()));
            }
            seen.push(ns.typ());
            if ns.typ() == LinuxNamespaceType::Time {
                return Err(SpecError::NamespaceUnsupported(ns.typ()));
            }
            if let Some(p) = ns.path() {
                if !p.is_absolute() {
                    return Err(SpecError::NamespacePathRelative {
                        ns: ns.typ(),
                        path: p.clone(),
                    });
                }
            }
        }
        crate::userns::validate(linux)?;
        if let Some(sysctl) = linux.sysctl() {
            crate::sysctl::validate(sysctl, &seen)?;
        }
        let has_uts = seen.contains(&LinuxNamespaceType::Uts);
        if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has_uts {
            return Err(SpecError::HostnameWithoutUts);
        }
    }
    crate::lsm::validate(spec)?;
    if let Some(hooks) = spec.hooks() {
        crate::hooks::validate(hooks)?;
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(SpecError::RelativeMountDestination(m.destination().clone()));
        }
    }
    Ok(rootfs)
}

/// The overlay the spec's annotation asks for, checked: parseable, at least one lower,
/// every path absolute and an existing directory, a new mount namespace to mount it in
/// and no user namespace (whose root could not mount the host's layer dirs).
fn overlay_of(spec: &Spec) -> std::result::Result<Option<OverlayPlan>, SpecError> {
    let Some(value) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(berth_overlay::ANNOTATION))
    else {
        return Ok(None);
    };
    let bad = |reason: String| SpecError::Overlay(reason);
    let plan = OverlayPlan::from_annotation(value).map_err(|e| bad(e.to_string()))?;
    if plan.lower.is_empty() {
        return Err(bad("no lower directory".into()));
    }
    let named = plan.lower.iter().map(|l| ("lower", l));
    for (what, dir) in named.chain([("upper", &plan.upper), ("work", &plan.work)]) {
        if !dir.is_absolute() {
            return Err(bad(format!("{what} {} is not absolute", dir.display())));
        }
        if !dir.is_dir() {
            return Err(bad(format!("{what} {} is not a directory", dir.display())));
        }
    }
    let namespaces = spec
        .linux()
        .iter()
        .flat_map(|l| l.namespaces().iter().flatten());
    let mut new_mount = false;
    for ns in namespaces {
        match ns.typ() {
            LinuxNamespaceType::Mount => new_mount = ns.path().is_none(),
            LinuxNamespaceType::User => {
                return Err(bad("not supported with a user namespace".into()))
            }
            _ => {}
        }
    }
    if !new_mount {
        return Err(bad(
            "needs a new mount namespace (it is never mounted in the runtime's)".into(),
        ));
    }
    Ok(Some(plan))
}

/// Check the program and working directory of the container's process.
fn validate_process(process: &oci_spec::runtime::Process) -> std::result::Result<(), SpecError> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(SpecError::NoProgram),
    }
    if !process.cwd().is_absolute() {
        return Err(SpecError::RelativeCwd(process.cwd().clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_parse() {
        for rootless in [false, true] {
            let spec = crate::default_spec::default_spec(rootless, 1000, 1000);
            parse_spec(&serde_json::to_vec(&spec).unwrap()).unwrap();
        }
    }

    #[test]
    fn unknown_namespace_is_named() {
        let err = parse_spec(br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"foo"}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.namespaces[0].type"), "{err}");
        assert!(err.contains("foo"), "{err}");
    }

    #[test]
    fn bad_json_is_reported() {
        let err = parse_spec(b"{not json").unwrap_err().to_string();
        assert!(err.starts_with("invalid JSON"), "{err}");
    }
}
