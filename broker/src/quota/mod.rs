//! Client quotas (KIP-13, KIP-55, KIP-219): the byte rates `producer_byte_rate` and
//! `consumer_byte_rate` set with AlterClientQuotas (`kafka-configs --entity-type users/clients`) are
//! enforced per quota entity, resolved for each request's user and client id with KIP-55's precedence
//! (`coordinator::client_quotas::limit_for`). Produce records the request's size, a consumer's Fetch
//! the response's; over the limit, the throttle time is Kafka's `(rate - limit) / limit * window`, the
//! response carries it in `throttle_time_ms` (a throttled Fetch returns no data, as Kafka's does) and
//! the connection reads nothing more from the client until it has passed (KIP-219's muted channel).
//! Replicas' fetches are not client traffic and are never counted here.
//!
//! Request quotas (KIP-124, `request_percentage`): the time each request kept the broker busy
//! (`api::busy`, waits excluded) counts against the share of one thread the entity may use
//! (100 = one thread, over the same windows); over it, the same throttle formula bounded by one
//! window (Kafka's `boundedThrottleTime`), the response's `throttle_time_ms` and the muted connection. Requests between brokers (Kafka's cluster actions and
//! followers' fetches) are exempt.

mod rate;

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::coordinator::client_quotas::{
    limit_for, QuotaEntity, CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE,
};
use crate::coordinator::ClusterImage;
pub use rate::SampledRate;

/// The principal name of a connection that has not authenticated (Kafka's `KafkaPrincipal.ANONYMOUS`).
pub const ANONYMOUS: &str = "ANONYMOUS";

/// Which rate a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Produce,
    Fetch,
    /// Request-handling time, recorded in millionths of a percent-second (a nanosecond of one thread
    /// is 1e-7 percent-seconds, so `nanos / 10`).
    Request,
}

impl Kind {
    /// The quota key that limits this kind of request.
    fn quota_key(self) -> &'static str {
        match self {
            Kind::Produce => PRODUCER_BYTE_RATE,
            Kind::Fetch => CONSUMER_BYTE_RATE,
            Kind::Request => REQUEST_PERCENTAGE,
        }
    }

    /// How many recorded units one unit of the quota's value is.
    fn scale(self) -> f64 {
        match self {
            Kind::Request => 1e6,
            Kind::Produce | Kind::Fetch => 1.0,
        }
    }
}

/// The measured rates of the quota entities with a limit.
pub struct ClientQuotas {
    samples: usize,
    window_ms: i64,
    produce: Mutex<HashMap<QuotaEntity, SampledRate>>,
    fetch: Mutex<HashMap<QuotaEntity, SampledRate>>,
    request: Mutex<HashMap<QuotaEntity, SampledRate>>,
}

impl ClientQuotas {
    pub fn new(samples: usize, window_ms: i64) -> Self {
        ClientQuotas {
            samples,
            window_ms,
            produce: Mutex::default(),
            fetch: Mutex::default(),
            request: Mutex::default(),
        }
    }

    fn rates(&self, kind: Kind) -> &Mutex<HashMap<QuotaEntity, SampledRate>> {
        match kind {
            Kind::Produce => &self.produce,
            Kind::Fetch => &self.fetch,
            Kind::Request => &self.request,
        }
    }

    /// Records the time a request of `user` with `client_id` kept the broker busy; the throttle time
    /// in milliseconds it earns against a `request_percentage` quota (0 without one).
    pub fn record_request_time(
        &self,
        image: &ClusterImage,
        user: &str,
        client_id: &str,
        busy: std::time::Duration,
        now_ms: i64,
    ) -> i32 {
        let units = (busy.as_nanos() / 10).min(u64::MAX as u128) as u64;
        self.record(image, Kind::Request, user, client_id, units, now_ms)
    }

    /// Records `bytes` of a request of `user` with `client_id`; the throttle time in milliseconds it
    /// earns (0 within its quota, or without one).
    pub fn record(
        &self,
        image: &ClusterImage,
        kind: Kind,
        user: &str,
        client_id: &str,
        bytes: u64,
        now_ms: i64,
    ) -> i32 {
        let Some((limit, entity)) = limit_for(image, kind.quota_key(), user, client_id) else {
            return 0;
        };
        let mut rates = self.rates(kind).lock();
        if !rates.contains_key(&entity) {
            // Entities idle for all their windows are forgotten before a new one is added.
            rates.retain(|_, rate| rate.rate(now_ms) > 0.0);
        }
        let rate = rates
            .entry(entity)
            .or_insert_with(|| SampledRate::new(self.samples, self.window_ms));
        rate.record(bytes, now_ms);
        let throttle = throttle_ms(rate.rate(now_ms), limit * kind.scale(), rate.window_ms(now_ms));
        match kind {
            // Kafka bounds a request quota's throttle by one window (`boundedThrottleTime`).
            Kind::Request => throttle.min(self.window_ms.min(i32::MAX as i64) as i32),
            Kind::Produce | Kind::Fetch => throttle,
        }
    }

    /// Takes back bytes recorded for a response that was not sent (a throttled Fetch).
    pub fn unrecord(&self, image: &ClusterImage, kind: Kind, user: &str, client_id: &str, bytes: u64) {
        if let Some((_, entity)) = limit_for(image, kind.quota_key(), user, client_id) {
            if let Some(rate) = self.rates(kind).lock().get_mut(&entity) {
                rate.unrecord(bytes);
            }
        }
    }
}

/// Kafka's `QuotaUtils.throttleTime`: the delay that brings the observed rate back to the limit over
/// the measured window, `(observed - limit) / limit * window`.
fn throttle_ms(observed: f64, limit: f64, window_ms: i64) -> i32 {
    if observed <= limit || limit <= 0.0 {
        return 0;
    }
    ((observed - limit) / limit * window_ms as f64)
        .round()
        .min(i32::MAX as f64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::client_quotas::{apply, QuotaValue};

    #[test]
    fn a_client_over_its_rate_is_throttled_and_others_are_not() {
        let mut image = ClusterImage::default();
        let limited = QuotaEntity {
            client_id: Some(Some("limited".into())),
            ..QuotaEntity::default()
        };
        apply(
            &mut image,
            &limited,
            &[(PRODUCER_BYTE_RATE.to_string(), Some(QuotaValue(1000.0)))].into(),
        );
        let quotas = ClientQuotas::new(11, 1000);
        // 10,000 bytes over the first 10 s of windows is exactly the limit; 5,000 more is 50% over.
        assert_eq!(quotas.record(&image, Kind::Produce, ANONYMOUS, "limited", 10_000, 0), 0);
        assert_eq!(
            quotas.record(&image, Kind::Produce, ANONYMOUS, "limited", 5_000, 0),
            5_000
        );
        assert_eq!(quotas.record(&image, Kind::Produce, ANONYMOUS, "free", 1 << 30, 0), 0);
        assert_eq!(quotas.record(&image, Kind::Fetch, ANONYMOUS, "limited", 1 << 30, 0), 0);
        quotas.unrecord(&image, Kind::Produce, ANONYMOUS, "limited", 5_000);
        assert_eq!(quotas.record(&image, Kind::Produce, ANONYMOUS, "limited", 0, 0), 0);
    }

    #[test]
    fn request_time_counts_against_request_percentage() {
        let mut image = ClusterImage::default();
        let busy = QuotaEntity {
            user: Some(Some("busy".into())),
            ..QuotaEntity::default()
        };
        // 10% of one thread: 100 ms of work a second.
        apply(
            &mut image,
            &busy,
            &[(REQUEST_PERCENTAGE.to_string(), Some(QuotaValue(10.0)))].into(),
        );
        let quotas = ClientQuotas::new(11, 1000);
        let ms = std::time::Duration::from_millis;
        // 1 s of work over the first 10 s of windows is exactly 10%.
        assert_eq!(quotas.record_request_time(&image, "busy", "app", ms(1000), 0), 0);
        // 0.5 s more is 50% over: 5 s, bounded by one window.
        assert_eq!(quotas.record_request_time(&image, "busy", "app", ms(500), 0), 1_000);
        assert_eq!(quotas.record_request_time(&image, "idle", "app", ms(60_000), 0), 0);
    }

    #[test]
    fn throttle_time_is_kafkas_formula() {
        assert_eq!(throttle_ms(1500.0, 1000.0, 10_000), 5_000);
        assert_eq!(throttle_ms(900.0, 1000.0, 10_000), 0);
        assert_eq!(throttle_ms(3000.0, 1000.0, 11_000), 22_000);
    }
}
