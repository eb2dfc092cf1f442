//! The accept loop: plain HTTP or TLS, HTTP/1.1 by hyper, the axum app as the service.
//!
//! It owns what a connection may cost the server:
//! - a header-read timeout from connecting (the TLS handshake included) and from the first
//!   byte of each later request until its headers are complete;
//! - a body-read timeout between two chunks of a request body;
//! - a keep-alive timeout for an idle connection between requests;
//! - a cap on open connections per client (peer) address: over it, a new connection is
//!   closed at once;
//! - descriptor pressure: one descriptor is held in reserve, and when `accept` fails with
//!   EMFILE/ENFILE it is released, the waiting connection accepted and closed at once, and
//!   the reserve taken again, so the listener keeps draining its queue instead of spinning
//!   (logged at most once a second).
//!
//! On shutdown it stops accepting, lets every connection finish its in-flight request
//! (hyper's graceful shutdown) and returns when the last one is closed.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::tls::TlsState;

/// Connection limits; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    /// 0 = no cap.
    pub max_per_address: usize,
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
    let mut reserve = reserve_fd();
    let mut accept_log = RateLimitedLog::default();
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
        tokio::spawn(async move {
            let _open = open;
            let _slot = slot;
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
    let body_timeout = limits.body_read_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        svc_watch.set(IN_REQUEST);
        let mut req = req.map(|b| axum::body::Body::new(TimeoutBody::new(body_timeout, b)));
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        let done = svc_watch.clone();
        async move {
            let resp = app.oneshot(req).await;
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
