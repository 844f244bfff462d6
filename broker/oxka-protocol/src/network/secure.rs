//! The client side of TLS and SASL PLAIN, for connections that a `security.protocol` other than
//! PLAINTEXT asks for (the native tools' `--command-config`, and a broker's connections to other brokers
//! over an SSL or SASL inter-broker listener): a rustls client configuration from PEM
//! files, the TLS handshake, and the SASL login (PLAIN or SCRAM over SaslHandshake v1 and
//! SaslAuthenticate) that must come before any other request. `Stream` halves carry either a plain TCP stream or a TLS one.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How a client connection is secured: TLS (`SSL`, `SASL_SSL`) and SASL credentials
/// (`SASL_PLAINTEXT`, `SASL_SSL`). The default is PLAINTEXT.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<Arc<ClientConfig>>,
    pub sasl: Option<SaslLogin>,
}

/// Who logs in over SASL, and how: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslLogin {
    pub mechanism: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    /// Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaslLogin({} as {})", self.mechanism, self.user)
    }
}

impl std::fmt::Debug for ClientSecurity {
    /// Names the protocol only: never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        };
        f.write_str(protocol)
    }
}

/// PEM text from a file (`ssl.*.location`) or given inline (`ssl.truststore.certificates`, ...).
pub enum PemSource<'a> {
    File(&'a Path),
    Inline(&'a str),
}

impl PemSource<'_> {
    fn bytes(&self, what: &str) -> Result<Vec<u8>, String> {
        match self {
            PemSource::File(path) => {
                std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
            }
            PemSource::Inline(text) => Ok(text.as_bytes().to_vec()),
        }
    }
}

/// A TLS client configuration: the CA certificates to trust (PEM), an optional client certificate
/// chain and key (one PEM, for mutual TLS), and whether the server's name is checked
/// (`ssl.endpoint.identification.algorithm=https`, Kafka's default) or not (empty).
pub fn tls_client_config(
    truststore: Option<PemSource>,
    keystore: Option<PemSource>,
    check_host_name: bool,
) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    if let Some(truststore) = truststore {
        let text = truststore.bytes("the truststore")?;
        for cert in CertificateDer::pem_slice_iter(&text) {
            roots
                .add(cert.map_err(|e| format!("the truststore is not valid PEM: {e}"))?)
                .map_err(|e| format!("a truststore certificate cannot be used: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the truststore holds no certificate".into());
        }
    } else {
        return Err("set ssl.truststore.location (PEM CA certificates) to check the broker's certificate".into());
    }
    let roots = Arc::new(roots);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if check_host_name {
        builder.with_root_certificates(roots)
    } else {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| e.to_string())?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(inner)))
    };
    let config = match keystore {
        None => builder.with_no_client_auth(),
        Some(keystore) => {
            let text = keystore.bytes("the keystore")?;
            let chain = CertificateDer::pem_slice_iter(&text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the keystore is not valid PEM: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(&text).map_err(|e| format!("the keystore holds no usable key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the keystore's key and certificate cannot be used: {e}"))?
        }
    };
    Ok(Arc::new(config))
}

/// A TLS server configuration that requires a client certificate from the truststore's CAs (mutual
/// TLS, as ZooKeeper's quorum TLS always is): for the coordinators' peer port.
pub fn mutual_tls_server_config(
    keystore: PemSource,
    truststore: PemSource,
) -> Result<Arc<rustls::ServerConfig>, String> {
    tls_server_config(keystore, Some(truststore), true)
}

/// A TLS server configuration from a PEM keystore; with a truststore, client certificates are checked
/// against it, and required when `require_client_cert` (else a client may present none).
pub fn tls_server_config(
    keystore: PemSource,
    truststore: Option<PemSource>,
    require_client_cert: bool,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match truststore {
        None => builder.with_no_client_auth(),
        Some(truststore) => {
            let mut roots = RootCertStore::empty();
            let text = truststore.bytes("the truststore")?;
            for cert in CertificateDer::pem_slice_iter(&text) {
                roots
                    .add(cert.map_err(|e| format!("the truststore is not valid PEM: {e}"))?)
                    .map_err(|e| format!("a truststore certificate cannot be used: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the truststore holds no certificate".into());
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("client certificate checks: {e}"))?,
            )
        }
    };
    let text = keystore.bytes("the keystore")?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the keystore is not valid PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| format!("the keystore holds no usable key: {e}"))?;
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("the keystore's key and certificate cannot be used: {e}"))?;
    Ok(Arc::new(config))
}

/// Checks the chain against the trusted CAs like rustls's own verifier, but accepts a certificate for
/// another host name (`ssl.endpoint.identification.algorithm=` left empty, as Kafka allows).
#[derive(Debug)]
struct AnyHostName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The TLS handshake over `stream` for `host` (a name or an IP address).
pub async fn tls_connect(
    config: &Arc<ClientConfig>,
    host: &str,
    stream: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
}

/// A connection's read half, plain or TLS.
pub enum ReadStream {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

/// A connection's write half, plain or TLS.
pub enum WriteStream {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

/// Splits a plain stream (its halves work without a lock).
pub fn split_plain(stream: TcpStream) -> (ReadStream, WriteStream) {
    let (read, write) = stream.into_split();
    (ReadStream::Plain(read), WriteStream::Plain(write))
}

pub fn split_tls(stream: TlsStream<TcpStream>) -> (ReadStream, WriteStream) {
    let (read, write) = tokio::io::split(stream);
    (ReadStream::Tls(read), WriteStream::Tls(write))
}

impl AsyncRead for ReadStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ReadStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ReadStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WriteStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WriteStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteStream::Plain(s) => Pin::new(s).poll_flush(cx),
            WriteStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WriteStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
