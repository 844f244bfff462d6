//! ListTransactions (KIP-664, `kafka-transactions --list`): the transactional ids this broker
//! coordinates, filtered by state, producer id, open duration (v1, KIP-994) and id pattern (v2, a
//! regular expression); only ids the caller may DESCRIBE are listed. An unknown state filter is
//! echoed back in `unknown_state_filters`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::authorize::{Op, Resource};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::txn::TxnState;
use crate::util::now_ms;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let access = ctx.access(broker);
    let all_states: Vec<TxnState> = (0..8).filter_map(TxnState::from_code).collect();
    let (known, unknown): (Vec<&StrBytes>, Vec<&StrBytes>) = request
        .state_filters
        .iter()
        .partition(|f| all_states.iter().any(|s| s.name() == f.as_str()));
    let pattern = match request.transactional_id_pattern.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
        None => None,
    };
    let now = now_ms();
    let states = broker
        .txns
        .list()
        .into_iter()
        .filter(|t| known.is_empty() && unknown.is_empty() || known.iter().any(|f| f.as_str() == t.state.name()))
        .filter(|t| {
            request.producer_id_filters.is_empty() || request.producer_id_filters.contains(&ProducerId(t.producer_id))
        })
        .filter(|t| {
            request.duration_filter < 0
                || t.state == TxnState::Ongoing && now - t.txn_start_ms >= request.duration_filter
        })
        .filter(|t| pattern.as_ref().is_none_or(|r| r.is_match(&t.transactional_id)))
        .filter(|t| access.allows(Op::Describe, Resource::TransactionalId, &t.transactional_id))
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(&t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(str_bytes(t.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown.into_iter().cloned().collect())
        .with_transaction_states(states)
}
