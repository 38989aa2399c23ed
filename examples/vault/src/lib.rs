//! `vault`: the guestbook's storage subject.
//!
//! It alone owns the disk `storage`; the network-facing subject `web`
//! (`examples/web`) reaches the entries only through the channel pair `requests` /
//! `responses`, one [`wire`] element at a time. Everything vault reads from `web` is
//! validated ([`wire::RequestElement::decode`]: total and strict, never a panic),
//! and the only things a request can do are the three the protocol has: append an
//! entry, read one, read the newest few. So a `web` that is compromised can add
//! well-formed entries and read them, and nothing else: it cannot overwrite or
//! remove an entry, corrupt the log, reach the disk, or make vault misbehave
//! (`README.md` gives the whole argument).
//!
//! - [`wire`]: the request and response elements, and the entry as stored;
//! - [`book`]: the entries on the disk (blockstore's checksummed log) and the
//!   answers to requests.
//!
//! The binary (`src/main.rs`) acquires the disk and the channel ends and serves.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod book;
pub mod wire;

use core::fmt;

use blockstore::StoreError;
use muen_subject::device::AcquireError;

pub use book::{Answer, Book, Vault, VaultStats, ANSWER_MAX};

/// The disk (named in `app.toml`).
pub const DEVICE: &str = "storage";
/// The channel vault reads requests from.
pub const REQUESTS: &str = "requests";
/// The channel vault writes responses into.
pub const RESPONSES: &str = "responses";

/// Why vault cannot serve (`main` returns it; the runtime logs `ERROR main: ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultError {
    /// The disk or a channel end cannot be acquired.
    Acquire(AcquireError),
    /// The disk holds no usable log.
    Store(StoreError),
}

impl From<AcquireError> for VaultError {
    fn from(e: AcquireError) -> Self {
        VaultError::Acquire(e)
    }
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        VaultError::Store(e)
    }
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultError::Acquire(e) => e.fmt(f),
            VaultError::Store(e) => write!(f, "{DEVICE}: {e}"),
        }
    }
}

impl core::error::Error for VaultError {}
