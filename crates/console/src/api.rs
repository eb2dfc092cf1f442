//! The console's calls to the API, in process: a request to the API router with the signed-in
//! person's principal as an [`InProcessCaller`] extension. The route table authorizes it and the
//! handler validates, writes and records events exactly as for any other client.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::Value;
use tessera_domain::Principal;
use tessera_http::auth::InProcessCaller;
use tower::ServiceExt;

use crate::layout::PageError;
use crate::session::Signed;
use crate::Console;

/// Replies larger than this are not read (the API's own pages are far smaller).
const MAX_REPLY: usize = 16 * 1024 * 1024;

pub struct Api<'a> {
    console: &'a Console,
    principal: &'a Principal,
    connect: Option<ConnectInfo<SocketAddr>>,
}

impl<'a> Api<'a> {
    pub fn new(console: &'a Console, signed: &Signed, principal: &'a Principal) -> Self {
        Self {
            console,
            principal,
            connect: signed.connect,
        }
    }

    /// `method path` at `/api/atlas/v2` with the media type of `version`; the status and JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        version: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), PageError> {
        let media = format!("application/vnd.atlas.{version}+json");
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/api/atlas/v2{path}"))
            .header(header::ACCEPT, &media);
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, &media);
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let mut req = req
            .body(body)
            .map_err(|e| PageError::internal(&e.to_string()))?;
        req.extensions_mut()
            .insert(InProcessCaller(self.principal.clone()));
        if let Some(c) = self.connect {
            req.extensions_mut().insert(c);
        }
        let res = self
            .console
            .api
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| PageError::internal(&e.to_string()))?;
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), MAX_REPLY)
            .await
            .map_err(|e| PageError::internal(&e.to_string()))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    /// A call that must succeed: its JSON, or the API's refusal as a page error.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        version: &str,
        body: Option<&Value>,
    ) -> Result<Value, PageError> {
        let (status, value) = self.call(method, path, version, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(refusal(status, &value))
        }
    }

    pub async fn get(&self, path: &str, version: &str) -> Result<Value, PageError> {
        self.ok(Method::GET, path, version, None).await
    }
}

/// The API's error as a page: its status and its `detail`.
pub fn refusal(status: StatusCode, value: &Value) -> PageError {
    let detail = value["detail"]
        .as_str()
        .unwrap_or("The request was refused.")
        .to_owned();
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::BAD_REQUEST => "Check what you entered",
        _ => "Refused",
    };
    PageError {
        status,
        title: title.to_owned(),
        detail,
    }
}

/// A string field of an API document ("" when absent).
pub fn s<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or("")
}

/// The `results` of an API list.
pub fn results(v: &Value) -> &[Value] {
    v["results"].as_array().map(Vec::as_slice).unwrap_or(&[])
}
