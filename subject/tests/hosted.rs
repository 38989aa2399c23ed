//! End-to-end tests of the hosted platform: a minimal testbed, written here from
//! `docs/hosted.md`, runs real subject executables.
//!
//! The testbed puts a memory map, a v5 sinfo page (muen-sinfo's builder), the
//! scheduling info, timed event and time info pages, the debug log and (for some
//! tests) a network device into a `memfd`, starts the subject with the file as fd 3
//! and one end of a `SOCK_SEQPACKET` pair as fd 4, plays the kernel on the other end
//! (events, `Halt`, vectors, the timed event) and finally reads the subject's debug
//! log with a muen-channel `Reader`.
//!
//! Subjects: `idle-fixture` (this package's test subject, `CARGO_BIN_EXE_...`) and
//! `hello` (another package: built here with `cargo build -p hello
//! --message-format=json`, which names the executable wherever the target directory
//! is).

#![cfg(target_os = "linux")]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use muen_abi::layout;
use muen_channel::protocol::{debuglog, muennet};
use muen_channel::{epoch_from, ReadError, Reader, Region, RegionMut, Writer};
use muen_sinfo::{Builder, Content, Memory, MemoryFlags, MemoryKind, Version};
use muen_testbed_abi::hosted::{
    MemMapEntry, MemMapHeader, Message, ENTRY_WRITABLE, MEMMAP_MAGIC, MEMMAP_SIZE, MEMMAP_VERSION,
};
use zerocopy::IntoBytes;

const NET_IN: u64 = layout::DEVICE_BASE.as_u64();
const NET_OUT: u64 = layout::DEVICE_BASE.as_u64() + 0x5000;
const NET_SIZE: u64 = 0x4000;

fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

/// The host TSC rate in kHz, measured over 20 ms (the testbed does the same).
fn tsc_khz() -> u32 {
    let (t0, c0) = (Instant::now(), rdtsc());
    std::thread::sleep(Duration::from_millis(20));
    let (t1, c1) = (Instant::now(), rdtsc());
    ((c1 - c0) as u128 * 1_000_000 / (t1 - t0).as_nanos()) as u32
}

struct RegionSpec {
    name: &'static str,
    kind: MemoryKind,
    address: u64,
    size: u64,
    writable: bool,
}

/// The memory file of one subject, mapped into the test process too.
struct World {
    fd: OwnedFd,
    base: *mut u8,
    len: usize,
    regions: Vec<(RegionSpec, u64)>,
}

impl World {
    /// Builds the world of subject `name`; `net` adds device `net0`, `publish_time`
    /// publishes the wall clock.
    fn new(name: &str, net: bool, publish_time: bool) -> World {
        let mut specs = vec![
            RegionSpec {
                name: "sinfo",
                kind: MemoryKind::SubjectInfo,
                address: layout::SINFO.address.as_u64(),
                size: layout::SINFO.size,
                writable: false,
            },
            RegionSpec {
                name: "scheduling_info",
                kind: MemoryKind::SubjectSchedulingInfo,
                address: layout::SCHEDULING_INFO.address.as_u64(),
                size: 0x1000,
                writable: false,
            },
            RegionSpec {
                name: "timed_event",
                kind: MemoryKind::SubjectTimedEvent,
                address: layout::TIMED_EVENT.address.as_u64(),
                size: 0x1000,
                writable: true,
            },
            RegionSpec {
                name: "debuglog",
                kind: MemoryKind::SubjectChannel,
                address: layout::DEBUGLOG.address.as_u64(),
                size: layout::DEBUGLOG.size,
                writable: true,
            },
            RegionSpec {
                name: "time_info",
                kind: MemoryKind::SubjectChannel,
                address: layout::TIME_INFO.address.as_u64(),
                size: 0x1000,
                writable: false,
            },
            RegionSpec {
                name: "ram",
                kind: MemoryKind::Subject,
                address: layout::RAM_BASE.as_u64(),
                size: 0x10_0000,
                writable: true,
            },
        ];
        if net {
            specs.push(RegionSpec {
                name: "net0|in",
                kind: MemoryKind::SubjectChannel,
                address: NET_IN,
                size: NET_SIZE,
                writable: false,
            });
            specs.push(RegionSpec {
                name: "net0|out",
                kind: MemoryKind::SubjectChannel,
                address: NET_OUT,
                size: NET_SIZE,
                writable: true,
            });
        }
        let mut offset = MEMMAP_SIZE;
        let mut regions = Vec::new();
        for s in specs {
            let size = s.size;
            regions.push((s, offset));
            offset += size;
        }
        let len = offset as usize;
        // SAFETY: plain system calls on descriptors this test owns.
        let fd = unsafe {
            let fd = libc::memfd_create(c"muen-world".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0, "memfd_create");
            assert_eq!(libc::ftruncate(fd, len as i64), 0);
            OwnedFd::from_raw_fd(fd)
        };
        // SAFETY: maps the whole new file; the mapping lives as long as the World.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let world = World {
            fd,
            base: base.cast(),
            len,
            regions,
        };
        world.write_map();
        world.write_sinfo(name, net);
        // Timed event: disarmed. Scheduling info: some frame.
        world.store(layout::TIMED_EVENT.address.as_u64(), 0, u64::MAX);
        world.store(layout::SCHEDULING_INFO.address.as_u64(), 0, rdtsc());
        world.store(
            layout::SCHEDULING_INFO.address.as_u64(),
            8,
            rdtsc() + 10_000_000,
        );
        if publish_time {
            // As Muen's time subject: rate and timezone, then the base last.
            world.store(
                layout::TIME_INFO.address.as_u64(),
                8,
                u64::from(tsc_khz()) * 1000,
            );
            world.store(layout::TIME_INFO.address.as_u64(), 16, 0);
            world.store(layout::TIME_INFO.address.as_u64(), 0, 1_700_000_000_000_000);
        }
        world
    }

    fn offset_of(&self, address: u64) -> usize {
        let (s, o) = self
            .regions
            .iter()
            .find(|(s, _)| (s.address..s.address + s.size).contains(&address))
            .expect("address in a region");
        (o + (address - s.address)) as usize
    }

    fn ptr(&self, address: u64) -> *mut u8 {
        let at = self.offset_of(address);
        assert!(at < self.len);
        // SAFETY: inside the mapping.
        unsafe { self.base.add(at) }
    }

    fn store(&self, address: u64, field: u64, value: u64) {
        // SAFETY: an aligned u64 inside the mapping; the subject accesses it with
        // volatile loads and stores too.
        unsafe {
            self.ptr(address + field)
                .cast::<u64>()
                .write_volatile(value)
        }
    }

    fn load(&self, address: u64, field: u64) -> u64 {
        // SAFETY: as in `store`.
        unsafe { self.ptr(address + field).cast::<u64>().read_volatile() }
    }

    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        // SAFETY: inside the mapping; nobody else runs yet.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), bytes.len()) }
    }

    fn write_map(&self) {
        let header = MemMapHeader {
            magic: MEMMAP_MAGIC.into(),
            version: MEMMAP_VERSION.into(),
            count: (self.regions.len() as u32).into(),
            rip: layout::ENTRY.as_u64().into(),
            rsp: layout::stack_top(0x10_0000).as_u64().into(),
        };
        let mut bytes = header.as_bytes().to_vec();
        for (s, offset) in &self.regions {
            let e = MemMapEntry {
                address: s.address.into(),
                offset: (*offset).into(),
                size: s.size.into(),
                flags: (if s.writable { ENTRY_WRITABLE } else { 0 }).into(),
            };
            bytes.extend_from_slice(e.as_bytes());
        }
        self.write_bytes(0, &bytes);
    }

    fn write_sinfo(&self, name: &str, net: bool) {
        let mut b = Builder::new(Version::V5, name, tsc_khz()).unwrap();
        for (s, _) in &self.regions {
            b.memory(
                s.name,
                Memory {
                    kind: s.kind,
                    content: Content::Uninitialized,
                    flags: if s.writable {
                        MemoryFlags::WRITABLE
                    } else {
                        MemoryFlags::empty()
                    },
                    pattern: None,
                    address: s.address,
                    size: s.size,
                    hash: None,
                },
            )
            .unwrap();
        }
        b.event("exit", 0)
            .unwrap()
            .event("timer", 1)
            .unwrap()
            .vector("timer", 32)
            .unwrap();
        if net {
            b.event("net0|out", 2)
                .unwrap()
                .vector("net0|in", 33)
                .unwrap();
        }
        let page = b.build();
        self.write_bytes(self.offset_of(layout::SINFO.address.as_u64()), &page);
    }

    fn region(&self, address: u64, size: u64) -> RegionMut<'_> {
        // SAFETY: the range lies in the mapping, which outlives the handle; the
        // subject and this test access it only atomically.
        unsafe { RegionMut::new(self.ptr(address), size as usize) }.unwrap()
    }

    /// The subject's debug log, one string per message.
    fn log(&self) -> Vec<String> {
        let r = self.region(layout::DEBUGLOG.address.as_u64(), layout::DEBUGLOG.size);
        let mut reader = Reader::new(
            Region::clone(&r),
            debuglog::PROTOCOL,
            debuglog::ELEMENT_SIZE,
        )
        .unwrap();
        let mut lines = Vec::new();
        loop {
            match reader.read::<debuglog::Element>() {
                Ok(e) => lines.push(String::from_utf8_lossy(e.text()).into_owned()),
                Err(ReadError::EpochChanged) => continue,
                Err(ReadError::NoData | ReadError::Inactive) => return lines,
                Err(e) => panic!("debuglog: {e}"),
            }
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// A descriptor moved above the range the child's dup2 targets use.
fn high(fd: RawFd) -> OwnedFd {
    // SAFETY: duplicates a valid descriptor with close-on-exec.
    let h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    assert!(h >= 10);
    // SAFETY: `h` is a new descriptor we own.
    unsafe { OwnedFd::from_raw_fd(h) }
}

struct Run {
    status: std::process::ExitStatus,
    stderr: String,
    events: Vec<u8>,
    halts: usize,
}

/// Runs `exe` in `world` (fd 3 omitted if `memory` is false); on every `Halt`,
/// `on_halt` plays the kernel and may answer with vectors.
fn run(
    exe: &PathBuf,
    world: &World,
    memory: bool,
    mut on_halt: impl FnMut(&World) -> Vec<u8>,
) -> Run {
    let mut pair = [0; 2];
    // SAFETY: socketpair writes two descriptors into `pair`.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: both are new descriptors we own.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    let mem = high(world.fd.as_raw_fd());
    let ctl = high(theirs.as_raw_fd());
    let (mem_fd, ctl_fd) = (mem.as_raw_fd(), ctl.as_raw_fd());
    let mut cmd = Command::new(exe);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if memory && libc::dup2(mem_fd, 3) != 3 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::dup2(ctl_fd, 4) != 4 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn the subject");
    drop((theirs, mem, ctl));
    let (mut events, mut halts) = (Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let mut pfd = libc::pollfd {
            fd: ours.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one descriptor we own.
        let n = unsafe { libc::poll(&mut pfd, 1, 10) };
        if n > 0 && pfd.revents & libc::POLLIN != 0 {
            let mut buf = [0u8; 16];
            // SAFETY: receives into a private buffer.
            let len = unsafe {
                libc::recv(
                    ours.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if len > 0 {
                match Message::decode(&buf[..len as usize]) {
                    Some(Message::Event(e)) => events.push(e),
                    Some(Message::Halt) => {
                        halts += 1;
                        for v in on_halt(world) {
                            let m = Message::Vector(v).encode();
                            // SAFETY: sends from a private buffer.
                            unsafe {
                                libc::send(
                                    ours.as_raw_fd(),
                                    m.as_ptr().cast(),
                                    2,
                                    libc::MSG_NOSIGNAL,
                                )
                            };
                        }
                    }
                    other => panic!("subject sent {other:?}"),
                }
                continue;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the subject did not finish in 20 s");
        }
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    Run {
        status,
        stderr,
        events,
        halts,
    }
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_idle-fixture"))
}

/// Builds the `hello` example for the host (once per test run) and returns its path.
fn hello() -> PathBuf {
    static HELLO: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HELLO.get_or_init(build_hello).clone()
}

fn build_hello() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "-p",
            "hello",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "cargo build -p hello failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "hello")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo named the hello executable")
}

#[test]
fn hello_greets_with_its_name_both_clocks_and_exits_0() {
    let world = World::new("hello", false, true);
    let r = run(&hello(), &world, true, |_| vec![]);
    let log = world.log();
    assert!(r.status.success(), "{:?} {} {log:?}", r.status, r.stderr);
    assert_eq!(log[0], "INFO hello from hello\n");
    assert!(log[1].starts_with("INFO monotonic "), "{log:?}");
    assert!(log[2].starts_with("INFO wall clock 17000"), "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("INFO memory debuglog 0xffff00000 0x20000 subject_channel")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l == "INFO vector timer 32\n"), "{log:?}");
    assert_eq!(log.last().unwrap(), "INFO exit 0\n");
    assert_eq!(r.events, [0], "the exit event");
    assert_eq!(r.stderr, "");
}

#[test]
fn hello_reports_an_unpublished_wall_clock() {
    let world = World::new("hello", false, false);
    let r = run(&hello(), &world, true, |_| vec![]);
    assert!(r.status.success());
    let log = world.log();
    assert_eq!(
        log[2],
        "INFO wall clock not published: time not published\n"
    );
}

#[test]
fn a_missing_memory_file_gives_status_125_and_one_line() {
    let world = World::new("x", false, false);
    let r = run(&fixture(), &world, false, |_| vec![]);
    assert_eq!(r.status.code(), Some(125));
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("muen-subject: fd 3 (the memory file) is not open"),
        "{}",
        r.stderr
    );
    assert!(world.log().is_empty(), "main never ran");
}

#[test]
fn a_taken_address_gives_status_125() {
    let world = World::new("x", false, false);
    // Point the RAM entry at the address of the sinfo entry: the second mapping fails.
    let ram_index = world
        .regions
        .iter()
        .position(|(s, _)| s.name == "ram")
        .unwrap();
    let at = std::mem::size_of::<MemMapHeader>() + ram_index * std::mem::size_of::<MemMapEntry>();
    world.write_bytes(at, &layout::SINFO.address.as_u64().to_le_bytes());
    let r = run(&fixture(), &world, true, |_| vec![]);
    assert_eq!(r.status.code(), Some(125));
    assert!(
        r.stderr
            .contains(&format!("memory map entry {ram_index}: cannot map")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("EEXIST"), "{}", r.stderr);
}

#[test]
fn a_region_the_map_leaves_out_gives_status_125() {
    let world = World::new("x", false, false);
    // `ram` is the last entry: announce one entry less, so the sinfo page names a
    // region nobody mapped.
    let count = (world.regions.len() as u32 - 1).to_le_bytes();
    world.write_bytes(12, &count);
    let r = run(&fixture(), &world, true, |_| vec![]);
    assert_eq!(r.status.code(), Some(125));
    assert_eq!(
        r.stderr,
        "muen-subject: sinfo region `ram`: 0x100000 bytes at 0x40000000 are not mapped writable by the memory map\n"
    );
}

#[test]
fn a_panic_is_logged_and_exits_101() {
    let world = World::new("panic", false, false);
    let r = run(&fixture(), &world, true, |_| vec![]);
    assert_eq!(r.status.code(), Some(101));
    let log = world.log().concat();
    assert!(
        log.contains("ERROR panic at subject/tests/fixture/idle.rs:"),
        "{log}"
    );
    assert!(log.contains("on purpose"), "{log}");
    assert!(log.ends_with("INFO exit 101\n"), "{log}");
    assert_eq!(r.events, [0]);
}

#[test]
fn a_halted_subject_is_woken_by_a_vector() {
    let world = World::new("idle-vector", true, false);
    // The peer: its channel is up before the subject starts; on the first `Halt` it
    // writes a frame and sends the vector of net0|in.
    let mut writer = Writer::init(
        world.region(NET_IN, NET_SIZE),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
        epoch_from(42),
    )
    .unwrap();
    let mut sent = false;
    let r = run(&fixture(), &world, true, |_| {
        if !std::mem::replace(&mut sent, true) {
            writer
                .write(&muennet::Element::new(b"frame from the peer").unwrap())
                .unwrap();
        }
        vec![33]
    });
    let log = world.log();
    assert!(r.status.success(), "{:?} {} {log:?}", r.status, r.stderr);
    assert!(r.halts >= 1, "the subject halted instead of spinning");
    assert!(
        log.contains(&"INFO received 19 bytes\n".to_string()),
        "{log:?}"
    );
    // The echo went out, with the net0|out event.
    let mut reader = Reader::new(
        Region::clone(&world.region(NET_OUT, NET_SIZE)),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
    )
    .unwrap();
    assert_eq!(
        reader.read::<muennet::Element>().unwrap_err(),
        ReadError::EpochChanged
    );
    let e = reader.read::<muennet::Element>().unwrap();
    assert_eq!(e.frame().unwrap(), b"frame from the peer");
    assert_eq!(r.events, [2, 0]);
}

#[test]
fn the_timed_event_wakes_a_sleeping_subject_at_its_deadline() {
    let world = World::new("idle-timer", false, false);
    let mut armed = Vec::new();
    let start = rdtsc();
    let r = run(&fixture(), &world, true, |w| {
        // The kernel: read the timed event page, wait for the trigger, fire it.
        let (trigger, event) = (
            w.load(layout::TIMED_EVENT.address.as_u64(), 0),
            w.load(layout::TIMED_EVENT.address.as_u64(), 8),
        );
        armed.push((trigger, event));
        if trigger == u64::MAX {
            return vec![];
        }
        while rdtsc() < trigger {
            std::thread::sleep(Duration::from_micros(200));
        }
        w.store(layout::TIMED_EVENT.address.as_u64(), 0, u64::MAX);
        vec![32]
    });
    let log = world.log();
    assert_eq!(r.status.code(), Some(0), "{} {log:?}", r.stderr);
    assert!(log.iter().any(|l| l.starts_with("INFO woke ")), "{log:?}");
    assert!(!armed.is_empty());
    let (trigger, event) = armed[0];
    assert_eq!(event, 1, "the `timer` event number");
    let khz = u64::from(tsc_khz());
    let after = (trigger - start) / khz;
    assert!(
        (40..2000).contains(&after),
        "trigger {after} ms after the start, expected about 50"
    );
    assert_eq!(
        world.load(layout::TIMED_EVENT.address.as_u64(), 0),
        u64::MAX,
        "disarmed"
    );
    assert_eq!(r.events, [0]);
}
