//! SASL on `SASL_PLAINTEXT` and `SASL_SSL` listeners (KIP-152): until a connection has authenticated,
//! only ApiVersions, SaslHandshake and SaslAuthenticate are served, as in Kafka; anything else closes
//! the connection. PLAIN checks the `authzid\0username\0password` token against the listener's users
//! (`listener.name.<l>.plain.sasl.jaas.config`); SCRAM-SHA-256/512 run RFC 5802's exchange (`scram`)
//! against the users' credentials in the metadata log (AlterUserScramCredentials). A refused login is answered with Kafka's error
//! (SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password") and the
//! connection closed after Kafka's 100 ms delay; refusals are logged once a minute per listener and
//! reason, with a count.
//!
//! Re-authentication (KIP-368): with `connections.max.reauth.ms` set for the mechanism, a successful
//! SaslAuthenticate tells the client its session lifetime; a client that speaks SaslAuthenticate v1+
//! re-authenticates before then by sending SaslHandshake and SaslAuthenticate again on the same
//! connection, with the same mechanism and as the same principal (else the connection closes with
//! Kafka's errors). A request that arrives after the session expired closes the connection, as Kafka's
//! `Processor` does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    RequestKind, ResponseHeader, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use oxka_config::sasl::SaslConfig;
use oxka_protocol::scram::{constant_time_eq, Mechanism};
use oxka_protocol::util::RateLimitedLog;
use tracing::warn;

use super::jwks::KeySet;
use super::oauthbearer;
use super::scram::{self, ScramExchange};
use crate::api::{self, ConnectionInfo};
use crate::cluster::view::MetadataView;
use crate::protocol::codec;

/// Kafka's `connection.failed.authentication.delay.ms` default: a refused client waits this long for
/// the connection to close, which slows password guessing.
pub const FAILED_AUTHENTICATION_DELAY: Duration = Duration::from_millis(100);

/// One SASL listener's users and mechanisms.
pub struct SaslServer {
    listener: String,
    /// Where SCRAM credentials are read from (the metadata log's, as this broker follows it).
    metadata: Arc<MetadataView>,
    mechanisms: Vec<String>,
    plain_users: BTreeMap<String, String>,
    max_reauth_ms: BTreeMap<String, i64>,
    /// OAUTHBEARER's token checks and key set, when the listener serves it.
    oauthbearer: Option<(oxka_config::oauthbearer::OAuthBearerConfig, KeySet)>,
    refusals: RateLimitedLog,
}

/// Where a connection is in its authentication.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum SaslState {
    #[default]
    AwaitingHandshake,
    /// The handshake chose this mechanism; its SaslAuthenticate comes next.
    Authenticating(String),
    /// SCRAM's server first message is sent; the client's final message comes next.
    ScramFinal(Box<ScramExchange>),
    /// OAUTHBEARER's `invalid_token` challenge is sent; the client's `\x01` comes next, which is
    /// answered with this message and the connection closed.
    OAuthBearerRefused(String),
    Authenticated(Session),
}

/// An authenticated session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `User:<name>`.
    pub principal: String,
    pub mechanism: String,
    /// When the session ends unless the client re-authenticates (`connections.max.reauth.ms`, or the
    /// credential's own expiry).
    pub expires: Option<Instant>,
    /// When the credential expires (an OAUTHBEARER token's `exp`), ms since the epoch.
    pub credential_expires_ms: Option<i64>,
}

/// One connection's SASL: its state, and during a re-authentication the session it replaces.
#[derive(Debug, Default)]
pub struct SaslConnection {
    state: SaslState,
    reauthenticating: Option<Session>,
    /// The client sent SaslAuthenticate v1 or later, so it knows session lifetimes (KIP-368).
    supports_reauthentication: bool,
}

impl SaslConnection {
    /// The authenticated principal (`User:<name>`), if the connection has logged in.
    pub fn principal(&self) -> Option<&str> {
        match &self.state {
            SaslState::Authenticated(session) => Some(&session.principal),
            _ => None,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, SaslState::Authenticated(_))
    }

    /// Whether the session has ended without a re-authentication.
    pub fn expired(&self, now: Instant) -> bool {
        matches!(&self.state, SaslState::Authenticated(Session { expires: Some(at), .. }) if *at <= now)
    }

    /// Starts a re-authentication (a SaslHandshake on an authenticated connection of a client that
    /// can re-authenticate). False when this connection cannot: the request is then served as any
    /// other (SaslHandshake answers ILLEGAL_SASL_STATE, as Kafka's `KafkaApis`).
    pub fn begin_reauthentication(&mut self) -> bool {
        if !self.supports_reauthentication {
            return false;
        }
        let SaslState::Authenticated(session) = std::mem::take(&mut self.state) else {
            return false;
        };
        self.reauthenticating = Some(session);
        true
    }
}

/// What to do with one frame of a connection that has not authenticated yet.
pub enum Step {
    /// ApiVersions: served as on any connection.
    Serve,
    /// Write this response and read on.
    Respond(BytesMut),
    /// Write this response, then close the connection after `FAILED_AUTHENTICATION_DELAY`.
    RespondAndClose(BytesMut),
    /// Close the connection at once.
    Close,
}

impl SaslServer {
    /// The server of one listener; an error when its OAUTHBEARER key set cannot be read.
    pub fn new(config: &SaslConfig, metadata: Arc<MetadataView>) -> Result<SaslServer, String> {
        let oauthbearer = match &config.oauthbearer {
            Some(c) => Some((c.clone(), oauthbearer::key_set(c)?)),
            None => None,
        };
        Ok(SaslServer {
            oauthbearer,
            listener: config.listener.clone(),
            metadata,
            mechanisms: config.mechanisms.clone(),
            plain_users: config.plain_users.clone(),
            max_reauth_ms: config.max_reauth_ms.clone(),
            refusals: RateLimitedLog::new(Duration::from_secs(60)),
        })
    }

    /// Handles `frame`, sent on a connection that is authenticating (or re-authenticating).
    pub fn step(&self, conn: &mut SaslConnection, frame: Bytes, info: &ConnectionInfo) -> Step {
        let decoded = match codec::decode_request(frame, api::SUPPORTED) {
            Ok(codec::Decoded::Request {
                api,
                version,
                header,
                request,
            }) => (api, version, header, request),
            // An ApiVersions of a version this broker does not know: answered as on any connection.
            Ok(codec::Decoded::UnknownApiVersions(_)) => return Step::Serve,
            Err(e) => {
                self.refused(info, &format!("malformed request during SASL authentication: {e}"));
                return Step::Close;
            }
        };
        let (api, version, header, request) = decoded;
        let respond = |body: ResponseKind| {
            let header = ResponseHeader::default().with_correlation_id(header.correlation_id);
            codec::encode_response(api, version, &header, &body).ok()
        };
        if let RequestKind::SaslAuthenticate(_) = request {
            conn.supports_reauthentication |= version > 0;
        }
        let state = &mut conn.state;
        match (request, &*state) {
            (RequestKind::ApiVersions(_), _) => Step::Serve,
            (RequestKind::SaslHandshake(_), SaslState::AwaitingHandshake) if version == 0 => {
                // Version 0 sends the SASL tokens raw, outside Kafka requests (clients before Kafka
                // 1.0); only SaslAuthenticate is served. (Advertised all the same: librdkafka looks
                // for version 0 before it uses version 1.)
                self.refused(
                    info,
                    "SaslHandshake v0 (raw SASL tokens) is not served; the client must use v1",
                );
                let body = SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code());
                match respond(ResponseKind::SaslHandshake(body)) {
                    Some(response) => Step::RespondAndClose(response),
                    None => Step::Close,
                }
            }
            (RequestKind::SaslHandshake(r), SaslState::AwaitingHandshake)
                if conn
                    .reauthenticating
                    .as_ref()
                    .is_some_and(|previous| previous.mechanism != r.mechanism.as_str()) =>
            {
                let previous = conn
                    .reauthenticating
                    .as_ref()
                    .map(|p| p.mechanism.clone())
                    .unwrap_or_default();
                self.refused(
                    info,
                    &format!(
                        "SASL mechanism '{}' requested by client is not supported for re-authentication of mechanism '{previous}'",
                        r.mechanism.as_str()
                    ),
                );
                let body = SaslHandshakeResponse::default()
                    .with_error_code(ResponseError::UnsupportedSaslMechanism.code())
                    .with_mechanisms(vec![StrBytes::from_string(previous)]);
                match respond(ResponseKind::SaslHandshake(body)) {
                    Some(response) => Step::RespondAndClose(response),
                    None => Step::Close,
                }
            }
            (RequestKind::SaslHandshake(r), SaslState::AwaitingHandshake) => {
                let mechanism = r.mechanism.to_string();
                let enabled = self.mechanisms.contains(&mechanism);
                let body = SaslHandshakeResponse::default()
                    .with_error_code(if enabled {
                        0
                    } else {
                        ResponseError::UnsupportedSaslMechanism.code()
                    })
                    .with_mechanisms(
                        self.mechanisms
                            .iter()
                            .map(|m| StrBytes::from_string(m.clone()))
                            .collect(),
                    );
                let Some(response) = respond(ResponseKind::SaslHandshake(body)) else {
                    return Step::Close;
                };
                if enabled {
                    *state = SaslState::Authenticating(mechanism);
                    Step::Respond(response)
                } else {
                    self.refused(
                        info,
                        &format!(
                            "mechanism {mechanism} is not enabled (enabled: {})",
                            self.mechanisms.join(",")
                        ),
                    );
                    Step::RespondAndClose(response)
                }
            }
            (
                RequestKind::SaslAuthenticate(r),
                SaslState::Authenticating(_) | SaslState::ScramFinal(_) | SaslState::OAuthBearerRefused(_),
            ) => {
                let body = SaslAuthenticateResponse::default();
                let outcome = self
                    .authenticate(state, &r.auth_bytes, info)
                    .and_then(|(token, next)| same_principal(conn.reauthenticating.as_ref(), next).map(|n| (token, n)));
                match outcome {
                    Ok((auth_bytes, next)) => {
                        let mut body = body.with_auth_bytes(Bytes::from(auth_bytes));
                        let next = match next {
                            SaslState::Authenticated(session) => {
                                let max_reauth_ms = self.max_reauth_ms.get(&session.mechanism).copied().unwrap_or(0);
                                let lifetime_ms =
                                    session_lifetime_ms(max_reauth_ms, session.credential_expires_ms, now_ms());
                                body = body.with_session_lifetime_ms(lifetime_ms.unwrap_or(0));
                                conn.reauthenticating = None;
                                SaslState::Authenticated(Session {
                                    expires: lifetime_ms.map(|ms| Instant::now() + Duration::from_millis(ms as u64)),
                                    ..session
                                })
                            }
                            other => other,
                        };
                        let Some(response) = respond(ResponseKind::SaslAuthenticate(body)) else {
                            return Step::Close;
                        };
                        conn.state = next;
                        Step::Respond(response)
                    }
                    Err((client_message, reason)) => {
                        self.refused(info, &reason);
                        let body = body
                            .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                            .with_error_message(Some(StrBytes::from_string(client_message)));
                        match respond(ResponseKind::SaslAuthenticate(body)) {
                            Some(response) => Step::RespondAndClose(response),
                            None => Step::Close,
                        }
                    }
                }
            }
            (_, _) => {
                self.refused(
                    info,
                    &format!("unexpected {api:?} request during SASL authentication (state {state:?})"),
                );
                Step::Close
            }
        }
    }

    /// One SaslAuthenticate token in `state`: the answer's token and the next state, or the message for
    /// the client and the reason for the log.
    fn authenticate(
        &self,
        state: &SaslState,
        token: &[u8],
        info: &ConnectionInfo,
    ) -> Result<(Vec<u8>, SaslState), (String, String)> {
        let authenticated = |user: &str, mechanism: &str| {
            SaslState::Authenticated(Session {
                principal: format!("User:{user}"),
                mechanism: mechanism.to_string(),
                expires: None,
                credential_expires_ms: None,
            })
        };
        let scram_failure = |mechanism: Mechanism, failure: scram::Failure| match failure {
            scram::Failure::Invalid(reason) => (
                format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                    mechanism.name()
                ),
                reason,
            ),
            scram::Failure::Refused { client_message, reason } => (client_message, reason),
        };
        match state {
            SaslState::Authenticating(mechanism) if mechanism == "PLAIN" => plain(token, &self.plain_users)
                .map(|user| (Vec::new(), authenticated(&user, "PLAIN")))
                .map_err(|reason| {
                    (
                        "Authentication failed: Invalid username or password".to_string(),
                        reason,
                    )
                }),
            SaslState::Authenticating(mechanism) if mechanism == "OAUTHBEARER" => self.oauthbearer_first(token, info),
            SaslState::OAuthBearerRefused(message) => Err((
                message.clone(),
                "OAUTHBEARER client acknowledged the refusal of its token".into(),
            )),
            SaslState::Authenticating(name) => {
                let mechanism = Mechanism::from_name(name).ok_or_else(|| {
                    (
                        "Unsupported SASL mechanism".to_string(),
                        format!("mechanism {name} is not served"),
                    )
                })?;
                let image = self.metadata.image();
                let credential_of = |user: &str| {
                    image
                        .scram_credentials
                        .get(user)
                        .and_then(|c| c.get(&mechanism))
                        .cloned()
                };
                let (exchange, server_first) = scram::first(mechanism, token, credential_of, &server_nonce())
                    .map_err(|f| scram_failure(mechanism, f))?;
                Ok((server_first, SaslState::ScramFinal(Box::new(exchange))))
            }
            SaslState::ScramFinal(exchange) => {
                let server_final = exchange
                    .finish(token)
                    .map_err(|f| scram_failure(exchange.mechanism, f))?;
                Ok((server_final, authenticated(&exchange.user, exchange.mechanism.name())))
            }
            other => Err((
                "Unexpected SaslAuthenticate".to_string(),
                format!("SaslAuthenticate in state {other:?}"),
            )),
        }
    }

    /// OAUTHBEARER's client first message: a session for a valid token, or Kafka's challenge.
    fn oauthbearer_first(&self, token: &[u8], info: &ConnectionInfo) -> Result<(Vec<u8>, SaslState), (String, String)> {
        let Some((config, keys)) = &self.oauthbearer else {
            return Err((
                "Unsupported SASL mechanism".into(),
                "OAUTHBEARER is not configured".into(),
            ));
        };
        let (authzid, jwt) = oauthbearer::client_first(token).map_err(|e| (e.clone(), e))?;
        match oauthbearer::validate(&jwt, config, keys, now_ms()) {
            Ok(valid) if !authzid.is_empty() && authzid != valid.principal => {
                let message = format!(
                    "Authentication failed: Client requested an authorization id ({authzid}) that is different from the token's principal name ({})",
                    valid.principal
                );
                Err((message.clone(), message))
            }
            Ok(valid) => Ok((
                Vec::new(),
                SaslState::Authenticated(Session {
                    principal: format!("User:{}", valid.principal),
                    mechanism: "OAUTHBEARER".into(),
                    expires: None,
                    credential_expires_ms: Some(valid.expires_ms),
                }),
            )),
            Err(reason) => {
                self.refused(info, &format!("OAUTHBEARER token refused: {reason}"));
                Ok((
                    oauthbearer::INVALID_TOKEN.as_bytes().to_vec(),
                    SaslState::OAuthBearerRefused(oauthbearer::INVALID_TOKEN.into()),
                ))
            }
        }
    }

    fn refused(&self, info: &ConnectionInfo, reason: &str) {
        if let Some(count) = self.refusals.should_log(reason) {
            warn!(listener = %self.listener, peer = %info.peer, count, "SASL authentication failed, connection closed: {reason}");
        }
    }
}

/// How long a session lasts, as Kafka's `calcCompletionTimesAndReturnSessionLifetimeMs`: the shorter
/// of `connections.max.reauth.ms` (when set) and the time the credential has left (when it expires);
/// None: for ever.
fn session_lifetime_ms(max_reauth_ms: i64, credential_expires_ms: Option<i64>, now_ms: i64) -> Option<i64> {
    let left = credential_expires_ms.map(|at| (at - now_ms).max(0));
    match (left, max_reauth_ms > 0) {
        (None, false) => None,
        (None, true) => Some(max_reauth_ms),
        (Some(left), false) => Some(left),
        (Some(left), true) => Some(left.min(max_reauth_ms)),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A re-authentication must end as the principal it replaces (Kafka's `ensurePrincipalUnchanged`).
fn same_principal(previous: Option<&Session>, next: SaslState) -> Result<SaslState, (String, String)> {
    match (previous, &next) {
        (Some(previous), SaslState::Authenticated(now)) if previous.principal != now.principal => {
            let message = format!(
                "Cannot change principals during re-authentication from {}: {}",
                previous.principal.replacen(':', ".", 1),
                now.principal.replacen(':', ".", 1)
            );
            Err((message.clone(), message))
        }
        _ => Ok(next),
    }
}

/// RFC 4616's PLAIN token `authzid NUL authcid NUL passwd`, checked as Kafka's PlainServer does: the
/// user, or why not (never naming the password).
fn plain(token: &[u8], users: &BTreeMap<String, String>) -> Result<String, String> {
    let text = std::str::from_utf8(token).map_err(|_| "PLAIN token is not UTF-8".to_string())?;
    let parts: Vec<&str> = text.split('\0').collect();
    let [authzid, user, password] = parts.as_slice() else {
        return Err("PLAIN token is not authzid NUL username NUL password".to_string());
    };
    if user.is_empty() {
        return Err("PLAIN token names no user".to_string());
    }
    if !authzid.is_empty() && authzid != user {
        return Err(format!("user {user} asked to act as {authzid}"));
    }
    match users.get(*user) {
        Some(expected) if constant_time_eq(expected.as_bytes(), password.as_bytes()) => Ok(user.to_string()),
        Some(_) => Err(format!("wrong password for user {user}")),
        None => Err(format!("unknown user {user}")),
    }
}

/// A fresh server nonce: 24 random bytes as hex (printable, no commas, as RFC 5802 requires).
fn server_nonce() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        [("alice".to_string(), "alice-secret".to_string())].into()
    }

    #[test]
    fn session_lifetimes_follow_kafka() {
        assert_eq!(session_lifetime_ms(0, None, 1000), None);
        assert_eq!(session_lifetime_ms(5000, None, 1000), Some(5000));
        assert_eq!(session_lifetime_ms(0, Some(4000), 1000), Some(3000));
        assert_eq!(session_lifetime_ms(2000, Some(4000), 1000), Some(2000));
        assert_eq!(session_lifetime_ms(0, Some(500), 1000), Some(0));
    }

    #[test]
    fn plain_tokens_are_checked_as_kafka_checks_them() {
        assert_eq!(plain(b"\0alice\0alice-secret", &users()), Ok("alice".into()));
        assert_eq!(plain(b"alice\0alice\0alice-secret", &users()), Ok("alice".into()));
        assert_eq!(
            plain(b"\0alice\0wrong", &users()),
            Err("wrong password for user alice".into())
        );
        assert_eq!(plain(b"\0bob\0x", &users()), Err("unknown user bob".into()));
        assert_eq!(
            plain(b"admin\0alice\0alice-secret", &users()),
            Err("user alice asked to act as admin".into())
        );
        assert!(plain(b"alice-secret", &users()).is_err());
        assert!(plain(b"\0\0alice-secret", &users()).is_err());
        assert!(plain(&[0, 0xff, 0], &users()).is_err());
    }
}
