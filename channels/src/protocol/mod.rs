//! The payload protocols spoken on Muen channels: identifiers, element layouts and
//! helpers. Element types derive zerocopy's traits so that they go through
//! [`Writer::write`](crate::Writer::write) and [`Reader::read`](crate::Reader::read)
//! directly; their fields are validated on the reader's private copy.

pub mod debuglog;
pub mod muenblock;
pub mod muennet;
