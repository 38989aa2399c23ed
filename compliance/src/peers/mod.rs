//! The suite's hooks for the in-memory peers of `muen_sim::peers` (a muennet peer and
//! a muenblock server, on channels in ordinary memory), and [`ChannelHarness`]: any
//! muenblock server driven through its channels for
//! [`server_compliance`](crate::server::server_compliance).
//!
//! The runtime's tests run its drivers against these peers (`subject/tests/compliance.rs`);
//! the testbed's tests run the drivers against the testbed's peers and the testbed's
//! block server through [`ChannelHarness`] (`testbed/tests/compliance.rs`).
//!
//! [`ChannelHarness`]: muenblock::ChannelHarness

pub mod muenblock;
pub mod muennet;
