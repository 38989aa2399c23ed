//! The time info page that Muen's time subject publishes: wall clock time as a TSC
//! base, a TSC rate and a timezone.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::ptr::{addr_of, NonNull};

use muen_abi::layout::TIME_INFO;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Layout of the time info record at the start of the page.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct TimeInfoRecord {
    /// Microseconds since 1970-01-01T00:00:00 UTC at the moment the TSC was 0; 0 while
    /// the time subject has not published yet.
    pub tsc_time_base: u64,
    /// TSC rate in Hz.
    pub tsc_tick_rate_hz: u64,
    /// Offset of local time from UTC, in microseconds.
    pub timezone_microsecs: i64,
}

const _: () = assert!(size_of::<TimeInfoRecord>() == 24);
const _: () = assert!(offset_of!(TimeInfoRecord, tsc_tick_rate_hz) == 8);
const _: () = assert!(offset_of!(TimeInfoRecord, timezone_microsecs) == 16);
const _: () = assert!(TIME_INFO.address.is_aligned(8));
const _: () = assert!(TIME_INFO.size as usize >= size_of::<TimeInfoRecord>());

impl TimeInfoRecord {
    /// Slowest TSC rate Muen's time subject accepts (1 MHz).
    pub const TICK_RATE_MIN: u64 = 1_000_000;
    /// Fastest TSC rate Muen's time subject accepts (100 GHz).
    pub const TICK_RATE_MAX: u64 = 100_000_000_000;
    /// Westernmost timezone (UTC-12) in microseconds.
    pub const TIMEZONE_MIN: i64 = -12 * 3600 * 1_000_000;
    /// Easternmost timezone (UTC+14) in microseconds.
    pub const TIMEZONE_MAX: i64 = 14 * 3600 * 1_000_000;

    /// Checks the values against the ranges of Muen's time subject.
    pub fn validate(self) -> Result<Self, TimeInfoError> {
        if self.tsc_time_base == 0 {
            return Err(TimeInfoError::NotPublished);
        }
        if !(Self::TICK_RATE_MIN..=Self::TICK_RATE_MAX).contains(&self.tsc_tick_rate_hz) {
            return Err(TimeInfoError::TickRateOutOfRange(self.tsc_tick_rate_hz));
        }
        if !(Self::TIMEZONE_MIN..=Self::TIMEZONE_MAX).contains(&self.timezone_microsecs) {
            return Err(TimeInfoError::TimezoneOutOfRange(self.timezone_microsecs));
        }
        Ok(self)
    }

    /// UTC in microseconds since the Unix epoch when the TSC reads `tsc`.
    ///
    /// Uses a 128-bit intermediate and saturates instead of overflowing. On a record
    /// that did not pass [`TimeInfoRecord::validate`] a rate of 0 gives the base.
    pub fn utc_micros(&self, tsc: u64) -> u64 {
        let elapsed = (u128::from(tsc) * 1_000_000)
            .checked_div(u128::from(self.tsc_tick_rate_hz))
            .unwrap_or(0);
        let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
        self.tsc_time_base.saturating_add(elapsed)
    }

    /// Local time in microseconds since the Unix epoch when the TSC reads `tsc`.
    pub fn local_micros(&self, tsc: u64) -> u64 {
        self.utc_micros(tsc)
            .saturating_add_signed(self.timezone_microsecs)
    }
}

/// Why a time info record cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInfoError {
    /// The base is 0: the time subject has not published the time yet.
    NotPublished,
    /// The TSC rate is outside 1 MHz ..= 100 GHz.
    TickRateOutOfRange(u64),
    /// The timezone is outside UTC-12 ..= UTC+14.
    TimezoneOutOfRange(i64),
}

impl fmt::Display for TimeInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeInfoError::NotPublished => f.write_str("tsc_time_base: not published yet (0)"),
            TimeInfoError::TickRateOutOfRange(rate) => write!(
                f,
                "tsc_tick_rate_hz: {rate} is outside {}..={}",
                TimeInfoRecord::TICK_RATE_MIN,
                TimeInfoRecord::TICK_RATE_MAX
            ),
            TimeInfoError::TimezoneOutOfRange(tz) => write!(
                f,
                "timezone_microsecs: {tz} is outside {}..={}",
                TimeInfoRecord::TIMEZONE_MIN,
                TimeInfoRecord::TIMEZONE_MAX
            ),
        }
    }
}

impl core::error::Error for TimeInfoError {}

/// A read-only view of a time info record written by another subject.
///
/// The record comes from a peer, so [`TimeInfo::read`] validates it before handing it
/// out. The time subject writes the base last when it publishes; `read` therefore loads
/// the base first and the rest only if the base is set.
#[derive(Clone, Copy)]
pub struct TimeInfo<'a> {
    record: NonNull<TimeInfoRecord>,
    _record: PhantomData<&'a TimeInfoRecord>,
}

// SAFETY: the view only performs volatile reads of plain integers.
unsafe impl Send for TimeInfo<'_> {}
// SAFETY: as above.
unsafe impl Sync for TimeInfo<'_> {}

impl<'a> TimeInfo<'a> {
    /// A view of a record in this program's memory (tests, a testbed's own copy).
    pub fn new(record: &'a TimeInfoRecord) -> Self {
        TimeInfo {
            record: NonNull::from(record),
            _record: PhantomData,
        }
    }

    /// A view of the record at `record`.
    ///
    /// # Safety
    ///
    /// `record` must be aligned and point to 24 bytes that stay mapped and readable for
    /// `'a`. Others may write them at any time; this program must not create Rust
    /// references to them.
    pub unsafe fn from_ptr(record: NonNull<TimeInfoRecord>) -> Self {
        TimeInfo {
            record,
            _record: PhantomData,
        }
    }

    /// A view of the page `libmutime` maps at [`TIME_INFO`] (`0xf_ffd0_0000`).
    ///
    /// # Safety
    ///
    /// The page must be mapped readable at that address for the rest of the program.
    pub unsafe fn from_fixed_address() -> TimeInfo<'static> {
        let address = TIME_INFO.address.as_u64() as usize as *mut TimeInfoRecord;
        // SAFETY: the address is a non-zero constant.
        let record = unsafe { NonNull::new_unchecked(address) };
        // SAFETY: the address is aligned (asserted above) and the caller guarantees the
        // mapping.
        unsafe { TimeInfo::from_ptr(record) }
    }

    /// The record as it is now, without validation (base read first).
    pub fn read_raw(&self) -> TimeInfoRecord {
        let record = self.record.as_ptr();
        // SAFETY: `record` is valid and aligned for reads for 'a (constructor contract);
        // `addr_of!` creates no reference to memory others may write.
        unsafe {
            TimeInfoRecord {
                tsc_time_base: addr_of!((*record).tsc_time_base).read_volatile(),
                tsc_tick_rate_hz: addr_of!((*record).tsc_tick_rate_hz).read_volatile(),
                timezone_microsecs: addr_of!((*record).timezone_microsecs).read_volatile(),
            }
        }
    }

    /// The published time information, validated.
    pub fn read(&self) -> Result<TimeInfoRecord, TimeInfoError> {
        self.read_raw().validate()
    }
}

impl fmt::Debug for TimeInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimeInfo").field(&self.read_raw()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLISHED: TimeInfoRecord = TimeInfoRecord {
        // 2024-01-01T00:00:00Z
        tsc_time_base: 1_704_067_200_000_000,
        tsc_tick_rate_hz: 2_900_123_000,
        timezone_microsecs: 3600 * 1_000_000,
    };

    #[test]
    fn unpublished_and_out_of_range_records_are_errors() {
        let start = TimeInfoRecord {
            tsc_time_base: 0,
            tsc_tick_rate_hz: 1_000_000,
            timezone_microsecs: 0,
        };
        assert_eq!(
            TimeInfo::new(&start).read(),
            Err(TimeInfoError::NotPublished)
        );
        let slow = TimeInfoRecord {
            tsc_tick_rate_hz: 999_999,
            ..PUBLISHED
        };
        assert_eq!(
            TimeInfo::new(&slow).read(),
            Err(TimeInfoError::TickRateOutOfRange(999_999))
        );
        let fast = TimeInfoRecord {
            tsc_tick_rate_hz: 100_000_000_001,
            ..PUBLISHED
        };
        assert_eq!(
            TimeInfo::new(&fast).read(),
            Err(TimeInfoError::TickRateOutOfRange(100_000_000_001))
        );
        for tz in [
            TimeInfoRecord::TIMEZONE_MIN - 1,
            TimeInfoRecord::TIMEZONE_MAX + 1,
        ] {
            let odd = TimeInfoRecord {
                timezone_microsecs: tz,
                ..PUBLISHED
            };
            assert_eq!(
                TimeInfo::new(&odd).read(),
                Err(TimeInfoError::TimezoneOutOfRange(tz))
            );
        }
        assert_eq!(TimeInfo::new(&PUBLISHED).read(), Ok(PUBLISHED));
    }

    #[test]
    fn converts_tsc_to_wall_clock_time() {
        let t = PUBLISHED;
        assert_eq!(t.utc_micros(0), t.tsc_time_base);
        // One second of ticks.
        assert_eq!(t.utc_micros(2_900_123_000), t.tsc_time_base + 1_000_000);
        assert_eq!(t.local_micros(0), t.tsc_time_base + 3_600_000_000);
        // No overflow at the extremes.
        assert_eq!(
            t.utc_micros(u64::MAX),
            t.tsc_time_base + 6_360_676_451_898_609
        );
        let broken = TimeInfoRecord {
            tsc_time_base: u64::MAX,
            tsc_tick_rate_hz: 0,
            timezone_microsecs: i64::MAX,
        };
        assert_eq!(broken.utc_micros(u64::MAX), u64::MAX);
        assert_eq!(broken.local_micros(1), u64::MAX);
    }

    #[test]
    fn sees_publication_through_the_pointer() {
        let mut record = TimeInfoRecord::default();
        let ptr = NonNull::from(&mut record);
        // SAFETY: `record` outlives the view and is only accessed through `ptr`.
        let view = unsafe { TimeInfo::from_ptr(ptr) };
        assert_eq!(view.read(), Err(TimeInfoError::NotPublished));
        // SAFETY: `ptr` is valid and no reference to `record` is live.
        unsafe { ptr.as_ptr().write_volatile(PUBLISHED) };
        assert_eq!(view.read(), Ok(PUBLISHED));
    }
}
