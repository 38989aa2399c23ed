//! The testbed's peers against the device ABI's compliance suite, in-process through
//! the `muen_testbed` library (no root, no subject process): its block server on its
//! own as a muenblock server, the runtime's muenblock client against it, and the
//! runtime's muennet driver against its network bridge (with a packet socket in place
//! of the TAP interface). The drivers run on muen-sim's simulated kernel; the memory
//! is the testbed's own memory file, built from a world with one device of each kind;
//! the image is a memfd.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::rc::Rc;

use muen_abi::layout::Region;
use muen_abi::names::Role;
use muen_abi::VirtAddr;
use muen_channel::protocol::{muenblock, muennet};
use muen_channel::{epoch_from, Writer};
use muen_device_compliance::block::{block_compliance, BlockFault, BlockPeer, BlockRule};
use muen_device_compliance::net::{net_compliance, NetPeer, NetRule};
use muen_device_compliance::peers::muenblock::ChannelHarness;
use muen_device_compliance::random::{assert_random, block_random, net_random, RandomConfig};
use muen_device_compliance::server::{server_compliance, ServerRule};
use muen_device_compliance::Rule;
use muen_sim::{memory_at, page, SimSys};
use muen_sinfo::SubjectInfo;
use muen_spec::{Mapping, NamedNumber, Origin, Registers, SubjectView};
use muen_subject::block::MuenBlock;
use muen_subject::device::FRAME_MAX;
use muen_subject::net::MuenNet;
use muen_testbed::kernel::Injector;
use muen_testbed::memory::Memory;
use muen_testbed::os;
use muen_testbed::peers::block::{Disk, Server};
use muen_testbed::peers::net::Bridge;
use muen_testbed::peers::tap::Tap;
use muen_testbed::world::World;

/// The muennet channels: 43 frames each.
const NET_CHANNEL: u64 = 0x1_0000;
/// The block data buffer: 64 KiB, so the server's Max_Blocks_Count is 128.
const DATA: u64 = 0x1_0000;
/// Image size in blocks of 512 bytes (2 MiB).
const BLOCKS: u64 = 4096;

fn world() -> World {
    let region = |address, size| Region {
        address: VirtAddr::new(address),
        size,
    };
    let channel = |name: &str, address, size, role| {
        Mapping::channel(name, region(address, size), role, Origin::Component)
    };
    let mappings = vec![
        channel("net0|in", 0x1000_0000, NET_CHANNEL, Role::Reader),
        channel("net0|out", 0x1100_0000, NET_CHANNEL, Role::Writer),
        channel(
            "disk|req",
            0x1200_0000,
            muenblock::REQUEST_REGION_SIZE as u64,
            Role::Writer,
        ),
        channel(
            "disk|resp",
            0x1300_0000,
            muenblock::RESPONSE_REGION_SIZE as u64,
            Role::Reader,
        ),
        Mapping::memory("disk|data", region(0x1400_0000, DATA), true),
    ];
    let number = |name: &str, number| NamedNumber {
        name: name.into(),
        number,
    };
    World::new(SubjectView {
        name: "compliance".into(),
        mappings,
        events: vec![number("net0|out", 2), number("disk|req", 3)],
        vectors: vec![number("net0|in", 33), number("disk|resp", 40)],
        registers: Registers::default(),
        simd_exceptions: false,
    })
    .expect("a valid world")
}

/// The world and the testbed's memory file for it, leaked (peers borrow it).
fn testbed_memory() -> (&'static World, &'static Memory) {
    let world: &'static World = Box::leak(Box::new(world()));
    let memory: &'static Memory =
        Box::leak(Box::new(Memory::new(&world.view).expect("the memory file")));
    (world, memory)
}

/// An image of `BLOCKS` blocks in a memfd, opened by the testbed like `--disk`, and
/// our own handle to read it back.
fn image() -> (Disk, File) {
    // SAFETY: a NUL-terminated name and flags; the result is checked.
    let fd = unsafe { libc::memfd_create(c"compliance-image".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `memfd_create` just returned it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let init: Vec<u8> = (0..BLOCKS * 512).map(|i| (i / 512) as u8 ^ 0xa5).collect();
    file.write_all_at(&init, 0).expect("writing the image");
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    (
        Disk::open(&path).expect("the testbed opens the image"),
        file,
    )
}

fn read_image(file: &File) -> Vec<u8> {
    let mut bytes = vec![0u8; (BLOCKS * 512) as usize];
    file.read_exact_at(&mut bytes, 0)
        .expect("reading the image");
    bytes
}

/// The testbed's block server for `disk`, with a fresh response channel.
fn block_server(world: &'static World, memory: &'static Memory, disk: Disk) -> Server<'static> {
    let d = world.block_device("disk").expect("a block device");
    let responses = Writer::init(
        memory.channel_mut(d.response).expect("a response region"),
        muenblock::PROTOCOL,
        muenblock::RESPONSE_SIZE,
        epoch_from(0x7e57),
    )
    .expect("a response channel");
    Server::new(
        "disk",
        memory,
        d.request,
        responses,
        d.data,
        d.response_vector,
        Some(disk),
    )
    .expect("a server")
}

/// Serves until the server is idle.
fn serve(server: &mut Server<'_>) {
    while let (n, true) = server.serve_batch() {
        if n == 0 {
            break;
        }
    }
}

/// The subject's sinfo page naming the testbed's mapping of the device regions.
fn subject_page(world: &World, memory: &Memory) -> SubjectInfo<'static> {
    page("compliance", |b| {
        for (i, r) in world.view.mappings.iter().enumerate() {
            let (address, size) = memory.range(i, 0).expect("a region");
            b.memory(&r.name, memory_at(address as u64, size, r.kind, r.writable))
                .expect("a memory record");
        }
        for e in &world.view.events {
            b.event(&e.name, e.number).expect("an event");
        }
        for v in &world.view.vectors {
            b.vector(&v.name, v.number).expect("a vector");
        }
    })
}

#[test]
fn the_block_server_passes_every_server_rule_and_keeps_outside_the_allowed_range() {
    let (world, memory) = testbed_memory();
    let (disk, file) = image();
    let server = Rc::new(RefCell::new(block_server(world, memory, disk)));
    let d = world.block_device("disk").expect("a block device");
    let s = server.clone();
    let mut harness = ChannelHarness::new(
        memory.channel_mut(d.request).expect("a request region"),
        memory.channel(d.response).expect("a response region"),
        memory.channel_mut(d.data).expect("a data region"),
        move || serve(&mut s.borrow_mut()),
        move || read_image(&file),
    );
    let report = server_compliance("testbed block server", &mut harness);
    report.assert_ok();
    assert_eq!(
        report.passed,
        ServerRule::ALL,
        "every rule checked, none skipped"
    );
    let stats = server.borrow().stats;
    assert!(stats.refused >= 60, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
}

/// The block client's view: a silent server is one the kernel does not schedule.
struct TestbedBlockPeer {
    silent: Rc<Cell<bool>>,
}

impl<D: ?Sized> BlockPeer<D> for TestbedBlockPeer {
    fn fault(&mut self, _dev: &mut D, fault: BlockFault) -> bool {
        // The testbed's server cannot restart or lose power in a run, and answers
        // errors only for failing host I/O.
        if fault == BlockFault::Silent {
            self.silent.set(true);
            return true;
        }
        false
    }

    fn heal(&mut self, _dev: &mut D) {
        self.silent.set(false);
    }
}

fn testbed_block_client() -> (
    MuenBlock<'static, SimSys>,
    TestbedBlockPeer,
    Rc<RefCell<Server<'static>>>,
) {
    let (world, memory) = testbed_memory();
    let (disk, _file) = image();
    let server = Rc::new(RefCell::new(block_server(world, memory, disk)));
    let silent = Rc::new(Cell::new(false));
    let sys = SimSys::leaked();
    let (s, quiet) = (server.clone(), silent.clone());
    sys.set_peer(move || {
        if !quiet.get() {
            serve(&mut s.borrow_mut());
        }
    });
    let info = subject_page(world, memory);
    // SAFETY: the page names regions of the leaked memory file, mapped for the rest of
    // the process; the server accesses them only atomically or through the kernel.
    let mut dev = unsafe { MuenBlock::acquire(sys, &info, "disk") }.expect("the server answers");
    dev.set_timeout(muen_abi::time::Duration::from_millis(50));
    (dev, TestbedBlockPeer { silent }, server)
}

#[test]
fn the_block_client_passes_against_the_testbed_server() {
    let (mut dev, mut peer, server) = testbed_block_client();
    assert_eq!(dev.geometry().max_blocks, DATA / 512);
    let report = block_compliance(
        "muenblock client (testbed block server)",
        &mut dev,
        &mut peer,
    );
    report.assert_ok();
    let skipped: Vec<BlockRule> = report.skipped.iter().map(|(r, _)| *r).collect();
    assert_eq!(skipped, [BlockRule::Durability, BlockRule::PeerRestart]);
    assert_eq!(report.passed.len(), BlockRule::ALL.len() - 2);
    assert_eq!(server.borrow().stats.failed, 0);
    assert!(dev.stats().timeouts >= 1);
}

#[test]
fn block_client_random_against_the_testbed_server() {
    let (mut dev, mut peer, _server) = testbed_block_client();
    assert_random(block_random(
        "muenblock client (testbed block server)",
        &mut dev,
        &mut peer,
        RandomConfig::from_env(20, 500),
    ));
}

/// The bridge, with the host's end of a packet socket pair in place of the TAP
/// interface: frames written there enter the bridge as from a TAP, and the bridge's
/// frames to the TAP arrive there.
struct BridgePeer {
    bridge: Bridge<'static>,
    host: OwnedFd,
    injector: &'static Injector<'static>,
    capacity: (usize, usize),
}

impl BridgePeer {
    fn host_frames(&self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: receives into a live buffer of its length.
            let n = unsafe {
                libc::recv(
                    self.host.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            match os::cvt_size(n) {
                Ok(n) => frames.push(buf[..n].to_vec()),
                Err(_) => return frames,
            }
        }
    }
}

impl<D: ?Sized> NetPeer<D> for BridgePeer {
    fn send(&mut self, _dev: &mut D, frame: &[u8]) {
        // SAFETY: sends from a live slice.
        let n = unsafe { libc::send(self.host.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "the socket took the frame");
        self.bridge
            .pump_in(self.injector)
            .expect("the bridge moves the frame");
    }

    fn collect(&mut self, _dev: &mut D) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        loop {
            let more = self.bridge.pump_out().expect("the bridge moves frames");
            frames.extend(self.host_frames());
            if !more {
                return frames;
            }
        }
    }

    fn capacity(&self) -> (usize, usize) {
        self.capacity
    }
}

fn testbed_net() -> (MuenNet<'static, SimSys>, BridgePeer) {
    let (world, memory) = testbed_memory();
    let d = world.net_device("net0").expect("a network device");
    let input = Writer::init(
        memory.channel_mut(d.input).expect("an input region"),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
        epoch_from(0x7e57),
    )
    .expect("an input channel");
    let output = memory.channel(d.output).expect("an output region");
    let (tap, host) = os::seqpacket_pair().expect("a socket pair");
    let tap = Tap::from_fd(tap, "socket").expect("a frame descriptor");
    let bridge =
        Bridge::new("net0", input, output, d.input_vector, Some(tap), None).expect("a bridge");
    // The subject's end of the control socket: vectors pile up there, unread.
    let (ours, theirs) = os::seqpacket_pair().expect("a socket pair");
    let ours: &'static OwnedFd = Box::leak(Box::new(ours));
    Box::leak(Box::new(theirs));
    let injector: &'static Injector<'static> =
        Box::leak(Box::new(Injector::new(ours.as_fd()).expect("an injector")));
    let elements = ((NET_CHANNEL - 64) / muennet::ELEMENT_SIZE as u64) as usize;
    let info = subject_page(world, memory);
    let sys = SimSys::leaked();
    // SAFETY: the page names regions of the leaked memory file, mapped for the rest of
    // the process; the bridge accesses them only atomically.
    let dev = unsafe { MuenNet::acquire(sys, &info, "net0") }.expect("the device is complete");
    let peer = BridgePeer {
        bridge,
        host,
        injector,
        capacity: (elements, elements),
    };
    (dev, peer)
}

#[test]
fn the_net_driver_passes_against_the_testbed_bridge() {
    let (mut dev, mut peer) = testbed_net();
    let report = net_compliance("muennet driver (testbed bridge)", &mut dev, &mut peer);
    report.assert_ok();
    let skipped: Vec<NetRule> = report.skipped.iter().map(|(r, _)| *r).collect();
    assert_eq!(skipped, [NetRule::PeerRestart, NetRule::PeerMisbehaviour]);
    let stats = peer.bridge.stats;
    assert_eq!(
        (stats.tap_errors, stats.bad_frames, stats.oversized),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(
        stats.out_overruns >= 1,
        "the overrun check overran the bridge's reader: {stats:?}"
    );
    assert!(dev.stats().rx_overruns >= 1, "{:?}", dev.stats());
    assert!(
        peer.injector.sent() > 0,
        "the bridge injected the input vector"
    );
    let _ = FRAME_MAX;
}

#[test]
fn net_random_against_the_testbed_bridge() {
    let (mut dev, mut peer) = testbed_net();
    assert_random(net_random(
        "muennet driver (testbed bridge)",
        &mut dev,
        &mut peer,
        RandomConfig::from_env(20, 500),
    ));
    let stats = peer.bridge.stats;
    assert_eq!((stats.tap_errors, stats.bad_frames), (0, 0), "{stats:?}");
}
