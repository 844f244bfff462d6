//! Network: listeners, Kafka framing, the memory budget that bounds in-flight bytes, the client
//! side of the protocol for the broker's own requests (`client`), and the minimal HTTP of the
//! metrics endpoints (`http`).

pub mod budget;
pub mod client;
pub mod frame;
pub mod http;
pub mod server;

pub use budget::{MemoryBudget, MemoryPermit};
