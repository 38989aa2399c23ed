//! The runtime's drivers against in-test peers: the muennet driver with a muennet peer
//! on channels in ordinary memory, the muenblock client with an in-memory muenblock
//! server (write cache, failures, restarts, power loss); and that server on its own.

use muen_device_compliance::block::{block_compliance, BlockRule};
use muen_device_compliance::net::{net_compliance, NetRule};
use muen_device_compliance::peers::muenblock::{mem_server_harness, muenblock};
use muen_device_compliance::peers::muennet::muennet;
use muen_device_compliance::random::{assert_random, block_random, net_random, RandomConfig};
use muen_device_compliance::server::{server_compliance, ServerRule};
use muen_device_compliance::Rule;

/// Channels of 16 KiB: 10 frames each, so overruns are cheap to provoke.
const SMALL: usize = 0x4000;
/// Channels of 1 MiB, as the default muennet channel: 691 frames.
const LARGE: usize = 0x10_0000;

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

#[test]
fn the_in_memory_server_passes_every_server_rule() {
    let (mut harness, server) = mem_server_harness(64, 0x4000);
    let report = server_compliance("in-memory muenblock server", &mut harness);
    report.assert_ok();
    assert_eq!(report.passed, ServerRule::ALL);
    assert!(
        server.borrow().stats.refused > 30,
        "{:?}",
        server.borrow().stats
    );
}
