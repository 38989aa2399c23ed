use super::*;
use muen_sim::peers::{muennet_device, MuennetPeer};
use muen_sim::{memory, page, shared, SimSys};
use muen_sinfo::MemoryKind;

/// A muennet device `net0` of subject `echo` on channels of 16 KiB in ordinary memory,
/// and its peer.
fn setup(sys: &SimSys, with_event: bool) -> (MuenNet<'_, SimSys>, MuennetPeer) {
    let (info, peer) = muennet_device("echo", "net0", 0x4000, with_event);
    // SAFETY: the page points at leaked buffers, alive forever.
    let net = unsafe { MuenNet::acquire(sys, &info, "net0") }.unwrap();
    (net, peer)
}

fn frame(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
}

#[test]
fn frames_travel_both_ways_and_the_event_follows_each_write() {
    let sys = SimSys::new();
    let (mut net, mut peer) = setup(&sys, true);
    let mut buf = [0u8; FRAME_MAX];
    // A new epoch counts as data until a read synchronised to it.
    assert!(net.has_data());
    assert_eq!(net.receive(&mut buf), Err(NetError::Again));
    assert!(!net.has_data());
    for (i, len) in [60usize, 1, 1514, 777].into_iter().enumerate() {
        peer.send(&frame(len, i as u8));
    }
    assert!(net.has_data());
    for (i, len) in [60usize, 1, 1514, 777].into_iter().enumerate() {
        let n = net.receive(&mut buf).unwrap();
        assert_eq!(&buf[..n], &frame(len, i as u8)[..]);
    }
    assert_eq!(net.receive(&mut buf), Err(NetError::Again));
    assert!(!net.has_data());

    for len in [14usize, 1514, 100] {
        net.transmit(&frame(len, 9)).unwrap();
    }
    assert_eq!(sys.events(), [2, 2, 2]);
    for len in [14usize, 1514, 100] {
        assert_eq!(peer.receive().unwrap(), frame(len, 9));
    }
    assert_eq!(peer.receive(), None);
    assert_eq!(peer.bad_elements, 0);
    let s = net.stats();
    assert_eq!((s.rx_frames, s.rx_bytes), (4, 60 + 1 + 1514 + 777));
    assert_eq!((s.tx_frames, s.tx_bytes), (3, 14 + 1514 + 100));
    assert_eq!(net.info().mtu, 1500);
}

#[test]
fn no_event_without_one_in_the_policy() {
    let sys = SimSys::new();
    let (mut net, mut peer) = setup(&sys, false);
    net.transmit(&[1, 2, 3]).unwrap();
    assert!(sys.events().is_empty());
    assert_eq!(peer.receive().unwrap(), [1, 2, 3]);
}

#[test]
fn whole_frames_only() {
    let sys = SimSys::new();
    let (mut net, mut peer) = setup(&sys, true);
    assert_eq!(net.transmit(&[]), Err(NetError::EmptyFrame));
    assert_eq!(
        net.transmit(&[0; 1515]),
        Err(NetError::FrameTooLarge { len: 1515 })
    );
    assert!(sys.events().is_empty(), "nothing sent, no event");
    assert!(!NetError::EmptyFrame.is_retryable());
    assert!(!NetError::FrameTooLarge { len: 1515 }.is_retryable());
    assert!(NetError::Again.is_retryable());
    peer.send(&[5; 64]);
    let mut small = [0u8; 1513];
    assert_eq!(
        net.receive(&mut small),
        Err(NetError::BufferTooSmall { len: 1513 })
    );
    // Nothing was consumed by the refused call.
    let mut buf = [0u8; 2000];
    assert_eq!(net.receive(&mut buf), Ok(64));
    assert_eq!(net.stats().tx_frames, 0);
}

#[test]
fn bad_length_fields_are_dropped_and_counted_never_copied() {
    let sys = SimSys::new();
    let (mut net, mut peer) = setup(&sys, true);
    // Elements with length fields 1515, 0xffff and 0, then a good one.
    for length in [1515u16, u16::MAX, 0] {
        peer.send_length_field(length);
    }
    peer.send(&[7; 42]);
    let mut buf = [0u8; FRAME_MAX];
    assert_eq!(net.receive(&mut buf), Ok(42));
    assert!(
        buf[42..].iter().all(|&b| b == 0),
        "nothing beyond the frame was copied"
    );
    assert_eq!(net.stats().rx_dropped, 3);
    assert_eq!(net.stats().rx_frames, 1);
}

#[test]
fn overruns_are_counted_and_reading_recovers() {
    let sys = SimSys::new();
    let (mut net, mut peer) = setup(&sys, true);
    let elements = peer.capacity().0 as u64;
    let mut buf = [0u8; FRAME_MAX];
    // Synchronise first, then let the peer run a ring and a half ahead.
    peer.send(&[0; 10]);
    assert_eq!(net.receive(&mut buf), Ok(10));
    let total = elements + elements / 2;
    for i in 0..total {
        let n = (i % 200 + 1) as usize;
        peer.send(&frame(n, i as u8));
    }
    let mut got = 0;
    while let Ok(n) = net.receive(&mut buf) {
        assert!(n > 0);
        got += 1;
    }
    let s = net.stats();
    assert_eq!(s.rx_overruns, 1);
    assert_eq!(
        got + s.rx_lost,
        total,
        "every frame is either read or counted lost"
    );
    // muen-channel's reader skips to the writer's counter on an overrun.
    assert_eq!(s.rx_lost, total);
    // After the overrun the device works normally.
    peer.send(&[3; 33]);
    assert_eq!(net.receive(&mut buf), Ok(33));
    assert_eq!(net.receive(&mut buf), Err(NetError::Again));
}

#[test]
fn a_peer_breaking_the_protocol_is_counted_and_survived() {
    let sys = SimSys::new();
    let (mut net, mut peer) = setup(&sys, true);
    let mut buf = [0u8; FRAME_MAX];
    peer.send(&[1; 20]);
    assert_eq!(net.receive(&mut buf), Ok(20));
    // The peer rewinds its write counter without a new epoch.
    peer.rewind_write_counter();
    assert_eq!(net.receive(&mut buf), Err(NetError::Again));
    assert_eq!(net.stats().rx_errors, 1);
    // A new epoch with the right geometry works again.
    peer.restart();
    peer.send(&[2; 21]);
    assert_eq!(net.receive(&mut buf), Ok(21));
}

#[test]
fn acquisition_errors_name_the_region() {
    let sys = SimSys::new();
    let input = shared(0x4000);
    let output = shared(0x4000);
    let try_acquire = |f: &dyn Fn(&mut muen_sinfo::Builder), device: &str| {
        let info = page("echo", |b| f(b));
        // SAFETY: the page points at leaked buffers.
        unsafe { MuenNet::acquire(&sys, &info, device) }
            .err()
            .unwrap()
    };
    let e = try_acquire(&|_| {}, "net0");
    assert_eq!(
        e.to_string(),
        "region `net0|in`: not in the subject info page"
    );
    let e = try_acquire(
        &|b| {
            b.memory("net0|in", memory(input, MemoryKind::SubjectChannel, false))
                .unwrap()
                .memory(
                    "net0|out",
                    memory(output, MemoryKind::SubjectChannel, false),
                )
                .unwrap();
        },
        "net0",
    );
    assert_eq!(
        e,
        AcquireError::NotWritable {
            region: "net0|out".try_into().unwrap()
        }
    );
    assert!(e.to_string().contains("`net0|out`"));
    let e = try_acquire(
        &|b| {
            b.memory("net0|in", memory(input, MemoryKind::Subject, false))
                .unwrap();
        },
        "net0",
    );
    assert_eq!(
        e.to_string(),
        "region `net0|in`: memory kind subject, expected subject_channel"
    );
    let e = try_acquire(&|_| {}, "net|0");
    assert!(matches!(e, AcquireError::BadName { .. }), "{e}");
    let e = try_acquire(
        &|b| {
            b.memory("net0|in", memory(input, MemoryKind::SubjectChannel, false))
                .unwrap()
                .memory(
                    "net0|out",
                    memory(&output[..4], MemoryKind::SubjectChannel, true),
                )
                .unwrap();
        },
        "net0",
    );
    assert!(matches!(e, AcquireError::BadRegion { .. }), "{e}");
}

#[test]
fn the_writer_starts_a_fresh_non_zero_epoch() {
    let sys = SimSys::new();
    sys.set_tsc(muen_abi::time::Tsc::from_ticks(0));
    let (net, _) = setup(&sys, true);
    assert_eq!(net.tx_epoch(), 1, "TSC 0 becomes epoch 1");
    let sys = SimSys::new();
    sys.set_tsc(muen_abi::time::Tsc::from_ticks(123_456));
    let (net, _) = setup(&sys, true);
    assert_eq!(net.tx_epoch(), 123_456);
}

#[test]
fn mac_addresses_are_stable_local_unicast_and_distinct() {
    let a = derive_mac(b"echo", b"net0");
    assert_eq!(a, derive_mac(b"echo", b"net0"));
    // A fixed value: the derivation must not change between releases, or a subject's
    // MAC would change on update.
    assert_eq!(a, [0x8e, 0xb5, 0xc3, 0xd7, 0x05, 0xee]);
    for (s, d) in [
        ("echo", "net1"),
        ("echo2", "net0"),
        ("ech", "onet0"),
        ("", "echonet0"),
    ] {
        let m = derive_mac(s.as_bytes(), d.as_bytes());
        assert_ne!(m, a, "{s} {d}");
        assert_eq!(m[0] & 0x03, 0x02, "unicast, locally administered: {m:02x?}");
    }
    assert_eq!(a[0] & 0x03, 0x02);
    let sys = SimSys::new();
    let (net, _) = setup(&sys, true);
    assert_eq!(net.info().mac, a);
}
