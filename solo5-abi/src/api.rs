//! The types and constants of Solo5's public interface (`include/solo5.h`), with the
//! C layout, for an implementation of that interface in Rust and its callers.
//!
//! The `typedef`s of `uint64_t` are `#[repr(transparent)]` newtypes, so they pass
//! exactly as the C types do while keeping time, handles and offsets apart.
//! `tests/c_layout.rs` compiles a probe against the real header and compares every
//! size, offset and value here with it.

use core::ffi::{c_char, c_int};
use core::fmt;
use core::mem::{align_of, offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::mft::MFT_MAX_ENTRIES;

/// The result of a Solo5 call (`solo5_result_t`, a C enum: 4 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub enum Solo5Result {
    /// The operation completed successfully (`SOLO5_R_OK`).
    Ok = 0,
    /// Not possible now; the same call may succeed later (`SOLO5_R_AGAIN`).
    Again = 1,
    /// Invalid argument (`SOLO5_R_EINVAL`).
    Einval = 2,
    /// Unspecified error (`SOLO5_R_EUNSPEC`).
    Eunspec = 3,
}

/// What the bindings pass to the application's `solo5_app_main` (`struct
/// solo5_start_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Solo5StartInfo {
    /// The command line left after the bindings took their own options, NUL-terminated.
    pub cmdline: *const c_char,
    /// Start of the heap (`uintptr_t`).
    pub heap_start: usize,
    /// Size of the heap in bytes (`size_t`).
    pub heap_size: usize,
}

/// Exit status of a successful run (`SOLO5_EXIT_SUCCESS`).
pub const SOLO5_EXIT_SUCCESS: c_int = 0;
/// Exit status of a failed run (`SOLO5_EXIT_FAILURE`).
pub const SOLO5_EXIT_FAILURE: c_int = 1;
/// Exit status of an abort (`SOLO5_EXIT_ABORT`), also what `solo5_abort` reports.
pub const SOLO5_EXIT_ABORT: c_int = 255;

/// A time in nanoseconds (`solo5_time_t`): monotonic since an unspecified start
/// (`solo5_clock_monotonic`) or wall-clock since the Unix epoch (`solo5_clock_wall`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
)]
#[repr(transparent)]
pub struct Solo5Time(pub u64);

impl Solo5Time {
    /// The time in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
}

/// A device handle (`solo5_handle_t`): the device's manifest entry index, 1 to 63.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
)]
#[repr(transparent)]
pub struct Solo5Handle(pub u64);

impl fmt::Display for Solo5Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A set of handles (`solo5_handle_set_t`): bit `h` stands for handle `h`; at most
/// [`MFT_MAX_ENTRIES`] handles exist, so 64 bits hold them all. `solo5_yield` reports
/// the devices with pending input in one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(transparent)]
pub struct Solo5HandleSet(pub u64);

const _: () = assert!(MFT_MAX_ENTRIES as usize <= size_of::<Solo5HandleSet>() * 8);

impl Solo5HandleSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// Whether `handle` is in the set (handles of 64 and above never are).
    pub const fn contains(self, handle: Solo5Handle) -> bool {
        handle.0 < 64 && self.0 & (1 << handle.0) != 0
    }

    /// Adds `handle`; returns `false` (and changes nothing) for a handle of 64 or
    /// above, which no set can hold.
    pub fn insert(&mut self, handle: Solo5Handle) -> bool {
        if handle.0 >= 64 {
            return false;
        }
        self.0 |= 1 << handle.0;
        true
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The handles in the set, in ascending order.
    pub fn iter(self) -> impl Iterator<Item = Solo5Handle> {
        (0..64u64)
            .filter(move |&bit| self.0 & (1 << bit) != 0)
            .map(Solo5Handle)
    }
}

/// Length of a MAC address in bytes (`SOLO5_NET_ALEN`).
pub const SOLO5_NET_ALEN: usize = 6;

/// Length of an Ethernet header in bytes (`SOLO5_NET_HLEN`); a frame buffer holds the
/// MTU plus this.
pub const SOLO5_NET_HLEN: usize = 14;

/// What `solo5_net_acquire` reports about a network device (`struct solo5_net_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, FromBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Solo5NetInfo {
    /// The device's MAC address.
    pub mac_address: [u8; SOLO5_NET_ALEN],
    /// The MTU in bytes, not counting the Ethernet header.
    pub mtu: usize,
}

/// A block device offset or size in bytes (`solo5_off_t`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
)]
#[repr(transparent)]
pub struct Solo5Offset(pub u64);

/// What `solo5_block_acquire` reports about a block device (`struct solo5_block_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Solo5BlockInfo {
    /// Capacity in bytes.
    pub capacity: Solo5Offset,
    /// The smallest unit of I/O in bytes (the block size).
    pub block_size: Solo5Offset,
}

const _: () = {
    assert!(size_of::<Solo5Result>() == 4);
    assert!(size_of::<Solo5StartInfo>() == 24);
    assert!(offset_of!(Solo5StartInfo, heap_start) == 8);
    assert!(offset_of!(Solo5StartInfo, heap_size) == 16);
    assert!(size_of::<Solo5Time>() == 8 && align_of::<Solo5Time>() == 8);
    assert!(size_of::<Solo5Handle>() == 8 && align_of::<Solo5Handle>() == 8);
    assert!(size_of::<Solo5HandleSet>() == 8 && align_of::<Solo5HandleSet>() == 8);
    assert!(size_of::<Solo5Offset>() == 8 && align_of::<Solo5Offset>() == 8);
    assert!(size_of::<Solo5NetInfo>() == 16);
    assert!(offset_of!(Solo5NetInfo, mtu) == 8);
    assert!(size_of::<Solo5BlockInfo>() == 16);
    assert!(offset_of!(Solo5BlockInfo, block_size) == 8);
};
