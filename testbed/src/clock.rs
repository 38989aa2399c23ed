//! The time stamp counter: the clock of every Muen subject.
//!
//! Muen states all times in TSC ticks (minor frames, timed events, log timestamps). The
//! testbed reads the host TSC directly and measures its rate once at start; the subject
//! reads the same counter with `rdtsc` (`docs/hosted.md`, "Time").

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The current TSC value.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads a counter; it has no memory effects and is available on every
    // x86-64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The subject's TSC as the testbed sees it: the host's minus an offset.
///
/// A hosted subject reads the host's TSC (offset 0). A QEMU guest's TSC differs from
/// the host's by a constant (it ticks at the host's rate under KVM and under TCG, but
/// starts elsewhere): the boot stage reports its TSC just before the subject starts,
/// and the testbed sets the offset from it ([`SubjectClock::align`]). Every time the
/// testbed writes for the subject (minor frames, timed events, the time info base) or
/// reads from it (log timestamps) goes through this clock.
#[derive(Debug, Default)]
pub struct SubjectClock {
    offset: AtomicU64,
}

impl SubjectClock {
    /// The host's TSC (offset 0).
    pub const fn host() -> Self {
        SubjectClock {
            offset: AtomicU64::new(0),
        }
    }

    /// The subject's TSC now.
    pub fn now(&self) -> u64 {
        rdtsc().wrapping_sub(self.offset.load(Ordering::Acquire))
    }

    /// Sets the offset so that `subject_tsc` is the subject's TSC at host TSC
    /// `host_tsc`.
    pub fn align(&self, subject_tsc: u64, host_tsc: u64) {
        self.offset
            .store(host_tsc.wrapping_sub(subject_tsc), Ordering::Release);
    }

    /// The host TSC value at subject TSC value `subject_tsc`.
    pub fn to_host(&self, subject_tsc: u64) -> u64 {
        subject_tsc.wrapping_add(self.offset.load(Ordering::Acquire))
    }
}

pub use muen_abi::time::TscRate;

/// The host's TSC rate: the kernel's figure if it publishes one, otherwise measured
/// against the monotonic clock over 20 ms (about 0.01 % error).
pub fn host_tsc_rate() -> TscRate {
    if let Some(rate) = fs::read_to_string("/sys/devices/system/cpu/cpu0/tsc_freq_khz")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .and_then(TscRate::from_khz)
    {
        return rate;
    }
    measure_tsc_rate(Duration::from_millis(20))
}

/// Measures the host's TSC rate over `span`.
pub fn measure_tsc_rate(span: Duration) -> TscRate {
    let (t0, c0) = (Instant::now(), rdtsc());
    std::thread::sleep(span);
    let (c1, t1) = (rdtsc(), Instant::now());
    let ns = t1.duration_since(t0).as_nanos().max(1);
    let khz = u128::from(c1.wrapping_sub(c0)) * 1_000_000 / ns;
    let khz = u32::try_from(khz).unwrap_or(u32::MAX).max(1);
    TscRate::from_khz(khz).unwrap_or(TscRate::from_khz(1).expect("1 kHz is not 0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_clock_converts_both_ways() {
        let c = SubjectClock::host();
        assert_eq!(c.to_host(5), 5);
        assert!(c.now() >= 1);
        // A guest started later, whose TSC reads 1000 at host TSC 5000.
        c.align(1000, 5000);
        assert_eq!(c.to_host(1000), 5000);
        assert_eq!(c.to_host(1001), 5001);
        let before = rdtsc();
        let now = c.now();
        let after = rdtsc();
        assert!(before - 4000 <= now && now <= after - 4000);
        // A guest TSC ahead of the host's wraps and converts back exactly.
        c.align(9000, 5000);
        assert_eq!(c.to_host(9000), 5000);
    }

    #[test]
    fn the_tsc_advances_at_the_measured_rate() {
        let rate = measure_tsc_rate(Duration::from_millis(5));
        // Any real x86-64 TSC runs between 100 MHz and 10 GHz.
        assert!((100_000..10_000_000).contains(&rate.khz()), "{rate:?}");
        let a = rdtsc();
        let b = rdtsc();
        assert!(b >= a);
    }
}
