//! The time stamp counter: the clock of every Muen subject.
//!
//! Muen states all times in TSC ticks (minor frames, timed events, log timestamps). The
//! testbed reads the host TSC directly and measures its rate once at start; the subject
//! reads the same counter with `rdtsc` (`docs/hosted.md`, "Time").

use std::fs;
use std::time::{Duration, Instant};

/// The current TSC value.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads a counter; it has no memory effects and is available on every
    // x86-64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The TSC rate, in kHz as Muen's sinfo page states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TscRate {
    khz: u32,
}

impl TscRate {
    /// A rate of `khz` kHz; `None` for 0.
    pub fn from_khz(khz: u32) -> Option<Self> {
        (khz != 0).then_some(TscRate { khz })
    }

    /// The host's rate: the kernel's figure if it publishes one, otherwise measured
    /// against the monotonic clock over 20 ms (about 0.01 % error).
    pub fn host() -> Self {
        if let Some(khz) = fs::read_to_string("/sys/devices/system/cpu/cpu0/tsc_freq_khz")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .and_then(TscRate::from_khz)
        {
            return khz;
        }
        Self::measure(Duration::from_millis(20))
    }

    /// Measures the rate over `span`.
    pub fn measure(span: Duration) -> Self {
        let (t0, c0) = (Instant::now(), rdtsc());
        std::thread::sleep(span);
        let (c1, t1) = (rdtsc(), Instant::now());
        let ns = t1.duration_since(t0).as_nanos().max(1);
        let khz = u128::from(c1.wrapping_sub(c0)) * 1_000_000 / ns;
        TscRate {
            khz: u32::try_from(khz).unwrap_or(u32::MAX).max(1),
        }
    }

    /// The rate in kHz.
    pub fn khz(self) -> u32 {
        self.khz
    }

    /// The rate in Hz.
    pub fn hz(self) -> u64 {
        u64::from(self.khz) * 1000
    }

    /// How long `ticks` last.
    pub fn duration(self, ticks: u64) -> Duration {
        let ns = u128::from(ticks) * 1_000_000 / u128::from(self.khz);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// How many ticks `duration` lasts (saturating).
    pub fn ticks(self, duration: Duration) -> u64 {
        let ticks = duration.as_nanos() * u128::from(self.khz) / 1_000_000;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let rate = TscRate::from_khz(2_500_000).unwrap();
        assert_eq!(rate.hz(), 2_500_000_000);
        assert_eq!(rate.ticks(Duration::from_millis(10)), 25_000_000);
        assert_eq!(rate.duration(25_000_000), Duration::from_millis(10));
        assert_eq!(rate.ticks(Duration::MAX), u64::MAX);
        assert!(TscRate::from_khz(0).is_none());
    }

    #[test]
    fn the_tsc_advances_at_the_measured_rate() {
        let rate = TscRate::measure(Duration::from_millis(5));
        // Any real x86-64 TSC runs between 100 MHz and 10 GHz.
        assert!((100_000..10_000_000).contains(&rate.khz()), "{rate:?}");
        let a = rdtsc();
        let b = rdtsc();
        assert!(b >= a);
    }
}
