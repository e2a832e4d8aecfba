//! Isolation, checked from inside real containers: namespaces, hostname, network, user,
//! process attributes (cwd, env, umask, rlimits, oomScoreAdj), sysctl, joined namespaces.

use std::collections::BTreeSet;
use std::fs;

use berth_testkit::runc::*;
use serde_json::json;

#[test]
fn pid_one_in_its_pid_namespace() {
    let c = TestContainer::new(
        "iso-pid1",
        &[
            "sh",
            "-c",
            "echo $$; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'",
        ],
    );
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "shell is not pid 1: {out}");
    assert_eq!(
        lines[1], "sh",
        "pid 1 is not the container's process: {out}"
    );
    // sh, ls, grep (and nothing of the host).
    let n: usize = lines[2].parse().unwrap();
    assert!(n <= 4, "the container sees {n} processes: {out}");
    c.assert_nothing_left();
}

#[test]
fn namespaces_differ_from_host() {
    let c = TestContainer::new(
        "iso-ns",
        &[
            "sh",
            "-c",
            "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done",
        ],
    );
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    for (ns, inside) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .zip(lines)
    {
        assert!(inside.starts_with(&format!("{ns}:[")), "{inside}");
        assert_ne!(
            inside,
            host_ns(ns),
            "the container shares the host's {ns} namespace"
        );
    }
    c.assert_nothing_left();
}

#[test]
fn hostname_from_spec() {
    let host_before = read_trim("/proc/sys/kernel/hostname".as_ref());
    let mut c = TestContainer::new(
        "iso-hostname",
        &["sh", "-c", "hostname; cat /proc/sys/kernel/hostname"],
    );
    c.spec["hostname"] = json!("berth-box");
    let out = c.run_ok();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["berth-box", "berth-box"],
        "{out}"
    );
    assert_eq!(
        read_trim("/proc/sys/kernel/hostname".as_ref()),
        host_before,
        "the host's hostname changed"
    );
    c.assert_nothing_left();
}

#[test]
fn domainname_from_spec() {
    // `domainname` is runtime-spec 1.1 (runc >= 1.2); runc 1.1.5 ignores it.
    if skip_under_runc("runc 1.1 does not implement the spec's domainname") {
        return;
    }
    let host_before = read_trim("/proc/sys/kernel/domainname".as_ref());
    let mut c = TestContainer::new("iso-domainname", &["cat", "/proc/sys/kernel/domainname"]);
    c.spec["domainname"] = json!("berth.example");
    assert_eq!(c.run_ok().trim(), "berth.example");
    assert_eq!(
        read_trim("/proc/sys/kernel/domainname".as_ref()),
        host_before
    );
    c.assert_nothing_left();
}

#[test]
fn only_loopback_in_network_namespace() {
    let c = TestContainer::new("iso-net", &["cat", "/proc/net/dev"]);
    let out = c.run_ok();
    let ifaces: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, vec!["lo"], "{out}");
    c.assert_nothing_left();
}

#[test]
fn loopback_is_up() {
    // As runc does: programs in the container can talk to 127.0.0.1 at once.
    let c = TestContainer::new("iso-lo-up", &["cat", "/sys/class/net/lo/flags"]);
    let out = c.run_ok();
    let flags = u32::from_str_radix(out.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("flags of lo {out:?}: {e}"));
    assert_eq!(flags & 1, 1, "lo is down: flags {out}");
    c.assert_nothing_left();
}

fn groups_of(status_line: &str) -> BTreeSet<u32> {
    status_line
        .trim_start_matches("Groups:")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect()
}

#[test]
fn user_uid_gid_additional_gids() {
    let mut c = TestContainer::new(
        "iso-user",
        &[
            "sh",
            "-c",
            "id -u; id -g; grep '^Groups:' /proc/self/status; grep '^Uid:' /proc/self/status",
        ],
    );
    c.spec["process"]["user"] = json!({ "uid": 1000, "gid": 1001, "additionalGids": [2000, 3000] });
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1001", "{out}");
    assert_eq!(groups_of(lines[2]), BTreeSet::from([2000, 3000]), "{out}");
    // real, effective, saved and fs uid all dropped.
    let uids: Vec<&str> = lines[3].split_whitespace().skip(1).collect();
    assert_eq!(uids, vec!["1000"; 4], "{out}");
    c.assert_nothing_left();
}

#[test]
fn user_without_additional_gids_has_no_groups() {
    let mut c = TestContainer::new("iso-nogroups", &["grep", "^Groups:", "/proc/self/status"]);
    c.spec["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let out = c.run_ok();
    assert!(out.starts_with("Groups:"), "{out}");
    assert!(
        groups_of(out.trim()).is_empty(),
        "the host's supplementary groups leaked in: {out}"
    );
    c.assert_nothing_left();
}

#[test]
fn umask_from_spec_and_default() {
    let mut c = TestContainer::new("iso-umask", &["sh", "-c", "umask"]);
    c.spec["process"]["user"]["umask"] = json!(0o027);
    assert_eq!(c.run_ok().trim(), "0027");
    c.assert_nothing_left();

    let d = TestContainer::new("iso-umask-default", &["sh", "-c", "umask"]);
    assert_eq!(d.run_ok().trim(), "0022", "default umask");
    d.assert_nothing_left();
}

#[test]
fn cwd_from_spec() {
    let mut c = TestContainer::new("iso-cwd", &["pwd"]);
    c.spec["process"]["cwd"] = json!("/etc");
    assert_eq!(c.run_ok().trim(), "/etc");
    c.assert_nothing_left();
}

#[test]
fn env_from_spec() {
    let mut c = TestContainer::new("iso-env", &["env"]);
    c.spec["process"]["env"].as_array_mut().unwrap().extend([
        json!("FOO=bar baz"),
        json!("EMPTY="),
        json!("EQ=a=b"),
    ]);
    let out = c.run_ok();
    let vars: BTreeSet<&str> = out.lines().collect();
    for want in ["FOO=bar baz", "EMPTY=", "EQ=a=b", "PATH=/bin:/usr/bin"] {
        assert!(vars.contains(want), "env lacks {want:?}: {out}");
    }
    // Nothing of the test process's environment leaks in.
    assert!(
        !vars.iter().any(|v| v.starts_with("CARGO")),
        "the runtime's environment leaked into the container: {out}"
    );
    c.assert_nothing_left();
}

#[test]
fn args_are_passed_verbatim() {
    let c = TestContainer::new(
        "iso-args",
        &[
            "sh",
            "-c",
            "for a in \"$@\"; do echo \"[$a]\"; done",
            "argv0",
            "a b",
            "",
            "*",
        ],
    );
    let out = c.run_ok();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["[a b]", "[]", "[*]"],
        "{out}"
    );
    c.assert_nothing_left();
}

#[test]
fn rlimits_applied() {
    let mut c = TestContainer::new(
        "iso-rlimits",
        &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"],
    );
    c.spec["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048 },
        { "type": "RLIMIT_CORE", "soft": 0, "hard": 0 }
    ]);
    let out = c.run_ok();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["512", "2048", "0"],
        "{out}"
    );
    c.assert_nothing_left();
}

#[test]
fn oom_score_adj_applied() {
    let mut c = TestContainer::new("iso-oomscore", &["cat", "/proc/self/oom_score_adj"]);
    c.spec["process"]["oomScoreAdj"] = json!(500);
    assert_eq!(c.run_ok().trim(), "500");
    c.assert_nothing_left();
}

#[test]
fn sysctl_applied_inside_namespaces_only() {
    let host_forward = read_trim("/proc/sys/net/ipv4/ip_forward".as_ref());
    let host_msgmax = read_trim("/proc/sys/kernel/msgmax".as_ref());
    let mut c = TestContainer::new(
        "iso-sysctl",
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax /proc/sys/kernel/domainname",
        ],
    );
    let forward = if host_forward == "1" { "0" } else { "1" };
    let msgmax = if host_msgmax == "4321" {
        "4322"
    } else {
        "4321"
    };
    c.spec["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": forward,
        "kernel.msgmax": msgmax,
        "kernel.domainname": "sysctl.example",
    });
    let out = c.run_ok();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![forward, msgmax, "sysctl.example"],
        "{out}"
    );
    assert_eq!(
        read_trim("/proc/sys/net/ipv4/ip_forward".as_ref()),
        host_forward
    );
    assert_eq!(read_trim("/proc/sys/kernel/msgmax".as_ref()), host_msgmax);
    c.assert_nothing_left();
}

#[test]
fn cgroup_namespace_shows_root() {
    let c = TestContainer::new("iso-cgroupns", &["cat", "/proc/self/cgroup"]);
    let out = c.run_ok();
    assert!(!out.trim().is_empty());
    for line in out.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or_default();
        assert_eq!(path, "/", "cgroup path not virtualized: {line}\n{out}");
    }
    c.assert_nothing_left();
}

#[test]
fn without_cgroup_namespace_sees_cgroups_path() {
    let mut c = TestContainer::new("iso-nocgroupns", &["cat", "/proc/self/cgroup"]);
    c.spec["linux"]["namespaces"] = json!([
        { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
        { "type": "uts" }, { "type": "mount" }
    ]);
    let out = c.run_ok();
    let pids_line = out
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "pids"))
                || l.starts_with("0::")
        })
        .unwrap_or_else(|| panic!("no pids line: {out}"));
    assert!(
        pids_line.ends_with(&c.cgroups_path),
        "process is not in {}: {out}",
        c.cgroups_path
    );
    c.assert_nothing_left();
}

#[test]
fn join_namespaces_by_path() {
    // Container A: created (its init holds the namespaces), never started.
    let mut a = TestContainer::new("iso-join-a", &["sleep", "1000"]);
    a.spec["hostname"] = json!("host-of-a");
    a.create().assert_success();
    let a_pid = a.pid();
    let a_ns = |ns: &str| {
        fs::read_link(format!("/proc/{a_pid}/ns/{ns}"))
            .unwrap()
            .display()
            .to_string()
    };

    // Container B joins A's network, ipc and uts namespaces; new pid and mount.
    let mut b = TestContainer::with_root(
        "iso-join-b",
        &["sh", "-c", "readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts; hostname; cat /proc/net/dev | grep -c :"],
        &a.root,
    );
    b.spec.as_object_mut().unwrap().remove("hostname");
    b.spec["linux"]["namespaces"] = json!([
        { "type": "pid" },
        { "type": "mount" },
        { "type": "network", "path": format!("/proc/{a_pid}/ns/net") },
        { "type": "ipc", "path": format!("/proc/{a_pid}/ns/ipc") },
        { "type": "uts", "path": format!("/proc/{a_pid}/ns/uts") },
    ]);
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        a_ns("net"),
        "B is not in A's network namespace: {out}"
    );
    assert_eq!(
        lines[1],
        a_ns("ipc"),
        "B is not in A's ipc namespace: {out}"
    );
    assert_eq!(
        lines[2],
        a_ns("uts"),
        "B is not in A's uts namespace: {out}"
    );
    assert_ne!(lines[0], host_ns("net"));
    assert_eq!(lines[3], "host-of-a", "{out}");
    assert_eq!(lines[4], "1", "B sees more than lo: {out}");
    b.assert_nothing_left();

    a.delete_force().assert_success();
    a.assert_nothing_left();
}

#[test]
fn join_pid_namespace_by_path() {
    let a = TestContainer::new("iso-joinpid-a", &["sleep", "1000"]);
    a.create().assert_success();
    a.start().assert_success();
    a.wait_for_status("running");
    let a_pid = a.pid();

    let mut b = TestContainer::with_root(
        "iso-joinpid-b",
        &["sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"],
        &a.root,
    );
    b.spec["linux"]["namespaces"] = json!([
        { "type": "pid", "path": format!("/proc/{a_pid}/ns/pid") },
        { "type": "mount" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" },
    ]);
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], "1", "B got its own pid namespace: {out}");
    assert_eq!(
        lines[1].trim(),
        "sleep 1000",
        "pid 1 of the joined namespace is not A's: {out}"
    );
    b.assert_nothing_left();

    a.delete_force().assert_success();
    a.assert_nothing_left();
}

#[test]
fn sibling_containers_do_not_share_namespaces() {
    // Both alive at once (namespace inode numbers are reused once a namespace is gone).
    let a = TestContainer::new("iso-sib-a", &["sleep", "1000"]);
    let b = TestContainer::with_root("iso-sib-b", &["sleep", "1000"], &a.root);
    a.create().assert_success();
    b.create().assert_success();
    let (pa, pb) = (a.pid(), b.pid());
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let na = fs::read_link(format!("/proc/{pa}/ns/{ns}")).unwrap();
        let nb = fs::read_link(format!("/proc/{pb}/ns/{ns}")).unwrap();
        assert_ne!(na, nb, "siblings share a {ns} namespace");
    }
    a.delete_force().assert_success();
    b.delete_force().assert_success();
    a.assert_nothing_left();
    b.assert_nothing_left();
}

/// The test spec without a mount namespace, and without what needs one (masked and
/// read-only paths, which runc refuses there too), on a private rootfs: the container's
/// mounts are made in the host's namespace, below that rootfs.
fn without_mount_namespace(prefix: &str, args: &[&str]) -> TestContainer {
    let mut c = TestContainer::new(prefix, args);
    c.use_private_rootfs();
    let linux = &mut c.spec["linux"];
    let namespaces = linux["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|n| n["type"] != "mount");
    let linux = linux.as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    c
}

#[test]
fn without_a_mount_namespace_the_container_shares_the_runtimes() {
    // Issue 12.3: the spec says the container inherits the runtime's namespace.
    let c = without_mount_namespace(
        "iso-nomntns",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; ls /dev/null; sleep 1000",
        ],
    );
    let created = c.create();
    created.assert_success();
    c.start().assert_success();
    let out = wait_for_file(&created.stdout_path, "output", |t| t.lines().count() >= 2);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], [host_ns("mnt").as_str(), "/dev/null"], "{out}");
    if skip_under_runc("runc execs into the host's root here and leaves its mounts") {
        return;
    }
    // A process exec'd into it is chrooted like its init.
    let exec = c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "test -e /work && echo host || echo container",
    ]);
    exec.assert_success();
    assert_eq!(exec.stdout.trim(), "container", "{exec}");
    // Its mounts live below its root in our namespace until delete removes them.
    assert!(mountinfo()
        .iter()
        .any(|m| m.mountpoint.starts_with(&c.bundle)));
    c.delete_force().assert_success();
    c.assert_nothing_left();
}

#[test]
fn without_a_mount_namespace_what_would_change_the_runtimes_is_refused() {
    if skip_under_runc("runc makes a read-only root out of the host's") {
        return;
    }
    let mut c = without_mount_namespace("iso-nomntns-ro", &["true"]);
    c.spec["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    c.spec["root"]["readonly"] = json!(true);
    c.create()
        .assert_one_line_error(&["mount namespace"], &["maskedPaths", "root.readonly"]);
    c.assert_nothing_left();
}
