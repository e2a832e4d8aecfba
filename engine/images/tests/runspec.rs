//! The spec `runspec::build` makes, run for real: a busybox root filesystem with its own
//! /etc/passwd and /etc/group, started by berth-runc (as root), shows the resolved user,
//! the environment, the working directory, docker's capability set, a seccomp filter that
//! refuses what docker's does, and the per-container /etc files.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use berth_images::manifest::{ImageConfig, RunConfig};
use berth_images::runspec::{self, HostEntry, Overrides};
use berth_testkit::runc::{TestContainer, MARK_ENV};

/// docker's default capabilities as /proc/self/status prints them.
const DOCKER_CAP_EFF: &str = "00000000a80425fb";

const APPLETS: &[&str] = &[
    "sh", "id", "env", "pwd", "cat", "grep", "unshare", "hostname", "true", "echo", "ls",
];

/// A root filesystem of the static busybox and an app user in two extra groups; no
/// /srv/app, the image's working directory (made by `build`, as docker does).
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "home/app", "proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\naudio:x:29:app\nvideo:x:44:other,app\n",
    )
    .unwrap();
    root
}

fn image() -> ImageConfig {
    ImageConfig {
        os: "linux".into(),
        architecture: "amd64".into(),
        config: RunConfig {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["echo image cmd".into()]),
            env: Some(vec!["FOO=image".into(), "BAR=image".into()]),
            working_dir: Some("/srv/app".into()),
            ..RunConfig::default()
        },
        ..ImageConfig::default()
    }
}

/// A test container whose config.json is the built spec, with the harness's cgroup and
/// marker (so its guard finds and removes whatever is left, also on failure).
fn container(prefix: &str, overrides: Overrides) -> (TestContainer, PathBuf) {
    let mut c = TestContainer::new(prefix, &["true"]);
    let root = busybox_rootfs(c.tmp_path());
    let mut overrides = overrides;
    overrides.env.push(format!("{MARK_ENV}={}", c.id));
    let mut spec = runspec::build(&c.id, &image(), &root, &overrides).unwrap();
    let etc = c.tmp_path().join("etc");
    let hostname = spec.hostname().clone().unwrap();
    let extra = [HostEntry {
        address: "10.9.8.7".parse().unwrap(),
        names: vec!["db.internal".into()],
    }];
    runspec::write_etc_files(
        &mut spec,
        &etc,
        &hostname,
        &extra,
        &["192.0.2.53".parse().unwrap()],
    )
    .unwrap();
    c.spec = serde_json::to_value(&spec).unwrap();
    c.spec["linux"]["cgroupsPath"] = c.cgroups_path.clone().into();
    (c, etc)
}

fn script(lines: &[&str]) -> Overrides {
    Overrides {
        args: Some(vec![lines.join("; ")]),
        ..Overrides::default()
    }
}

#[test]
fn a_named_user_runs_with_its_ids_groups_env_and_workdir() {
    let mut o = script(&["id", "echo ---", "env", "echo ---", "pwd"]);
    o.user = Some("app".into());
    o.env = vec!["BAR=request".into()];
    let (c, _) = container("runspec-user", o);
    let out = c.run_ok();
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    let id = parts[0].trim();
    assert!(
        id.starts_with("uid=1000(app) gid=1000(app) groups="),
        "{id}"
    );
    assert!(id.contains("29(audio)") && id.contains("44(video)"), "{id}");
    let env: Vec<&str> = parts[1].lines().collect();
    for want in [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        &format!("HOSTNAME={}", c.id.chars().take(12).collect::<String>()),
        "HOME=/home/app",
        "FOO=image",
        "BAR=request",
    ] {
        assert!(env.contains(&want), "{want} missing from {env:?}");
    }
    assert!(!env.iter().any(|e| e.starts_with("TERM=")), "{env:?}");
    assert_eq!(parts[2].trim(), "/srv/app");
    c.assert_nothing_left();
}

#[test]
fn root_gets_dockers_capabilities_and_the_seccomp_filter_refuses_unshare() {
    let (c, _) = container(
        "runspec-root",
        script(&[
            "grep -E '^(CapEff|CapBnd|CapInh|CapAmb|Seccomp):' /proc/self/status",
            // Root may make a user namespace without any capability: only the filter stops it.
            "unshare -U true 2>&1; echo unshare=$?",
            "ulimit -n",
            "id",
            // docker's masked and read-only paths.
            "[ -s /proc/interrupts ] && echo interrupts=visible || echo interrupts=masked",
            "echo firmware=$(ls /sys/firmware)",
            "{ echo 1 > /proc/sys/vm/drop_caches; } 2>&1; echo rc=$?",
        ]),
    );
    let out = c.run_ok();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
    };
    assert_eq!(field("CapEff:"), DOCKER_CAP_EFF, "{out}");
    assert_eq!(field("CapBnd:"), DOCKER_CAP_EFF, "{out}");
    assert_eq!(field("CapInh:"), "0000000000000000", "{out}");
    assert_eq!(field("CapAmb:"), "0000000000000000", "{out}");
    assert_eq!(field("Seccomp:"), "2", "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("unshare=1"), "{out}");
    let nofile = runspec::defaults::nofile_limit().to_string();
    assert!(out.lines().any(|l| l == nofile), "NOFILE {nofile}: {out}");
    assert!(out.contains("uid=0(root) gid=0(root)"), "{out}");
    assert!(out.contains("interrupts=masked\nfirmware=\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    c.assert_nothing_left();
}

#[test]
fn the_written_etc_files_are_the_containers() {
    let (c, etc) = container(
        "runspec-etc",
        script(&[
            "cat /etc/hostname",
            "echo ---",
            "cat /etc/hosts",
            "echo ---",
            "cat /etc/resolv.conf",
            "echo ---",
            "hostname",
        ]),
    );
    let out = c.run_ok();
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 4, "{out}");
    let short: String = c.id.chars().take(12).collect();
    assert_eq!(parts[0], format!("{short}\n"));
    assert_eq!(parts[1], fs::read_to_string(etc.join("hosts")).unwrap());
    assert!(parts[1].contains("10.9.8.7\tdb.internal"), "{out}");
    assert!(
        parts[2].lines().any(|l| l == "nameserver 192.0.2.53"),
        "{out}"
    );
    assert_eq!(parts[3].trim(), short);
    c.assert_nothing_left();
}

#[test]
fn the_image_command_runs_when_the_request_gives_none() {
    let (c, _) = container("runspec-cmd", Overrides::default());
    assert_eq!(c.run_ok(), "image cmd\n");
    c.assert_nothing_left();
}

#[test]
fn cap_sys_admin_lifts_the_namespace_block_as_in_docker() {
    let mut o = script(&["unshare -U true 2>&1; echo unshare=$?"]);
    o.cap_add = vec!["SYS_ADMIN".into()];
    let (c, _) = container("runspec-sysadmin", o);
    let out = c.run_ok();
    assert!(out.contains("unshare=0"), "{out}");
    c.assert_nothing_left();
}

/// glibc creates threads with clone3 and falls back to clone only on ENOSYS: the profile
/// answers clone3 so, and lets a thread's clone (no namespace flags) through. zstd -T2
/// compresses with worker threads; its Threads: count shows they were made.
#[test]
fn threads_start_under_the_profile_through_the_clone_fallback() {
    let (mut c, _) = container("runspec-threads", Overrides::default());
    let root = c.tmp_path().join("hostroot");
    berth_host_rootfs::build(&root, &["sh", "head", "zstd", "grep", "sleep"]).unwrap();
    let probe = "head -c 4000000000 /dev/zero | zstd -T2 -1 -c > /dev/null & p=$!; \
        i=0; while [ $i -lt 400 ]; do t=$(grep Threads: /proc/$p/status); \
        case \"$t\" in *[2-9]) break;; esac; i=$((i+1)); sleep 0.05; done; \
        echo \"$t\"; kill $p";
    c.spec["root"]["path"] = root.display().to_string().into();
    c.spec["process"]["args"] = serde_json::json!(["sh", "-c", probe]);
    c.spec["process"]["cwd"] = "/".into();
    let out = c.run_ok();
    let threads: u32 = out
        .trim()
        .strip_prefix("Threads:")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(threads >= 2, "{out}");
    c.assert_nothing_left();
}
