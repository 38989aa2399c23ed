//! `blockstore`: a boot counter and an append-only record log on the block device
//! `storage`.
//!
//! Every boot it reads both superblock copies and every record slot, verifies each
//! record (magic, CRC-32, length, sequence number, padding), counts the boot in the
//! superblock and appends one record after the last valid one. It never overwrites a
//! valid record: the rules are in [`store`], the on-disk format in [`format`]. The
//! binary (`src/main.rs`) logs what it found (`boot count: N`, `records: K
//! verified`, the tail) and exits.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod format;
pub mod store;

pub use store::{boot, Appended, Found, Last, Report, StoreError, Tail};

/// The block device the subject uses (named in `app.toml`).
pub const DEVICE: &str = "storage";
