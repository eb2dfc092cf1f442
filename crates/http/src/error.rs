//! The one error type of the v1.0 and v2 surfaces and its single mapping to a response.
//!
//! Every error leaves as `{"detail","error","errorCode","parameters","reason"}` (Atlas). The
//! `errorCode`s that are ours are listed in `docs/errors.md`; never rename one once shipped.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tessera_domain::ValidationError;
use tessera_store::StoreError;

tokio::task_local! {
    /// The `X-Request-Id` of the request being handled (set by `request_id_scope`), so a
    /// 500's log line names the id the client saw, whatever the log level.
    pub static REQUEST_ID: String;
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub parameters: Vec<Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Marks a response body as already in our shape, so the rendering layer may re-render it
/// (pretty, envelope) and never replaces it.
#[derive(Clone, Debug)]
pub struct ErrorBody(pub Value);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            parameters: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_params(mut self, params: impl IntoIterator<Item = Value>) -> Self {
        self.parameters = params.into_iter().collect();
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", detail)
    }

    pub fn invalid_enum(field: &str, value: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ENUM_VALUE",
            format!("An invalid enumeration value {value} was specified for {field}."),
        )
        .with_params([json!(value), json!(field)])
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "You are not authorized for this resource.",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "USER_UNAUTHORIZED",
            "The current user is not authorized to perform this action.",
        )
    }

    pub fn org_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ORG_NOT_FOUND",
            format!("No organization with ID {id} exists."),
        )
        .with_params([json!(id)])
    }

    pub fn group_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "GROUP_NOT_FOUND",
            format!("No group with ID {id} exists."),
        )
        .with_params([json!(id)])
    }

    pub fn service_account_not_found(client_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "SERVICE_ACCOUNT_NOT_FOUND",
            format!("No service account with client ID {client_id} exists."),
        )
        .with_params([json!(client_id)])
    }

    pub fn api_key_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "API_KEY_NOT_FOUND",
            format!("No API key with ID {id} exists."),
        )
        .with_params([json!(id)])
    }

    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            format!("Cannot find resource {path}."),
        )
        .with_params([json!(path)])
    }

    /// A 503: what the request needs (the database, or a current view of it) cannot be had
    /// now. Nothing was acknowledged; the client may retry.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "The service cannot answer this request now (its database is unreachable or this \
             node is out of date with it). Try again.",
        )
    }

    /// A 500 whose detail never reaches the client: it is logged with the request id.
    pub fn internal(log_detail: impl std::fmt::Display) -> Self {
        let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
        tracing::error!(%request_id, error = %log_detail, "unexpected error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNEXPECTED_ERROR",
            "Unexpected error.",
        )
    }

    pub fn body(&self) -> Value {
        json!({
            "detail": self.detail,
            "error": self.status.as_u16(),
            "errorCode": self.code,
            "parameters": self.parameters,
            "reason": self.status.canonical_reason().unwrap_or("Unknown"),
        })
    }

    /// The error body for an arbitrary status the framework produced (405, 413, ...).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::METHOD_NOT_ALLOWED => (
                "METHOD_NOT_ALLOWED",
                "The HTTP method is not allowed for this resource.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("REQUEST_TOO_LARGE", "The request body is too large.")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "UNSUPPORTED_MEDIA_TYPE",
                "The request body must be JSON (application/json).",
            ),
            StatusCode::NOT_FOUND => ("RESOURCE_NOT_FOUND", "Cannot find resource."),
            StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "The request timed out."),
            s if s.is_server_error() => ("UNEXPECTED_ERROR", "Unexpected error."),
            _ => ("INVALID_REQUEST", "The request could not be processed."),
        };
        Self::new(status, code, detail)
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::validation(format!("Invalid value for {}: {}.", e.field, e.reason))
            .with_params([json!(e.field)])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
                tracing::warn!(%request_id, error = %detail, "store unavailable");
                ApiError::unavailable()
            }
            StoreError::LimitExceeded { name, limit } => ApiError::new(
                StatusCode::CONFLICT,
                "PROJECT_LIMIT_EXCEEDED",
                format!("This change would pass the project's limit {name} of {limit}."),
            )
            .with_params([json!(name), json!(limit)]),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut resp = (self.status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            h.append(name, value);
        }
        resp.extensions_mut().insert(ErrorBody(body));
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
