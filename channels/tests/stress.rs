//! Two threads, one channel: a writer thread writes numbered, checksummed elements as
//! fast as it can (no flow control, as on Muen), a reader thread reads them.
//!
//! The reader must never return a torn element (checksum) or one out of order
//! (number), and every gap must have been announced as an overrun of exactly its size:
//! the reader's bookkeeping `expected` is advanced only by successful reads (+1) and by
//! `Overrun { lost }` (+lost), and must match every element number it gets and, at the
//! end, the total written.
//!
//! `stress_10_million` is the full run: 10 million elements each through a small ring
//! of 64-byte elements and a 1 MiB ring of 1516-byte elements, and 2 million through a
//! 4-slot ring of 1516-byte elements, read one by one; then 4 million and 1 million
//! through the small rings read in batches (release build, explicit step in
//! `scripts/test.sh`): `cargo test --release -p muen-channel --test stress -- --ignored`.
//! `stress_short` runs with every `cargo test`, and with a handful of elements under
//! Miri, whose data-race detector then checks the element copy and the fences.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use muen_channel::{epoch_from, ReadError, Reader, Region, RegionMut, Writer};

const PROTOCOL: u64 = 0x5354_5245_5353_2121;

/// Fills `e` with element `n`: the number, a pattern derived from it (every word
/// differs between elements and within one), a checksum of both in the last 8 bytes.
fn make(n: u64, e: &mut [u8]) {
    let len = e.len();
    e[..8].copy_from_slice(&n.to_le_bytes());
    let seed = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for (i, chunk) in e[8..len - 8].chunks_mut(8).enumerate() {
        let w = seed ^ (i as u64 + 1).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        chunk.copy_from_slice(&w.to_le_bytes()[..chunk.len()]);
    }
    let sum = checksum(&e[..len - 8]);
    e[len - 8..].copy_from_slice(&sum.to_le_bytes());
}

/// Position-dependent sum of the 8-byte words (bytes for the rest).
fn checksum(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut h = 0u64;
    for (i, w) in (&mut words).enumerate() {
        h = h.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()).rotate_left(i as u32 % 64));
    }
    for &b in words.remainder() {
        h = h.wrapping_mul(31).wrapping_add(u64::from(b));
    }
    h
}

/// The element's number if it is intact, `None` if torn or corrupt: the element must
/// be exactly what `make` produces for the number it carries (pattern and checksum),
/// so any mix of two writes is caught.
fn check(e: &[u8], scratch: &mut [u8]) -> Option<u64> {
    let n = u64::from_le_bytes(e[..8].try_into().unwrap());
    make(n, scratch);
    (scratch == e).then_some(n)
}

#[derive(Debug, Default)]
struct Stats {
    read: u64,
    overruns: u64,
    /// Overruns of exactly one ring: only detected *after* a copy (the slot was
    /// overwritten while being copied); an overrun seen before copying loses more.
    during_copy: u64,
    lost: u64,
    max_gap: u64,
}

/// Writes `total` elements of `size` bytes through a `region_len` channel while a
/// second thread reads, `batch` elements at most per read (`read_batch_bytes`; 1 is
/// `read_bytes`); returns the reader's statistics after checking every element.
fn run(total: u64, size: usize, region_len: usize, block: u64, batch: usize) -> Stats {
    let memory: Vec<AtomicU64> = (0..region_len / 8).map(|_| AtomicU64::new(0)).collect();
    let memory = &memory[..];
    let mut writer = Writer::init(
        RegionMut::from_atomics(memory).unwrap(),
        PROTOCOL,
        size,
        epoch_from(1),
    )
    .unwrap();
    let mut reader = Reader::new(Region::from_atomics(memory).unwrap(), PROTOCOL, size).unwrap();
    let done = AtomicBool::new(false);
    let progress = AtomicU64::new(0);
    let ring = writer.elements();
    let half = (ring / 2).max(1);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut e = vec![0u8; size];
            for n in 0..total {
                // Alternate blocks of `block` elements: in even blocks the writer stays at
                // most half a ring ahead of the reader (test scaffolding: SHMStream has
                // no back channel), in odd blocks it runs free and laps the reader. So
                // both regimes occur on any machine, however the threads are scheduled.
                if n / block % 2 == 0 {
                    while n - progress.load(Ordering::Acquire).min(n) >= half {
                        std::thread::yield_now();
                    }
                }
                make(n, &mut e);
                writer.write_bytes(&e).unwrap();
            }
            done.store(true, Ordering::Release);
        });
        let mut stats = Stats::default();
        let mut buf = vec![0u8; size * batch];
        let mut scratch = vec![0u8; size];
        let mut expected = 0u64;
        let mut synchronised = false;
        loop {
            let result = if batch == 1 {
                reader.read_bytes(&mut buf).map(|()| 1)
            } else {
                reader.read_batch_bytes(&mut buf)
            };
            progress.store(reader.read_count(), Ordering::Release);
            match result {
                Ok(got) => {
                    assert!((1..=batch).contains(&got));
                    for e in buf.chunks(size).take(got) {
                        let n = check(e, &mut scratch).unwrap_or_else(|| {
                            panic!(
                                "torn element after {} good ones (expected #{expected})",
                                stats.read
                            )
                        });
                        assert_eq!(n, expected, "out of order or unannounced gap");
                        expected += 1;
                        stats.read += 1;
                    }
                }
                Err(ReadError::Overrun { lost }) => {
                    assert!(lost > 0);
                    expected += lost;
                    stats.overruns += 1;
                    stats.during_copy += u64::from(lost == ring);
                    stats.lost += lost;
                    stats.max_gap = stats.max_gap.max(lost);
                }
                Err(ReadError::NoData) | Err(ReadError::Inactive) => {
                    if done.load(Ordering::Acquire) && reader.read_count() == total {
                        break;
                    }
                    std::thread::yield_now();
                }
                Err(ReadError::EpochChanged) if !synchronised => synchronised = true,
                Err(e) => panic!("unexpected {e:?} after {stats:?}"),
            }
        }
        assert_eq!(expected, total, "elements unaccounted for");
        assert_eq!(stats.read + stats.lost, total);
        assert!(stats.read > 0);
        stats
    })
}

fn report(name: &str, total: u64, size: usize, region: usize, block: u64, batch: usize) {
    let t = Instant::now();
    let s = run(total, size, region, block, batch);
    let dt: Duration = t.elapsed();
    println!(
        "{name}: {total} x {size} B in a {region:#x} channel: {} read, {} lost in {} overruns \
         ({} caught after the copy, largest gap {}), {:.2} s",
        s.read,
        s.lost,
        s.overruns,
        s.during_copy,
        s.max_gap,
        dt.as_secs_f64()
    );
}

#[test]
fn stress_short() {
    if cfg!(miri) {
        // A 4-slot ring of 24-byte elements: overruns and copies racing with the writer.
        report("miri", 400, 24, 64 + 4 * 24, 16, 1);
        report("miri/batches of 3", 400, 24, 64 + 4 * 24, 16, 3);
    } else {
        report("short/64", 200_000, 64, 0x1000, 4096, 1);
        report("short/64/batches of 16", 100_000, 64, 0x1000, 4096, 16);
        report("short/1516", 50_000, 1516, 0x10_0000, 4096, 1);
        report("short/1516/4 slots", 50_000, 1516, 64 + 4 * 1516, 4096, 1);
        report(
            "short/1516/4 slots/batches of 3",
            50_000,
            1516,
            64 + 4 * 1516,
            4096,
            3,
        );
    }
}

#[test]
#[ignore = "long: run in release by scripts/test.sh"]
fn stress_10_million() {
    let total = 10_000_000;
    // 63 slots: the writer laps the reader all the time in the free-running blocks.
    report("64 B / 4 KiB", total, 64, 0x1000, 4096, 1);
    report("1516 B / 1 MiB", total, 1516, 0x10_0000, 4096, 1);
    // Four slots of 1516 bytes: the writer often rewrites the very slot the reader is
    // copying, which only the check after the copy can catch.
    report("1516 B / 4 slots", 2_000_000, 1516, 64 + 4 * 1516, 4096, 1);
    // Batch reads: one check for several copies, which the writer laps just as often.
    report(
        "64 B / 4 KiB, batches of 16",
        4_000_000,
        64,
        0x1000,
        4096,
        16,
    );
    report(
        "1516 B / 4 slots, batches of 3",
        1_000_000,
        1516,
        64 + 4 * 1516,
        4096,
        3,
    );
}
