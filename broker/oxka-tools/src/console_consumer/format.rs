//! Kafka's `DefaultMessageFormatter`: how the console consumer prints a record, field by field
//! (`print.timestamp`, `print.partition`, `print.offset`, `print.epoch`, `print.headers`,
//! `print.key`, `print.value`), with its separators and null literal. Pure: a record in, bytes out.

use kafka_protocol::records::TimestampType;

use crate::client_props::{flag, Props};
use crate::records::InRecord;

/// The formatter's settings, from `--property` and `--formatter-config`.
#[derive(Debug, Clone)]
pub struct Formatter {
    timestamp: bool,
    key: bool,
    value: bool,
    partition: bool,
    offset: bool,
    epoch: bool,
    headers: bool,
    key_separator: Vec<u8>,
    line_separator: Vec<u8>,
    headers_separator: Vec<u8>,
    null_literal: Vec<u8>,
}

/// The deserializers whose output is the bytes themselves (for UTF-8 text), so the formatter may
/// print bytes as they are; any other class is refused.
const PLAIN_DESERIALIZERS: &[&str] = &[
    "org.apache.kafka.common.serialization.StringDeserializer",
    "org.apache.kafka.common.serialization.ByteArrayDeserializer",
];

impl Formatter {
    /// The formatter for `props`; the error names a property this tool cannot honour.
    pub fn configure(props: &Props) -> Result<Formatter, String> {
        for key in ["key.deserializer", "value.deserializer", "headers.deserializer"] {
            if let Some(class) = props.get(key).filter(|c| !PLAIN_DESERIALIZERS.contains(&c.as_str())) {
                return Err(format!(
                    "{key}={class}: only StringDeserializer and ByteArrayDeserializer are supported natively; use Kafka's tool for other deserializers"
                ));
            }
        }
        if props.contains_key("print.delivery") && flag(props, "print.delivery") == Some(true) {
            return Err(
                "print.delivery=true: delivery counts exist only for share groups, which this tool does not join"
                    .to_string(),
            );
        }
        let bytes = |key: &str, default: &str| props.get(key).map_or(default, String::as_str).as_bytes().to_vec();
        let on = |key: &str, default: bool| flag(props, key).unwrap_or(default);
        Ok(Formatter {
            timestamp: on("print.timestamp", false),
            key: on("print.key", false),
            value: on("print.value", true),
            partition: on("print.partition", false),
            offset: on("print.offset", false),
            epoch: on("print.epoch", false),
            headers: on("print.headers", false),
            key_separator: bytes("key.separator", "\t"),
            line_separator: bytes("line.separator", "\n"),
            headers_separator: bytes("headers.separator", ","),
            null_literal: bytes("null.literal", "null"),
        })
    }

    /// Appends `record` of `partition` to `out`, as Kafka's formatter writes it.
    pub fn write(&self, partition: i32, record: &InRecord, out: &mut Vec<u8>) {
        // Each field is followed by the column separator when any later field is printed.
        let later = |fields: &[bool]| fields.iter().any(|f| *f);
        let separator = |out: &mut Vec<u8>, column: bool| {
            out.extend_from_slice(if column {
                &self.key_separator
            } else {
                &self.line_separator
            })
        };
        if self.timestamp {
            let kind = match record.timestamp_type {
                TimestampType::Creation => "CreateTime",
                TimestampType::LogAppend => "LogAppendTime",
            };
            // v2 batches always have a timestamp type; Kafka's NO_TIMESTAMP is for older formats.
            out.extend_from_slice(format!("{kind}:{}", record.timestamp).as_bytes());
            separator(
                out,
                later(&[
                    self.partition,
                    self.offset,
                    self.epoch,
                    self.headers,
                    self.key,
                    self.value,
                ]),
            );
        }
        if self.partition {
            out.extend_from_slice(format!("Partition:{partition}").as_bytes());
            separator(
                out,
                later(&[self.offset, self.epoch, self.headers, self.key, self.value]),
            );
        }
        if self.offset {
            out.extend_from_slice(format!("Offset:{}", record.offset).as_bytes());
            separator(out, later(&[self.epoch, self.headers, self.key, self.value]));
        }
        if self.epoch {
            // Kafka's ConsoleConsumer hands the formatter a copy of each record without its leader
            // epoch, so Kafka's tool always prints NOT_PRESENT; so does this one.
            out.extend_from_slice(b"Epoch:NOT_PRESENT");
            separator(out, later(&[self.headers, self.key, self.value]));
        }
        if self.headers {
            if record.headers.is_empty() {
                out.extend_from_slice(b"NO_HEADERS");
            }
            for (i, (key, value)) in record.headers.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(&self.headers_separator);
                }
                out.extend_from_slice(key.as_bytes());
                out.push(b':');
                out.extend_from_slice(value.as_deref().unwrap_or(&self.null_literal));
            }
            separator(out, later(&[self.key, self.value]));
        }
        if self.key {
            out.extend_from_slice(record.key.as_deref().unwrap_or(&self.null_literal));
            separator(out, self.value);
        }
        if self.value {
            out.extend_from_slice(record.value.as_deref().unwrap_or(&self.null_literal));
            out.extend_from_slice(&self.line_separator);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record() -> InRecord {
        InRecord {
            offset: 7,
            timestamp: 1000,
            timestamp_type: TimestampType::Creation,
            leader_epoch: 0,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: vec![("a".into(), Some(Bytes::from_static(b"1"))), ("b".into(), None)],
            producer_id: -1,
            transactional: false,
        }
    }

    fn format(pairs: &[(&str, &str)]) -> String {
        let props = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut out = Vec::new();
        Formatter::configure(&props).unwrap().write(2, &record(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_print_in_kafkas_order_and_words() {
        assert_eq!(format(&[]), "v\n");
        assert_eq!(
            format(&[
                ("print.timestamp", "true"),
                ("print.partition", "true"),
                ("print.offset", "true"),
                ("print.headers", "true"),
                ("print.key", "true"),
                ("key.separator", "|"),
            ]),
            "CreateTime:1000|Partition:2|Offset:7|a:1,b:null|null|v\n"
        );
        assert_eq!(
            format(&[("print.key", "true"), ("print.value", "false"), ("null.literal", "-")]),
            "-\n"
        );
        assert_eq!(
            format(&[("print.offset", "true"), ("print.value", "false")]),
            "Offset:7\n"
        );
    }

    #[test]
    fn other_deserializers_are_refused() {
        let props = [("value.deserializer".to_string(), "com.example.Avro".to_string())].into();
        assert!(Formatter::configure(&props).unwrap_err().contains("com.example.Avro"));
    }
}
