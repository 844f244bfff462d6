//! The Kafka admin requests behind KafkaTopics: describe one topic (Metadata plus DescribeConfigs),
//! CreateTopics, CreatePartitions, IncrementalAlterConfigs and DeleteTopics, each over one connection
//! to the cluster's bootstrap address (`kafka_admin::with_connection`). A request Kafka refuses comes
//! back as `TopicAdminError::Kafka` with Kafka's error code and message, so status can show them;
//! everything else (no connection, timeout) is `TopicAdminError::Admin`.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, MetadataRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use oxka_protocol::network::client::ClientConnection;

use super::kafka_admin::{with_connection, AdminError, DESCRIBE_CONFIGS_VERSION, TIMEOUT};
use super::topic_plan::{kafka_error_name, ActualConfig, ActualTopic, DesiredTopic};

/// Metadata v12: carries topic ids and asks by name without auto-creating.
const METADATA_VERSION: i16 = 12;
const CREATE_TOPICS_VERSION: i16 = 7;
const CREATE_PARTITIONS_VERSION: i16 = 3;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;
const DELETE_TOPICS_VERSION: i16 = 6;
const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config source of a value set on the topic itself.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
/// Kafka's AlterConfigOp.OpType: SET 0, DELETE 1, APPEND 2, SUBTRACT 3.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// How long the brokers may take to carry out a topic change before answering.
const REQUEST_TIMEOUT_MS: i32 = 4000;

/// Kafka's refusal of one request, as Kafka reports it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("Kafka refused {request}: {} ({code}){}", kafka_error_name(*.code), .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
pub struct KafkaRefusal {
    /// The request refused, e.g. `CreateTopics`.
    pub request: &'static str,
    pub code: i16,
    pub message: Option<String>,
}

/// Why a topic request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum TopicAdminError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Kafka(#[from] KafkaRefusal),
}

fn check(request: &'static str, code: i16, message: Option<&StrBytes>) -> Result<(), KafkaRefusal> {
    if code == 0 {
        return Ok(());
    }
    Err(KafkaRefusal {
        request,
        code,
        message: message.map(|m| m.to_string()),
    })
}

/// The per-topic results of a response to a request about one topic: every one must be success, and
/// a response with no result at all is a refusal too (a broker that did not read the topic from the
/// request answers so; counting that as success once deleted nothing and dropped the finalizer).
fn all_succeeded<'a>(
    request: &'static str,
    results: impl IntoIterator<Item = (i16, Option<&'a StrBytes>)>,
) -> Result<(), KafkaRefusal> {
    let mut answered = false;
    for (code, message) in results {
        answered = true;
        check(request, code, message)?;
    }
    if !answered {
        return Err(KafkaRefusal {
            request,
            code: -1,
            message: Some("the response has no result for the topic".to_string()),
        });
    }
    Ok(())
}

async fn call(
    c: &mut ClientConnection,
    key: ApiKey,
    version: i16,
    request: RequestKind,
) -> Result<ResponseKind, AdminError> {
    Ok(c.call(key, version, &request, TIMEOUT).await?)
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Kafka's textual form of a topic id: URL-safe base64 without padding, as `kafka-topics` prints it.
pub fn topic_id_string(bytes: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The topic as Kafka describes it, or None when it does not exist.
pub async fn describe(address: &str, topic: &str) -> Result<Option<ActualTopic>, TopicAdminError> {
    with_connection(address, async |c: &mut ClientConnection| {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))]))
            .with_allow_auto_topic_creation(false);
        let ResponseKind::Metadata(metadata) =
            call(c, ApiKey::Metadata, METADATA_VERSION, RequestKind::Metadata(request)).await?
        else {
            unreachable!("oxka-protocol decodes a Metadata response as Metadata");
        };
        let Some(found) = metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))
        else {
            return Ok(Ok(None));
        };
        if found.error_code == UNKNOWN_TOPIC_OR_PARTITION {
            return Ok(Ok(None));
        }
        if let Err(refusal) = check("Metadata", found.error_code, None) {
            return Ok(Err(refusal));
        }
        let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(None)]);
        let ResponseKind::DescribeConfigs(described) = call(
            c,
            ApiKey::DescribeConfigs,
            DESCRIBE_CONFIGS_VERSION,
            RequestKind::DescribeConfigs(request),
        )
        .await?
        else {
            unreachable!("oxka-protocol decodes a DescribeConfigs response as DescribeConfigs");
        };
        let mut configs = BTreeMap::new();
        for result in &described.results {
            if let Err(refusal) = check("DescribeConfigs", result.error_code, result.error_message.as_ref()) {
                return Ok(Err(refusal));
            }
            for config in &result.configs {
                configs.insert(
                    config.name.to_string(),
                    ActualConfig {
                        value: config.value.as_ref().map(|v| v.to_string()),
                        set_on_topic: config.config_source == DYNAMIC_TOPIC_CONFIG,
                    },
                );
            }
        }
        let id = found.topic_id.as_bytes();
        Ok(Ok(Some(ActualTopic {
            topic_id: (id != &[0u8; 16]).then(|| topic_id_string(id)),
            partitions: found.partitions.len() as i32,
            replication_factor: found
                .partitions
                .iter()
                .map(|p| p.replica_nodes.len() as i32)
                .max()
                .unwrap_or(0),
            configs,
        })))
    })
    .await?
    .map_err(TopicAdminError::from)
}

/// CreateTopics for the spec; -1 partitions or replication factor asks for the brokers' defaults.
pub async fn create(
    address: &str,
    desired: &DesiredTopic,
    partitions: i32,
    replication_factor: i32,
) -> Result<(), TopicAdminError> {
    let configs = desired
        .config
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(&desired.name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor as i16)
            .with_configs(configs)])
        .with_timeout_ms(REQUEST_TIMEOUT_MS);
    with_connection(address, async |c: &mut ClientConnection| {
        let kind = RequestKind::CreateTopics(request);
        let ResponseKind::CreateTopics(response) = call(c, ApiKey::CreateTopics, CREATE_TOPICS_VERSION, kind).await?
        else {
            unreachable!("oxka-protocol decodes a CreateTopics response as CreateTopics");
        };
        Ok(all_succeeded(
            "CreateTopics",
            response.topics.iter().map(|t| (t.error_code, t.error_message.as_ref())),
        ))
    })
    .await?
    .map_err(TopicAdminError::from)
}

/// CreatePartitions up to `count` in all, placed by the controller.
pub async fn create_partitions(address: &str, topic: &str, count: i32) -> Result<(), TopicAdminError> {
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name(topic))
            .with_count(count)
            .with_assignments(None)])
        .with_timeout_ms(REQUEST_TIMEOUT_MS);
    with_connection(address, async |c: &mut ClientConnection| {
        let kind = RequestKind::CreatePartitions(request);
        let ResponseKind::CreatePartitions(response) =
            call(c, ApiKey::CreatePartitions, CREATE_PARTITIONS_VERSION, kind).await?
        else {
            unreachable!("oxka-protocol decodes a CreatePartitions response as CreatePartitions");
        };
        Ok(all_succeeded(
            "CreatePartitions",
            response
                .results
                .iter()
                .map(|r| (r.error_code, r.error_message.as_ref())),
        ))
    })
    .await?
    .map_err(TopicAdminError::from)
}

/// One resource's part of an IncrementalAlterConfigs: a SET per key of `set`, a DELETE per key of
/// `delete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub resource_type: i8,
    pub name: String,
    pub set: BTreeMap<String, String>,
    pub delete: Vec<String>,
}

impl ConfigChange {
    pub fn topic(topic: &str, set: BTreeMap<String, String>, delete: Vec<String>) -> ConfigChange {
        ConfigChange {
            resource_type: RESOURCE_TOPIC,
            name: topic.to_string(),
            set,
            delete,
        }
    }

    /// A broker's dynamic configs (the resource is named by the broker's id).
    pub fn broker(id: i32, set: BTreeMap<String, String>, delete: Vec<String>) -> ConfigChange {
        ConfigChange {
            resource_type: RESOURCE_BROKER,
            name: id.to_string(),
            set,
            delete,
        }
    }
}

fn alter_configs_request(changes: &[ConfigChange]) -> IncrementalAlterConfigsRequest {
    let resources = changes.iter().map(|change| {
        let sets = change.set.iter().map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(OP_SET)
                .with_value(Some(StrBytes::from_string(v.clone())))
        });
        let deletes = change.delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(OP_DELETE)
                // No value, as Kafka's AdminClient sends a DELETE (the crate's default is "").
                .with_value(None)
        });
        AlterConfigsResource::default()
            .with_resource_type(change.resource_type)
            .with_resource_name(StrBytes::from_string(change.name.clone()))
            .with_configs(sets.chain(deletes).collect())
    });
    IncrementalAlterConfigsRequest::default().with_resources(resources.collect())
}

/// IncrementalAlterConfigs of one topic: SET `set`, DELETE `delete`; Kafka applies all or none.
pub async fn alter_configs(
    address: &str,
    topic: &str,
    set: &BTreeMap<String, String>,
    delete: &[String],
) -> Result<(), TopicAdminError> {
    alter_resource_configs(address, &[ConfigChange::topic(topic, set.clone(), delete.to_vec())]).await
}

/// IncrementalAlterConfigs of several resources (topics and brokers) in one request; an error for any
/// of them is returned (Kafka applies each resource's part all or none).
pub async fn alter_resource_configs(address: &str, changes: &[ConfigChange]) -> Result<(), TopicAdminError> {
    if changes.is_empty() {
        return Ok(());
    }
    let request = alter_configs_request(changes);
    with_connection(address, async |c: &mut ClientConnection| {
        let kind = RequestKind::IncrementalAlterConfigs(request);
        let ResponseKind::IncrementalAlterConfigs(response) = call(
            c,
            ApiKey::IncrementalAlterConfigs,
            INCREMENTAL_ALTER_CONFIGS_VERSION,
            kind,
        )
        .await?
        else {
            unreachable!("oxka-protocol decodes an IncrementalAlterConfigs response as IncrementalAlterConfigs");
        };
        Ok(all_succeeded(
            "IncrementalAlterConfigs",
            response
                .responses
                .iter()
                .map(|r| (r.error_code, r.error_message.as_ref())),
        ))
    })
    .await?
    .map_err(TopicAdminError::from)
}

/// DeleteTopics v6 of one topic by name. v6 names topics in `topics` (name or id); `topic_names` is
/// the field of v0-5 and is not sent at v6, so a request that filled it asked about no topic at all.
fn delete_request(topic: &str) -> DeleteTopicsRequest {
    DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default().with_name(Some(name(topic)))])
        .with_timeout_ms(REQUEST_TIMEOUT_MS)
}

/// DeleteTopics of one topic by name; a topic that is already gone counts as deleted.
pub async fn delete(address: &str, topic: &str) -> Result<(), TopicAdminError> {
    let request = delete_request(topic);
    with_connection(address, async |c: &mut ClientConnection| {
        let kind = RequestKind::DeleteTopics(request);
        let ResponseKind::DeleteTopics(response) = call(c, ApiKey::DeleteTopics, DELETE_TOPICS_VERSION, kind).await?
        else {
            unreachable!("oxka-protocol decodes a DeleteTopics response as DeleteTopics");
        };
        let results = response.responses.iter().map(|r| {
            // Already gone: what the finalizer wanted.
            let code = if r.error_code == UNKNOWN_TOPIC_OR_PARTITION {
                0
            } else {
                r.error_code
            };
            (code, r.error_message.as_ref())
        });
        Ok(all_succeeded("DeleteTopics", results))
    })
    .await?
    .map_err(TopicAdminError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_print_as_kafka_prints_them() {
        assert_eq!(topic_id_string(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        // Kafka's Uuid.toString of 0x0123456789abcdef_fedcba9876543210.
        let bytes = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
        ];
        assert_eq!(topic_id_string(&bytes), "ASNFZ4mrze_-3LqYdlQyEA");
    }

    #[test]
    fn delete_topics_v6_carries_the_topic_name() {
        use kafka_protocol::protocol::{Decodable, Encodable};
        let mut bytes = bytes::BytesMut::new();
        delete_request("orders")
            .encode(&mut bytes, DELETE_TOPICS_VERSION)
            .unwrap();
        let decoded = DeleteTopicsRequest::decode(&mut bytes.freeze(), DELETE_TOPICS_VERSION).unwrap();
        let names: Vec<_> = decoded
            .topics
            .iter()
            .map(|t| t.name.as_ref().map(|n| n.as_str()))
            .collect();
        assert_eq!(names, [Some("orders")]);
    }

    #[test]
    fn alter_configs_sets_and_deletes_with_kafkas_operation_codes() {
        let set = BTreeMap::from([("cleanup.policy".to_string(), "delete".to_string())]);
        let request = alter_configs_request(&[ConfigChange::topic("events", set, vec!["retention.ms".to_string()])]);
        let [resource] = &request.resources[..] else {
            panic!("one resource expected: {request:?}")
        };
        assert_eq!((resource.resource_type, resource.resource_name.as_str()), (2, "events"));
        let ops: Vec<_> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.as_str()),
                )
            })
            .collect();
        // AlterConfigOp.OpType in Apache Kafka: SET = 0, DELETE = 1 (2 is APPEND, for list values).
        assert_eq!(ops, [("cleanup.policy", 0, Some("delete")), ("retention.ms", 1, None)]);
    }

    #[test]
    fn a_broker_resource_is_named_by_its_id() {
        let set = BTreeMap::from([("leader.replication.throttled.rate".to_string(), "10".to_string())]);
        let request = alter_configs_request(&[ConfigChange::broker(3, set, Vec::new())]);
        let resource = &request.resources[0];
        // ConfigResource.Type in Apache Kafka: BROKER = 4, TOPIC = 2.
        assert_eq!((resource.resource_type, resource.resource_name.as_str()), (4, "3"));
    }

    #[test]
    fn a_response_without_results_is_a_refusal() {
        let refusal = all_succeeded("DeleteTopics", []).unwrap_err();
        assert_eq!(refusal.code, -1);
        assert!(all_succeeded("DeleteTopics", [(0, None)]).is_ok());
        assert_eq!(
            all_succeeded("CreateTopics", [(0, None), (38, None)]).unwrap_err().code,
            38
        );
    }

    #[test]
    fn refusals_read_as_kafka_tools_print_them() {
        let refusal = KafkaRefusal {
            request: "CreateTopics",
            code: 38,
            message: Some("Unable to replicate the partition 3 time(s): only 1 broker(s) are registered.".into()),
        };
        assert_eq!(
            refusal.to_string(),
            "Kafka refused CreateTopics: INVALID_REPLICATION_FACTOR (38): Unable to replicate the partition 3 time(s): only 1 broker(s) are registered."
        );
    }
}
