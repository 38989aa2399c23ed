//! The bindings on muen-sim: a sinfo page with a muennet device, a muenblock device
//! and, optionally, the timed event; the runtime on a simulated CPU.

use super::*;
use core::sync::atomic::{AtomicU64, Ordering};
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use muen_abi::time::Tsc;
use muen_channel::protocol::muenblock::{REQUEST_REGION_SIZE, RESPONSE_REGION_SIZE};
use muen_channel::EventHook;
use muen_sim::peers::{MuenblockServer, MuennetPeer};
use muen_sim::{memory, page, shared, SimSys};
use muen_sinfo::{Builder, MemoryKind};
use muen_subject::platform::VectorSet;
use solo5_abi::build::{manifest, DeviceSpec};

use crate::console::tests::{console, lines};

/// The runtime's platform on muen-sim: `pause` lets the peers run and advances the
/// clock, `halt` runs the kernel hook; `exit` unwinds with the status.
#[derive(Clone, Copy)]
struct Sim(&'static SimSys);

impl EventHook for Sim {
    fn trigger(&self, event: Event) {
        muen_device::Sys::trigger(self.0, event)
    }
}

impl Platform for Sim {
    fn tsc(&self) -> Tsc {
        muen_device::Sys::tsc(self.0)
    }
    fn pause(&self) {
        // Let the peer (the block server) run, without moving the clock.
        let now = muen_device::Sys::tsc(self.0);
        muen_device::Sys::wait(self.0, now, &mut || true);
        self.0.pause();
    }
    fn take_pending(&self) -> VectorSet {
        VectorSet::EMPTY
    }
    fn halt_unless(&self, ready: &mut dyn FnMut() -> bool) -> bool {
        if ready() {
            return false;
        }
        self.0.halt();
        true
    }
    fn exit(&self, code: i32) -> ! {
        std::panic::panic_any(Exited(code))
    }
}

/// What `Platform::exit` unwinds with.
#[derive(Debug, PartialEq)]
struct Exited(i32);

/// The status `f` exits with.
fn exit_status(f: impl FnOnce()) -> i32 {
    let payload = catch_unwind(AssertUnwindSafe(f)).unwrap_err();
    payload.downcast::<Exited>().map(|e| e.0).unwrap()
}

/// A unikernel's world: the simulated CPU, the net peer, the block server, and the
/// timed event page when there is one.
struct World {
    sim: &'static SimSys,
    net: Rc<RefCell<MuennetPeer>>,
    block: Rc<RefCell<MuenblockServer>>,
    timed: Option<&'static [AtomicU64]>,
    bindings: &'static Bindings<'static, Sim>,
    read_log: Box<dyn FnMut() -> Vec<String>>,
}

/// The manifest of every test: net `service0`, block `storage`, and two devices the
/// page lacks (`missing`, net; `nodisk`, block).
fn test_manifest() -> Manifest<'static> {
    let bytes = manifest(&[
        DeviceSpec {
            name: "service0",
            device_type: DeviceType::NetBasic,
        },
        DeviceSpec {
            name: "storage",
            device_type: DeviceType::BlockBasic,
        },
        DeviceSpec {
            name: "missing",
            device_type: DeviceType::NetBasic,
        },
        DeviceSpec {
            name: "nodisk",
            device_type: DeviceType::BlockBasic,
        },
    ])
    .unwrap();
    Manifest::validate(Box::leak(bytes.into_boxed_slice())).unwrap()
}

/// Handles in [`test_manifest`].
const SERVICE0: Solo5Handle = Solo5Handle(1);
const STORAGE: Solo5Handle = Solo5Handle(2);

/// Blocks of the test disk (512 bytes each).
const BLOCKS: u64 = 64;

impl World {
    /// With `timer`: the page has `timed_event` and the `timer` event (1) and vector
    /// (32), and the kernel hook fires the timed event at its trigger.
    fn new(timer: bool) -> World {
        let sim = SimSys::leaked();
        let (net_in, net_out) = (shared(0x4000), shared(0x4000));
        let (req, resp, data) = (
            shared(REQUEST_REGION_SIZE),
            shared(RESPONSE_REGION_SIZE),
            shared(0x1_0000),
        );
        let timed = timer.then(|| shared(0x1000));
        let info = page("unikernel", |b: &mut Builder| {
            b.memory(
                "service0|in",
                memory(net_in, MemoryKind::SubjectChannel, false),
            )
            .unwrap()
            .memory(
                "service0|out",
                memory(net_out, MemoryKind::SubjectChannel, true),
            )
            .unwrap()
            .memory("storage|req", memory(req, MemoryKind::SubjectChannel, true))
            .unwrap()
            .memory(
                "storage|resp",
                memory(resp, MemoryKind::SubjectChannel, false),
            )
            .unwrap()
            .memory(
                "storage|data",
                memory(data, MemoryKind::SubjectDevice, true),
            )
            .unwrap()
            .event("storage|req", 3)
            .unwrap()
            .event(EXIT_EVENT, 5)
            .unwrap();
            if let Some(t) = timed {
                b.memory(
                    "timed_event",
                    memory(t, MemoryKind::SubjectTimedEvent, true),
                )
                .unwrap()
                .event("timer", 1)
                .unwrap()
                .vector("timer", 32)
                .unwrap();
            }
        });
        let net = Rc::new(RefCell::new(MuennetPeer::new(net_in, net_out)));
        let block = Rc::new(RefCell::new(MuenblockServer::new(
            req, resp, data, BLOCKS, 512,
        )));
        let server = block.clone();
        sim.set_peer(move || server.borrow_mut().step());
        if let Some(t) = timed {
            // The kernel: time passes to the armed trigger (a vector then ends the
            // sleep); the block server runs meanwhile.
            let server = block.clone();
            sim.set_kernel(move |m| {
                server.borrow_mut().step();
                let trigger = t[0].load(Ordering::Relaxed);
                let now = muen_device::Sys::tsc(m).ticks();
                m.set_tsc(Tsc::from_ticks(now.max(trigger)));
            });
        }
        // SAFETY: the page names leaked test memory that only this runtime uses.
        let rt: &'static Runtime<Sim> =
            Box::leak(Box::new(unsafe { Runtime::new(Sim(sim), info) }.unwrap()));
        let (console, read_log) = console();
        let bindings = Box::leak(Box::new(Bindings::new(rt, console, test_manifest())));
        World {
            sim,
            net,
            block,
            timed,
            bindings,
            read_log: Box::new(read_log),
        }
    }

    /// The console's lines since the last call.
    fn log(&mut self) -> Vec<String> {
        lines((self.read_log)())
    }
}

#[test]
fn net_devices_are_acquired_once_by_manifest_name() {
    let mut w = World::new(false);
    let b = w.bindings;
    let (handle, info) = b.net_acquire(b"service0").unwrap();
    assert_eq!(handle, SERVICE0, "the manifest entry's index");
    assert_eq!(info.mtu, 1500);
    assert_eq!(
        info.mac_address[0] & 0x03,
        0x02,
        "unicast, locally administered"
    );
    assert!(w
        .log()
        .iter()
        .any(|l| l == "Solo5: Application acquired 'service0' as network device\n"));

    assert_eq!(b.net_acquire(b"service0"), Err(Solo5Result::Einval));
    assert!(w
        .log()
        .contains(&"Solo5: Net: Device 'service0' already acquired\n".to_string()));
    assert_eq!(
        b.net_acquire(b"storage"),
        Err(Solo5Result::Einval),
        "a block device"
    );
    assert_eq!(b.net_acquire(b"nothere"), Err(Solo5Result::Einval));
    assert_eq!(b.net_acquire(b""), Err(Solo5Result::Einval));
}

#[test]
fn a_device_the_page_lacks_is_eunspec_with_a_line_naming_it_and_can_be_retried() {
    let mut w = World::new(false);
    let b = w.bindings;
    assert_eq!(b.net_acquire(b"missing"), Err(Solo5Result::Eunspec));
    let log = w.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with("Solo5: Net: 'missing': not acquired: ")
            && log[0].contains("missing|in"),
        "{log:?}"
    );
    // Nothing was taken: the same answer again, not "already acquired".
    assert_eq!(b.net_acquire(b"missing"), Err(Solo5Result::Eunspec));
    assert_eq!(b.block_acquire(b"nodisk"), Err(Solo5Result::Eunspec));
    let log = w.log();
    assert!(log
        .last()
        .unwrap()
        .starts_with("Solo5: Block: 'nodisk': not acquired: "));
    assert!(log.last().unwrap().contains("nodisk|"), "{log:?}");
}

#[test]
fn net_read_copies_one_frame_and_never_writes_past_the_callers_size() {
    let w = World::new(false);
    let b = w.bindings;
    let (h, _) = b.net_acquire(b"service0").unwrap();
    let mut buf = vec![0xaau8; 1514 + 16];

    assert_eq!(b.net_read(h, &mut buf[..1514]), Err(Solo5Result::Again));
    w.net.borrow_mut().send(&[1, 2, 3, 4]);
    assert_eq!(b.net_read(h, &mut buf[..1514]), Ok(4));
    assert_eq!(&buf[..4], &[1, 2, 3, 4]);

    // Whatever the peer's length field says, nothing beyond the caller's buffer.
    for length in [1515u16, 2000, u16::MAX, 0] {
        w.net.borrow_mut().send_length_field(length);
        assert_eq!(b.net_read(h, &mut buf[..1514]), Err(Solo5Result::Again));
    }
    assert!(
        buf[1514..].iter().all(|&x| x == 0xaa),
        "past the size untouched"
    );

    // A buffer below 1514 bytes is EINVAL and consumes nothing.
    w.net.borrow_mut().send(&[9; 1514]);
    assert_eq!(b.net_read(h, &mut buf[..1513]), Err(Solo5Result::Einval));
    assert_eq!(b.net_read(h, &mut buf[..1514]), Ok(1514));
    assert!(buf[..1514].iter().all(|&x| x == 9));
    assert!(buf[1514..].iter().all(|&x| x == 0xaa));

    assert_eq!(b.net_read(STORAGE, &mut buf), Err(Solo5Result::Einval));
    assert_eq!(
        b.net_read(Solo5Handle(99), &mut buf),
        Err(Solo5Result::Einval)
    );
}

#[test]
fn net_write_sends_whole_frames_and_refuses_empty_and_oversize_ones() {
    let w = World::new(false);
    let b = w.bindings;
    let (h, _) = b.net_acquire(b"service0").unwrap();
    assert_eq!(b.net_write(h, &[7; 60]), Ok(()));
    assert_eq!(b.net_write(h, &[8; 1514]), Ok(()));
    assert_eq!(b.net_write(h, &[]), Err(Solo5Result::Einval));
    assert_eq!(b.net_write(h, &[0; 1515]), Err(Solo5Result::Einval));
    assert_eq!(w.net.borrow_mut().collect(), [vec![7; 60], vec![8; 1514]]);
    assert_eq!(
        b.net_write(Solo5Handle(3), &[1]),
        Err(Solo5Result::Einval),
        "not acquired"
    );
    assert_eq!(
        b.net_write(Solo5Handle(0), &[1]),
        Err(Solo5Result::Einval),
        "reserved"
    );
}

#[test]
fn block_devices_read_and_write_one_block_with_solo5s_argument_rules() {
    let w = World::new(false);
    let b = w.bindings;
    let (h, info) = b.block_acquire(b"storage").unwrap();
    assert_eq!(h, STORAGE);
    assert_eq!(info.block_size, Solo5Offset(512));
    assert_eq!(info.capacity, Solo5Offset(BLOCKS * 512));
    assert_eq!(
        b.block_acquire(b"storage"),
        Err(Solo5Result::Einval),
        "taken once"
    );

    let block: Vec<u8> = (0..512).map(|i| (i % 251) as u8).collect();
    let last = Solo5Offset((BLOCKS - 1) * 512);
    assert_eq!(b.block_write(h, Solo5Offset(512), &block), Ok(()));
    assert_eq!(b.block_write(h, last, &block), Ok(()));
    let mut back = vec![0u8; 512];
    assert_eq!(b.block_read(h, Solo5Offset(512), &mut back), Ok(()));
    assert_eq!(back, block);
    assert_eq!(b.block_read(h, last, &mut back), Ok(()));
    assert_eq!(back, block);
    assert_eq!(w.block.borrow().image()[512..1024], block[..]);

    // Solo5's rules: EINVAL, nothing sent, nothing written.
    let before = w.block.borrow().stats.requests;
    let mut big = vec![0u8; 1024];
    for (offset, len) in [
        (0, 511),
        (0, 513),
        (0, 1024),
        (0, 0),
        (511, 512),
        (1, 512),
        (BLOCKS * 512, 512),
        (u64::MAX - 511, 512),
    ] {
        let offset = Solo5Offset(offset);
        assert_eq!(
            b.block_write(h, offset, &big[..len]),
            Err(Solo5Result::Einval),
            "write {offset:?} {len}"
        );
        big[..len].fill(0xcc);
        assert_eq!(
            b.block_read(h, offset, &mut big[..len]),
            Err(Solo5Result::Einval),
            "read {offset:?} {len}"
        );
        assert!(
            big[..len].iter().all(|&x| x == 0xcc),
            "read buffer untouched"
        );
    }
    assert_eq!(w.block.borrow().stats.requests, before, "no request sent");
    assert_eq!(
        b.block_read(SERVICE0, Solo5Offset(0), &mut back),
        Err(Solo5Result::Einval)
    );
}

#[test]
fn a_failing_block_device_is_eunspec_with_a_line_and_stays_usable() {
    let mut w = World::new(false);
    let b = w.bindings;
    let (h, _) = b.block_acquire(b"storage").unwrap();
    w.log();
    w.block.borrow_mut().error_status = true;
    let mut buf = vec![0u8; 512];
    assert_eq!(
        b.block_read(h, Solo5Offset(0), &mut buf),
        Err(Solo5Result::Eunspec)
    );
    let log = w.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with("Solo5: Block: handle 2: read at 0x0: "),
        "{log:?}"
    );
    w.block.borrow_mut().error_status = false;
    assert_eq!(b.block_read(h, Solo5Offset(0), &mut buf), Ok(()));
    assert!(
        buf.iter().all(|&x| x == 0x5a),
        "block 0 of the server's image"
    );

    // A server that stops answering: the call returns (timeout), EUNSPEC.
    w.block.borrow_mut().silent = true;
    w.sim.set_pause_step(1_000_000);
    assert_eq!(
        b.block_write(h, Solo5Offset(0), &buf),
        Err(Solo5Result::Eunspec)
    );
}

#[test]
fn yield_without_a_timer_spins_until_the_deadline() {
    let w = World::new(false);
    let b = w.bindings;
    let start = b.monotonic();
    let ready = b.yield_until(Solo5Time(start.0 + 2_000_000));
    assert!(ready.is_empty());
    assert!(b.monotonic().0 >= start.0 + 2_000_000);
    assert_eq!(w.sim.halts(), 0);
    assert!(w.sim.pauses() > 0, "PAUSE, as Solo5's C bindings always do");
}

#[test]
fn yield_with_the_timer_halts_until_the_deadline_or_input() {
    let w = World::new(true);
    let b = w.bindings;
    let (h, _) = b.net_acquire(b"service0").unwrap();
    let timed = w.timed.unwrap();
    let mut buf = [0u8; 1514];

    // Nothing arrives: sleeps armed for the deadline, then the empty set. (The peer's
    // channel is new to the reader, which wakes the first poll at once: no frame, so
    // the wait goes on, without a spurious `ready`.)
    let start = b.monotonic();
    let deadline = Solo5Time(start.0 + 5_000_000);
    assert!(b.yield_until(deadline).is_empty());
    assert!(b.monotonic() >= deadline);
    assert_eq!(w.sim.halts(), 1);
    assert_eq!(w.sim.pauses(), 0, "no spinning");
    assert_eq!(
        timed[1].load(Ordering::Relaxed),
        1,
        "the `timer` event armed"
    );

    // A frame waiting: at once, with the device's handle.
    w.net.borrow_mut().send(&[1; 60]);
    let now = b.monotonic();
    let ready = b.yield_until(Solo5Time(now.0 + 1_000_000_000));
    assert!(ready.contains(h) && ready.iter().count() == 1);
    assert_eq!(w.sim.halts(), 1, "no sleep with data waiting");
    assert_eq!(b.net_read(h, &mut buf), Ok(60));

    // A frame arriving during the sleep ends it.
    let net = w.net.clone();
    let sent = Rc::new(Cell::new(false));
    let s = sent.clone();
    w.sim.set_kernel(move |m| {
        if !s.replace(true) {
            net.borrow_mut().send(&[2; 60]);
            let now = muen_device::Sys::tsc(m).ticks();
            m.set_tsc(Tsc::from_ticks(now + 1_000));
        }
    });
    let ready = b.yield_until(Solo5Time(b.monotonic().0 + 1_000_000_000));
    assert!(ready.contains(h));
    assert_eq!(w.sim.halts(), 2);

    // A deadline in the past looks once and returns.
    assert_eq!(b.net_read(h, &mut buf), Ok(60));
    assert_eq!(&buf[..60], &[2; 60]);
    assert!(b.yield_until(Solo5Time(0)).is_empty());
    assert_eq!(w.sim.halts(), 2);
    assert_eq!(b.net_read(h, &mut buf), Err(Solo5Result::Again));

    // Elements the driver drops wake the poll but make nobody ready; frames that
    // follow keep their order behind the one yield took out.
    w.net.borrow_mut().send_length_field(0);
    assert!(
        b.yield_until(Solo5Time(0)).is_empty(),
        "no frame, not ready"
    );
    w.net.borrow_mut().send(&[3; 60]);
    w.net.borrow_mut().send(&[4; 61]);
    assert!(b.yield_until(Solo5Time(0)).contains(h));
    assert!(b.yield_until(Solo5Time(0)).contains(h), "still holding it");
    assert_eq!(b.net_read(h, &mut buf[..1513]), Err(Solo5Result::Einval));
    assert_eq!(b.net_read(h, &mut buf), Ok(60));
    assert_eq!(&buf[..60], &[3; 60]);
    assert_eq!(b.net_read(h, &mut buf), Ok(61));
    assert_eq!(b.net_read(h, &mut buf), Err(Solo5Result::Again));
}

#[test]
fn clocks() {
    let w = World::new(false);
    let b = w.bindings;
    let t = b.monotonic();
    w.sim.pause();
    assert!(b.monotonic() > t);
    assert_eq!(
        b.monotonic().0,
        muen_device::Sys::tsc(w.sim).ticks(),
        "1 GHz: ticks are ns"
    );
    assert_eq!(b.wall(), b.monotonic(), "no time_info: counts from 1970");
}

#[test]
fn exit_and_abort_log_trigger_solo5_exit_and_end_with_the_status() {
    let mut w = World::new(false);
    let b = w.bindings;
    assert_eq!(exit_status(|| b.exit(3)), 3);
    assert_eq!(
        w.log(),
        ["Solo5: solo5_exit(3) called\n", "Solo5: Halted\n"]
    );
    assert_eq!(w.sim.take_events(), [5], "event `solo5_exit`");
    assert_eq!(exit_status(|| b.abort()), SOLO5_EXIT_ABORT);
    assert_eq!(
        w.log(),
        ["Solo5: solo5_abort() called\n", "Solo5: Halted\n"]
    );
    assert_eq!(w.sim.take_events(), [5]);
    b.console().set_level(crate::console::Level::Error);
    assert_eq!(exit_status(|| b.exit(0)), 0);
    assert_eq!(w.log(), Vec::<String>::new(), "quiet: no Halted either");
    assert_eq!(w.sim.take_events(), [5]);
}
