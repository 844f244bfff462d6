//! The little HTTP/1.1 the metrics endpoints speak (the broker's `runtime::metrics_http` and the coordinator's
//! `coordinator::metrics`): read one request's path, write one `Connection: close` response. No
//! routing and no state: each endpoint decides what a path means.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const NOT_FOUND: &str = "not found; try /metrics or /health\n";

/// Reads an HTTP request head (at most 4 KiB, 5 s) and returns its path; `None` if the client sent
/// nothing usable in time.
pub async fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while len < buf.len() {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        Some(())
    })
    .await;
    read.ok()??;
    let head = String::from_utf8_lossy(&buf[..len]);
    Some(head.split_whitespace().nth(1).unwrap_or("").to_string())
}

/// Writes a complete `Connection: close` response and closes the write side.
pub async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
