//! berthd's configuration end to end: a TOML file, `BERTH_*` variables and flags in
//! that order of precedence, and bad configurations refused with exit status 2, one
//! line on stderr, and nothing created.

use berth_testkit::daemon as harness;

use std::fs;

use harness::{absent_or_empty, berthd, refused, Daemon, Scratch};

#[test]
fn flags_beat_env_which_beats_the_file() {
    let scratch = Scratch::new("prec");
    let file_socket = scratch.0.join("from-file.sock");
    let env_state = scratch.0.join("state-env");
    let config = scratch.0.join("berthd.toml");
    fs::write(
        &config,
        format!(
            "socket = {:?}\nstate_dir = \"/nonexistent/from-file\"\nworkers = 3\n\
             max_queued = 77\nbody_limit = 100\nheader_timeout = 5\nimages_root = {:?}\n\
             network_root = {:?}\ndefault_network = \"none\"\ncni_conf_dir = {:?}\n",
            file_socket.to_str().unwrap(),
            scratch.images().to_str().unwrap(),
            scratch.0.join("network").to_str().unwrap(),
            scratch.0.join("cni").to_str().unwrap(),
        ),
    )
    .unwrap();
    let shim = berth_testkit::shim_binary();
    let cmd = berthd(
        &[
            "--config",
            config.to_str().unwrap(),
            "--shim",
            shim.to_str().unwrap(),
            "--workers",
            "5",
        ],
        &[
            ("BERTH_WORKERS", "4"),
            ("BERTH_STATE_DIR", env_state.to_str().unwrap()),
            ("BERTH_BODY_LIMIT", "200"),
        ],
    );
    let mut d = Daemon::spawn(cmd, file_socket.clone());

    let r = d.call("GET", "/v1/system", None);
    assert_eq!(r.status, 200, "{r:?}");
    // Flag over env over file; file over default; env over file.
    assert_eq!(r.json["workers"], 5, "{r:?}");
    assert_eq!(r.json["max_queued"], 77, "{r:?}");
    assert!(env_state.is_dir(), "state dir from BERTH_STATE_DIR");
    assert!(
        scratch.images().join("blobs").is_dir(),
        "images root from the file"
    );
    assert!(
        scratch.0.join("network/networks/berth0.json").is_file(),
        "network root from the file, the default network defined there"
    );
    assert!(!std::path::Path::new("/nonexistent/from-file").exists());
    let body = format!("{{\"id\":\"x\",\"bundle\":\"{}\"}}", "b".repeat(150));
    let r = d.call("POST", "/v1/containers", Some(&body));
    assert_eq!(r.status, 422, "150 bytes fit the env's limit of 200: {r:?}");
    let body = format!("{{\"id\":\"x\",\"bundle\":\"{}\"}}", "b".repeat(250));
    let r = d.call("POST", "/v1/containers", Some(&body));
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(d.stop(), Some(0));
    assert!(!file_socket.exists(), "socket removed on exit");
}

#[test]
fn the_example_file_is_a_valid_configuration() {
    let scratch = Scratch::new("example");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/berthd.example.toml");
    // The example names the real paths; flags move them into the scratch directory.
    let d = Daemon::start(&scratch, &["--config", example], &[]);
    let r = d.call("GET", "/v1/system", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["workers"], 10, "{r:?}");
    assert_eq!(r.json["runtime"], "builtin", "{r:?}");
}

#[test]
fn tcp_insecure_from_the_file_opens_loopback_without_a_token() {
    let scratch = Scratch::new("insecure");
    let addr = format!("127.0.0.1:{}", harness::free_port());
    let config = scratch.0.join("berthd.toml");
    fs::write(&config, format!("tcp = {addr:?}\ntcp_insecure = true\n")).unwrap();
    let _d = Daemon::start(&scratch, &["--config", config.to_str().unwrap()], &[]);
    let r = harness::call_tcp(&addr, "GET", "/v1/system", &[]);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn bad_configurations_are_refused_and_create_nothing() {
    let scratch = Scratch::new("bad");
    let state = scratch.state();
    let socket = scratch.socket();
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--socket".into(),
            socket.to_str().unwrap().into(),
            "--state-dir".into(),
            state.to_str().unwrap().into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let config = scratch.0.join("bad.toml");
    let config_arg = config.to_str().unwrap();
    type Env<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Vec<String>, Env, Vec<&str>)> = vec![
        (
            "workers = 3\nwokers = 4\n",
            base(&["--config", config_arg]),
            vec![],
            vec![config_arg, "line 2", "wokers"],
        ),
        (
            "workers = \"ten\"\n",
            base(&["--config", config_arg]),
            vec![],
            vec![config_arg, "line 1", "workers"],
        ),
        (
            "tcp = \"0.0.0.0:2375\"\n",
            base(&["--config", config_arg]),
            vec![],
            vec!["--tcp", "0.0.0.0:2375", "loopback", "token"],
        ),
        (
            "",
            base(&["--tcp", "[::]:2375"]),
            vec![],
            vec!["--tcp", "loopback"],
        ),
        // --tcp-insecure opens loopback only.
        (
            "tcp_insecure = true\n",
            base(&["--config", config_arg, "--tcp", "0.0.0.0:2375"]),
            vec![],
            vec!["--tcp", "0.0.0.0:2375", "loopback", "token"],
        ),
        // Loopback without a token is every local user's root shell: refused unless
        // the operator says so.
        (
            "",
            base(&["--tcp", "127.0.0.1:2375"]),
            vec![],
            vec!["--tcp", "127.0.0.1:2375", "--tcp-insecure"],
        ),
        (
            "",
            base(&[]),
            vec![("BERTH_WORKERS", "0")],
            vec!["--workers", "0"],
        ),
        (
            "registry_timeout = 0\n",
            base(&["--config", config_arg]),
            vec![],
            vec!["--registry-timeout", "0"],
        ),
        (
            "",
            base(&["--runtime", "relative/runc"]),
            vec![],
            vec!["--runtime", "relative/runc"],
        ),
        (
            "",
            base(&["--token-file", "/nonexistent/token"]),
            vec![],
            vec!["--token-file", "/nonexistent/token"],
        ),
        (
            "",
            base(&["--log-level", "[[nope"]),
            vec![],
            vec!["--log-level"],
        ),
        (
            "",
            base(&["--config", "/nonexistent/berthd.toml"]),
            vec![],
            vec!["/nonexistent/berthd.toml"],
        ),
        (
            "",
            base(&["--default-network", "container:web"]),
            vec![],
            vec!["--default-network", "not container:"],
        ),
        (
            "",
            base(&["--default-subnet", "10.1.0.0/40"]),
            vec![],
            vec!["--default-subnet", "10.1.0.0/40"],
        ),
        (
            "default_network = \"\"\n",
            base(&["--config", config_arg]),
            vec![],
            vec!["--default-network", "empty"],
        ),
        (
            "",
            base(&["--cni-timeout", "0"]),
            vec![],
            vec!["--cni-timeout"],
        ),
    ];
    for (text, args, env, wanted) in cases {
        fs::write(&config, text).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = refused(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        for w in wanted {
            assert!(stderr.contains(w), "{w:?} not in {stderr:?}");
        }
        assert!(!state.exists(), "{args:?} made the state directory");
        assert!(!socket.exists(), "{args:?} made the socket");
    }

    // A token and a token file at the same level are ambiguous.
    let token_file = scratch.0.join("token");
    fs::write(&token_file, "abc\n").unwrap();
    let args = base(&[
        "--token",
        "abc",
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = refused(&args, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"));
    assert!(absent_or_empty(&state));
}
