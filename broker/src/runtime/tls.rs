//! TLS for `SSL` listeners (rustls with ring): the server side built from a listener's
//! `oxka_config::tls::TlsConfig` when the broker starts (key and certificate chain, a truststore
//! for client certificates under `ssl.client.auth`; JKS and PKCS12 stores are read as PEM by
//! `oxka_config::keystore`), and the handshake of each accepted
//! connection, bounded in time. A failed handshake (a plaintext client on a TLS port, an untrusted or
//! missing client certificate) closes that connection with a log line naming the peer and the reason,
//! once per interval per listener and reason, with a count. Keystore and truststore files are checked
//! every `ssl.reload.interval.ms`; changed files are loaded for new connections without a restart (a
//! set that does not load is logged and the previous one kept).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context};
use oxka_config::keystore::{load_keystore, load_truststore};
use oxka_config::tls::{ClientAuth, KeyStore, Pem, TlsConfig};
use oxka_protocol::util::RateLimitedLog;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long a client may take to finish the TLS handshake (Kafka's connections idle out far later;
/// this only stops a silent peer from holding a connection slot).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One SSL listener's server side.
pub struct Tls {
    config: TlsConfig,
    acceptor: parking_lot::RwLock<TlsAcceptor>,
    failures: RateLimitedLog,
}

impl Tls {
    /// Reads the listener's key, chain and truststore; an error names the setting and the file.
    pub fn new(config: &TlsConfig) -> anyhow::Result<Tls> {
        Ok(Tls {
            config: config.clone(),
            acceptor: parking_lot::RwLock::new(acceptor(config)?),
            failures: RateLimitedLog::new(Duration::from_secs(60)),
        })
    }

    /// Loads the files again whenever one of them changes, until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = Duration::from_millis(self.config.reload_interval_ms);
        let mut seen = stamps(&self.config);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let now = stamps(&self.config);
            if now == seen {
                continue;
            }
            seen = now;
            let listener = &self.config.listener;
            match acceptor(&self.config) {
                Ok(fresh) => {
                    *self.acceptor.write() = fresh;
                    info!(
                        listener,
                        "TLS keystore or truststore changed: loaded for new connections"
                    );
                }
                Err(e) => warn!(
                    listener,
                    "TLS files changed but cannot be loaded, keeping the previous ones: {e:#}"
                ),
            }
        }
    }

    /// The TLS handshake with a client, and the principal name of its certificate if it sent one;
    /// `None` (after logging why) when the handshake fails or times out, or when no
    /// `ssl.principal.mapping.rules` rule applies to the certificate's subject.
    pub async fn accept(&self, stream: TcpStream, listener: &str) -> Option<(TlsStream<TcpStream>, Option<String>)> {
        let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let acceptor = self.acceptor.read().clone();
        let reason = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first());
                match leaf.map(|cert| super::tls_principal::principal_name(cert, &self.config.principal_rules)) {
                    None => return Some((stream, None)),
                    Some(Ok(name)) => return Some((stream, Some(name))),
                    Some(Err(reason)) => {
                        if let Some(count) = self.failures.should_log(&reason) {
                            warn!(listener, peer, count, "TLS client refused, connection closed: {reason}");
                        }
                        return None;
                    }
                }
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
        };
        if let Some(count) = self.failures.should_log(&reason) {
            warn!(listener, peer, count, "TLS handshake failed, connection closed: {reason} (a plaintext client on a TLS listener, or a certificate the other side does not trust)");
        }
        None
    }
}

/// The files a listener reads, with their modification time and size (`None`: unreadable).
fn stamps(config: &TlsConfig) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
    let mut files = Vec::new();
    match &config.keystore {
        KeyStore::File(path) => files.push(path.clone()),
        KeyStore::Store(store) => files.push(store.path.clone()),
        KeyStore::Inline { .. } => {}
    }
    match &config.truststore {
        Some(Pem::File(path)) => files.push(path.clone()),
        Some(Pem::Store(store)) => files.push(store.path.clone()),
        _ => {}
    }
    files
        .into_iter()
        .map(|path| {
            let stamp = std::fs::metadata(&path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (path, stamp)
        })
        .collect()
}

/// The server side for `config`, from its files or inline PEM.
fn acceptor(config: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let listener = &config.listener;
    let (chain_text, key_text, keystore_name) = match &config.keystore {
        KeyStore::File(path) => {
            let text = read(path, "ssl.keystore.location", listener)?;
            (text.clone(), text, format!("ssl.keystore.location {}", path.display()))
        }
        KeyStore::Inline { chain, key } => (
            chain.as_bytes().to_vec(),
            key.as_bytes().to_vec(),
            "ssl.keystore.certificate.chain / ssl.keystore.key".to_string(),
        ),
        KeyStore::Store(store) => {
            let pem = load_keystore(store).map_err(|e| anyhow!("listener {listener}: {e}"))?;
            (
                pem.clone(),
                pem,
                format!("{} {}", store.location_key, store.path.display()),
            )
        }
    };
    let chain = CertificateDer::pem_slice_iter(&chain_text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("listener {listener}: {keystore_name}: a certificate is not valid PEM: {e}"))?;
    if chain.is_empty() {
        bail!("listener {listener}: {keystore_name} holds no certificate (-----BEGIN CERTIFICATE-----)");
    }
    if String::from_utf8_lossy(&key_text).contains("ENCRYPTED PRIVATE KEY") {
        bail!(
            "listener {listener}: {keystore_name} holds an encrypted private key, which is not supported yet; decrypt it (openssl pkcs8 -topk8 -nocrypt)"
        );
    }
    let key = PrivateKeyDer::from_pem_slice(&key_text)
        .map_err(|e| anyhow!("listener {listener}: {keystore_name} holds no usable private key: {e}"))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (config.tls13, &rustls::version::TLS13),
        (config.tls12, &rustls::version::TLS12),
    ]
    .into_iter()
    .filter_map(|(on, v)| on.then_some(v))
    .collect();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .context("TLS protocol versions")?;
    let builder = match (&config.truststore, config.client_auth) {
        (Some(truststore), ClientAuth::Requested | ClientAuth::Required) => {
            let text = match truststore {
                Pem::File(path) => read(path, "ssl.truststore.location", listener)?,
                Pem::Inline(text) => text.as_bytes().to_vec(),
                Pem::Store(store) => load_truststore(store).map_err(|e| anyhow!("listener {listener}: {e}"))?,
            };
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&text) {
                let cert = cert.map_err(|e| anyhow!("listener {listener}: truststore: not valid PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| anyhow!("listener {listener}: truststore: a certificate cannot be used: {e}"))?;
            }
            if roots.is_empty() {
                bail!("listener {listener}: the truststore holds no certificate");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if config.client_auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| anyhow!("listener {listener}: client certificate checks: {e}"))?,
            )
        }
        _ => builder.with_no_client_auth(),
    };
    let server = builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("listener {listener}: {keystore_name}: the key and certificate cannot be used: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn read(path: &Path, key: &str, listener: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("listener {listener}: cannot read {key} {}", path.display()))
}
