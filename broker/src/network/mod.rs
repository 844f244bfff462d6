//! Network: listeners, Kafka framing, the memory budget that bounds in-flight bytes, and the client
//! side of the protocol for the broker's own requests (`client`).

pub mod budget;
pub mod client;
pub mod frame;
pub mod server;

pub use budget::{MemoryBudget, MemoryPermit};
pub use server::ConnectionInfo;
