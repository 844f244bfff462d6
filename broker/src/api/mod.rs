//! The Kafka APIs: one file per API, each declaring the version range it serves (`VERSIONS`) and a
//! `handle` function that takes the typed request and the broker state and returns the typed response.
//! Handlers never touch sockets. `SUPPORTED` is the registry; ApiVersions is derived from it. What the
//! handlers share (`RequestContext`, `ConnectionInfo`, `code`) is in `context`.
//!
//! Path of a request: frame bytes → `RequestHeader` → version check against `SUPPORTED` → typed request
//! (`RequestKind::decode`) → handler → `ResponseKind` → response frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::VersionRange;

use crate::broker::Broker;
use crate::metrics::Stage;
use crate::network::MemoryPermit;
use crate::protocol::codec;
pub use crate::protocol::{ApiSpec, RequestError};
use crate::quota;
pub use context::{code, ConnectionInfo, RequestContext};
pub use fetch_frame::FileRegion;

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_share_group_offsets;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod authorize;
pub mod busy;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
mod context;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_share_group_offsets;
pub mod delete_share_group_state;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_share_group_offsets;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod fetch_frame;
pub mod find_coordinator;
mod group_writes;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod initialize_share_group_state;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod read_share_group_state;
pub mod read_share_group_state_summary;
pub mod share_acknowledge;
pub mod share_fetch;
pub mod share_group_describe;
pub mod share_group_heartbeat;
pub mod sync_group;
pub mod throttle_field;
pub mod txn_offset_commit;
pub mod write_share_group_state;
pub mod write_txn_markers;

const fn spec(key: ApiKey, versions: VersionRange) -> ApiSpec {
    ApiSpec { key, versions }
}

/// Every API served, with its version range; ApiVersions answers from this table.
pub const SUPPORTED: &[ApiSpec] = &[
    spec(ApiKey::Produce, produce::VERSIONS),
    spec(ApiKey::Fetch, fetch::VERSIONS),
    spec(ApiKey::ListOffsets, list_offsets::VERSIONS),
    spec(ApiKey::Metadata, metadata::VERSIONS),
    spec(ApiKey::ApiVersions, api_versions::VERSIONS),
    spec(ApiKey::CreateTopics, create_topics::VERSIONS),
    spec(ApiKey::DeleteTopics, delete_topics::VERSIONS),
    spec(ApiKey::DeleteRecords, delete_records::VERSIONS),
    spec(ApiKey::InitProducerId, init_producer_id::VERSIONS),
    spec(ApiKey::DescribeConfigs, describe_configs::VERSIONS),
    spec(ApiKey::AlterConfigs, alter_configs::VERSIONS),
    spec(ApiKey::DescribeLogDirs, describe_log_dirs::VERSIONS),
    spec(ApiKey::CreatePartitions, create_partitions::VERSIONS),
    spec(ApiKey::IncrementalAlterConfigs, incremental_alter_configs::VERSIONS),
    spec(ApiKey::DescribeCluster, describe_cluster::VERSIONS),
    spec(ApiKey::DescribeQuorum, describe_quorum::VERSIONS),
    spec(ApiKey::FindCoordinator, find_coordinator::VERSIONS),
    spec(ApiKey::JoinGroup, join_group::VERSIONS),
    spec(ApiKey::SyncGroup, sync_group::VERSIONS),
    spec(ApiKey::Heartbeat, heartbeat::VERSIONS),
    spec(ApiKey::LeaveGroup, leave_group::VERSIONS),
    spec(ApiKey::OffsetCommit, offset_commit::VERSIONS),
    spec(ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    spec(ApiKey::ListGroups, list_groups::VERSIONS),
    spec(ApiKey::DescribeGroups, describe_groups::VERSIONS),
    spec(ApiKey::DeleteGroups, delete_groups::VERSIONS),
    spec(ApiKey::OffsetDelete, offset_delete::VERSIONS),
    spec(ApiKey::TxnOffsetCommit, txn_offset_commit::VERSIONS),
    spec(ApiKey::OffsetForLeaderEpoch, offset_for_leader_epoch::VERSIONS),
    // Announced only while `group.coordinator.rebalance.protocols` contains `consumer` (`api_versions`).
    spec(ApiKey::ConsumerGroupHeartbeat, consumer_group_heartbeat::VERSIONS),
    spec(ApiKey::ConsumerGroupDescribe, consumer_group_describe::VERSIONS),
    // Announced only while share groups are enabled (`api_versions`).
    spec(ApiKey::ShareGroupHeartbeat, share_group_heartbeat::VERSIONS),
    spec(ApiKey::ShareGroupDescribe, share_group_describe::VERSIONS),
    spec(ApiKey::ShareFetch, share_fetch::VERSIONS),
    spec(ApiKey::ShareAcknowledge, share_acknowledge::VERSIONS),
    spec(
        ApiKey::DescribeShareGroupOffsets,
        describe_share_group_offsets::VERSIONS,
    ),
    spec(ApiKey::AlterShareGroupOffsets, alter_share_group_offsets::VERSIONS),
    spec(ApiKey::DeleteShareGroupOffsets, delete_share_group_offsets::VERSIONS),
    // Between brokers: a share partition's leader and its share coordinator (`share_state`).
    spec(ApiKey::ReadShareGroupState, read_share_group_state::VERSIONS),
    spec(ApiKey::WriteShareGroupState, write_share_group_state::VERSIONS),
    spec(ApiKey::DeleteShareGroupState, delete_share_group_state::VERSIONS),
    spec(
        ApiKey::InitializeShareGroupState,
        initialize_share_group_state::VERSIONS,
    ),
    spec(
        ApiKey::ReadShareGroupStateSummary,
        read_share_group_state_summary::VERSIONS,
    ),
    spec(
        ApiKey::AlterPartitionReassignments,
        alter_partition_reassignments::VERSIONS,
    ),
    spec(
        ApiKey::ListPartitionReassignments,
        list_partition_reassignments::VERSIONS,
    ),
    spec(ApiKey::ElectLeaders, elect_leaders::VERSIONS),
    spec(
        ApiKey::DescribeUserScramCredentials,
        describe_user_scram_credentials::VERSIONS,
    ),
    spec(
        ApiKey::AlterUserScramCredentials,
        alter_user_scram_credentials::VERSIONS,
    ),
    spec(ApiKey::DescribeClientQuotas, describe_client_quotas::VERSIONS),
    spec(ApiKey::AlterClientQuotas, alter_client_quotas::VERSIONS),
    spec(ApiKey::DescribeAcls, describe_acls::VERSIONS),
    spec(ApiKey::CreateAcls, create_acls::VERSIONS),
    spec(ApiKey::DeleteAcls, delete_acls::VERSIONS),
    spec(ApiKey::AddPartitionsToTxn, add_partitions_to_txn::VERSIONS),
    spec(ApiKey::AddOffsetsToTxn, add_offsets_to_txn::VERSIONS),
    spec(ApiKey::EndTxn, end_txn::VERSIONS),
    spec(ApiKey::WriteTxnMarkers, write_txn_markers::VERSIONS),
    spec(ApiKey::DescribeTransactions, describe_transactions::VERSIONS),
    spec(ApiKey::ListTransactions, list_transactions::VERSIONS),
    spec(ApiKey::DescribeProducers, describe_producers::VERSIONS),
    // Answered by `runtime::sasl` while a SASL listener's connection authenticates; here (any other
    // connection, or after authentication) with ILLEGAL_SASL_STATE, as Kafka's request handler does.
    spec(ApiKey::SaslHandshake, VersionRange { min: 0, max: 1 }),
    spec(ApiKey::SaslAuthenticate, VersionRange { min: 0, max: 2 }),
];

/// The APIs ApiVersions announces: `SUPPORTED`, without the consumer group protocol's APIs when
/// `group.coordinator.rebalance.protocols` leaves out `consumer`, and without the share group APIs
/// while share groups are disabled (as Kafka announces them).
fn announced(broker: &Broker) -> Vec<ApiSpec> {
    let consumer = broker.groups.config.consumer_protocol_enabled;
    let share = broker.groups.config.share_enabled;
    SUPPORTED
        .iter()
        .filter(|s| consumer || !matches!(s.key, ApiKey::ConsumerGroupHeartbeat | ApiKey::ConsumerGroupDescribe))
        .filter(|s| {
            share
                || !matches!(
                    s.key,
                    ApiKey::ShareGroupHeartbeat
                        | ApiKey::ShareGroupDescribe
                        | ApiKey::ShareFetch
                        | ApiKey::ShareAcknowledge
                        | ApiKey::DescribeShareGroupOffsets
                        | ApiKey::AlterShareGroupOffsets
                        | ApiKey::DeleteShareGroupOffsets
                        | ApiKey::ReadShareGroupState
                        | ApiKey::WriteShareGroupState
                        | ApiKey::DeleteShareGroupState
                        | ApiKey::InitializeShareGroupState
                        | ApiKey::ReadShareGroupStateSummary
                )
        })
        .cloned()
        .collect()
}

/// An encoded response frame and the memory it holds in the budget until written.
///
/// A plaintext Fetch response leaves its record data in the segment files: `regions` names them,
/// each with the offset in `frame` where its bytes go (ascending; `fetch_frame`). The frame's
/// length prefix counts them. Every other response has none.
pub struct Response {
    pub frame: BytesMut,
    pub regions: Vec<(usize, FileRegion)>,
    pub _permit: MemoryPermit,
    /// When the frame was encoded: from then on it waits only for the connection to write it.
    pub encoded_at: Instant,
}

/// What `start_request` did with a request.
pub enum Started {
    /// Answered; `None` when no response is due (acks=0 Produce).
    Done(Option<Response>),
    /// A Produce with acks=all whose records are appended: its response comes from this task once the
    /// in-sync replicas have them. The connection may start the client's next Produce meanwhile.
    Replicating(tokio::task::JoinHandle<Result<Option<Response>, RequestError>>),
}

/// Decodes and starts one request. Every request but an acks=all Produce is handled to the end here;
/// such a Produce is appended here (so requests are appended in the order they arrive) and, unless
/// the in-sync replicas have its records at once (a single replica), waits for them on a task of its
/// own.
///
/// `user` is the connection's principal name (for client quotas). With the `Started`, the throttle time
/// a client quota gave the request (`quota`): the connection reads nothing more from the client until
/// it has passed.
pub async fn start_request(
    broker: &Arc<Broker>,
    connection: &ConnectionInfo,
    user: &str,
    frame: Bytes,
    request_permit: MemoryPermit,
) -> Result<(Started, Duration), RequestError> {
    let frame_size = frame.len() as u64;
    let (api, version, header, request) = match codec::decode_request(frame, SUPPORTED)? {
        codec::Decoded::Request {
            api,
            version,
            header,
            request,
        } => (api, version, header, request),
        codec::Decoded::UnknownApiVersions(frame) => {
            let response = Response {
                frame,
                regions: Vec::new(),
                _permit: request_permit,
                encoded_at: Instant::now(),
            };
            return Ok((Started::Done(Some(response)), Duration::ZERO));
        }
    };
    let started = Instant::now();
    let request = match request {
        RequestKind::Produce(r) => {
            let throttle_ms = broker.client_quotas.record(
                &broker.metadata.image(),
                quota::Kind::Produce,
                user,
                header.client_id.as_deref().unwrap_or(""),
                frame_size,
                crate::util::now_ms(),
            );
            let access = authorize::Access::new(broker, user, connection.peer.ip());
            let acks = r.acks;
            let (appending, busy) = busy::Busy::new(async {
                // KIP-890: the coordinator confirms a transaction's first batch on each partition first.
                let verified = crate::txn_verify::verify_produce(broker, &r).await;
                produce::append_all(broker, &access, r, &verified)
            })
            .await;
            // As Kafka: acks=0 requests are not counted against request quotas.
            let request_ms = if acks == 0 {
                0
            } else {
                request_throttle_ms(broker, &header, user, busy)
            };
            let throttle_ms = throttle_ms.max(request_ms);
            let throttle = Duration::from_millis(throttle_ms as u64);
            drop(request_permit);
            broker.metrics.produce_stage(Stage::Local, started.elapsed());
            let correlation_id = header.correlation_id;
            let Some(appending) = appending else {
                broker.metrics.request_done(api, started.elapsed());
                return Ok((Started::Done(None), throttle));
            };
            let waits = appending.awaits_replicas();
            // Remote time counts from here: the task's scheduling is part of the wait.
            let waited = Instant::now();
            let finish = {
                let broker = broker.clone();
                let hints = produce::leader_hints(version, &connection.listener).map(str::to_string);
                async move {
                    let response = appending
                        .respond(&broker, hints.as_deref())
                        .await
                        .with_throttle_time_ms(throttle_ms);
                    if waits {
                        broker.metrics.produce_stage(Stage::Remote, waited.elapsed());
                    }
                    let body = ResponseKind::Produce(response);
                    broker.metrics.request_done(api, started.elapsed());
                    encode(api, version, correlation_id, &body, MemoryPermit::none()).map(Some)
                }
            };
            // When the in-sync replicas have the records already (this broker is the only one, or the
            // followers were ahead), the response is ready at the first poll: answered here, with no
            // task to spawn and no wake-up of the connection from another thread.
            let mut finish = Box::pin(finish);
            let started = match (&mut finish).now_or_never() {
                Some(done) => Started::Done(done?),
                None => Started::Replicating(tokio::spawn(finish)),
            };
            return Ok((started, throttle));
        }
        other => other,
    };
    let ctx = RequestContext {
        header: &header,
        version,
        connection,
        user,
    };
    if let RequestKind::Fetch(r) = request {
        let follower = is_follower_fetch(&r);
        let (mut fetched, busy) = busy::Busy::new(fetch::handle(broker, &ctx, r, request_permit)).await;
        if !follower {
            let request_ms = request_throttle_ms(broker, &header, user, busy);
            fetched = fetch::throttle_for_request_quota(broker, &ctx, fetched, request_ms);
        }
        broker.metrics.request_done(api, started.elapsed());
        let throttle = Duration::from_millis(fetched.response.throttle_time_ms.max(0) as u64);
        let response = if fetched.regions.is_empty() {
            let body = ResponseKind::Fetch(fetched.response);
            encode(api, version, header.correlation_id, &body, fetched.permit)?
        } else {
            let encoded = fetch_frame::encode(version, header.correlation_id, fetched.response, fetched.regions)?;
            Response {
                frame: encoded.frame,
                regions: encoded.regions,
                _permit: fetched.permit,
                encoded_at: Instant::now(),
            }
        };
        return Ok((Started::Done(Some(response)), throttle));
    }
    let exempt = exempt_from_request_quota(api);
    let (outcome, busy) = busy::Busy::new(dispatch(broker, &ctx, request, request_permit)).await;
    broker.metrics.request_done(api, started.elapsed());
    let throttle_ms = if exempt {
        0
    } else {
        request_throttle_ms(broker, &header, user, busy)
    };
    let Some((mut body, response_permit)) = outcome else {
        return Ok((Started::Done(None), Duration::from_millis(throttle_ms as u64)));
    };
    if throttle_ms > 0 {
        throttle_field::raise(&mut body, throttle_ms);
    }
    let response = encode(api, version, header.correlation_id, &body, response_permit)?;
    Ok((Started::Done(Some(response)), Duration::from_millis(throttle_ms as u64)))
}

/// Records a request's busy time against its client's `request_percentage` quota (KIP-124); the
/// throttle time it earns.
fn request_throttle_ms(broker: &Broker, header: &RequestHeader, user: &str, busy: Duration) -> i32 {
    broker.client_quotas.record_request_time(
        &broker.metadata.image(),
        user,
        header.client_id.as_deref().unwrap_or(""),
        busy,
        crate::util::now_ms(),
    )
}

/// Requests request quotas never count: those between brokers and coordinators (Kafka's cluster
/// actions) and the authentication exchange.
fn exempt_from_request_quota(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::WriteTxnMarkers
            | ApiKey::ReadShareGroupState
            | ApiKey::WriteShareGroupState
            | ApiKey::DeleteShareGroupState
            | ApiKey::InitializeShareGroupState
            | ApiKey::ReadShareGroupStateSummary
            | ApiKey::AlterPartition
            | ApiKey::BrokerRegistration
            | ApiKey::BrokerHeartbeat
            | ApiKey::UnregisterBroker
            | ApiKey::Envelope
            | ApiKey::SaslHandshake
            | ApiKey::SaslAuthenticate
    )
}

/// A follower's Fetch (replica id in the request before v15, in its replica state from v15).
fn is_follower_fetch(r: &kafka_protocol::messages::FetchRequest) -> bool {
    r.replica_id.0 >= 0 || r.replica_state.replica_id.0 >= 0
}

fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
    permit: MemoryPermit,
) -> Result<Response, RequestError> {
    let response_header = ResponseHeader::default().with_correlation_id(correlation_id);
    let frame = codec::encode_response(api, version, &response_header, body)?;
    Ok(Response {
        frame,
        regions: Vec::new(),
        _permit: permit,
        encoded_at: Instant::now(),
    })
}

/// Routes a typed request to its handler (Fetch is routed by `start_request`, since its response may
/// leave record data in files). Returns the response and any memory it holds, or `None` when no
/// response is due.
///
/// `request_permit` holds the request's bytes in the memory budget; it is released when the handler is
/// done with the request.
async fn dispatch(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    request: RequestKind,
    _request_permit: MemoryPermit,
) -> Option<(ResponseKind, MemoryPermit)> {
    let none = MemoryPermit::none;
    let response = match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(ctx, r, &announced(broker))),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(broker, ctx, r).await),
        RequestKind::Produce(r) => {
            return produce::handle(broker, ctx, r)
                .await
                .map(|r| (ResponseKind::Produce(r), none()))
        }
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(broker, ctx, r)),
        RequestKind::ShareGroupHeartbeat(r) => {
            ResponseKind::ShareGroupHeartbeat(share_group_heartbeat::handle(broker, ctx, r).await)
        }
        RequestKind::ShareGroupDescribe(r) => {
            ResponseKind::ShareGroupDescribe(share_group_describe::handle(broker, ctx, r))
        }
        RequestKind::ShareFetch(r) => ResponseKind::ShareFetch(share_fetch::handle(broker, ctx, r).await),
        RequestKind::AlterShareGroupOffsets(r) => {
            ResponseKind::AlterShareGroupOffsets(alter_share_group_offsets::handle(broker, ctx, r).await)
        }
        RequestKind::DeleteShareGroupOffsets(r) => {
            ResponseKind::DeleteShareGroupOffsets(delete_share_group_offsets::handle(broker, ctx, r).await)
        }
        RequestKind::DescribeShareGroupOffsets(r) => {
            ResponseKind::DescribeShareGroupOffsets(describe_share_group_offsets::handle(broker, ctx, r).await)
        }
        RequestKind::ShareAcknowledge(r) => {
            ResponseKind::ShareAcknowledge(share_acknowledge::handle(broker, ctx, r).await)
        }
        RequestKind::ReadShareGroupState(r) => {
            ResponseKind::ReadShareGroupState(read_share_group_state::handle(broker, ctx, r).await)
        }
        RequestKind::WriteShareGroupState(r) => {
            ResponseKind::WriteShareGroupState(write_share_group_state::handle(broker, ctx, r).await)
        }
        RequestKind::DeleteShareGroupState(r) => {
            ResponseKind::DeleteShareGroupState(delete_share_group_state::handle(broker, ctx, r).await)
        }
        RequestKind::InitializeShareGroupState(r) => {
            ResponseKind::InitializeShareGroupState(initialize_share_group_state::handle(broker, ctx, r).await)
        }
        RequestKind::ReadShareGroupStateSummary(r) => {
            ResponseKind::ReadShareGroupStateSummary(read_share_group_state_summary::handle(broker, ctx, r).await)
        }
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::handle(broker, ctx, r).await),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics::handle(broker, ctx, r).await),
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(create_partitions::handle(broker, ctx, r).await)
        }
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(delete_records::handle(broker, ctx, r).await),
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(init_producer_id::handle(broker, ctx, r).await),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(describe_configs::handle(broker, ctx, r)),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(alter_configs::handle(broker, ctx, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::handle(broker, ctx, r).await)
        }
        RequestKind::DescribeCluster(r) => ResponseKind::DescribeCluster(describe_cluster::handle(broker, ctx, r)),
        RequestKind::DescribeQuorum(r) => ResponseKind::DescribeQuorum(describe_quorum::handle(broker, ctx, r).await),
        RequestKind::DescribeLogDirs(r) => ResponseKind::DescribeLogDirs(describe_log_dirs::handle(broker, ctx, r)),
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(broker, ctx, r).await)
        }
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(join_group::handle(broker, ctx, r).await),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(sync_group::handle(broker, ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(heartbeat::handle(broker, ctx, r).await),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(leave_group::handle(broker, ctx, r).await),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit::handle(broker, ctx, r).await),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offset_fetch::handle(broker, ctx, r)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(list_groups::handle(broker, ctx, r)),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(describe_groups::handle(broker, ctx, r)),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            ResponseKind::ConsumerGroupHeartbeat(consumer_group_heartbeat::handle(broker, ctx, r).await)
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group_describe::handle(broker, ctx, r))
        }
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(delete_groups::handle(broker, ctx, r).await),
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(offset_delete::handle(broker, ctx, r).await),
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txn_offset_commit::handle(broker, ctx, r).await)
        }
        RequestKind::AlterPartitionReassignments(r) => {
            ResponseKind::AlterPartitionReassignments(alter_partition_reassignments::handle(broker, ctx, r).await)
        }
        RequestKind::ListPartitionReassignments(r) => {
            ResponseKind::ListPartitionReassignments(list_partition_reassignments::handle(broker, ctx, r))
        }
        RequestKind::ElectLeaders(r) => ResponseKind::ElectLeaders(elect_leaders::handle(broker, ctx, r).await),
        RequestKind::DescribeUserScramCredentials(r) => {
            ResponseKind::DescribeUserScramCredentials(describe_user_scram_credentials::handle(broker, ctx, r))
        }
        RequestKind::DescribeClientQuotas(r) => {
            ResponseKind::DescribeClientQuotas(describe_client_quotas::handle(broker, ctx, r))
        }
        RequestKind::AlterClientQuotas(r) => {
            ResponseKind::AlterClientQuotas(alter_client_quotas::handle(broker, ctx, r).await)
        }
        RequestKind::AlterUserScramCredentials(r) => {
            ResponseKind::AlterUserScramCredentials(alter_user_scram_credentials::handle(broker, ctx, r).await)
        }
        RequestKind::DescribeAcls(r) => ResponseKind::DescribeAcls(describe_acls::handle(broker, ctx, r)),
        RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(create_acls::handle(broker, ctx, r).await),
        RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(delete_acls::handle(broker, ctx, r).await),
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(add_partitions_to_txn::handle(broker, ctx, r).await)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(add_offsets_to_txn::handle(broker, ctx, r).await)
        }
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(end_txn::handle(broker, ctx, r).await),
        RequestKind::WriteTxnMarkers(r) => {
            ResponseKind::WriteTxnMarkers(write_txn_markers::handle(broker, ctx, r).await)
        }
        RequestKind::DescribeTransactions(r) => {
            ResponseKind::DescribeTransactions(describe_transactions::handle(broker, ctx, r))
        }
        RequestKind::ListTransactions(r) => ResponseKind::ListTransactions(list_transactions::handle(broker, ctx, r)),
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(describe_producers::handle(broker, ctx, r))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, ctx, r))
        }
        RequestKind::SaslHandshake(_) => ResponseKind::SaslHandshake(
            kafka_protocol::messages::SaslHandshakeResponse::default()
                .with_error_code(kafka_protocol::error::ResponseError::IllegalSaslState.code()),
        ),
        RequestKind::SaslAuthenticate(_) => ResponseKind::SaslAuthenticate(
            kafka_protocol::messages::SaslAuthenticateResponse::default()
                .with_error_code(kafka_protocol::error::ResponseError::IllegalSaslState.code())
                .with_error_message(Some(str_bytes(
                    "SaslAuthenticate request received on a connection that is not authenticating",
                ))),
        ),
        other => {
            // Unreachable while SUPPORTED and this match agree; answer nothing rather than guess.
            tracing::error!("no handler for a request listed in SUPPORTED: {other:?}");
            return None;
        }
    };
    Some((response, none()))
}

/// `StrBytes` from a `&str`, for response fields.
pub use crate::util::str_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_versions_are_within_the_protocol_crate() {
        for spec in SUPPORTED {
            let known = spec.key.valid_versions();
            assert!(
                spec.versions.min >= known.min && spec.versions.max <= known.max,
                "{:?}",
                spec.key
            );
            assert!(!spec.versions.is_empty());
        }
        let mut keys: Vec<i16> = SUPPORTED.iter().map(|s| s.key as i16).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), SUPPORTED.len(), "an API is listed twice");
    }
}
