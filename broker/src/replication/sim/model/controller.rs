//! The controller's side of the simulation: AlterPartition (`kafka::alter_partition`), registrations,
//! heartbeats and the liveness duty (`kafka::broker_registration`, `broker_heartbeat`,
//! `fence_expired_brokers`), all over the real `ClusterImage`.

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData};
use kafka_protocol::messages::BrokerId;

use super::*;
use crate::coordinator::kafka::{alter_partition, expired_brokers};

impl Sim {
    /// The controller's AlterPartition handler (`alter_partition::handle`/`alter`): broker epoch, then
    /// `validate`, then the command through `apply` (fenced again by partition epoch).
    pub(super) fn alter_partition(
        &mut self,
        leader: i32,
        broker_epoch: i64,
        proposal: &IsrProposal,
        member_epochs: &[i64],
    ) -> Result<(Vec<i32>, i32), ResponseError> {
        match self.controller.image.brokers.get(&leader) {
            None => return Err(ResponseError::BrokerIdNotRegistered),
            Some(b) if b.epoch != broker_epoch => return Err(ResponseError::StaleBrokerEpoch),
            Some(_) => {}
        }
        let members = proposal
            .isr
            .iter()
            .zip(member_epochs)
            .map(|(id, epoch)| {
                BrokerState::default()
                    .with_broker_id(BrokerId(*id))
                    .with_broker_epoch(*epoch)
            })
            .collect();
        let wanted = PartitionData::default()
            .with_partition_index(0)
            .with_leader_epoch(proposal.leader_epoch)
            .with_new_isr_with_epochs(members)
            .with_partition_epoch(proposal.partition_epoch);
        let (current, isr) = alter_partition::validate(&self.controller.image, 3, leader, TOPIC, &wanted)?;
        if isr == current.isr {
            return Ok((isr, current.partition_epoch));
        }
        let command = MetadataCommand::AlterPartition {
            topic: TOPIC.into(),
            partition: 0,
            partition_epoch: current.partition_epoch,
            leader,
            isr: isr.clone(),
        };
        match self.controller.commit(&command) {
            MetadataResponse::PartitionChanged { partition_epoch, .. } => {
                self.log(format!(
                    "controller: ISR {isr:?} from leader {leader} (partition epoch {partition_epoch})"
                ));
                Ok((isr, partition_epoch))
            }
            _ => Err(ResponseError::InvalidUpdateVersion),
        }
    }

    /// The controller: registrations and heartbeats (`broker_registration`, `broker_heartbeat`) from
    /// every connected live broker, and the liveness duty every second (`fence_expired_brokers`).
    pub(super) fn controller_tick(&mut self) {
        let now = self.now(CONTROLLER);
        for i in 0..self.brokers.len() {
            let (id, alive, epoch) = (self.brokers[i].id, self.brokers[i].alive, self.brokers[i].broker_epoch);
            if !alive || !self.net.connected(id, CONTROLLER) || self.rng.chance(self.net.drop_per_mille) {
                continue;
            }
            let broker_now = self.now(id);
            if epoch < 0 {
                self.register(i, now);
            } else if broker_now >= self.brokers[i].next_heartbeat_ms {
                self.brokers[i].next_heartbeat_ms = broker_now + HEARTBEAT_MS;
                self.heartbeat(i, now);
            }
        }
        if now >= self.controller.next_tick_ms {
            self.controller.next_tick_ms = now + LIVENESS_TICK_MS;
            let image = self.controller.image.clone();
            let expired = expired_brokers(&image, &mut self.controller.heartbeats, now, SESSION_TIMEOUT_MS);
            for (broker_id, broker_epoch) in expired {
                self.controller.commit(&MetadataCommand::SetBrokerFenced {
                    broker_id,
                    broker_epoch,
                    fenced: true,
                });
                self.log(format!("controller: fenced {broker_id} (heartbeats stopped)"));
            }
            self.controller.reconcile();
        }
    }

    pub(super) fn register(&mut self, i: usize, now: i64) {
        let id = self.brokers[i].id;
        let c = &mut self.controller;
        if let Some(existing) = c.image.brokers.get(&id) {
            let live = c.heartbeats.get(&id).is_some_and(|t| now - t <= SESSION_TIMEOUT_MS);
            if !existing.fenced && live {
                return; // DUPLICATE_BROKER_REGISTRATION: the old incarnation still counts as alive.
            }
        }
        c.incarnations += 1;
        if let MetadataResponse::BrokerRegistered { broker_epoch } = c.commit(&register(id, c.incarnations)) {
            c.heartbeats.insert(id, now);
            self.brokers[i].broker_epoch = broker_epoch;
            self.log(format!("broker {id} registered, epoch {broker_epoch}"));
        }
    }

    pub(super) fn heartbeat(&mut self, i: usize, now: i64) {
        let b = &self.brokers[i];
        let (id, epoch) = (b.id, b.broker_epoch);
        let metadata_offset = self.controller.history[b.image_version].0 as i64;
        let c = &mut self.controller;
        let Some(registered) = c.image.brokers.get(&id) else {
            return;
        };
        if registered.epoch != epoch {
            return;
        }
        c.heartbeats.insert(id, now);
        if registered.fenced && metadata_offset >= epoch {
            c.commit(&MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch: epoch,
                fenced: false,
            });
            c.reconcile();
            self.log(format!("controller: unfenced {id}"));
        }
    }
}
