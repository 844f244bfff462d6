//! Kafka's `throttle_time_ms` in the responses that carry it: a request quota's throttle (KIP-124) is
//! told to the client in whatever it asked for, as Kafka's `sendResponseMaybeThrottle` does. Versions
//! of a response without the field leave it out when encoded.

use kafka_protocol::messages::ResponseKind;

macro_rules! throttled {
    ($body:expr, $ms:expr, $($kind:ident),* $(,)?) => {
        match $body {
            $(ResponseKind::$kind(r) => r.throttle_time_ms = r.throttle_time_ms.max($ms),)*
            _ => {}
        }
    };
}

/// Raises the response's `throttle_time_ms` to `ms` (responses without the field are left alone).
pub fn raise(body: &mut ResponseKind, ms: i32) {
    throttled!(
        body,
        ms,
        AddOffsetsToTxn,
        AddPartitionsToTxn,
        AlterClientQuotas,
        AlterConfigs,
        AlterPartitionReassignments,
        AlterReplicaLogDirs,
        AlterUserScramCredentials,
        ApiVersions,
        ConsumerGroupDescribe,
        ConsumerGroupHeartbeat,
        CreateAcls,
        CreatePartitions,
        CreateTopics,
        DeleteAcls,
        DeleteGroups,
        DeleteRecords,
        DeleteTopics,
        DescribeAcls,
        DescribeClientQuotas,
        DescribeCluster,
        DescribeConfigs,
        DescribeGroups,
        DescribeLogDirs,
        DescribeProducers,
        DescribeTopicPartitions,
        DescribeTransactions,
        DescribeUserScramCredentials,
        ElectLeaders,
        EndTxn,
        Fetch,
        FindCoordinator,
        Heartbeat,
        IncrementalAlterConfigs,
        InitProducerId,
        JoinGroup,
        LeaveGroup,
        ListGroups,
        ListOffsets,
        ListPartitionReassignments,
        ListTransactions,
        Metadata,
        OffsetCommit,
        OffsetDelete,
        OffsetFetch,
        OffsetForLeaderEpoch,
        Produce,
        SyncGroup,
        TxnOffsetCommit,
    );
}
