//! Fuzzes the testbed's muenblock server (`muen_testbed::peers::block::Server`) with
//! arbitrary requests from a subject.
//!
//! The target plays the subject: it writes requests into the request channel (shaped
//! ones near the limits, raw 32-byte ones, batches), fills the shared data buffer,
//! restarts its request channel now and then, lets the server answer, and checks:
//!
//! - every request gets exactly one response, which answers it (kind, device, tag);
//! - no byte of the image changes outside the range a Write or Discard names, and no
//!   byte of the data buffer outside the range a Read names (ranges computed with
//!   checked arithmetic; a request whose range overflows may change nothing);
//! - a refused request (any status but 0 for Read, Write and Discard) changes nothing;
//!   a completed Write puts the buffer's bytes into the image, a Read the image's
//!   into the buffer, a Discard zeros;
//! - the server never panics.
//!
//! The world (a memory file with one block device) is made once; every input gets a
//! fresh image (an in-memory file), a fresh server and fresh channel epochs.

#![no_main]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use muen_abi::layout::Region;
use muen_abi::names::Role;
use muen_abi::VirtAddr;
use muen_channel::protocol::muenblock::{self, status, Request, RequestKind, Response};
use muen_channel::{ReadError, Reader, Writer};
use muen_spec::{Mapping, NamedNumber, Origin, Registers, SubjectView};
use muen_testbed::memory::Memory;
use muen_testbed::peers::block::{Disk, Server, BLOCK_SIZE};
use muen_testbed::world::World;

/// The data buffer: 8 KiB, so Max_Blocks_Count is 16.
const DATA: u64 = 0x2000;
/// Blocks of the image (32 KiB).
const BLOCKS: u64 = 64;
/// Requests per batch at most.
const BATCH_MAX: usize = 64;
/// The request and the response channel: one page each (126 requests, 252
/// responses; the server and the client take any ring that fits their region), so
/// that starting a channel, which clears its ring, is quick.
const CHANNEL: u64 = 0x1000;

/// `len` bytes of a pattern that does not repeat within a block, from `seed` on.
fn pattern(seed: u8, len: u64) -> Vec<u8> {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        (0..BLOCKS * BLOCK_SIZE + 256)
            .map(|i| ((i / 7) as u8) ^ (i as u8).rotate_left(3) | 1)
            .collect()
    });
    base[usize::from(seed)..usize::from(seed) + len as usize].to_vec()
}

/// What the subject does next.
#[derive(Arbitrary, Debug)]
enum Op {
    /// One request built from small numbers: mostly near the limits.
    Shaped(Shaped),
    /// One request of any 32 bytes (the tag is replaced).
    Raw([u8; 32]),
    /// Several requests before the server looks at them.
    Batch(Vec<Shaped>),
    /// Fills the data buffer with bytes from this seed.
    Fill(u8),
    /// The subject restarts its request channel (a new epoch).
    Restart,
}

/// A request from small numbers.
#[derive(Arbitrary, Debug)]
struct Shaped {
    /// Index into the known kinds (beyond them: the raw value).
    kind: u8,
    device: u8,
    blocks: u8,
    /// Bytes added to `blocks * 512` (0 mostly).
    slack: u8,
    sector: u8,
    /// Buffer offset in 256-byte steps.
    buffer: u8,
}

impl Shaped {
    fn request(&self, tag: u32) -> Request {
        let kind = RequestKind::ALL
            .get(usize::from(self.kind))
            .map_or(u16::from(self.kind), |k| *k as u16);
        raw_request(
            kind,
            u16::from(self.device % 4),
            tag,
            u64::from(self.blocks % 32) * BLOCK_SIZE + u64::from(self.slack % 4) * 128,
            u64::from(self.sector % 80),
            u64::from(self.buffer) * 256 % (DATA + 1024),
        )
    }
}

fn raw_request(kind: u16, device: u16, tag: u32, length: u64, sector: u64, buffer: u64) -> Request {
    let mut b = [0u8; 32];
    b[0..2].copy_from_slice(&kind.to_le_bytes());
    b[2..4].copy_from_slice(&device.to_le_bytes());
    b[4..8].copy_from_slice(&tag.to_le_bytes());
    b[8..16].copy_from_slice(&length.to_le_bytes());
    b[16..24].copy_from_slice(&sector.to_le_bytes());
    b[24..32].copy_from_slice(&buffer.to_le_bytes());
    from_bytes(b)
}

fn from_bytes(b: [u8; 32]) -> Request {
    <Request as zerocopy::FromBytes>::read_from_bytes(&b[..]).expect("32 bytes")
}

/// The world and its memory file, made once and leaked (the server borrows them).
struct Setup {
    world: World,
    memory: Memory,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<&'static Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let region = |address, size| Region {
            address: VirtAddr::new(address),
            size,
        };
        let channel = |name: &str, address, size, role| {
            Mapping::channel(name, region(address, size), role, Origin::Component)
        };
        let mappings = vec![
            channel("disk|req", 0x1200_0000, CHANNEL, Role::Writer),
            channel("disk|resp", 0x1300_0000, CHANNEL, Role::Reader),
            Mapping::memory("disk|data", region(0x1400_0000, DATA), true),
        ];
        let number = |name: &str, number| NamedNumber {
            name: name.into(),
            number,
        };
        let world = World::new(SubjectView {
            name: "fuzz".into(),
            mappings,
            events: vec![number("disk|req", 3)],
            vectors: vec![number("disk|resp", 40)],
            registers: Registers::default(),
            simd_exceptions: false,
        })
        .expect("a valid world");
        let memory = Memory::new(&world.view).expect("the memory file");
        Box::leak(Box::new(Setup { world, memory }))
    })
}

/// A fresh image of `BLOCKS` blocks with a known pattern, opened by the testbed like
/// `--disk`, and our own handle to read it back.
fn image(seed: u8) -> (Disk, File) {
    // SAFETY: a NUL-terminated name and flags; the result is checked.
    let fd = unsafe { libc::memfd_create(c"fuzz-image".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `memfd_create` just returned it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let bytes = pattern(seed, BLOCKS * BLOCK_SIZE);
    file.write_all_at(&bytes, 0).expect("writing the image");
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    (
        Disk::open(&path).expect("the testbed opens the image"),
        file,
    )
}

fn read_file(file: &File) -> Vec<u8> {
    let mut bytes = vec![0u8; (BLOCKS * BLOCK_SIZE) as usize];
    file.read_exact_at(&mut bytes, 0)
        .expect("reading the image");
    bytes
}

/// `start..start + len` if it does not overflow.
fn range(start: u64, len: u64) -> Option<std::ops::Range<usize>> {
    let end = start.checked_add(len)?;
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

/// Every index where `before` and `after` differ lies in one of `allowed`.
fn changed_only_within(
    what: &str,
    before: &[u8],
    after: &[u8],
    allowed: &[std::ops::Range<usize>],
) {
    assert_eq!(before.len(), after.len(), "{what} changed size");
    if before == after {
        return;
    }
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if b != a {
            assert!(
                allowed.iter().any(|r| r.contains(&i)),
                "{what} byte {i:#x} changed ({b:#04x} -> {a:#04x}) outside {allowed:x?}"
            );
        }
    }
}

/// The image and buffer ranges request `r` may change.
fn allowed(
    r: &Request,
) -> (
    Option<std::ops::Range<usize>>,
    Option<std::ops::Range<usize>>,
) {
    let device_range = r
        .device_offset()
        .checked_mul(BLOCK_SIZE)
        .and_then(|at| range(at, r.length()));
    match r.kind() {
        Ok(RequestKind::Write | RequestKind::Discard) => (device_range, None),
        Ok(RequestKind::Read) => (None, range(r.buffer_offset(), r.length())),
        _ => (None, None),
    }
}

struct Subject<'m> {
    setup: &'static Setup,
    requests: Writer<'m>,
    responses: Reader<'m>,
    server: Server<'m>,
    image: File,
    /// The image and the data buffer as they are now (read after each change).
    image_now: Vec<u8>,
    data_now: Vec<u8>,
    epoch: u64,
    tag: u32,
}

impl Subject<'_> {
    fn data(&self) -> Vec<u8> {
        let d = self
            .setup
            .world
            .block_device("disk")
            .expect("a block device");
        let at = self.setup.memory.placement(d.data).offset;
        self.setup
            .memory
            .read_at(at, DATA as usize)
            .expect("the data buffer")
    }

    fn fill(&mut self, seed: u8) {
        let d = self
            .setup
            .world
            .block_device("disk")
            .expect("a block device");
        let at = self.setup.memory.placement(d.data).offset;
        let bytes = pattern(seed.wrapping_add(128), DATA);
        self.setup
            .memory
            .write_at(at, &bytes)
            .expect("the data buffer");
        self.data_now = bytes;
    }

    /// Writes `requests` (fresh tags), lets the server answer and checks the answers
    /// and what changed.
    fn exchange(&mut self, requests: &[Request]) {
        let mut sent = Vec::new();
        for r in requests {
            self.tag = self.tag.wrapping_add(1);
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(zerocopy::IntoBytes::as_bytes(r));
            bytes[4..8].copy_from_slice(&self.tag.to_le_bytes());
            let r = from_bytes(bytes);
            self.requests.write(&r).expect("a request element");
            sent.push(r);
        }
        let image_before = std::mem::take(&mut self.image_now);
        let data_before = std::mem::take(&mut self.data_now);
        // Serve until the server is idle (as its thread does on the request event).
        while let (n, true) = self.server.serve_batch() {
            if n == 0 {
                break;
            }
            self.server.start_writeback();
        }
        let mut responses = Vec::new();
        loop {
            match self.responses.read::<Response>() {
                Ok(r) => responses.push(r),
                Err(ReadError::EpochChanged) => {}
                Err(ReadError::NoData) => break,
                Err(e) => panic!("the server's response channel: {e}"),
            }
        }
        assert_eq!(responses.len(), sent.len(), "one response per request");
        for (q, r) in sent.iter().zip(&responses) {
            assert!(r.answers(q), "{r:?} does not answer {q:?}");
        }
        let size = self.image.metadata().expect("the image's size").len();
        assert_eq!(size, BLOCKS * BLOCK_SIZE, "the image changed size");
        self.image_now = read_file(&self.image);
        self.data_now = self.data();
        let (image_after, data_after) = (&self.image_now[..], &self.data_now[..]);
        let mut image_ranges = Vec::new();
        let mut data_ranges = Vec::new();
        for (q, r) in sent.iter().zip(&responses) {
            let (image, data) = allowed(q);
            let done = r.status() == status::OK;
            // Only a completed transfer may change anything.
            if done && q.kind().is_ok_and(RequestKind::is_io) {
                image_ranges.extend(image);
                data_ranges.extend(data);
            }
        }
        changed_only_within("image", &image_before, &image_after, &image_ranges);
        changed_only_within("data buffer", &data_before, &data_after, &data_ranges);
        // One request alone: what a completed transfer did is exactly what it asked.
        if let ([q], [r]) = (&sent[..], &responses[..]) {
            if r.status() == status::OK {
                let disk = q
                    .device_offset()
                    .checked_mul(BLOCK_SIZE)
                    .and_then(|at| range(at, q.length()));
                let buffer = range(q.buffer_offset(), q.length());
                match (q.kind(), disk, buffer) {
                    (Ok(RequestKind::Write), Some(d), Some(b)) => {
                        assert_eq!(image_after[d], data_before[b], "a write's bytes");
                    }
                    (Ok(RequestKind::Read), Some(d), Some(b)) => {
                        assert_eq!(data_after[b], image_before[d], "a read's bytes");
                    }
                    (Ok(RequestKind::Discard), Some(d), _) => {
                        assert!(image_after[d].iter().all(|b| *b == 0), "a discard's zeros");
                    }
                    (Ok(kind), ..) if kind.is_io() => {
                        panic!("{q:?} succeeded with a range that overflows")
                    }
                    _ => {}
                }
            }
        }
    }

    fn restart(&mut self) {
        self.epoch += 1;
        self.requests
            .reset(std::num::NonZeroU64::new(self.epoch).expect("non-zero"));
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let setup = setup();
    let d = setup.world.block_device("disk").expect("a block device");
    let (disk, image) = image(ops.len() as u8);
    let requests = Writer::init(
        setup
            .memory
            .channel_mut(d.request)
            .expect("the request region"),
        muenblock::PROTOCOL,
        muenblock::REQUEST_SIZE,
        std::num::NonZeroU64::new(1).expect("non-zero"),
    )
    .expect("a request channel");
    let responses = Writer::init(
        setup
            .memory
            .channel_mut(d.response)
            .expect("the response region"),
        muenblock::PROTOCOL,
        muenblock::RESPONSE_SIZE,
        std::num::NonZeroU64::new(1).expect("non-zero"),
    )
    .expect("a response channel");
    let server = Server::new(
        "disk",
        &setup.memory,
        d.request,
        responses,
        d.data,
        d.response_vector,
        Some(disk),
    )
    .expect("a server");
    let responses = Reader::new(
        setup
            .memory
            .channel(d.response)
            .expect("the response region"),
        muenblock::PROTOCOL,
        muenblock::RESPONSE_SIZE,
    )
    .expect("a response reader");
    let mut subject = Subject {
        setup,
        requests,
        responses,
        server,
        image_now: Vec::new(),
        data_now: Vec::new(),
        image,
        epoch: 1,
        tag: 0,
    };
    subject.image_now = read_file(&subject.image);
    subject.fill(0);
    for op in ops.iter().take(64) {
        match op {
            Op::Shaped(s) => {
                let r = s.request(0);
                subject.exchange(&[r]);
            }
            Op::Raw(bytes) => subject.exchange(&[from_bytes(*bytes)]),
            Op::Batch(list) => {
                let rs: Vec<Request> = list.iter().take(BATCH_MAX).map(|s| s.request(0)).collect();
                subject.exchange(&rs);
            }
            Op::Fill(seed) => subject.fill(*seed),
            Op::Restart => subject.restart(),
        }
    }
});
