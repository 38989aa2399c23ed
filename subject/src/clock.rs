//! Time: the TSC as monotonic nanoseconds, and the wall clock.
//!
//! Muen gives every subject its TSC rate in kHz (sinfo `tsc_khz`), and `policy-gen` lets
//! the subject execute `rdtsc` without a VM exit. Monotonic time is the TSC since it was
//! 0 (boot), in nanoseconds. The conversions split the TSC into whole milliseconds and a
//! remainder, so every intermediate fits 64 bits: no overflow for 584 years (where the
//! nanoseconds themselves stop fitting `u64`, and the result saturates), at any rate
//! from 1 kHz to 4.29 THz.
//!
//! The wall clock comes from the time info page that Muen's time subject publishes
//! ([`muen_sinfo::TimeInfo`]); [`Runtime::wall_clock`](crate::Runtime::wall_clock)
//! waits a bounded time for it.

use core::num::NonZeroU32;

use muen_sinfo::TimeInfoRecord;

/// Nanoseconds per millisecond, the unit of the rate (kHz = ticks per millisecond).
const NS_PER_MS: u64 = 1_000_000;

/// Converts between TSC ticks and nanoseconds at a fixed rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    khz: NonZeroU32,
}

impl Clock {
    /// A clock for a TSC running at `khz` kHz; `None` for 0.
    pub const fn new(khz: u32) -> Option<Self> {
        match NonZeroU32::new(khz) {
            Some(khz) => Some(Clock { khz }),
            None => None,
        }
    }

    /// The rate in kHz.
    pub const fn khz(&self) -> u32 {
        self.khz.get()
    }

    /// Nanoseconds for `ticks` TSC ticks (saturating at `u64::MAX`).
    pub const fn ns(&self, ticks: u64) -> u64 {
        let khz = self.khz.get() as u64;
        // ticks = ms * khz + rest with rest < khz, so rest * 10^6 < 2^32 * 10^6 < 2^52.
        let (ms, rest) = (ticks / khz, ticks % khz);
        ms.saturating_mul(NS_PER_MS)
            .saturating_add(rest * NS_PER_MS / khz)
    }

    /// TSC ticks for `ns` nanoseconds, rounded down (saturating at `u64::MAX`, so that
    /// a deadline of `u64::MAX` stays "never").
    pub const fn ticks(&self, ns: u64) -> u64 {
        let khz = self.khz.get() as u64;
        // ns = ms * 10^6 + rest with rest < 10^6, so rest * khz < 10^6 * 2^32 < 2^52.
        let (ms, rest) = (ns / NS_PER_MS, ns % NS_PER_MS);
        ms.saturating_mul(khz)
            .saturating_add(rest * khz / NS_PER_MS)
    }
}

/// Nanoseconds since the Unix epoch (UTC) when the TSC reads `tsc`, from a validated
/// time info record (saturating).
///
/// `tsc_time_base` is in microseconds; the TSC part uses the record's own rate in Hz
/// (which may be up to 10^11, so the product needs 128 bits).
pub fn wall_ns(record: &TimeInfoRecord, tsc: u64) -> u64 {
    let base = record.tsc_time_base.saturating_mul(1000);
    let elapsed = (u128::from(tsc) * 1_000_000_000)
        .checked_div(u128::from(record.tsc_tick_rate_hz))
        .unwrap_or(0);
    base.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_at_ordinary_rates() {
        let c = Clock::new(2_900_123).unwrap();
        assert_eq!(c.ns(0), 0);
        assert_eq!(c.ns(2_900_123), 1_000_000);
        assert_eq!(c.ns(2_900_123_000), 1_000_000_000);
        assert_eq!(c.ticks(1_000_000_000), 2_900_123_000);
        // Rounding down both ways never moves a value forward.
        for t in [1u64, 999, 2_900_122, 12_345_678_901, 1 << 50] {
            assert!(c.ticks(c.ns(t)) <= t);
            assert_eq!(u128::from(c.ns(t)), u128::from(t) * 1_000_000 / 2_900_123);
        }
        assert_eq!(Clock::new(0), None);
    }

    #[test]
    fn no_overflow_at_extreme_rates_and_uptimes() {
        let year_ns: u64 = 365 * 24 * 3600 * 1_000_000_000;
        for khz in [1u32, 1_000, 2_900_123, 5_000_000, u32::MAX] {
            let c = Clock::new(khz).unwrap();
            // Exact reference with 128-bit arithmetic.
            let exact = |t: u64| {
                u64::try_from(u128::from(t) * 1_000_000 / u128::from(khz)).unwrap_or(u64::MAX)
            };
            let exact_ticks = |ns: u64| {
                u64::try_from(u128::from(ns) * u128::from(khz) / 1_000_000).unwrap_or(u64::MAX)
            };
            // Ten years of uptime, and the largest TSC value.
            let ten_years = c.ticks(10 * year_ns);
            assert_eq!(ten_years, exact_ticks(10 * year_ns), "{khz}");
            assert_eq!(c.ns(ten_years), exact(ten_years), "{khz}");
            assert_eq!(c.ns(u64::MAX), exact(u64::MAX), "{khz}");
            assert_eq!(c.ticks(u64::MAX), exact_ticks(u64::MAX), "{khz}");
            if khz <= 5_000_000 {
                // Below 5 GHz the TSC itself runs for decades before it wraps.
                assert!(c.ns(ten_years) > 10 * year_ns - 1_000_000, "{khz}");
            }
        }
        // At 1 kHz the nanoseconds of u64::MAX ticks do not fit: saturated.
        assert_eq!(Clock::new(1).unwrap().ns(u64::MAX), u64::MAX);
        assert_eq!(Clock::new(u32::MAX).unwrap().ticks(u64::MAX), u64::MAX);
    }

    proptest::proptest! {
        #[test]
        fn matches_128_bit_arithmetic(khz in 1u32.., t in proptest::num::u64::ANY) {
            let c = Clock::new(khz).unwrap();
            let exact = u64::try_from(u128::from(t) * 1_000_000 / u128::from(khz)).unwrap_or(u64::MAX);
            proptest::prop_assert_eq!(c.ns(t), exact);
            let exact = u64::try_from(u128::from(t) * u128::from(khz) / 1_000_000).unwrap_or(u64::MAX);
            proptest::prop_assert_eq!(c.ticks(t), exact);
        }
    }

    #[test]
    fn wall_clock_from_a_time_info_record() {
        let r = TimeInfoRecord {
            tsc_time_base: 1_704_067_200_000_000,
            tsc_tick_rate_hz: 100_000_000_000,
            timezone_microsecs: 0,
        };
        assert_eq!(wall_ns(&r, 0), 1_704_067_200_000_000_000);
        assert_eq!(wall_ns(&r, 100_000_000_001), 1_704_067_201_000_000_000);
        // u64::MAX ticks at 100 GHz is about 5.8 years: no overflow in the product.
        assert_eq!(
            wall_ns(&r, u64::MAX),
            1_704_067_200_000_000_000 + 184_467_440_737_095_516
        );
        let broken = TimeInfoRecord {
            tsc_time_base: u64::MAX,
            tsc_tick_rate_hz: 0,
            timezone_microsecs: 0,
        };
        assert_eq!(wall_ns(&broken, 5), u64::MAX);
    }
}
