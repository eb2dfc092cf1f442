//! The accept loop: plain HTTP or TLS, HTTP/1.1 by hyper, the axum app as the service.
//!
//! It owns what a connection may cost the server:
//! - a header-read timeout from connecting (the TLS handshake included) and from the first
//!   byte of each later request until its headers are complete;
//! - the request body, read here before the app sees the request: frame by frame, each data
//!   chunk copied into one contiguous buffer (reserved from `Content-Length`, never more than
//!   the body limit + 1) and the frame dropped at once. A frame of hyper's `Incoming` shares
//!   the connection's whole read buffer (~8 KB), so a body sent one byte per TCP segment and
//!   kept as frames would hold ~8 KB per byte; copied, it holds about its own size. Reading
//!   stops once more than `max_body_bytes` have arrived and what arrived is passed on, so the
//!   app's body limit answers its usual 413. A body with nothing to read (end of stream,
//!   `Content-Length: 0`) is not read here;
//! - two timeouts on that body: one between two chunks (`body_read_timeout`) and a deadline
//!   for the whole body from the end of the headers (`body_deadline`). Either answers 408 in
//!   the Atlas error shape with `Connection: close`, and the connection is closed;
//! - a keep-alive timeout for an idle connection between requests;
//! - a cap on open connections per client (peer) address and a threshold on all open
//!   connections: over either, a new connection is closed at once. Both are derived from the
//!   open-files limit the process has (see [`DescriptorBudget`]) unless the cap is given, so
//!   one address reconnecting idle sockets cannot take every descriptor;
//! - descriptor pressure, as a last resort: one descriptor is held in reserve, and when
//!   `accept` fails with EMFILE/ENFILE it is released, the waiting connection accepted and
//!   closed at once, and the reserve taken again, so the listener keeps draining its queue
//!   instead of spinning (logged at most once a second).
//!
//! On shutdown it stops accepting, lets every connection finish its in-flight request
//! (hyper's graceful shutdown) and returns when the last one is closed.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::tls::TlsState;

mod body;
use body::{body_timeout_response, read_body, BodyTimedOut};

/// Connection limits; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    /// Longest pause between two chunks of a request body.
    pub body_read_timeout: Duration,
    /// Longest a whole request body may take, from the end of its headers.
    pub body_deadline: Duration,
    /// The app's body limit: reading stops once more than this has arrived.
    pub max_body_bytes: usize,
    pub keep_alive_timeout: Duration,
    /// Open connections per peer address; 0 = no cap.
    pub max_per_address: usize,
    /// Open connections in all; over it a new connection is closed at once. 0 = no threshold.
    pub max_open: usize,
}

/// Fallback per-address cap when the open-files limit is unlimited or unknown.
const DEFAULT_PER_ADDRESS: usize = 256;

impl ConnLimits {
    /// Sets the per-address cap and the open-connections threshold from the open-files
    /// `limit` in force; an `explicit` per-address cap (0 = none) wins over the derived one.
    /// Logs what it chose.
    pub fn sized_for(mut self, limit: Option<u64>, explicit: Option<usize>) -> Self {
        let budget = limit.map(DescriptorBudget::for_limit);
        self.max_open = budget.map_or(0, |b| b.max_open);
        self.max_per_address =
            explicit.unwrap_or_else(|| budget.map_or(DEFAULT_PER_ADDRESS, |b| b.per_address));
        tracing::info!(
            open_files_limit = ?limit,
            headroom = budget.map_or(0, |b| b.headroom),
            max_open_connections = self.max_open,
            max_connections_per_address = self.max_per_address,
            per_address_configured = explicit.is_some(),
            "connection limits (0 = none)"
        );
        self
    }
}

/// How the open-files limit is shared out: `headroom` descriptors are kept for what is not a
/// client connection (database pool: SQLite's files or PostgreSQL's sockets, 10 connections
/// at most; key and TLS files, the listener, the runtime's own), the rest may be
/// connections (`max_open`), and one address may hold a quarter of those (`per_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorBudget {
    pub limit: u64,
    pub headroom: usize,
    pub max_open: usize,
    pub per_address: usize,
}

impl DescriptorBudget {
    /// The budget for an open-files limit: headroom max(64, limit/8), but never more than
    /// half of a small limit.
    pub fn for_limit(limit: u64) -> Self {
        let n = usize::try_from(limit).unwrap_or(usize::MAX);
        let headroom = (n / 8).max(64).min(n / 2);
        let max_open = n - headroom;
        Self {
            limit,
            headroom,
            max_open,
            per_address: (max_open / 4).max(1),
        }
    }
}

/// The soft open-files limit in force; `None` when unlimited or unknown.
pub fn open_files_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return None;
    }
    (rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur)
}

/// Raises the soft open-files limit to the hard one (each connection is a descriptor).
/// Returns the soft limit in force afterwards (`None`: unlimited or unknown).
pub fn raise_open_files_limit() -> std::io::Result<Option<u64>> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if rl.rlim_cur < rl.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(open_files_limit())
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains the open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<TlsState>>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let per_address = Arc::new(AddressCounts::default());
    let open_count = Arc::new(AtomicUsize::new(0));
    let mut reserve = reserve_fd();
    let mut accept_log = RateLimitedLog::default();
    let mut shed_log = RateLimitedLog::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_out_of_descriptors(&e) => {
                // Free the reserve, take the waiting connection and close it, re-reserve.
                drop(reserve.take());
                let shed = tokio::time::timeout(Duration::from_millis(50), listener.accept())
                    .await
                    .is_ok_and(|r| r.is_ok());
                reserve = reserve_fd();
                accept_log.warn(&format!(
                    "accept: {e}; shedding connections (closed one at once: {shed})"
                ));
                if reserve.is_none() || !shed {
                    // Nothing freed: let other tasks close their descriptors first.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
            Err(e) => {
                accept_log.warn(&format!("accept: {e}"));
                continue;
            }
        };
        let open_now = open_count.load(Ordering::Relaxed);
        if limits.max_open != 0 && open_now >= limits.max_open {
            // Close it before the descriptors run out, not after.
            shed_log.warn(&format!(
                "shedding connections: {open_now} open, at the threshold of {}",
                limits.max_open
            ));
            drop(stream);
            continue;
        }
        let Some(slot) = per_address.acquire(peer.ip(), limits.max_per_address) else {
            tracing::debug!(peer = %peer.ip(), "connection cap per address reached; closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let stop = stop_rx.clone();
        let open = open_tx.clone();
        let counted = OpenConn::new(&open_count);
        tokio::spawn(async move {
            let _open = open;
            let _slot = slot;
            let _counted = counted;
            match tls {
                None => serve_connection(stream, peer, app, limits, stop).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => serve_connection(s, peer, app, limits, stop).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    // No new connections from here on.
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_tx);
    // Resolves when every connection task has dropped its sender.
    let _ = open_rx.recv().await;
    Ok(())
}

fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

fn reserve_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Warns at most once a second; counts what it did not print.
#[derive(Default)]
struct RateLimitedLog {
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn warn(&mut self, msg: &str) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(suppressed = self.suppressed, "{msg}");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// One open connection in the count of all of them.
struct OpenConn(Arc<AtomicUsize>);

impl OpenConn {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Open connections per peer address.
#[derive(Default)]
struct AddressCounts {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

struct Slot {
    counts: Arc<AddressCounts>,
    ip: IpAddr,
}

impl AddressCounts {
    fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Where a connection is between requests; drives its deadline.
const WAITING_FIRST: u8 = 0;
const READING_HEAD: u8 = 1;
const IN_REQUEST: u8 = 2;
const RESPONDED: u8 = 3;

struct ConnWatch {
    base: Instant,
    phase: AtomicU8,
    /// Milliseconds since `base` when the current phase began (or last wrote, once responded).
    since_ms: AtomicU64,
    changed: Notify,
}

impl ConnWatch {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            phase: AtomicU8::new(WAITING_FIRST),
            since_ms: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn stamp(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since_ms.store(ms, Ordering::Relaxed);
    }

    fn set(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
        self.stamp();
        self.changed.notify_one();
    }

    fn on_read(&self) {
        let p = self.phase.load(Ordering::Relaxed);
        if p == WAITING_FIRST || p == RESPONDED {
            self.set(READING_HEAD);
        }
    }

    fn on_write(&self) {
        if self.phase.load(Ordering::Relaxed) == RESPONDED {
            self.stamp();
        }
    }

    /// When the connection is to be closed unless something happens first; `None` while a
    /// request is being handled (its body has its own timeout).
    fn deadline(&self, limits: &ConnLimits) -> Option<Instant> {
        let allowed = match self.phase.load(Ordering::Relaxed) {
            WAITING_FIRST | READING_HEAD => limits.header_read_timeout,
            RESPONDED => limits.keep_alive_timeout,
            _ => return None,
        };
        let since = Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        Some(self.base + since + allowed)
    }
}

/// The connection's I/O, reporting reads and writes to its [`ConnWatch`].
struct Watched<T> {
    inner: T,
    watch: Arc<ConnWatch>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.on_read();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.on_write();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.on_write();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn serve_connection<T>(
    io: T,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_watch = Arc::new(ConnWatch::new());
    let io = TokioIo::new(Watched {
        inner: io,
        watch: conn_watch.clone(),
    });
    let svc_watch = conn_watch.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        svc_watch.set(IN_REQUEST);
        let app = app.clone();
        let done = svc_watch.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            let body = if body.is_end_stream() {
                Body::empty()
            } else {
                match read_body(body, &limits).await {
                    Ok(b) => Body::new(b),
                    Err(BodyTimedOut) => {
                        tracing::debug!(peer = %peer.ip(), "request body too slow; 408, closed");
                        done.set(RESPONDED);
                        return Ok(body_timeout_response(&parts.headers));
                    }
                }
            };
            parts.extensions.insert(ConnectInfo(peer));
            let resp = app.oneshot(hyper::Request::from_parts(parts, body)).await;
            done.set(RESPONDED);
            resp
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = conn_watch.deadline(&limits);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = conn_watch.changed.notified() => {}
            _ = sleep_until(deadline) => {
                if conn_watch.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(peer = %peer.ip(), "connection timed out; closed");
                    return;
                }
            }
        }
    }
}

pub(super) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::DescriptorBudget;

    #[test]
    fn the_budget_follows_the_open_files_limit() {
        let b = DescriptorBudget::for_limit(256);
        assert_eq!((b.headroom, b.max_open, b.per_address), (64, 192, 48));
        let b = DescriptorBudget::for_limit(64);
        assert_eq!((b.headroom, b.max_open, b.per_address), (32, 32, 8));
        let b = DescriptorBudget::for_limit(1024);
        assert_eq!((b.headroom, b.max_open, b.per_address), (128, 896, 224));
        let b = DescriptorBudget::for_limit(1_048_576);
        assert_eq!(b.max_open, 917_504);
        assert_eq!(b.per_address, 229_376);
        // Tiny limits still leave something for connections and for the rest.
        let b = DescriptorBudget::for_limit(4);
        assert_eq!((b.headroom, b.max_open, b.per_address), (2, 2, 1));
    }
}
