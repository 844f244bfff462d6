//! Network building blocks: Kafka framing (`frame`), the memory budget that bounds in-flight bytes
//! (`budget`), the client side of the protocol for the broker's own requests (`client`), and the
//! minimal HTTP of the metrics endpoints (`http`). The listeners that use them are `runtime::server`.

pub mod budget;
pub mod client;
pub mod frame;
pub mod http;
pub mod secure;

pub use budget::{MemoryBudget, MemoryPermit};
