//! DescribeClientQuotas (KIP-546), answered from this broker's metadata with the filter semantics of
//! Kafka's `ClientQuotasImage` (`coordinator::client_quotas::describe`); a bad filter is refused with
//! Kafka's top-level error and message.

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::coordinator::client_quotas::{describe, Component};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    // DESCRIBE_CONFIGS on the cluster, as in Kafka.
    if !ctx.access(broker).allows_cluster(Op::DescribeConfigs) {
        return DescribeClientQuotasResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Cluster authorization failed.")));
    }
    let components: Vec<Component> = request
        .components
        .iter()
        .map(|c| Component {
            kind: c.entity_type.to_string(),
            match_type: c.match_type,
            name: c._match.as_ref().map(|m| m.to_string()),
        })
        .collect();
    match describe(&broker.metadata.image(), &components, request.strict) {
        Ok(selected) => {
            let entries = selected
                .into_iter()
                .map(|(entity, values)| {
                    EntryData::default()
                        .with_entity(
                            entity
                                .parts()
                                .into_iter()
                                .map(|(kind, name)| {
                                    EntityData::default()
                                        .with_entity_type(str_bytes(kind))
                                        .with_entity_name(name.map(str_bytes))
                                })
                                .collect(),
                        )
                        .with_values(
                            values
                                .into_iter()
                                .map(|(key, value)| ValueData::default().with_key(str_bytes(&key)).with_value(value.0))
                                .collect(),
                        )
                })
                .collect();
            DescribeClientQuotasResponse::default().with_entries(Some(entries))
        }
        Err((code, message)) => DescribeClientQuotasResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(&message))),
    }
}
