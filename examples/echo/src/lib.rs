//! `echo`: a network subject on smoltcp.
//!
//! On its network device `service0` it has the static address **10.0.0.2/24**
//! ([`ADDRESS`], [`PREFIX_LEN`]) and
//!
//! - answers ARP and ping (ICMP echo, from smoltcp's interface),
//! - echoes UDP datagrams on port 7 ([`UDP_PORT`]) to their sender,
//! - serves a status page on HTTP port 80 ([`HTTP_PORT`], `GET /`, `text/plain`):
//!   subject name, uptime and the device's counters (frames and bytes in and out,
//!   drops, overruns), one `key: value` a line. Every response closes its connection;
//!   [`HTTP_SOCKETS`] sockets listen, so that many clients are served at once.
//!
//! Between frames it sleeps in the runtime's idle loop
//! ([`Runtime::poll`](muen_subject::Runtime::poll)) until a frame arrives or smoltcp's
//! next timer is due; it never spins.
//!
//! Memory: smoltcp is given slices, never a heap. The socket buffers (about 100 KiB,
//! [`Buffers`]) and the UDP queues are statics (the buffers in `.bss`), handed out
//! once by [`Memory::take`]; the socket table lives on `main`'s stack. (The runtime's `alloc` feature would save
//! only these two declarations, and would add an allocator that a subject with a fixed
//! set of sockets does not need.)
//!
//! The binary (`src/main.rs`) only acquires the device and runs [`Server`] (returning
//! a [`SetupError`] if it cannot); the modules here are tested on the host
//! (`cargo test -p echo`). [`host`] (an IPv4 host that serves HTTP with a handler
//! that may answer later) and [`http`] are also `examples/web`'s.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

#[cfg(all(feature = "testing", not(test)))]
extern crate std;

pub mod host;
pub mod http;
mod server;
pub mod status;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use host::{Counted, CONNECTION_LIMIT};
pub use server::{
    Buffers, Memory, Queues, Server, HTTP_RX, HTTP_SOCKETS, HTTP_TX, SOCKETS, UDP_BUFFER,
    UDP_PACKETS, UDP_PAYLOAD_MAX,
};

use core::fmt;

use muen_subject::device::AcquireError;
use smoltcp::wire::Ipv4Address;

/// The subject's address on `service0`.
pub const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
/// The prefix length of its network (10.0.0.0/24).
pub const PREFIX_LEN: u8 = 24;
/// The UDP echo port (RFC 862).
pub const UDP_PORT: u16 = 7;
/// The HTTP port of the status page.
pub const HTTP_PORT: u16 = 80;
/// The network device the subject uses (named in `app.toml`).
pub const DEVICE: &str = "service0";

/// Why `main` cannot start serving (logged by the runtime as `ERROR main: ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The network device [`DEVICE`] cannot be acquired.
    Device(AcquireError),
    /// The socket buffers were handed out already ([`Memory::take`] gives them once).
    MemoryTaken,
}

impl From<AcquireError> for SetupError {
    fn from(e: AcquireError) -> Self {
        SetupError::Device(e)
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Device(e) => write!(f, "{DEVICE}: {e}"),
            SetupError::MemoryTaken => f.write_str("socket buffers already taken"),
        }
    }
}

impl core::error::Error for SetupError {}

#[cfg(test)]
mod tests {
    use super::*;
    use muen_subject::Name;

    #[test]
    fn setup_errors_name_the_device_or_the_buffers() {
        let missing = AcquireError::Missing {
            region: Name::try_from("service0|in").unwrap(),
        };
        assert_eq!(
            SetupError::from(missing).to_string(),
            "service0: region `service0|in`: not in the subject info page"
        );
        assert_eq!(
            SetupError::MemoryTaken.to_string(),
            "socket buffers already taken"
        );
    }
}
