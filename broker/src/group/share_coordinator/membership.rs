//! The membership side of `ShareCoordinator`: the share groups' steps (heartbeat, session expiry,
//! initialized share partitions, deletion, load and unload), each handing the records it changed
//! (`share::records::changes`) to a `persist` callback, the group coordinator's append to
//! `__consumer_offsets`, before anyone hears of it; a step whose records cannot be written is undone.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::{Inner, ShareCoordinator, SharePartitionKey};
use crate::group::share::group::{
    ShareGroup, ShareHeartbeat, ShareHeartbeatAnswer, ShareHeartbeatError, TopicPartitionsInfo,
};
use crate::group::share::records::{self, Record};

impl ShareCoordinator {
    /// One ShareGroupHeartbeat. Members whose session expired leave first; a member that leaves
    /// gives back what it holds in this broker's share partitions. The step's records
    /// (`share::records::changes`) go to `persist` (an append to `__consumer_offsets`) before the
    /// member hears the answer; when that fails the step is undone. Returns, besides the answer, the
    /// share partitions to initialize now (newly subscribed, not yet initialized and no
    /// initialization of them under way), with the group epoch to initialize them at: they were
    /// recorded as initializing, and the caller reports the outcome (`initialized`, `init_failed`).
    pub fn heartbeat(
        &self,
        group_id: &str,
        hb: ShareHeartbeat,
        topics: &BTreeMap<String, (Uuid, i32)>,
        now_ms: i64,
        persist: impl FnOnce(Vec<Record>) -> Result<(), ResponseError>,
    ) -> Result<(ShareHeartbeatAnswer, Option<(i32, TopicPartitionsInfo)>), ShareHeartbeatError> {
        let mut inner = self.inner.lock();
        let before = inner.groups.get(group_id).cloned();
        let leaving = (hb.member_epoch == -1).then(|| hb.member_id.clone());
        let group = inner.groups.entry(group_id.to_string()).or_default();
        let mut gone = group.expire_members(now_ms, self.session_timeout_ms, topics);
        let joining =
            (hb.member_epoch == 0 && !group.members.contains_key(&hb.member_id)).then(|| hb.member_id.clone());
        let answer = group.heartbeat(hb, topics, self.max_size, now_ms);
        let mut to_init = TopicPartitionsInfo::new();
        if answer.is_ok() {
            for (topic, (name, partitions)) in group.partitions_to_initialize(topics) {
                let free: BTreeSet<i32> = partitions
                    .into_iter()
                    .filter(|p| !inner.initializing_now.contains(&(group_id.to_string(), topic, *p)))
                    .collect();
                if !free.is_empty() {
                    to_init.insert(topic, (name, free));
                }
            }
        }
        let group = inner.groups.get_mut(group_id).expect("inserted above");
        group.mark_initializing(&to_init);
        if before.is_none() && answer.is_err() {
            inner.groups.remove(group_id);
            return answer.map(|a| (a, None));
        }
        let records = records::changes(group_id, before.as_ref(), Some(group));
        if !records.is_empty() {
            if let Err(e) = persist(records) {
                match before {
                    Some(b) => inner.groups.insert(group_id.to_string(), b),
                    None => inner.groups.remove(group_id),
                };
                return Err(ShareHeartbeatError::NotPersisted(e));
            }
        }
        let group_epoch = group.group_epoch;
        if let (Some(member), Ok(_)) = (joining, &answer) {
            tracing::info!(group = group_id, member, "share group member joined");
        }
        gone.extend(leaving);
        for member in gone {
            tracing::info!(group = group_id, member, "share group member left");
            self.release_member(&mut inner, group_id, &member);
        }
        for (topic, (_, partitions)) in &to_init {
            for p in partitions {
                inner.initializing_now.insert((group_id.to_string(), *topic, *p));
            }
        }
        let answer = answer?;
        Ok((answer, (!to_init.is_empty()).then_some((group_epoch, to_init))))
    }

    /// The share partitions' state is initialized in their share coordinators: they move from
    /// initializing to initialized, in memory and (through `persist`) in the log.
    pub fn initialized(
        &self,
        group_id: &str,
        partitions: &TopicPartitionsInfo,
        persist: impl FnOnce(Vec<Record>) -> Result<(), ResponseError>,
    ) -> Result<(), ResponseError> {
        let mut inner = self.inner.lock();
        inner.end_initialization(group_id, partitions);
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Ok(());
        };
        let before = group.clone();
        if !group.mark_initialized(partitions) {
            return Ok(());
        }
        let records = records::changes(group_id, Some(&before), Some(group));
        if let Err(e) = persist(records) {
            *group = before;
            return Err(e);
        }
        Ok(())
    }

    /// AlterShareGroupOffsets and DeleteShareGroupOffsets change which share partitions have state
    /// (`edit`, on the group's `ShareGroupStatePartitionMetadata`); the change goes to `persist`.
    /// With `create`, an absent group is made (an empty one, as Kafka's alter makes it). Whether
    /// anything changed.
    pub fn edit_state_partitions(
        &self,
        group_id: &str,
        create: bool,
        edit: impl FnOnce(&mut ShareGroup),
        persist: impl FnOnce(Vec<Record>) -> Result<(), ResponseError>,
    ) -> Result<bool, ResponseError> {
        let mut inner = self.inner.lock();
        let before = inner.groups.get(group_id).cloned();
        if before.is_none() && !create {
            return Ok(false);
        }
        let group = inner.groups.entry(group_id.to_string()).or_default();
        edit(group);
        let records = records::changes(group_id, before.as_ref(), Some(group));
        if records.is_empty() {
            return Ok(false);
        }
        if let Err(e) = persist(records) {
            match before {
                Some(b) => inner.groups.insert(group_id.to_string(), b),
                None => inner.groups.remove(group_id),
            };
            return Err(e);
        }
        Ok(true)
    }

    /// An initialization failed: the partitions stay initializing, tried again at a later heartbeat.
    pub fn init_failed(&self, group_id: &str, partitions: &TopicPartitionsInfo) {
        self.inner.lock().end_initialization(group_id, partitions);
    }

    /// Members whose session ended leave their groups (the share-partition timer's clock, so an
    /// idle group's members expire too, also after a load); each group's records go to `persist`
    /// (a failure is logged: memory is ahead of the log until the group's next change).
    pub fn expire_members(
        &self,
        topics: &BTreeMap<String, (Uuid, i32)>,
        now_ms: i64,
        mut persist: impl FnMut(&str, Vec<Record>) -> Result<(), ResponseError>,
    ) {
        let mut inner = self.inner.lock();
        let ids: Vec<String> = inner.groups.keys().cloned().collect();
        for group_id in ids {
            let group = inner.groups.get_mut(&group_id).expect("listed");
            let before = group.clone();
            let gone = group.expire_members(now_ms, self.session_timeout_ms, topics);
            if gone.is_empty() {
                continue;
            }
            let records = records::changes(&group_id, Some(&before), Some(group));
            if let Err(e) = persist(&group_id, records) {
                if let Some(count) = self.persist_errors.should_log("expire") {
                    tracing::error!(
                        group = group_id,
                        "could not record expired share group members: {e:?}{}",
                        self.persist_errors.repeats(count)
                    );
                }
            }
            for member in gone {
                tracing::info!(group = group_id, member, "share group member left (session expired)");
                self.release_member(&mut inner, &group_id, &member);
            }
        }
    }

    /// Installs the share groups a load of `__consumer_offsets` partitions rebuilt; `replaced`
    /// says which groups those partitions hold (their old copies are dropped first).
    pub fn install_groups(&self, replaced: impl Fn(&str) -> bool, groups: Vec<(String, ShareGroup)>) {
        let mut inner = self.inner.lock();
        inner.groups.retain(|id, _| !replaced(id));
        for (id, group) in groups {
            inner.groups.insert(id, group);
        }
    }

    /// Share partitions recorded as initializing in the groups `taken_over` selects (those of the
    /// `__consumer_offsets` partitions this broker just became leader of) with no initialization under
    /// way here: claimed, as a heartbeat claims them, with each group's epoch, for the caller to
    /// initialize and report (`initialized`, `init_failed`), so partitions a failed coordinator left
    /// initializing do not wait for a member's heartbeat.
    fn claim_initializing(&self, taken_over: impl Fn(&str) -> bool) -> Vec<(String, i32, TopicPartitionsInfo)> {
        let mut inner = self.inner.lock();
        let mut claimed = Vec::new();
        for (id, group) in inner.groups.iter().filter(|(id, _)| taken_over(id)) {
            let mut free = TopicPartitionsInfo::new();
            for (topic, (name, partitions)) in &group.state_partitions.initializing {
                let partitions: BTreeSet<i32> = partitions
                    .iter()
                    .copied()
                    .filter(|p| !inner.initializing_now.contains(&(id.clone(), *topic, *p)))
                    .collect();
                if !partitions.is_empty() {
                    free.insert(*topic, (name.clone(), partitions));
                }
            }
            if !free.is_empty() {
                claimed.push((id.clone(), group.group_epoch, free));
            }
        }
        for (id, _, partitions) in &claimed {
            for (topic, (_, ps)) in partitions {
                for p in ps {
                    inner.initializing_now.insert((id.clone(), *topic, *p));
                }
            }
        }
        claimed
    }

    /// After this broker took over `__consumer_offsets` partitions: claims what the groups
    /// `taken_over` selects left initializing (`claim_initializing`) and hands it to the
    /// share-partition timer, which starts the initializations (`take_initializations`).
    pub fn initialize_after_takeover(&self, taken_over: impl Fn(&str) -> bool) {
        let claimed = self.claim_initializing(taken_over);
        if !claimed.is_empty() {
            self.inner.lock().takeover_inits.extend(claimed);
            self.timer_wake.notify_one();
        }
    }

    /// The initializations `initialize_after_takeover` queued: group, group epoch, partitions.
    pub fn take_initializations(&self) -> Vec<(String, i32, TopicPartitionsInfo)> {
        std::mem::take(&mut self.inner.lock().takeover_inits)
    }

    /// Drops the share groups of `__consumer_offsets` partitions this broker no longer leads.
    pub fn unload_groups(&self, gone: impl Fn(&str) -> bool) {
        let mut inner = self.inner.lock();
        inner.groups.retain(|id, _| !gone(id));
        inner.initializing_now.retain(|(id, _, _)| !gone(id));
        inner.takeover_inits.retain(|(id, _, _)| !gone(id));
    }

    /// DeleteGroups of a share group: its share partitions with state (to delete in the share
    /// coordinators first, as Kafka does), or the error: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP.
    pub fn deletable(&self, group_id: &str) -> Result<Vec<SharePartitionKey>, ResponseError> {
        let inner = self.inner.lock();
        let group = inner.groups.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        if !group.members.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        let sp = &group.state_partitions;
        Ok(sp
            .initialized
            .iter()
            .chain(&sp.initializing)
            .flat_map(|(topic, (_, ps))| ps.iter().map(|p| (group_id.to_string(), *topic, *p)))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect())
    }

    /// Deletes an empty share group: its tombstones go to `persist`; then it is forgotten here,
    /// with its share partitions on this broker.
    pub fn delete_group(
        &self,
        group_id: &str,
        persist: impl FnOnce(Vec<Record>) -> Result<(), ResponseError>,
    ) -> Result<(), ResponseError> {
        let mut inner = self.inner.lock();
        let group = inner.groups.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        if !group.members.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        persist(records::changes(group_id, Some(group), None))?;
        inner.groups.remove(group_id);
        inner.partitions.retain(|k, _| k.0 != group_id);
        inner.loaded.retain(|k, _| k.0 != group_id);
        Ok(())
    }
}

impl Inner {
    fn end_initialization(&mut self, group_id: &str, partitions: &TopicPartitionsInfo) {
        for (topic, (_, ps)) in partitions {
            for p in ps {
                self.initializing_now.remove(&(group_id.to_string(), *topic, *p));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::group::config::GroupConfig;
    use crate::group::records::{decode_key, RecordKey, ShareRecordKind};

    fn join(member: &str) -> ShareHeartbeat {
        ShareHeartbeat {
            member_id: member.to_string(),
            member_epoch: 0,
            rack_id: None,
            subscribed_topic_names: Some(vec!["jobs".to_string()]),
            client_id: "c".to_string(),
            client_host: "/127.0.0.1".to_string(),
        }
    }

    fn topics() -> BTreeMap<String, (Uuid, i32)> {
        BTreeMap::from([("jobs".to_string(), (Uuid::from_u128(9), 2))])
    }

    fn kinds(records: &[Record]) -> Vec<ShareRecordKind> {
        records
            .iter()
            .map(|(k, _)| match decode_key(k).unwrap() {
                RecordKey::Share { kind, .. } => kind,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_step_whose_records_cannot_be_written_is_undone() {
        let sc = ShareCoordinator::new(&GroupConfig::default());
        let refused = sc.heartbeat("g", join("a"), &topics(), 0, |_| {
            Err(ResponseError::NotLeaderOrFollower)
        });
        assert_eq!(
            refused,
            Err(ShareHeartbeatError::NotPersisted(ResponseError::NotLeaderOrFollower))
        );
        assert!(!sc.has_group("g"), "no group was made");
        sc.heartbeat("g", join("a"), &topics(), 0, |_| Ok(())).unwrap();
        let before = sc.describe("g").unwrap();
        let refused = sc.heartbeat("g", join("b"), &topics(), 1, |_| {
            Err(ResponseError::NotLeaderOrFollower)
        });
        assert!(refused.is_err());
        assert_eq!(sc.describe("g").unwrap(), before, "b's join is undone");
    }

    #[test]
    fn a_new_coordinator_claims_the_partitions_its_predecessor_left_initializing() {
        let sc = ShareCoordinator::new(&GroupConfig::default());
        let (_, init) = sc.heartbeat("g", join("a"), &topics(), 0, |_| Ok(())).unwrap();
        assert!(init.is_some());
        assert!(
            sc.claim_initializing(|_| true).is_empty(),
            "an initialization under way here is not claimed twice"
        );
        // The coordinator dies mid-initialization; its successor loads the group from the log.
        let group = sc.inner.lock().groups["g"].clone();
        let successor = ShareCoordinator::new(&GroupConfig::default());
        successor.install_groups(|_| false, vec![("g".to_string(), group)]);
        assert!(
            successor.claim_initializing(|g| g != "g").is_empty(),
            "only groups taken over"
        );
        let claimed = successor.claim_initializing(|g| g == "g");
        let jobs = Uuid::from_u128(9);
        assert_eq!(
            claimed,
            vec![(
                "g".to_string(),
                1,
                TopicPartitionsInfo::from([(jobs, ("jobs".to_string(), BTreeSet::from([0, 1])))])
            )]
        );
        assert!(successor.claim_initializing(|_| true).is_empty(), "claimed once");
        // A member's heartbeat meanwhile starts none of them either.
        let (_, init) = successor.heartbeat("g", join("b"), &topics(), 1, |_| Ok(())).unwrap();
        assert_eq!(init, None);
        // Through the timer: a takeover queues what it claims, once.
        let third = ShareCoordinator::new(&GroupConfig::default());
        third.install_groups(|_| false, vec![("g".to_string(), sc.inner.lock().groups["g"].clone())]);
        third.initialize_after_takeover(|g| g == "g");
        assert_eq!(third.take_initializations(), claimed);
        assert!(third.take_initializations().is_empty());
        third.initialize_after_takeover(|_| true);
        assert!(third.take_initializations().is_empty(), "already under way");
    }

    #[test]
    fn subscribed_partitions_are_initialized_once() {
        let sc = ShareCoordinator::new(&GroupConfig::default());
        let written = RefCell::new(Vec::new());
        let persist = |records: Vec<Record>| {
            written.borrow_mut().extend(records);
            Ok(())
        };
        let (_, init) = sc.heartbeat("g", join("a"), &topics(), 0, persist).unwrap();
        let (epoch, partitions) = init.expect("the new topic's partitions are initialized");
        assert_eq!(epoch, 1);
        let jobs = Uuid::from_u128(9);
        assert_eq!(partitions[&jobs], ("jobs".to_string(), BTreeSet::from([0, 1])));
        assert!(kinds(&written.borrow()).contains(&ShareRecordKind::StatePartitionMetadata));
        assert_eq!(
            sc.state_topics("g"),
            BTreeSet::from(["jobs".to_string()]),
            "initializing"
        );
        // While the initialization is under way, another member's join starts none.
        let (_, init) = sc.heartbeat("g", join("b"), &topics(), 1, persist).unwrap();
        assert_eq!(init, None);
        // It failed: the next heartbeat tries again.
        sc.init_failed("g", &partitions);
        let (_, init) = sc.heartbeat("g", join("c"), &topics(), 2, persist).unwrap();
        assert_eq!(init.map(|(_, p)| p), Some(partitions.clone()));
        written.borrow_mut().clear();
        sc.initialized("g", &partitions, persist).unwrap();
        assert_eq!(kinds(&written.borrow()), [ShareRecordKind::StatePartitionMetadata]);
        let (_, init) = sc.heartbeat("g", join("d"), &topics(), 3, persist).unwrap();
        assert_eq!(init, None, "initialized partitions are not initialized again");
        let g = sc.describe("g").unwrap();
        assert!(g.state_partitions.initializing.is_empty());
        assert_eq!(g.state_partitions.initialized[&jobs].1, BTreeSet::from([0, 1]));
    }

    #[test]
    fn altered_and_deleted_offsets_change_the_initialized_partitions() {
        let sc = ShareCoordinator::new(&GroupConfig::default());
        let jobs = Uuid::from_u128(9);
        let info: TopicPartitionsInfo = BTreeMap::from([(jobs, ("jobs".to_string(), BTreeSet::from([0, 1])))]);
        // Deleting offsets of a group that does not exist makes none.
        let changed = sc.edit_state_partitions("g", false, |g| g.forget_state_topic(&jobs), |_| Ok(()));
        assert_eq!(changed, Ok(false));
        assert!(!sc.has_group("g"));
        // Altering makes the (empty) group, its partitions initialized: a member's join starts none.
        let altered = sc.edit_state_partitions(
            "g",
            true,
            |g| {
                g.mark_initialized(&info);
            },
            |_| Ok(()),
        );
        assert_eq!(altered, Ok(true));
        let (_, init) = sc.heartbeat("g", join("a"), &topics(), 0, |_| Ok(())).unwrap();
        assert_eq!(init, None);
        // Deleted: a later subscription initializes the topic again.
        sc.edit_state_partitions("g", false, |g| g.forget_state_topic(&jobs), |_| Ok(()))
            .unwrap();
        assert!(sc.state_topics("g").is_empty());
        let (_, init) = sc.heartbeat("g", join("b"), &topics(), 1, |_| Ok(())).unwrap();
        assert_eq!(init.map(|(_, p)| p), Some(info));
    }

    #[test]
    fn an_empty_group_is_deleted_with_tombstones_and_loads_and_unloads() {
        let sc = ShareCoordinator::new(&GroupConfig::default());
        sc.heartbeat("g", join("a"), &topics(), 0, |_| Ok(())).unwrap();
        assert_eq!(sc.deletable("g"), Err(ResponseError::NonEmptyGroup));
        let mut leave = join("a");
        leave.member_epoch = -1;
        leave.subscribed_topic_names = None;
        sc.heartbeat("g", leave, &topics(), 1, |_| Ok(())).unwrap();
        assert_eq!(
            sc.deletable("g").unwrap().len(),
            2,
            "the initializing partitions' state is deleted too"
        );
        let group = sc.describe("g").unwrap();
        let mut tombstones = Vec::new();
        sc.delete_group("g", |r| {
            tombstones = r;
            Ok(())
        })
        .unwrap();
        assert!(!tombstones.is_empty() && tombstones.iter().all(|(_, v)| v.is_none()));
        assert!(!sc.has_group("g"));
        sc.install_groups(|_| true, vec![("g".to_string(), group)]);
        assert!(sc.has_group("g"));
        sc.unload_groups(|id| id == "g");
        assert!(!sc.has_group("g"));
    }
}
