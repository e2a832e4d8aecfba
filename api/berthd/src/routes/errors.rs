//! API errors: an HTTP status and the JSON body `{"error":{"code":…,"message":…}}`.

use berth_engine::{ChangeError, ControlError, ExecError, RemoveError, SubmitError};
use hyper::StatusCode;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// One line for a human.
    pub message: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u32>,
    /// The methods for an `Allow` header (405).
    pub allow: Option<String>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    /// 405: `method` is not one of `allowed` on `path` (RFC 9110: with `Allow`).
    pub fn method_not_allowed(method: &str, path: &str, allowed: &[&str]) -> Self {
        let list = allowed.join(", ");
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path} (allowed: {list})"),
        );
        e.allow = Some(list);
        e
    }

    /// 400: the body or query is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: no such container or route.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: the container's state forbids it.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422: well-formed but invalid.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500: the daemon failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let status = match &e {
            SubmitError::InvalidId(_) | SubmitError::InvalidSpec(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            SubmitError::Exists(_) => StatusCode::CONFLICT,
            SubmitError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            SubmitError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            SubmitError::Refused { code, .. } => network_status(code),
        };
        let mut err = ApiError::new(status, e.code(), e.to_string());
        if matches!(e, SubmitError::QueueFull { .. } | SubmitError::ShuttingDown) {
            err.retry_after = Some(1);
        }
        err
    }
}

/// The status of a network error's code (berth-network's `NetworkError::code`).
pub fn network_status(code: &str) -> StatusCode {
    match code {
        "network_not_found" => StatusCode::NOT_FOUND,
        "conflict"
        | "port_in_use"
        | "network_in_use"
        | "subnet_overlap"
        | "no_subnet"
        | "network_full"
        | "container_not_running"
        | "predefined_network" => StatusCode::CONFLICT,
        "invalid_network" | "invalid_port" => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<berth_network::NetworkError> for ApiError {
    fn from(e: berth_network::NetworkError) -> Self {
        ApiError::new(network_status(e.code()), e.code(), e.to_string())
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match &e {
            ChangeError::NotFound(_) => ApiError::not_found("not_found", e.to_string()),
            ChangeError::Illegal(_) => ApiError::conflict(e.to_string()),
        }
    }
}

impl From<RemoveError> for ApiError {
    fn from(e: RemoveError) -> Self {
        match e {
            RemoveError::NotFound(_) => ApiError::not_found("not_found", e.to_string()),
            RemoveError::Busy(_) | RemoveError::Live { .. } => ApiError::conflict(e.to_string()),
            RemoveError::Control(c) => c.into(),
            RemoveError::StopTimeout(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "stop_timeout", e.to_string())
            }
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match &e {
            ControlError::NotFound(_) => ApiError::not_found("not_found", e.to_string()),
            ControlError::QueueFull(_) => {
                let mut err =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", e.to_string());
                err.retry_after = Some(1);
                err
            }
            ControlError::Timeout(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "shim_timeout", e.to_string())
            }
            ControlError::Shim { error, .. } if error.kind == "refused" => {
                ApiError::conflict(e.to_string())
            }
            ControlError::Shim { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "shim_error", e.to_string())
            }
        }
    }
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Invalid(_) => ApiError::invalid("invalid_exec", e.to_string()),
            ExecError::NotFound(_) => ApiError::not_found("not_found", e.to_string()),
            ExecError::NotRunning { .. } => ApiError::conflict(e.to_string()),
            ExecError::BundleChanged { .. } => {
                ApiError::new(StatusCode::CONFLICT, "bundle_changed", e.to_string())
            }
            ExecError::Control(c) => c.into(),
            ExecError::Unexpected { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "shim_error", e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_statuses() {
        let e: ApiError = SubmitError::InvalidId("x".into()).into();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e: ApiError = SubmitError::QueueFull { capacity: 1 }.into();
        assert_eq!(
            (e.status, e.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, Some(1))
        );
        let e: ApiError = ChangeError::NotFound("x".into()).into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.body()["error"]["code"], "not_found");
    }
}
