//! The wall clock.
//!
//! Muen gives every subject its TSC rate in kHz (sinfo `tsc_khz`), and `policy-gen` lets
//! the subject execute `rdtsc` without a VM exit. Monotonic time is the TSC since it was
//! 0 (boot), as an [`Instant`](muen_abi::time::Instant) (`muen_abi::time` has the
//! conversions).
//!
//! The wall clock comes from the time info page that Muen's time subject publishes
//! ([`muen_sinfo::TimeInfo`]); [`Runtime::wall_clock`](crate::Runtime::wall_clock)
//! waits a bounded time for it.

use muen_abi::time::{Duration, Tsc};
use muen_sinfo::TimeInfoRecord;

/// The time since the Unix epoch (UTC) when the TSC reads `tsc`, from a validated time
/// info record (saturating at `u64::MAX` nanoseconds).
///
/// `tsc_time_base` is in microseconds; the TSC part uses the record's own rate in Hz
/// (which may be up to 10^11, so the product needs 128 bits).
pub fn wall_time(record: &TimeInfoRecord, tsc: Tsc) -> Duration {
    let base = record.tsc_time_base.saturating_mul(1000);
    let elapsed = (u128::from(tsc.ticks()) * 1_000_000_000)
        .checked_div(u128::from(record.tsc_tick_rate_hz))
        .unwrap_or(0);
    Duration::from_nanos(base.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_from_a_time_info_record() {
        let r = TimeInfoRecord {
            tsc_time_base: 1_704_067_200_000_000,
            tsc_tick_rate_hz: 100_000_000_000,
            timezone_microsecs: 0,
        };
        assert_eq!(
            wall_time(&r, Tsc::ZERO).as_nanos(),
            1_704_067_200_000_000_000
        );
        assert_eq!(
            wall_time(&r, Tsc::from_ticks(100_000_000_001)).as_nanos(),
            1_704_067_201_000_000_000
        );
        // u64::MAX ticks at 100 GHz is about 5.8 years: no overflow in the product.
        assert_eq!(
            wall_time(&r, Tsc::MAX).as_nanos(),
            1_704_067_200_000_000_000 + 184_467_440_737_095_516
        );
        let broken = TimeInfoRecord {
            tsc_time_base: u64::MAX,
            tsc_tick_rate_hz: 0,
            timezone_microsecs: 0,
        };
        assert_eq!(
            wall_time(&broken, Tsc::from_ticks(5)).as_nanos(),
            u128::from(u64::MAX)
        );
    }
}
