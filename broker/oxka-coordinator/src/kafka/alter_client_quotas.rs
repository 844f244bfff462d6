//! AlterClientQuotas (KIP-546) on the controller: every entry is checked as Kafka's controller checks it
//! (`client_quotas::plan_alteration`); the entries that pass become one `AlterClientQuotas` command
//! (none with `validate_only`). Every entry gets a result: its own refusal, or the command's outcome.

use kafka_protocol::messages::alter_client_quotas_request;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::VersionRange;

use super::{propose, str_bytes, ClientContext};
use crate::client_quotas::{plan_alteration, Alteration};
use crate::image::MetadataCommand;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// The request's entries as `client_quotas` checks them.
pub fn alterations(request: &AlterClientQuotasRequest) -> Vec<Alteration> {
    request
        .entries
        .iter()
        .map(|entry| Alteration {
            entity: entry
                .entity
                .iter()
                .map(|e| (e.entity_type.to_string(), e.entity_name.as_ref().map(|n| n.to_string())))
                .collect(),
            ops: entry
                .ops
                .iter()
                .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
                .collect(),
        })
        .collect()
}

pub async fn handle(ctx: &ClientContext, request: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    let planned = plan_alteration(&alterations(&request));
    let changes: Vec<_> = planned.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let outcome = if changes.is_empty() || request.validate_only {
        Ok(())
    } else {
        propose(ctx, MetadataCommand::AlterClientQuotas { changes })
            .await
            .map(|_| ())
    };
    let entries = request
        .entries
        .iter()
        .zip(planned)
        .map(|(entry, checked)| result_for(entry, checked.err().or_else(|| outcome.clone().err())))
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// An entry's result: its entity as sent, and the refusal if there is one.
pub fn result_for(entry: &alter_client_quotas_request::EntryData, refusal: Option<(i16, String)>) -> EntryData {
    let entity = entry
        .entity
        .iter()
        .map(|e| {
            EntityData::default()
                .with_entity_type(e.entity_type.clone())
                .with_entity_name(e.entity_name.clone())
        })
        .collect();
    let result = EntryData::default().with_entity(entity);
    match refusal {
        None => result,
        Some((code, message)) => result
            .with_error_code(code)
            .with_error_message(Some(str_bytes(&message))),
    }
}
