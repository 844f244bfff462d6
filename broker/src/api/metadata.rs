//! Metadata: the live (unfenced) brokers with their address for the listener the client came in on, the
//! cluster id, and topics with each partition's leader, leader epoch, replicas and ISR, all from the
//! metadata this broker follows. Unknown topics are created (through the controller) on request when
//! `auto.create.topics.enable` and the client allow it. With an authorizer, topics the caller may not
//! DESCRIBE are left out of an all-topics answer and refused by name (TOPIC_AUTHORIZATION_FAILED), and
//! auto-creation needs CREATE on the cluster or the topic.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource, CLUSTER_NAME};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::coordinator::kafka::image_responses::{describe, response_broker, OPERATIONS_OMITTED};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 12 };

/// How long a Metadata request waits for a topic it auto-creates before answering LEADER_NOT_AVAILABLE.
const AUTO_CREATE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let brokers = broker
        .metadata
        .live_brokers(&ctx.connection.listener)
        .iter()
        .map(|(b, e)| response_broker(b, e))
        .collect();

    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested: Option<Vec<(Option<String>, uuid::Uuid)>> = match request.topics {
        None => None,
        Some(list) if list.is_empty() && ctx.version == 0 => None,
        Some(list) => Some(
            list.into_iter()
                .map(|t| (t.name.map(|n| n.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let allow_auto_create = ctx.version < 4 || request.allow_auto_topic_creation;
    let access = ctx.access(broker);
    let include_cluster_operations = request.include_cluster_authorized_operations;
    let include_topic_operations = request.include_topic_authorized_operations;

    let topics = match requested {
        // All topics: only those the caller may DESCRIBE, as Kafka answers.
        None => {
            let image = broker.metadata.image();
            image
                .topics
                .iter()
                .filter(|(name, _)| access.allows_topic(Op::Describe, name))
                .map(|(name, t)| describe(&image, name, Some(t)))
                .collect()
        }
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (name, topic_id) in list {
                // A lookup by id: Kafka 4's Java client sends the name empty (not null) with the id.
                let name = name.filter(|n| !n.is_empty() || topic_id.is_nil());
                let name = match name {
                    Some(n) => n,
                    None => match broker.metadata.topic_name("", topic_id) {
                        Some(n) => n,
                        None => {
                            out.push(
                                MetadataResponseTopic::default()
                                    .with_topic_id(topic_id)
                                    .with_error_code(ResponseError::UnknownTopicId.code()),
                            );
                            continue;
                        }
                    },
                };
                if !access.allows_topic(Op::Describe, &name) {
                    // Refused whether or not the topic exists, so its existence is not revealed.
                    out.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(str_bytes(&name))))
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                    );
                    continue;
                }
                // Auto-creation needs CREATE on the cluster or on the topic.
                let may_create =
                    allow_auto_create && (access.allows_cluster(Op::Create) || access.allows_topic(Op::Create, &name));
                out.push(lookup_or_create(broker, &name, may_create, allow_auto_create).await);
            }
            out
        }
    };

    // Each described topic's authorized operations, when asked (v8+).
    let topics: Vec<MetadataResponseTopic> = if include_topic_operations {
        topics
            .into_iter()
            .map(|t: MetadataResponseTopic| {
                let operations = match (&t.name, t.error_code) {
                    (Some(name), 0) => access.authorized_operations(Resource::Topic, name.as_str()),
                    _ => OPERATIONS_OMITTED,
                };
                t.with_topic_authorized_operations(operations)
            })
            .collect()
    } else {
        topics
    };

    // Clients send admin requests to the controller they are told about; every broker forwards them to
    // the coordinators' controller, so any live broker will do: this one.
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&broker.metadata.cluster_id())))
        .with_controller_id(BrokerId(broker.broker_id()))
        .with_topics(topics)
        .with_cluster_authorized_operations(if include_cluster_operations {
            access.authorized_operations(Resource::Cluster, CLUSTER_NAME)
        } else {
            OPERATIONS_OMITTED
        })
}

/// `may_create`: the client allows auto-creation and the caller may create the topic; `asked`: the
/// client allows it (a refusal for want of CREATE is TOPIC_AUTHORIZATION_FAILED, as in Kafka).
async fn lookup_or_create(broker: &Broker, name: &str, may_create: bool, asked: bool) -> MetadataResponseTopic {
    let image = broker.metadata.image();
    if let Some(topic) = image.topics.get(name) {
        return describe(&image, name, Some(topic));
    }
    if asked && !may_create && broker.config.auto_create_topics_enable {
        return MetadataResponseTopic::default()
            .with_name(Some(TopicName(str_bytes(name))))
            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
    }
    if !(may_create && broker.config.auto_create_topics_enable) {
        return describe(&image, name, None);
    }
    // Bounded, like Kafka, which answers LEADER_NOT_AVAILABLE while an auto-created topic is not ready:
    // the client asks again, and other topics in the request are not held up by a slow controller.
    let created = tokio::time::timeout(
        AUTO_CREATE_WAIT,
        broker.create_topic(name, -1, -1, Default::default(), Vec::new(), false),
    )
    .await;
    let Ok(created) = created else {
        return MetadataResponseTopic::default()
            .with_name(Some(TopicName(str_bytes(name))))
            .with_error_code(ResponseError::LeaderNotAvailable.code());
    };
    match created {
        Ok(_) => {}
        // Lost a race with another creator: describe what exists now.
        Err(e) if e.error == ResponseError::TopicAlreadyExists => {}
        Err(e) => {
            tracing::info!(topic = name, "auto-creation refused: {}", e.message);
            return MetadataResponseTopic::default()
                .with_name(Some(TopicName(str_bytes(name))))
                .with_error_code(e.error.code());
        }
    }
    let image = broker.metadata.image();
    describe(&image, name, image.topics.get(name))
}
