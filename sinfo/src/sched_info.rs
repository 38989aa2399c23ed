//! The scheduling info page: when the current minor frame started and when it ends.

use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::ptr::{addr_of, NonNull};

use muen_abi::layout::SCHEDULING_INFO;
use muen_abi::time::Tsc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Layout of the scheduling info record at the start of the page.
///
/// The kernel rewrites it at every minor frame switch of the subject's scheduling
/// partition; both values are planned TSC values of the scheduling plan, not RDTSC
/// readings.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct SchedulingInfoRecord {
    /// TSC value at which the current minor frame started.
    pub tsc_schedule_start: u64,
    /// TSC value at which the current minor frame ends (its deadline).
    pub tsc_schedule_end: u64,
}

const _: () = assert!(size_of::<SchedulingInfoRecord>() == 16);
const _: () = assert!(offset_of!(SchedulingInfoRecord, tsc_schedule_end) == 8);
const _: () = assert!(SCHEDULING_INFO.address.is_aligned(8));
const _: () = assert!(SCHEDULING_INFO.size as usize >= size_of::<SchedulingInfoRecord>());

/// A read-only view of a scheduling info record that another party updates.
///
/// Every read is a volatile load of one naturally aligned `u64`, so a value is never
/// torn and never cached. On Muen the kernel writes both fields while the subject is not
/// running, so a subject always sees a consistent pair; the testbed may not guarantee
/// that (see `docs/hosted.md`).
#[derive(Clone, Copy)]
pub struct SchedulingInfo<'a> {
    record: NonNull<SchedulingInfoRecord>,
    _record: PhantomData<&'a SchedulingInfoRecord>,
}

// SAFETY: the view only performs volatile reads of plain integers; sharing or sending
// it between threads is no different from sharing a `&SchedulingInfoRecord`.
unsafe impl Send for SchedulingInfo<'_> {}
// SAFETY: as above.
unsafe impl Sync for SchedulingInfo<'_> {}

impl<'a> SchedulingInfo<'a> {
    /// A view of a record in this program's memory (tests, a testbed's own copy).
    pub fn new(record: &'a SchedulingInfoRecord) -> Self {
        SchedulingInfo {
            record: NonNull::from(record),
            _record: PhantomData,
        }
    }

    /// A view of the record at `record`.
    ///
    /// # Safety
    ///
    /// `record` must be aligned and point to 16 bytes that stay mapped and readable for
    /// `'a`. Others may write them at any time; this program must not create Rust
    /// references to them.
    pub unsafe fn from_ptr(record: NonNull<SchedulingInfoRecord>) -> Self {
        SchedulingInfo {
            record,
            _record: PhantomData,
        }
    }

    /// A view of the page Muen maps at [`SCHEDULING_INFO`] (`0xe_0000_8000`).
    ///
    /// # Safety
    ///
    /// The page must be mapped readable at that address for the rest of the program, as
    /// Muen maps it into every subject.
    pub unsafe fn from_fixed_address() -> SchedulingInfo<'static> {
        let address = SCHEDULING_INFO.address.as_u64() as usize as *mut SchedulingInfoRecord;
        // SAFETY: the address is a non-zero constant.
        let record = unsafe { NonNull::new_unchecked(address) };
        // SAFETY: the address is aligned (asserted above) and the caller guarantees the
        // mapping.
        unsafe { SchedulingInfo::from_ptr(record) }
    }

    /// TSC reading at which the current minor frame started.
    pub fn tsc_schedule_start(&self) -> Tsc {
        // SAFETY: `record` is valid and aligned for reads for 'a (constructor contract);
        // `addr_of!` creates no reference to memory others may write.
        Tsc::from_ticks(unsafe {
            addr_of!((*self.record.as_ptr()).tsc_schedule_start).read_volatile()
        })
    }

    /// TSC reading at which the current minor frame ends.
    pub fn tsc_schedule_end(&self) -> Tsc {
        // SAFETY: as in `tsc_schedule_start`.
        Tsc::from_ticks(unsafe {
            addr_of!((*self.record.as_ptr()).tsc_schedule_end).read_volatile()
        })
    }

    /// Both values (start read first).
    pub fn read(&self) -> SchedulingInfoRecord {
        SchedulingInfoRecord {
            tsc_schedule_start: self.tsc_schedule_start().ticks(),
            tsc_schedule_end: self.tsc_schedule_end().ticks(),
        }
    }
}

impl core::fmt::Debug for SchedulingInfo<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SchedulingInfo").field(&self.read()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_values() {
        let record = SchedulingInfoRecord {
            tsc_schedule_start: 1000,
            tsc_schedule_end: 2000,
        };
        let view = SchedulingInfo::new(&record);
        assert_eq!(view.tsc_schedule_start().ticks(), 1000);
        assert_eq!(view.tsc_schedule_end().ticks(), 2000);
        assert_eq!(view.read(), record);
    }

    #[test]
    fn sees_updates_made_through_the_pointer() {
        let mut record = SchedulingInfoRecord::default();
        let ptr = NonNull::from(&mut record);
        // SAFETY: `record` outlives the view and is only accessed through `ptr` below.
        let view = unsafe { SchedulingInfo::from_ptr(ptr) };
        assert_eq!(view.tsc_schedule_end().ticks(), 0);
        // SAFETY: `ptr` is valid; no reference to `record` is live.
        unsafe { (*ptr.as_ptr()).tsc_schedule_end = 7 };
        assert_eq!(view.tsc_schedule_end().ticks(), 7);
    }
}
