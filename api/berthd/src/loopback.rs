//! What a TCP listener without a token (`--tcp-insecure`, loopback only) still refuses:
//! requests a web browser could be made to send. Any web page can make the browser POST
//! to 127.0.0.1 (such requests carry `Origin`), and DNS rebinding sends them under the
//! page's own host name; neither reaches the API, whose containers run as root.

use std::net::IpAddr;

use hyper::header::{HOST, ORIGIN};
use hyper::HeaderMap;

/// Why a request to an open loopback listener is refused, or `None` to serve it.
pub fn refusal(headers: &HeaderMap) -> Option<&'static str> {
    if headers.contains_key(ORIGIN) {
        return Some("requests from web pages (with an Origin header) are refused on a TCP listener without a token");
    }
    match headers.get(HOST).map(|h| h.to_str()) {
        None => None,
        Some(Ok(host)) if is_loopback_host(host) => None,
        Some(_) => Some(
            "on a TCP listener without a token the Host must be localhost or a loopback address",
        ),
    }
}

/// `localhost`, or a loopback address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1]:2375
        Some(rest) => match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || port.starts_with(':') => inside,
            _ => return false,
        },
        // 127.0.0.1:2375, localhost:2375, localhost
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(hyper::header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn loopback_hosts_pass_and_browsers_do_not() {
        for host in [
            "127.0.0.1:2375",
            "localhost",
            "LOCALHOST:80",
            "[::1]:2375",
            "[::1]",
            "127.1.2.3",
        ] {
            assert_eq!(refusal(&headers(&[(HOST, host)])), None, "{host}");
        }
        assert_eq!(refusal(&HeaderMap::new()), None);
        for host in [
            "evil.example",
            "evil.example:2375",
            "10.0.0.1:2375",
            "[::1",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(refusal(&headers(&[(HOST, host)])).is_some(), "{host}");
        }
        let from_page = headers(&[(HOST, "127.0.0.1:2375"), (ORIGIN, "https://evil.example")]);
        assert!(refusal(&from_page).unwrap().contains("Origin"));
    }
}
