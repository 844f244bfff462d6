//! `RemoteEnsemble`: the broker's Kafka-protocol client for a coordinator ensemble (`zookeeper.connect`).
//!
//! It finds the controller by asking any member for DescribeCluster with KIP-919's controller endpoint
//! type (the answer names the Raft leader and every member's client address), keeps one connection per
//! `Lane` to it, and forgets it when a connection fails or a member says NOT_CONTROLLER, so the next call
//! finds the new one. The metadata long-poll goes to the controller when it is known, else to any member
//! (a broker only ever accepts newer metadata, so a lagging member's answer does no harm).
//! With `zookeeper.ssl.client.enable=true` every connection to a member is TLS (the members'
//! `secureClientPort`s, listed in `zookeeper.connect`).

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;

use super::lane::Lane;
use crate::coordinator::kafka::metadata_fetch_codec::{self, ImageUpdate, MetadataFetchRequest};
use crate::network::client::{self, encode_request, exchange, request_once, ReusableConnection, CONNECT_TIMEOUT};
use crate::util::join_host_port;

/// DescribeCluster with `endpoint_type` 2 (KIP-919): coordinators' endpoints and the controller.
const CONTROLLER_ENDPOINTS: i8 = 2;

pub struct RemoteEnsemble {
    addresses: Vec<String>,
    client_id: String,
    /// The controller's client address, once found.
    controller: Mutex<Option<String>>,
    lanes: [tokio::sync::Mutex<Option<ReusableConnection>>; 4],
    correlation: AtomicI32,
    /// Where the next discovery round starts, so one dead member is not asked first every time.
    next_member: AtomicUsize,
    /// `zookeeper.ssl.client.enable`: every connection to a member is TLS (its `secureClientPort`).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl RemoteEnsemble {
    pub fn new(addresses: Vec<String>, broker_id: i32, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        RemoteEnsemble {
            addresses,
            client_id: format!("oxka-broker-{broker_id}"),
            controller: Mutex::new(None),
            lanes: Default::default(),
            correlation: AtomicI32::new(1),
            next_member: AtomicUsize::new(0),
            tls,
        }
    }

    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    pub fn forget_controller(&self) {
        self.controller.lock().take();
    }

    /// One request to the controller on `lane`, within `timeout`.
    pub async fn call_controller(
        &self,
        lane: Lane,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, String> {
        let work = async {
            let known = self.controller.lock().clone();
            let controller = match known {
                Some(c) => c,
                None => self.discover_controller().await?,
            };
            let frame = self.encode(api, version, request)?;
            let mut slot = self.lanes[lane as usize].lock().await;
            let result = exchange(&mut slot, &controller, &frame, self.tls.as_ref()).await;
            match result {
                Ok(body) => decode_response(api, version, body),
                Err(e) => {
                    *slot = None;
                    self.forget_controller();
                    Err(format!("controller at {controller}: {e}"))
                }
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer from the controller within {timeout:?}")))
    }

    /// The metadata long-poll, against any member that answers.
    pub async fn fetch_metadata(
        &self,
        request: &MetadataFetchRequest,
        max_wait: Duration,
    ) -> Result<ImageUpdate, String> {
        let correlation_id = self.correlation.fetch_add(1, Ordering::Relaxed);
        let frame = metadata_fetch_codec::encode_request(correlation_id, &self.client_id, request);
        let mut slot = self.lanes[Lane::Metadata as usize].lock().await;
        // The controller when known (it has every committed change first; a member cut off from the
        // quorum would answer "nothing new" forever), else the member this lane already talks to.
        let known = self.controller.lock().clone();
        let address = match (known, slot.as_ref()) {
            (Some(controller), _) => controller,
            (None, Some(c)) => c.address().to_string(),
            (None, None) => self.next_address(),
        };
        let answer = tokio::time::timeout(
            max_wait + Duration::from_secs(5),
            exchange(&mut slot, &address, &frame, self.tls.as_ref()),
        )
        .await;
        let body = match answer {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                *slot = None;
                return Err(format!("coordinator at {address}: {e}"));
            }
            Err(_) => {
                *slot = None;
                return Err(format!(
                    "coordinator at {address} did not answer a metadata fetch in time"
                ));
            }
        };
        let (correlation, update) = metadata_fetch_codec::decode_response(&body)?;
        if correlation != correlation_id {
            *slot = None;
            return Err(format!("coordinator at {address} answered out of order"));
        }
        Ok(update)
    }

    fn next_address(&self) -> String {
        let i = self.next_member.fetch_add(1, Ordering::Relaxed);
        self.addresses[i % self.addresses.len()].clone()
    }

    /// Asks the members, in turn, who the controller is; remembers and returns its address.
    async fn discover_controller(&self) -> Result<String, String> {
        let mut problems = Vec::new();
        for _ in 0..self.addresses.len() {
            let address = self.next_address();
            match self.ask_for_controller(&address).await {
                Ok(Some((id, advertised))) => {
                    // Prefer a configured address that is the controller itself: the one it advertises
                    // (its server.N host) may not work from here (0.0.0.0, a name only the coordinators
                    // resolve).
                    let controller = match self.configured_address_of(id).await {
                        Some(configured) => configured,
                        None => advertised,
                    };
                    *self.controller.lock() = Some(controller.clone());
                    return Ok(controller);
                }
                Ok(None) => problems.push(format!("{address}: no controller elected")),
                Err(e) => problems.push(format!("{address}: {e}")),
            }
        }
        Err(format!("cannot find the controller ({})", problems.join("; ")))
    }

    /// The `zookeeper.connect` address at which coordinator `leader` answers as the leader (DescribeQuorum
    /// answers without error only there), if any.
    async fn configured_address_of(&self, leader: i32) -> Option<String> {
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
        let request = RequestKind::DescribeQuorum(DescribeQuorumRequest::default().with_topics(vec![
            TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(crate::coordinator::METADATA_TOPIC)))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
        ]));
        for address in &self.addresses {
            let answer = request_once(
                address,
                &self.client_id,
                ApiKey::DescribeQuorum,
                1,
                &request,
                CONNECT_TIMEOUT,
                self.tls.as_ref(),
            )
            .await;
            let response = match answer {
                Ok(ResponseKind::DescribeQuorum(response)) => response,
                other => {
                    tracing::debug!(address, "DescribeQuorum while looking for the controller: {other:?}");
                    continue;
                }
            };
            let leads = response
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .is_some_and(|p| p.error_code == 0 && p.leader_id.0 == leader);
            if leads {
                return Some(address.clone());
            }
        }
        None
    }

    /// (controller id, its advertised client address) as the member at `address` knows them.
    async fn ask_for_controller(&self, address: &str) -> Result<Option<(i32, String)>, String> {
        let request =
            RequestKind::DescribeCluster(DescribeClusterRequest::default().with_endpoint_type(CONTROLLER_ENDPOINTS));
        let frame = self.encode(ApiKey::DescribeCluster, 1, &request)?;
        let mut slot = None;
        let body = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            exchange(&mut slot, address, &frame, self.tls.as_ref()),
        )
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
        let ResponseKind::DescribeCluster(response) = decode_response(ApiKey::DescribeCluster, 1, body)? else {
            return Err("unexpected response to DescribeCluster".into());
        };
        if response.error_code != 0 {
            return Err(format!("DescribeCluster error {}", response.error_code));
        }
        let controller = response.controller_id.0;
        Ok(response
            .brokers
            .iter()
            .find(|b| b.broker_id.0 == controller && controller >= 0)
            .map(|b| (controller, join_host_port(b.host.as_str(), b.port))))
    }

    fn encode(&self, api: ApiKey, version: i16, request: &RequestKind) -> Result<BytesMut, String> {
        let correlation_id = self.correlation.fetch_add(1, Ordering::Relaxed);
        encode_request(api, version, correlation_id, &self.client_id, request)
    }
}

fn decode_response(api: ApiKey, version: i16, body: Bytes) -> Result<ResponseKind, String> {
    client::decode_response(api, version, body).map(|(_, response)| response)
}
