//! Response rendering shared by every API route: `pretty`, `envelope`, the versioned media
//! type, and the conversion of any framework-made error into our error shape.
//!
//! Handlers return [`Reply`] (a status and a JSON value) or [`ApiError`]; this layer turns
//! both into bytes, so no handler formats JSON or sets a content type itself.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorBody};
use crate::query::{parse_bool_param, QueryPairs};
use crate::version::{Dialect, ServedVersion};

/// A successful reply: status and JSON body (`None` for 204).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
}

#[derive(Clone, Debug)]
struct SuccessBody(Value);

impl Reply {
    pub fn ok(body: impl Serialize) -> Self {
        Self::with_status(StatusCode::OK, body)
    }

    pub fn created(body: impl Serialize) -> Self {
        Self::with_status(StatusCode::CREATED, body)
    }

    pub fn with_status(status: StatusCode, body: impl Serialize) -> Self {
        match serde_json::to_value(body) {
            Ok(v) => Self {
                status,
                body: Some(v),
            },
            Err(e) => {
                tracing::error!(error = %e, "response serialization failed");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: Some(ApiError::internal("serialization").body()),
                }
            }
        }
    }

    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
        }
    }

    pub fn accepted(body: impl Serialize) -> Self {
        Self::with_status(StatusCode::ACCEPTED, body)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        if let Some(body) = self.body {
            resp.extensions_mut().insert(SuccessBody(body));
        }
        resp
    }
}

fn render_json(value: &Value, pretty: bool) -> Vec<u8> {
    let out = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    out.unwrap_or_default()
}

/// Reads the whole request body before any handler runs, up to `limit` bytes.
///
/// Why: a handler may reject a request (401 challenge, 404, 403) before its extractors read
/// the body; an unread body leaves the kept-alive connection unusable, and Digest clients
/// (python-requests) resend on the same connection. Bodies here are small JSON documents.
async fn buffer_body(req: Request, limit: usize) -> Result<Request, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        // The server's body-read timeout (tessera's listener) ends a stalled body with
        // tower-http's TimeoutError: 408, not "too large".
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.is::<tower_http::timeout::TimeoutError>() {
                return ApiError::for_status(StatusCode::REQUEST_TIMEOUT);
            }
            source = err.source();
        }
        ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
    })?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Largest API request body accepted by [`render`]; set from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Middleware for every route of the v1.0 and v2 surfaces.
pub async fn render(
    State((dialect, BodyLimit(limit))): State<(Dialect, BodyLimit)>,
    mut req: Request,
    next: Next,
) -> Response {
    let pairs = QueryPairs::from_query(req.uri().query());
    let flags = pairs.as_ref().map_err(Clone::clone).and_then(|p| {
        Ok((
            parse_bool_param(p, "pretty")?,
            parse_bool_param(p, "envelope")?,
        ))
    });
    let (pretty, envelope) = match flags {
        Ok((p, e)) => (p.unwrap_or(false), e.unwrap_or(false)),
        Err(e) => return finish(e.into_response(), dialect, false, false),
    };
    req.extensions_mut().insert(dialect);
    let req = match buffer_body(req, limit).await {
        Ok(r) => r,
        Err(e) => return finish(e.into_response(), dialect, pretty, envelope),
    };
    let resp = next.run(req).await;
    finish(resp, dialect, pretty, envelope)
}

fn finish(resp: Response, dialect: Dialect, pretty: bool, envelope: bool) -> Response {
    let (mut parts, body) = resp.into_parts();
    let status = parts.status;
    let success = parts.extensions.remove::<SuccessBody>().map(|b| b.0);
    let error = parts.extensions.remove::<ErrorBody>().map(|b| b.0);
    let served = parts.extensions.get::<ServedVersion>().copied();

    let (value, is_error) = match (success, error) {
        (Some(v), _) => (Some(v), false),
        (None, Some(e)) => (Some(e), true),
        (None, None) if status.is_client_error() || status.is_server_error() => {
            // Produced by the framework or a tower layer (405, 413, timeouts, panics).
            (Some(ApiError::for_status(status).body()), true)
        }
        (None, None) => (None, false),
    };

    let Some(mut value) = value else {
        // 204 and friends: no body.
        return Response::from_parts(parts, body);
    };
    // A 401 keeps its status even in an envelope: Digest clients need it to answer the
    // challenge.
    if envelope && status != StatusCode::UNAUTHORIZED {
        match &mut value {
            Value::Object(map) if map.contains_key("results") => {
                map.insert("status".into(), json!(status.as_u16()));
            }
            _ => value = json!({"status": status.as_u16(), "content": value}),
        }
        parts.status = StatusCode::OK;
    }
    let content_type = match (is_error, dialect, served) {
        (false, Dialect::V2, Some(v)) => {
            HeaderValue::from_str(&format!("application/vnd.atlas.{}+json;charset=utf-8", v.0))
                .unwrap_or(HeaderValue::from_static("application/json"))
        }
        _ => HeaderValue::from_static("application/json"),
    };
    parts.headers.insert(header::CONTENT_TYPE, content_type);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(render_json(&value, pretty)))
}
