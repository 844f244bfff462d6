//! Where the console tools send Produce and Fetch: one Metadata answer turned into each partition's
//! leader, and one open connection per broker, kept while the tool runs (a producer or consumer talks
//! to the same leaders for its whole life). A `NOT_LEADER_OR_FOLLOWER` answer makes the caller
//! `refresh` and try again, as Kafka's clients do.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::ToolError;
use crate::settings::ClientSettings;

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION and LEADER_NOT_AVAILABLE: retriable while a topic is created.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;

/// The partitions of one topic and their leaders (-1: none).
#[derive(Debug, Clone, Default)]
pub struct TopicLeaders {
    pub leaders: BTreeMap<i32, i32>,
}

/// Leaders of the topics a tool uses and the connections to them. Owned by the tool's single task.
pub struct Leaders {
    settings: ClientSettings,
    brokers: BTreeMap<i32, String>,
    pub topics: BTreeMap<String, TopicLeaders>,
    /// The last Metadata answer (for ListOffsets and the group coordinator lookup).
    pub metadata: MetadataResponse,
    connections: BTreeMap<i32, Admin>,
}

impl Leaders {
    pub fn new(settings: ClientSettings) -> Leaders {
        Leaders {
            settings,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            metadata: MetadataResponse::default(),
            connections: BTreeMap::new(),
        }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Asks Metadata for `topics` (None: all), creating missing ones when `auto_create` (as a
    /// producer does); returns topics the answer had an error for, with Kafka's code.
    pub async fn refresh(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<BTreeMap<String, i16>, ToolError> {
        let mut admin = Admin::bootstrap(&self.settings).await?;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(auto_create);
        let metadata: MetadataResponse = admin.send(request, 4).await?;
        self.brokers = metadata
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        let mut errors = BTreeMap::new();
        self.metadata = metadata.clone();
        for topic in metadata.topics {
            let Some(name) = topic.name.map(|n| n.to_string()) else {
                continue;
            };
            if topic.is_internal && topics.is_none() {
                continue;
            }
            if topic.error_code != 0 {
                errors.insert(name.clone(), topic.error_code);
                self.topics.remove(&name);
                continue;
            }
            let leaders = topic
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0))
                .collect();
            self.topics.insert(name, TopicLeaders { leaders });
        }
        Ok(errors)
    }

    /// The leader of `topic`-`partition`, if it has one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topics
            .get(topic)?
            .leaders
            .get(&partition)
            .copied()
            .filter(|l| *l >= 0)
    }

    /// The open connection to broker `id` (connecting first).
    pub async fn connection(&mut self, id: i32) -> Result<&mut Admin, ToolError> {
        if !self.connections.contains_key(&id) {
            let address = self
                .brokers
                .get(&id)
                .cloned()
                .ok_or_else(|| ToolError::Kafka(format!("broker {id} is not in the cluster's Metadata answer")))?;
            let admin = Admin::connect(&address, &self.settings).await?;
            self.connections.insert(id, admin);
        }
        Ok(self.connections.get_mut(&id).expect("inserted above"))
    }

    /// Forgets the connection to `id` (after a failed call, whose answer may still be in flight).
    pub fn drop_connection(&mut self, id: i32) {
        self.connections.remove(&id);
    }
}
