//! What can go wrong in the CLI, and the exit status each maps to.

use hyper::StatusCode;

/// Exit status: the daemon refused a request, or a container failed.
pub const EXIT_REFUSED: u8 = 1;
/// Exit status: bad flags or arguments (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the daemon could not be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Failing to talk to the daemon at all (as opposed to the daemon saying no).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting failed.
    #[error("cannot reach berthd at {endpoint}: {source}")]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting took too long.
    #[error("cannot reach berthd at {endpoint}: no connection within {secs} s")]
    ConnectTimeout {
        /// Where.
        endpoint: String,
        /// How long it waited, in seconds.
        secs: u64,
    },
    /// The HTTP exchange failed (the daemon went away, or spoke something else).
    #[error("lost berthd at {endpoint} during {request}: {}", causes(source))]
    Http {
        /// Where.
        endpoint: String,
        /// The request, e.g. `GET /v1/system`.
        request: String,
        /// Why.
        source: hyper::Error,
    },
}

/// An error and its causes, `: `-separated (hyper's own message hides them: a request
/// body that could not be read says only "error from user's Body stream").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    text
}

/// A CLI failure; [`CliError::exit_status`] says how the process ends.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The daemon could not be reached or dropped the connection.
    #[error(transparent)]
    Unreachable(#[from] ClientError),
    /// The daemon answered with an error status.
    #[error("{message} ({code}, HTTP {})", status.as_u16())]
    Server {
        /// HTTP status.
        status: StatusCode,
        /// The error's machine-readable code.
        code: String,
        /// The error's message.
        message: String,
    },
    /// A container did not get where it was asked to go.
    #[error("container {id} {what}")]
    Container {
        /// Container id.
        id: String,
        /// What happened to it.
        what: String,
    },
    /// The daemon answered something this client does not understand.
    #[error("unexpected answer to {request}: {detail}")]
    Protocol {
        /// The request, e.g. `GET /v1/system`.
        request: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A stream the daemon had begun (a pull's progress) ended with its error.
    #[error("{message} ({code})")]
    Stream {
        /// The error's machine-readable code.
        code: String,
        /// The error's message.
        message: String,
    },
    /// A local file could not be used.
    #[error("{path}: {source}")]
    File {
        /// The file (`-` for stdin or stdout).
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An argument the parser could not check.
    #[error("{0}")]
    Usage(String),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process's exit status for this error (`None`: end quietly with 0, as when the
    /// reader of a pipe went away).
    pub fn exit_status(&self) -> Option<u8> {
        match self {
            CliError::Unreachable(_) => Some(EXIT_UNREACHABLE),
            CliError::Usage(_) => Some(EXIT_USAGE),
            CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => None,
            _ => Some(EXIT_REFUSED),
        }
    }

    /// The error of an HTTP answer with `status` and `body` (`{"error":{"code","message"}}`,
    /// or anything else, shown as text).
    pub fn from_answer(status: StatusCode, body: &[u8]) -> Self {
        let parsed: Option<(String, String)> = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                let e = v.get("error")?;
                Some((
                    e.get("code")?.as_str()?.to_owned(),
                    e.get("message")?.as_str()?.to_owned(),
                ))
            });
        let (code, message) = parsed.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text
            };
            ("http_error".to_owned(), message)
        });
        CliError::Server {
            status,
            code,
            message: one_line(&message),
        }
    }

    /// Whether this is the server's error `code`.
    pub fn is_code(&self, want: &str) -> bool {
        matches!(self, CliError::Server { code, .. } if code == want)
    }
}

/// `s` on one line: line breaks become spaces.
pub fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_read_as_one_line() {
        let e = CliError::from_answer(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"not_found","message":"no container x\nat all"}}"#,
        );
        assert_eq!(e.to_string(), "no container x at all (not_found, HTTP 404)");
        assert_eq!(e.exit_status(), Some(EXIT_REFUSED));
        assert!(e.is_code("not_found"));
        let e = CliError::from_answer(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.to_string(), "Bad Gateway (http_error, HTTP 502)");
        let e = CliError::from_answer(StatusCode::UNAUTHORIZED, b"no\ntoken");
        assert_eq!(e.to_string(), "no token (http_error, HTTP 401)");
    }

    #[test]
    fn a_closed_pipe_ends_quietly() {
        let e = CliError::Output(std::io::ErrorKind::BrokenPipe.into());
        assert_eq!(e.exit_status(), None);
    }
}
