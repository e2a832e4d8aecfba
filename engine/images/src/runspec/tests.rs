//! [`build`] on temporary root filesystems: the id files read safely, the defaults in
//! place, the profile accepted by the runtime's seccomp compiler.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

fn rootfs_with(passwd: Option<&str>, group: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("etc")).unwrap();
    if let Some(p) = passwd {
        fs::write(dir.path().join("etc/passwd"), p).unwrap();
    }
    if let Some(g) = group {
        fs::write(dir.path().join("etc/group"), g).unwrap();
    }
    dir
}

fn config(cmd: &[&str]) -> ImageConfig {
    ImageConfig {
        os: "linux".into(),
        config: RunConfig {
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..RunConfig::default()
        },
        ..ImageConfig::default()
    }
}

fn with_user(user: &str) -> Overrides {
    Overrides {
        user: Some(user.into()),
        ..Overrides::default()
    }
}

#[test]
fn a_named_user_resolves_in_the_images_files() {
    let root = rootfs_with(
        Some("root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n"),
        Some("root:x:0:\nweb:x:33:\nlog:x:4:web\n"),
    );
    let spec = build("c1", &config(&["id"]), root.path(), &with_user("web")).unwrap();
    let user = spec.process().as_ref().unwrap().user();
    assert_eq!((user.uid(), user.gid()), (33, 33));
    assert_eq!(user.additional_gids().as_deref(), Some(&[4][..]));
    let env = spec.process().as_ref().unwrap().env().clone().unwrap();
    assert!(env.contains(&"HOME=/var/www".to_string()), "{env:?}");
}

#[test]
fn a_symlinked_passwd_resolves_inside_the_rootfs() {
    // /etc/passwd -> ../../../../../../etc/passwd: read as the image's own /etc/passwd
    // target, which climbs to the rootfs's top and no further, and -> /elsewhere.
    let root = rootfs_with(None, None);
    fs::write(root.path().join("real"), "inside:x:777:778::/in:/bin/sh\n").unwrap();
    symlink("../../../../../../../real", root.path().join("etc/passwd")).unwrap();
    let spec = build("c", &config(&["id"]), root.path(), &with_user("inside")).unwrap();
    assert_eq!(spec.process().as_ref().unwrap().user().uid(), 777);
    // A link to a host file outside the rootfs finds nothing (the host's file is never
    // read), and one to the host's /etc/passwd is the image's own: a loop.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("passwd"), "hostonly:x:5:5::/:/bin/sh\n").unwrap();
    fs::remove_file(root.path().join("etc/passwd")).unwrap();
    symlink(
        outside.path().join("passwd"),
        root.path().join("etc/passwd"),
    )
    .unwrap();
    let e = build("c", &config(&["id"]), root.path(), &with_user("hostonly")).unwrap_err();
    assert!(matches!(e, RunspecError::UnknownUser { .. }), "{e}");
    fs::remove_file(root.path().join("etc/passwd")).unwrap();
    symlink("/etc/passwd", root.path().join("etc/passwd")).unwrap();
    let e = build("c", &config(&["id"]), root.path(), &with_user("root")).unwrap_err();
    assert!(e.to_string().contains("symbolic links"), "{e}");
    // An absolute link to a path inside the image works.
    fs::remove_file(root.path().join("etc/passwd")).unwrap();
    symlink("/real", root.path().join("etc/passwd")).unwrap();
    let spec = build("c", &config(&["id"]), root.path(), &with_user("inside")).unwrap();
    assert_eq!(spec.process().as_ref().unwrap().user().gid(), 778);
}

#[test]
fn an_id_file_that_is_not_a_regular_file_or_too_large_is_refused() {
    let root = rootfs_with(None, None);
    nix::unistd::mkfifo(
        &root.path().join("etc/passwd"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let e = build("c", &config(&["id"]), root.path(), &with_user("app")).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");

    let root = rootfs_with(None, None);
    let big = "x:x:1:1::/:/bin/sh\n".repeat((inroot::MAX_ID_FILE as usize / 18) + 2);
    fs::write(root.path().join("etc/passwd"), big).unwrap();
    let e = build("c", &config(&["id"]), root.path(), &with_user("x")).unwrap_err();
    assert!(matches!(e, RunspecError::IdFile { .. }), "{e}");
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[test]
fn numeric_ids_need_no_files() {
    let root = tempfile::tempdir().unwrap();
    let spec = build("c", &config(&["id"]), root.path(), &with_user("1234:5678")).unwrap();
    let user = spec.process().as_ref().unwrap().user();
    assert_eq!((user.uid(), user.gid()), (1234, 5678));
    let e = build("c", &config(&["id"]), root.path(), &with_user("app")).unwrap_err();
    assert!(e.to_string().contains("\"app\""), "{e}");
}

#[test]
fn the_image_user_applies_unless_the_request_names_one() {
    let root = rootfs_with(Some("a:x:10:10::/a:/bin/sh\nb:x:20:20::/b:/bin/sh\n"), None);
    let mut cfg = config(&["id"]);
    cfg.config.user = Some("a".into());
    let spec = build("c", &cfg, root.path(), &Overrides::default()).unwrap();
    assert_eq!(spec.process().as_ref().unwrap().user().uid(), 10);
    let spec = build("c", &cfg, root.path(), &with_user("b")).unwrap();
    assert_eq!(spec.process().as_ref().unwrap().user().uid(), 20);
    let spec = build("c", &cfg, root.path(), &with_user("")).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().user().uid(),
        10,
        "empty is not given"
    );
}

#[test]
fn the_spec_has_dockers_defaults() {
    let root = tempfile::tempdir().unwrap();
    let mut cfg = config(&["sh"]);
    cfg.config.working_dir = Some("/srv".into());
    cfg.config.stop_signal = Some("SIGQUIT".into());
    cfg.config.labels = Some(BTreeMap::from([
        ("maintainer".to_string(), "me".to_string()),
        (STOP_SIGNAL_ANNOTATION.to_string(), "SIGKILL".to_string()),
    ]));
    let spec = build("0123456789abcdef", &cfg, root.path(), &Overrides::default()).unwrap();
    let value = serde_json::to_value(&spec).unwrap();
    assert_eq!(value["hostname"], "0123456789ab");
    assert_eq!(value["process"]["cwd"], "/srv");
    assert_eq!(value["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(value["process"]["noNewPrivileges"], false);
    assert_eq!(value["root"]["path"], serde_json::json!(root.path()));
    let caps = &value["process"]["capabilities"];
    assert_eq!(caps["bounding"].as_array().unwrap().len(), 14);
    assert!(caps.get("ambient").is_none() && caps.get("inheritable").is_none());
    let ns: Vec<&str> = value["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network", "cgroup"]);
    assert!(value["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&"/proc/kcore".into()));
    assert_eq!(
        stop_signal(&spec),
        Some("SIGQUIT"),
        "a label cannot override it"
    );
    assert_eq!(spec.annotations().as_ref().unwrap()["maintainer"], "me");
    let nofile = &value["process"]["rlimits"][0];
    assert_eq!(nofile["type"], "RLIMIT_NOFILE");
    assert_eq!(nofile["hard"], defaults::nofile_limit());
}

#[test]
fn no_stop_signal_means_none() {
    let root = tempfile::tempdir().unwrap();
    let spec = build("c", &config(&["sh"]), root.path(), &Overrides::default()).unwrap();
    assert_eq!(stop_signal(&spec), None);
}

#[test]
fn bad_requests_are_typed_errors() {
    let root = tempfile::tempdir().unwrap();
    let empty = config(&[]);
    assert!(matches!(
        build("c", &empty, root.path(), &Overrides::default()),
        Err(RunspecError::NoCommand)
    ));
    let mut windows = config(&["cmd"]);
    windows.os = "windows".into();
    assert!(matches!(
        build("c", &windows, root.path(), &Overrides::default()),
        Err(RunspecError::WrongOs { .. })
    ));
    let caps = Overrides {
        cap_add: vec!["CAP_NOPE".into()],
        ..Overrides::default()
    };
    assert!(matches!(
        build("c", &config(&["sh"]), root.path(), &caps),
        Err(RunspecError::UnknownCapability { .. })
    ));
    let missing = Path::new("/nonexistent-berth-rootfs");
    let e = build("c", &config(&["sh"]), missing, &with_user("app")).unwrap_err();
    assert!(matches!(e, RunspecError::IdFile { .. }), "{e}");
}

#[test]
fn the_profile_compiles_in_the_runtime_for_every_capability_set() {
    use berth_testkit::runtime::seccomp;
    let root = tempfile::tempdir().unwrap();
    for o in [
        Overrides::default(),
        Overrides {
            cap_add: vec!["ALL".into()],
            ..Overrides::default()
        },
        Overrides {
            cap_drop: vec!["ALL".into()],
            ..Overrides::default()
        },
    ] {
        let spec = build("c", &config(&["sh"]), root.path(), &o).unwrap();
        let profile = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
        let program = seccomp::compile(profile).unwrap();
        assert!(program.instructions().len() <= seccomp::MAX_INSTRUCTIONS);
    }
}

#[test]
fn a_missing_workdir_is_made_inside_the_rootfs() {
    let root = rootfs_with(None, None);
    let o = Overrides {
        workdir: Some("/srv/a/b".into()),
        ..Overrides::default()
    };
    build("c", &config(&["sh"]), root.path(), &o).unwrap();
    assert!(root.path().join("srv/a/b").is_dir());
    // Through a symlink that climbs above the top: it lands inside.
    fs::create_dir_all(root.path().join("srv")).unwrap();
    symlink("../../../../../../srv", root.path().join("lnk")).unwrap();
    let o = Overrides {
        workdir: Some("/lnk/made".into()),
        ..Overrides::default()
    };
    build("c", &config(&["sh"]), root.path(), &o).unwrap();
    assert!(root.path().join("srv/made").is_dir());
    // A link to a host directory the image does not have is dangling inside: refused,
    // and nothing is made on the host.
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), root.path().join("out")).unwrap();
    let o = Overrides {
        workdir: Some("/out/made".into()),
        ..Overrides::default()
    };
    let e = build("c", &config(&["sh"]), root.path(), &o).unwrap_err();
    assert!(matches!(e, RunspecError::Workdir { .. }), "{e}");
    assert!(!outside.path().join("made").exists());
    // A file in the way is an error naming the directory.
    fs::write(root.path().join("file"), "").unwrap();
    let o = Overrides {
        workdir: Some("/file/x".into()),
        ..Overrides::default()
    };
    let e = build("c", &config(&["sh"]), root.path(), &o).unwrap_err();
    assert!(matches!(e, RunspecError::Workdir { .. }), "{e}");
    assert!(e.to_string().contains("/file/x"), "{e}");
}
