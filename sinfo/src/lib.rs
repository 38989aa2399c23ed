//! Muen's subject info page (sinfo) and the other per-subject pages the Muen toolchain
//! and kernel provide.
//!
//! A Muen subject learns its world from a page that the toolchain writes at integration
//! time and maps read-only at [`muen_abi::layout::SINFO`]: the subject's name, its TSC
//! rate and a list of named resources (memory regions and channels, events it may
//! trigger, vectors it receives, PCI devices). This crate reads that page in every
//! format Muen has used since 2020 (v3, v4, v5), validates it once and then hands out
//! typed values:
//!
//! ```
//! # let page = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"),
//! #     "/../../shared/testdata/sinfo-v4/lnx_sinfo"));
//! use muen_sinfo::{SubjectInfo, Version};
//!
//! let info = SubjectInfo::new_checked(page)?;
//! assert_eq!(info.version(), Version::V4);
//! assert_eq!(info.name(), "lnx");
//! let console = info.channel("console").unwrap();
//! assert_eq!((console.address, console.size), (0xffff_f000, 0x1000));
//! assert_eq!(info.event("channel_event_lnx_console"), Some(61));
//! # Ok::<(), muen_sinfo::Error>(())
//! ```
//!
//! - [`SubjectInfo`]: the checked view of a page; [`resource`]: the typed values it
//!   returns; [`layout`]: the byte layout as `zerocopy` types.
//! - [`SchedulingInfo`], [`TimedEvent`], [`TimeInfo`]: the small records the kernel
//!   and Muen's time subject change at run time, read (and for the timed event,
//!   written) with volatile accesses.
//! - `builder` (feature `builder`, uses `alloc`): writes pages byte for byte as Muen's
//!   generator does; the testbed builds its subjects' pages with it.
//!
//! The design and its reasons are in `docs/sinfo.md`.

#![cfg_attr(not(test), no_std)]

#[cfg(feature = "builder")]
extern crate alloc;

#[cfg(feature = "builder")]
pub mod builder;
mod error;
mod info;
pub mod layout;
pub mod resource;
mod sched_info;
mod time_info;
mod timed_event;

#[cfg(feature = "builder")]
pub use builder::{BuildError, Builder};
pub use error::Error;
pub use info::{Resources, SubjectInfo};
pub use resource::{
    Content, Device, DeviceFlags, DeviceMemory, DevicePort, Memory, MemoryFlags, MemoryKind, Name,
    PciBar, PciInfo, ResetMethod, Resource, ResourceData, ResourceKind,
};
pub use sched_info::{SchedulingInfo, SchedulingInfoRecord};
pub use time_info::{TimeInfo, TimeInfoError, TimeInfoRecord};
pub use timed_event::{InvalidEventNumber, TimedEvent, TimedEventRecord, EVENT_NUMBER_MAX};

/// A format version of the subject info page (the last byte of its magic).
///
/// v3 and v4 share one layout and differ only in the numbering of two memory kinds
/// (see [`MemoryKind`]); v5 moved the resource count, grew the device records and added
/// device I/O ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// Format 3: Muen 2020–2023.
    V3,
    /// Format 4: Muen since early 2024 (adds the `subject_devicetree` memory kind).
    V4,
    /// Format 5: the format Solo5's current bindings read.
    V5,
}

impl Version {
    /// Every supported version, oldest first.
    pub const ALL: [Version; 3] = [Version::V3, Version::V4, Version::V5];

    /// The version with the given number, if this crate supports it.
    pub const fn from_number(number: u8) -> Option<Version> {
        match number {
            3 => Some(Version::V3),
            4 => Some(Version::V4),
            5 => Some(Version::V5),
            _ => None,
        }
    }

    /// The version number (the magic's last byte).
    pub const fn number(self) -> u8 {
        match self {
            Version::V3 => 3,
            Version::V4 => 4,
            Version::V5 => 5,
        }
    }

    /// The page's first eight bytes for this version.
    pub const fn magic(self) -> [u8; 8] {
        let p = layout::MAGIC_PREFIX;
        [p[0], p[1], p[2], p[3], p[4], p[5], p[6], self.number()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_values_match_the_reference() {
        assert_eq!(
            u64::from_le_bytes(Version::V3.magic()),
            0x0300_6f66_6e69_756d
        );
        assert_eq!(
            u64::from_le_bytes(Version::V4.magic()),
            0x0400_6f66_6e69_756d
        );
        assert_eq!(
            u64::from_le_bytes(Version::V5.magic()),
            0x0500_6f66_6e69_756d
        );
        for version in Version::ALL {
            assert_eq!(Version::from_number(version.number()), Some(version));
        }
        assert_eq!(Version::from_number(2), None);
        assert_eq!(Version::from_number(6), None);
    }
}
