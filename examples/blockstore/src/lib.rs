//! `blockstore`: a boot counter and an append-only record log on the block device
//! `storage`.
//!
//! Every boot it reads both superblock copies and every record slot, verifies each
//! record (magic, CRC-32, length, sequence number, padding), counts the boot in the
//! superblock and appends one record after the last valid one. It never overwrites a
//! valid record: the rules are in [`store`], the on-disk format in [`format`]. The
//! binary (`src/main.rs`) logs what it found (`boot count: N`, `records: K
//! verified`, the tail) and exits. The log itself ([`Log`]: open, append, read) is
//! also the storage of `examples/vault`.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod format;
pub mod store;

use core::fmt;

use muen_subject::device::AcquireError;

pub use store::{boot, Appended, Found, Last, Log, Opened, ReadError, Report, StoreError, Tail};

/// The block device the subject uses (named in `app.toml`).
pub const DEVICE: &str = "storage";

/// Why a boot failed (`main` returns it; the runtime logs `ERROR main: ...` and exits
/// with 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The block device [`DEVICE`] cannot be acquired.
    Device(AcquireError),
    /// The store failed; nothing after the failing step was written.
    Store(StoreError),
}

impl From<AcquireError> for BootError {
    fn from(e: AcquireError) -> Self {
        BootError::Device(e)
    }
}

impl From<StoreError> for BootError {
    fn from(e: StoreError) -> Self {
        BootError::Store(e)
    }
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Device(e) => write!(f, "{DEVICE}: {e}"),
            BootError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for BootError {}

#[cfg(test)]
mod tests {
    use super::*;
    use muen_subject::Name;

    #[test]
    fn boot_errors_name_the_device_or_say_what_the_store_found() {
        let missing = AcquireError::Missing {
            region: Name::try_from("storage|req").unwrap(),
        };
        assert_eq!(
            BootError::from(missing).to_string(),
            "storage: region `storage|req`: not in the subject info page"
        );
        assert_eq!(
            BootError::from(StoreError::BootCountOverflow).to_string(),
            StoreError::BootCountOverflow.to_string()
        );
    }
}
