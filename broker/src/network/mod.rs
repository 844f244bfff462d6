//! Network: listeners, Kafka framing, and the memory budget that bounds in-flight bytes.

pub mod budget;
pub mod frame;
pub mod server;

pub use budget::{MemoryBudget, MemoryPermit};
pub use server::ConnectionInfo;
