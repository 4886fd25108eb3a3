//! The webhook port under attack, against the real daemon: whoever reaches the port can send
//! anything, so a flood of large unsigned bodies must neither take the daemon's memory nor its
//! health checks.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One connection that announces a 2 MB `workflow_job` body with a well-formed but wrong
/// signature and then sends it; whatever it gets back.
async fn heavy_delivery(port: u16, chunked: bool) {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let length = if chunked {
        "Transfer-Encoding: chunked\r\n".to_owned()
    } else {
        "Content-Length: 2000000\r\n".to_owned()
    };
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: x\r\nX-Gitea-Event: workflow_job\r\n\
         X-Gitea-Signature: {}\r\nContent-Type: application/json\r\n{length}\r\n",
        "ab".repeat(32)
    );
    if s.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let block = vec![b'x'; 64 * 1024];
    for _ in 0..31 {
        let sent = if chunked {
            let mut c = format!("{:x}\r\n", block.len()).into_bytes();
            c.extend_from_slice(&block);
            c.extend_from_slice(b"\r\n");
            s.write_all(&c).await
        } else {
            s.write_all(&block).await
        };
        if sent.is_err() {
            return;
        }
    }
    let mut buf = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_unsigned_deliveries_takes_neither_memory_nor_health_checks() {
    let s = world().await;
    let (d, port) = daemon_on(&s, &[]);
    ready(port).await;
    let before = peak_rss_kib(d.id());
    // 200 at once, half announcing their length, half chunked (no length to refuse on).
    let flood: Vec<_> = (0..200)
        .map(|i| tokio::spawn(heavy_delivery(port.webhook, i % 2 == 1)))
        .collect();
    // The health checks answer while the flood is on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let healthz = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", port.http))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    for f in flood {
        let _ = f.await;
    }
    let after = peak_rss_kib(d.id());
    println!("peak RSS before the flood {before} KiB, after {after} KiB");
    let (status, logs) = stop(d).await;
    assert!(status.success(), "{logs}");
    assert!(
        healthz.is_ok_and(|r| r.status().is_success()),
        "the health check failed during the flood"
    );
    // The design before this measure grew from 48 to 421 MB under the same flood.
    assert!(
        after.saturating_sub(before) < 32 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}
