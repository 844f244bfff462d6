//! The process around the roles, as Kafka's scripts provide it: `-daemon` (start in the background,
//! logging to `$LOG_DIR`), a log file that rotates by size, and finding, stopping and listing the oxka
//! processes of this install (`oxka stop`, `oxka status`; `bin/kafka-server-stop.sh` and friends), and
//! the binary started under those scripts' names (`invoked_as`: the images' `bin/` links).

pub mod daemon;
pub mod invoked_as;
pub mod log_file;
pub mod log_limit;
pub mod open_files;
pub mod running;
