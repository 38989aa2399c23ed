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
/// starts elsewhere): the boot stage reports its TSC just before the subject starts and
/// keeps writing it into shared memory until the subject starts, and the testbed sets
/// the offset from the closest reading ([`closest_reading`], [`SubjectClock::align`]). Every time the
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

/// The closest pairing of a subject TSC value with the host TSC that `word` gives:
/// the subject keeps writing its TSC into `word`; each load is followed by a host
/// `rdtsc`, and the pair with the smallest difference wins (a value is never newer than
/// the host TSC read after it, so a larger difference only means an older value:
/// written long ago, or while the subject's vCPU was not running). The reads come in
/// short bursts with a pause of [`READ_PAUSE`] between them (the vCPU may need this
/// host CPU to run at all), until the value has changed in `bursts` of them or `limit`
/// passed. `None` if the word never changed (nobody writes it).
pub fn closest_reading(word: &AtomicU64, bursts: u32, limit: Duration) -> Option<(u64, u64)> {
    let start = Instant::now();
    let mut last = word.load(Ordering::Acquire);
    let mut fresh = 0;
    let mut best: Option<(u64, u64)> = None;
    while fresh < bursts && start.elapsed() < limit {
        let mut changed = false;
        for _ in 0..256 {
            let subject = word.load(Ordering::Acquire);
            let host = rdtsc();
            if subject == last {
                continue;
            }
            last = subject;
            changed = true;
            if best.is_none_or(|(s, h)| host.wrapping_sub(subject) < h.wrapping_sub(s)) {
                best = Some((subject, host));
            }
        }
        fresh += u32::from(changed);
        std::thread::sleep(READ_PAUSE);
    }
    best
}

/// The pause between two bursts of [`closest_reading`].
pub const READ_PAUSE: Duration = Duration::from_micros(50);

/// The host's TSC rate: the kernel's figure if it publishes one, otherwise measured
/// against the monotonic clock over 20 ms (about 0.01 % error, also on a loaded host).
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
///
/// Each end of the span is a TSC reading paired with the monotonic clock
/// (`paired_reading`), so that a preemption of this thread between the two readings
/// (common on a loaded host, and a millisecond of it would be an error of 5 % over
/// 20 ms) does not count.
pub fn measure_tsc_rate(span: Duration) -> TscRate {
    let (t0, c0) = paired_reading();
    std::thread::sleep(span);
    let (t1, c1) = paired_reading();
    let ns = t1.duration_since(t0).as_nanos().max(1);
    let khz = u128::from(c1.wrapping_sub(c0)) * 1_000_000 / ns;
    let khz = u32::try_from(khz).unwrap_or(u32::MAX).max(1);
    TscRate::from_khz(khz).unwrap_or(TscRate::from_khz(1).expect("1 kHz is not 0"))
}

/// The monotonic time and the host TSC at (nearly) the same moment: of several tries of
/// clock, `rdtsc`, clock, the one whose two clock readings lie closest together, with
/// the time halfway between them.
fn paired_reading() -> (Instant, u64) {
    let mut best: Option<(Duration, Instant, u64)> = None;
    for _ in 0..32 {
        let before = Instant::now();
        let tsc = rdtsc();
        let after = Instant::now();
        let gap = after.duration_since(before);
        if best.is_none_or(|(g, ..)| gap < g) {
            best = Some((gap, before + gap / 2, tsc));
        }
    }
    best.map(|(_, at, tsc)| (at, tsc))
        .unwrap_or_else(|| (Instant::now(), rdtsc()))
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
    fn the_closest_reading_pairs_a_written_value_with_a_later_host_tsc() {
        let word = AtomicU64::new(7);
        // Nobody writes: no reading.
        assert_eq!(closest_reading(&word, 4, Duration::from_millis(20)), None);
        // A writer thread publishing the host TSC (a guest at offset 0).
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    word.store(rdtsc(), Ordering::Release);
                }
            });
            let (subject, host) =
                closest_reading(&word, 32, Duration::from_secs(10)).expect("the word changed");
            stop.store(true, Ordering::Relaxed);
            // Read after it was written, so never before it.
            assert!(host >= subject, "{host} < {subject}");
        });
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
