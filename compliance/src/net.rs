//! The network contract, rule by rule: [`net_compliance`].

use muen_device::{NetDevice, NetError, FRAME_MAX, MTU};

use crate::pattern;
use crate::report::{ensure, fail, skip, Check, Report, Rule};

/// The rules of [`NetDevice`] (`docs/device-abi.md`, "Network devices").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetRule {
    /// `info` is stable, the MTU is 1500, the MAC unicast and not zero.
    Info,
    /// A frame of 1..=1514 bytes is sent whole, once.
    TransmitWhole,
    /// An empty frame is `EmptyFrame`; nothing is sent.
    TransmitEmpty,
    /// A frame above 1514 bytes is `FrameTooLarge`; nothing (no truncated frame) is sent.
    TransmitOversize,
    /// `receive` returns one whole frame with its length, into any buffer of at least
    /// 1514 bytes.
    ReceiveWhole,
    /// A buffer below 1514 bytes is `BufferTooSmall`, before anything is consumed or
    /// written.
    ReceiveBufferTooSmall,
    /// "No data yet" is `Again`; `has_data` is true while a frame waits and false after
    /// `Again` until the peer sends.
    NoData,
    /// Frames arrive in the order sent, in both directions, none duplicated or altered.
    Order,
    /// Without back pressure, a side that falls behind loses whole frames only, the
    /// rest arrive in order, `transmit` stays `Ok`, and the device recovers.
    Overrun,
    /// After the peer restarts, unread frames may be lost and new ones flow.
    PeerRestart,
    /// Bad elements and broken channels of the peer are survived; no frame the peer
    /// did not send whole is returned.
    PeerMisbehaviour,
}

impl Rule for NetRule {
    const ALL: &'static [NetRule] = &[
        NetRule::Info,
        NetRule::TransmitWhole,
        NetRule::TransmitEmpty,
        NetRule::TransmitOversize,
        NetRule::ReceiveWhole,
        NetRule::ReceiveBufferTooSmall,
        NetRule::NoData,
        NetRule::Order,
        NetRule::Overrun,
        NetRule::PeerRestart,
        NetRule::PeerMisbehaviour,
    ];

    fn summary(self) -> &'static str {
        match self {
            NetRule::Info => "info is stable, MTU 1500, MAC unicast and not zero",
            NetRule::TransmitWhole => "a frame of 1..=1514 bytes reaches the peer whole, once",
            NetRule::TransmitEmpty => "an empty frame is EmptyFrame and sends nothing",
            NetRule::TransmitOversize => {
                "a frame above 1514 bytes is FrameTooLarge and sends nothing"
            }
            NetRule::ReceiveWhole => "receive returns one whole frame and its length",
            NetRule::ReceiveBufferTooSmall => {
                "a buffer below 1514 bytes is BufferTooSmall; nothing consumed or written"
            }
            NetRule::NoData => "no frame is Again; has_data tells whether a frame waits",
            NetRule::Order => "frames arrive in order, none duplicated or altered",
            NetRule::Overrun => "overload loses whole frames only; the device recovers",
            NetRule::PeerRestart => "after a peer restart new frames flow",
            NetRule::PeerMisbehaviour => "a misbehaving peer is survived; no invented frames",
        }
    }
}

/// How a peer misbehaves on request ([`NetPeer::misbehave`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetFault {
    /// One element whose length field is 0.
    ZeroLength,
    /// One element whose length field is above 1514 (the peer picks 1515 or more).
    OversizeLength,
    /// The channel's write counter moves backwards without a new epoch; the channel
    /// stays broken until [`NetPeer::restart`].
    CounterRewind,
    /// The channel header is republished for another protocol; the channel stays
    /// broken until [`NetPeer::restart`].
    Incompatible,
}

impl NetFault {
    /// Every fault.
    pub const ALL: [NetFault; 4] = [
        NetFault::ZeroLength,
        NetFault::OversizeLength,
        NetFault::CounterRewind,
        NetFault::Incompatible,
    ];
}

/// The other end of a network device, as the suite drives it.
///
/// Methods get the device too, so that an in-memory device can be its own peer's
/// queue and an in-test peer can run synchronously.
pub trait NetPeer<D: ?Sized> {
    /// Sends `frame` (1..=1514 bytes) to the device. When this returns, the device can
    /// receive it.
    fn send(&mut self, dev: &mut D, frame: &[u8]);

    /// Every frame the device transmitted since the last call, in arrival order.
    fn collect(&mut self, dev: &mut D) -> Vec<Vec<u8>>;

    /// How many frames may be outstanding without loss: `(to the device, to the
    /// peer)`. The suite exceeds them only to check [`NetRule::Overrun`].
    fn capacity(&self) -> (usize, usize);

    /// Restarts the peer: it reinitialises its channel (a new epoch) and forgets what
    /// it had not collected. `false` if the peer cannot.
    fn restart(&mut self, _dev: &mut D) -> bool {
        false
    }

    /// Misbehaves once as `fault` says. `false` if the peer cannot.
    fn misbehave(&mut self, _dev: &mut D, _fault: NetFault) -> bool {
        false
    }
}

/// Frame lengths the whole-frame checks use: the edges and a few in between.
const LENGTHS: [usize; 7] = [1, 2, 14, 60, 1000, FRAME_MAX - 1, FRAME_MAX];

/// Frame lengths of the other checks: ordinary Ethernet frames, so that a device that
/// breaks only the edges is reported for the whole-frame rules alone.
const ORDINARY: [usize; 5] = [60, 100, 333, 1000, FRAME_MAX];

/// Checks `dev` against every rule of the network contract, with `peer` at its other
/// end. `subject` names the implementation in the report.
///
/// The device should be fresh or idle: the suite first receives and collects whatever
/// is queued.
pub fn net_compliance<D, P>(subject: &str, dev: &mut D, peer: &mut P) -> Report<NetRule>
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let mut report = Report::new(subject);
    let mut ids = 0x4e45_5400_0000u64;
    let mut next = move || {
        ids += 1;
        ids
    };
    quiesce(dev, peer);
    report.check(NetRule::Info, || info(dev));
    quiesce(dev, peer);
    report.check(NetRule::TransmitWhole, || {
        transmit_whole(dev, peer, &mut next)
    });
    quiesce(dev, peer);
    report.check(NetRule::TransmitEmpty, || {
        transmit_empty(dev, peer, &mut next)
    });
    quiesce(dev, peer);
    report.check(NetRule::TransmitOversize, || {
        transmit_oversize(dev, peer, &mut next)
    });
    quiesce(dev, peer);
    report.check(NetRule::ReceiveWhole, || {
        receive_whole(dev, peer, &mut next)
    });
    quiesce(dev, peer);
    report.check(NetRule::ReceiveBufferTooSmall, || {
        receive_buffer_too_small(dev, peer, &mut next)
    });
    quiesce(dev, peer);
    report.check(NetRule::NoData, || no_data(dev, peer, &mut next));
    quiesce(dev, peer);
    report.check(NetRule::Order, || order(dev, peer, &mut next));
    quiesce(dev, peer);
    report.check(NetRule::Overrun, || overrun(dev, peer, &mut next));
    quiesce(dev, peer);
    report.check(NetRule::PeerRestart, || peer_restart(dev, peer, &mut next));
    quiesce(dev, peer);
    report.check(NetRule::PeerMisbehaviour, || {
        peer_misbehaviour(dev, peer, &mut next)
    });
    quiesce(dev, peer);
    report
}

/// Receives and collects until both directions are empty (bounded: a broken device
/// may never say `Again`).
pub(crate) fn quiesce<D, P>(dev: &mut D, peer: &mut P)
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let mut buf = vec![0u8; FRAME_MAX];
    let (to_device, _) = peer.capacity();
    for _ in 0..to_device * 2 + 64 {
        if dev.receive(&mut buf) == Err(NetError::Again) {
            break;
        }
    }
    peer.collect(dev);
}

fn describe(frames: &[Vec<u8>]) -> String {
    let lens: Vec<usize> = frames.iter().map(Vec::len).collect();
    format!("{} frames of lengths {lens:?}", frames.len())
}

fn info<D: NetDevice + ?Sized>(dev: &mut D) -> Check {
    let a = dev.info();
    let b = dev.info();
    ensure!(a == b, "info changed between two calls: {a:?}, then {b:?}");
    ensure!(a.mtu == MTU, "mtu is {}, expected {MTU}", a.mtu);
    ensure!(
        a.mac[0] & 1 == 0,
        "MAC {:02x?} is a multicast address",
        a.mac
    );
    ensure!(a.mac != [0; 6], "MAC is all zeros");
    Ok(())
}

fn transmit_whole<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    for len in LENGTHS {
        let f = pattern::frame(len, next());
        let r = dev.transmit(&f);
        ensure!(r == Ok(()), "transmit of {len} bytes returned {r:?}");
        let got = peer.collect(dev);
        ensure!(
            got == [f.clone()],
            "after transmit of {len} bytes the peer got {}",
            describe(&got)
        );
    }
    Ok(())
}

fn transmit_empty<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let r = dev.transmit(&[]);
    ensure!(
        r == Err(NetError::EmptyFrame),
        "transmit of an empty frame returned {r:?}"
    );
    let got = peer.collect(dev);
    ensure!(
        got.is_empty(),
        "the refused empty frame sent {}",
        describe(&got)
    );
    // The device still sends what follows.
    let f = pattern::frame(60, next());
    let r = dev.transmit(&f);
    ensure!(r == Ok(()), "transmit after EmptyFrame returned {r:?}");
    let got = peer.collect(dev);
    ensure!(
        got == [f],
        "after EmptyFrame the peer got {}",
        describe(&got)
    );
    Ok(())
}

fn transmit_oversize<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    for len in [FRAME_MAX + 1, FRAME_MAX + 2, 1518, 9000, 65536, 65537] {
        let f = pattern::frame(len, next());
        let r = dev.transmit(&f);
        ensure!(
            r == Err(NetError::FrameTooLarge { len }),
            "transmit of {len} bytes returned {r:?}"
        );
        let got = peer.collect(dev);
        ensure!(
            got.is_empty(),
            "the refused {len}-byte frame sent {}",
            describe(&got)
        );
    }
    Ok(())
}

fn receive_whole<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    for buf_len in [FRAME_MAX, FRAME_MAX + 1, 4096, 65536] {
        for len in LENGTHS {
            let f = pattern::frame(len, next());
            peer.send(dev, &f);
            let mut buf = vec![0u8; buf_len];
            match dev.receive(&mut buf) {
                Ok(n) if n == len && buf[..n] == f[..] => {}
                Ok(n) if n == len => {
                    fail!("a {len}-byte frame came back altered (buffer of {buf_len} bytes)")
                }
                Ok(n) => fail!(
                    "a {len}-byte frame came back as {n} bytes (buffer of {buf_len} bytes)"
                ),
                Err(e) => fail!("receive of a waiting {len}-byte frame returned {e:?} (buffer of {buf_len} bytes)"),
            }
        }
    }
    Ok(())
}

fn receive_buffer_too_small<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    // Checked before anything else: also when no frame is waiting ...
    for len in [0, 1, 60, FRAME_MAX - 1] {
        let mut buf = vec![0xa5u8; len];
        let r = dev.receive(&mut buf);
        ensure!(
            r == Err(NetError::BufferTooSmall { len }),
            "receive into {len} bytes (no frame waiting) returned {r:?}"
        );
    }
    // ... and when one is, which stays queued and untouched.
    for frame_len in [1, 60, FRAME_MAX] {
        let f = pattern::frame(frame_len, next());
        peer.send(dev, &f);
        for len in [0, 1, 60, FRAME_MAX - 1] {
            let mut buf = vec![0xa5u8; len];
            let r = dev.receive(&mut buf);
            ensure!(
                r == Err(NetError::BufferTooSmall { len }),
                "receive of a {frame_len}-byte frame into {len} bytes returned {r:?}"
            );
            ensure!(
                buf.iter().all(|&b| b == 0xa5),
                "receive into {len} bytes wrote the buffer"
            );
        }
        let mut buf = vec![0u8; FRAME_MAX];
        let r = dev.receive(&mut buf);
        ensure!(
            r == Ok(frame_len) && buf[..frame_len] == f[..],
            "after the refused receives the {frame_len}-byte frame was not returned whole: {r:?}"
        );
    }
    Ok(())
}

fn no_data<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let mut buf = vec![0u8; FRAME_MAX];
    for i in 0..3 {
        let r = dev.receive(&mut buf);
        ensure!(
            r == Err(NetError::Again),
            "receive with nothing sent returned {r:?} (call {i})"
        );
        ensure!(
            !dev.has_data(),
            "has_data is true after receive returned Again and nothing was sent"
        );
    }
    // Which frame comes first is the Order rule's business; here only that one does.
    for count in [1, 2] {
        for _ in 0..count {
            peer.send(dev, &pattern::frame(100, next()));
        }
        for i in 0..count {
            ensure!(
                dev.has_data(),
                "has_data is false while {} of {count} frames wait",
                count - i
            );
            let r = dev.receive(&mut buf);
            ensure!(
                r == Ok(100),
                "receive with {} of {count} frames waiting returned {r:?}",
                count - i
            );
        }
        let r = dev.receive(&mut buf);
        ensure!(
            r == Err(NetError::Again),
            "receive after the last frame returned {r:?}"
        );
        ensure!(!dev.has_data(), "has_data is true after Again");
    }
    Ok(())
}

/// Whether `got` is an in-order subsequence of `sent` without repeats; the message
/// says why not.
pub(crate) fn subsequence(got: &[Vec<u8>], sent: &[Vec<u8>]) -> Result<(), String> {
    let mut at = 0;
    for (i, g) in got.iter().enumerate() {
        match sent[at..].iter().position(|s| s == g) {
            Some(p) => at += p + 1,
            None if sent.contains(g) => {
                return Err(format!(
                    "frame {i} received ({} bytes) is out of order or repeated",
                    g.len()
                ))
            }
            None => {
                return Err(format!(
                    "frame {i} received ({} bytes) was never sent",
                    g.len()
                ))
            }
        }
    }
    Ok(())
}

fn receive_all<D: NetDevice + ?Sized>(dev: &mut D, limit: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut buf = vec![0u8; FRAME_MAX];
    let mut got = Vec::new();
    for _ in 0..limit {
        match dev.receive(&mut buf) {
            Ok(n) if n <= FRAME_MAX => got.push(buf[..n].to_vec()),
            Ok(n) => return Err(format!("receive returned a length of {n}")),
            Err(NetError::Again) => return Ok(got),
            Err(e) => return Err(format!("receive returned {e:?}")),
        }
    }
    Err(format!("receive did not return Again after {limit} frames"))
}

fn order<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let (to_device, to_peer) = peer.capacity();
    let sent: Vec<Vec<u8>> = (0..to_device.clamp(1, 64))
        .map(|i| pattern::frame(ORDINARY[i % ORDINARY.len()], next()))
        .collect();
    for f in &sent {
        peer.send(dev, f);
    }
    let got = receive_all(dev, sent.len() + 1)?;
    if got != sent {
        subsequence(&got, &sent)?;
        fail!(
            "the peer sent {}, the device received {}",
            describe(&sent),
            describe(&got)
        );
    }
    let sent: Vec<Vec<u8>> = (0..to_peer.clamp(1, 64))
        .map(|i| pattern::frame(ORDINARY[(i + 3) % ORDINARY.len()], next()))
        .collect();
    for f in &sent {
        let r = dev.transmit(f);
        ensure!(r == Ok(()), "transmit returned {r:?}");
    }
    let got = peer.collect(dev);
    if got != sent {
        subsequence(&got, &sent)?;
        fail!(
            "the device transmitted {}, the peer got {}",
            describe(&sent),
            describe(&got)
        );
    }
    Ok(())
}

fn overrun<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let (to_device, to_peer) = peer.capacity();
    // Towards the device: twice what it holds, unread.
    let sent: Vec<Vec<u8>> = (0..to_device * 2 + 3)
        .map(|i| pattern::frame(ORDINARY[i % ORDINARY.len()], next()))
        .collect();
    for f in &sent {
        peer.send(dev, f);
    }
    let got = receive_all(dev, sent.len() + 1)?;
    subsequence(&got, &sent).map_err(|e| format!("after an overrun towards the device: {e}"))?;
    let after: Vec<Vec<u8>> = (0..3).map(|_| pattern::frame(200, next())).collect();
    for f in &after {
        peer.send(dev, f);
    }
    let got = receive_all(dev, 4)?;
    ensure!(
        got == after,
        "after an overrun towards the device, 3 new frames came as {}",
        describe(&got)
    );
    // Towards the peer: twice what it holds, uncollected; transmit never fails.
    let sent: Vec<Vec<u8>> = (0..to_peer * 2 + 3)
        .map(|i| pattern::frame(ORDINARY[i % ORDINARY.len()], next()))
        .collect();
    for (i, f) in sent.iter().enumerate() {
        let r = dev.transmit(f);
        ensure!(
            r == Ok(()),
            "transmit {i} of {} (the peer not reading) returned {r:?}",
            sent.len()
        );
    }
    let got = peer.collect(dev);
    subsequence(&got, &sent).map_err(|e| format!("after an overrun towards the peer: {e}"))?;
    let after: Vec<Vec<u8>> = (0..3).map(|_| pattern::frame(300, next())).collect();
    for f in &after {
        let r = dev.transmit(f);
        ensure!(r == Ok(()), "transmit after an overrun returned {r:?}");
    }
    let got = peer.collect(dev);
    ensure!(
        got == after,
        "after an overrun towards the peer, 3 new frames came as {}",
        describe(&got)
    );
    Ok(())
}

/// Checks that `got` is an in-order subsequence of `optional` followed by exactly
/// `required`.
pub(crate) fn optional_then(
    got: &[Vec<u8>],
    optional: &[Vec<u8>],
    required: &[Vec<u8>],
) -> Result<(), String> {
    let split = got.len().saturating_sub(required.len());
    if got[split..] != *required {
        return Err(format!(
            "expected {} at the end, got {}",
            describe(required),
            describe(got)
        ));
    }
    subsequence(&got[..split], optional)
}

fn peer_restart<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let mut buf = vec![0u8; FRAME_MAX];
    let old: Vec<Vec<u8>> = (0..3).map(|_| pattern::frame(70, next())).collect();
    for f in &old {
        peer.send(dev, f);
    }
    let r = dev.receive(&mut buf);
    ensure!(
        r == Ok(70) && buf[..70] == old[0][..],
        "receive before the restart returned {r:?}"
    );
    let unsent: Vec<Vec<u8>> = (0..2).map(|_| pattern::frame(80, next())).collect();
    for f in &unsent {
        let r = dev.transmit(f);
        ensure!(r == Ok(()), "transmit before the restart returned {r:?}");
    }
    if !peer.restart(dev) {
        skip!("the peer cannot restart");
    }
    let new: Vec<Vec<u8>> = (0..3).map(|_| pattern::frame(90, next())).collect();
    for f in &new {
        peer.send(dev, f);
    }
    let got = receive_all(dev, old.len() + new.len() + 1)?;
    optional_then(&got, &old[1..], &new)
        .map_err(|e| format!("frames received across the peer's restart: {e}"))?;
    let out: Vec<Vec<u8>> = (0..3).map(|_| pattern::frame(95, next())).collect();
    for f in &out {
        let r = dev.transmit(f);
        ensure!(r == Ok(()), "transmit after the restart returned {r:?}");
    }
    let got = peer.collect(dev);
    optional_then(&got, &unsent, &out)
        .map_err(|e| format!("frames transmitted across the peer's restart: {e}"))?;
    Ok(())
}

fn peer_misbehaviour<D, P>(dev: &mut D, peer: &mut P, next: &mut dyn FnMut() -> u64) -> Check
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let mut buf = vec![0u8; FRAME_MAX];
    let mut supported = 0;
    for fault in NetFault::ALL {
        let before = pattern::frame(120, next());
        peer.send(dev, &before);
        if !peer.misbehave(dev, fault) {
            receive_all(dev, 4)?;
            continue;
        }
        supported += 1;
        match fault {
            NetFault::ZeroLength | NetFault::OversizeLength => {
                // The bad element is dropped; the good frames around it arrive.
                let after = pattern::frame(130, next());
                peer.send(dev, &after);
                let got = receive_all(dev, 8)?;
                ensure!(
                    got == [before, after],
                    "around a {fault:?} element the device received {}",
                    describe(&got)
                );
            }
            NetFault::CounterRewind | NetFault::Incompatible => {
                // The channel is broken: nothing but `before` may come out (and the
                // device must say Again in bounded time).
                let got = receive_all(dev, 64)?;
                subsequence(&got, std::slice::from_ref(&before))
                    .map_err(|e| format!("on a channel broken by {fault:?}: {e}"))?;
                if !peer.restart(dev) {
                    fail!("the peer offered {fault:?} but cannot restart");
                }
                let after = pattern::frame(140, next());
                peer.send(dev, &after);
                let r = dev.receive(&mut buf);
                ensure!(
                    r == Ok(140) && buf[..140] == after[..],
                    "after {fault:?} and the peer's restart, receive of a waiting frame returned {r:?}"
                );
                let r = dev.receive(&mut buf);
                ensure!(r == Err(NetError::Again), "then receive returned {r:?}");
            }
        }
        // Transmitting is not disturbed.
        let f = pattern::frame(150, next());
        let r = dev.transmit(&f);
        ensure!(r == Ok(()), "transmit after {fault:?} returned {r:?}");
        let got = peer.collect(dev);
        ensure!(
            got == [f],
            "after {fault:?} a transmitted frame reached the peer as {}",
            describe(&got)
        );
    }
    if supported == 0 {
        skip!("the peer cannot misbehave");
    }
    Ok(())
}
