//! Kafka's `OffsetCheckpointFile`: one offset per partition, in a file of the log dir (not the
//! partition directory). `LogManager` keeps three per log dir, covering the partitions in it:
//! - `replication-offset-checkpoint`: high watermarks (Kafka's `ReplicaManager` writes it),
//! - `recovery-point-offset-checkpoint`: recovery points,
//! - `log-start-offset-checkpoint`: log start offsets.
//!
//! Format: `0` (version), the entry count, then one `<topic> <partition> <offset>` line per
//! partition (topic names hold no whitespace). Written atomically (temp file, fsync, rename,
//! directory fsync) by `LogManager`'s checkpoint methods; read once by `LogManager::open`.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use super::checkpoint::{sync_dir, write_atomically};
use super::error::LogError;
use super::topic_partition::TopicPartition;

pub(crate) const HIGH_WATERMARK_FILE: &str = "replication-offset-checkpoint";
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
const VERSION: i32 = 0;

/// The file's text for `offsets`, sorted by partition so equal content means equal bytes.
pub(crate) fn render(offsets: &[(TopicPartition, i64)]) -> String {
    let mut sorted: Vec<&(TopicPartition, i64)> = offsets.iter().collect();
    sorted.sort();
    let mut out = format!("{VERSION}\n{}\n", sorted.len());
    for (tp, offset) in sorted {
        out.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    out
}

pub(crate) fn write(log_dir: &Path, name: &str, content: &str) -> Result<(), LogError> {
    write_atomically(log_dir, name, content.as_bytes())?;
    sync_dir(log_dir)
}

/// Reads `name` in `log_dir`; an empty map if the file does not exist.
pub(crate) fn read(log_dir: &Path, name: &str) -> Result<HashMap<TopicPartition, i64>, LogError> {
    let path = log_dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(LogError::io("reading an offset checkpoint", path)(e)),
    };
    parse(&text).map_err(|reason| LogError::CorruptCheckpoint { path, reason })
}

/// Kafka's `CheckpointFile` reader rules: an empty file is empty; the version must be 0; the count
/// must match the entry lines.
fn parse(text: &str) -> Result<HashMap<TopicPartition, i64>, String> {
    let mut lines = text.lines();
    let Some(version) = lines.next() else {
        return Ok(HashMap::new());
    };
    match version.trim().parse::<i32>() {
        Ok(VERSION) => {}
        Ok(other) => return Err(format!("unrecognised version {other}, expected {VERSION}")),
        Err(_) => return Err(format!("version line `{version}` is not a number")),
    }
    let Some(count) = lines.next() else {
        return Ok(HashMap::new());
    };
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| format!("entry count line `{count}` is not a number"))?;
    let mut offsets = HashMap::with_capacity(count.min(1 << 16));
    let mut found = 0;
    for line in lines {
        let mut fields = line.split_whitespace();
        let entry = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(topic), Some(partition), Some(offset), None) => partition
                .parse()
                .ok()
                .zip(offset.parse().ok())
                .map(|(partition, offset)| (TopicPartition::new(topic, partition), offset)),
            _ => None,
        };
        let (tp, offset) =
            entry.ok_or_else(|| format!("malformed line `{line}`, expected `<topic> <partition> <offset>`"))?;
        offsets.insert(tp, offset);
        found += 1;
    }
    if found != count {
        return Err(format!("expected {count} entries but found {found}"));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path(), HIGH_WATERMARK_FILE).unwrap().is_empty());
        let offsets = vec![
            (TopicPartition::new("b-topic", 0), 7),
            (TopicPartition::new("a", 10), 0),
            (TopicPartition::new("a", 2), 42),
        ];
        let text = render(&offsets);
        assert_eq!(text, "0\n3\na 2 42\na 10 0\nb-topic 0 7\n");
        write(dir.path(), HIGH_WATERMARK_FILE, &text).unwrap();
        let back = read(dir.path(), HIGH_WATERMARK_FILE).unwrap();
        assert_eq!(back, offsets.into_iter().collect());
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        for (content, reason) in [
            ("1\n0\n", "unrecognised version 1"),
            ("0\n2\na 0 1\n", "expected 2 entries but found 1"),
            ("0\n1\na 0\n", "malformed line `a 0`"),
        ] {
            fs::write(dir.path().join(RECOVERY_POINT_FILE), content).unwrap();
            let e = read(dir.path(), RECOVERY_POINT_FILE).unwrap_err().to_string();
            assert!(e.contains(RECOVERY_POINT_FILE) && e.contains(reason), "{e}");
        }
    }
}
