//! What every handler is given or shares besides the broker: the request's context (`RequestContext`,
//! with the connection's `ConnectionInfo`) and a small helper for filling in responses (`code`). Below the handlers and the dispatch in `mod.rs`; re-exported from `api`.

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::messages::RequestHeader;

/// What a handler may know about the connection a request came in on (filled in by `runtime::server`).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    /// The principal name of a TLS client's certificate (`ssl.principal.mapping.rules` applied);
    /// `None` without TLS or without a client certificate.
    pub tls_principal: Option<Arc<str>>,
    /// Fetch responses send record data from segment files with sendfile: a plaintext connection
    /// (`PLAINTEXT`, `SASL_PLAINTEXT`) with `fetch.zero.copy.enable`. TLS must see the bytes.
    pub zero_copy: bool,
}

/// What a handler may know about its request.
pub struct RequestContext<'a> {
    pub header: &'a RequestHeader,
    pub version: i16,
    pub connection: &'a ConnectionInfo,
    /// The connection's principal name: the SASL user, else `quota::ANONYMOUS`.
    pub user: &'a str,
}

impl RequestContext<'_> {
    /// The request header's client id (empty when the client sent none).
    pub fn client_id(&self) -> &str {
        self.header.client_id.as_deref().unwrap_or("")
    }
}

/// Kafka's error code for a response field; 0 is success.
pub fn code(error: Option<kafka_protocol::error::ResponseError>) -> i16 {
    error.map(|e| e.code()).unwrap_or(0)
}
