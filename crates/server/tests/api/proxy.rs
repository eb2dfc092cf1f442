//! A TCP proxy the tests control, between a node and PostgreSQL: it passes bytes, holds them
//! (a black hole: connections stay open, nothing arrives either way, as behind a firewall that
//! drops packets), resets every connection and refuses new ones (an outage), or delays every
//! chunk. Loopback only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Pass,
    /// Nothing is forwarded; connections stay open.
    BlackHole,
    /// Every connection is reset (RST) and new ones are reset at once.
    Reset,
    /// Every chunk waits this long before it is forwarded.
    Delay(Duration),
}

pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    ctl: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.ctl.send_replace(Mode::Reset);
    }
}

impl Proxy {
    /// Listens on 127.0.0.1 and forwards to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, _) = watch::channel(Mode::Pass);
        let ctl = Arc::new(tx);
        let accept_ctl = ctl.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let mode = *accept_ctl.borrow();
                if mode == Mode::Reset {
                    reset(client);
                    continue;
                }
                tokio::spawn(relay(client, upstream, accept_ctl.subscribe()));
            }
        });
        Proxy { addr, ctl, task }
    }

    pub(crate) fn set(&self, mode: Mode) {
        // `send_replace`: the mode is kept even while no connection is open to watch it.
        self.ctl.send_replace(mode);
    }

    /// `url` (a PostgreSQL URL on 127.0.0.1) with its port replaced by the proxy's.
    pub(crate) fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (auth_host, path) = rest.split_once('/').unwrap();
        let (auth, hostport) = match auth_host.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), auth_host),
        };
        let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
        format!("{scheme}://{auth}{host}:{}/{path}", self.addr.port())
    }
}

/// Where a PostgreSQL URL points (host must be an address or `localhost`).
pub(crate) fn upstream_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let auth_host = rest.split('/').next().unwrap();
    let hostport = auth_host.rsplit_once('@').map_or(auth_host, |(_, h)| h);
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{port}").parse().unwrap()
}

fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

async fn relay(client: TcpStream, upstream: SocketAddr, mut ctl: watch::Receiver<Mode>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let mut cbuf = vec![0u8; 16 * 1024];
    let mut sbuf = vec![0u8; 16 * 1024];
    loop {
        // What was read, and which way it goes.
        let (data, to_server) = tokio::select! {
            _ = ctl.changed() => {
                if *ctl.borrow() == Mode::Reset {
                    break;
                }
                continue;
            }
            r = cr.read(&mut cbuf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => (cbuf[..n].to_vec(), true),
            },
            r = sr.read(&mut sbuf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => (sbuf[..n].to_vec(), false),
            },
        };
        // Forward it as the mode allows; a black hole holds it (and reads nothing more).
        loop {
            let mode = *ctl.borrow();
            match mode {
                Mode::Reset => {
                    finish(cr, cw, sr, sw);
                    return;
                }
                Mode::BlackHole => {
                    let _ = tokio::time::timeout(Duration::from_millis(50), ctl.changed()).await;
                    continue;
                }
                Mode::Delay(d) => tokio::time::sleep(d).await,
                Mode::Pass => {}
            }
            let w = if to_server {
                sw.write_all(&data).await
            } else {
                cw.write_all(&data).await
            };
            if w.is_err() {
                finish(cr, cw, sr, sw);
                return;
            }
            break;
        }
    }
    finish(cr, cw, sr, sw);
}

fn finish(
    cr: tokio::net::tcp::OwnedReadHalf,
    cw: tokio::net::tcp::OwnedWriteHalf,
    sr: tokio::net::tcp::OwnedReadHalf,
    sw: tokio::net::tcp::OwnedWriteHalf,
) {
    if let (Ok(c), Ok(s)) = (cr.reunite(cw), sr.reunite(sw)) {
        reset(c);
        reset(s);
    }
}
