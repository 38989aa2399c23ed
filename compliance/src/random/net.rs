//! Random frame exchanges against a model of the peer.

use std::collections::{HashSet, VecDeque};

use muen_device::{NetDevice, NetError, FRAME_MAX};
use proptest::prelude::*;

use super::{run, sequence, RandomConfig, RandomFailure, RandomReport};
use crate::net::{quiesce, NetPeer, NetRule};
use crate::pattern;
use crate::report::Violation;

/// One operation of a random network sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetOp {
    /// The peer sends a frame of `len` bytes (the device receives one first if the
    /// peer's queue is full).
    Send {
        /// Frame length (1..=1514).
        len: usize,
    },
    /// The device transmits `len` bytes: 1..=1514 must succeed, 0 and above 1514 must
    /// be refused (the peer collects first if its queue is full).
    Transmit {
        /// Frame length.
        len: usize,
    },
    /// The device receives into a buffer of 1514 + `extra` bytes.
    Receive {
        /// Bytes beyond the minimal buffer.
        extra: usize,
    },
    /// The device receives into a buffer of `len` < 1514 bytes, which must be refused.
    ReceiveSmall {
        /// Buffer length.
        len: usize,
    },
    /// The peer collects what the device transmitted.
    Collect,
    /// `has_data` is checked against the model.
    HasData,
    /// The peer restarts (if it can).
    Restart,
}

fn frame_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(1usize),
        1 => Just(FRAME_MAX),
        1 => Just(FRAME_MAX - 1),
        6 => 1..=FRAME_MAX,
    ]
}

fn op() -> impl Strategy<Value = NetOp> {
    prop_oneof![
        6 => frame_len().prop_map(|len| NetOp::Send { len }),
        6 => frame_len().prop_map(|len| NetOp::Transmit { len }),
        1 => prop_oneof![Just(0usize), (FRAME_MAX + 1)..=9000].prop_map(|len| NetOp::Transmit { len }),
        6 => prop_oneof![3 => Just(0usize), 1 => 1..=3000usize].prop_map(|extra| NetOp::Receive { extra }),
        1 => (0..FRAME_MAX).prop_map(|len| NetOp::ReceiveSmall { len }),
        3 => Just(NetOp::Collect),
        2 => Just(NetOp::HasData),
        1 => Just(NetOp::Restart),
    ]
}

/// What the peer and the device hold, per the contract.
#[derive(Default)]
struct Model {
    /// Frames sent by the peer and not yet received, in order.
    to_device: VecDeque<Vec<u8>>,
    /// Frames that may still arrive or may be lost (unread at a peer restart), in order,
    /// before `to_device`.
    optional_in: VecDeque<Vec<u8>>,
    /// Frames transmitted and not yet collected.
    to_peer: Vec<Vec<u8>>,
    /// Frames that may still be collected or may be lost, before `to_peer`.
    optional_out: Vec<Vec<u8>>,
    /// Every frame the peer sent in this sequence.
    sent: HashSet<Vec<u8>>,
    /// Every frame the device transmitted (successfully) in this sequence.
    transmitted: HashSet<Vec<u8>>,
    /// Every frame the device refused to transmit.
    refused: Vec<Vec<u8>>,
    /// `receive` said `Again` and the peer sent nothing since.
    synced: bool,
}

struct Exec<'a, D: ?Sized, P: ?Sized> {
    dev: &'a mut D,
    peer: &'a mut P,
    model: Model,
    next_id: u64,
    capacity: (usize, usize),
    executed: u64,
}

fn violation(rule: NetRule, op: usize, what: String) -> Violation<NetRule> {
    Violation {
        rule,
        detail: format!("operation {op}: {what}"),
    }
}

impl<D, P> Exec<'_, D, P>
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn receive(&mut self, i: usize, buf_len: usize) -> Result<(), Violation<NetRule>> {
        let mut buf = vec![0u8; buf_len];
        let m = &mut self.model;
        match self.dev.receive(&mut buf) {
            Ok(n) => {
                if n == 0 || n > FRAME_MAX || n > buf_len {
                    return Err(violation(
                        NetRule::ReceiveWhole,
                        i,
                        format!("receive returned length {n}"),
                    ));
                }
                let got = &buf[..n];
                if let Some(p) = m.optional_in.iter().position(|f| f == got) {
                    m.optional_in.drain(..=p);
                    return Ok(());
                }
                m.optional_in.clear();
                match m.to_device.front() {
                    Some(f) if f == got => {
                        m.to_device.pop_front();
                        Ok(())
                    }
                    front => {
                        let expected = front.map_or("Again".to_string(), |f| {
                            format!("a frame of {} bytes", f.len())
                        });
                        let rule = if m.sent.contains(got) {
                            NetRule::Order
                        } else {
                            NetRule::ReceiveWhole
                        };
                        let what = if m.sent.contains(got) {
                            "a frame sent earlier (duplicated) or later (reordered)"
                        } else {
                            "bytes the peer never sent as a frame"
                        };
                        Err(violation(
                            rule,
                            i,
                            format!("receive returned {n} bytes: {what}; expected {expected}"),
                        ))
                    }
                }
            }
            Err(NetError::Again) => {
                if let Some(f) = m.to_device.front() {
                    return Err(violation(
                        NetRule::NoData,
                        i,
                        format!(
                            "receive returned Again while a frame of {} bytes waits",
                            f.len()
                        ),
                    ));
                }
                m.optional_in.clear();
                m.synced = true;
                Ok(())
            }
            Err(e) => Err(violation(
                NetRule::ReceiveWhole,
                i,
                format!("receive into {buf_len} bytes returned {e:?}"),
            )),
        }
    }

    fn collect(&mut self, i: usize) -> Result<(), Violation<NetRule>> {
        let got = self.peer.collect(self.dev);
        let m = &mut self.model;
        let expected = std::mem::take(&mut m.to_peer);
        let optional = std::mem::take(&mut m.optional_out);
        if let Err(e) = crate::net::optional_then(&got, &optional, &expected) {
            let rule = if got.iter().any(Vec::is_empty) {
                NetRule::TransmitEmpty
            } else if got.iter().any(|g| {
                m.refused
                    .iter()
                    .any(|r| r.len() > FRAME_MAX && r.starts_with(g))
            }) {
                NetRule::TransmitOversize
            } else if got.iter().all(|g| m.transmitted.contains(g)) {
                NetRule::Order
            } else {
                NetRule::TransmitWhole
            };
            return Err(violation(rule, i, format!("the peer collected: {e}")));
        }
        Ok(())
    }

    fn step(&mut self, i: usize, op: NetOp) -> Result<(), Violation<NetRule>> {
        self.executed += 1;
        let (cap_in, cap_out) = self.capacity;
        match op {
            NetOp::Send { len } => {
                if self.model.to_device.len() + self.model.optional_in.len() >= cap_in {
                    self.receive(i, FRAME_MAX)?;
                }
                // Short frames have few values: never one equal to a frame still
                // pending, or the model could not tell which of the two arrived.
                let mut f = pattern::frame(len, self.id());
                while self.model.to_device.contains(&f) || self.model.optional_in.contains(&f) {
                    f = pattern::frame(len, self.id());
                }
                self.peer.send(self.dev, &f);
                self.model.sent.insert(f.clone());
                self.model.to_device.push_back(f);
                self.model.synced = false;
            }
            NetOp::Transmit { len } => {
                let f = pattern::frame(len, self.id());
                if (1..=FRAME_MAX).contains(&len) {
                    if self.model.to_peer.len() + self.model.optional_out.len() >= cap_out {
                        self.collect(i)?;
                    }
                    let r = self.dev.transmit(&f);
                    if r != Ok(()) {
                        return Err(violation(
                            NetRule::TransmitWhole,
                            i,
                            format!("transmit of {len} bytes returned {r:?}"),
                        ));
                    }
                    self.model.transmitted.insert(f.clone());
                    self.model.to_peer.push(f);
                } else {
                    let (want, rule) = if len == 0 {
                        (NetError::EmptyFrame, NetRule::TransmitEmpty)
                    } else {
                        (NetError::FrameTooLarge { len }, NetRule::TransmitOversize)
                    };
                    let r = self.dev.transmit(&f);
                    if r != Err(want) {
                        return Err(violation(
                            rule,
                            i,
                            format!("transmit of {len} bytes returned {r:?}"),
                        ));
                    }
                    self.model.refused.push(f);
                }
            }
            NetOp::Receive { extra } => self.receive(i, FRAME_MAX + extra)?,
            NetOp::ReceiveSmall { len } => {
                let mut buf = vec![0xa5u8; len];
                let r = self.dev.receive(&mut buf);
                if r != Err(NetError::BufferTooSmall { len }) || buf.iter().any(|&b| b != 0xa5) {
                    return Err(violation(
                        NetRule::ReceiveBufferTooSmall,
                        i,
                        format!("receive into {len} bytes returned {r:?}"),
                    ));
                }
            }
            NetOp::Collect => self.collect(i)?,
            NetOp::HasData => {
                let has = self.dev.has_data();
                let m = &self.model;
                if !m.to_device.is_empty() && !has {
                    return Err(violation(
                        NetRule::NoData,
                        i,
                        "has_data is false while a frame waits".into(),
                    ));
                }
                if m.synced && m.to_device.is_empty() && has {
                    return Err(violation(
                        NetRule::NoData,
                        i,
                        "has_data is true after Again with nothing sent since".into(),
                    ));
                }
            }
            NetOp::Restart => {
                if self.peer.restart(self.dev) {
                    let m = &mut self.model;
                    let unread: Vec<_> = m.to_device.drain(..).collect();
                    m.optional_in.extend(unread);
                    let uncollected: Vec<_> = m.to_peer.drain(..).collect();
                    m.optional_out.extend(uncollected);
                    m.synced = false;
                }
            }
        }
        Ok(())
    }
}

/// Runs random frame exchanges between `dev` and `peer` (see the module
/// documentation of [`crate::random`]), keeping within the peer's capacity so that
/// the model knows every frame's fate.
pub fn net_random<D, P>(
    name: &str,
    dev: &mut D,
    peer: &mut P,
    config: RandomConfig,
) -> Result<RandomReport, RandomFailure<NetRule>>
where
    D: NetDevice + ?Sized,
    P: NetPeer<D> + ?Sized,
{
    let capacity = peer.capacity();
    let strategy = sequence(op(), config.ops);
    run(
        name,
        config,
        strategy,
        |ops| ops.iter().map(|o| format!("{o:?}")).collect(),
        |ops: &Vec<NetOp>| {
            quiesce(dev, peer);
            let mut e = Exec {
                dev: &mut *dev,
                peer: &mut *peer,
                model: Model {
                    synced: true,
                    ..Model::default()
                },
                // The same frames every time a sequence runs, so that a shrunk one
                // fails like the original.
                next_id: 0x5241_4e00_0000_0000,
                capacity: (capacity.0.max(1), capacity.1.max(1)),
                executed: 0,
            };
            let mut result = Ok(());
            for (i, &op) in ops.iter().enumerate() {
                if let Err(v) = e.step(i, op) {
                    result = Err(v);
                    break;
                }
            }
            // Whatever is left must arrive too.
            if result.is_ok() {
                result = e.collect(ops.len());
            }
            (e.executed, result)
        },
    )
}
