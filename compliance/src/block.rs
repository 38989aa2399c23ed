//! The block contract, rule by rule: [`block_compliance`].

use muen_device::{BlockDevice, BlockError, BlockInfo};

use crate::pattern;
use crate::report::{ensure, fail, skip, Check, Outcome, Report, Rule};

/// The rules of [`BlockDevice`] (`docs/device-abi.md`, "Block devices").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockRule {
    /// `info` is stable; the block size a power of two of at least 512; the capacity a
    /// multiple of it.
    Info,
    /// A zero-length read, write or discard is `BadLength { len: 0 }`.
    ZeroLength,
    /// A length that is not a multiple of the block size is `BadLength`.
    LengthAlignment,
    /// An offset that is not a multiple of the block size is `BadOffset`.
    OffsetAlignment,
    /// A range past the end (also by overflow) is `OutOfRange`; the last block works.
    Range,
    /// Argument errors are checked in the order length, offset, range, and change
    /// nothing (a read buffer is not written).
    ErrorOrder,
    /// A completed write is returned by every later read.
    ReadAfterWrite,
    /// A write or discard changes only the blocks of its range.
    WriteIsolation,
    /// A discarded block reads as zeros or its old contents, stably, until written.
    Discard,
    /// `sync` succeeds on a working device.
    Sync,
    /// Data written before a completed `sync` survives a power loss; other blocks hold
    /// a value they had since, never a torn one.
    Durability,
    /// After the server restarts, a retried operation succeeds and durable data is
    /// intact.
    PeerRestart,
    /// A silent server gives a retryable error, an error status gives `Device`, stray
    /// responses are ignored; the device stays usable.
    PeerFailure,
}

impl Rule for BlockRule {
    const ALL: &'static [BlockRule] = &[
        BlockRule::Info,
        BlockRule::ReadAfterWrite,
        BlockRule::WriteIsolation,
        BlockRule::ZeroLength,
        BlockRule::LengthAlignment,
        BlockRule::OffsetAlignment,
        BlockRule::Range,
        BlockRule::ErrorOrder,
        BlockRule::Discard,
        BlockRule::Sync,
        BlockRule::Durability,
        BlockRule::PeerRestart,
        BlockRule::PeerFailure,
    ];

    fn summary(self) -> &'static str {
        match self {
            BlockRule::Info => "info is stable; block size a power of two >= 512",
            BlockRule::ZeroLength => "a zero-length request is BadLength { len: 0 }",
            BlockRule::LengthAlignment => "an unaligned length is BadLength",
            BlockRule::OffsetAlignment => "an unaligned offset is BadOffset",
            BlockRule::Range => "a range past the end is OutOfRange; the last block works",
            BlockRule::ErrorOrder => {
                "argument errors in the order length, offset, range; nothing changes"
            }
            BlockRule::ReadAfterWrite => "a completed write is returned by later reads",
            BlockRule::WriteIsolation => "a write changes only its own blocks",
            BlockRule::Discard => "a discarded block reads as zeros or its old contents",
            BlockRule::Sync => "sync succeeds on a working device",
            BlockRule::Durability => "synced data survives a power loss; no torn blocks",
            BlockRule::PeerRestart => "after a server restart a retried operation succeeds",
            BlockRule::PeerFailure => "server failures give retryable errors, not hangs or lies",
        }
    }
}

/// What the suite asks a block device's peer to do ([`BlockPeer::fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockFault {
    /// The server reads requests but answers none, until [`BlockPeer::heal`].
    Silent,
    /// The server answers every read, write and discard with an I/O error status and
    /// does nothing, until [`BlockPeer::heal`].
    ErrorStatus,
    /// The server adds responses that answer no request in flight (unknown tags, or a
    /// known tag with another device), until [`BlockPeer::heal`].
    StrayResponses,
    /// The server restarts now: it forgets the requests it holds and publishes a new
    /// response epoch. It keeps its data (what it had not made durable may be lost).
    Restart,
    /// Power loss now: the server loses everything that was not made durable, then
    /// restarts.
    PowerLoss,
}

/// The other end of a block device, as the suite drives it. Every hook is optional.
pub trait BlockPeer<D: ?Sized> {
    /// Starts `fault`. `false` if the peer cannot.
    fn fault(&mut self, _dev: &mut D, _fault: BlockFault) -> bool {
        false
    }

    /// Ends the lasting faults ([`BlockFault::Silent`], [`BlockFault::ErrorStatus`],
    /// [`BlockFault::StrayResponses`]).
    fn heal(&mut self, _dev: &mut D) {}
}

/// A peer without hooks: the rules that need one are skipped.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl<D: ?Sized> BlockPeer<D> for NoHooks {}

/// Fewest blocks the suite needs.
pub const MIN_BLOCKS: u64 = 32;

/// Largest transfer the suite makes: 1 MiB and three blocks (larger than one request
/// of every server we have, so transfers are split).
const LARGE: u64 = (1 << 20) + 3 * 4096;

/// Checks `dev` against every rule of the block contract; `peer` offers the hooks
/// that the restart and failure rules need (or [`NoHooks`]).
///
/// The suite *writes*: it uses the first 32 blocks and the last 4, and up to 1 MiB
/// from block 32. Run it on a scratch device of at least [`MIN_BLOCKS`] blocks.
pub fn block_compliance<D, P>(subject: &str, dev: &mut D, peer: &mut P) -> Report<BlockRule>
where
    D: BlockDevice + ?Sized,
    P: BlockPeer<D> + ?Sized,
{
    let mut report = Report::new(subject);
    let info = dev.info();
    report.check(BlockRule::Info, || check_info(dev));
    let blocks = info.capacity.checked_div(info.block_size).unwrap_or(0);
    if !info.block_size.is_power_of_two() || info.block_size < 512 || blocks < MIN_BLOCKS {
        for &rule in &BlockRule::ALL[1..] {
            report.skipped.push((
                rule,
                format!("{info:?}: needs a valid block size and at least {MIN_BLOCKS} blocks"),
            ));
        }
        return report;
    }
    // Reading back what was written comes first: every later check relies on it.
    let mut t = Tester { info, tag: 0 };
    report.check(BlockRule::ReadAfterWrite, || t.read_after_write(dev));
    report.check(BlockRule::WriteIsolation, || t.write_isolation(dev));
    report.check(BlockRule::ZeroLength, || t.zero_length(dev));
    report.check(BlockRule::LengthAlignment, || t.length_alignment(dev));
    report.check(BlockRule::OffsetAlignment, || t.offset_alignment(dev));
    report.check(BlockRule::Range, || t.range(dev));
    report.check(BlockRule::ErrorOrder, || t.error_order(dev));
    report.check(BlockRule::Discard, || t.discard(dev));
    report.check(BlockRule::Sync, || t.sync(dev));
    report.check(BlockRule::Durability, || t.durability(dev, peer));
    report.check(BlockRule::PeerRestart, || t.peer_restart(dev, peer));
    report.check(BlockRule::PeerFailure, || t.peer_failure(dev, peer));
    report
}

fn check_info<D: BlockDevice + ?Sized>(dev: &mut D) -> Check {
    let a = dev.info();
    let b = dev.info();
    ensure!(a == b, "info changed between two calls: {a:?}, then {b:?}");
    ensure!(
        a.block_size.is_power_of_two() && a.block_size >= 512,
        "block size {} is not a power of two of at least 512",
        a.block_size
    );
    ensure!(
        a.capacity % a.block_size == 0,
        "capacity {} is not a multiple of the block size {}",
        a.capacity,
        a.block_size
    );
    Ok(())
}

/// Which call a check makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Read,
    Write,
    Discard,
}

const CALLS: [Call; 3] = [Call::Read, Call::Write, Call::Discard];

struct Tester {
    info: BlockInfo,
    tag: u64,
}

impl Tester {
    fn bs(&self) -> u64 {
        self.info.block_size
    }

    fn blocks(&self) -> u64 {
        self.info.capacity / self.info.block_size
    }

    fn tag(&mut self) -> u64 {
        self.tag += 1;
        0x424c_4b00_0000 + self.tag
    }

    fn write<D: BlockDevice + ?Sized>(&self, dev: &mut D, first: u64, data: &[u8]) -> Check {
        match dev.write(first * self.bs(), data) {
            Ok(()) => Ok(()),
            Err(e) => fail!(
                "write of {} blocks at block {first} returned {e:?}",
                data.len() as u64 / self.bs()
            ),
        }
    }

    fn fill<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        first: u64,
        count: u64,
    ) -> Result<Vec<u8>, Outcome> {
        let data = pattern::blocks(self.bs(), self.tag(), first, count);
        self.write(dev, first, &data)?;
        Ok(data)
    }

    fn read<D: BlockDevice + ?Sized>(
        &self,
        dev: &mut D,
        first: u64,
        count: u64,
    ) -> Result<Vec<u8>, Outcome> {
        let mut buf = vec![0u8; (count * self.bs()) as usize];
        match dev.read(first * self.bs(), &mut buf) {
            Ok(()) => Ok(buf),
            Err(e) => fail!("read of {count} blocks at block {first} returned {e:?}"),
        }
    }

    /// Reads `count` blocks from `first` and compares them with `expected`, naming the
    /// first block that differs.
    fn expect<D: BlockDevice + ?Sized>(
        &self,
        dev: &mut D,
        first: u64,
        expected: &[u8],
        what: &str,
    ) -> Check {
        let count = expected.len() as u64 / self.bs();
        let got = self.read(dev, first, count)?;
        let bs = self.bs() as usize;
        if let Some(i) = got
            .chunks(bs)
            .zip(expected.chunks(bs))
            .position(|(g, e)| g != e)
        {
            let g = &got[i * bs..(i + 1) * bs];
            let how = if g.iter().all(|&b| b == 0) {
                "reads as zeros"
            } else {
                "holds other data"
            };
            fail!("{what}: block {} {how}", first + i as u64);
        }
        Ok(())
    }

    /// Calls `call` with raw arguments; the read buffer is filled with 0xa5 first and
    /// must be unchanged after an error.
    fn raw<D: BlockDevice + ?Sized>(
        &self,
        dev: &mut D,
        call: Call,
        offset: u64,
        len: u64,
    ) -> Result<Result<(), BlockError>, Outcome> {
        Ok(match call {
            Call::Read => {
                let mut buf = vec![0xa5u8; len as usize];
                let r = dev.read(offset, &mut buf);
                if r.is_err() && buf.iter().any(|&b| b != 0xa5) {
                    fail!("a failed read ({r:?}) of {len} bytes at {offset:#x} wrote its buffer");
                }
                r
            }
            Call::Write => dev.write(offset, &vec![0x5au8; len as usize]),
            Call::Discard => dev.discard(offset, len),
        })
    }

    /// Checks that every call in `cases` fails with the error `expected` gives, and that
    /// blocks `0..8` and the last 4 did not change.
    fn refused<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        cases: &[(Call, u64, u64)],
        expected: impl Fn(u64, u64) -> BlockError,
    ) -> Check {
        let last = self.blocks() - 4;
        let head = self.fill(dev, 0, 8)?;
        let tail = self.fill(dev, last, 4)?;
        for &(call, offset, len) in cases {
            let r = self.raw(dev, call, offset, len)?;
            let want = expected(offset, len);
            ensure!(
                r == Err(want),
                "{call:?} of {len} bytes at offset {offset:#x} returned {r:?}, expected {want:?}"
            );
        }
        self.expect(dev, 0, &head, "after the refused calls")?;
        self.expect(dev, last, &tail, "after the refused calls")?;
        Ok(())
    }

    fn zero_length<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        let (bs, cap) = (self.bs(), self.info.capacity);
        let cases: Vec<_> = CALLS
            .iter()
            .flat_map(|&c| [(c, 0, 0), (c, bs, 0), (c, cap - bs, 0)])
            .collect();
        self.refused(dev, &cases, |_, len| BlockError::BadLength { len })
    }

    fn length_alignment<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        let bs = self.bs();
        let cases: Vec<_> = CALLS
            .iter()
            .flat_map(|&c| {
                [1, bs / 2, bs - 1, bs + 1, 2 * bs + 7]
                    .into_iter()
                    .flat_map(move |len| [(c, 0, len), (c, 2 * bs, len)])
            })
            .collect();
        self.refused(dev, &cases, |_, len| BlockError::BadLength { len })
    }

    fn offset_alignment<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        let bs = self.bs();
        let cases: Vec<_> = CALLS
            .iter()
            .flat_map(|&c| {
                [1, 7, bs / 2, bs - 1, bs + 1, 3 * bs + 100]
                    .into_iter()
                    .flat_map(move |offset| [(c, offset, bs), (c, offset, 2 * bs)])
            })
            .collect();
        self.refused(dev, &cases, |offset, _| BlockError::BadOffset { offset })
    }

    fn range<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        let (bs, cap) = (self.bs(), self.info.capacity);
        // `2^64 - bs` is aligned, and adding any length overflows.
        let top = 0u64.wrapping_sub(bs);
        let mut cases: Vec<_> = CALLS
            .iter()
            .flat_map(|&c| {
                [
                    (c, cap, bs),
                    (c, cap - bs, 2 * bs),
                    (c, cap + 4 * bs, bs),
                    (c, top, bs),
                ]
            })
            .collect();
        if cap + bs <= 64 << 20 {
            cases.extend(CALLS.iter().map(|&c| (c, 0, cap + bs)));
        }
        cases.push((Call::Discard, bs, top));
        cases.push((Call::Discard, 0, cap + bs));
        self.refused(dev, &cases, |offset, len| BlockError::OutOfRange {
            offset,
            len,
            capacity: cap,
        })?;
        // The last block is inside.
        let last = self.blocks() - 1;
        let data = self.fill(dev, last, 1)?;
        self.expect(dev, last, &data, "the last block after writing it")?;
        let r = dev.discard(last * bs, bs);
        ensure!(r == Ok(()), "discard of the last block returned {r:?}");
        Ok(())
    }

    fn error_order<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        let (bs, cap) = (self.bs(), self.info.capacity);
        // (offset, len, expected): length first, then offset, then range.
        let cases = [
            (1, 0, BlockError::BadLength { len: 0 }),
            (1, bs + 1, BlockError::BadLength { len: bs + 1 }),
            (cap, 0, BlockError::BadLength { len: 0 }),
            (cap + bs, 3, BlockError::BadLength { len: 3 }),
            (cap + 1, bs, BlockError::BadOffset { offset: cap + 1 }),
            (u64::MAX, bs, BlockError::BadOffset { offset: u64::MAX }),
        ];
        let last = self.blocks() - 4;
        let head = self.fill(dev, 0, 8)?;
        let tail = self.fill(dev, last, 4)?;
        for call in CALLS {
            for (offset, len, want) in cases {
                let r = self.raw(dev, call, offset, len)?;
                ensure!(
                    r == Err(want),
                    "{call:?} of {len} bytes at offset {offset:#x} returned {r:?}, expected {want:?}"
                );
            }
        }
        self.expect(dev, 0, &head, "after the refused calls")?;
        self.expect(dev, last, &tail, "after the refused calls")
    }

    fn read_after_write<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        // Each write is read back by itself: whether it also changed its neighbours is
        // WriteIsolation's business.
        let one = self.fill(dev, 1, 1)?;
        self.expect(dev, 1, &one, "one block read after writing it")?;
        let three = self.fill(dev, 3, 3)?;
        self.expect(dev, 3, &three, "three blocks read after writing them")?;
        let overwrite = self.fill(dev, 4, 1)?;
        self.expect(dev, 4, &overwrite, "a block read after overwriting it")?;
        // Read in another cut than written: blocks 3 and 4 of the two writes.
        let mut cut = three[..self.bs() as usize].to_vec();
        cut.extend_from_slice(&overwrite);
        self.expect(dev, 3, &cut, "two blocks across two writes")?;
        // A large transfer, split by the device into several requests, read back whole
        // and in pieces of 7 blocks.
        let bs = self.bs();
        let count = (LARGE / bs).min(self.blocks() - 36);
        let large = self.fill(dev, 32, count)?;
        self.expect(dev, 32, &large, "a large write read back whole")?;
        let step = 7 * bs as usize;
        for (i, piece) in large.chunks(step).enumerate() {
            self.expect(
                dev,
                32 + 7 * i as u64,
                piece,
                "a large write read back in pieces",
            )?;
        }
        Ok(())
    }

    fn write_isolation<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        let bs = self.bs() as usize;
        let mut base = self.fill(dev, 0, 16)?;
        for (first, count) in [(5u64, 1u64), (9, 3), (0, 1), (15, 1)] {
            let data = self.fill(dev, first, count)?;
            base[first as usize * bs..(first + count) as usize * bs].copy_from_slice(&data);
            self.expect(
                dev,
                0,
                &base,
                &format!("after writing {count} blocks at {first}"),
            )?;
        }
        let last = self.blocks() - 2;
        let mut tail = self.fill(dev, last, 2)?;
        let data = self.fill(dev, last + 1, 1)?;
        tail[bs..].copy_from_slice(&data);
        self.expect(dev, last, &tail, "after writing the last block")?;
        let r = dev.discard((last + 1) * bs as u64, bs as u64);
        ensure!(r == Ok(()), "discard of the last block returned {r:?}");
        self.expect(dev, last, &tail[..bs], "after discarding the last block")?;
        Ok(())
    }

    fn discard<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        let bs = self.bs();
        let b = bs as usize;
        let base = self.fill(dev, 0, 16)?;
        let r = dev.discard(4 * bs, 3 * bs);
        ensure!(r == Ok(()), "discard of 3 blocks at block 4 returned {r:?}");
        let first = self.read(dev, 0, 16)?;
        for i in 0..16 {
            let got = &first[i * b..(i + 1) * b];
            let old = &base[i * b..(i + 1) * b];
            if (4..7).contains(&i) {
                ensure!(
                    got == old || got.iter().all(|&x| x == 0),
                    "discarded block {i} reads as neither zeros nor its old contents"
                );
            } else {
                ensure!(
                    got == old,
                    "block {i}, outside the discarded range, changed"
                );
            }
        }
        let again = self.read(dev, 0, 16)?;
        ensure!(
            again == first,
            "discarded blocks read differently the second time"
        );
        let data = self.fill(dev, 5, 1)?;
        self.expect(dev, 5, &data, "a discarded block written again")?;
        Ok(())
    }

    fn sync<D: BlockDevice + ?Sized>(&mut self, dev: &mut D) -> Check {
        for i in 0..2 {
            let r = dev.sync();
            ensure!(r == Ok(()), "sync {i} returned {r:?}");
        }
        let data = self.fill(dev, 6, 2)?;
        let r = dev.sync();
        ensure!(r == Ok(()), "sync after a write returned {r:?}");
        self.expect(dev, 6, &data, "after sync")
    }

    /// Runs `op` once more if it fails with a retryable error (a fault just happened).
    fn retry<T>(
        &self,
        what: &str,
        mut op: impl FnMut() -> Result<T, BlockError>,
    ) -> Result<T, Outcome> {
        match op() {
            Ok(v) => Ok(v),
            Err(e) if e.is_retryable() => match op() {
                Ok(v) => Ok(v),
                Err(e2) => fail!("{what} failed with {e:?}, and again with {e2:?}"),
            },
            Err(e) => fail!("{what} failed with {e:?}, which is not retryable"),
        }
    }

    fn read_retry<D: BlockDevice + ?Sized>(
        &self,
        dev: &mut D,
        first: u64,
        count: u64,
    ) -> Result<Vec<u8>, Outcome> {
        let mut buf = vec![0u8; (count * self.bs()) as usize];
        let offset = first * self.bs();
        self.retry(&format!("read of {count} blocks at block {first}"), || {
            dev.read(offset, &mut buf)
        })?;
        Ok(buf)
    }

    /// Checks that each block of `got` is one of the candidates for it.
    fn one_of(&self, got: &[u8], first: u64, candidates: &[&[u8]], what: &str) -> Check {
        let b = self.bs() as usize;
        for (i, block) in got.chunks(b).enumerate() {
            if !candidates
                .iter()
                .any(|c| c.len() >= (i + 1) * b && &c[i * b..(i + 1) * b] == block)
            {
                fail!(
                    "{what}: block {} holds data it never held",
                    first + i as u64
                );
            }
        }
        Ok(())
    }

    fn durability<D, P>(&mut self, dev: &mut D, peer: &mut P) -> Check
    where
        D: BlockDevice + ?Sized,
        P: BlockPeer<D> + ?Sized,
    {
        let bs = self.bs() as usize;
        let synced = self.fill(dev, 0, 4)?;
        ensure!(dev.sync() == Ok(()), "sync failed");
        let later = self.fill(dev, 1, 1)?;
        let r = dev.discard(2 * bs as u64, bs as u64);
        ensure!(r == Ok(()), "discard returned {r:?}");
        if !peer.fault(dev, BlockFault::PowerLoss) {
            skip!("the peer cannot lose power");
        }
        let got = self.read_retry(dev, 0, 4)?;
        ensure!(
            got[..bs] == synced[..bs] && got[3 * bs..] == synced[3 * bs..],
            "blocks written and synced before a power loss changed"
        );
        let zeros = vec![0u8; bs];
        self.one_of(
            &got[bs..2 * bs],
            1,
            &[&synced[bs..2 * bs], &later],
            "after a power loss",
        )?;
        self.one_of(
            &got[2 * bs..3 * bs],
            2,
            &[&synced[2 * bs..3 * bs], &zeros],
            "after a power loss",
        )?;
        // A write synced after the restart survives the next power loss.
        let data = pattern::blocks(self.bs(), self.tag(), 1, 2);
        self.retry("write after a power loss", || {
            dev.write(self.info.block_size, &data)
        })?;
        self.retry("sync after a power loss", || dev.sync())?;
        ensure!(
            peer.fault(dev, BlockFault::PowerLoss),
            "the second power loss was refused"
        );
        let got = self.read_retry(dev, 1, 2)?;
        ensure!(
            got == data,
            "two blocks written and synced were lost in a power loss"
        );
        Ok(())
    }

    fn peer_restart<D, P>(&mut self, dev: &mut D, peer: &mut P) -> Check
    where
        D: BlockDevice + ?Sized,
        P: BlockPeer<D> + ?Sized,
    {
        let bs = self.bs() as usize;
        let synced = self.fill(dev, 0, 3)?;
        ensure!(dev.sync() == Ok(()), "sync failed");
        let unsynced = self.fill(dev, 2, 1)?;
        if !peer.fault(dev, BlockFault::Restart) {
            skip!("the peer cannot restart");
        }
        let got = self.read_retry(dev, 0, 3)?;
        ensure!(
            got[..2 * bs] == synced[..2 * bs],
            "durable blocks changed across a server restart"
        );
        self.one_of(
            &got[2 * bs..],
            2,
            &[&synced[2 * bs..], &unsynced],
            "after a server restart",
        )?;
        // Every kind of operation works afterwards, also right after another restart.
        for i in 0..2 {
            let data = pattern::blocks(self.bs(), self.tag(), 0, 2);
            self.retry("write after a restart", || dev.write(0, &data))?;
            let got = self.read_retry(dev, 0, 2)?;
            ensure!(
                got == data,
                "a write after a server restart did not read back"
            );
            self.retry("sync after a restart", || dev.sync())?;
            self.retry("discard after a restart", || {
                dev.discard(0, self.info.block_size)
            })?;
            if i == 0 {
                ensure!(
                    peer.fault(dev, BlockFault::Restart),
                    "the second restart was refused"
                );
            }
        }
        Ok(())
    }

    fn peer_failure<D, P>(&mut self, dev: &mut D, peer: &mut P) -> Check
    where
        D: BlockDevice + ?Sized,
        P: BlockPeer<D> + ?Sized,
    {
        let bs = self.bs();
        let b = bs as usize;
        let mut supported = Vec::new();

        // A silent server: every call returns, with a retryable error or the truth.
        let base = self.fill(dev, 0, 4)?;
        if peer.fault(dev, BlockFault::Silent) {
            supported.push(BlockFault::Silent);
            let mut buf = vec![0u8; 4 * b];
            match dev.read(0, &mut buf) {
                Ok(()) => ensure!(
                    buf == base,
                    "a read from a silent server returned data it never held"
                ),
                Err(e) => ensure!(
                    e.is_retryable(),
                    "a read from a silent server returned {e:?}, which is not retryable"
                ),
            }
            let new = pattern::blocks(bs, self.tag(), 1, 1);
            let wrote = dev.write(bs, &new);
            if let Err(e) = wrote {
                ensure!(
                    e.is_retryable(),
                    "a write to a silent server returned {e:?}"
                );
            }
            let r = dev.sync();
            ensure!(
                r.is_err_and(|e| e.is_retryable()),
                "sync with a silent server returned {r:?}, expected a retryable error"
            );
            peer.heal(dev);
            let got = self.read_retry(dev, 0, 4)?;
            ensure!(
                got[..b] == base[..b] && got[2 * b..] == base[2 * b..],
                "blocks no request touched changed while the server was silent"
            );
            let candidates: Vec<&[u8]> = match wrote {
                Ok(()) => vec![&new],
                Err(_) => vec![&new, &base[b..2 * b]],
            };
            self.one_of(
                &got[b..2 * b],
                1,
                &candidates,
                "a block written while the server was silent",
            )?;
        }

        // Error statuses: Device errors inside the range; old or new contents after.
        let base = self.fill(dev, 0, 4)?;
        if peer.fault(dev, BlockFault::ErrorStatus) {
            supported.push(BlockFault::ErrorStatus);
            let new = pattern::blocks(bs, self.tag(), 1, 2);
            match dev.write(bs, &new) {
                Err(BlockError::Device { status, offset }) => {
                    ensure!(status != 0, "a Device error with status 0");
                    ensure!(
                        (bs..3 * bs).contains(&offset) && offset % bs == 0,
                        "a write of blocks 1..3 failed with a Device error at offset {offset:#x}"
                    );
                }
                r => fail!(
                    "a write answered with an error status returned {r:?}, expected a Device error"
                ),
            }
            let mut buf = vec![0u8; 2 * b];
            let r = dev.read(0, &mut buf);
            ensure!(
                matches!(r, Err(BlockError::Device { .. })),
                "a read answered with an error status returned {r:?}"
            );
            peer.heal(dev);
            let got = self.read_retry(dev, 0, 4)?;
            ensure!(
                got[..b] == base[..b] && got[3 * b..] == base[3 * b..],
                "blocks outside a failed write changed"
            );
            self.one_of(
                &got[b..3 * b],
                1,
                &[&new, &base[b..3 * b]],
                "after a failed write",
            )?;
        }

        // Stray responses are ignored.
        if peer.fault(dev, BlockFault::StrayResponses) {
            supported.push(BlockFault::StrayResponses);
            for i in 0..3 {
                let data = self.fill(dev, 8, 5)?;
                self.expect(dev, 8, &data, &format!("with stray responses (round {i})"))?;
                let r = dev.sync();
                ensure!(r == Ok(()), "sync with stray responses returned {r:?}");
            }
            peer.heal(dev);
        }
        if supported.is_empty() {
            skip!("the peer cannot fail on request");
        }
        // Whatever happened, the device works.
        let data = self.fill(dev, 0, 4)?;
        self.expect(dev, 0, &data, "after the peer's failures")
    }
}
