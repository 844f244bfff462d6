//! Listeners. One accept loop per `listeners` entry; each accepted socket is served by
//! `connection::serve_connection` on a task of its own, after a TLS handshake on `SSL` and `SASL_SSL`
//! listeners (`tls`); on SASL listeners the connection authenticates first (`sasl`). On shutdown the
//! accept loops stop.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::connection::serve_connection;
use super::sasl::SaslServer;
use super::tls::Tls;
use crate::api::ConnectionInfo;
use crate::broker::Broker;
use crate::util::AcceptFailures;

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

/// What a listener wraps its connections in: TLS (`SSL`, `SASL_SSL`) and SASL authentication
/// (`SASL_PLAINTEXT`, `SASL_SSL`); neither for `PLAINTEXT`.
#[derive(Clone, Default)]
pub struct ListenerSecurity {
    pub tls: Option<Arc<Tls>>,
    pub sasl: Option<Arc<SaslServer>>,
}

/// Accepts connections on `socket` until `shutdown` fires. Connection tasks are tracked by `tasks` so
/// the caller can wait for in-flight requests to finish.
pub async fn accept_loop(
    broker: Arc<Broker>,
    name: Arc<str>,
    socket: TcpListener,
    security: ListenerSecurity,
    connections: Arc<Semaphore>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut failures = AcceptFailures::default();
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
                failures.accepted();
                configure_socket(&broker, &stream);
                let mut info = ConnectionInfo {
                    listener: name.clone(),
                    peer,
                    tls_principal: None,
                    zero_copy: security.tls.is_none() && broker.config.fetch_zero_copy_enable,
                };
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                let ListenerSecurity { tls, sasl } = security.clone();
                tasks.spawn(async move {
                    broker.metrics.connection_opened();
                    match tls {
                        None => {
                            let (reader, writer) = stream.into_split();
                            serve_connection(&broker, reader, writer, info, sasl, shutdown).await;
                        }
                        Some(tls) => {
                            if let Some((stream, principal)) = tls.accept(stream, &info.listener).await {
                                info.tls_principal = principal.map(Arc::from);
                                let (reader, writer) = tokio::io::split(stream);
                                serve_connection(&broker, reader, writer, info, sasl, shutdown).await;
                            }
                        }
                    }
                    broker.metrics.connection_closed();
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning, log once per interval.
                let (line, pause) = failures.failed(&e);
                if let Some(line) = line {
                    warn!(listener = %name, "{line}");
                }
                drop(permit);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
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
