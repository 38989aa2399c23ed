//! The timed event page: ask the kernel to trigger one of the subject's events at a
//! given TSC value.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::ptr::{addr_of, addr_of_mut, NonNull};

use muen_abi::layout::TIMED_EVENT;
use muen_abi::time::Tsc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Largest event number a timed event can carry (the field has 6 bits).
pub const EVENT_NUMBER_MAX: u8 = 63;

/// Trigger value of a disarmed timed event (the kernel's reset value).
const DISARMED: u64 = u64::MAX;

/// Layout of the timed event record at the start of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TimedEventRecord {
    /// Absolute TSC value at which the event fires; `u64::MAX` when disarmed.
    pub tsc_trigger_value: u64,
    /// Bits 0..=5: the number of the subject's source event to trigger; the other bits
    /// are padding.
    pub event: u64,
}

const _: () = assert!(size_of::<TimedEventRecord>() == 16);
const _: () = assert!(offset_of!(TimedEventRecord, event) == 8);
const _: () = assert!(TIMED_EVENT.address.is_aligned(8));
const _: () = assert!(TIMED_EVENT.size as usize >= size_of::<TimedEventRecord>());

impl Default for TimedEventRecord {
    /// The state the kernel sets at subject start: disarmed, event 0.
    fn default() -> Self {
        TimedEventRecord {
            tsc_trigger_value: DISARMED,
            event: 0,
        }
    }
}

/// The event number given to [`TimedEvent::arm`] does not fit in 6 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidEventNumber(pub u8);

impl fmt::Display for InvalidEventNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event number {} does not fit a timed event (at most {EVENT_NUMBER_MAX})",
            self.0
        )
    }
}

impl core::error::Error for InvalidEventNumber {}

/// A read-write view of a timed event record shared with the kernel.
///
/// The kernel checks the record at every minor frame boundary: when the trigger value
/// is at or before the current TSC it handles the event as if the subject had triggered
/// it and sets the trigger back to `u64::MAX`. All accesses are volatile loads and
/// stores of aligned `u64`s.
pub struct TimedEvent<'a> {
    record: NonNull<TimedEventRecord>,
    _record: PhantomData<&'a mut TimedEventRecord>,
}

// SAFETY: the view performs volatile accesses of plain integers; writes need `&mut
// self`, so moving or sharing the view is like moving or sharing a `&mut`.
unsafe impl Send for TimedEvent<'_> {}
// SAFETY: through `&self` only volatile reads are possible.
unsafe impl Sync for TimedEvent<'_> {}

impl<'a> TimedEvent<'a> {
    /// A view of a record in this program's memory (tests, a testbed's own copy).
    pub fn new(record: &'a mut TimedEventRecord) -> Self {
        TimedEvent {
            record: NonNull::from(record),
            _record: PhantomData,
        }
    }

    /// A view of the record at `record`.
    ///
    /// # Safety
    ///
    /// `record` must be aligned and point to 16 bytes that stay mapped readable and
    /// writable for `'a`. Others (the kernel, a testbed) may access them; this program
    /// must not create Rust references to them nor a second view.
    pub unsafe fn from_ptr(record: NonNull<TimedEventRecord>) -> Self {
        TimedEvent {
            record,
            _record: PhantomData,
        }
    }

    /// A view of the page Muen maps at [`TIMED_EVENT`] (`0xe_0001_0000`).
    ///
    /// # Safety
    ///
    /// The page must be mapped writable at that address for the rest of the program (as
    /// Muen maps it into every subject), and no other view of it may exist.
    pub unsafe fn from_fixed_address() -> TimedEvent<'static> {
        let address = TIMED_EVENT.address.as_u64() as usize as *mut TimedEventRecord;
        // SAFETY: the address is a non-zero constant.
        let record = unsafe { NonNull::new_unchecked(address) };
        // SAFETY: the address is aligned (asserted above); the caller guarantees the
        // mapping and that this is the only view.
        unsafe { TimedEvent::from_ptr(record) }
    }

    /// The current trigger value ([`Tsc::MAX`] when disarmed).
    pub fn tsc_trigger_value(&self) -> Tsc {
        // SAFETY: `record` is valid and aligned for 'a (constructor contract); no
        // reference to the shared memory is created.
        Tsc::from_ticks(unsafe {
            addr_of!((*self.record.as_ptr()).tsc_trigger_value).read_volatile()
        })
    }

    /// The event number currently set (the low 6 bits of the event field).
    pub fn event_number(&self) -> u8 {
        // SAFETY: as in `tsc_trigger_value`.
        let event = unsafe { addr_of!((*self.record.as_ptr()).event).read_volatile() };
        // Masked to 6 bits, so the cast keeps the value.
        (event & u64::from(EVENT_NUMBER_MAX)) as u8
    }

    /// Whether a trigger is set (the value is not `u64::MAX`).
    pub fn is_armed(&self) -> bool {
        self.tsc_trigger_value() != Tsc::from_ticks(DISARMED)
    }

    /// Asks for event `event` at TSC reading `trigger`.
    ///
    /// The event number is written first and the trigger last, so the kernel never sees
    /// the new trigger with the old number (as Muen's example component does it).
    pub fn arm(&mut self, event: u8, trigger: Tsc) -> Result<(), InvalidEventNumber> {
        if event > EVENT_NUMBER_MAX {
            return Err(InvalidEventNumber(event));
        }
        let record = self.record.as_ptr();
        // SAFETY: `record` is valid and aligned for writes for 'a and `&mut self` makes
        // this the only writer in this program. Volatile accesses are not reordered
        // with each other, and x86 keeps stores in program order.
        unsafe {
            addr_of_mut!((*record).event).write_volatile(u64::from(event));
            addr_of_mut!((*record).tsc_trigger_value).write_volatile(trigger.ticks());
        }
        Ok(())
    }

    /// Cancels a pending trigger (sets it to `u64::MAX`, as the kernel does after
    /// firing).
    pub fn disarm(&mut self) {
        // SAFETY: as in `arm`.
        unsafe { addr_of_mut!((*self.record.as_ptr()).tsc_trigger_value).write_volatile(DISARMED) };
    }
}

impl fmt::Debug for TimedEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedEvent")
            .field("tsc_trigger_value", &self.tsc_trigger_value())
            .field("event_number", &self.event_number())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_disarmed_and_arms_with_number_and_trigger() {
        let mut record = TimedEventRecord::default();
        let mut view = TimedEvent::new(&mut record);
        assert!(!view.is_armed());
        assert_eq!(view.event_number(), 0);

        view.arm(63, Tsc::from_ticks(12_345)).unwrap();
        assert!(view.is_armed());
        assert_eq!(view.tsc_trigger_value(), Tsc::from_ticks(12_345));
        assert_eq!(view.event_number(), 63);

        assert_eq!(
            view.arm(64, Tsc::from_ticks(1)),
            Err(InvalidEventNumber(64))
        );
        assert_eq!(
            view.tsc_trigger_value(),
            Tsc::from_ticks(12_345),
            "a refused arm changes nothing"
        );

        view.disarm();
        assert!(!view.is_armed());
        // The view's borrow ends here; the record holds what it wrote.
        assert_eq!(
            record,
            TimedEventRecord {
                tsc_trigger_value: u64::MAX,
                event: 63
            }
        );
    }

    #[test]
    fn reads_only_six_bits_of_the_event_field() {
        let mut record = TimedEventRecord {
            tsc_trigger_value: 5,
            event: 0xffff_ffff_ffff_ffc1,
        };
        let view = TimedEvent::new(&mut record);
        assert_eq!(view.event_number(), 1);
    }

    #[test]
    fn the_other_side_sees_writes_and_its_own_writes_are_seen() {
        let mut record = TimedEventRecord::default();
        let ptr = NonNull::from(&mut record);
        // SAFETY: `record` outlives the view and is only accessed through `ptr`.
        let mut view = unsafe { TimedEvent::from_ptr(ptr) };
        view.arm(3, Tsc::from_ticks(100)).unwrap();
        // The "kernel" fires the event and disarms.
        // SAFETY: `ptr` is valid; no reference to `record` is live.
        unsafe {
            assert_eq!(ptr.as_ptr().read_volatile().event, 3);
            addr_of_mut!((*ptr.as_ptr()).tsc_trigger_value).write_volatile(u64::MAX);
        }
        assert!(!view.is_armed());
    }
}
