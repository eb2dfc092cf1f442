//! The request body, read whole by the listener before the app sees the request, and the 408
//! answered when it does not arrive in time (see the module documentation of `listener`).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use tessera_http::error::ApiError;

use tokio::time::Instant;

use super::ConnLimits;

/// A request body read whole by the listener (or as much of it as the limit needs, or up to
/// a read error, which is passed on after the data).
pub(super) struct ReadBody {
    data: Option<Bytes>,
    error: Option<hyper::Error>,
}

impl http_body::Body for ReadBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(data) = self.data.take().filter(|d| !d.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.error.take().map(Err))
    }

    fn is_end_stream(&self) -> bool {
        self.data.as_ref().is_none_or(Bytes::is_empty) && self.error.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let len = self.data.as_ref().map_or(0, Bytes::len) as u64;
        if self.error.is_some() {
            let mut h = SizeHint::new();
            h.set_lower(len);
            h
        } else {
            SizeHint::with_exact(len)
        }
    }
}

/// The body did not arrive in time: a pause between chunks or the whole-body deadline.
pub(super) struct BodyTimedOut;

/// Reads `body` frame by frame, copying each data chunk into one buffer and dropping the
/// frame (which shares hyper's read buffer) at once; stops after `max_body_bytes + 1` bytes.
pub(super) async fn read_body(
    mut body: Incoming,
    limits: &ConnLimits,
) -> Result<ReadBody, BodyTimedOut> {
    let whole_by = Instant::now() + limits.body_deadline;
    let cap = limits.max_body_bytes.saturating_add(1);
    let hint = body.size_hint();
    let expected = hint.exact().unwrap_or(hint.lower());
    let mut buf = Vec::with_capacity(usize::try_from(expected).unwrap_or(cap).min(cap));
    let mut error = None;
    while buf.len() < cap {
        let next_by = (Instant::now() + limits.body_read_timeout).min(whole_by);
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout_at(next_by, next).await {
            Err(_) => return Err(BodyTimedOut),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                error = Some(e);
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    let take = data.len().min(cap - buf.len());
                    buf.extend_from_slice(&data[..take]);
                }
                // Trailers are ignored, as the app's body reading ignores them.
            }
        }
    }
    Ok(ReadBody {
        data: Some(Bytes::from(buf)),
        error,
    })
}

/// 408 in the Atlas error shape, closing the connection; carries the client's
/// `X-Request-Id` when it sent a usable one, else a new one.
pub(super) fn body_timeout_response(headers: &axum::http::HeaderMap) -> Response {
    let id = headers
        .get("x-request-id")
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.to_str().is_ok())
        .cloned()
        .or_else(|| HeaderValue::from_str(&new_request_id()).ok())
        .unwrap_or(HeaderValue::from_static("-"));
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "REQUEST_TIMEOUT",
        "The request body did not arrive in time.",
    )
    .with_header(header::CONNECTION, HeaderValue::from_static("close"))
    .with_header(header::HeaderName::from_static("x-request-id"), id)
    .into_response()
}

/// A random UUID (version 4) as text, like the ids the app gives requests.
fn new_request_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
