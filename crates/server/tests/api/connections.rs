//! What a connection may cost the server, over real sockets: a connection that sends nothing,
//! stops in its headers, stops in its body, or idles between requests is closed by the server,
//! and a client address holds at most its cap of open connections. Timeouts are set to 1 s
//! and the others to an hour, so each test shows one timeout at work; no test asserts how long
//! anything took (the outer bound only turns a hang into a failure).

use std::time::Duration;
use tessera::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestServer;

/// Upper bound for a hang, never a timing assertion.
const HANG: Duration = Duration::from_secs(60);

fn only(adjust: impl Fn(&mut Config)) -> impl FnOnce(&mut Config) {
    move |c| {
        c.header_read_timeout_secs = 3600;
        c.body_read_timeout_secs = 3600;
        c.keep_alive_timeout_secs = 3600;
        adjust(c)
    }
}

/// Reads until the server closes the connection (EOF or reset); returns what it sent.
async fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(HANG, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "the server kept the connection open; it sent: {:?}",
        String::from_utf8_lossy(&got)
    );
    got
}

/// Sends one keep-alive GET /healthz and reads its whole response.
async fn healthz_keep_alive(s: &mut TcpStream) {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(HANG, async {
        while !(got.starts_with(b"HTTP/1.1 200") && got.ends_with(b"ok")) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the response: {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("a /healthz response");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let s = TestServer::start_with(only(|c| c.header_read_timeout_secs = 1)).await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    let got = read_until_closed(&mut c).await;
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{got:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_connection_stopping_in_its_headers_is_closed() {
    let s = TestServer::start_with(only(|c| c.header_read_timeout_secs = 1)).await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .unwrap();
    read_until_closed(&mut c).await;
    s.stop().await;
}

#[tokio::test]
async fn a_connection_stopping_in_its_body_is_closed() {
    let s = TestServer::start_with(only(|c| c.body_read_timeout_secs = 1)).await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    c.write_all(
        b"POST /api/oauth/token HTTP/1.1\r\nHost: t\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
          grant_type=client_",
    )
    .await
    .unwrap();
    let got = read_until_closed(&mut c).await;
    // Whatever it answered, it did not wait for the rest, and the request failed.
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // On the API surfaces the stalled body is a 408 in the error shape, then the close.
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    c.write_all(
        b"POST /api/atlas/v2/orgs HTTP/1.1\r\nHost: t\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"na",
    )
    .await
    .unwrap();
    let got = String::from_utf8_lossy(&read_until_closed(&mut c).await).into_owned();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"errorCode\":\"REQUEST_TIMEOUT\""), "{got}");
    s.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let s = TestServer::start_with(only(|c| c.keep_alive_timeout_secs = 1)).await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    healthz_keep_alive(&mut c).await;
    let got = read_until_closed(&mut c).await;
    assert!(got.is_empty(), "{got:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_keep_alive_connection_serves_several_requests() {
    // A request answered on a connection restarts its clock: two requests on one connection
    // both succeed even with the keep-alive timeout in force between them.
    let s = TestServer::start_with(only(|c| c.keep_alive_timeout_secs = 5)).await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    healthz_keep_alive(&mut c).await;
    healthz_keep_alive(&mut c).await;
    s.stop().await;
}

#[tokio::test]
async fn the_per_address_cap_refuses_one_more_and_admits_again_after_a_close() {
    let s = TestServer::start_with(|c| c.max_connections_per_address = Some(3)).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(s.running.addr).await.unwrap();
        healthz_keep_alive(&mut c).await;
        open.push(c);
    }
    // The fourth is accepted by the kernel and closed by the server at once, unanswered.
    let mut extra = TcpStream::connect(s.running.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let got = read_until_closed(&mut extra).await;
    assert!(got.is_empty(), "over the cap, yet answered: {got:?}");
    // The ones inside the cap still work.
    healthz_keep_alive(&mut open[0]).await;
    // One closes; a new connection is admitted once the server has seen the close.
    drop(open.pop());
    tokio::time::timeout(HANG, async {
        loop {
            let mut c = TcpStream::connect(s.running.addr).await.unwrap();
            if c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .await
                .is_ok()
            {
                let mut buf = [0u8; 64];
                if matches!(c.read(&mut buf).await, Ok(n) if n > 0) {
                    assert!(buf.starts_with(b"HTTP/1.1 200"));
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
        }
    })
    .await
    .expect("admitted again after a connection closed");
    s.stop().await;
}

#[tokio::test]
async fn a_body_still_arriving_at_its_deadline_is_a_408_and_closed() {
    // One byte every 100 ms: the pause between chunks never reaches its timeout (an hour
    // here), so what ends the request is the deadline on the whole body.
    let s = TestServer::start_with(only(|c| c.body_deadline_secs = 1)).await;
    let c = TcpStream::connect(s.running.addr).await.unwrap();
    c.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = c.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(
            b"POST /api/oauth/token HTTP/1.1\r\nHost: t\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
        )
        .await
        .unwrap();
        for _ in 0..600 {
            if wr.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await; // pacing, not an assertion
        }
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(HANG, async {
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writer.abort();
    let got = String::from_utf8_lossy(&got).into_owned();
    assert!(closed.is_ok(), "the server kept the connection open: {got}");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
    assert!(got.contains("\"errorCode\":\"REQUEST_TIMEOUT\""), "{got}");
    s.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_in_small_chunks_is_still_the_413() {
    // Chunked, no Content-Length, in 1 KiB chunks: the listener stops reading past the limit
    // and the app's limit answers, in the usual error shape.
    let s = TestServer::start_with(|c| c.max_body_bytes = 4096).await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    c.write_all(
        b"POST /api/atlas/v2/orgs HTTP/1.1\r\nHost: t\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    for _ in 0..8 {
        if c.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server may answer and close before the rest
        }
    }
    let _ = c.write_all(b"0\r\n\r\n").await;
    let got = String::from_utf8_lossy(&read_until_closed(&mut c).await).into_owned();
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(got.contains("\"errorCode\":\"REQUEST_TOO_LARGE\""), "{got}");
    s.stop().await;
}
