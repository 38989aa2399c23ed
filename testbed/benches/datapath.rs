//! Figures of the testbed's data paths, each beside the same host's raw figure measured
//! in the same run: `cargo bench -p muen-testbed --bench datapath`.
//!
//! - network: frames per second echoed through TAP -> bridge -> `|in` -> test subject
//!   -> `|out` -> bridge -> TAP, with 64 frames in flight, inside a private network
//!   namespace; beside a plain program echoing on a TAP interface (the host's TAP
//!   path without the testbed) and `memcpy` of the same frames;
//! - receive: frames per second the runtime's muennet driver takes out of a channel
//!   (in this process), beside the two copies it made per frame before;
//! - block: MB/s the test subject writes (then syncs) and reads through the block
//!   server, with as many requests in flight as its data buffer holds and with one;
//!   beside `pwrite` + `fdatasync` and `pread` of the same amount in the same chunks on
//!   an image on the same file system, to and from as many buffers in turn (also with
//!   the server's early write-back, and reads by two threads, as the server reads
//!   large requests), and `memcpy`;
//! - idle: CPU time per wall second of a subject sleeping on its timed event, and of
//!   the testbed meanwhile.
//!
//! The network figures need root (namespace, TAP); without root they are reported as
//! SKIPPED.

#[path = "../tests/common/netns.rs"]
#[allow(dead_code)] // shared with the tests, which use all of it
mod netns;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use muen_testbed::peers::tap::Tap;
use netns::{frame, Netns, PacketSocket, HOST_MAC, SUBJECT_MAC};

const TESTBED: &str = env!("CARGO_BIN_EXE_muen-testbed");
const SUBJECT: &str = env!("CARGO_BIN_EXE_testbed-subject");
const BLOCK_MIB: u64 = 256;
const CHUNK: usize = 4 << 20;
const WINDOW: usize = 64;
const NET_SECONDS: f64 = 1.0;
/// Rounds of each comparison; the best figure of each side is printed.
const ROUNDS: usize = 3;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Copies of `size`-byte frames per second (one copy per frame, over a ring).
fn memcpy_rate(size: usize) -> f64 {
    let src = vec![0x5au8; size * 1024];
    let mut dst = vec![0u8; size * 1024];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(300) {
        for i in 0..1024 {
            dst[i * size..(i + 1) * size].copy_from_slice(&src[i * size..(i + 1) * size]);
        }
        black_box(&mut dst);
        n += 1024;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Round trips per second on `sock` with `WINDOW` frames in flight.
fn echo_rate(sock: &PacketSocket, size: usize) -> f64 {
    let payload = vec![0x42u8; size - 14];
    let f = frame(SUBJECT_MAC, HOST_MAC, &payload);
    // Warm up and make sure the path works.
    for _ in 0..10 {
        assert!(sock.send(&f));
        sock.recv(Duration::from_secs(10))
            .expect("no echo: the path is broken");
    }
    let (mut received, mut in_flight) = (0u64, 0usize);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < NET_SECONDS {
        while in_flight < WINDOW {
            if !sock.send(&f) {
                break;
            }
            in_flight += 1;
        }
        match sock.recv(Duration::from_millis(200)) {
            Some(_) => {
                received += 1;
                in_flight = in_flight.saturating_sub(1);
            }
            // Frames were dropped somewhere: refill the window.
            None => in_flight = 0,
        }
    }
    let rate = received as f64 / start.elapsed().as_secs_f64();
    sock.drain(Duration::from_millis(200));
    rate
}

/// Echo rates (60- and 1514-byte frames) of a plain program echoing on TAP `ifname`.
fn raw_echo(ns: &Netns, ifname: &str) -> [f64; 2] {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let stop = &stop;
        let echo = s.spawn(move || {
            ns.enter();
            let tap = Tap::open(ifname).expect("opening a TAP interface");
            let mut buf = [0u8; 2048];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut pfd = libc::pollfd {
                    fd: tap.fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: polls one live pollfd.
                unsafe { libc::poll(&mut pfd, 1, 100) };
                while let Ok(Some(n)) = tap.read(&mut buf) {
                    let mut reply = buf[..n].to_vec();
                    reply[..6].copy_from_slice(&buf[6..12]);
                    reply[6..12].copy_from_slice(&buf[..6]);
                    let _ = tap.write(&reply);
                }
            }
        });
        let rates = s
            .spawn(move || {
                ns.enter();
                assert!(ns.wait_for_carrier(ifname, Duration::from_secs(10)));
                let sock = PacketSocket::open(ifname);
                [60, 1514].map(|size| echo_rate(&sock, size))
            })
            .join()
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        echo.join().unwrap();
        rates
    })
}

/// Echo rates through the testbed and the echoing test subject on TAP `ifname`.
fn testbed_echo(ns: &Netns, ifname: &str) -> [f64; 2] {
    let mut testbed = ns
        .command(TESTBED)
        .args(["run", "--exec", SUBJECT])
        .arg(example("echo"))
        .arg("--tap")
        .arg(format!("service0={ifname}"))
        .args(["--timeout", "120", "--", "echo"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let rates = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            assert!(ns.wait_for_carrier(ifname, Duration::from_secs(20)));
            let sock = PacketSocket::open(ifname);
            let rates = [60, 1514].map(|size| echo_rate(&sock, size));
            sock.send(&frame(SUBJECT_MAC, HOST_MAC, b"QUIT"));
            rates
        })
        .join()
        .unwrap()
    });
    let status = testbed.wait().unwrap();
    assert!(status.success(), "the testbed failed: {status}");
    rates
}

fn net() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("net: SKIPPED (needs root for a network namespace and TAP interfaces)");
        return;
    }
    let ns = Netns::new();
    // Alternating rounds, best of each: the machine may be shared, and a round that
    // lost the CPU to someone else says nothing about either path.
    let (mut raw, mut through) = ([0f64; 2], [0f64; 2]);
    for round in 0..ROUNDS {
        let r = raw_echo(&ns, &format!("tbraw{round}"));
        let t = testbed_echo(&ns, &format!("tbbench{round}"));
        for i in 0..2 {
            raw[i] = raw[i].max(r[i]);
            through[i] = through[i].max(t[i]);
        }
    }
    for (i, size) in [60usize, 1514].iter().enumerate() {
        println!(
            "net echo {size:>4}-byte frames: testbed {:>9.0} frames/s | raw TAP echo {:>9.0} frames/s \
             | memcpy {:>11.0} frames/s | testbed/raw {:.2}",
            through[i],
            raw[i],
            memcpy_rate(*size),
            through[i] / raw[i]
        );
    }
}

/// Frames per second the runtime's muennet driver (`MuenNet::receive`) takes out of a
/// muennet channel into a caller's buffer of FRAME_MAX bytes (the smoltcp adapter's),
/// in this process: a peer writes 512 frames of `size` bytes ahead, then the driver
/// reads them; only the reads are timed. Beside it the two copies `receive` made before
/// (the whole element into private memory with `Reader::read`, then its frame into the
/// buffer), on a channel of its own, in the same rounds.
fn receive_rates(size: usize) -> (f64, f64) {
    use muen_channel::protocol::muennet::{self, Element};
    use muen_channel::{epoch_from, Reader, Region, RegionMut, Writer};
    use muen_sim::peers::muennet_device;
    use muen_sim::{shared, SimSys};
    use muen_subject::device::NetDevice;
    use muen_subject::device::FRAME_MAX;
    use muen_subject::net::MuenNet;

    const BATCH: usize = 512;
    const CHANNEL: usize = 0x10_0000;
    let frame: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let sys = SimSys::leaked();
    let (info, mut peer) = muennet_device("bench", "net0", CHANNEL, true);
    // SAFETY: the page names leaked buffers, alive for the rest of the process.
    let mut net = unsafe { MuenNet::acquire(sys, &info, "net0") }.expect("a muennet device");
    let memory = shared(CHANNEL);
    let mut writer = Writer::init(
        RegionMut::from_atomics(memory).expect("a region"),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
        epoch_from(7),
    )
    .expect("a channel");
    let mut reader = Reader::new(
        Region::from_atomics(memory).expect("a region"),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
    )
    .expect("a reader");
    let mut buf = [0u8; FRAME_MAX];
    // Synchronise both readers (the first read of an epoch returns no element).
    peer.send(&frame);
    assert_eq!(net.receive(&mut buf), Ok(size));
    let _ = reader.read::<Element>();
    let element = Element::new(&frame).expect("a frame");
    let (mut one, mut two) = (Duration::ZERO, Duration::ZERO);
    let mut frames = 0u64;
    while (one + two) < Duration::from_millis(600) {
        for _ in 0..BATCH {
            peer.send(&frame);
            writer.write(&element).expect("an element");
        }
        let start = Instant::now();
        for _ in 0..BATCH {
            let n = net.receive(&mut buf).expect("a frame");
            black_box(&buf[..n]);
        }
        one += start.elapsed();
        let start = Instant::now();
        for _ in 0..BATCH {
            let e = reader.read::<Element>().expect("an element");
            let f = e.frame().expect("a frame");
            buf[..f.len()].copy_from_slice(f);
            black_box(&buf[..f.len()]);
        }
        two += start.elapsed();
        frames += BATCH as u64;
    }
    (
        frames as f64 / one.as_secs_f64(),
        frames as f64 / two.as_secs_f64(),
    )
}

fn net_receive() {
    for size in [60usize, 1514] {
        let (mut one, mut two) = (0f64, 0f64);
        for _ in 0..ROUNDS {
            let (a, b) = receive_rates(size);
            one = one.max(a);
            two = two.max(b);
        }
        println!(
            "net receive {size:>4}-byte frames: MuenNet::receive (one copy) {:>6.2} M frames/s | \
             element, then frame (two copies, as before) {:>6.2} M frames/s | one/two {:.2}",
            one / 1e6,
            two / 1e6,
            one / two
        );
    }
}

/// Shared mappings of 4 MiB each, the kind of memory the block server transfers to and
/// from (the subject's data buffer lives in a shared memory file). Reading into private
/// heap memory is markedly slower on some hosts, which would make the raw figure
/// unfair.
struct SharedBuffers {
    base: *mut u8,
    count: usize,
}

// SAFETY: the buffers are plain memory that threads reach only through the kernel
// (`pread` into disjoint halves); the mapping lives until the struct is dropped, after
// the scoped threads ended.
unsafe impl Sync for SharedBuffers {}

impl SharedBuffers {
    fn new(count: usize, fill: u8) -> Self {
        let len = CHUNK * count;
        // SAFETY: an anonymous shared mapping of `len` bytes; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: the mapping is `len` bytes, writable and ours alone.
        unsafe { std::ptr::write_bytes(p.cast::<u8>(), fill, len) };
        SharedBuffers {
            base: p.cast(),
            count,
        }
    }

    /// Buffer `i` of them, in turn.
    fn nth(&self, i: usize) -> *mut libc::c_void {
        // SAFETY: `i % count` buffers of CHUNK bytes lie inside the mapping.
        unsafe { self.base.add(i % self.count * CHUNK).cast() }
    }
}

impl Drop for SharedBuffers {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping `new` made.
        unsafe { libc::munmap(self.base.cast(), CHUNK * self.count) };
    }
}

/// `pwrite` + `fdatasync` and `pread` MB/s of `bytes` in CHUNK pieces on a new file,
/// to and from `buffers` buffers of CHUNK bytes in turn (as many as the testbed's
/// client keeps requests in flight, so that both touch the same amount of memory);
/// with `early_writeback`, each `pwrite` is followed by `sync_file_range` starting the
/// write-back of its range (what the block server does after each write).
fn raw_file(bytes: u64, buffers: usize, early_writeback: bool) -> Figures {
    use std::os::fd::AsRawFd;
    let path = tmp(&format!("bench-raw-{}.img", std::process::id()));
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(bytes).unwrap();
    let buf = SharedBuffers::new(buffers, 0x5a);
    let fd = file.as_raw_fd();
    let start = Instant::now();
    for (i, off) in (0..bytes).step_by(CHUNK).enumerate() {
        // SAFETY: writes CHUNK bytes from the live mapping.
        let n = unsafe { libc::pwrite(fd, buf.nth(i), CHUNK, off as libc::off_t) };
        assert_eq!(n, CHUNK as isize);
        if early_writeback {
            // SAFETY: plain sync_file_range on a descriptor we own.
            let r = unsafe {
                libc::sync_file_range(
                    fd,
                    off as libc::off64_t,
                    CHUNK as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            assert_eq!(r, 0);
        }
    }
    file.sync_data().unwrap();
    let write = bytes as f64 / 1e6 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for (i, off) in (0..bytes).step_by(CHUNK).enumerate() {
        // SAFETY: reads CHUNK bytes into the live mapping.
        let n = unsafe { libc::pread(fd, buf.nth(i), CHUNK, off as libc::off_t) };
        assert_eq!(n, CHUNK as isize);
    }
    let read = bytes as f64 / 1e6 / start.elapsed().as_secs_f64();
    // The same reads by two threads, each reading its half of every chunk, a chunk
    // done when both are (what the block server does with large reads).
    let barrier = std::sync::Barrier::new(2);
    let start = Instant::now();
    std::thread::scope(|s| {
        for half in 0..2 {
            let (barrier, buf) = (&barrier, &buf);
            s.spawn(move || {
                for (i, off) in (0..bytes).step_by(CHUNK).enumerate() {
                    let at = half * CHUNK / 2;
                    // SAFETY: reads half a chunk into its half of a buffer of the live
                    // mapping; the other thread reads the other half.
                    let n = unsafe {
                        libc::pread(
                            fd,
                            buf.nth(i).cast::<u8>().add(at).cast(),
                            CHUNK / 2,
                            (off + at as u64) as libc::off_t,
                        )
                    };
                    assert_eq!(n, (CHUNK / 2) as isize);
                    barrier.wait();
                }
            });
        }
    });
    let read_two = bytes as f64 / 1e6 / start.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Figures {
        write,
        read,
        read_two,
    }
}

/// MB/s of one pass.
#[derive(Clone, Copy, Default)]
struct Figures {
    write: f64,
    read: f64,
    /// Raw reads by two threads, half of each chunk each (0 for the testbed, which
    /// has no such figure).
    read_two: f64,
}

impl Figures {
    /// The better of each figure.
    fn best(self, other: Figures) -> Figures {
        Figures {
            write: self.write.max(other.write),
            read: self.read.max(other.read),
            read_two: self.read_two.max(other.read_two),
        }
    }
}

/// Write and read MB/s of the test subject through the block server, with up to
/// `in_flight` requests in flight (`None`: as many as its data buffer holds), and
/// that number.
fn testbed_block(bytes: u64, in_flight: Option<u64>) -> (Figures, usize) {
    let img = tmp(&format!("bench-block-{}.img", std::process::id()));
    std::fs::File::create(&img).unwrap().set_len(bytes).unwrap();
    let mut mode = vec!["block-bench".to_string(), (bytes >> 20).to_string()];
    mode.extend(in_flight.map(|n| n.to_string()));
    let out = Command::new(TESTBED)
        .args(["run", "--exec", SUBJECT])
        .arg(example("blockstore"))
        .arg("--disk")
        .arg(format!("storage={}", img.display()))
        .args(["--timeout", "300", "--"])
        .args(&mode)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&img);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "block bench failed: {log}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| -> f64 {
        log.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {log}"))
    };
    let figures = Figures {
        write: field("write_mb_s="),
        read: field("read_mb_s="),
        read_two: 0.0,
    };
    (figures, field("in_flight=") as usize)
}

/// Rounds of the block comparison (each takes about two seconds).
const BLOCK_ROUNDS: usize = 5;

fn block() {
    let bytes = BLOCK_MIB << 20;
    // The first large write of a run pays for the kernel making room in the page
    // cache; a warm-up pass keeps that out of both figures. Then alternating rounds,
    // best of each (the disk and CPUs may be shared).
    raw_file(bytes, 1, false);
    // The testbed with as many requests in flight as its buffer holds (N) and with
    // one, each beside raw I/O on as many buffers; raw with early write-back.
    // Best of each figure over the rounds.
    let [mut testbed, mut raw, mut testbed_one, mut raw_one, mut raw_early] =
        [Figures::default(); 5];
    let mut in_flight = 1;
    for _ in 0..BLOCK_ROUNDS {
        let (t, n) = testbed_block(bytes, None);
        in_flight = n;
        testbed = testbed.best(t);
        raw = raw.best(raw_file(bytes, n, false));
        testbed_one = testbed_one.best(testbed_block(bytes, Some(1)).0);
        raw_one = raw_one.best(raw_file(bytes, 1, false));
        raw_early = raw_early.best(raw_file(bytes, n, true));
    }
    let chunk = vec![0x5au8; CHUNK];
    let mut dst = vec![0u8; CHUNK];
    let start = Instant::now();
    for _ in 0..(bytes as usize / CHUNK) {
        dst.copy_from_slice(&chunk);
        black_box(&mut dst);
    }
    let memcpy = bytes as f64 / 1e6 / start.elapsed().as_secs_f64();
    println!(
        "block write ({BLOCK_MIB} MiB, 4 MiB requests, {in_flight} in flight, then sync): testbed {:>7.0} MB/s | \
         raw pwrite+fdatasync {:>7.0} MB/s | memcpy {memcpy:>7.0} MB/s | testbed/raw {:.2}",
        testbed.write,
        raw.write,
        testbed.write / raw.write
    );
    println!(
        "block read  ({BLOCK_MIB} MiB, 4 MiB requests, {in_flight} in flight):            testbed {:>7.0} MB/s | \
         raw pread           {:>7.0} MB/s | memcpy {memcpy:>7.0} MB/s | testbed/raw {:.2}",
        testbed.read,
        raw.read,
        testbed.read / raw.read
    );
    println!(
        "block write, 1 request in flight: testbed {:>7.0} MB/s | raw pwrite+fdatasync {:>7.0} MB/s \
         | testbed/raw {:.2}",
        testbed_one.write,
        raw_one.write,
        testbed_one.write / raw_one.write
    );
    println!(
        "block read,  1 request in flight: testbed {:>7.0} MB/s | raw pread           {:>7.0} MB/s \
         | testbed/raw {:.2}",
        testbed_one.read,
        raw_one.read,
        testbed_one.read / raw_one.read
    );
    println!(
        "block read, raw by two threads (half of each chunk each, as the server reads requests of \
         {} MiB or more): {in_flight} buffers {:>7.0} MB/s, testbed/that {:.2} | 1 buffer {:>7.0} MB/s, \
         testbed/that {:.2}",
        muen_testbed::peers::block::SPLIT_MIN >> 20,
        raw.read_two,
        testbed.read / raw.read_two,
        raw_one.read_two,
        testbed_one.read / raw_one.read_two
    );
    println!(
        "block write, raw with the server's early write-back (pwrite+sync_file_range, then \
         fdatasync): {:>7.0} MB/s | testbed/that {:.2}",
        raw_early.write,
        testbed.write / raw_early.write
    );
}

fn idle() {
    let out = Command::new(TESTBED)
        .args(["run", "--exec", SUBJECT])
        .arg(example("hello"))
        .args(["--stats", "--timeout", "60", "--", "idle", "5"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let field = |k: &str| -> f64 {
        stderr
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {stderr}"))
    };
    println!(
        "idle subject (5 s on its timed event): subject {:.3} % CPU (goal < 1 %) | testbed {:.3} % CPU \
         | wall {:.2} s",
        field("subject_cpu_pct="),
        field("testbed_cpu_pct="),
        field("wall_s=")
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects parts.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |part: &str| args.is_empty() || args.iter().any(|a| part.contains(a.as_str()));
    if wanted("net") {
        net();
    }
    if wanted("receive") {
        net_receive();
    }
    if wanted("block") {
        block();
    }
    if wanted("idle") {
        idle();
    }
}
