//! Channel throughput against plain `memcpy`, in one run: `cargo bench -p muen-channel`.
//!
//! Per configuration (1516-byte elements in a 1 MiB channel, 64-byte elements in a
//! 128 KiB channel) it measures:
//!
//! - `memcpy x2` (the baseline): per element, copy it from a private buffer into its
//!   ring slot and from the slot into another private buffer with
//!   `ptr::copy_nonoverlapping` (the platform `memcpy`), walking the same ring. These
//!   two copies are the data movement any SHMStream channel must do when the reader may
//!   not keep references into memory the writer can change; the ratio to them is the
//!   cost of the protocol (header accesses, checks, race-free copying).
//! - `channel 1 thread`: `Writer::write_bytes` then `Reader::read_bytes`, one thread.
//! - `channel 2 threads`: a writer thread and a reader thread with flow control: the
//!   writer waits while it is a full ring ahead of the reader's progress, which the
//!   reader publishes through a separate atomic (benchmark scaffolding only; SHMStream
//!   itself has no back channel). Elements/s counts elements received.
//! - `engine x2`, `atomic-memcpy x2`, `portable x2`: the two copies done with this
//!   crate's copy engine (`copy::load`/`copy::store`, the path the channel takes), with
//!   the `atomic-memcpy` crate and with this crate's portable engine (what Miri and
//!   non-x86 targets use), for the choice of copy engine explained in `src/copy.rs`.
//!
//! Each measurement runs 7 times, interleaved; the table shows the median. Bytes/s
//! counts element bytes delivered (once per element, not twice).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use muen_channel::{copy, epoch_from, ReadError, Reader, Region, RegionMut, Writer};

const PROTOCOL: u64 = 0xbe7c_0000_0000_0001;
const ROUNDS: usize = 7;

struct Config {
    name: &'static str,
    size: usize,
    region: usize,
    /// Elements per single-thread run.
    n: u64,
    /// Elements per two-thread run.
    n_threads: u64,
}

fn memory(len: usize) -> Vec<AtomicU64> {
    (0..len / 8).map(|_| AtomicU64::new(0)).collect()
}

fn element(size: usize) -> Vec<u8> {
    (0..size).map(|i| i as u8).collect()
}

/// Seconds for `n` iterations of the baseline.
fn memcpy_x2(c: &Config) -> f64 {
    let mut ring = vec![0u8; c.region];
    let slots = (c.region - 64) / c.size;
    let mut src = element(c.size);
    let mut dst = vec![0u8; c.size];
    let t = Instant::now();
    let mut slot = 0;
    for n in 0..c.n {
        src[..8].copy_from_slice(&n.to_le_bytes());
        let p = ring[64 + slot * c.size..].as_mut_ptr();
        // SAFETY: slot `slot` lies inside `ring`; the buffers do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(black_box(src.as_ptr()), p, c.size);
            std::ptr::copy_nonoverlapping(black_box(p as *const u8), dst.as_mut_ptr(), c.size);
        }
        black_box(&mut dst);
        slot += 1;
        if slot == slots {
            slot = 0;
        }
    }
    t.elapsed().as_secs_f64()
}

/// The two copies with another engine (`store` into the slot, `load` out of it).
fn engine_x2(
    c: &Config,
    store: impl Fn(*const u8, *mut u8, usize),
    load: impl Fn(*const u8, *mut u8, usize),
) -> f64 {
    let ring = memory(c.region);
    let base = ring.as_ptr() as *mut u8;
    let slots = (c.region - 64) / c.size;
    let mut src = element(c.size);
    let mut dst = vec![0u8; c.size];
    let t = Instant::now();
    let mut slot = 0;
    for n in 0..c.n {
        src[..8].copy_from_slice(&n.to_le_bytes());
        // SAFETY: slot `slot` lies inside `ring`, which is only accessed atomically.
        let p = unsafe { base.add(64 + slot * c.size) };
        store(black_box(src.as_ptr()), p, c.size);
        load(black_box(p as *const u8), dst.as_mut_ptr(), c.size);
        black_box(&mut dst);
        slot += 1;
        if slot == slots {
            slot = 0;
        }
    }
    t.elapsed().as_secs_f64()
}

fn atomic_memcpy_x2<const N: usize>(c: &Config) -> f64 {
    assert_eq!(N, c.size);
    engine_x2(
        c,
        // SAFETY: `d` is a slot of N bytes inside the atomically accessed ring; the
        // copy is a byte-wise atomic store. (`[u8; N]` has alignment 1.)
        |s, d, _| unsafe {
            let v = s.cast::<[u8; N]>().read();
            atomic_memcpy::atomic_store(d.cast::<[u8; N]>(), v, Ordering::Release)
        },
        // SAFETY: as above, a byte-wise atomic load into the private `d`.
        |s, d, _| unsafe {
            let v = atomic_memcpy::atomic_load(s.cast::<[u8; N]>(), Ordering::Acquire);
            d.cast::<[u8; N]>().write(v.assume_init())
        },
    )
}

fn engine_of_the_channel_x2(c: &Config) -> f64 {
    engine_x2(
        c,
        // SAFETY: slot inside the atomically accessed ring; private source.
        |s, d, n| unsafe { copy::store(s, d, n) },
        // SAFETY: slot inside the atomically accessed ring; private destination.
        |s, d, n| unsafe { copy::load(s, d, n) },
    )
}

fn portable_x2(c: &Config) -> f64 {
    engine_x2(
        c,
        // SAFETY: slot inside the atomically accessed ring; private source.
        |s, d, n| unsafe { copy::portable::store(s, d, n) },
        // SAFETY: slot inside the atomically accessed ring; private destination.
        |s, d, n| unsafe { copy::portable::load(s, d, n) },
    )
}

fn channel_1_thread(c: &Config) -> f64 {
    let ring = memory(c.region);
    let mut w = Writer::init(
        RegionMut::from_atomics(&ring).unwrap(),
        PROTOCOL,
        c.size,
        epoch_from(1),
    )
    .unwrap();
    let mut r = Reader::new(Region::from_atomics(&ring).unwrap(), PROTOCOL, c.size).unwrap();
    assert_eq!(r.drain(), Ok(0));
    let mut src = element(c.size);
    let mut dst = vec![0u8; c.size];
    let t = Instant::now();
    for n in 0..c.n {
        src[..8].copy_from_slice(&n.to_le_bytes());
        w.write_bytes(black_box(&src)).unwrap();
        r.read_bytes(&mut dst).unwrap();
        black_box(&mut dst);
    }
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(u64::from_le_bytes(dst[..8].try_into().unwrap()), c.n - 1);
    dt
}

fn channel_2_threads(c: &Config) -> f64 {
    let ring = memory(c.region);
    let mut w = Writer::init(
        RegionMut::from_atomics(&ring).unwrap(),
        PROTOCOL,
        c.size,
        epoch_from(1),
    )
    .unwrap();
    let mut r = Reader::new(Region::from_atomics(&ring).unwrap(), PROTOCOL, c.size).unwrap();
    assert_eq!(r.drain(), Ok(0));
    let elements = w.elements();
    let progress = AtomicU64::new(0);
    let total = c.n_threads;
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut src = element(c.size);
            // Reader progress as last seen; reloaded only when the ring looks full.
            let mut seen = 0;
            for n in 0..total {
                let mut spins = 0;
                while n - seen >= elements {
                    backoff(&mut spins);
                    seen = progress.load(Ordering::Acquire);
                }
                src[..8].copy_from_slice(&n.to_le_bytes());
                w.write_bytes(&src).unwrap();
            }
        });
        let mut dst = vec![0u8; c.size];
        let mut got = 0;
        let mut spins = 0;
        while got < total {
            match r.read_bytes(&mut dst) {
                Ok(()) => {
                    got += 1;
                    spins = 0;
                    progress.store(got, Ordering::Release);
                }
                Err(ReadError::NoData) => backoff(&mut spins),
                Err(e) => panic!("flow-controlled channel: {e}"),
            }
        }
        assert_eq!(u64::from_le_bytes(dst[..8].try_into().unwrap()), total - 1);
    });
    t.elapsed().as_secs_f64()
}

/// Spins briefly, then yields: on a loaded machine the other thread may be waiting
/// for this CPU.
fn backoff(spins: &mut u32) {
    if *spins < 100 {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let configs = [
        Config {
            name: "1516 B elements, 1 MiB channel",
            size: 1516,
            region: 0x10_0000,
            n: 1_000_000,
            n_threads: 1_000_000,
        },
        Config {
            name: "64 B elements, 128 KiB channel",
            size: 64,
            region: 0x2_0000,
            n: 5_000_000,
            n_threads: 5_000_000,
        },
    ];
    let engine = if cfg!(target_arch = "x86_64") {
        if std::arch::is_x86_feature_detected!("avx") {
            "32-byte AVX moves above 64 B (stores from the end), 16-byte moves from 16 to 64 B"
        } else {
            "rep movsb above 64 B, 16-byte moves from 16 to 64 B"
        }
    } else {
        "portable word loop"
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "muen-channel throughput (copy engine: {engine}; {cpus} CPUs; median of {ROUNDS} runs)"
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        // Two-thread figures need two idle CPUs; say how busy the machine was.
        println!("load average at start: {}", load.trim());
    }
    for c in &configs {
        type Case = (&'static str, fn(&Config) -> f64);
        let cases: [Case; 6] = [
            ("memcpy x2 (baseline)", memcpy_x2),
            ("channel 1 thread", channel_1_thread),
            ("channel 2 threads", channel_2_threads),
            ("engine x2", engine_of_the_channel_x2),
            (
                "atomic-memcpy x2",
                if c.size == 1516 {
                    atomic_memcpy_x2::<1516>
                } else {
                    atomic_memcpy_x2::<64>
                },
            ),
            ("portable x2", portable_x2),
        ];
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
        for _ in 0..ROUNDS {
            for (i, (_, f)) in cases.iter().enumerate() {
                let n = if cases[i].0 == "channel 2 threads" {
                    c.n_threads
                } else {
                    c.n
                };
                times[i].push(f(c) / n as f64);
            }
        }
        println!("\n{}", c.name);
        println!(
            "{:<22} {:>14} {:>12} {:>10} {:>9}",
            "", "elements/s", "GB/s", "ns/elem", "vs memcpy"
        );
        let base = median(times[0].clone());
        for ((name, _), t) in cases.iter().zip(times) {
            let per = median(t);
            println!(
                "{:<22} {:>14.0} {:>12.2} {:>10.1} {:>9.2}",
                name,
                1.0 / per,
                c.size as f64 / per / 1e9,
                per * 1e9,
                base / per
            );
        }
    }
}
