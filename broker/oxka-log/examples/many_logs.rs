//! Times `LogManager` start-up and clean shutdown with many partitions (issue 15):
//! `cargo run --release -p oxka-log --example many_logs -- DIR PARTITIONS [SEGMENTS]` creates
//! PARTITIONS logs under DIR (when DIR holds none yet) with SEGMENTS segments of one record each,
//! shuts them down, then opens and shuts them down again, printing each step's time. Run it twice
//! on the same DIR to time a start-up from a warm page cache only.

use std::path::PathBuf;
use std::time::Instant;

use oxka_log::batch::BatchBuilder;
use oxka_log::{LogConfig, LogManager, TopicPartition};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: many_logs DIR PARTITIONS [SEGMENTS]"));
    let partitions: usize = args.next().and_then(|a| a.parse().ok()).expect("PARTITIONS");
    let segments: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    oxka_log::open_files::OpenFiles::global().set_budget(2048);
    // One record per segment: each append after the first rolls.
    let config = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    let started = Instant::now();
    let manager = LogManager::open_with_threads(vec![dir.clone()], config.clone(), now, 1).unwrap();
    println!(
        "open: {} logs in {:.2} s",
        manager.partition_count(),
        started.elapsed().as_secs_f64()
    );
    if manager.partition_count() == 0 {
        let started = Instant::now();
        let tps: Vec<TopicPartition> = (0..partitions)
            .map(|p| TopicPartition::new(format!("t{}", p / 1000), (p % 1000) as i32))
            .collect();
        oxka_log::parallel::for_each(&tps, 8, 16, |tp| {
            let partition = manager.create(tp.clone(), config.clone()).unwrap();
            let mut log = partition.log.lock();
            for _ in 0..segments {
                let batch = BatchBuilder::new(now).record(None, Some(b"hello"), 0).build();
                log.append_as_leader(&batch, 0, now).unwrap();
            }
        });
        println!("create: {partitions} logs in {:.2} s", started.elapsed().as_secs_f64());
    }
    let started = Instant::now();
    manager.shutdown().unwrap();
    println!("shutdown: {:.2} s", started.elapsed().as_secs_f64());
}
