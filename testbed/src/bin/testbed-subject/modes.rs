//! What the test subject does, by mode (see `main.rs`).

use std::time::{Duration, SystemTime};

use muen_channel::protocol::muenblock::{smart, status, Request, RequestKind};
use muen_channel::protocol::muennet::{self, Element};
use muen_channel::{epoch_from, ReadError, Reader, Writer};
use muen_sinfo::{ResourceData, TimeInfo};

use crate::block::{pattern, Client};
use crate::hosted::{die, rdtsc, Platform};
use crate::log;

/// Runs `mode`; returns the exit code.
pub fn run(p: &mut Platform, mode: &str, args: &[String]) -> i32 {
    let arg = |i: usize| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            die(&format!(
                "{mode}: argument {} missing or not a number",
                i + 1
            ))
        })
    };
    match mode {
        "log" => {
            log!("hello from the test subject");
            log!("{}", "0123456789".repeat(8));
            log!("bye");
            args.first().and_then(|a| a.parse().ok()).unwrap_or(0)
        }
        "world" => world(p),
        "idle" => {
            sleep(p, Duration::from_secs(arg(0)));
            log!("idle done");
            0
        }
        "echo" => echo(p, args.first().and_then(|a| a.parse().ok()).unwrap_or(0)),
        "net-peer" => match args {
            [to, from] => net_peer(p, to, from),
            _ => die("net-peer: give the channel to write and the channel to read"),
        },
        "block-write" => block_write(p, arg(0), arg(1), arg(2)),
        "block-write-hang" => block_write_hang(p, arg(0), arg(1), arg(2)),
        "block-verify" => block_verify(p, arg(0), arg(1), arg(2)),
        "block-discard" => block_discard(p, arg(0), arg(1)),
        "block-bad" => block_bad(p),
        "block-bench" => block_bench(p, arg(0), args.get(1).and_then(|a| a.parse().ok())),
        "bad-control" => {
            // Messages a subject must not send: a vector, an unknown opcode, a long one.
            p.send_raw(&[3, 40]);
            p.send_raw(&[9, 9]);
            p.send_raw(&[1, 2, 3]);
            log!("sent bad control messages");
            0
        }
        "hang" => {
            log!("hanging");
            #[allow(clippy::empty_loop)]
            loop {
                std::hint::spin_loop();
            }
        }
        "panic" => {
            log!("about to panic");
            panic!("deliberate panic: {}", 42);
        }
        "segv" => {
            log!("touching unmapped memory");
            // SAFETY: deliberately not: address 16 is never mapped, the access faults.
            unsafe { std::ptr::read_volatile(16 as *const u8) };
            0
        }
        _ => die(&format!("unknown mode `{mode}`")),
    }
}

fn tsc_hz(p: &Platform) -> u64 {
    u64::from(p.info.tsc_khz()) * 1000
}

/// Sleeps on the timed event: arms `timer` and halts until its vector arrives.
fn sleep(p: &mut Platform, d: Duration) -> u64 {
    let event = p
        .info
        .event("timer")
        .unwrap_or_else(|| die("no timer event"));
    let vector = p
        .info
        .vector("timer")
        .unwrap_or_else(|| die("no timer vector"));
    let deadline = rdtsc() + (d.as_nanos() * u128::from(tsc_hz(p)) / 1_000_000_000) as u64;
    let mut timed = p.timed_event();
    timed
        .arm(event, muen_abi::time::Tsc::from_ticks(deadline))
        .unwrap_or_else(|e| die(&e.to_string()));
    loop {
        p.poll_vectors();
        if p.take(vector) {
            return deadline;
        }
        p.halt();
    }
}

fn world(p: &mut Platform) -> i32 {
    let mut failures = 0;
    let mut fail = |what: String| {
        log!("FAIL {what}");
        failures += 1;
    };
    // Every memory resource is mapped where the page says, writable ones writably.
    for r in p.info.resources() {
        if let ResourceData::Memory(m) = r.data {
            let first = m.address as usize as *mut u8;
            let last = (m.address + m.size - 1) as usize as *mut u8;
            // SAFETY: the page names these regions and `start` mapped them; a missing
            // mapping would fault, which the test sees as a crash.
            unsafe {
                let _ = first.read_volatile();
                let _ = last.read_volatile();
            }
            if m.writable() && r.name.as_bytes() == b"ram" {
                // SAFETY: RAM is mapped writable and this subject's own.
                unsafe { last.write_volatile(0x5a) };
            }
        }
    }
    // The time subject published the clock.
    // SAFETY: libmutime's page is mapped by `start`.
    let time = unsafe { TimeInfo::from_fixed_address() }.read();
    match time {
        Ok(t) => {
            if t.tsc_tick_rate_hz != tsc_hz(p) {
                fail(format!("time rate {} != {}", t.tsc_tick_rate_hz, tsc_hz(p)));
            }
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            let ours = t.utc_micros(rdtsc());
            if ours.abs_diff(now) > 2_000_000 {
                fail(format!("wall clock {ours} us, host {now} us"));
            }
        }
        Err(e) => fail(format!("time info: {e}")),
    }
    // Minor frames advance.
    let sched = p.scheduling_info();
    let first = sched.read();
    if first.tsc_schedule_end <= first.tsc_schedule_start {
        fail(format!("frame {first:?}"));
    }
    let give_up = rdtsc() + tsc_hz(p) / 2;
    while sched.tsc_schedule_start().ticks() == first.tsc_schedule_start && rdtsc() < give_up {
        std::hint::spin_loop();
    }
    if sched.tsc_schedule_start().ticks() == first.tsc_schedule_start {
        fail("the scheduling info page did not advance in 0.5 s".into());
    }
    // A timed event wakes a halted subject, not before its deadline.
    let deadline = sleep(p, Duration::from_millis(30));
    let woke = rdtsc();
    if woke < deadline {
        fail(format!("woke {} ticks early", deadline - woke));
    }
    log!(
        "timer latency {} us",
        (woke - deadline) * 1_000_000 / tsc_hz(p)
    );
    log!("sinfo format {}", p.info.version().number());
    if failures == 0 {
        log!("world ok");
        0
    } else {
        1
    }
}

/// The EtherType of the tests' frames (IEEE 802 local experimental).
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

fn echo(p: &mut Platform, spin_us: u64) -> i32 {
    let dev = p.device("|in", "network device");
    let (in_name, out_name) = (format!("{dev}|in"), format!("{dev}|out"));
    let mut input = Reader::new(
        p.readable(&in_name),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
    )
    .unwrap_or_else(|e| die(&e.to_string()));
    let mut output = Writer::init(
        p.writable(&out_name),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
        epoch_from(rdtsc()),
    )
    .unwrap_or_else(|e| die(&e.to_string()));
    let out_event = p
        .info
        .event(&out_name)
        .unwrap_or_else(|| die("no output event"));
    let in_vector = p.info.vector(&in_name);
    let spin = spin_us * tsc_hz(p) / 1_000_000;
    let (mut frames, mut overruns, mut lost) = (0u64, 0u64, 0u64);
    log!("echo on {dev}");
    loop {
        let mut wrote = false;
        for _ in 0..64 {
            let element = match input.read::<Element>() {
                Ok(e) => e,
                Err(ReadError::EpochChanged) => continue,
                Err(ReadError::Overrun { lost: n }) => {
                    overruns += 1;
                    lost += n;
                    continue;
                }
                Err(ReadError::NoData) | Err(ReadError::Inactive) => break,
                Err(e) => die(&format!("{in_name}: {e}")),
            };
            let Ok(frame) = element.frame() else { continue };
            if frame.len() < 14 {
                continue;
            }
            frames += 1;
            let mut reply = frame.to_vec();
            reply[..6].copy_from_slice(&frame[6..12]);
            reply[6..12].copy_from_slice(&frame[..6]);
            let payload = &frame[14..];
            if frame[12..14] == ETHERTYPE && payload.starts_with(b"STATS") {
                reply.truncate(14);
                reply.extend_from_slice(
                    format!("STATS frames={frames} overruns={overruns} lost={lost} ").as_bytes(),
                );
                reply.resize(reply.len().max(60), 0);
            }
            if frame[12..14] == ETHERTYPE && payload.starts_with(b"QUIT") {
                log!("echo: {frames} frames, {overruns} overruns, {lost} lost");
                if wrote {
                    p.trigger(out_event);
                }
                return 0;
            }
            // The element fits: the reply is as long as a received frame.
            let _ = output.write(&Element::new(&reply).unwrap_or_else(|_| die("frame too long")));
            wrote = true;
            if spin > 0 {
                let until = rdtsc() + spin;
                while rdtsc() < until {
                    std::hint::spin_loop();
                }
            }
        }
        if wrote {
            p.trigger(out_event);
        }
        if input.has_pending_data() {
            continue;
        }
        p.poll_vectors();
        if in_vector.is_some_and(|v| p.take(v)) {
            continue;
        }
        p.halt();
    }
}

/// The addresses `net-peer` uses: ours, and the subject it talks to (examples/echo's).
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER_IP: [u8; 4] = [10, 0, 0, 1];
const SUBJECT_IP: [u8; 4] = [10, 0, 0, 2];

/// The Internet checksum of `bytes`.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ARP request for `SUBJECT_IP` from `PEER_MAC`/`PEER_IP`.
fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&PEER_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&SUBJECT_IP);
    f.resize(60, 0);
    f
}

/// A UDP datagram with `payload` from `PEER_IP` port 40000 to `SUBJECT_IP` port 7.
fn udp_to_echo(mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = mac.to_vec();
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&PEER_IP);
    ip.extend_from_slice(&SUBJECT_IP);
    let sum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&7u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no checksum (IPv4 allows it)
    f.extend_from_slice(payload);
    f
}

/// The other end of a subject's network device, as another subject: sends frames into
/// the channel `to` (with its event), reads the answers from `from` (woken by its
/// vector). Asks for examples/echo's MAC with ARP, then has it echo a UDP datagram.
/// Reports on stderr (it may have no debug log), exits 0 if both answers are right.
fn net_peer(p: &mut Platform, to: &str, from: &str) -> i32 {
    let mut output = Writer::init(
        p.writable(to),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
        epoch_from(rdtsc()),
    )
    .unwrap_or_else(|e| die(&format!("{to}: {e}")));
    let mut input = Reader::new(p.readable(from), muennet::PROTOCOL, muennet::ELEMENT_SIZE)
        .unwrap_or_else(|e| die(&format!("{from}: {e}")));
    let event = p
        .info
        .event(to)
        .unwrap_or_else(|| die(&format!("no event `{to}`")));
    let vector = p
        .info
        .vector(from)
        .unwrap_or_else(|| die(&format!("no vector `{from}`")));
    let mut vectors = 0u64;
    // Sends `frame` every 50 ms (the subject may not be up yet) until, woken by the
    // vector, it reads a frame `answer` accepts.
    let mut exchange =
        |p: &mut Platform, frame: &[u8], answer: &dyn Fn(&[u8]) -> bool| -> Vec<u8> {
            let element = Element::new(frame).unwrap_or_else(|_| die("frame too long"));
            loop {
                let _ = output.write(&element);
                p.trigger(event);
                for _ in 0..50 {
                    p.poll_vectors();
                    if !p.take(vector) {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    vectors += 1;
                    loop {
                        match input.read::<Element>() {
                            Ok(e) => {
                                if let Ok(f) = e.frame() {
                                    if answer(f) {
                                        return f.to_vec();
                                    }
                                }
                            }
                            Err(ReadError::NoData) | Err(ReadError::Inactive) => break,
                            Err(_) => continue,
                        }
                    }
                }
            }
        };
    let reply = exchange(p, &arp_request(), &|f| {
        f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] && f[28..32] == SUBJECT_IP
    });
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&reply[22..28]);
    eprintln!(
        "net-peer: ARP reply: 10.0.0.2 is at {}",
        mac.map(|b| format!("{b:02x}")).join(":")
    );
    let payload = b"muen-testbed net-peer: across two subjects";
    let frame = udp_to_echo(mac, payload);
    let back = exchange(p, &frame, &|f| {
        f.len() >= 42 && f[12..14] == [0x08, 0x00] && f[23] == 17 && f[34..36] == 7u16.to_be_bytes()
    });
    let data = &back[42..];
    let intact = data.starts_with(payload);
    eprintln!(
        "net-peer: UDP echo of {} bytes {}, read on vector `{from}` ({vectors} times)",
        payload.len(),
        if intact { "intact" } else { "corrupted" },
    );
    if intact {
        0
    } else {
        1
    }
}

fn fill(c: &mut Client, first: u64, count: u64, seed: u64) {
    let len = (count * c.block_len) as usize;
    let mut buf = vec![0u8; len];
    for s in 0..count {
        for i in 0..c.block_len as usize {
            buf[(s * c.block_len) as usize + i] = pattern(seed, first + s, i);
        }
    }
    c.data
        .write_bytes(0, &buf)
        .unwrap_or_else(|e| die(&e.to_string()));
}

fn block_write(p: &mut Platform, sector: u64, count: u64, seed: u64) -> i32 {
    let mut c = Client::connect(p);
    let mut done = 0;
    while done < count {
        let n = (count - done).min(c.max_blocks);
        fill(&mut c, sector + done, n, seed);
        let s = c.status(
            p,
            Request::new(RequestKind::Write, 0, 0, n * c.block_len, sector + done, 0),
        );
        if s != status::OK {
            log!("write at sector {}: status {s}", sector + done);
            return 1;
        }
        done += n;
    }
    let s = c.status(p, Request::simple(RequestKind::Sync, 0, 0));
    log!(
        "wrote {count} sectors at {sector} (device has {} blocks), sync status {s}",
        c.blocks
    );
    i32::from(s != status::OK)
}

/// Writes `count` sectors at `sector` one request of 8 sectors at a time: the first
/// half synced (logs `synced`), the second half only completed (logs `completed`), then
/// hangs, so that a test can kill the testbed and look at the image.
fn block_write_hang(p: &mut Platform, sector: u64, count: u64, seed: u64) -> i32 {
    let mut c = Client::connect(p);
    let half = count / 2;
    let write = |c: &mut Client, p: &mut Platform, first: u64, n: u64| {
        let mut done = 0;
        while done < n {
            let k = (n - done).min(8);
            fill(c, first + done, k, seed);
            let s = c.status(
                p,
                Request::new(RequestKind::Write, 0, 0, k * c.block_len, first + done, 0),
            );
            if s != status::OK {
                die(&format!("write at sector {}: status {s}", first + done));
            }
            done += k;
        }
    };
    write(&mut c, p, sector, half);
    let s = c.status(p, Request::simple(RequestKind::Sync, 0, 0));
    log!("synced {half} sectors at {sector}, status {s}");
    write(&mut c, p, sector + half, count - half);
    log!(
        "completed {} sectors at {}, not synced; hanging",
        count - half,
        sector + half
    );
    loop {
        p.halt();
    }
}

fn block_verify(p: &mut Platform, sector: u64, count: u64, seed: u64) -> i32 {
    let mut c = Client::connect(p);
    let mut done = 0;
    while done < count {
        let n = (count - done).min(c.max_blocks);
        let s = c.status(
            p,
            Request::new(RequestKind::Read, 0, 0, n * c.block_len, sector + done, 0),
        );
        if s != status::OK {
            log!("read at sector {}: status {s}", sector + done);
            return 1;
        }
        let mut buf = vec![0u8; (n * c.block_len) as usize];
        c.data
            .as_region()
            .read_bytes(0, &mut buf)
            .unwrap_or_else(|e| die(&e.to_string()));
        for (k, b) in buf.iter().enumerate() {
            let s = sector + done + k as u64 / c.block_len;
            if *b != pattern(seed, s, k % c.block_len as usize) {
                log!("mismatch at sector {s}");
                return 1;
            }
        }
        done += n;
    }
    log!("verified {count} sectors at {sector}");
    0
}

fn block_discard(p: &mut Platform, sector: u64, count: u64) -> i32 {
    let mut c = Client::connect(p);
    let s = c.status(
        p,
        Request::new(RequestKind::Discard, 0, 0, count * c.block_len, sector, 0),
    );
    let r = c.status(
        p,
        Request::new(RequestKind::Read, 0, 0, count * c.block_len, sector, 0),
    );
    let mut buf = vec![0xffu8; (count * c.block_len) as usize];
    c.data
        .as_region()
        .read_bytes(0, &mut buf)
        .unwrap_or_else(|e| die(&e.to_string()));
    let zero = buf.iter().all(|b| *b == 0);
    log!("discard status {s}, read status {r}, zeros {zero}");
    i32::from(s != status::OK || r != status::OK || !zero)
}

/// A raw request of any kind.
fn raw(kind: u16, device: u16, length: u64, sector: u64, buffer: u64) -> [u8; 32] {
    let mut r = [0u8; 32];
    r[0..2].copy_from_slice(&kind.to_le_bytes());
    r[2..4].copy_from_slice(&device.to_le_bytes());
    r[8..16].copy_from_slice(&length.to_le_bytes());
    r[16..24].copy_from_slice(&sector.to_le_bytes());
    r[24..32].copy_from_slice(&buffer.to_le_bytes());
    r
}

fn block_bad(p: &mut Platform) -> i32 {
    let mut c = Client::connect(p);
    let (m, bl, max) = (c.blocks, c.block_len, c.max_blocks);
    let data_size = c.data.len() as u64;
    let allowed = m / 2;
    let (read, write, discard) = (
        RequestKind::Read as u16,
        RequestKind::Write as u16,
        RequestKind::Discard as u16,
    );
    // The one valid write: 8 sectors in the middle of the device.
    fill(&mut c, allowed, 8, 7);
    let good = c.status(
        p,
        Request::new(RequestKind::Write, 0, 0, 8 * bl, allowed, 0),
    );
    let cases: Vec<(&str, [u8; 32], u64)> = vec![
        (
            "unknown kind",
            raw(0x42, 0, bl, allowed, 0),
            status::ENOTSUP,
        ),
        (
            "device 1 write",
            raw(write, 1, bl, allowed, 0),
            status::ENOTSUP,
        ),
        (
            "device 5 media blocks",
            raw(RequestKind::MediaBlocks as u16, 5, 0, 0, 0),
            0,
        ),
        ("zero length", raw(write, 0, 0, 0, 0), status::ENOTSUP),
        ("length 100", raw(write, 0, 100, 0, 0), status::ENOTSUP),
        ("length 513", raw(write, 0, 513, 0, 0), status::ENOTSUP),
        (
            "too many blocks",
            raw(write, 0, (max + 1) * bl, 0, 0),
            status::ENOTSUP,
        ),
        (
            "crossing the end",
            raw(write, 0, 2 * bl, m - 1, 0),
            status::ENOTSUP,
        ),
        ("at the end", raw(write, 0, bl, m, 0), status::ENOTSUP),
        (
            "sector u64::MAX",
            raw(write, 0, bl, u64::MAX, 0),
            status::ENOTSUP,
        ),
        (
            "byte offset overflow",
            raw(write, 0, bl, u64::MAX / 512, 0),
            status::ENOTSUP,
        ),
        (
            "buffer crossing |data",
            raw(write, 0, bl, 0, data_size - bl / 2),
            status::ENOTSUP,
        ),
        (
            "buffer at the end of |data",
            raw(write, 0, bl, 0, data_size),
            status::ENOTSUP,
        ),
        (
            "buffer range overflow",
            raw(write, 0, bl, 0, u64::MAX - 100),
            status::ENOTSUP,
        ),
        (
            "read into bad buffer",
            raw(read, 0, bl, 0, u64::MAX - 100),
            status::ENOTSUP,
        ),
        (
            "discard crossing the end",
            raw(discard, 0, 2 * bl, m - 1, 0),
            status::ENOTSUP,
        ),
        (
            "get smart",
            raw(RequestKind::GetSmart as u16, 0, 0, 0, 0),
            smart::UNDEFINED,
        ),
        (
            "max requests",
            raw(RequestKind::MaxRequests as u16, 0, 0, 0, 0),
            1020,
        ),
        (
            "max devices",
            raw(RequestKind::MaxDevices as u16, 0, 0, 0, 0),
            1,
        ),
        (
            "block length",
            raw(RequestKind::BlockLength as u16, 0, 0, 0, 0),
            512,
        ),
    ];
    let mut unexpected = 0;
    if good != status::OK {
        log!("UNEXPECTED good write: status {good}");
        unexpected += 1;
    }
    for (name, request, expected) in cases {
        // Poison the buffer: a server that wrongly wrote would put 0xee on the disk.
        let poison = vec![0xee; (data_size as usize).min(0x1_0000)];
        for at in [0, data_size as usize - poison.len()] {
            c.data
                .write_bytes(at, &poison)
                .unwrap_or_else(|e| die(&e.to_string()));
        }
        let status = c.call_raw(p, request).status();
        if status == expected {
            log!("{name}: status {status}");
        } else {
            log!("UNEXPECTED {name}: status {status}, expected {expected}");
            unexpected += 1;
        }
    }
    let sync = c.status(p, Request::simple(RequestKind::Sync, 0, 0));
    if sync != status::OK {
        unexpected += 1;
    }
    if unexpected == 0 {
        log!("bad requests: all answered as expected");
        0
    } else {
        1
    }
}

/// Writes (then syncs) and reads `mib` MiB in requests of the server's largest size,
/// with up to `window` requests in flight (each with its own slice of the data buffer;
/// at most as many as the buffer holds), and logs the MB/s of each.
fn block_bench(p: &mut Platform, mib: u64, window: Option<u64>) -> i32 {
    let mut c = Client::connect(p);
    let total = mib << 20;
    if total / c.block_len > c.blocks {
        log!("the image is smaller than {mib} MiB");
        return 1;
    }
    let chunk = c.max_blocks * c.block_len;
    let slots = (c.data.len() as u64 / chunk).max(1);
    let window = window.unwrap_or(slots).clamp(1, slots);
    // Every slice of the buffer in use holds the same data.
    let max = c.max_blocks;
    fill(&mut c, 0, max, 1);
    let mut bytes = vec![0u8; chunk as usize];
    let _ = c.data.as_region().read_bytes(0, &mut bytes);
    for slot in 1..window {
        c.data
            .write_bytes((slot * chunk) as usize, &bytes)
            .unwrap_or_else(|e| die(&e.to_string()));
    }
    let hz = tsc_hz(p) as f64;
    let mut run = |c: &mut Client, kind: RequestKind| -> f64 {
        let start = rdtsc();
        // The tags in flight, by buffer slot.
        let mut in_flight: Vec<Option<u32>> = vec![None; window as usize];
        let (mut next, mut done) = (0u64, 0u64);
        while done < total {
            let mut sent = false;
            while next < total {
                let Some(slot) = in_flight.iter().position(Option::is_none) else {
                    break;
                };
                let n = (total - next).min(chunk);
                let request = Request::new(kind, 0, 0, n, next / c.block_len, slot as u64 * chunk);
                in_flight[slot] = Some(c.submit(request));
                next += n;
                sent = true;
            }
            if sent {
                c.notify(p);
            }
            let r = c.next_response(p);
            let Some(slot) = in_flight.iter().position(|t| *t == Some(r.tag())) else {
                die("response with a wrong tag");
            };
            if r.status() != status::OK {
                die(&format!("bench {kind:?}: status {}", r.status()));
            }
            in_flight[slot] = None;
            done += chunk.min(total - done);
        }
        if kind == RequestKind::Write {
            c.status(p, Request::simple(RequestKind::Sync, 0, 0));
        }
        total as f64 / 1e6 / ((rdtsc() - start) as f64 / hz)
    };
    let write = run(&mut c, RequestKind::Write);
    let read = run(&mut c, RequestKind::Read);
    log!("bench write_mb_s={write:.1} read_mb_s={read:.1} in_flight={window}");
    0
}
