//! `oxka tool console-consumer` (kafka-console-consumer.sh, Kafka's ConsoleConsumer): prints the
//! records of a topic (or of the topics an `--include` pattern matches) on standard output with
//! Kafka's DefaultMessageFormatter (`format.rs`), and "Processed a total of N messages" on standard
//! error at the end.
//!
//! Two modes, as Kafka's: `--partition` assigns that partition and starts at `--offset` (no group);
//! otherwise the tool joins a consumer group (`group.rs`; `--group`, or a random
//! `console-consumer-N` without auto-commit, as Kafka's), starts each partition at the group's
//! committed offset or `auto.offset.reset`, and commits what it printed every
//! `auto.commit.interval.ms` and at the end, so the next run of the same group continues there.
//! Records are fetched by `fetcher.rs`. It stops after `--max-messages`, after `--timeout-ms`
//! without a record, or on SIGINT/SIGTERM (committing and leaving the group first).

mod fetcher;
mod format;
mod group;
mod options;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::error::ToolError;
use crate::leaders::Leaders;
use fetcher::{Fetcher, Partition};
use group::GroupMember;
pub use options::Args;
use options::{Mode, Settings};

pub async fn run(args: Args) -> Result<(), ToolError> {
    let settings = options::settings(&args)?;
    let mut count: u64 = 0;
    let result = consume(settings, &mut count).await;
    eprintln!("Processed a total of {count} messages");
    result
}

/// What the consumer holds while it runs.
struct Consumer {
    settings: Settings,
    fetcher: Fetcher,
    member: Option<GroupMember>,
    assigned: Vec<Partition>,
    /// The offset of the next record to print, per partition: what a commit stores.
    consumed: BTreeMap<Partition, i64>,
    last_commit: Instant,
}

async fn consume(settings: Settings, count: &mut u64) -> Result<(), ToolError> {
    let leaders = Leaders::new(settings.client.clone());
    let fetcher = Fetcher::new(
        leaders,
        settings.isolation_level,
        settings.reset,
        settings.partition_max_bytes,
    );
    let mut consumer = Consumer {
        member: settings
            .group
            .clone()
            .map(|g| GroupMember::new(g, settings.client.clone())),
        settings,
        fetcher,
        assigned: Vec::new(),
        consumed: BTreeMap::new(),
        last_commit: Instant::now(),
    };
    let mut signals = Signals::new()?;
    let outcome = tokio::select! {
        r = consumer.run(count) => r,
        _ = signals.wait() => Ok(()),
    };
    // As Kafka's consumer is closed: commit what was printed (auto-commit), then leave the group. A
    // failed closing commit is a warning, as Kafka's consumer logs it, not the tool's failure.
    if let Err(e) = consumer.close().await {
        eprintln!("WARN Synchronous auto-commit of offsets failed: {e}");
    }
    outcome
}

impl Consumer {
    async fn run(&mut self, count: &mut u64) -> Result<(), ToolError> {
        self.start().await?;
        let stdout = std::io::stdout();
        let mut last_record = Instant::now();
        let max = self.settings.max_messages;
        while max.is_none_or(|m| *count < m) {
            if self.settings.timeout.is_some_and(|t| last_record.elapsed() > t) {
                // Kafka's consumer logs a TimeoutException here and ends normally.
                return Ok(());
            }
            self.keep_membership().await?;
            let records = self.fetcher.fetch(&self.assigned).await?;
            if records.is_empty() {
                continue;
            }
            last_record = Instant::now();
            let mut out = Vec::new();
            let mut unprinted: BTreeMap<Partition, i64> = BTreeMap::new();
            for (partition, record) in &records {
                if max.is_some_and(|m| *count >= m) {
                    unprinted.entry(partition.clone()).or_insert(record.offset);
                    continue;
                }
                self.settings.formatter.write(partition.1, record, &mut out);
                *count += 1;
            }
            self.mark_consumed(&unprinted);
            let mut lock = stdout.lock();
            if lock.write_all(&out).and_then(|_| lock.flush()).is_err() {
                eprintln!("Unable to write to standard out, closing consumer.");
                return Ok(());
            }
        }
        Ok(())
    }

    /// What a commit stores for each assigned partition, as Kafka's consumer commits its positions
    /// after rewinding to the first record not printed: that record's offset where one was left
    /// (`unprinted`), else the fetch position (past control batches and aborted records too).
    fn mark_consumed(&mut self, unprinted: &BTreeMap<Partition, i64>) {
        for p in &self.assigned {
            let position = unprinted.get(p).or_else(|| self.fetcher.positions.get(p));
            if let Some(position) = position {
                self.consumed.insert(p.clone(), *position);
            }
        }
    }

    /// Assigns the partition (`--partition`) or joins the group.
    async fn start(&mut self) -> Result<(), ToolError> {
        match self.settings.mode.clone() {
            Mode::Assign {
                topic,
                partition,
                start,
            } => {
                self.assigned = vec![(topic.clone(), partition)];
                self.fetcher.leaders.refresh(Some(&[topic]), false).await?;
                self.fetcher.seek(&self.assigned.clone(), start).await
            }
            Mode::Subscribe(_) => self.join().await,
        }
    }

    /// Joins (or rejoins) the group and positions the partitions it assigns.
    async fn join(&mut self) -> Result<(), ToolError> {
        let topics = self.subscription().await?;
        let member = self.member.as_mut().expect("subscribing means a group");
        let assigned = member.join(&topics, &mut self.fetcher.leaders).await?;
        let client = crate::consumer_groups::client::GroupClient {
            settings: self.settings.client.clone(),
            metadata: Default::default(),
            timeout: Duration::from_secs(30),
        };
        let committed: BTreeMap<Partition, i64> = client
            .committed_offsets(member.group_id())
            .await?
            .into_iter()
            .map(|(p, c)| (p, c.offset))
            .collect();
        // Positions of partitions this member kept are kept (nothing is read twice); new ones start at
        // the group's committed offsets.
        self.fetcher.positions.retain(|p, _| assigned.contains(p));
        self.consumed.retain(|p, _| assigned.contains(p));
        let new: Vec<Partition> = assigned
            .iter()
            .filter(|p| !self.fetcher.positions.contains_key(*p))
            .cloned()
            .collect();
        self.fetcher.leaders.refresh(Some(&topics), false).await?;
        self.fetcher.seek_committed(&new, &committed).await?;
        self.assigned = assigned;
        self.mark_consumed(&BTreeMap::new());
        Ok(())
    }

    /// The topics to subscribe to: the `--topic`, or those the `--include` pattern matches now.
    async fn subscription(&mut self) -> Result<Vec<String>, ToolError> {
        let Mode::Subscribe(subscription) = &self.settings.mode else {
            return Ok(Vec::new());
        };
        match subscription {
            options::Subscription::Topic(topic) => {
                let topics = vec![topic.clone()];
                self.fetcher
                    .leaders
                    .refresh(Some(&topics), self.settings.auto_create)
                    .await?;
                Ok(topics)
            }
            options::Subscription::Pattern(pattern) => {
                self.fetcher.leaders.refresh(None, false).await?;
                Ok(self
                    .fetcher
                    .leaders
                    .topics
                    .keys()
                    .filter(|t| pattern.is_match(t))
                    .cloned()
                    .collect())
            }
        }
    }

    /// Heartbeats and auto-commits when due; joins again when the group rebalances.
    async fn keep_membership(&mut self) -> Result<(), ToolError> {
        let Some(member) = self.member.as_mut() else {
            return Ok(());
        };
        let mut rejoin = member.heartbeat().await?;
        if self.settings.auto_commit && self.last_commit.elapsed() >= self.settings.auto_commit_interval {
            self.last_commit = Instant::now();
            rejoin |= !member.commit(&self.consumed).await?;
        }
        if rejoin {
            if self.settings.auto_commit {
                member.commit(&self.consumed).await?;
            }
            self.join().await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), ToolError> {
        let Some(member) = self.member.as_mut() else {
            return Ok(());
        };
        let committed = if self.settings.auto_commit {
            member.commit(&self.consumed).await.map(|_| ())
        } else {
            Ok(())
        };
        member.leave().await;
        committed
    }
}

/// SIGINT and SIGTERM, which stop the consumer the way Kafka's shutdown hook does.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, ToolError> {
        use tokio::signal::unix::{signal, SignalKind};
        let error = |e: std::io::Error| ToolError::Usage(format!("cannot listen for signals: {e}"));
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).map_err(error)?,
            terminate: signal(SignalKind::terminate()).map_err(error)?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
