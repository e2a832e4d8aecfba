//! The CNI driver's contract with plugins and its bad cases, with script plugins (and
//! Debian's bridge before them where something must be undone), each test inside a
//! private "host" network namespace: what a plugin is given (environment, stdin,
//! `prevResult`, `runtimeConfig`, `CNI_ARGS`) in ADD, CHECK and DEL; a failing, hanging,
//! missing or babbling plugin leaves nothing behind; operations on one attachment never
//! overlap; configuration files that are not valid are refused naming the file.

mod cni_common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_network::cni::{self, CniArgs, CniError};
use berth_network::{PortMapping, Protocol};
use cni_common::{fixture, Env, RootLinks};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A script plugin that records what it was given into OUT/<tag>.<command>.* and the
/// order of calls into OUT/order, and answers ADD with an address ending in `last`.
fn recorder(env: &Env, name: &str, last: u8) {
    let out = env.out_dir();
    let out = out.display();
    env.script(
        name,
        &format!(
            r#"cat > {out}/{name}.$CNI_COMMAND.stdin
env | grep '^CNI_' | sort > {out}/{name}.$CNI_COMMAND.env
echo "{name} $CNI_COMMAND" >> {out}/order
[ "$CNI_COMMAND" = ADD ] || exit 0
printf '%s' '{{"cniVersion":"1.0.0","interfaces":[{{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}}],"ips":[{{"address":"10.9.9.{last}/24","gateway":"10.9.9.1","interface":0}}]}}'"#
        ),
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Nothing of an attachment is left: no veth, no bridge made, no address, no cache.
fn assert_nothing_left(env: &Env, net: &str, cni: &cni::Cni) {
    assert_eq!(env.host_veths(), Vec::<String>::new(), "veths left");
    assert_eq!(env.ctr_links(), ["lo"]);
    assert_eq!(env.allocations(net), Vec::<String>::new(), "addresses left");
    assert!(cni.cached().is_empty(), "cached: {:?}", cni.cached());
}

#[test]
fn plugins_get_the_environment_stdin_prev_result_and_runtime_config() {
    let root = RootLinks::snapshot();
    let env = Env::new("cniargs");
    recorder(&env, "rec-a", 2);
    recorder(&env, "rec-b", 3);
    let list = json!({"cniVersion": "1.0.0", "name": "recorded", "plugins": [
        {"type": "rec-a"},
        {"type": "rec-b", "capabilities": {"portMappings": true}}]});
    let net = env.write_list("recorded.conflist", &list);
    let cni = env.cni(TIMEOUT);
    let ctr = env.ctr.path();
    let args = CniArgs {
        args: vec![("FOO".into(), "bar".into())],
        port_mappings: vec![PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        }],
    };
    let result = env
        .host
        .run(|| cni.add(&net, "ctr1", ctr, "eth0", &args))
        .unwrap();
    assert_eq!(result.first_ipv4().unwrap().0.to_string(), "10.9.9.3/24");
    let out = env.out_dir();
    let cni_path = format!("{}:/usr/lib/cni", env.plugin_dir().display());
    let want_env = format!(
        "CNI_ARGS=IgnoreUnknown=1;FOO=bar\nCNI_COMMAND=ADD\nCNI_CONTAINERID=ctr1\n\
         CNI_IFNAME=eth0\nCNI_NETNS={}\nCNI_PATH={cni_path}\n",
        ctr.display()
    );
    assert_eq!(read(&out.join("rec-a.ADD.env")), want_env);
    let a_in = read_json(&out.join("rec-a.ADD.stdin"));
    assert_eq!(
        a_in,
        json!({"type": "rec-a", "name": "recorded", "cniVersion": "1.0.0"})
    );
    let b_in = read_json(&out.join("rec-b.ADD.stdin"));
    let a_result = json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": ctr}],
        "ips": [{"address": "10.9.9.2/24", "gateway": "10.9.9.1", "interface": 0}]});
    assert_eq!(b_in["prevResult"], a_result);
    let mappings = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);
    assert_eq!(b_in["runtimeConfig"]["portMappings"], mappings);

    // A second ADD of the same attachment is refused (DEL it first).
    let again = env.host.run(|| cni.add(&net, "ctr1", ctr, "eth0", &args));
    assert!(
        matches!(again, Err(CniError::AlreadyAttached { .. })),
        "{again:?}"
    );

    // CHECK: in order, the cached result as prevResult.
    env.host
        .run(|| cni.check(&net, "ctr1", ctr, "eth0"))
        .unwrap();
    let b_check = read_json(&out.join("rec-b.CHECK.stdin"));
    assert_eq!(b_check["prevResult"], result.raw);

    // DEL without a namespace: reverse order, empty CNI_NETNS, the cached result and
    // arguments.
    env.host
        .run(|| cni.del(&net, "ctr1", None, "eth0"))
        .unwrap();
    let order = read(&out.join("order"));
    let want_order = "rec-a ADD\nrec-b ADD\nrec-a CHECK\nrec-b CHECK\nrec-b DEL\nrec-a DEL\n";
    assert_eq!(order, want_order);
    assert!(read(&out.join("rec-a.DEL.env")).contains("CNI_NETNS=\n"));
    assert!(read(&out.join("rec-a.DEL.env")).contains("CNI_ARGS=IgnoreUnknown=1;FOO=bar\n"));
    let b_del = read_json(&out.join("rec-b.DEL.stdin"));
    assert_eq!(b_del["prevResult"], result.raw);
    assert_eq!(b_del["runtimeConfig"]["portMappings"], mappings);
    assert!(cni.cached().is_empty());
    root.assert_unchanged();
}

#[test]
fn a_failing_plugin_fails_the_add_with_its_message_and_the_earlier_work_is_undone() {
    let root = RootLinks::snapshot();
    let env = Env::new("cnifail");
    let log = env.out_dir().join("fail.log");
    env.script(
        "fail-plugin",
        &format!(
            r#"cat > /dev/null
echo "$CNI_COMMAND" >> {}
[ "$CNI_COMMAND" = ADD ] || exit 0
printf '%s' '{{"cniVersion":"1.0.0","code":11,"msg":"no luck here","details":"from the test"}}'
exit 1"#,
            log.display()
        ),
    );
    let net = env.bridge_list("failing", &[json!({"type": "fail-plugin"})]);
    let cni = env.cni(TIMEOUT);
    let ctr = env.ctr.path();
    let err = env
        .host
        .run(|| cni.add(&net, "ctr1", ctr, "eth0", &CniArgs::default()))
        .unwrap_err();
    assert!(
        matches!(&err, CniError::PluginFailed { code: Some(11), call, .. } if call.plugin == "fail-plugin"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("plugin fail-plugin ADD"), "{text}");
    assert!(text.contains("no luck here: from the test"), "{text}");
    assert!(text.contains("container ctr1"), "{text}");
    assert_eq!(read(&log), "ADD\nDEL\n");
    assert_nothing_left(&env, "failing", &cni);
    root.assert_unchanged();
}

/// Processes whose command line is exactly `args`.
fn processes_running(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn a_hanging_plugin_times_out_is_killed_with_its_children_and_the_add_is_undone() {
    let root = RootLinks::snapshot();
    let env = Env::new("cnihang");
    let out = env.out_dir();
    env.script(
        "hang-plugin",
        &format!(
            "cat > /dev/null\necho $$ > {}/hang.$CNI_COMMAND.pid\n\
             [ \"$CNI_COMMAND\" = ADD ] && sleep 3617\nexit 0",
            out.display()
        ),
    );
    let net = env.bridge_list("hanging", &[json!({"type": "hang-plugin"})]);
    let cni = env.cni(Duration::from_secs(1));
    let ctr = env.ctr.path();
    let err = env
        .host
        .run(|| cni.add(&net, "ctr1", ctr, "eth0", &CniArgs::default()))
        .unwrap_err();
    assert!(
        matches!(&err, CniError::Timeout { call, .. } if call.plugin == "hang-plugin"),
        "{err:?}"
    );
    assert!(err.to_string().contains("killed"), "{err}");
    // The plugin was reaped; its child (the sleep) was killed with it.
    let pid = read(&out.join("hang.ADD.pid"));
    let plugin = env.plugin_dir().join("hang-plugin");
    let cmdline = fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&cmdline).contains(plugin.to_str().unwrap()));
    let until = Instant::now() + Duration::from_secs(5);
    while !processes_running(&["sleep", "3617"]).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_running(&["sleep", "3617"]), Vec::<u32>::new());
    assert_nothing_left(&env, "hanging", &cni);
    root.assert_unchanged();
}

#[test]
fn a_missing_plugin_is_refused_before_anything_is_made() {
    let root = RootLinks::snapshot();
    let env = Env::new("cnimiss");
    let cni = env.cni(TIMEOUT);
    let ctr = env.ctr.path();
    let missing = env.bridge_list("missing", &[json!({"type": "no-such-plugin"})]);
    let mut no_ipam = env.bridge_list("noipam", &[]);
    no_ipam.plugins[0]["ipam"]["type"] = json!("no-such-ipam");
    for (net, name) in [(&missing, "no-such-plugin"), (&no_ipam, "no-such-ipam")] {
        let err = env
            .host
            .run(|| cni.add(net, "ctr1", ctr, "eth0", &CniArgs::default()))
            .unwrap_err();
        assert!(
            matches!(&err, CniError::PluginNotFound { name: n, .. } if n == name),
            "{err:?}"
        );
        assert!(err.to_string().contains("/usr/lib/cni"), "{err}");
        assert!(matches!(
            cni.validate(net),
            Err(CniError::PluginNotFound { .. })
        ));
    }
    // Not even the bridge was made.
    assert!(!env.host.ip(&["-o", "link"]).contains("cnitest0"));
    assert_nothing_left(&env, "missing", &cni);
    root.assert_unchanged();
}

#[test]
fn output_that_is_not_a_result_fails_with_its_first_bytes_and_is_undone() {
    let root = RootLinks::snapshot();
    let env = Env::new("cnibabble");
    env.script(
        "babble",
        "cat > /dev/null\n[ \"$CNI_COMMAND\" = ADD ] && echo 'this is not json at all'\nexit 0",
    );
    let net = env.bridge_list("babbling", &[json!({"type": "babble"})]);
    let cni = env.cni(TIMEOUT);
    let ctr = env.ctr.path();
    let err = env
        .host
        .run(|| cni.add(&net, "ctr1", ctr, "eth0", &CniArgs::default()))
        .unwrap_err();
    assert!(
        matches!(&err, CniError::BadOutput { head, .. } if head.starts_with("this is not json")),
        "{err:?}"
    );
    assert_nothing_left(&env, "babbling", &cni);
    root.assert_unchanged();
}

#[test]
fn operations_on_one_attachment_never_overlap_across_drivers() {
    let env = Env::new("cnilock");
    let busy = env.out_dir().join("busy");
    env.script(
        "exclusive",
        &format!(
            r#"cat > /dev/null
mkdir {busy} 2>/dev/null || {{ printf '{{"code":999,"msg":"two at once"}}'; exit 1; }}
sleep 0.02
rmdir {busy}
[ "$CNI_COMMAND" = ADD ] && printf '{{"cniVersion":"1.0.0"}}'
exit 0"#,
            busy = busy.display()
        ),
    );
    let net = env.write_list(
        "locked.conflist",
        &json!({"cniVersion": "1.0.0", "name": "locked", "plugins": [{"type": "exclusive"}]}),
    );
    // Two drivers on one cache stand for two processes: only the lock file joins them.
    let drivers = [env.cni(TIMEOUT), env.cni(TIMEOUT)];
    let ctr = env.ctr.path();
    env.host.run(|| {
        std::thread::scope(|s| {
            for i in 0..4 {
                let (cni, net) = (&drivers[i % 2], &net);
                s.spawn(move || {
                    for _ in 0..5 {
                        match cni.add(net, "ctr1", ctr, "eth0", &CniArgs::default()) {
                            Ok(_) | Err(CniError::AlreadyAttached { .. }) => {}
                            Err(e) => panic!("ADD: {e}"),
                        }
                        cni.del(net, "ctr1", Some(ctr), "eth0").unwrap();
                    }
                });
            }
        })
    });
    assert!(drivers[0].cached().is_empty());
}

#[test]
fn configuration_files_that_are_not_valid_are_refused_naming_the_file() {
    // Only files are read here (no plugin runs, no network is touched).
    let cases = [
        ("bad-json.conflist", "does not parse"),
        ("no-version.conflist", "no \"cniVersion\""),
        ("no-plugins.conflist", "\"plugins\" is empty"),
    ];
    for (file, want) in cases {
        let err = cni::load_file(&fixture(file)).unwrap_err().to_string();
        assert!(err.contains(want) && err.contains(file), "{file}: {err}");
    }
    let missing = cni::load_file(Path::new("/nonexistent/x.conflist")).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/x.conflist"));
    let single = cni::load_file(&fixture("single.conf")).unwrap();
    assert_eq!((single.name.as_str(), single.plugins.len()), ("single", 1));

    // A directory: sorted by file name, bad and duplicate files reported, not fatal.
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("single.conf", "20-single.conf"),
        ("full.conflist", "10-full.conflist"),
        ("no-version.conflist", "30-bad.conflist"),
        ("single.conf", "40-again.json"),
    ] {
        fs::copy(fixture(from), dir.path().join(to)).unwrap();
    }
    fs::write(dir.path().join("README"), "not a config").unwrap();
    let (lists, errors) = cni::load_dir(dir.path());
    let names: Vec<_> = lists.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["berth-cni-test", "single"]);
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("30-bad.conflist"), "{errors:?}");
    assert!(errors[1].contains("40-again.json") && errors[1].contains("already defined"));
    assert!(cni::load_dir(Path::new("/nonexistent")).0.is_empty());
}

/// Kills (and so lets init reap) a process a plugin left behind, whose pid is in a file.
struct LeftBehind(std::path::PathBuf);

impl Drop for LeftBehind {
    fn drop(&mut self) {
        if let Ok(pid) = read(&self.0).trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn a_process_a_plugin_leaves_holding_its_output_does_not_hold_up_the_add() {
    let env = Env::new("cnilinger");
    let pid_file = env.out_dir().join("linger.pid");
    env.script(
        "linger",
        &format!(
            "cat > /dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n\
             sleep 3618 &\necho $! > {}\nprintf '{{\"cniVersion\":\"1.0.0\"}}'",
            pid_file.display()
        ),
    );
    let _left = LeftBehind(pid_file.clone());
    let net = env.write_list(
        "linger.conflist",
        &json!({"cniVersion": "1.0.0", "name": "linger", "plugins": [{"type": "linger"}]}),
    );
    let timeout = Duration::from_secs(60);
    let cni = env.cni(timeout);
    let ctr = env.ctr.path();
    let started = Instant::now();
    let result = env
        .host
        .run(|| cni.add(&net, "ctr1", ctr, "eth0", &CniArgs::default()))
        .unwrap();
    assert_eq!(result.cni_version, "1.0.0");
    // Not a speed check: it took the plugin's output without waiting out the timeout.
    assert!(started.elapsed() < timeout / 2, "{:?}", started.elapsed());
    // What the plugin left is not ours to kill: it still runs.
    let pid = read(&pid_file).trim().to_owned();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    env.host
        .run(|| cni.del(&net, "ctr1", Some(ctr), "eth0"))
        .unwrap();
}
