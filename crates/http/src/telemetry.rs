//! Health, readiness and Prometheus metrics.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use tracing::Instrument;

use crate::error::{ApiError, REQUEST_ID};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};
use std::time::Instant;

use crate::state::AppState;

/// Installs the process-wide Prometheus recorder (once); later calls return `None`.
pub fn install_recorder() -> Option<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".into()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ],
        )
        .ok()?
        .install_recorder()
        .ok()
}

type Handles = (metrics::Counter, metrics::Histogram);

/// Metric handles per (route template, method, status), made once: looking them up here is
/// cheaper than building label strings and resolving them in the recorder per request.
type HandleMap = HashMap<String, HashMap<(Method, u16), Handles>>;

static HANDLES: LazyLock<RwLock<HandleMap>> = LazyLock::new(Default::default);

fn handles(route: &str, method: &Method, status: u16) -> Handles {
    let key = (method.clone(), status);
    if let Some(h) = HANDLES
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(route)
        .and_then(|m| m.get(&key))
    {
        return h.clone();
    }
    let labels = [
        ("route", route.to_owned()),
        ("method", method.as_str().to_owned()),
        ("status", status.to_string()),
    ];
    let h = (
        metrics::counter!("http_requests_total", &labels),
        metrics::histogram!("http_request_duration_seconds", &labels),
    );
    HANDLES
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(route.to_owned())
        .or_default()
        .insert(key, h.clone());
    h
}

/// The one per-request wrapper (one layer instead of six, measured in docs/performance.md):
/// - takes the client's `X-Request-Id` (if it is a sane header value) or makes one, and
///   returns it on the response;
/// - makes the id available to `ApiError::internal`, so a 500's log line names it, and at
///   `debug` opens a span with method, path (never the query) and id;
/// - runs every state-changing request as its own task, so a client that disconnects cannot
///   cancel it between its store write and the in-memory update that follows (registry
///   reload, revocation set): a write is finished whole once it has started;
/// - counts requests and records latency by route template, method and status.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = match req.headers().get(REQUEST_ID_HEADER) {
        Some(v) if !v.is_empty() && v.len() <= 128 && v.to_str().is_ok() => v.clone(),
        _ => {
            let v = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or(HeaderValue::from_static("-"));
            req.headers_mut().insert(REQUEST_ID_HEADER, v.clone());
            v
        }
    };
    let id_str = id.to_str().unwrap_or("").to_owned();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let span = if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug_span!("request", %method, path = %req.uri().path(), request_id = %id_str)
    } else {
        tracing::Span::none()
    };
    // Reads, and token issuance (which writes nothing durable), need no task of their own.
    let detached = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        && req.uri().path() != crate::oauth::TOKEN_PATH;
    let fut = REQUEST_ID
        .scope(id_str.clone(), next.run(req))
        .instrument(span);
    let mut resp = if detached {
        match tokio::spawn(fut).await {
            Ok(r) => r,
            Err(e) => REQUEST_ID
                .scope(id_str, async move {
                    ApiError::internal(format!("request task failed: {e}"))
                })
                .await
                .into_response(),
        }
    } else {
        fut.await
    };
    let headers = resp.headers_mut();
    headers.insert(REQUEST_ID_HEADER, id);
    // An API answer is never a document to run or frame, whoever fetches it (static values:
    // set here rather than by another layer, which costs a boxed call per request).
    headers.insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(API_CSP),
    );
    headers
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    let route = route
        .as_ref()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let (count, latency) = handles(route, &method, resp.status().as_u16());
    count.increment(1);
    latency.record(start.elapsed().as_secs_f64());
    resp
}

const REQUEST_ID_HEADER: &str = "x-request-id";

/// The Content-Security-Policy of every API response: nothing may load or frame it (the
/// console's pages have their own, `tessera_console::CSP`).
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the store answers within [`READY_TIMEOUT`] and the in-memory mirror is current
/// (a node cut off from the change feed is not ready, so a load balancer routes around it).
pub async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) if state.registry.is_fresh() => (StatusCode::OK, "ready").into_response(),
        Ok(Ok(())) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "out of date with the store",
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
        Err(_) => {
            tracing::warn!("readiness check: the store did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
    }
}

/// How long `/readyz` waits for the store.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics disabled").into_response(),
    }
}
