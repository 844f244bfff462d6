//! DescribeLogDirs: every log dir with the partitions it holds and their sizes.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 4 };

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    // DESCRIBE on the cluster; without it Kafka answers the error (v3+) and no directories.
    if !ctx.access(broker).allows_cluster(Op::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(list) => list
            .iter()
            .any(|t| t.topic.as_str() == topic && t.partitions.contains(&partition)),
    };
    // dir → topic → partitions
    let mut by_dir: BTreeMap<String, BTreeMap<String, Vec<DescribeLogDirsPartition>>> = broker
        .config
        .log_dirs
        .iter()
        .map(|d| (d.display().to_string(), BTreeMap::new()))
        .collect();
    for partition in broker.logs.partitions() {
        let tp = partition.topic_partition();
        if !wanted(&tp.topic, tp.partition) {
            continue;
        }
        let size = partition.log.lock().size_bytes() as i64;
        let dir = partition.log_dir().display().to_string();
        by_dir
            .entry(dir)
            .or_default()
            .entry(tp.topic.clone())
            .or_default()
            .push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_partition_size(size),
            );
    }
    let results = by_dir
        .into_iter()
        .map(|(dir, topics)| {
            let (total, usable) = crate::disk::disk_space(std::path::Path::new(&dir)).unwrap_or((-1, -1));
            DescribeLogDirsResult::default()
                .with_log_dir(str_bytes(&dir))
                .with_total_bytes(total)
                .with_usable_bytes(usable)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            DescribeLogDirsTopic::default()
                                .with_name(TopicName(str_bytes(&name)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}
