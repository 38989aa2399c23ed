//! `web`: the guestbook's network-facing subject.
//!
//! It serves HTTP on its network device `service0` at **10.0.0.2/24** (echo's
//! address) with [`echo::host`], and keeps no entry itself: every new entry and every
//! read goes over the channel pair `requests` / `responses` to `vault`
//! (`examples/vault`), which alone owns the disk ([`guestbook`]: the routes and the
//! pages; [`form`]: the posted form). If `web` is compromised, all it can do to the
//! entries is what the wire format lets any `web` do: send well-formed requests,
//! which vault validates (`examples/vault/README.md`).
//!
//! Memory: no heap. The socket buffers ([`Buffers`], 8 HTTP sockets with 4 KiB in and
//! 8 KiB out) are one static in `.bss`, handed out once by [`Buffers::take`].

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod form;
pub mod guestbook;

use core::fmt;

use muen_subject::device::AcquireError;

pub use echo::{ADDRESS, HTTP_PORT, PREFIX_LEN};
pub use guestbook::{Guestbook, GuestbookStats, SHOWN, VAULT_TIMEOUT};

/// The network device (named in `app.toml`).
pub const DEVICE: &str = "service0";
/// The channel web writes its requests into.
pub const REQUESTS: &str = vault::REQUESTS;
/// The channel web reads vault's responses from.
pub const RESPONSES: &str = vault::RESPONSES;
/// HTTP connections served at once.
pub const HTTP_SOCKETS: usize = 8;
/// Receive buffer per HTTP socket: the longest request (head and form).
pub const HTTP_RX: usize = echo::host::REQUEST_MAX;
/// Transmit buffer per HTTP socket: the longest response.
pub const HTTP_TX: usize = guestbook::RESPONSE_MAX;

/// The HTTP sockets' buffers (all zero at first, so a static of them is in `.bss`).
pub struct Buffers {
    rx: [[u8; HTTP_RX]; HTTP_SOCKETS],
    tx: [[u8; HTTP_TX]; HTTP_SOCKETS],
}

static BUFFERS: spin::Mutex<Buffers> = spin::Mutex::new(Buffers::new());

impl Buffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Buffers {
            rx: [[0; HTTP_RX]; HTTP_SOCKETS],
            tx: [[0; HTTP_TX]; HTTP_SOCKETS],
        }
    }

    /// The static buffers; `None` after the first call. (A lock that is taken once
    /// and never released is a safe `&'static mut`.)
    pub fn take() -> Option<&'static mut Buffers> {
        BUFFERS.try_lock().map(spin::MutexGuard::leak)
    }

    /// One (receive, transmit) pair per HTTP socket, for [`echo::host::Host::new`].
    pub fn pairs(&mut self) -> [(&mut [u8], &mut [u8]); HTTP_SOCKETS] {
        let mut rx = self.rx.iter_mut();
        let mut tx = self.tx.iter_mut();
        core::array::from_fn(|_| match (rx.next(), tx.next()) {
            (Some(r), Some(t)) => (&mut r[..], &mut t[..]),
            // Both arrays have HTTP_SOCKETS entries.
            _ => unreachable!(),
        })
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

/// Why web cannot start serving (`main` returns it; the runtime logs `ERROR main:
/// ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The network device or a channel end cannot be acquired.
    Acquire(AcquireError),
    /// The socket buffers were handed out already.
    MemoryTaken,
}

impl From<AcquireError> for SetupError {
    fn from(e: AcquireError) -> Self {
        SetupError::Acquire(e)
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Acquire(e) => e.fmt(f),
            SetupError::MemoryTaken => f.write_str("socket buffers already taken"),
        }
    }
}

impl core::error::Error for SetupError {}
