//! Serving HTTP with limits a flood cannot get past. The port is reachable from the cluster and
//! often from the internet, so: at most [`MAX_CONNECTIONS`] open connections (one more is closed
//! at once, before anything is read), request headers complete within [`HEADER_TIMEOUT`] (a
//! client that trickles them is cut off), HTTP/1 only, and on shutdown the open connections get
//! [`DRAIN`] to finish.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Open connections at once. Gitea, Prometheus and the kubelet's probes need a handful.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request headers.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long open connections may take to finish after shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown`, then lets open connections finish.
pub(crate) async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: close it unread. Probes retry; Gitea's next delivery comes with the next job.
            drop(stream);
            continue;
        };
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the drain; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start() -> (
        std::net::SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/healthz", get(|| async { "ok" }));
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, app, stop.clone()));
        (addr, stop, task)
    }

    async fn get_healthz(addr: std::net::SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn a_client_that_trickles_its_headers_is_cut_off() {
        let (addr, stop, task) = start().await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET /healthz HTTP/1.1\r\nx-slow: ")
            .await
            .expect("write");
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(HEADER_TIMEOUT * 3, slow.read(&mut buf))
            .await
            .expect("the server closes the connection within the header timeout");
        // Closed (0 bytes) or answered with 408; in both cases not held open.
        assert!(read.map_or(true, |n| n == 0 || buf.starts_with(b"HTTP/1.1 408")));
        assert!(get_healthz(addr).await.ends_with("ok"));
        stop.cancel();
        task.await.expect("the server stops");
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_and_the_rest_still_served() {
        let (addr, stop, task) = start().await;
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            held.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        // Let the server accept them all.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut extra = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf))
            .await
            .expect("closed at once")
            .unwrap_or(0);
        assert_eq!(n, 0, "the connection over the cap is closed unanswered");
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            get_healthz(addr).await.ends_with("ok"),
            "served again once they are gone"
        );
        stop.cancel();
        task.await.expect("the server stops");
    }
}
