//! `oxka tool console-producer` (kafka-console-producer.sh, Kafka's ConsoleProducer): reads standard
//! input line by line (`reader.rs`, Kafka's LineMessageReader and its `--property` keys) and produces
//! each line as a record (`sender.rs`: batching, partitioning, Produce to leaders, retries).
//!
//! Lines are read by a blocking thread into a bounded channel, so a slow cluster slows the reading
//! (backpressure) and linger deadlines fire while standard input is idle. At the end of input every
//! waiting batch is sent. Records that could not be written are reported as Kafka's producer logs
//! them, and the tool then exits 1.

mod reader;
mod sender;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::client_props::{self, Props};
use crate::error::ToolError;
use crate::leaders::Leaders;
use crate::records::compression;
use reader::LineReader;
use sender::{ProducerConfig, Sender};

/// Kafka's default (and only built-in) `--line-reader`.
const LINE_READER: &str = "org.apache.kafka.tools.LineMessageReader";

#[derive(Parser, Debug)]
#[command(
    name = "kafka-console-producer.sh",
    about = "Read lines from standard input and produce each as a record (Kafka's kafka-console-producer.sh)"
)]
pub struct Args {
    /// REQUIRED: the server(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    /// REQUIRED: the topic to produce to.
    #[arg(long)]
    topic: String,
    /// Send each record alone and wait for its answer before reading the next line.
    #[arg(long)]
    sync: bool,
    /// none, gzip, snappy, lz4 or zstd (gzip when given without a value).
    #[arg(long = "compression-codec", num_args = 0..=1, default_missing_value = "gzip")]
    compression_codec: Option<String>,
    /// batch.size: bytes of records per partition before a batch is sent.
    #[arg(long = "batch-size")]
    batch_size: Option<usize>,
    /// retries: how often a batch is retried after a retriable error.
    #[arg(long = "message-send-max-retries")]
    message_send_max_retries: Option<u32>,
    /// retry.backoff.ms.
    #[arg(long = "retry-backoff-ms")]
    retry_backoff_ms: Option<u64>,
    /// linger.ms: how long a batch waits for more records.
    #[arg(long)]
    timeout: Option<u64>,
    /// acks: -1 (all), 0 or 1.
    #[arg(long = "request-required-acks", allow_hyphen_values = true)]
    request_required_acks: Option<String>,
    /// request.timeout.ms.
    #[arg(long = "request-timeout-ms")]
    request_timeout_ms: Option<u64>,
    /// max.block.ms: how long to wait for the topic to appear in Metadata.
    #[arg(long = "max-block-ms")]
    max_block_ms: Option<u64>,
    /// Accepted for compatibility (metadata.max.age.ms); Metadata is refreshed on errors.
    #[arg(long = "metadata-expiry-ms")]
    metadata_expiry_ms: Option<u64>,
    /// Accepted for compatibility (buffer.memory); reading waits while a batch is sent.
    #[arg(long = "max-memory-bytes")]
    max_memory_bytes: Option<u64>,
    /// batch.size (wins over --batch-size, as in Kafka).
    #[arg(long = "max-partition-memory-bytes")]
    max_partition_memory_bytes: Option<usize>,
    /// Accepted for compatibility (send.buffer.bytes).
    #[arg(long = "socket-buffer-size")]
    socket_buffer_size: Option<u64>,
    /// Only org.apache.kafka.tools.LineMessageReader (the default) is supported.
    #[arg(long = "line-reader")]
    line_reader: Option<String>,
    /// Reader properties key=value: parse.key, key.separator, parse.headers, headers.delimiter,
    /// headers.separator, headers.key.separator, ignore.error, null.marker.
    #[arg(long)]
    property: Vec<String>,
    /// A properties file for the reader (--property wins).
    #[arg(long = "reader-config")]
    reader_config: Option<PathBuf>,
    /// Producer properties key=value: acks, linger.ms, batch.size, retries, retry.backoff.ms,
    /// request.timeout.ms, max.block.ms, client.id (security settings are refused).
    #[arg(long = "producer-property")]
    producer_property: Vec<String>,
    /// A producer properties file (--producer-property wins).
    #[arg(long = "producer.config")]
    producer_config: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result<(), ToolError> {
    if let Some(class) = args.line_reader.as_deref().filter(|c| *c != LINE_READER) {
        return Err(ToolError::Usage(format!(
            "--line-reader {class}: only {LINE_READER} is supported natively; use Kafka's tool for custom readers"
        )));
    }
    let mut reader_props = client_props::load(args.reader_config.as_deref(), &[], "--reader-config")?;
    reader_props.insert("topic".to_string(), args.topic.clone());
    reader_props.extend(client_props::parse_flags(&args.property, "--property")?);
    let reader = LineReader::configure(&reader_props).map_err(|e| {
        eprintln!("org.apache.kafka.common.KafkaException: {e}");
        ToolError::Reported
    })?;
    let mut props = client_props::load(
        args.producer_config.as_deref(),
        &args.producer_property,
        "--producer-property",
    )?;
    merge_flags(&args, &mut props);
    let settings = client_props::settings(&args.bootstrap_server, &props, "console-producer")?;
    let config = producer_config(&args, &props)?;
    let mut sender = Sender::new(config, Leaders::new(settings));

    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().split(b'\n') {
            let line = line.map(|mut bytes| {
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
                String::from_utf8_lossy(&bytes).into_owned()
            });
            if lines_tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    let mut number = 0;
    let outcome: Result<(), ToolError> = loop {
        let line = match sender.next_deadline() {
            Some(deadline) => match tokio::time::timeout_at(deadline.into(), lines_rx.recv()).await {
                Ok(line) => line,
                Err(_) => {
                    if let Err(e) = sender.flush(false).await {
                        break Err(e);
                    }
                    continue;
                }
            },
            None => lines_rx.recv().await,
        };
        let Some(line) = line else {
            break Ok(());
        };
        let line = match line {
            Ok(line) => line,
            Err(e) => break Err(ToolError::Usage(format!("cannot read standard input: {e}"))),
        };
        number += 1;
        let record = match reader.read(&line, number) {
            Ok(record) => record,
            Err(e) => {
                eprintln!("org.apache.kafka.common.KafkaException: {e}");
                break Err(ToolError::Reported);
            }
        };
        if let Err(e) = sender.add(record, args.sync).await {
            break Err(e);
        }
    };
    // What was read before an error is still sent, as Kafka's producer is closed (and flushed) on exit.
    let flushed = sender.flush(true).await;
    for failure in &sender.failures {
        eprintln!("ERROR {failure}");
    }
    outcome?;
    flushed?;
    if sender.failures.is_empty() {
        Ok(())
    } else {
        Err(ToolError::Reported)
    }
}

/// Kafka's `maybeMergeOptions`: a flag given sets its property; a flag's default applies only when no
/// property sets the key. `compression.type` is always the flag's (none by default), as in Kafka.
fn merge_flags(args: &Args, props: &mut Props) {
    let mut merge = |key: &str, flag: Option<String>, default: &str| match flag {
        Some(v) => {
            props.insert(key.to_string(), v);
        }
        None => {
            props.entry(key.to_string()).or_insert_with(|| default.to_string());
        }
    };
    merge("linger.ms", args.timeout.map(|v| v.to_string()), "1000");
    merge("acks", args.request_required_acks.clone(), "-1");
    merge(
        "request.timeout.ms",
        args.request_timeout_ms.map(|v| v.to_string()),
        "1500",
    );
    merge("retries", args.message_send_max_retries.map(|v| v.to_string()), "3");
    merge("retry.backoff.ms", args.retry_backoff_ms.map(|v| v.to_string()), "100");
    let batch = args.max_partition_memory_bytes.or(args.batch_size);
    merge("batch.size", batch.map(|v| v.to_string()), "16384");
    merge("max.block.ms", args.max_block_ms.map(|v| v.to_string()), "60000");
    props.insert(
        "compression.type".to_string(),
        args.compression_codec.clone().unwrap_or_else(|| "none".to_string()),
    );
}

fn producer_config(args: &Args, props: &Props) -> Result<ProducerConfig, ToolError> {
    let acks = match props.get("acks").map(|a| a.trim()) {
        Some("all") | Some("-1") => -1,
        Some("1") => 1,
        Some("0") => 0,
        other => {
            return Err(ToolError::Usage(format!(
                "acks={}: expected all, -1, 0 or 1",
                other.unwrap_or_default()
            )))
        }
    };
    let ms = |key: &str| client_props::number::<u64>(props, key, 0).map(Duration::from_millis);
    Ok(ProducerConfig {
        topic: args.topic.clone(),
        acks,
        linger: ms("linger.ms")?,
        batch_size: client_props::number(props, "batch.size", 16384)?,
        compression: compression(props.get("compression.type").map_or("none", String::as_str))?,
        retries: client_props::number(props, "retries", 3)?,
        retry_backoff: ms("retry.backoff.ms")?,
        max_block: ms("max.block.ms")?,
    })
}
