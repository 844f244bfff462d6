//! DeleteRecords: raises a partition's log start offset (offset -1 means the high watermark).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::VersionRange;

use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub fn handle(broker: &Broker, _ctx: &RequestContext<'_>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let partition = match broker.leader_partition(topic.name.as_str(), p.partition_index) {
                        Ok(partition) => partition,
                        Err(e) => return result.with_error_code(e.code()),
                    };
                    let mut log = partition.log.lock();
                    let target = if p.offset == -1 { log.high_watermark() } else { p.offset };
                    if target < 0 || target > log.high_watermark() {
                        return result.with_error_code(ResponseError::OffsetOutOfRange.code());
                    }
                    match log.delete_records_before(target) {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(e) => {
                            tracing::error!(
                                topic = topic.name.as_str(),
                                partition = p.partition_index,
                                "DeleteRecords failed: {e}"
                            );
                            result.with_error_code(ResponseError::KafkaStorageError.code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
