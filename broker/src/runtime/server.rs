//! Listeners and connections. One accept loop per `listeners` entry; one task per connection that
//! reads a frame, hands it to `api::handle_request`, and writes the response before reading the next
//! (Kafka mutes a connection while a request is in flight, so responses stay in request order).
//!
//! Bad input (oversize or malformed frames) closes only that connection, with a log line. On shutdown
//! the accept loops stop, each connection finishes the request it is processing, and then closes.

use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::api::{self, ConnectionInfo};
use crate::broker::Broker;
use crate::network::frame::{read_frame_body, read_frame_size, FrameError};

/// Binds every configured listener; returns them with their actual local addresses (port 0 resolved).
pub async fn bind_listeners(broker: &Broker) -> std::io::Result<Vec<(Arc<str>, TcpListener)>> {
    let mut out = Vec::new();
    for listener in &broker.config.listeners {
        let address = listener.bind_address();
        let socket = TcpListener::bind(&address).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot listen on {address} (listener {}): {e}; is another broker running there?",
                    listener.name
                ),
            )
        })?;
        info!(listener = %listener.name, address = %socket.local_addr()?, "listening");
        out.push((Arc::from(listener.name.as_str()), socket));
    }
    Ok(out)
}

/// Accepts connections on `socket` until `shutdown` fires. Connection tasks are tracked by `tasks` so
/// the caller can wait for in-flight requests to finish.
pub async fn accept_loop(
    broker: Arc<Broker>,
    name: Arc<str>,
    socket: TcpListener,
    connections: Arc<Semaphore>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = socket.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                configure_socket(&broker, &stream);
                let info = ConnectionInfo {
                    listener: name.clone(),
                    peer,
                };
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                tasks.spawn(async move {
                    broker.metrics.connection_opened();
                    serve_connection(&broker, stream, info, shutdown).await;
                    broker.metrics.connection_closed();
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(listener = %name, "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    debug!(listener = %name, "accept loop stopped");
}

fn configure_socket(broker: &Broker, stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(stream);
    if broker.config.socket_send_buffer_bytes > 0 {
        let _ = sock.set_send_buffer_size(broker.config.socket_send_buffer_bytes as usize);
    }
    if broker.config.socket_receive_buffer_bytes > 0 {
        let _ = sock.set_recv_buffer_size(broker.config.socket_receive_buffer_bytes as usize);
    }
}

async fn serve_connection(broker: &Arc<Broker>, stream: TcpStream, info: ConnectionInfo, shutdown: CancellationToken) {
    let max = broker.config.socket_request_max_bytes;
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    loop {
        let size = tokio::select! {
            _ = shutdown.cancelled() => break,
            size = read_frame_size(&mut reader, max) => size,
        };
        let size = match size {
            Ok(Some(size)) => size,
            Ok(None) => break,
            Err(FrameError::Io(e)) => {
                debug!(peer = %info.peer, "connection error: {e}");
                break;
            }
            Err(e) => {
                warn!(peer = %info.peer, listener = %info.listener, "closing connection: {e}");
                broker.metrics.request_rejected();
                break;
            }
        };
        let permit = broker.budget.reserve(size).await;
        let body = match read_frame_body(&mut reader, size).await {
            Ok(body) => body,
            Err(e) => {
                debug!(peer = %info.peer, "closing connection: {e}");
                break;
            }
        };
        match api::handle_request(broker, &info, body.freeze(), permit).await {
            Ok(Some(response)) => {
                if let Err(e) = write_half.write_all(&response.frame).await {
                    debug!(peer = %info.peer, "cannot write response: {e}");
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(peer = %info.peer, listener = %info.listener, "closing connection: {e}");
                broker.metrics.request_rejected();
                break;
            }
        }
    }
    let _ = write_half.shutdown().await;
}
