//! The reference devices pass every rule and the random sequences: the baseline the
//! negative tests (`negative.rs`) break one rule at a time.

use muen_channel::protocol::muennet;
use muen_device_compliance::block::{block_compliance, BlockRule};
use muen_device_compliance::channel::{receiver_compliance, sender_compliance, ChannelRule};
use muen_device_compliance::net::{net_compliance, NetRule};
use muen_device_compliance::random::{assert_random, block_random, net_random, RandomConfig};
use muen_device_compliance::reference::{
    MemBlock, MemBlockPeer, MemNet, MemNetPeer, MemReceiver, MemSenderHarness, MEM_NET_CAPACITY,
};
use muen_sim::shared;

/// A channel element of 20 bytes (half the slots start unaligned).
#[derive(zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct Ping([u8; 20]);

impl muen_channel::ElementType for Ping {
    const PROTOCOL: u64 = 0x7069_6e67_0000_0001;
}
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

#[test]
fn mem_receiver_passes_every_receiver_rule() {
    let memory = shared(0x1000);
    let mut rx = MemReceiver::<Ping>::new(memory);
    let report = receiver_compliance("MemReceiver", &mut rx, memory);
    report.assert_ok();
    assert_eq!(
        report.passed,
        ChannelRule::RECEIVER,
        "every rule checked, none skipped"
    );
    let memory = shared(0x4000);
    let mut rx = MemReceiver::<muennet::Element>::new(memory);
    receiver_compliance("MemReceiver (muennet elements)", &mut rx, memory).assert_ok();
}

#[test]
fn mem_sender_passes_every_sender_rule() {
    let memory = shared(0x1000);
    let report =
        sender_compliance::<Ping, _>("MemSender", &mut MemSenderHarness::new(memory), memory);
    report.assert_ok();
    assert_eq!(
        report.passed,
        ChannelRule::SENDER,
        "every rule checked, none skipped"
    );
}
