//! This crate's channel against Solo5's C channel, in one process, through the same
//! loops: `cargo bench -p muen-channel --bench versus_solo5` (also run by
//! `cargo bench -p muen-channel`).
//!
//! The C side is Solo5's `bindings/muen/{channel,reader,writer}.c`, compiled from
//! `../shared/solo5` with Solo5's flags by the `solo5-channel-c` dev-dependency (see its
//! `build.rs`); without those sources this benchmark stops with a message naming them.
//!
//! Rows, for 64-byte elements in a 128 KiB channel and 1516-byte (muennet) elements in
//! a 1 MiB channel:
//!
//! - `batch`: one thread writes a ring's worth of elements, then reads them all;
//! - `one/one`: one thread writes one element, reads it, and so on;
//! - `two threads`: a writer thread and a reader thread pinned to CPUs 1 and 0. The
//!   writer stays less than a ring ahead of the reader's progress, which the reader
//!   publishes through an atomic beside the channel (scaffolding for both sides:
//!   SHMStream has no back channel). The writer thread moves to its CPU before the
//!   sample starts (it is created on the reader's CPU);
//! - `2 thr., batch reads`: the same, with this crate's reader taking up to 16
//!   waiting elements per call (`Reader::read_batch_bytes`: one counter snapshot and
//!   one check per batch); Solo5's C reader has no batch read and reads one.
//!
//! Every element carries its number; the reader checks each one, so both sides really
//! deliver every element in order. Each repetition runs every row for both sides (the
//! side that goes first alternates); 20 repetitions, medians, million elements per
//! second.
//!
//! Every sample gets memory of its own: the ring a fresh mapping (so that one run's
//! physical pages do not decide all its samples: with the ring reused, whole runs came
//! out a fifth slower or faster), the elements to write and the buffer to read into at
//! a 16-byte offset in a page that moves from sample to sample (see [`Placed`]: with
//! one placement per run, single-thread ratios moved by up to 0.15 between runs).
//!
//! The development machine is shared, so a sample (a few milliseconds) counts only if
//! no thread of it lost its CPU meanwhile: the threads' context switches
//! (`getrusage(RUSAGE_THREAD)`) are compared before and after, and a sample with a
//! switch is taken again (up to 20 times; the table says how many preempted samples
//! it had to use all the same). `nice -n -20` makes clean samples come sooner.
//!
//! Two-thread figures depend on how far apart the two vCPUs are: on the 2-vCPU
//! development machine the core-to-core latency is about 14 ns (the vCPUs share a
//! core), about 33 ns or 90-160 ns, and it changes between runs. Each two-thread sample is therefore bracketed by a
//! ping-pong measurement (one-way latency of a cache line bouncing between the two
//! pinned threads, itself taken without a context switch), and the table also shows
//! the two sides per latency mode, so that a comparison is made within one mode:
//! `sibling` (below 22 ns), `near` (below 45 ns), `far` (45 ns and more) and `mixed`
//! (the mode changed during the sample; no ratio). A mode's ratio is printed only where
//! each side has at least three samples in it (`MODE_SAMPLES_MIN`); the figures and
//! the sample counts are printed always.

use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use muen_channel::{epoch_from, ReadError, Region, RegionMut};
use solo5_channel_c::{ReadResult, Solo5};

const PROTOCOL: u64 = 0xbe7c_0000_0000_0002;
/// Repetitions of every row (`--repetitions N` changes it, e.g. for `perf record`).
const REPETITIONS: usize = 20;
/// One-way core-to-core latency below this is the "near" mode.
const NEAR_NS: f64 = 45.0;
/// Below this one-way latency the two vCPUs share a core (`sibling` mode).
const SIBLING_NS: f64 = 22.0;
/// Elements one batch read of the `two threads, batch reads` row takes at most.
const BATCH_READ: usize = 16;
/// Attempts at a sample without a context switch.
const ATTEMPTS: usize = 20;
/// Samples each side needs in a latency mode for that mode's ratio to be printed (a
/// median of one or two samples is one sample's luck).
const MODE_SAMPLES_MIN: usize = 3;
const READER_CPU: usize = 0;
const WRITER_CPU: usize = 1;

/// Page-aligned, zeroed memory for one channel, a fresh private mapping whose pages
/// are allocated before the sample (`MAP_POPULATE`). Only the channel implementations
/// access it (through raw pointers), never a Rust reference.
struct Memory {
    ptr: NonNull<u8>,
    len: usize,
}

impl Memory {
    fn new(len: usize) -> Memory {
        // SAFETY: a fresh private anonymous mapping, checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        let ptr = NonNull::new(p.cast::<u8>()).expect("mmap");
        Memory { ptr, len }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length; the channel ends borrowing it
        // (their lifetimes end before the memory is dropped).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A private buffer of `len` bytes at a 16-byte offset in a page (the alignment the
/// allocator gives) that changes from one buffer to the next (67 such steps further
/// each time, all 256 offsets in turn), so that the medians average over how the
/// buffers lie relative to cache lines and to the ring's slots (line splits, and 4 KiB
/// aliasing between a copy's loads and stores, depend on it) instead of keeping one
/// placement for a whole run.
struct Placed {
    buf: Vec<u8>,
    at: usize,
    len: usize,
}

impl Placed {
    fn new(len: usize, fill: u8) -> Placed {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let step = NEXT.fetch_add(67, Ordering::Relaxed) as usize % 256;
        let buf = vec![fill; len + 2 * 4096];
        let base = buf.as_ptr() as usize;
        let at = base.next_multiple_of(4096) - base + step * 16;
        Placed { buf, at, len }
    }
}

impl std::ops::Deref for Placed {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.at..self.at + self.len]
    }
}

impl std::ops::DerefMut for Placed {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.at..self.at + self.len]
    }
}

/// A value on 128 bytes of its own (two cache lines: the adjacent-line prefetcher
/// fetches lines in pairs).
#[repr(align(128))]
struct Padded<T>(T);

/// What a read gave, in terms both implementations share.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Element,
    NoData,
    Other(String),
}

trait ChannelWriter: Send {
    fn write(&mut self, element: &[u8]);
}

trait ChannelReader {
    fn read(&mut self, element: &mut [u8]) -> Got;

    /// Reads as many waiting elements as fit `elements` (a multiple of the element
    /// size) and returns how many. Without a batch API: one element.
    fn read_batch(&mut self, elements: &mut [u8], size: usize) -> Result<usize, Got> {
        match self.read(&mut elements[..size]) {
            Got::Element => Ok(1),
            other => Err(other),
        }
    }
}

/// One implementation: opens a writer and a synchronised reader on `memory`.
trait Side {
    const NAME: &'static str;
    type W<'a>: ChannelWriter
    where
        Self: 'a;
    type R<'a>: ChannelReader
    where
        Self: 'a;
    fn open(&self, memory: &Memory, size: usize) -> (Self::W<'_>, Self::R<'_>);
}

// ---- Solo5's C channel -------------------------------------------------------------

struct C(Solo5);

impl ChannelWriter for solo5_channel_c::Writer<'_> {
    #[inline]
    fn write(&mut self, element: &[u8]) {
        solo5_channel_c::Writer::write(self, element)
    }
}

impl ChannelReader for solo5_channel_c::Reader<'_> {
    #[inline]
    fn read(&mut self, element: &mut [u8]) -> Got {
        match solo5_channel_c::Reader::read(self, element) {
            ReadResult::Success => Got::Element,
            ReadResult::NoData => Got::NoData,
            other => Got::Other(format!("{other:?}")),
        }
    }
}

impl Side for C {
    const NAME: &'static str = "Solo5 C";
    type W<'a> = solo5_channel_c::Writer<'a>;
    type R<'a> = solo5_channel_c::Reader<'a>;

    fn open(&self, memory: &Memory, size: usize) -> (Self::W<'_>, Self::R<'_>) {
        let len = memory.len;
        // SAFETY: the memory is page-aligned, `len` bytes long and used only by this
        // writer and reader until they are dropped, which happens before `memory` is.
        let w =
            unsafe { solo5_channel_c::Writer::init(self.0, memory.ptr, len, PROTOCOL, size, 1) };
        // SAFETY: as above; the writer is an honest Solo5 writer of `size`-byte
        // elements.
        let mut r = unsafe { solo5_channel_c::Reader::new(self.0, memory.ptr, PROTOCOL, size) };
        let mut e = vec![0u8; size];
        assert_eq!(r.read(&mut e), ReadResult::EpochChanged);
        assert_eq!(r.read(&mut e), ReadResult::NoData);
        (w, r)
    }
}

// ---- this crate ------------------------------------------------------------------

struct Rust;

impl ChannelWriter for muen_channel::Writer<'_> {
    #[inline]
    fn write(&mut self, element: &[u8]) {
        self.write_bytes(element).unwrap()
    }
}

impl ChannelReader for muen_channel::Reader<'_> {
    #[inline]
    fn read(&mut self, element: &mut [u8]) -> Got {
        match self.read_bytes(element) {
            Ok(()) => Got::Element,
            Err(ReadError::NoData) => Got::NoData,
            Err(e) => Got::Other(e.to_string()),
        }
    }

    #[inline]
    fn read_batch(&mut self, elements: &mut [u8], _size: usize) -> Result<usize, Got> {
        match self.read_batch_bytes(elements) {
            Ok(n) => Ok(n),
            Err(ReadError::NoData) => Err(Got::NoData),
            Err(e) => Err(Got::Other(e.to_string())),
        }
    }
}

impl Side for Rust {
    const NAME: &'static str = "muen-channel";
    type W<'a> = muen_channel::Writer<'a>;
    type R<'a> = muen_channel::Reader<'a>;

    fn open(&self, memory: &Memory, size: usize) -> (Self::W<'_>, Self::R<'_>) {
        let len = memory.len;
        // SAFETY: the memory is valid for the borrow of `memory`, accessed only through
        // these handles, and writable.
        let (rw, ro) = unsafe {
            (
                RegionMut::new(memory.ptr.as_ptr(), len).unwrap(),
                Region::new(memory.ptr.as_ptr(), len).unwrap(),
            )
        };
        let w = muen_channel::Writer::init(rw, PROTOCOL, size, epoch_from(1)).unwrap();
        let mut r = muen_channel::Reader::new(ro, PROTOCOL, size).unwrap();
        let mut e = vec![0u8; size];
        assert_eq!(r.read_bytes(&mut e), Err(ReadError::EpochChanged));
        assert_eq!(r.read_bytes(&mut e), Err(ReadError::NoData));
        (w, r)
    }
}

// ---- the loops -------------------------------------------------------------------

struct Config {
    name: &'static str,
    size: usize,
    region: usize,
    /// Elements per sample (single-thread rows).
    n: u64,
    /// Elements per sample (two threads).
    n_threads: u64,
}

impl Config {
    fn ring(&self) -> u64 {
        ((self.region - 64) / self.size) as u64
    }
}

#[inline(always)]
fn stamp(e: &mut [u8], n: u64) {
    e[..8].copy_from_slice(&n.to_le_bytes());
}

#[inline(always)]
fn check(e: &[u8], n: u64) {
    let got = u64::from_le_bytes(e[..8].try_into().unwrap());
    if got != n {
        panic!("element {n} arrived as {got}");
    }
}

fn expect_element(got: Got, n: u64) {
    if got != Got::Element {
        panic!("element {n}: {got:?}");
    }
}

/// A measurement: seconds per element, and whether a thread of it lost its CPU.
#[derive(Clone, Copy, Debug)]
struct Timing {
    per_element: f64,
    preempted: bool,
}

/// Context switches of the calling thread so far (voluntary ones too: a `sched_yield`
/// that lets another process run is one).
fn switches() -> i64 {
    // SAFETY: `usage` is a plain struct the call fills in.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
        usage.ru_nvcsw + usage.ru_nivcsw
    }
}

/// Times `f`, which handles `elements` elements on this thread.
fn timed(elements: u64, f: impl FnOnce()) -> Timing {
    let before = switches();
    let t = Instant::now();
    f();
    let dt = t.elapsed().as_secs_f64();
    Timing {
        per_element: dt / elements as f64,
        preempted: switches() != before,
    }
}

/// Takes samples until one ran without a context switch (at most `ATTEMPTS`).
fn clean<T>(mut sample: impl FnMut() -> (T, bool)) -> (T, bool) {
    let mut last = sample();
    for _ in 1..ATTEMPTS {
        if !last.1 {
            break;
        }
        last = sample();
    }
    last
}

/// A ring's worth written, then read, repeatedly.
fn batch<S: Side>(side: &S, c: &Config) -> Timing {
    let memory = Memory::new(c.region);
    let (mut w, mut r) = side.open(&memory, c.size);
    let ring = c.ring();
    let rounds = c.n.div_ceil(ring);
    let mut src = Placed::new(c.size, 0xa5);
    let mut dst = Placed::new(c.size, 0);
    let t = timed(rounds * ring, || {
        let mut next = 0;
        for _ in 0..rounds {
            for n in next..next + ring {
                stamp(&mut src, n);
                w.write(black_box(&src));
            }
            for n in next..next + ring {
                expect_element(r.read(&mut dst), n);
                check(black_box(&dst), n);
            }
            next += ring;
        }
    });
    assert_eq!(r.read(&mut dst), Got::NoData);
    t
}

/// Write one, read it.
fn one_one<S: Side>(side: &S, c: &Config) -> Timing {
    let memory = Memory::new(c.region);
    let (mut w, mut r) = side.open(&memory, c.size);
    let mut src = Placed::new(c.size, 0xa5);
    let mut dst = Placed::new(c.size, 0);
    let t = timed(c.n, || {
        for n in 0..c.n {
            stamp(&mut src, n);
            w.write(black_box(&src));
            expect_element(r.read(&mut dst), n);
            check(black_box(&dst), n);
        }
    });
    assert_eq!(r.read(&mut dst), Got::NoData);
    t
}

/// Writer thread on `WRITER_CPU`, reader on this thread (pinned to `READER_CPU`),
/// reading up to `batch` elements per call ([`ChannelReader::read_batch`]; 1: `read`).
fn two_threads<S: Side>(side: &S, c: &Config, batch: usize) -> Timing {
    let memory = Memory::new(c.region);
    let (w, mut r) = side.open(&memory, c.size);
    let ring = c.ring();
    let total = c.n_threads;
    // Each on a line (pair) of its own, away from the reader's handle on this stack.
    let progress = Padded(AtomicU64::new(0));
    let ready = Padded(AtomicBool::new(false));
    let go = Padded(AtomicBool::new(false));
    let (progress, ready, go) = (&progress.0, &ready.0, &go.0);
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            // The writer's handle, which it changes with every element, lives on this
            // thread's stack, not beside the reader's (a shared line would cost either
            // side transfers the other does not pay).
            let mut w = w;
            // The thread starts on the reader's CPU (it inherits its affinity) and
            // must get there once to move itself: before the sample, not during it.
            pin(WRITER_CPU);
            let mut src = Placed::new(c.size, 0xa5);
            ready.store(true, Ordering::Release);
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let before = switches();
            // Reader progress as last seen; reloaded only when the ring looks full.
            let mut seen = 0;
            for n in 0..total {
                while n - seen >= ring {
                    backoff();
                    seen = progress.load(Ordering::Acquire);
                }
                stamp(&mut src, n);
                w.write(&src);
            }
            switches() != before
        });
        let mut dst = Placed::new(c.size * batch, 0);
        // Lets the writer run on this CPU until it has moved to its own.
        while !ready.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        go.store(true, Ordering::Release);
        let t = timed(total, || {
            let mut n = 0;
            while n < total {
                let got = if batch == 1 {
                    match r.read(&mut dst) {
                        Got::Element => Ok(1),
                        other => Err(other),
                    }
                } else {
                    // Never more than the writer will write.
                    let room = batch.min((total - n) as usize);
                    r.read_batch(&mut dst[..room * c.size], c.size)
                };
                match got {
                    Ok(k) => {
                        for e in dst.chunks_exact(c.size).take(k) {
                            check(e, n);
                            n += 1;
                        }
                        progress.store(n, Ordering::Release);
                    }
                    Err(Got::NoData) => backoff(),
                    Err(e) => panic!("flow-controlled channel, element {n}: {e:?}"),
                }
            }
        });
        let writer_preempted = writer.join().unwrap();
        Timing {
            per_element: t.per_element,
            preempted: t.preempted || writer_preempted,
        }
    })
}

/// Waits for the other thread: spins (both threads have a CPU of their own; a yield
/// would hand the CPU to another process and spoil the sample).
fn backoff() {
    std::hint::spin_loop();
}

fn pin(cpu: usize) {
    // SAFETY: `set` is a plain bit set on the stack, passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            panic!(
                "cannot pin a thread to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// One-way core-to-core latency in ns: a counter bounced between this thread
/// (`READER_CPU`) and one on `WRITER_CPU`, taken again until neither thread had a
/// context switch meanwhile.
fn ping_pong() -> f64 {
    const ROUND_TRIPS: u64 = 2_000;
    clean(|| {
        let ball = AtomicU64::new(0);
        std::thread::scope(|s| {
            let other = s.spawn(|| {
                pin(WRITER_CPU);
                let before = switches();
                for i in 0..ROUND_TRIPS {
                    while ball.load(Ordering::Acquire) != 2 * i + 1 {
                        std::hint::spin_loop();
                    }
                    ball.store(2 * i + 2, Ordering::Release);
                }
                switches() != before
            });
            // The first round trip waits for the other thread to start and move to
            // its CPU (it starts on this one): not timed, and yielding.
            ball.store(1, Ordering::Release);
            while ball.load(Ordering::Acquire) != 2 {
                std::thread::yield_now();
            }
            let t = timed(2 * (ROUND_TRIPS - 1), || {
                for i in 1..ROUND_TRIPS {
                    ball.store(2 * i + 1, Ordering::Release);
                    while ball.load(Ordering::Acquire) != 2 * i + 2 {
                        std::hint::spin_loop();
                    }
                }
            });
            let other_preempted = other.join().unwrap();
            (t.per_element * 1e9, t.preempted || other_preempted)
        })
    })
    .0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// The two vCPUs share a core (below `SIBLING_NS`).
    Sibling,
    Near,
    Far,
    /// The latency before and after the sample fell into different modes.
    Mixed,
}

fn mode(before: f64, after: f64) -> Mode {
    let of = |ns: f64| {
        if ns < SIBLING_NS {
            Mode::Sibling
        } else if ns < NEAR_NS {
            Mode::Near
        } else {
            Mode::Far
        }
    };
    if of(before) == of(after) {
        of(before)
    } else {
        Mode::Mixed
    }
}

/// A two-thread sample: its timing and the ping-pong latency around it.
#[derive(Clone, Copy)]
struct Sample {
    timing: Timing,
    latency: f64,
    mode: Mode,
}

fn sampled(run: impl Fn() -> Timing) -> Sample {
    let before = ping_pong();
    let timing = clean(|| {
        let t = run();
        (t, t.preempted)
    })
    .0;
    let after = ping_pong();
    Sample {
        timing,
        latency: (before + after) / 2.0,
        mode: mode(before, after),
    }
}

/// A single-thread sample without a context switch (if one came in `ATTEMPTS`).
fn single_sample(run: impl Fn() -> Timing) -> Timing {
    clean(|| {
        let t = run();
        (t, t.preempted)
    })
    .0
}

fn melem(per_element: f64) -> f64 {
    1e-6 / per_element
}

/// Command line: `--repetitions N`, `--sizes 64,1516`, `--two-threads false` (to
/// profile a part with `perf`); `cargo bench` adds `--bench`.
struct Options {
    repetitions: usize,
    sizes: Vec<usize>,
    two_threads: bool,
}

fn options() -> Options {
    let mut o = Options {
        repetitions: REPETITIONS,
        sizes: vec![64, 1516],
        two_threads: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--repetitions" => o.repetitions = value().parse().expect("--repetitions N"),
            "--sizes" => {
                o.sizes = value()
                    .split(',')
                    .map(|s| s.parse().expect("--sizes 64,1516"))
                    .collect()
            }
            "--two-threads" => o.two_threads = value().parse().expect("--two-threads BOOL"),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

fn main() {
    let options = options();
    let solo5 = match Solo5::get() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("versus_solo5: {e}");
            std::process::exit(1);
        }
    };
    let c = C(solo5);
    // Samples of about 2-3 ms on the development machine.
    let configs = [
        Config {
            name: "64 B / 128 KiB",
            size: 64,
            region: 0x2_0000,
            n: 200_000,
            n_threads: 30_000,
        },
        Config {
            name: "1516 B / 1 MiB",
            size: 1516,
            region: 0x10_0000,
            n: 40_000,
            n_threads: 10_000,
        },
    ];
    pin(READER_CPU);
    println!("muen-channel versus Solo5's C channel, same process, same loops");
    println!("C: {} compiled with gcc {}", solo5.sources(), solo5.flags());
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    println!(
        "{} repetitions, medians; million elements/s; two threads: writer on CPU \
         {WRITER_CPU}, reader on CPU {READER_CPU}; ping-pong: one-way core-to-core latency \
         in ns, C / ours; preempted: samples used with a context switch, C / ours",
        options.repetitions
    );
    for cfg in configs.iter().filter(|c| options.sizes.contains(&c.size)) {
        type Single<S> = fn(&S, &Config) -> Timing;
        let rows: [(&str, Single<C>, Single<Rust>); 2] = [
            ("batch", batch::<C>, batch::<Rust>),
            ("one/one", one_one::<C>, one_one::<Rust>),
        ];
        let mut single: Vec<(Vec<Timing>, Vec<Timing>)> =
            vec![(Vec::new(), Vec::new()); rows.len()];
        // Two-thread rows: the reader reads one element per call, then (ours) up to
        // BATCH_READ per call; Solo5's C reader has no batch read and reads one.
        let variants = [("two threads", 1), ("2 thr., batch reads", BATCH_READ)];
        let mut threads: Vec<(Vec<Sample>, Vec<Sample>)> =
            vec![(Vec::new(), Vec::new()); variants.len()];
        // Repetition 0 warms up (caches, page tables, CPU frequency) and is not kept.
        for rep in 0..=options.repetitions {
            let keep = rep > 0;
            let c_first = rep % 2 == 0;
            for ((_, fc, fr), (tc, tr)) in rows.iter().zip(single.iter_mut()) {
                let (a, b) = if c_first {
                    let a = single_sample(|| fc(&c, cfg));
                    (a, single_sample(|| fr(&Rust, cfg)))
                } else {
                    let b = single_sample(|| fr(&Rust, cfg));
                    (single_sample(|| fc(&c, cfg)), b)
                };
                if keep {
                    tc.push(a);
                    tr.push(b);
                }
            }
            if !options.two_threads {
                continue;
            }
            for (&(_, batch), t) in variants.iter().zip(threads.iter_mut()) {
                let (a, b) = if c_first {
                    let a = sampled(|| two_threads(&c, cfg, batch));
                    (a, sampled(|| two_threads(&Rust, cfg, batch)))
                } else {
                    let b = sampled(|| two_threads(&Rust, cfg, batch));
                    (sampled(|| two_threads(&c, cfg, batch)), b)
                };
                if keep {
                    t.0.push(a);
                    t.1.push(b);
                }
            }
        }
        println!("\n{} ({} elements in the ring)", cfg.name, cfg.ring());
        println!(
            "{:<28} {:>10} {:>13} {:>7} {:>15} {:>10}",
            "",
            C::NAME,
            Rust::NAME,
            "ratio",
            "ping-pong",
            "preempted"
        );
        let preempted = |t: &[Timing]| t.iter().filter(|t| t.preempted).count();
        for ((name, _, _), (tc, tr)) in rows.iter().zip(&single) {
            let per = |t: &[Timing]| median(&t.iter().map(|t| t.per_element).collect::<Vec<_>>());
            let (mc, mr) = (melem(per(tc)), melem(per(tr)));
            println!(
                "{:<28} {:>10.1} {:>13.1} {:>7.2} {:>15} {:>10}",
                name,
                mc,
                mr,
                mr / mc,
                "",
                format!("{} / {}", preempted(tc), preempted(tr))
            );
        }
        if !options.two_threads {
            continue;
        }
        let all = |s: &[Sample]| {
            let per: Vec<f64> = s.iter().map(|s| s.timing.per_element).collect();
            let lat: Vec<f64> = s.iter().map(|s| s.latency).collect();
            (melem(median(&per)), median(&lat))
        };
        let timings = |s: &[Sample]| s.iter().map(|s| s.timing).collect::<Vec<_>>();
        for (&(name, _), t) in variants.iter().zip(&threads) {
            let (mc, lc) = all(&t.0);
            let (mr, lr) = all(&t.1);
            println!(
                "{:<28} {:>10.1} {:>13.1} {:>7.2} {:>15} {:>10}",
                format!("{name} (all)"),
                mc,
                mr,
                mr / mc,
                format!("{lc:.0} / {lr:.0}"),
                format!(
                    "{} / {}",
                    preempted(&timings(&t.0)),
                    preempted(&timings(&t.1))
                )
            );
            for (m, label) in [
                (Mode::Sibling, "sibling"),
                (Mode::Near, "near"),
                (Mode::Far, "far"),
                (Mode::Mixed, "mixed"),
            ] {
                let pick = |s: &[Sample]| -> Vec<Sample> {
                    s.iter().copied().filter(|s| s.mode == m).collect()
                };
                let (sc, sr) = (pick(&t.0), pick(&t.1));
                if sc.is_empty() && sr.is_empty() {
                    continue;
                }
                let fmt = |s: &[Sample]| {
                    if s.is_empty() {
                        ("-".to_string(), "-".to_string())
                    } else {
                        let (m, l) = all(s);
                        (format!("{m:.1}"), format!("{l:.0}"))
                    }
                };
                let ((vc, lc), (vr, lr)) = (fmt(&sc), fmt(&sr));
                let ratio = if sc.len() < MODE_SAMPLES_MIN
                    || sr.len() < MODE_SAMPLES_MIN
                    || m == Mode::Mixed
                {
                    "-".to_string()
                } else {
                    format!("{:.2}", all(&sr).0 / all(&sc).0)
                };
                println!(
                    "{:<28} {:>10} {:>13} {:>7} {:>15} {:>10}",
                    format!("{name} ({label})"),
                    vc,
                    vr,
                    ratio,
                    format!("{lc} / {lr}"),
                    format!("n = {} / {}", sc.len(), sr.len())
                );
            }
        }
    }
}
