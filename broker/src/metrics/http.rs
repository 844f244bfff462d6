//! A minimal HTTP/1.1 endpoint for `GET /metrics` (Prometheus text) and `GET /health` (200 once the
//! broker serves requests). One request per connection; anything else gets 404.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else { continue };
        let broker = broker.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            // Read until the end of the request head (or give up after 4 KiB / 5 s).
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
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, content_type, body) = match path {
                "/metrics" => {
                    refresh(&broker);
                    (
                        "200 OK",
                        "text/plain; version=0.0.4; charset=utf-8",
                        broker.metrics.encode(),
                    )
                }
                "/health" | "/healthz" | "/ready" => ("200 OK", "text/plain", "ok\n".to_string()),
                _ => (
                    "404 Not Found",
                    "text/plain",
                    "not found; try /metrics or /health\n".to_string(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

fn refresh(broker: &Broker) {
    let sizes: Vec<(String, i32, u64)> = broker
        .logs
        .partitions()
        .map(|p| {
            (
                p.topic_partition().topic.clone(),
                p.topic_partition().partition,
                p.log.lock().size_bytes(),
            )
        })
        .collect();
    broker.metrics.set_partition_count(sizes.len());
    broker.metrics.set_log_sizes(sizes);
    broker.metrics.set_budget_used(broker.budget.used_bytes());
}
