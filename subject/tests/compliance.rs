//! The runtime's drivers against the device ABI's compliance suite, with the in-memory
//! peers of `muen-sim`: the muennet driver with a muennet peer on channels in ordinary
//! memory, the muenblock client with an in-memory muenblock server (write cache,
//! failures, restarts, power loss).

use std::cell::RefCell;
use std::rc::Rc;

use muen_device_compliance::block::{block_compliance, BlockRule};
use muen_device_compliance::net::{net_compliance, NetRule};
use muen_device_compliance::random::{assert_random, block_random, net_random, RandomConfig};
use muen_device_compliance::Rule;
use muen_sim::peers::{muenblock_device, muennet_device, MuenblockServer, MuennetPeer};
use muen_sim::SimSys;
use muen_subject::block::MuenBlock;
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
