//! Time as a Muen subject sees it: the time stamp counter (TSC), its rate, and
//! monotonic instants.
//!
//! Muen states every time in TSC ticks (minor frames, timed events, the time info page)
//! and gives each subject the TSC rate in kHz (sinfo `tsc_khz`). The types keep the two
//! units apart:
//!
//! - [`Tsc`]: a TSC reading (ticks since the TSC was 0, i.e. the machine's boot);
//! - [`TscRate`]: ticks per millisecond, converting between ticks and nanoseconds;
//! - [`Instant`]: monotonic time in nanoseconds since the TSC was 0;
//! - [`Duration`]: re-exported `core::time::Duration`.
//!
//! The conversions split the TSC into whole milliseconds and a remainder, so every
//! intermediate fits 64 bits: no overflow for 584 years (where nanoseconds stop fitting
//! `u64` and results saturate), at any rate from 1 kHz to 4.29 THz. The largest values,
//! [`Tsc::MAX`] and [`Instant::MAX`], mean "never" and convert into each other.

use core::fmt;
use core::num::NonZeroU32;
use core::ops::{Add, Sub};

pub use core::time::Duration;

/// Nanoseconds per millisecond (kHz = ticks per millisecond).
const NS_PER_MS: u64 = 1_000_000;

/// A reading of the time stamp counter: ticks since the TSC was 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tsc(u64);

impl Tsc {
    /// The TSC at 0.
    pub const ZERO: Tsc = Tsc(0);
    /// The largest reading: "never" as a deadline.
    pub const MAX: Tsc = Tsc(u64::MAX);

    /// The reading `ticks`.
    pub const fn from_ticks(ticks: u64) -> Self {
        Tsc(ticks)
    }

    /// The reading as a tick count.
    pub const fn ticks(self) -> u64 {
        self.0
    }

    /// The reading `ticks` later, saturating at [`Tsc::MAX`].
    pub const fn saturating_add(self, ticks: u64) -> Tsc {
        Tsc(self.0.saturating_add(ticks))
    }

    /// Ticks from `earlier` to `self`, 0 if `earlier` is later.
    pub const fn saturating_ticks_since(self, earlier: Tsc) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The rate of the TSC, in kHz as the sinfo page states it; never 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TscRate {
    khz: NonZeroU32,
}

impl TscRate {
    /// A TSC running at `khz` kHz; `None` for 0.
    pub const fn from_khz(khz: u32) -> Option<Self> {
        match NonZeroU32::new(khz) {
            Some(khz) => Some(TscRate { khz }),
            None => None,
        }
    }

    /// The rate in kHz.
    pub const fn khz(self) -> u32 {
        self.khz.get()
    }

    /// The rate in Hz.
    pub const fn hz(self) -> u64 {
        self.khz.get() as u64 * 1000
    }

    /// Nanoseconds for `ticks` ticks, rounded down (saturating at `u64::MAX`).
    pub const fn nanos(self, ticks: u64) -> u64 {
        let khz = self.khz.get() as u64;
        // ticks = ms * khz + rest with rest < khz, so rest * 10^6 < 2^32 * 10^6 < 2^52.
        let (ms, rest) = (ticks / khz, ticks % khz);
        ms.saturating_mul(NS_PER_MS)
            .saturating_add(rest * NS_PER_MS / khz)
    }

    /// Ticks for `ns` nanoseconds, rounded down (saturating at `u64::MAX`, so that
    /// "never" stays "never").
    pub const fn ticks_for_nanos(self, ns: u64) -> u64 {
        let khz = self.khz.get() as u64;
        // ns = ms * 10^6 + rest with rest < 10^6, so rest * khz < 10^6 * 2^32 < 2^52.
        let (ms, rest) = (ns / NS_PER_MS, ns % NS_PER_MS);
        ms.saturating_mul(khz)
            .saturating_add(rest * khz / NS_PER_MS)
    }

    /// How long `ticks` ticks last (rounded down).
    pub const fn duration(self, ticks: u64) -> Duration {
        Duration::from_nanos(self.nanos(ticks))
    }

    /// How many ticks `duration` lasts, rounded down (saturating).
    pub const fn ticks(self, duration: Duration) -> u64 {
        let ns = duration.as_nanos();
        let ns = if ns > u64::MAX as u128 {
            u64::MAX
        } else {
            ns as u64
        };
        self.ticks_for_nanos(ns)
    }

    /// The instant of TSC reading `tsc` ([`Tsc::MAX`] is [`Instant::MAX`]).
    pub const fn instant(self, tsc: Tsc) -> Instant {
        if tsc.0 == u64::MAX {
            return Instant::MAX;
        }
        Instant(self.nanos(tsc.0))
    }

    /// The TSC reading at `instant`, rounded down ([`Instant::MAX`] is [`Tsc::MAX`]).
    pub const fn tsc_at(self, instant: Instant) -> Tsc {
        if instant.0 == u64::MAX {
            return Tsc::MAX;
        }
        Tsc(self.ticks_for_nanos(instant.0))
    }
}

impl fmt::Display for TscRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} kHz", self.khz)
    }
}

/// A point in monotonic time: nanoseconds since the TSC was 0.
///
/// Arithmetic saturates: [`Instant::MAX`] is "never", and adding to it stays there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The TSC's zero.
    pub const ZERO: Instant = Instant(0);
    /// The latest instant: "never" as a deadline.
    pub const MAX: Instant = Instant(u64::MAX);

    /// The instant `ns` nanoseconds after the TSC's zero.
    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }

    /// Nanoseconds since the TSC's zero.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The instant `duration` later, saturating at [`Instant::MAX`].
    pub const fn saturating_add(self, duration: Duration) -> Instant {
        let ns = duration.as_nanos();
        if ns > u64::MAX as u128 {
            return Instant::MAX;
        }
        Instant(self.0.saturating_add(ns as u64))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at [`Instant::MAX`].
    fn add(self, duration: Duration) -> Instant {
        self.saturating_add(duration)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    /// Zero if `earlier` is later.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09} s",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_at_ordinary_rates() {
        let c = TscRate::from_khz(2_900_123).unwrap();
        assert_eq!(c.nanos(0), 0);
        assert_eq!(c.nanos(2_900_123), 1_000_000);
        assert_eq!(c.nanos(2_900_123_000), 1_000_000_000);
        assert_eq!(c.ticks_for_nanos(1_000_000_000), 2_900_123_000);
        assert_eq!(c.hz(), 2_900_123_000);
        // Rounding down both ways never moves a value forward.
        for t in [1u64, 999, 2_900_122, 12_345_678_901, 1 << 50] {
            assert!(c.ticks_for_nanos(c.nanos(t)) <= t);
            assert_eq!(
                u128::from(c.nanos(t)),
                u128::from(t) * 1_000_000 / 2_900_123
            );
        }
        assert_eq!(TscRate::from_khz(0), None);
        let r = TscRate::from_khz(2_500_000).unwrap();
        assert_eq!(r.ticks(Duration::from_millis(10)), 25_000_000);
        assert_eq!(r.duration(25_000_000), Duration::from_millis(10));
        assert_eq!(r.ticks(Duration::MAX), u64::MAX);
    }

    #[test]
    fn no_overflow_at_extreme_rates_and_uptimes() {
        let year_ns: u64 = 365 * 24 * 3600 * 1_000_000_000;
        for khz in [1u32, 1_000, 2_900_123, 5_000_000, u32::MAX] {
            let c = TscRate::from_khz(khz).unwrap();
            // Exact reference with 128-bit arithmetic.
            let exact = |t: u64| {
                u64::try_from(u128::from(t) * 1_000_000 / u128::from(khz)).unwrap_or(u64::MAX)
            };
            let exact_ticks = |ns: u64| {
                u64::try_from(u128::from(ns) * u128::from(khz) / 1_000_000).unwrap_or(u64::MAX)
            };
            // Ten years of uptime, and the largest TSC value.
            let ten_years = c.ticks_for_nanos(10 * year_ns);
            assert_eq!(ten_years, exact_ticks(10 * year_ns), "{khz}");
            assert_eq!(c.nanos(ten_years), exact(ten_years), "{khz}");
            assert_eq!(c.nanos(u64::MAX), exact(u64::MAX), "{khz}");
            assert_eq!(c.ticks_for_nanos(u64::MAX), exact_ticks(u64::MAX), "{khz}");
            if khz <= 5_000_000 {
                // Below 5 GHz the TSC itself runs for decades before it wraps.
                assert!(c.nanos(ten_years) > 10 * year_ns - 1_000_000, "{khz}");
            }
        }
        // At 1 kHz the nanoseconds of u64::MAX ticks do not fit: saturated.
        assert_eq!(TscRate::from_khz(1).unwrap().nanos(u64::MAX), u64::MAX);
        assert_eq!(
            TscRate::from_khz(u32::MAX)
                .unwrap()
                .ticks_for_nanos(u64::MAX),
            u64::MAX
        );
    }

    proptest::proptest! {
        #[test]
        fn matches_128_bit_arithmetic(khz in 1u32.., t in proptest::num::u64::ANY) {
            let c = TscRate::from_khz(khz).unwrap();
            let exact = u64::try_from(u128::from(t) * 1_000_000 / u128::from(khz)).unwrap_or(u64::MAX);
            proptest::prop_assert_eq!(c.nanos(t), exact);
            let exact = u64::try_from(u128::from(t) * u128::from(khz) / 1_000_000).unwrap_or(u64::MAX);
            proptest::prop_assert_eq!(c.ticks_for_nanos(t), exact);
        }
    }

    #[test]
    fn never_stays_never() {
        let c = TscRate::from_khz(3_000_000).unwrap();
        assert_eq!(c.instant(Tsc::MAX), Instant::MAX);
        assert_eq!(c.tsc_at(Instant::MAX), Tsc::MAX);
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO.saturating_add(Duration::MAX), Instant::MAX);
        assert_eq!(Tsc::MAX.saturating_add(5), Tsc::MAX);
        let t = Instant::from_nanos(1_500_000_000);
        assert_eq!(c.tsc_at(t), Tsc::from_ticks(4_500_000_000));
        assert_eq!(c.instant(Tsc::from_ticks(4_500_000_000)), t);
        assert_eq!(t - Instant::from_nanos(500_000_000), Duration::from_secs(1));
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(
            Tsc::from_ticks(5).saturating_ticks_since(Tsc::from_ticks(7)),
            0
        );
        extern crate std;
        assert_eq!(std::format!("{t}"), "1.500000000 s");
    }
}
