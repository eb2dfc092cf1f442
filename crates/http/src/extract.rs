//! Request extractors that reject in our error shape, never the framework's.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::HashMap;

use crate::error::ApiError;

/// A JSON request body. Accepts `application/json`, any `+json` type (the versioned
/// `application/vnd.atlas.*+json`) or no content type; unknown fields are rejected by the
/// wire types themselves (`deny_unknown_fields`).
pub struct ApiJson<T>(pub T);

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
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
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
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_JSON",
                "The request body is not valid JSON.",
            ),
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
