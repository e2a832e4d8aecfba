//! berthd on TCP: a listener beside the unix socket, the bearer token checked
//! on every TCP request (401 with `WWW-Authenticate: Bearer` otherwise), the unix socket
//! needing none, and the header timeout configurable.

use berth_testkit::daemon as harness;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use harness::{call_tcp, free_port, Daemon, Scratch};

#[test]
fn a_token_guards_every_tcp_request() {
    let scratch = Scratch::new("token");
    let token_file = scratch.0.join("token");
    fs::write(&token_file, "t0ken-Secret_42\n").unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut d = Daemon::start(
        &scratch,
        &["--tcp", &addr],
        &[("BERTH_TOKEN_FILE", token_file.to_str().unwrap())],
    );

    for headers in [
        &[][..],
        &["Authorization: Bearer wrong"][..],
        &["Authorization: Bearer t0ken-Secret_4"][..],
        &["Authorization: Basic t0ken-Secret_42"][..],
    ] {
        let r = call_tcp(&addr, "GET", "/v1/system", headers);
        assert_eq!(r.status, 401, "{headers:?}: {r:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{r:?}");
        assert_eq!(r.json["error"]["code"], "unauthorized", "{r:?}");
        assert!(r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert!(!r.text.contains("t0ken"), "the token leaked: {r:?}");
    }
    // Nothing reaches a route without the token: not even a create.
    let r = call_tcp(&addr, "DELETE", "/v1/containers/nope", &[]);
    assert_eq!(r.status, 401, "{r:?}");

    // The right token (trailing newline of the file ignored).
    let auth = "Authorization: Bearer t0ken-Secret_42";
    let r = call_tcp(&addr, "GET", "/v1/system", &[auth]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["workers"], 10, "{r:?}");
    let r = call_tcp(&addr, "GET", "/v1/containers/nope", &[auth]);
    assert_eq!(r.json["error"]["code"], "not_found", "{r:?}");

    // The unix socket needs no token.
    let r = d.call("GET", "/v1/system", None);
    assert_eq!(r.status, 200, "{r:?}");

    // The refusals are counted with the HTTP metrics.
    let r = d.call("GET", "/metrics", None);
    assert!(
        r.text
            .contains("berth_http_requests_total{route=\"/v1/system\",status=\"401\"} 4"),
        "{}",
        r.text
    );
    assert!(r
        .text
        .contains("berth_http_requests_total{route=\"/v1/containers/{id}\",status=\"401\"} 1"));

    // SIGTERM stops both listeners.
    assert_eq!(d.stop(), Some(0));
    assert!(TcpStream::connect(&addr).is_err(), "TCP still listening");
}

#[test]
fn insecure_loopback_is_open_to_local_clients_only_and_headers_time_out() {
    let scratch = Scratch::new("open");
    let addr = format!("127.0.0.1:{}", free_port());
    // From the environment, as a boolean clap reads like "1".
    let _d = Daemon::start(
        &scratch,
        &["--tcp", &addr, "--header-timeout", "1"],
        &[("BERTH_TCP_INSECURE", "1")],
    );
    let r = call_tcp(&addr, "GET", "/healthz", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["status"], "ok", "{r:?}");
    let r = call_tcp(&addr, "GET", "/v1/system", &[&format!("Host: {addr}")]);
    assert_eq!(r.status, 200, "{r:?}");
    // What a web page could make a browser send: refused before any route.
    for headers in [
        &["Origin: https://evil.example"][..],
        &["Host: evil.example:2375"][..],
    ] {
        call_tcp(&addr, "POST", "/v1/containers", headers).expect_error(403, "forbidden");
    }

    // A client that sends half a request line is cut off after the header timeout
    // (the bound here is generous: only that it happens is checked).
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"GET /healthz HT").unwrap();
    let began = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        began.elapsed() < Duration::from_secs(50),
        "the connection stayed open past the header timeout"
    );
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"), "{out:?}");
}
