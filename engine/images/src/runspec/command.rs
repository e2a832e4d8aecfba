//! What the process runs, with which environment, where: docker's rules for Entrypoint,
//! Cmd, Env, WorkingDir and the hostname.

use std::path::{Component, Path, PathBuf};

use super::{Overrides, RunspecError};
use crate::manifest::RunConfig;

/// docker's PATH for Linux containers, used when neither image nor request sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The longest hostname the kernel takes (`HOST_NAME_MAX`).
const HOST_NAME_MAX: usize = 64;

/// `process.args`: docker's rule. Arguments replace the image's Cmd and keep its
/// Entrypoint; an entrypoint replaces the image's and drops its Cmd (unless arguments
/// are given); an empty entrypoint clears it and runs the Cmd alone. Empty argument
/// lists count as not given, as in docker.
pub fn args(image: &RunConfig, o: &Overrides) -> Result<Vec<String>, RunspecError> {
    let given_args = o.args.as_ref().filter(|a| !a.is_empty());
    let image_cmd = || image.cmd.clone().unwrap_or_default();
    let mut out = match &o.entrypoint {
        Some(entry) if !entry.is_empty() => {
            let mut v = entry.clone();
            v.extend(given_args.cloned().unwrap_or_default());
            v
        }
        Some(_) => given_args.cloned().unwrap_or_else(image_cmd),
        None => {
            let mut v = image.entrypoint.clone().unwrap_or_default();
            v.extend(given_args.cloned().unwrap_or_else(image_cmd));
            v
        }
    };
    if out.first().is_none_or(|p| p.is_empty()) {
        return Err(RunspecError::NoCommand);
    }
    for a in &out {
        no_nul("argument", a)?;
    }
    out.shrink_to_fit();
    Ok(out)
}

/// `process.env`: PATH (docker's default), HOSTNAME and, with a terminal, TERM=xterm;
/// then the image's Env and then the request's, each replacing an earlier entry of the
/// same name. A request entry without `=` removes that variable (docker's API). HOME
/// comes last from the user's passwd entry unless set.
pub fn env(
    image: &RunConfig,
    o: &Overrides,
    hostname: &str,
    home: &str,
) -> Result<Vec<String>, RunspecError> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if o.tty {
        env.push("TERM=xterm".into());
    }
    // An image entry without '=' means nothing; it is skipped.
    for entry in image.env.iter().flatten().filter(|e| e.contains('=')) {
        check_entry(entry)?;
        set(&mut env, entry);
    }
    for entry in &o.env {
        check_entry(entry)?;
        if entry.contains('=') {
            set(&mut env, entry);
        } else {
            env.retain(|e| name_of(e) != entry);
        }
    }
    if !env.iter().any(|e| name_of(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

fn name_of(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(name, _)| name)
}

/// Replace the entry of the same name in place, or append.
fn set(env: &mut Vec<String>, entry: &str) {
    let name = name_of(entry);
    match env.iter_mut().find(|e| name_of(e) == name) {
        Some(slot) => *slot = entry.to_string(),
        None => env.push(entry.to_string()),
    }
}

fn check_entry(entry: &str) -> Result<(), RunspecError> {
    no_nul("environment variable", entry)?;
    if name_of(entry).is_empty() {
        return Err(RunspecError::BadEnv {
            entry: entry.into(),
        });
    }
    Ok(())
}

/// `process.cwd`: the request's, else the image's WorkingDir, else `/`; it must be
/// absolute and is cleaned (`/a/./b/../c/` → `/a/c`).
pub fn cwd(image: &RunConfig, o: &Overrides) -> Result<PathBuf, RunspecError> {
    // Empty means not given, as in docker.
    let dir = [o.workdir.as_deref(), image.working_dir.as_deref()]
        .into_iter()
        .flatten()
        .find(|d| !d.is_empty())
        .unwrap_or("/");
    no_nul("working directory", dir)?;
    if !dir.starts_with('/') {
        return Err(RunspecError::RelativeWorkdir { path: dir.into() });
    }
    let mut clean = PathBuf::from("/");
    for c in Path::new(dir).components() {
        match c {
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(clean)
}

/// The hostname: the request's, else (also when empty) the first 12 characters of the
/// id, as docker.
pub fn hostname(id: &str, o: &Overrides) -> Result<String, RunspecError> {
    let name = match o.hostname.as_deref() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => id.chars().take(12).collect(),
    };
    let bad = name.is_empty()
        || name.len() > HOST_NAME_MAX
        || name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '/');
    if bad {
        return Err(RunspecError::BadHostname { name });
    }
    Ok(name)
}

fn no_nul(what: &'static str, value: &str) -> Result<(), RunspecError> {
    if value.contains('\0') {
        return Err(RunspecError::Nul {
            what,
            value: value.replace('\0', "\\0"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn image(entry: Option<&[&str]>, cmd: Option<&[&str]>) -> RunConfig {
        RunConfig {
            entrypoint: entry.map(v),
            cmd: cmd.map(v),
            ..RunConfig::default()
        }
    }

    fn over(entry: Option<&[&str]>, args: Option<&[&str]>) -> Overrides {
        Overrides {
            entrypoint: entry.map(v),
            args: args.map(v),
            ..Overrides::default()
        }
    }

    #[test]
    fn args_follow_dockers_rule() {
        let both = image(Some(&["/entry", "-x"]), Some(&["serve", "--port=80"]));
        let cases: &[(&RunConfig, Overrides, &[&str])] = &[
            (
                &both,
                over(None, None),
                &["/entry", "-x", "serve", "--port=80"],
            ),
            // Arguments replace Cmd, keep Entrypoint.
            (&both, over(None, Some(&["sh"])), &["/entry", "-x", "sh"]),
            // An entrypoint drops the image's Cmd.
            (&both, over(Some(&["/bin/sh"]), None), &["/bin/sh"]),
            (
                &both,
                over(Some(&["/bin/sh"]), Some(&["-c", "id"])),
                &["/bin/sh", "-c", "id"],
            ),
            // An empty entrypoint clears it; Cmd (or the arguments) run alone.
            (&both, over(Some(&[]), None), &["serve", "--port=80"]),
            (&both, over(Some(&[]), Some(&["ls"])), &["ls"]),
            // Empty arguments count as none.
            (
                &both,
                over(None, Some(&[])),
                &["/entry", "-x", "serve", "--port=80"],
            ),
        ];
        for (img, o, want) in cases {
            assert_eq!(args(img, o).unwrap(), v(want), "{o:?}");
        }
        let cmd_only = image(None, Some(&["sh"]));
        assert_eq!(args(&cmd_only, &over(None, None)).unwrap(), v(&["sh"]));
        assert_eq!(
            args(&cmd_only, &over(None, Some(&["id", "-u"]))).unwrap(),
            v(&["id", "-u"])
        );
        let entry_only = image(Some(&["/init"]), None);
        assert_eq!(args(&entry_only, &over(None, None)).unwrap(), v(&["/init"]));
    }

    #[test]
    fn no_command_is_a_typed_error() {
        let none = image(None, None);
        let empty = image(Some(&[]), Some(&[]));
        let only_entry = image(Some(&["/e"]), None);
        for (img, o) in [
            (&none, over(None, None)),
            (&empty, over(None, Some(&[]))),
            (&none, over(Some(&[""]), None)),
            // An empty entrypoint clears the image's, and there is no Cmd.
            (&only_entry, over(Some(&[]), None)),
        ] {
            let e = args(img, &o).unwrap_err();
            assert!(matches!(e, RunspecError::NoCommand), "{o:?}: {e}");
            assert!(e.to_string().contains("no command"), "{e}");
        }
        assert!(matches!(
            args(&none, &over(None, Some(&["a\0b"]))),
            Err(RunspecError::Nul { .. })
        ));
    }

    fn env_of(image_env: &[&str], req: &[&str], tty: bool) -> Result<Vec<String>, RunspecError> {
        let img = RunConfig {
            env: Some(v(image_env)),
            ..RunConfig::default()
        };
        let o = Overrides {
            env: v(req),
            tty,
            ..Overrides::default()
        };
        env(&img, &o, "abc", "/root")
    }

    #[test]
    fn env_defaults_then_image_then_request() {
        let e = env_of(&[], &[], false).unwrap();
        assert_eq!(
            e,
            v(&[
                &format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=abc",
                "HOME=/root"
            ])
        );
        let e = env_of(
            &["PATH=/img", "A=1", "B=2", "HOME=/h"],
            &["B=3", "C=4", "A"],
            true,
        )
        .unwrap();
        assert_eq!(
            e,
            v(&[
                "PATH=/img",
                "HOSTNAME=abc",
                "TERM=xterm",
                "B=3",
                "HOME=/h",
                "C=4"
            ])
        );
        // Same name replaces, values may hold '=' and be empty.
        let e = env_of(&["X=a=b"], &["X=", "HOSTNAME=mine", "TERM=vt100"], true).unwrap();
        assert_eq!(
            e,
            v(&[
                &format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=mine",
                "TERM=vt100",
                "X=",
                "HOME=/root"
            ])
        );
        // The request may remove PATH; an image entry without '=' is nothing.
        let e = env_of(&["JUNK"], &["PATH"], false).unwrap();
        assert_eq!(e, v(&["HOSTNAME=abc", "HOME=/root"]));
    }

    #[test]
    fn bad_env_entries_are_refused() {
        for bad in ["=x", "", "A=\0"] {
            let e = env_of(&[], &[bad], false).unwrap_err();
            assert!(
                matches!(e, RunspecError::BadEnv { .. } | RunspecError::Nul { .. }),
                "{bad:?}: {e}"
            );
        }
        assert!(env_of(&["=oops"], &[], false).is_err());
    }

    #[test]
    fn cwd_request_then_image_then_root() {
        let img = RunConfig {
            working_dir: Some("/srv/app/".into()),
            ..RunConfig::default()
        };
        let o = |w: Option<&str>| Overrides {
            workdir: w.map(String::from),
            ..Overrides::default()
        };
        assert_eq!(cwd(&img, &o(None)).unwrap(), Path::new("/srv/app"));
        assert_eq!(
            cwd(&img, &o(Some("/tmp/./x/../y"))).unwrap(),
            Path::new("/tmp/y")
        );
        assert_eq!(cwd(&img, &o(Some("/../.."))).unwrap(), Path::new("/"));
        assert_eq!(
            cwd(&RunConfig::default(), &o(None)).unwrap(),
            Path::new("/")
        );
        assert_eq!(
            cwd(&RunConfig::default(), &o(Some(""))).unwrap(),
            Path::new("/")
        );
        assert!(matches!(
            cwd(&img, &o(Some("rel/dir"))),
            Err(RunspecError::RelativeWorkdir { .. })
        ));
        let rel = RunConfig {
            working_dir: Some("app".into()),
            ..RunConfig::default()
        };
        assert!(cwd(&rel, &o(None)).is_err());
    }

    #[test]
    fn hostname_is_the_ids_first_12_or_the_requests() {
        let none = Overrides::default();
        assert_eq!(hostname("0123456789abcdef", &none).unwrap(), "0123456789ab");
        assert_eq!(hostname("short", &none).unwrap(), "short");
        let given = Overrides {
            hostname: Some("web-1.example".into()),
            ..Overrides::default()
        };
        assert_eq!(hostname("x", &given).unwrap(), "web-1.example");
        let empty = Overrides {
            hostname: Some(String::new()),
            ..Overrides::default()
        };
        assert_eq!(hostname("abc", &empty).unwrap(), "abc");
        assert!(hostname("", &none).is_err());
        for bad in ["a b", "a/b", &"x".repeat(65)] {
            let o = Overrides {
                hostname: Some(bad.into()),
                ..Overrides::default()
            };
            assert!(
                matches!(hostname("x", &o), Err(RunspecError::BadHostname { .. })),
                "{bad}"
            );
        }
    }
}
