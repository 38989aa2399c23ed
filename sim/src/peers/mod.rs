//! In-memory peers of the runtime's drivers, on channels in ordinary memory: the
//! other end of a muennet device ([`MuennetPeer`]) and a muenblock server over an
//! in-memory image ([`MuenblockServer`]), each with a builder of the subject info page
//! that names the device's regions ([`muennet_device`], [`muenblock_device`]).
//!
//! Both can misbehave on request, so that tests can show what a driver does with a
//! peer that restarts, breaks the protocol, stays silent or fails.

mod muenblock;
mod muennet;

pub use muenblock::{muenblock_device, MuenblockServer, ServerStats, DATA_BYTES};
pub use muennet::{muennet_device, MuennetPeer};
