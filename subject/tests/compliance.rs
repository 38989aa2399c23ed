//! The runtime's drivers against the device ABI's compliance suite, with the in-memory
//! peers of `muen-sim`: the muennet driver with a muennet peer on channels in ordinary
//! memory, the muenblock client with an in-memory muenblock server (write cache,
//! failures, restarts, power loss); the typed channel ends (`ChannelReader`,
//! `ChannelWriter`) on channels in ordinary memory named by sinfo pages of `muen-sim`,
//! with the suite writing or reading the other end.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;

use muen_abi::time::{Tsc, TscRate};
use muen_channel::protocol::muennet;
use muen_channel::{ElementType, Event};
use muen_device_compliance::block::{block_compliance, BlockRule};
use muen_device_compliance::channel::{
    receiver_compliance, sender_compliance, ChannelRule, SenderHarness, SignalRecorder,
};
use muen_device_compliance::net::{net_compliance, NetRule};
use muen_device_compliance::random::{assert_random, block_random, net_random, RandomConfig};
use muen_device_compliance::Rule;
use muen_sim::peers::{muenblock_device, muennet_device, MuenblockServer, MuennetPeer};
use muen_sim::{memory, page, shared, SimSys};
use muen_sinfo::{MemoryKind, SubjectInfo};
use muen_subject::block::MuenBlock;
use muen_subject::channel::{ChannelReader, ChannelWriter};
use muen_subject::device::Sys;
use muen_subject::net::MuenNet;
use muen_subject::Duration;

/// Channels of 16 KiB: 10 frames each, so overruns are cheap to provoke.
const SMALL: usize = 0x4000;
/// Channels of 1 MiB, as the default muennet channel: 691 frames.
const LARGE: usize = 0x10_0000;

/// A [`MuenNet`] of subject `compliance`, device `net0`, on two channels of
/// `channel_bytes` each (with the `net0|out` event), its peer and its kernel.
fn muennet(channel_bytes: usize) -> (MuenNet<'static, SimSys>, MuennetPeer, &'static SimSys) {
    let (info, peer) = muennet_device("compliance", "net0", channel_bytes, true);
    let sys = SimSys::leaked();
    // SAFETY: the page names leaked buffers, alive forever and used by no one else but
    // the peer, through atomic accesses.
    let dev = unsafe { MuenNet::acquire(sys, &info, "net0") }.expect("the device is complete");
    (dev, peer, sys)
}

/// A [`MuenBlock`] of subject `compliance`, device `disk`, served by a
/// [`MuenblockServer`] with `blocks` blocks of 512 bytes (`configure` adjusts the
/// server before the client asks for the geometry), and the server. The client's
/// timeout is 50 ms of simulated time.
fn muenblock(
    blocks: u64,
    configure: impl FnOnce(&mut MuenblockServer),
) -> (MuenBlock<'static, SimSys>, Rc<RefCell<MuenblockServer>>) {
    let sys = SimSys::leaked();
    let (info, server) = muenblock_device("compliance", "disk", blocks, 512, sys);
    configure(&mut server.borrow_mut());
    // SAFETY: the page names leaked buffers, alive forever, used otherwise only by the
    // server through atomic accesses.
    let mut dev = unsafe { MuenBlock::acquire(sys, &info, "disk") }.expect("the server answers");
    dev.set_timeout(Duration::from_millis(50));
    (dev, server)
}

#[test]
fn muennet_passes_every_rule() {
    for size in [SMALL, LARGE] {
        let (mut dev, mut peer, sys) = muennet(size);
        let report = net_compliance("muennet driver (in-test peer)", &mut dev, &mut peer);
        report.assert_ok();
        assert_eq!(
            report.passed,
            NetRule::ALL,
            "every rule checked, none skipped"
        );
        assert!(!sys.take_events().is_empty(), "transmits trigger the event");
        assert!(
            dev.stats().rx_dropped >= 2,
            "the bad elements were dropped: {:?}",
            dev.stats()
        );
        assert!(dev.stats().rx_overruns >= 1, "{:?}", dev.stats());
        assert!(dev.stats().rx_errors >= 1, "{:?}", dev.stats());
    }
}

#[test]
fn muennet_random() {
    let (mut dev, mut peer, _) = muennet(SMALL);
    assert_random(net_random(
        "muennet driver (in-test peer)",
        &mut dev,
        &mut peer,
        RandomConfig::from_env(20, 500),
    ));
}

#[test]
fn muenblock_passes_every_rule() {
    for max_requests in [None, Some(3)] {
        let (mut dev, mut peer) = muenblock(4096, |s| s.max_requests = max_requests);
        let report = block_compliance("muenblock client (in-memory server)", &mut dev, &mut peer);
        report.assert_ok();
        assert_eq!(
            report.passed,
            BlockRule::ALL,
            "every rule checked, none skipped"
        );
        let stats = dev.stats();
        assert!(stats.timeouts >= 1 && stats.resets >= 1, "{stats:?}");
        assert!(stats.stray_responses >= 1, "{stats:?}");
        assert!(
            stats.max_in_flight >= 3,
            "transfers were pipelined: {stats:?}"
        );
    }
}

#[test]
fn muenblock_random() {
    let (mut dev, mut peer) = muenblock(2048, |_| {});
    assert_random(block_random(
        "muenblock client (in-memory server)",
        &mut dev,
        &mut peer,
        RandomConfig::from_env(20, 500),
    ));
}

// ------------------------------------------------------------------ typed channels

/// An element of 36 bytes: not a multiple of 8, so half the slots start unaligned.
#[derive(zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct Odd([u8; 36]);

impl ElementType for Odd {
    const PROTOCOL: u64 = 0x6f64_6400_0000_0001;
}

/// The channel `notes` of `bytes` bytes as its writer `w` (event 3) and its reader `r`
/// (vector 33) see it.
fn channel_pages(
    bytes: usize,
) -> (
    SubjectInfo<'static>,
    SubjectInfo<'static>,
    &'static [AtomicU64],
) {
    let words = shared(bytes);
    let writer = page("w", |b| {
        b.memory("notes", memory(words, MemoryKind::SubjectChannel, true))
            .unwrap()
            .event("notes", 3)
            .unwrap();
    });
    let reader = page("r", |b| {
        b.memory("notes", memory(words, MemoryKind::SubjectChannel, false))
            .unwrap()
            .vector("notes", 33)
            .unwrap();
    });
    (writer, reader, words)
}

fn receiver_passes<E: ElementType>(bytes: usize) {
    let (_, r, words) = channel_pages(bytes);
    // SAFETY: the page names leaked memory, which only the suite writes (atomically).
    let mut rx = unsafe { ChannelReader::<E>::acquire(&r, "notes") }.expect("a reader");
    let report = receiver_compliance(
        &format!(
            "ChannelReader<{}-byte elements> ({bytes}-byte channel)",
            E::SIZE
        ),
        &mut rx,
        words,
    );
    report.assert_ok();
    assert_eq!(
        report.passed,
        ChannelRule::RECEIVER,
        "every rule checked, none skipped"
    );
    let stats = rx.stats();
    assert!(stats.restarts >= 5 && stats.overruns >= 4, "{stats:?}");
    assert!(
        stats.wrong_type >= 4 && stats.misbehaviour >= 3,
        "{stats:?}"
    );
}

#[test]
fn channel_reader_passes_every_receiver_rule() {
    receiver_passes::<Odd>(0x1000);
    receiver_passes::<muennet::Element>(0x4000);
}

/// The simulated kernel of a writer whose events the suite's [`SignalRecorder`] sees
/// (what a reader would see when its vector arrives).
struct Signalling {
    sim: SimSys,
    recorder: SignalRecorder<'static>,
}

impl Sys for Signalling {
    fn trigger(&self, event: Event) {
        self.sim.trigger(event);
        self.recorder.signal();
    }
    fn tsc(&self) -> Tsc {
        self.sim.tsc()
    }
    fn tsc_rate(&self) -> TscRate {
        self.sim.tsc_rate()
    }
    fn wait(&self, deadline: Tsc, ready: &mut dyn FnMut() -> bool) {
        self.sim.wait(deadline, ready)
    }
}

/// Takes `ChannelWriter`s of channel `notes` from the writer's page, a millisecond
/// of simulated time apart (as two starts of a subject are).
struct WriterHarness {
    sys: &'static Signalling,
    info: SubjectInfo<'static>,
}

impl<E: ElementType> SenderHarness<E> for WriterHarness {
    type Sender = ChannelWriter<'static, E, Signalling>;

    fn take(&mut self) -> Self::Sender {
        let sim = &self.sys.sim;
        sim.set_tsc(Tsc::from_ticks(sim.tsc().ticks() + 1_000_000));
        // SAFETY: the page names leaked memory; the suite dropped the previous writer,
        // and reads the channel only atomically.
        unsafe { ChannelWriter::acquire(self.sys, &self.info, "notes") }.expect("a writer")
    }

    fn signals(&mut self) -> Option<Vec<u64>> {
        let events = self.sys.sim.take_events();
        assert!(events.iter().all(|&e| e == 3), "events {events:?}");
        Some(self.sys.recorder.take())
    }
}

fn sender_passes<E: ElementType>(bytes: usize) {
    let (w, _, words) = channel_pages(bytes);
    let sys: &'static Signalling = Box::leak(Box::new(Signalling {
        sim: SimSys::new(),
        recorder: SignalRecorder::new(words),
    }));
    let mut harness = WriterHarness { sys, info: w };
    let report = sender_compliance::<E, _>(
        &format!(
            "ChannelWriter<{}-byte elements> ({bytes}-byte channel)",
            E::SIZE
        ),
        &mut harness,
        words,
    );
    report.assert_ok();
    assert_eq!(
        report.passed,
        ChannelRule::SENDER,
        "every rule checked, none skipped"
    );
}

#[test]
fn channel_writer_passes_every_sender_rule() {
    sender_passes::<Odd>(0x1000);
    sender_passes::<muennet::Element>(0x4000);
}
