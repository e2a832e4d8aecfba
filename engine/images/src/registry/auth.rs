//! The registry's side of authentication: `WWW-Authenticate` challenges and cached
//! bearer tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::Credentials;

/// What a 401 asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`: send the credentials with each request.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`: get a token from `realm`.
    Bearer {
        /// The token endpoint's URL.
        realm: String,
        /// The `service` parameter to pass on.
        service: Option<String>,
        /// The scope the registry named, if any.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (one challenge; Basic or Bearer).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest)?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k=v, k="quoted \" value", …`.
fn parse_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
}

/// `Basic base64(user:password)`.
pub fn basic_header(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Bearer tokens by (registry, scope), each until shortly before it expires.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl TokenCache {
    /// A live token for `registry` and `scope`.
    pub fn get(&self, registry: &str, scope: &str) -> Option<String> {
        let map = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let (token, until) = map.get(&(registry.to_string(), scope.to_string()))?;
        (Instant::now() < *until).then(|| token.clone())
    }

    /// Keeps `token` for `lifetime` less a margin for the requests in flight.
    pub fn put(&self, registry: &str, scope: &str, token: String, lifetime: Duration) {
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        let until = Instant::now() + lifetime.saturating_sub(margin);
        let mut map = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((registry.to_string(), scope.to_string()), (token, until));
    }

    /// Forgets a token the registry refused.
    pub fn forget(&self, registry: &str, scope: &str) {
        let mut map = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(registry.to_string(), scope.to_string()));
    }
}

/// A token endpoint's answer (`token` or OAuth's `access_token`; lifetime 60 s unless said).
#[derive(serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long it lives.
    pub fn into_parts(self) -> Option<(String, Duration)> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let secs = self.expires_in.filter(|&s| s > 0).unwrap_or(60);
        Some((token, Duration::from_secs(secs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        let c = parse_challenge(r#"bearer realm=http://x/t, service="a \"b\"""#).unwrap();
        assert!(
            matches!(c, Challenge::Bearer { ref service, .. } if service.as_deref() == Some("a \"b\""))
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Basic"), Some(Challenge::Basic));
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn tokens_are_kept_per_scope_and_expire() {
        let cache = TokenCache::default();
        cache.put(
            "r",
            "repository:a:pull",
            "t1".into(),
            Duration::from_secs(300),
        );
        cache.put("r", "repository:b:pull", "t2".into(), Duration::ZERO);
        assert_eq!(cache.get("r", "repository:a:pull").as_deref(), Some("t1"));
        assert_eq!(cache.get("r", "repository:b:pull"), None);
        assert_eq!(cache.get("other", "repository:a:pull"), None);
        cache.forget("r", "repository:a:pull");
        assert_eq!(cache.get("r", "repository:a:pull"), None);
    }

    #[test]
    fn basic_headers_encode_user_and_password() {
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        assert_eq!(basic_header(&c), "Basic dTpwOnc=");
    }
}
