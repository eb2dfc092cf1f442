//! The OAuth error bodies (seed 000) and the form problems behind them.

use super::*;

/// The OAuth error bodies of seed 000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// The seed's "The provided credentials are not valid." for a missing or garbled Basic
    /// header.
    InvalidRequest,
    /// A malformed form: `invalid_request` with a description that names the problem.
    InvalidForm(FormProblem),
    UnsupportedGrantType,
    InvalidGrant,
    InvalidClient,
    AccessDenied,
    RateLimited {
        path: &'static str,
        limit: u32,
        retry_after_secs: u64,
    },
    ServerError,
    /// The database is unreachable, or this node is out of date with it and could not catch
    /// up in time: 503 `temporarily_unavailable`, nothing decided.
    Unavailable,
}

impl From<tessera_store::StoreError> for OAuthError {
    fn from(e: tessera_store::StoreError) -> Self {
        match e {
            tessera_store::StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "oauth: store unavailable");
                OAuthError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "oauth: store error");
                OAuthError::ServerError
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            OAuthError::InvalidRequest => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The provided credentials are not valid.",
            ),
            OAuthError::InvalidForm(problem) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                problem.describe(),
            ),
            OAuthError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Invalid grant type.",
            ),
            OAuthError::InvalidGrant => {
                (StatusCode::BAD_REQUEST, "invalid_grant", "Invalid grant.")
            }
            OAuthError::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid credentials provided.",
            ),
            OAuthError::AccessDenied => (
                StatusCode::FORBIDDEN,
                "access_denied",
                "IP access list validation failed for the service account.",
            ),
            OAuthError::ServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Unexpected error.",
            ),
            OAuthError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The service cannot decide this now (its database is unreachable or this node \
                 is out of date with it). Try again.",
            ),
            OAuthError::RateLimited {
                path,
                limit,
                retry_after_secs,
            } => {
                let mut resp = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    format!("Resource {path} is limited to {limit} requests every 1 minutes."),
                )
                .with_params([json!(path), json!(limit), json!(1)])
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
        };
        let body = json!({"error_description": description, "error": error}).to_string();
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if self == OAuthError::InvalidClient {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"MMS Public API\""),
            );
        }
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// What is wrong with a request's form (RFC 6749 §5.2 `invalid_request`), named in the
/// `error_description` so a client learns what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormProblem {
    NotAForm,
    Garbled,
    Unreadable,
    Repeated(&'static str),
    Missing(&'static str),
}

impl FormProblem {
    fn describe(self) -> &'static str {
        match self {
            FormProblem::NotAForm => "The request body must be application/x-www-form-urlencoded.",
            FormProblem::Garbled => "The request body is not a valid form.",
            FormProblem::Unreadable => "The request body could not be read (it may be too large).",
            FormProblem::Repeated("grant_type") => "The grant_type parameter must appear once.",
            FormProblem::Repeated("token") => "The token parameter must appear once.",
            FormProblem::Repeated(_) => "A request parameter appears more than once.",
            FormProblem::Missing("grant_type") => "The grant_type parameter is missing.",
            FormProblem::Missing("token") => "The token parameter is missing.",
            FormProblem::Missing(_) => "A required request parameter is missing.",
        }
    }
}
