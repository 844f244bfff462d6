//! `partition.metadata`: the file in each partition directory that records which topic (by id) the data
//! belongs to, in Kafka's format (`version: 0` / `topic_id: <base64url id>`, KIP-516). A topic deleted
//! and created again under the same name while a broker was down has a new id; without this file the
//! broker would serve the old topic's records as the new one's.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

pub const FILE_NAME: &str = "partition.metadata";

/// The topic id recorded in `dir`, if the file exists. A file that cannot be parsed is an error.
pub fn read(dir: &Path) -> std::io::Result<Option<Uuid>> {
    let path = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let invalid = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a valid partition.metadata file: {why}", path.display()),
        )
    };
    let mut version = None;
    let mut topic_id = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line.split_once(':').ok_or_else(|| invalid("a line without ':'"))?;
        match key.trim() {
            "version" => version = Some(value.trim().to_string()),
            "topic_id" => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(value.trim())
                    .map_err(|_| invalid("topic_id is not base64"))?;
                let bytes: [u8; 16] = bytes.try_into().map_err(|_| invalid("topic_id is not 16 bytes"))?;
                topic_id = Some(Uuid::from_bytes(bytes));
            }
            _ => {}
        }
    }
    if version.as_deref() != Some("0") {
        return Err(invalid("unsupported or missing version"));
    }
    topic_id.map(Some).ok_or_else(|| invalid("no topic_id"))
}

/// Records `topic_id` in `dir` (written to a temporary file, fsynced, renamed over the old one).
pub fn write(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        write!(
            file,
            "version: 0\ntopic_id: {}\n",
            URL_SAFE_NO_PAD.encode(topic_id.as_bytes())
        )?;
        file.sync_all()
    });
    if let Err(e) = written {
        // A failed write (a full disk) leaves no temporary file behind for the next open to clean.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dir.join(FILE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        write(dir.path(), id).unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, "version: 0\ntopic_id: ASNFZ4mrze8BI0VniavN7w\n");
        assert_eq!(read(dir.path()).unwrap(), Some(id));
        std::fs::write(dir.path().join(FILE_NAME), "version: 0\ntopic_id: nope!\n").unwrap();
        assert!(read(dir.path()).unwrap_err().to_string().contains("base64"));
    }
}
