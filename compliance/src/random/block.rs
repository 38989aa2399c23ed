//! Random reads, writes, syncs and discards against a model of the device.

use muen_device::{BlockDevice, BlockError};
use proptest::prelude::*;

use super::{run, sequence, RandomConfig, RandomFailure, RandomReport};
use crate::block::{BlockFault, BlockPeer, BlockRule};
use crate::pattern;
use crate::report::Violation;

/// Blocks a sequence works on (fewer if the device is smaller).
const WINDOW: u64 = 64;
/// Most blocks per operation.
const MAX_COUNT: u64 = 40;

/// Which argument error an [`BlockOp::Invalid`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Length 0.
    ZeroLength,
    /// A length that is not a multiple of the block size.
    Length,
    /// An offset that is not a multiple of the block size.
    Offset,
    /// A range that ends past the capacity.
    Range,
}

/// One operation of a random block sequence. Block numbers count from the start of
/// the sequence's window and wrap; counts are cut to fit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOp {
    /// Read `count` blocks at `block`.
    Read {
        /// First block in the window.
        block: u16,
        /// Blocks (1 + this, cut to fit).
        count: u8,
    },
    /// Write `count` blocks at `block` with data from `seed`.
    Write {
        /// First block in the window.
        block: u16,
        /// Blocks (1 + this, cut to fit).
        count: u8,
        /// Data seed.
        seed: u32,
    },
    /// Discard `count` blocks at `block`.
    Discard {
        /// First block in the window.
        block: u16,
        /// Blocks (1 + this, cut to fit).
        count: u8,
    },
    /// Sync.
    Sync,
    /// A read, write or discard (by `count % 3`) with an argument error.
    Invalid {
        /// Which error.
        kind: Invalid,
        /// First block in the window.
        block: u16,
        /// Blocks (1 + this, cut to fit); also picks the call.
        count: u8,
    },
    /// The server restarts (if the peer can).
    Restart,
    /// Power loss (if the peer can).
    PowerLoss,
}

fn op() -> impl Strategy<Value = BlockOp> {
    let count = prop_oneof![4 => 0u8..4, 1 => 0u8..(MAX_COUNT as u8)];
    prop_oneof![
        8 => (any::<u16>(), count.clone()).prop_map(|(block, count)| BlockOp::Read { block, count }),
        8 => (any::<u16>(), count.clone(), any::<u32>()).prop_map(|(block, count, seed)| BlockOp::Write { block, count, seed }),
        2 => (any::<u16>(), count.clone()).prop_map(|(block, count)| BlockOp::Discard { block, count }),
        2 => Just(BlockOp::Sync),
        1 => (prop_oneof![Just(Invalid::ZeroLength), Just(Invalid::Length), Just(Invalid::Offset), Just(Invalid::Range)], any::<u16>(), count)
            .prop_map(|(kind, block, count)| BlockOp::Invalid { kind, block, count }),
        1 => Just(BlockOp::Restart),
        1 => Just(BlockOp::PowerLoss),
    ]
}

/// Where a block's possible contents come from, to name the rule a mismatch breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Initial,
    Write,
    Discard,
    PowerLoss,
    Restart,
}

/// What one block may hold, per the contract.
#[derive(Clone, Debug)]
struct Slot {
    /// What a read may return now.
    current: Vec<Vec<u8>>,
    /// What it held at the last completed sync.
    durable: Vec<Vec<u8>>,
    /// What it was given since (writes and discards).
    since: Vec<Vec<u8>>,
    origin: Origin,
}

fn push_unique(set: &mut Vec<Vec<u8>>, value: Vec<u8>) {
    if !set.contains(&value) {
        set.push(value);
    }
}

struct Exec<'a, D: ?Sized, P: ?Sized> {
    dev: &'a mut D,
    peer: &'a mut P,
    bs: u64,
    capacity: u64,
    base: u64,
    width: u64,
    slots: Vec<Slot>,
    /// A fault happened (or the sequence just started after one) and no operation
    /// succeeded since: one retryable failure is allowed.
    fault_pending: bool,
    /// The rule a failure of the retry breaks: that of the fault, if one happened in
    /// this sequence.
    fault_rule: Option<BlockRule>,
    executed: u64,
}

fn violation(rule: BlockRule, op: usize, what: String) -> Violation<BlockRule> {
    Violation {
        rule,
        detail: format!("operation {op}: {what}"),
    }
}

impl<D, P> Exec<'_, D, P>
where
    D: BlockDevice + ?Sized,
    P: BlockPeer<D> + ?Sized,
{
    /// Block `block` (window relative, wrapping) and a count cut to fit.
    fn range(&self, block: u16, count: u8) -> (u64, u64) {
        let b = u64::from(block) % self.width;
        let c = 1 + u64::from(count) % (self.width - b).min(MAX_COUNT);
        (b, c)
    }

    /// Runs `op`; a retryable failure right after a fault is retried once.
    fn attempt(
        &mut self,
        i: usize,
        rule: BlockRule,
        what: &str,
        mut op: impl FnMut(&mut D) -> Result<(), BlockError>,
    ) -> Result<(), Violation<BlockRule>> {
        match op(self.dev) {
            Ok(()) => {}
            Err(e) if e.is_retryable() && self.fault_pending => {
                if let Err(e2) = op(self.dev) {
                    return Err(violation(
                        self.fault_rule.unwrap_or(rule),
                        i,
                        format!("{what} failed after a fault with {e:?} and, retried, with {e2:?}"),
                    ));
                }
            }
            Err(e) => return Err(violation(rule, i, format!("{what} returned {e:?}"))),
        }
        self.fault_pending = false;
        self.fault_rule = None;
        Ok(())
    }

    fn read(&mut self, i: usize, b: u64, c: u64) -> Result<(), Violation<BlockRule>> {
        let mut buf = vec![0u8; (c * self.bs) as usize];
        let offset = (self.base + b) * self.bs;
        let what = format!("read of {c} blocks at block {}", self.base + b);
        self.attempt(i, BlockRule::ReadAfterWrite, &what, |d| {
            d.read(offset, &mut buf)
        })?;
        for (k, got) in buf.chunks(self.bs as usize).enumerate() {
            let slot = &mut self.slots[(b + k as u64) as usize];
            if !slot.current.iter().any(|v| v == got) {
                let rule = match slot.origin {
                    Origin::Initial | Origin::Write => BlockRule::ReadAfterWrite,
                    Origin::Discard => BlockRule::Discard,
                    Origin::PowerLoss => BlockRule::Durability,
                    Origin::Restart => BlockRule::PeerRestart,
                };
                let how = if got.iter().all(|&x| x == 0) {
                    "zeros"
                } else {
                    "other data"
                };
                return Err(violation(
                    rule,
                    i,
                    format!(
                        "{what}: block {} read as {how}, not one of its {} possible contents (last {:?})",
                        self.base + b + k as u64,
                        slot.current.len(),
                        slot.origin
                    ),
                ));
            }
            slot.current = vec![got.to_vec()];
        }
        Ok(())
    }

    fn step(&mut self, i: usize, op: BlockOp) -> Result<(), Violation<BlockRule>> {
        self.executed += 1;
        let bs = self.bs;
        match op {
            BlockOp::Read { block, count } => {
                let (b, c) = self.range(block, count);
                self.read(i, b, c)?;
            }
            BlockOp::Write { block, count, seed } => {
                let (b, c) = self.range(block, count);
                let first = self.base + b;
                let data = pattern::blocks(bs, u64::from(seed) << 8 | 0x57, first, c);
                let what = format!("write of {c} blocks at block {first}");
                self.attempt(i, BlockRule::ReadAfterWrite, &what, |d| {
                    d.write(first * bs, &data)
                })?;
                for (k, chunk) in data.chunks(bs as usize).enumerate() {
                    let slot = &mut self.slots[b as usize + k];
                    slot.current = vec![chunk.to_vec()];
                    push_unique(&mut slot.since, chunk.to_vec());
                    slot.origin = Origin::Write;
                }
            }
            BlockOp::Discard { block, count } => {
                let (b, c) = self.range(block, count);
                let first = self.base + b;
                let what = format!("discard of {c} blocks at block {first}");
                self.attempt(i, BlockRule::Discard, &what, |d| {
                    d.discard(first * bs, c * bs)
                })?;
                let zeros = vec![0u8; bs as usize];
                for k in 0..c {
                    let slot = &mut self.slots[(b + k) as usize];
                    push_unique(&mut slot.current, zeros.clone());
                    push_unique(&mut slot.since, zeros.clone());
                    slot.origin = Origin::Discard;
                }
            }
            BlockOp::Sync => {
                self.attempt(i, BlockRule::Sync, "sync", |d| d.sync())?;
                for slot in &mut self.slots {
                    slot.durable = slot.current.clone();
                    slot.since.clear();
                }
            }
            BlockOp::Invalid { kind, block, count } => {
                let (b, c) = self.range(block, count);
                let offset = (self.base + b) * bs;
                let (offset, len, want, rule) = match kind {
                    Invalid::ZeroLength => (
                        offset,
                        0,
                        BlockError::BadLength { len: 0 },
                        BlockRule::ZeroLength,
                    ),
                    Invalid::Length => {
                        let len = c * bs + 1 + u64::from(block) % (bs - 1);
                        (
                            offset,
                            len,
                            BlockError::BadLength { len },
                            BlockRule::LengthAlignment,
                        )
                    }
                    Invalid::Offset => {
                        let offset = offset + 1 + u64::from(block) % (bs - 1);
                        (
                            offset,
                            c * bs,
                            BlockError::BadOffset { offset },
                            BlockRule::OffsetAlignment,
                        )
                    }
                    Invalid::Range => {
                        let offset = self.capacity - (c - 1).min(self.capacity / bs - 1) * bs;
                        let len = c * bs + bs;
                        let capacity = self.capacity;
                        (
                            offset,
                            len,
                            BlockError::OutOfRange {
                                offset,
                                len,
                                capacity,
                            },
                            BlockRule::Range,
                        )
                    }
                };
                let (call, r) = match count % 3 {
                    0 => {
                        let mut buf = vec![0xa5u8; len as usize];
                        let r = self.dev.read(offset, &mut buf);
                        if buf.iter().any(|&x| x != 0xa5) {
                            return Err(violation(
                                rule,
                                i,
                                format!(
                                    "a refused read of {len} bytes at {offset:#x} wrote its buffer"
                                ),
                            ));
                        }
                        ("read", r)
                    }
                    1 => ("write", self.dev.write(offset, &vec![0x3cu8; len as usize])),
                    _ => ("discard", self.dev.discard(offset, len)),
                };
                if r != Err(want) {
                    return Err(violation(rule, i, format!("{call} of {len} bytes at {offset:#x} returned {r:?}, expected {want:?}")));
                }
            }
            BlockOp::Restart | BlockOp::PowerLoss => {
                let (fault, origin, rule) = if op == BlockOp::Restart {
                    (BlockFault::Restart, Origin::Restart, BlockRule::PeerRestart)
                } else {
                    (
                        BlockFault::PowerLoss,
                        Origin::PowerLoss,
                        BlockRule::Durability,
                    )
                };
                if self.peer.fault(self.dev, fault) {
                    self.fault_pending = true;
                    self.fault_rule = Some(rule);
                    for slot in &mut self.slots {
                        let mut possible = slot.durable.clone();
                        for v in slot.since.drain(..).chain(slot.current.drain(..)) {
                            push_unique(&mut possible, v);
                        }
                        slot.durable = possible.clone();
                        slot.current = possible;
                        slot.origin = origin;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs random reads, writes, syncs and discards (and restarts and power losses where
/// `peer` offers them) on `dev`, each checked against a model of the device (see the
/// module documentation of [`crate::random`]). A sequence works on 64 blocks at the
/// start, in the middle or at the end of the device, which it overwrites.
pub fn block_random<D, P>(
    name: &str,
    dev: &mut D,
    peer: &mut P,
    config: RandomConfig,
) -> Result<RandomReport, RandomFailure<BlockRule>>
where
    D: BlockDevice + ?Sized,
    P: BlockPeer<D> + ?Sized,
{
    let info = dev.info();
    let bs = info.block_size;
    let blocks = info.capacity / bs;
    assert!(
        bs.is_power_of_two() && bs >= 512 && blocks >= 2,
        "random {name}: needs a valid block size and at least two blocks ({info:?})"
    );
    let width = blocks.min(WINDOW);
    let strategy = (0u8..3, sequence(op(), config.ops));
    run(
        name,
        config,
        strategy,
        |(pos, ops)| {
            std::iter::once(format!("window {pos} (0: start, 1: middle, 2: end)"))
                .chain(ops.iter().map(|o| format!("{o:?}")))
                .collect()
        },
        |(pos, ops): &(u8, Vec<BlockOp>)| {
            let base = match pos {
                0 => 0,
                1 => (blocks - width) / 2,
                _ => blocks - width,
            };
            let mut e = Exec {
                dev: &mut *dev,
                peer: &mut *peer,
                bs,
                capacity: info.capacity,
                base,
                width,
                slots: Vec::new(),
                // The previous sequence may have ended with a fault.
                fault_pending: true,
                fault_rule: None,
                executed: 0,
            };
            // Known state: everything durable, the window's contents read.
            if let Err(v) = e.attempt(0, BlockRule::Sync, "sync at the start", |d| d.sync()) {
                return (0, Err(v));
            }
            let mut buf = vec![0u8; (width * bs) as usize];
            e.fault_pending = true;
            if let Err(v) = e.attempt(
                0,
                BlockRule::ReadAfterWrite,
                "read of the window at the start",
                |d| d.read(base * bs, &mut buf),
            ) {
                return (0, Err(v));
            }
            e.slots = buf
                .chunks(bs as usize)
                .map(|b| Slot {
                    current: vec![b.to_vec()],
                    durable: vec![b.to_vec()],
                    since: Vec::new(),
                    origin: Origin::Initial,
                })
                .collect();
            for (i, &op) in ops.iter().enumerate() {
                if let Err(v) = e.step(i, op) {
                    return (e.executed, Err(v));
                }
            }
            // Read the whole window at the end.
            let result = e.read(ops.len(), 0, width.min(MAX_COUNT)).and_then(|()| {
                if width > MAX_COUNT {
                    e.read(ops.len(), MAX_COUNT, width - MAX_COUNT)
                } else {
                    Ok(())
                }
            });
            (e.executed, result)
        },
    )
}
