//! Request extractors that reject in our error shape, never the framework's.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;

use crate::error::ApiError;

/// A JSON request body whose top level is an object. Accepts `application/json`, any
/// `+json` type (the versioned `application/vnd.atlas.*+json`) or no content type; unknown
/// fields are rejected by the wire types themselves (`deny_unknown_fields`).
///
/// The subset's request schemas have no nullable field and no array of arrays, so both are
/// refused here, before serde sees the body: serde would otherwise read `null` as an absent
/// `Option` and accept a struct written as an array (`[null, null]`).
pub struct ApiJson<T>(pub T);

/// A JSON request body whose top level is an array (access-list entries, role assignments).
pub struct ApiJsonList<T>(pub Vec<T>);

/// The JSON shape a body's top level must have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TopLevel {
    Object,
    Array,
}

fn is_json_content_type(v: &str) -> bool {
    let media = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        parse_body(&bytes, TopLevel::Object).map(ApiJson)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonList<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        parse_body(&bytes, TopLevel::Array).map(ApiJsonList)
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ok = ct.to_str().map(is_json_content_type).unwrap_or(false);
        if !ok {
            return Err(ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            ApiError::validation("The request body could not be read.")
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUEST_BODY",
            "A JSON request body is required.",
        ));
    }
    Ok(bytes)
}

fn invalid_json() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_JSON",
        "The request body is not valid JSON.",
    )
}

/// Parses a body: valid JSON, the expected top-level shape, no `null` and no array directly
/// inside an array anywhere, then the wire type.
fn parse_body<T: DeserializeOwned>(bytes: &[u8], top: TopLevel) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| invalid_json())?;
    match (&value, top) {
        (Value::Object(_), TopLevel::Object) | (Value::Array(_), TopLevel::Array) => {}
        (_, TopLevel::Object) => {
            return Err(ApiError::validation(
                "Invalid request body: the body must be a JSON object.",
            ))
        }
        (_, TopLevel::Array) => {
            return Err(ApiError::validation(
                "Invalid request body: the body must be a JSON array.",
            ))
        }
    }
    check_values(&value, &mut String::new())?;
    from_value(value)
}

/// Refuses `null` (naming the attribute) and arrays nested directly in arrays, depth first.
fn check_values(value: &Value, path: &mut String) -> Result<(), ApiError> {
    match value {
        Value::Null => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ATTRIBUTE",
            format!("Invalid attribute {path}: it must not be null."),
        )
        .with_params([json!(path.as_str())])),
        Value::Object(map) => {
            for (key, v) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check_values(v, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if v.is_array() {
                    return Err(ApiError::validation(format!(
                        "Invalid request body: {path} must not be an array."
                    )));
                }
                check_values(v, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                let msg = e.to_string();
                if let Some(field) = unknown_field(&msg) {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_ATTRIBUTE",
                        format!("Invalid attribute {field} specified."),
                    )
                    .with_params([json!(field)])
                } else {
                    ApiError::validation(format!("Invalid request body: {}.", strip_position(&msg)))
                }
            }
            _ => invalid_json(),
        }
    })
}

fn unknown_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn strip_position(msg: &str) -> &str {
    msg.split(" at line ").next().unwrap_or(msg)
}

/// Raw path parameters by name; each handler parses them into domain ids.
pub struct PathParams(pub HashMap<String, String>);

impl PathParams {
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|_| ApiError::validation("A path parameter could not be decoded."))
    }
}
