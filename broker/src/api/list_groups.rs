//! ListGroups: every group this broker coordinates, optionally filtered by state (v4+) and type (v5+,
//! KIP-1043: "classic", "consumer" for KIP-848 groups, "share" for KIP-932 share groups). Before `__consumer_offsets` exists no group can exist, and the answer
//! is an empty list, as Apache Kafka 4's group coordinator gives (not COORDINATOR_NOT_AVAILABLE, which
//! admin clients such as aiokafka's report as a failure).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// DESCRIBE on the cluster lists every group; otherwise only the groups the caller may DESCRIBE, as
/// Kafka lists them.
pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: ListGroupsRequest) -> ListGroupsResponse {
    let access = ctx.access(broker);
    let all = access.allows_cluster(Op::Describe);
    if broker.groups.ready(broker).is_err() {
        return ListGroupsResponse::default();
    }
    let wanted_state = |state: &str| {
        request.states_filter.is_empty() || request.states_filter.iter().any(|s| s.eq_ignore_ascii_case(state))
    };
    let wanted_type = |group_type: &str| {
        request.types_filter.is_empty() || request.types_filter.iter().any(|t| t.eq_ignore_ascii_case(group_type))
    };
    // Share groups: protocol type "share" and type "share", as Kafka lists them.
    let share = broker.groups.share.list().into_iter().map(|(group_id, state)| {
        ListedGroup::default()
            .with_group_id(GroupId(str_bytes(&group_id)))
            .with_protocol_type(str_bytes("share"))
            .with_group_state(str_bytes(state))
            .with_group_type(str_bytes("share"))
    });
    let groups = broker
        .groups
        .list_groups()
        .into_iter()
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&g.group_id)))
                .with_protocol_type(str_bytes(&g.protocol_type))
                .with_group_state(str_bytes(g.state))
                .with_group_type(str_bytes(g.group_type))
        })
        .chain(share)
        .filter(|g| wanted_type(&g.group_type) && wanted_state(&g.group_state))
        .filter(|g| all || access.allows_group(Op::Describe, &g.group_id.0))
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
