//! The broker's side of the cluster: how it reaches the controller (`channel`: the embedded
//! single-voter coordinator or a remote ensemble via `remote`, one connection per `lane`), its
//! registration there (`session`; `runtime::lifecycle` registers, heartbeats, follows the metadata
//! log and shuts down with the controller), and the metadata it serves from (`view`).

pub mod channel;
pub mod embedded;
pub mod lane;
pub mod remote;
pub mod session;
pub mod view;

pub use channel::ControllerChannel;
pub use lane::Lane;
pub use session::Session;
pub use view::MetadataView;
