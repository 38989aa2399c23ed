//! The reference devices pass every rule and the random sequences: the baseline the
//! negative tests (`negative.rs`) break one rule at a time.

use muen_device_compliance::block::{block_compliance, BlockRule};
use muen_device_compliance::net::{net_compliance, NetRule};
use muen_device_compliance::random::{assert_random, block_random, net_random, RandomConfig};
use muen_device_compliance::reference::{
    MemBlock, MemBlockPeer, MemNet, MemNetPeer, MEM_NET_CAPACITY,
};
use muen_device_compliance::Rule;

#[test]
fn mem_net_passes_every_rule() {
    let mut dev = MemNet::new(MEM_NET_CAPACITY);
    let report = net_compliance("MemNet", &mut dev, &mut MemNetPeer);
    report.assert_ok();
    assert_eq!(
        report.passed,
        NetRule::ALL,
        "every rule checked, none skipped"
    );
}

#[test]
fn mem_block_passes_every_rule() {
    for bs in [512, 4096] {
        let mut dev = MemBlock::new(1024, bs);
        let report = block_compliance("MemBlock", &mut dev, &mut MemBlockPeer);
        report.assert_ok();
        assert_eq!(
            report.passed,
            BlockRule::ALL,
            "every rule checked, none skipped"
        );
    }
}

#[test]
fn mem_net_random() {
    let mut dev = MemNet::new(MEM_NET_CAPACITY);
    assert_random(net_random(
        "MemNet",
        &mut dev,
        &mut MemNetPeer,
        RandomConfig::from_env(20, 500),
    ));
}

#[test]
fn mem_block_random() {
    let mut dev = MemBlock::new(256, 512);
    assert_random(block_random(
        "MemBlock",
        &mut dev,
        &mut MemBlockPeer,
        RandomConfig::from_env(20, 500),
    ));
}
