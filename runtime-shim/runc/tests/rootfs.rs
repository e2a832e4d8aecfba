//! The root filesystem, checked from inside real containers: pivot_root, read-only root,
//! the spec's mounts (default ones, tmpfs with options, bind mounts, order), default
//! devices and /dev symlinks, linux.devices, maskedPaths, readonlyPaths, propagation.

use std::fs;
use std::path::Path;

use berth_testkit::runc::*;
use serde_json::json;

/// Mounts as seen from inside the container (`cat /proc/self/mountinfo` output).
fn inside_mounts(out: &str) -> Vec<MountInfo> {
    parse_mountinfo(out)
}

fn mount_at<'a>(mounts: &'a [MountInfo], at: &str) -> &'a MountInfo {
    mounts
        .iter()
        .rev() // the last mount on a path is the visible one
        .find(|m| m.mountpoint == Path::new(at))
        .unwrap_or_else(|| panic!("no mount at {at}: {mounts:#?}"))
}

fn has_opt(opts: &str, opt: &str) -> bool {
    opts.split(',').any(|o| o == opt)
}

#[test]
fn read_only_root_refuses_writes() {
    let c = TestContainer::new(
        "rfs-ro",
        &[
            "sh",
            "-c",
            "touch /x 2>&1; echo rc=$?; mkdir /d 2>&1; echo rc=$?",
        ],
    );
    let out = c.run_ok();
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(
        !out.contains("rc=0"),
        "a write to the read-only root succeeded: {out}"
    );
    assert!(!shared_rootfs().join("x").exists());
    assert!(!shared_rootfs().join("d").exists());
    c.assert_nothing_left();
}

#[test]
fn read_only_root_is_ro_mount() {
    let c = TestContainer::new("rfs-ro-mount", &["cat", "/proc/self/mountinfo"]);
    let out = c.run_ok();
    let mounts = inside_mounts(&out);
    assert!(
        has_opt(&mount_at(&mounts, "/").mount_options, "ro"),
        "{out}"
    );
    // /dev, /proc etc. stay writable where the spec says so.
    assert!(
        has_opt(&mount_at(&mounts, "/dev").mount_options, "rw"),
        "{out}"
    );
    c.assert_nothing_left();
}

#[test]
fn writable_root_when_not_readonly() {
    let mut c = TestContainer::new(
        "rfs-rw",
        &[
            "sh",
            "-c",
            "echo hello > /newfile && mkdir /newdir && echo ok",
        ],
    );
    let rootfs = c.use_private_rootfs();
    assert_eq!(c.run_ok().trim(), "ok");
    assert_eq!(read_trim(&rootfs.join("newfile")), "hello");
    assert!(rootfs.join("newdir").is_dir());
    c.assert_nothing_left();
}

#[test]
fn host_filesystem_not_visible() {
    // After pivot_root the host's files (e.g. this test's bundle) are out of reach and
    // no mount outside the new root remains in the container's mount table.
    let c = TestContainer::new("rfs-pivot", &["true"]);
    let host_path = c.bundle.display().to_string();
    let mut c = c;
    c.spec["process"]["args"] = json!([
        "sh",
        "-c",
        format!("test -e {host_path}/config.json && echo visible || echo hidden; cat /proc/self/mountinfo")
    ]);
    let out = c.run_ok();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hidden"), "{out}");
    let mounts = inside_mounts(&lines.collect::<Vec<_>>().join("\n"));
    assert!(!mounts.is_empty());
    for m in &mounts {
        assert!(
            !m.mountpoint.starts_with(c.tmp_path()) && !m.mountpoint.starts_with(shared_rootfs()),
            "a host path is mounted inside: {m:?}"
        );
    }
    c.assert_nothing_left();
}

#[test]
fn default_mounts_present() {
    let c = TestContainer::new("rfs-defmounts", &["cat", "/proc/self/mountinfo"]);
    let out = c.run_ok();
    let mounts = inside_mounts(&out);
    for (at, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        assert_eq!(mount_at(&mounts, at).fstype, fstype, "{at}: {out}");
    }
    let sys = mount_at(&mounts, "/sys");
    assert!(
        has_opt(&sys.mount_options, "ro"),
        "/sys not read-only: {sys:?}"
    );
    for opt in ["nosuid", "noexec", "nodev"] {
        assert!(
            has_opt(&mount_at(&mounts, "/dev/shm").mount_options, opt),
            "/dev/shm lacks {opt}"
        );
    }
    // The cgroup mount: something is mounted at or under /sys/fs/cgroup.
    assert!(
        mounts
            .iter()
            .any(|m| m.mountpoint.starts_with("/sys/fs/cgroup") && m.fstype.starts_with("cgroup")),
        "no cgroup filesystem under /sys/fs/cgroup: {out}"
    );
    // The spec's options hold for it and for everything mounted below it.
    for m in mounts
        .iter()
        .filter(|m| m.mountpoint.starts_with("/sys/fs/cgroup"))
    {
        for opt in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(
                has_opt(&m.mount_options, opt),
                "{:?} lacks {opt}: {m:?}",
                m.mountpoint
            );
        }
    }
    c.assert_nothing_left();
}

#[test]
fn cgroup_mount_shows_controllers() {
    let c = TestContainer::new("rfs-cgmount", &["ls", "/sys/fs/cgroup"]);
    let out = c.run_ok();
    if cgroup_v2_unified() {
        assert!(out.lines().any(|l| l == "cgroup.controllers"), "{out}");
    } else {
        for ctrl in ["pids", "memory", "cpu"] {
            assert!(
                out.lines().any(|l| l == ctrl),
                "no {ctrl} in /sys/fs/cgroup: {out}"
            );
        }
    }
    c.assert_nothing_left();
}

#[test]
fn tmpfs_mount_with_options() {
    // The tmpfs goes on a destination that does not exist yet (inside another tmpfs):
    // runc keeps the mode of an *existing* destination directory instead of mode=.
    let mut c = TestContainer::new(
        "rfs-tmpfs",
        &[
            "sh",
            "-c",
            "stat -c %a /mnt/t; echo data > /mnt/t/f && cat /mnt/t/f; cat /proc/self/mountinfo",
        ],
    );
    let mounts = c.spec["mounts"].as_array_mut().unwrap();
    mounts.push(json!({
        "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    mounts.push(json!({
        "destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=750"]
    }));
    let out = c.run_ok();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("750"), "{out}");
    assert_eq!(lines.next(), Some("data"), "{out}");
    let mounts = inside_mounts(&lines.collect::<Vec<_>>().join("\n"));
    let m = mount_at(&mounts, "/mnt/t");
    assert_eq!(m.fstype, "tmpfs");
    for opt in ["nosuid", "nodev", "noexec", "rw"] {
        assert!(has_opt(&m.mount_options, opt), "/mnt/t lacks {opt}: {m:?}");
    }
    assert!(has_opt(&m.super_options, "size=1024k"), "{m:?}");
    assert!(has_opt(&m.super_options, "mode=750"), "{m:?}");
    c.assert_nothing_left();
}

#[test]
fn tmpfs_size_limit_enforced() {
    let mut c = TestContainer::new(
        "rfs-tmpfs-size",
        &[
            "sh",
            "-c",
            "head -c 2097152 /dev/zero > /mnt/big; echo rc=$?; wc -c < /mnt/big",
        ],
    );
    c.spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    let out = c.run();
    out.assert_success();
    let lines = out.stdout_lines();
    assert_ne!(lines[0], "rc=0", "{out}");
    assert_eq!(lines[1], "1048576", "{out}");
    c.assert_nothing_left();
}

#[test]
fn mounts_applied_in_order() {
    // The second mount's destination only exists inside the first.
    let mut c = TestContainer::new("rfs-order", &["cat", "/proc/self/mountinfo"]);
    let mounts = c.spec["mounts"].as_array_mut().unwrap();
    mounts.push(json!({ "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"] }));
    mounts.push(json!({ "destination": "/mnt/inner/deep", "type": "tmpfs", "source": "tmpfs", "options": ["size=2m"] }));
    let out = c.run_ok();
    let mounts = inside_mounts(&out);
    let outer = mounts
        .iter()
        .position(|m| m.mountpoint == Path::new("/mnt"));
    let inner = mounts
        .iter()
        .position(|m| m.mountpoint == Path::new("/mnt/inner/deep"));
    assert!(
        matches!((outer, inner), (Some(o), Some(i)) if o < i),
        "mounts missing or out of order: {out}"
    );
    assert!(has_opt(&mounts[inner.unwrap()].super_options, "size=2048k"));
    c.assert_nothing_left();
}

fn host_dir_with_file(c: &TestContainer) -> std::path::PathBuf {
    let dir = c.tmp_path().join("hostdir");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("hello.txt"), "from-the-host\n").unwrap();
    dir
}

#[test]
fn bind_mount_read_only_refuses_writes() {
    let mut c = TestContainer::new(
        "rfs-bind-ro",
        &["sh", "-c", "cat /mnt/hello.txt; touch /mnt/new 2>&1; echo rc=$?; echo x >> /mnt/hello.txt; echo rc=$?"],
    );
    let dir = host_dir_with_file(&c);
    c.spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "type": "bind", "source": dir, "options": ["rbind", "ro"]
    }));
    let out = c.run();
    out.assert_success();
    let lines = out.stdout_lines();
    assert_eq!(lines[0], "from-the-host", "{out}");
    assert!(out.stdout.contains("Read-only file system"), "{out}");
    assert!(
        !out.stdout.contains("rc=0"),
        "a write through the ro bind succeeded: {out}"
    );
    assert!(!dir.join("new").exists());
    assert_eq!(read_trim(&dir.join("hello.txt")), "from-the-host");
    c.assert_nothing_left();
}

#[test]
fn bind_mount_read_write() {
    let mut c = TestContainer::new(
        "rfs-bind-rw",
        &[
            "sh",
            "-c",
            "cat /mnt/hello.txt && echo written > /mnt/new && echo ok",
        ],
    );
    let dir = host_dir_with_file(&c);
    // No "type": a bind mount is recognised by its "bind" option too.
    c.spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "source": dir, "options": ["bind", "rw"]
    }));
    let out = c.run_ok();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["from-the-host", "ok"],
        "{out}"
    );
    assert_eq!(read_trim(&dir.join("new")), "written");
    c.assert_nothing_left();
}

#[test]
fn bind_mount_single_file() {
    let mut c = TestContainer::new("rfs-bind-file", &["cat", "/etc/hostname"]);
    let file = c.tmp_path().join("my-hostname");
    fs::write(&file, "bound-file\n").unwrap();
    c.spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/etc/hostname", "type": "bind", "source": file, "options": ["bind", "ro"]
    }));
    assert_eq!(c.run_ok().trim(), "bound-file");
    c.assert_nothing_left();
}

#[test]
fn rbind_mount_of_nested_tree() {
    let mut c = TestContainer::new("rfs-rbind", &["cat", "/mnt/a/b/c.txt"]);
    let dir = c.tmp_path().join("tree");
    fs::create_dir_all(dir.join("a/b")).unwrap();
    fs::write(dir.join("a/b/c.txt"), "deep\n").unwrap();
    c.spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "type": "bind", "source": dir, "options": ["rbind", "ro"]
    }));
    assert_eq!(c.run_ok().trim(), "deep");
    c.assert_nothing_left();
}

#[test]
fn default_devices() {
    let c = TestContainer::new(
        "rfs-devices",
        &["sh", "-c", "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
               head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok"],
    );
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    let want = [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
    ];
    assert_eq!(&lines[..6], &want, "{out}");
    assert_eq!(&lines[6..], &["4", "4", "null-ok"], "{out}");
    c.assert_nothing_left();
}

#[test]
fn default_dev_symlinks() {
    let mut c = TestContainer::new(
        "rfs-devlinks",
        &[
            "sh",
            "-c",
            "for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done",
        ],
    );
    // A spec device at /dev/ptmx (privileged containers list the host's) is replaced
    // by the link into the container's own devpts, as runc does.
    c.spec["linux"]["devices"] = json!([
        {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2, "fileMode": 438}
    ]);
    let out = c.run_ok();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "fd=/proc/self/fd",
            "stdin=/proc/self/fd/0",
            "stdout=/proc/self/fd/1",
            "stderr=/proc/self/fd/2",
            "ptmx=pts/ptmx",
        ],
        "{out}"
    );
    c.assert_nothing_left();
}

#[test]
fn linux_devices_created() {
    let mut c = TestContainer::new(
        "rfs-linuxdev",
        &[
            "sh",
            "-c",
            "stat -c '%F %t:%T %a %u:%g' /dev/mynull /dev/sub/myzero; \
               echo x > /dev/mynull && echo write-ok; head -c 3 /dev/mynull | wc -c",
        ],
    );
    // No capabilities in the spec: the container's root cannot bypass file modes, so the
    // device it writes to is its own, mode 0666.
    c.spec["linux"]["devices"] = json!([
        { "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
          "fileMode": 0o666, "uid": 0, "gid": 0 },
        { "path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5,
          "fileMode": 0o620, "uid": 1000, "gid": 1001 }
    ]);
    c.spec["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" }));
    let out = c.run_ok();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "character special file 1:3 666 0:0",
            "character special file 1:5 620 1000:1001",
            "write-ok",
            "0"
        ],
        "{out}"
    );
    c.assert_nothing_left();
}

#[test]
fn masked_paths_unreadable() {
    // Masked files read empty, masked directories list empty. Only paths that exist on
    // this host are checked (e.g. this VM kernel has no /proc/kcore).
    let mut checks: Vec<(&str, &str)> = vec![("/sys/kernel", "dir"), ("/etc/hostname", "file")];
    for (p, kind) in [
        ("/proc/timer_list", "file"),
        ("/proc/kcore", "file"),
        ("/sys/firmware", "dir"),
    ] {
        if Path::new(p).exists() {
            checks.push((p, kind));
        }
    }
    let script: String = checks
        .iter()
        .map(|(p, kind)| match *kind {
            "dir" => format!("echo {p}=$(ls -A {p} | wc -l); "),
            _ => format!("echo {p}=$(head -c 100 {p} | wc -c); "),
        })
        .collect::<String>()
        + "echo /sys/fs=$(ls -A /sys/fs | wc -l)";
    let mut c = TestContainer::new("rfs-masked", &["sh", "-c", &script]);
    // A masked file of ours and a masked directory that surely exists and is non-empty.
    c.spec["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .extend([json!("/sys/kernel"), json!("/etc/hostname")]);
    let out = c.run_ok();
    for (p, _) in &checks {
        assert!(
            out.lines().any(|l| l == format!("{p}=0")),
            "{p} is not masked: {out}"
        );
    }
    assert!(
        !out.contains("/sys/fs=0"),
        "unmasked /sys/fs is empty (no sysfs?): {out}"
    );
    c.assert_nothing_left();
}

#[test]
fn masked_paths_missing_are_ignored() {
    let mut c = TestContainer::new("rfs-masked-missing", &["echo", "ok"]);
    c.spec["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/proc/does-not-exist"));
    assert_eq!(c.run_ok().trim(), "ok");
    c.assert_nothing_left();
}

#[test]
fn readonly_paths_not_writable() {
    let mut c = TestContainer::new(
        "rfs-readonly",
        &[
            "sh",
            "-c",
            "echo x > /proc/sys/kernel/domainname; echo rc=$?; \
               touch /mnt/x; echo rc=$?; cat /proc/self/mountinfo",
        ],
    );
    c.spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    c.spec["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/mnt"));
    let out = c.run();
    out.assert_success();
    let lines = out.stdout_lines();
    assert_eq!(&lines[..2], &["rc=2", "rc=1"], "{out}");
    assert_eq!(
        out.stderr.matches("Read-only file system").count(),
        2,
        "writes not refused as read-only: {out}"
    );
    let mounts = inside_mounts(&lines[2..].join("\n"));
    for p in ["/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/mnt"] {
        if p == "/mnt" || Path::new(p).exists() {
            assert!(
                has_opt(&mount_at(&mounts, p).mount_options, "ro"),
                "{p} not ro: {out}"
            );
        }
    }
    c.assert_nothing_left();
}

#[test]
fn rootfs_propagation_private() {
    let mut c = TestContainer::new("rfs-propagation", &["cat", "/proc/self/mountinfo"]);
    c.spec["linux"]["rootfsPropagation"] = json!("private");
    let out = c.run_ok();
    let mounts = inside_mounts(&out);
    let root = mount_at(&mounts, "/");
    assert!(
        !root.optional.contains("shared:") && !root.optional.contains("master:"),
        "root is not private: {root:?}"
    );
    c.assert_nothing_left();
}

#[test]
fn rootfs_propagation_unbindable() {
    // Issue 12.3: applied before the root was bind-mounted on itself, the flag made that
    // bind fail with EINVAL.
    for p in ["unbindable", "runbindable"] {
        let mut c = TestContainer::new("rfs-unbindable", &["cat", "/proc/self/mountinfo"]);
        c.spec["linux"]["rootfsPropagation"] = json!(p);
        let out = c.run_ok();
        let mounts = inside_mounts(&out);
        let root = mount_at(&mounts, "/");
        assert!(root.optional.contains("unbindable"), "{p}: {root:?}");
        c.assert_nothing_left();
    }
}

#[test]
fn no_mounts_leak_to_host_while_running() {
    let mut c = TestContainer::new("rfs-noleak", &["sleep", "1000"]);
    c.spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    c.create().assert_success();
    c.start().assert_success();
    c.wait_for_status("running");
    for m in mountinfo() {
        assert!(
            !m.mountpoint.starts_with(c.tmp_path()) && !m.mountpoint.starts_with(shared_rootfs()),
            "a container mount is visible on the host: {m:?}"
        );
    }
    c.delete_force().assert_success();
    c.assert_nothing_left();
}
