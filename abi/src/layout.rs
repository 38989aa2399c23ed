//! Virtual address layout of a Muen app.
//!
//! Every address here is a subject *virtual* address. Muen maps physical regions at the
//! virtual addresses the policy gives; the testbed maps shared memory at the same
//! addresses, so one layout serves the real kernel and both testbed modes.
//!
//! ```text
//! 0x0000_0020_0000  IMAGE        ELF segments (entry = IMAGE start)     up to RAM_BASE
//! 0x0000_4000_0000  RAM          `ram`, stack at its top                 up to 0xe_0000_0000
//! 0x000e_0000_0000  sinfo        subject info page (Muen toolchain)      0x8000
//! 0x000e_0000_8000  sched info   scheduling info page (Muen toolchain)   0x1000
//! 0x000e_0001_0000  timed event  timed event page (Muen toolchain)       0x1000
//! 0x000f_ffd0_0000  time_info    libmutime                               0x1000
//! 0x000f_fff0_0000  debuglog     libmudebuglog                           $logchannel_size
//! 0x0010_0000_0000  DEVICES      channels and buffers of every device, in allocation
//!                                order, each followed by one unmapped guard page
//! ```

use crate::addr::VirtAddr;

pub use crate::addr::PAGE_SIZE;

/// A fixed region of the subject's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Virtual address of the first byte.
    pub address: VirtAddr,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// The first address past the region (`address + size`), `None` on overflow.
    pub const fn end(&self) -> Option<VirtAddr> {
        self.address.checked_add(self.size)
    }

    /// Whether `self` and `other` share at least one byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        let (Some(a_end), Some(b_end)) = (self.end(), other.end()) else {
            return true;
        };
        self.address.as_u64() < b_end.as_u64() && other.address.as_u64() < a_end.as_u64()
    }
}

/// The subject info page, added to every subject by Muen's toolchain (`sinfo.md` §10).
/// The structure is 0x7fd0 bytes; the region is 0x8000.
pub const SINFO: Region = Region {
    address: VirtAddr::new(0x000e_0000_0000),
    size: 0x8000,
};

/// The scheduling info page of the subject's partition (read-only).
pub const SCHEDULING_INFO: Region = Region {
    address: VirtAddr::new(0x000e_0000_8000),
    size: 0x1000,
};

/// The subject's timed event page (writable).
pub const TIMED_EVENT: Region = Region {
    address: VirtAddr::new(0x000e_0001_0000),
    size: 0x1000,
};

/// The time info page published by Muen's time subject, mapped by `libmutime`.
pub const TIME_INFO: Region = Region {
    address: VirtAddr::new(0x000f_ffd0_0000),
    size: 0x1000,
};

/// The debug log channel mapped by `libmudebuglog`.
///
/// Its size is the system's `$logchannel_size`; this is the value of Muen's MirageOS
/// template, which the testbed uses. The runtime takes the real size from sinfo.
pub const DEBUGLOG: Region = Region {
    address: VirtAddr::new(0x000f_fff0_0000),
    size: 0x2_0000,
};

/// Where the ELF image starts. `_start` is linked here, so this is also the entry
/// address `policy-gen` uses when it is not given an ELF. Solo5's Muen images start
/// their text at the same address. `policy-gen` always writes RIP explicitly, so the
/// native vCPU profile's own default never applies.
pub const ENTRY: VirtAddr = VirtAddr::new(0x0020_0000);

/// Start of the ELF image window. Loadable segments must lie in `IMAGE_BASE..RAM_BASE`.
pub const IMAGE_BASE: VirtAddr = ENTRY;

/// Start of the `ram` region. Fixed (not "after the last segment" as in Solo5) so that
/// the address of RAM and of everything above it does not move when the code grows.
pub const RAM_BASE: VirtAddr = VirtAddr::new(0x4000_0000);

/// RAM must end at or below this address (the start of the Muen toolchain's pages).
pub const RAM_LIMIT: VirtAddr = SINFO.address;

/// The largest RAM: from [`RAM_BASE`] up to [`RAM_LIMIT`].
pub const RAM_MAX: u64 = RAM_LIMIT.as_u64() - RAM_BASE.as_u64();

/// Start of the device window: channels and buffers of every device.
pub const DEVICE_BASE: VirtAddr = VirtAddr::new(0x0010_0000_0000);

/// The device window ends here (the top of the 47-bit lower canonical half).
pub const DEVICE_LIMIT: VirtAddr = VirtAddr::new(0x0000_8000_0000_0000);

/// Size of the device window, [`DEVICE_BASE`] up to [`DEVICE_LIMIT`].
pub const DEVICE_WINDOW: u64 = DEVICE_LIMIT.as_u64() - DEVICE_BASE.as_u64();

/// Unmapped gap left after each device region, so that an access running past the end
/// of one region faults instead of reaching the next.
pub const GUARD_SIZE: u64 = PAGE_SIZE;

/// Size of a block device's request channel `<dev>|req`: muenblock's 64-byte header plus
/// 1022 requests of 32 bytes. Muen's block server checks the element count exactly.
pub const BLOCK_REQUEST_SIZE: u64 = 0x8000;

/// Size of a block device's response channel `<dev>|resp`: the 64-byte header plus 1020
/// responses of 16 bytes.
pub const BLOCK_RESPONSE_SIZE: u64 = 0x4000;

/// The initial stack pointer for a RAM region of `ram_size` bytes: the top of RAM minus
/// 8, as Muen's MirageOS component sets it (keeps the System V 16-byte alignment
/// after the entry's implicit "return address" slot).
pub const fn stack_top(ram_size: u64) -> VirtAddr {
    VirtAddr::new(RAM_BASE.as_u64() + ram_size - 8)
}

/// The RAM region for `ram_size` bytes, or `None` if the size is zero, not page-aligned
/// or too large to end at [`RAM_LIMIT`].
pub const fn ram(ram_size: u64) -> Option<Region> {
    if ram_size == 0 || ram_size % PAGE_SIZE != 0 || ram_size > RAM_MAX {
        return None;
    }
    Some(Region {
        address: RAM_BASE,
        size: ram_size,
    })
}

/// Places device regions one after another in the device window.
///
/// The rule: the first region starts at [`DEVICE_BASE`]; each next region starts
/// [`GUARD_SIZE`] bytes after the end of the previous one. Sizes must be non-zero
/// multiples of [`PAGE_SIZE`], and everything must end at or below [`DEVICE_LIMIT`].
#[derive(Clone, Debug)]
pub struct DeviceAllocator {
    next: VirtAddr,
}

/// Why a device region could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementError {
    /// The size is zero.
    ZeroSize,
    /// The size is not a multiple of [`PAGE_SIZE`].
    Unaligned,
    /// The region would end past [`DEVICE_LIMIT`].
    WindowFull,
}

impl Default for DeviceAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceAllocator {
    /// An allocator whose first region starts at [`DEVICE_BASE`].
    pub const fn new() -> Self {
        Self { next: DEVICE_BASE }
    }

    /// Places a region of `size` bytes and returns it.
    pub fn place(&mut self, size: u64) -> Result<Region, PlacementError> {
        if size == 0 {
            return Err(PlacementError::ZeroSize);
        }
        if size % PAGE_SIZE != 0 {
            return Err(PlacementError::Unaligned);
        }
        let region = Region {
            address: self.next,
            size,
        };
        let end = region.end().ok_or(PlacementError::WindowFull)?;
        if end > DEVICE_LIMIT {
            return Err(PlacementError::WindowFull);
        }
        // DEVICE_LIMIT + GUARD_SIZE cannot overflow.
        self.next = VirtAddr::new(end.as_u64() + GUARD_SIZE);
        Ok(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXED: [Region; 5] = [SINFO, SCHEDULING_INFO, TIMED_EVENT, TIME_INFO, DEBUGLOG];

    #[test]
    fn fixed_regions_do_not_overlap_each_other_or_the_windows() {
        let image = Region {
            address: IMAGE_BASE,
            size: RAM_BASE.as_u64() - IMAGE_BASE.as_u64(),
        };
        let ram = ram(RAM_MAX).unwrap();
        let devices = Region {
            address: DEVICE_BASE,
            size: DEVICE_WINDOW,
        };
        let mut all = [
            image,
            ram,
            devices,
            SINFO,
            SCHEDULING_INFO,
            TIMED_EVENT,
            TIME_INFO,
            DEBUGLOG,
        ];
        all.sort_by_key(|r| r.address);
        for pair in all.windows(2) {
            assert!(
                !pair[0].overlaps(&pair[1]),
                "{:x?} overlaps {:x?}",
                pair[0],
                pair[1]
            );
        }
        for r in FIXED {
            assert_eq!(r.address.as_u64() % PAGE_SIZE, 0);
            assert_eq!(r.size % PAGE_SIZE, 0);
        }
    }

    #[test]
    fn ram_rejects_bad_sizes() {
        assert_eq!(ram(0), None);
        assert_eq!(ram(0x1001), None);
        assert_eq!(ram(RAM_MAX + PAGE_SIZE), None);
        assert_eq!(
            ram(64 << 20),
            Some(Region {
                address: VirtAddr::new(0x4000_0000),
                size: 64 << 20
            })
        );
        assert_eq!(stack_top(64 << 20), VirtAddr::new(0x4400_0000 - 8));
    }

    #[test]
    fn device_regions_follow_each_other_with_a_guard_page() {
        let mut a = DeviceAllocator::new();
        let first = a.place(0x10_0000).unwrap();
        let second = a.place(0x8000).unwrap();
        assert_eq!(
            first,
            Region {
                address: DEVICE_BASE,
                size: 0x10_0000
            }
        );
        assert_eq!(
            second.address.as_u64(),
            DEVICE_BASE.as_u64() + 0x10_0000 + GUARD_SIZE
        );
        assert_eq!(a.place(0), Err(PlacementError::ZeroSize));
        assert_eq!(a.place(0x800), Err(PlacementError::Unaligned));
        assert_eq!(
            a.place(DEVICE_LIMIT.as_u64()),
            Err(PlacementError::WindowFull)
        );
        assert_eq!(a.place(u64::MAX - 0xfff), Err(PlacementError::WindowFull));
    }

    proptest::proptest! {
        #[test]
        fn placed_regions_never_overlap_and_stay_in_the_window(
            pages in proptest::collection::vec(1u64..0x10_0000, 1..64)
        ) {
            let mut a = DeviceAllocator::new();
            let mut placed: [Option<Region>; 64] = [None; 64];
            for (i, p) in pages.iter().enumerate() {
                let r = a.place(p * PAGE_SIZE).unwrap();
                proptest::prop_assert!(r.address >= DEVICE_BASE && r.end().unwrap() <= DEVICE_LIMIT);
                for q in placed.iter().flatten() {
                    proptest::prop_assert!(!q.overlaps(&r));
                    proptest::prop_assert!(r.address.as_u64() >= q.end().unwrap().as_u64() + GUARD_SIZE);
                }
                placed[i] = Some(r);
            }
        }
    }
}
