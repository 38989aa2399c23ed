//! The compliance suite of the device ABI (`docs/device-abi.md`).
//!
//! Any implementation of [`NetDevice`](muen_device::NetDevice) or
//! [`BlockDevice`](muen_device::BlockDevice), of a typed channel end
//! ([`Receiver`](muen_device::channel::Receiver),
//! [`Sender`](muen_device::channel::Sender)), and any muenblock server, runs it from
//! its own tests:
//!
//! - [`net::net_compliance`] checks every [`net::NetRule`] with the device and a
//!   [`net::NetPeer`] (send, collect, and where the peer can: restart, misbehave);
//! - [`block::block_compliance`] checks every [`block::BlockRule`], with a
//!   [`block::BlockPeer`] for the rules that need the server to fail, restart or lose
//!   power;
//! - [`channel::receiver_compliance`] and [`channel::sender_compliance`] check every
//!   [`channel::ChannelRule`] of a channel end, with the suite playing the other end
//!   on the channel memory (a writer that restarts, starts as another type, overruns
//!   the receiver and writes hostile headers and ring bytes; a reader that checks
//!   what a sender wrote and when it signalled);
//! - [`server::server_compliance`] checks a muenblock server on its own
//!   ([`server::ServerRule`]): it refuses what the contract forbids and never touches
//!   the image or the buffer outside a valid request's range;
//! - [`random::net_random`] and [`random::block_random`] run random operation
//!   sequences against a model of the peer or the device, with proptest shrinking and
//!   a printed seed.
//!
//! Each rule is checked by one function, and the crate's own tests show for every rule
//! a deliberately broken device (or server) that the suite rejects for exactly that
//! rule. [`reference`](mod@reference) holds correct in-memory devices (and channel
//! ends on `muen-channel`); [`peers`] makes
//! the in-memory peers of `muen-sim` (the simulated kernel's muennet peer and
//! muenblock server) the suite's peers, and drives any muenblock server through its
//! channels.
//!
//! The crate depends on the device ABI (`muen-device`), not on its implementations:
//! the runtime's drivers run the suite from the runtime's tests
//! (`subject/tests/compliance.rs`), the testbed's peers from the testbed's
//! (`testbed/tests/compliance.rs`).
//!
//! ```
//! use muen_device_compliance::{net, reference};
//!
//! let mut dev = reference::MemNet::new(reference::MEM_NET_CAPACITY);
//! let report = net::net_compliance("MemNet", &mut dev, &mut reference::MemNetPeer);
//! report.assert_ok();
//! ```
//!
//! The crate uses `std` (it is a test tool); the devices it checks may be `no_std`.

pub mod block;
pub mod channel;
pub mod net;
pub mod pattern;
pub mod peers;
pub mod random;
pub mod reference;
mod report;
pub mod server;

pub use report::{Report, Rule, Violation};
