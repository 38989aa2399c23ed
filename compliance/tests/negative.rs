//! The suite has teeth: for every rule, a device (or server) broken in exactly that
//! way is rejected, and the report names that rule first. The broken devices wrap the
//! reference devices, which pass (`reference.rs`); each breaks one thing.

use muen_channel::protocol::muenblock::{Request, RequestKind, Response};
use muen_channel::Misbehaviour;
use muen_device::channel::{ChannelError, Receiver, Sender};
use muen_device::{
    BlockDevice, BlockError, BlockInfo, NetDevice, NetError, NetInfo, Pollable, FRAME_MAX,
};
use muen_device_compliance::block::{block_compliance, BlockRule};
use muen_device_compliance::channel::{
    receiver_compliance, sender_compliance, ChannelRule, SenderHarness,
};
use muen_device_compliance::net::{net_compliance, NetRule};
use muen_device_compliance::peers::muenblock::{mem_server_harness, ChannelHarness};
use muen_device_compliance::random::{block_random, net_random, RandomConfig};
use muen_device_compliance::reference::{
    MemBlock, MemBlockPeer, MemNet, MemNetPeer, MemReceiver, MemSender, MemSenderHarness,
    MEM_NET_CAPACITY,
};
use muen_device_compliance::server::{raw_request, server_compliance, ServerHarness, ServerRule};
use muen_device_compliance::{Report, Rule};
use muen_sim::shared;

/// Checks that `report` names `rule` as its first violation, followed by exactly the
/// rules in `also` (the ones that cannot hold when `rule` does not: a device that
/// cannot read back its writes fails every check that writes), and prints it.
fn rejected_for<R: Rule>(report: &Report<R>, rule: R, also: &[R]) {
    eprintln!("{report}");
    let violated = report.violated();
    assert!(!violated.is_empty(), "the broken device passed: {report}");
    assert_eq!(violated[0], rule, "{report}");
    assert_eq!(&violated[1..], also, "{report}");
}

// ---------------------------------------------------------------- network devices

/// One way to break the network contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NetBug {
    /// Info: the MAC has the multicast bit set.
    MulticastMac,
    /// TransmitWhole: frames below 60 bytes are padded to 60 (Ethernet's minimum).
    PadsShortFrames,
    /// TransmitEmpty: an empty frame is sent.
    AcceptsEmpty,
    /// TransmitOversize: an oversized frame is cut to 1514 bytes and sent.
    TruncatesOversize,
    /// ReceiveWhole: the buffer length is kept in 16 bits, so a 64 KiB buffer takes 0.
    SixteenBitBufferLength,
    /// ReceiveBufferTooSmall: a small buffer gets the frame's first bytes.
    FillsSmallBuffers,
    /// NoData: `has_data` is always false.
    HasDataLies,
    /// Order: with three or more frames waiting, the newest comes first.
    NewestFirst,
    /// Overrun: transmit fails (back pressure) while the peer's queue is full.
    BackPressure,
    /// PeerRestart: the device stops receiving once the peer restarted.
    DeafAfterPeerRestart,
    /// PeerMisbehaviour: a length field above 1514 is clamped and the element returned.
    TrustsLengthField,
}

struct BrokenNet {
    inner: MemNet,
    bug: NetBug,
    restarts_seen: Option<u64>,
}

impl BrokenNet {
    fn new(bug: NetBug) -> Self {
        BrokenNet {
            inner: MemNet::new(MEM_NET_CAPACITY),
            bug,
            restarts_seen: None,
        }
    }
}

impl AsMut<MemNet> for BrokenNet {
    fn as_mut(&mut self) -> &mut MemNet {
        &mut self.inner
    }
}

impl Pollable for BrokenNet {
    fn has_data(&self) -> bool {
        self.bug != NetBug::HasDataLies && self.inner.has_data()
    }
}

impl NetDevice for BrokenNet {
    fn info(&self) -> NetInfo {
        let mut info = self.inner.info();
        if self.bug == NetBug::MulticastMac {
            info.mac[0] |= 1;
        }
        info
    }

    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        match self.bug {
            NetBug::SixteenBitBufferLength if buf.len() >= 65536 => {
                let mut big = vec![0u8; FRAME_MAX];
                let n = self.inner.receive(&mut big)?;
                let n = n.min(buf.len() as u16 as usize);
                buf[..n].copy_from_slice(&big[..n]);
                Ok(n)
            }
            NetBug::FillsSmallBuffers if buf.len() < FRAME_MAX => {
                let mut big = vec![0u8; FRAME_MAX];
                let n = self.inner.receive(&mut big)?;
                let n = n.min(buf.len());
                buf[..n].copy_from_slice(&big[..n]);
                Ok(n)
            }
            NetBug::NewestFirst if self.inner.rx.len() >= 3 => {
                let newest = self.inner.rx.pop_back().expect("three frames");
                self.inner.rx.push_front(newest);
                self.inner.receive(buf)
            }
            NetBug::DeafAfterPeerRestart if buf.len() >= FRAME_MAX => {
                let seen = *self.restarts_seen.get_or_insert(self.inner.peer_restarts);
                if seen != self.inner.peer_restarts {
                    return Err(NetError::Again);
                }
                self.inner.receive(buf)
            }
            NetBug::TrustsLengthField if buf.len() >= FRAME_MAX => match self.inner.rx.front() {
                Some(raw) if usize::from(raw.length) > FRAME_MAX => {
                    let raw = self.inner.rx.pop_front().expect("a frame");
                    buf[..FRAME_MAX].copy_from_slice(&raw.bytes[..FRAME_MAX]);
                    Ok(FRAME_MAX)
                }
                _ => self.inner.receive(buf),
            },
            _ => self.inner.receive(buf),
        }
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NetError> {
        match self.bug {
            NetBug::PadsShortFrames if !frame.is_empty() && frame.len() < 60 => {
                let mut padded = frame.to_vec();
                padded.resize(60, 0);
                self.inner.transmit(&padded)
            }
            NetBug::AcceptsEmpty if frame.is_empty() => {
                self.inner.tx.push_back(Vec::new());
                Ok(())
            }
            NetBug::TruncatesOversize if frame.len() > FRAME_MAX => {
                self.inner.transmit(&frame[..FRAME_MAX])
            }
            NetBug::BackPressure if self.inner.tx.len() == self.inner.capacity => {
                Err(NetError::Again)
            }
            _ => self.inner.transmit(frame),
        }
    }
}

fn net_rejected(bug: NetBug, rule: NetRule, also: &[NetRule]) {
    let mut dev = BrokenNet::new(bug);
    let report = net_compliance(&format!("MemNet with {bug:?}"), &mut dev, &mut MemNetPeer);
    rejected_for(&report, rule, also);
}

#[test]
fn net_info() {
    net_rejected(NetBug::MulticastMac, NetRule::Info, &[]);
}

#[test]
fn net_transmit_whole() {
    net_rejected(NetBug::PadsShortFrames, NetRule::TransmitWhole, &[]);
}

#[test]
fn net_transmit_empty() {
    net_rejected(NetBug::AcceptsEmpty, NetRule::TransmitEmpty, &[]);
}

#[test]
fn net_transmit_oversize() {
    net_rejected(NetBug::TruncatesOversize, NetRule::TransmitOversize, &[]);
}

#[test]
fn net_receive_whole() {
    net_rejected(NetBug::SixteenBitBufferLength, NetRule::ReceiveWhole, &[]);
}

#[test]
fn net_receive_buffer_too_small() {
    net_rejected(
        NetBug::FillsSmallBuffers,
        NetRule::ReceiveBufferTooSmall,
        &[],
    );
}

#[test]
fn net_no_data() {
    net_rejected(NetBug::HasDataLies, NetRule::NoData, &[]);
}

#[test]
fn net_order() {
    net_rejected(
        NetBug::NewestFirst,
        NetRule::Order,
        &[
            NetRule::Overrun,
            NetRule::PeerRestart,
            NetRule::PeerMisbehaviour,
        ],
    );
}

#[test]
fn net_overrun() {
    net_rejected(NetBug::BackPressure, NetRule::Overrun, &[]);
}

#[test]
fn net_peer_restart() {
    net_rejected(
        NetBug::DeafAfterPeerRestart,
        NetRule::PeerRestart,
        &[NetRule::PeerMisbehaviour],
    );
}

#[test]
fn net_peer_misbehaviour() {
    net_rejected(NetBug::TrustsLengthField, NetRule::PeerMisbehaviour, &[]);
}

// ------------------------------------------------------------------ block devices

/// One way to break the block contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockBug {
    /// Info: reports 1000-byte blocks.
    OddBlockSize,
    /// ReadAfterWrite: reads ignore writes not yet synced ("loses writes before sync").
    ReadsOnlySyncedData,
    /// WriteIsolation: a write also zeroes the block after its range.
    ClobbersNextBlock,
    /// ZeroLength: a zero-length request is a successful no-op.
    ZeroLengthIsNoop,
    /// LengthAlignment: an unaligned length is rounded down.
    RoundsLengthDown,
    /// OffsetAlignment: an unaligned offset is rounded down.
    RoundsOffsetDown,
    /// Range: only the start is checked; the part past the end is ignored.
    ChecksOnlyTheStart,
    /// ErrorOrder: the offset is checked before the length.
    ChecksOffsetFirst,
    /// Discard: discarded blocks read as 0xff.
    DiscardFillsOnes,
    /// Sync: sync always fails.
    SyncFails,
    /// Durability: sync returns without making anything durable.
    SyncDoesNotFlush,
    /// PeerRestart: after a server restart every operation fails.
    NeverRecoversFromRestart,
    /// PeerFailure: with a silent server, reads return zeros as if they succeeded.
    InventsDataWhenSilent,
}

struct BrokenBlock {
    inner: MemBlock,
    bug: BlockBug,
    broken: bool,
}

impl AsMut<MemBlock> for BrokenBlock {
    fn as_mut(&mut self) -> &mut MemBlock {
        &mut self.inner
    }
}

impl BrokenBlock {
    fn bs(&self) -> u64 {
        self.inner.info().block_size
    }

    /// The arguments as the bug sees them: `Some` to go on with (maybe changed), `None`
    /// to pretend success.
    fn args(&self, offset: u64, len: u64) -> Result<Option<(u64, u64)>, BlockError> {
        let bs = self.bs();
        let cap = self.inner.info().capacity;
        match self.bug {
            BlockBug::ZeroLengthIsNoop if len == 0 => Ok(None),
            BlockBug::RoundsLengthDown if len % bs != 0 => {
                let len = len / bs * bs;
                if len == 0 {
                    return Ok(None);
                }
                self.inner.check(offset, len).map(|()| Some((offset, len)))
            }
            BlockBug::RoundsOffsetDown if offset % bs != 0 && len % bs == 0 && len > 0 => {
                let offset = offset / bs * bs;
                self.inner.check(offset, len).map(|()| Some((offset, len)))
            }
            BlockBug::ChecksOnlyTheStart if len % bs == 0 && len > 0 && offset % bs == 0 => {
                if offset >= cap {
                    return Err(BlockError::OutOfRange {
                        offset,
                        len,
                        capacity: cap,
                    });
                }
                Ok(Some((offset, len.min(cap - offset))))
            }
            BlockBug::ChecksOffsetFirst if offset % bs != 0 => {
                Err(BlockError::BadOffset { offset })
            }
            _ => self.inner.check(offset, len).map(|()| Some((offset, len))),
        }
    }

    fn before_io(&mut self) -> Result<(), BlockError> {
        if self.bug == BlockBug::NeverRecoversFromRestart {
            if self.inner.restarts > 0 {
                self.broken = true;
            }
            if self.broken {
                return Err(BlockError::ServerRestarted);
            }
        }
        Ok(())
    }
}

impl BlockDevice for BrokenBlock {
    fn info(&self) -> BlockInfo {
        let mut info = self.inner.info();
        if self.bug == BlockBug::OddBlockSize {
            info.block_size = 1000;
        }
        info
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.before_io()?;
        let Some((offset, len)) = self.args(offset, buf.len() as u64)? else {
            return Ok(());
        };
        let buf = &mut buf[..len as usize];
        if self.bug == BlockBug::InventsDataWhenSilent && self.inner.silent {
            buf.fill(0);
            return Ok(());
        }
        self.inner.read(offset, buf)?;
        if self.bug == BlockBug::ReadsOnlySyncedData {
            buf.copy_from_slice(&self.inner.durable[offset as usize..(offset + len) as usize]);
        }
        if self.bug == BlockBug::DiscardFillsOnes {
            let bs = self.bs();
            for (k, chunk) in buf.chunks_mut(bs as usize).enumerate() {
                if chunk.iter().all(|&b| b == 0)
                    && self.inner.cache.contains_key(&(offset / bs + k as u64))
                {
                    chunk.fill(0xff);
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        self.before_io()?;
        let Some((offset, len)) = self.args(offset, data.len() as u64)? else {
            return Ok(());
        };
        self.inner.write(offset, &data[..len as usize])?;
        let bs = self.bs();
        let next = (offset + len) / bs;
        if self.bug == BlockBug::ClobbersNextBlock && next < self.inner.info().capacity / bs {
            self.inner.set_block(next, &vec![0; bs as usize]);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), BlockError> {
        self.before_io()?;
        match self.bug {
            BlockBug::SyncFails => Err(BlockError::Device {
                status: 1,
                offset: 0,
            }),
            BlockBug::SyncDoesNotFlush => {
                if self.inner.silent || self.inner.restarted || self.inner.error_status {
                    return self.inner.sync();
                }
                Ok(())
            }
            _ => self.inner.sync(),
        }
    }

    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        self.before_io()?;
        let Some((offset, len)) = self.args(offset, len)? else {
            return Ok(());
        };
        self.inner.discard(offset, len)
    }
}

fn block_rejected(bug: BlockBug, rule: BlockRule, also: &[BlockRule]) {
    let mut dev = BrokenBlock {
        inner: MemBlock::new(1024, 512),
        bug,
        broken: false,
    };
    let report = block_compliance(
        &format!("MemBlock with {bug:?}"),
        &mut dev,
        &mut MemBlockPeer,
    );
    rejected_for(&report, rule, also);
}

#[test]
fn block_info() {
    block_rejected(BlockBug::OddBlockSize, BlockRule::Info, &[]);
}

#[test]
fn block_read_after_write() {
    block_rejected(
        BlockBug::ReadsOnlySyncedData,
        BlockRule::ReadAfterWrite,
        &[
            BlockRule::WriteIsolation,
            BlockRule::ZeroLength,
            BlockRule::LengthAlignment,
            BlockRule::OffsetAlignment,
            BlockRule::Range,
            BlockRule::ErrorOrder,
            BlockRule::Discard,
            BlockRule::PeerRestart,
            BlockRule::PeerFailure,
        ],
    );
}

#[test]
fn block_write_isolation() {
    block_rejected(BlockBug::ClobbersNextBlock, BlockRule::WriteIsolation, &[]);
}

#[test]
fn block_zero_length() {
    block_rejected(
        BlockBug::ZeroLengthIsNoop,
        BlockRule::ZeroLength,
        &[BlockRule::ErrorOrder],
    );
}

#[test]
fn block_length_alignment() {
    block_rejected(
        BlockBug::RoundsLengthDown,
        BlockRule::LengthAlignment,
        &[BlockRule::ErrorOrder],
    );
}

#[test]
fn block_offset_alignment() {
    block_rejected(
        BlockBug::RoundsOffsetDown,
        BlockRule::OffsetAlignment,
        &[BlockRule::ErrorOrder],
    );
}

#[test]
fn block_range() {
    block_rejected(BlockBug::ChecksOnlyTheStart, BlockRule::Range, &[]);
}

#[test]
fn block_error_order() {
    block_rejected(BlockBug::ChecksOffsetFirst, BlockRule::ErrorOrder, &[]);
}

#[test]
fn block_discard() {
    block_rejected(BlockBug::DiscardFillsOnes, BlockRule::Discard, &[]);
}

#[test]
fn block_sync() {
    block_rejected(
        BlockBug::SyncFails,
        BlockRule::Sync,
        &[
            BlockRule::Durability,
            BlockRule::PeerRestart,
            BlockRule::PeerFailure,
        ],
    );
}

#[test]
fn block_durability() {
    block_rejected(BlockBug::SyncDoesNotFlush, BlockRule::Durability, &[]);
}

#[test]
fn block_peer_restart() {
    block_rejected(
        BlockBug::NeverRecoversFromRestart,
        BlockRule::PeerRestart,
        &[BlockRule::PeerFailure],
    );
}

#[test]
fn block_peer_failure() {
    block_rejected(BlockBug::InventsDataWhenSilent, BlockRule::PeerFailure, &[]);
}

// ------------------------------------------------------------------ block servers

/// One way to break the server contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerBug {
    /// Geometry: Block_Length answers 1000.
    BlockLengthLies,
    /// Echo: responses to Sync carry the wrong tag.
    WrongSyncTag,
    /// ZeroLength: zero-length I/O is answered with 0.
    ZeroLengthOk,
    /// LengthAlignment: an unaligned write writes its whole blocks.
    PartialUnalignedWrites,
    /// Range: a write crossing the end writes what fits.
    WritesUpToTheEnd,
    /// BufferBounds: a buffer range outside the buffer is moved to offset 0.
    BufferFallsBackToZero,
    /// UnknownKind: unknown kinds get no answer (as Muen's AHCI driver).
    SilentOnUnknownKinds,
    /// UnknownDevice: the device id is ignored.
    IgnoresDeviceId,
    /// Transfer: reads come from the next sector.
    ReadsOneSectorLate,
    /// Discard: discards one block more.
    DiscardsOneMore,
    /// Sync: answers 1.
    SyncFails,
}

struct BrokenServer {
    inner: ChannelHarness<'static>,
    bug: ServerBug,
    blocks: u64,
}

impl ServerHarness for BrokenServer {
    fn buffer_size(&self) -> u64 {
        self.inner.buffer_size()
    }

    fn write_buffer(&mut self, offset: u64, bytes: &[u8]) {
        self.inner.write_buffer(offset, bytes)
    }

    fn read_buffer(&mut self, offset: u64, len: usize) -> Vec<u8> {
        self.inner.read_buffer(offset, len)
    }

    fn image(&mut self) -> Vec<u8> {
        self.inner.image()
    }

    fn exchange(&mut self, requests: &[Request]) -> Vec<Response> {
        let size = self.buffer_size();
        let changed: Vec<Request> = requests
            .iter()
            .map(|q| {
                let (kind, len, sector, buffer) =
                    (q.kind(), q.length(), q.device_offset(), q.buffer_offset());
                let io = matches!(
                    kind,
                    Ok(RequestKind::Read | RequestKind::Write | RequestKind::Discard)
                );
                let redo = |len, sector, buffer| {
                    Request::new(
                        kind.expect("a known kind"),
                        q.device(),
                        q.tag(),
                        len,
                        sector,
                        buffer,
                    )
                };
                match self.bug {
                    ServerBug::PartialUnalignedWrites
                        if kind == Ok(RequestKind::Write) && len % 512 != 0 && len > 512 =>
                    {
                        redo(len / 512 * 512, sector, buffer)
                    }
                    ServerBug::WritesUpToTheEnd
                        if kind == Ok(RequestKind::Write)
                            && sector < self.blocks
                            && sector + len / 512 > self.blocks =>
                    {
                        redo((self.blocks - sector) * 512, sector, buffer)
                    }
                    ServerBug::BufferFallsBackToZero
                        if io && kind != Ok(RequestKind::Discard) && !q.buffer_range_fits(size) =>
                    {
                        redo(len, sector, 0)
                    }
                    ServerBug::IgnoresDeviceId if io && q.device() != 0 => {
                        Request::new(kind.expect("a known kind"), 0, q.tag(), len, sector, buffer)
                    }
                    ServerBug::ReadsOneSectorLate
                        if kind == Ok(RequestKind::Read)
                            && len > 0
                            && sector.saturating_add(len / 512) < self.blocks =>
                    {
                        redo(len, sector + 1, buffer)
                    }
                    ServerBug::DiscardsOneMore
                        if kind == Ok(RequestKind::Discard)
                            && len > 0
                            && sector.saturating_add(len / 512) < self.blocks =>
                    {
                        redo(len + 512, sector, buffer)
                    }
                    _ => *q,
                }
            })
            .collect();
        let responses = self.inner.exchange(&changed);
        responses
            .into_iter()
            .filter_map(|r| {
                let Some(q) = requests.iter().find(|q| q.tag() == r.tag()) else {
                    return Some(r);
                };
                let mut status = r.status();
                match (self.bug, q.kind()) {
                    (ServerBug::BlockLengthLies, Ok(RequestKind::BlockLength)) => status = 1000,
                    (ServerBug::WrongSyncTag, Ok(RequestKind::Sync)) => {
                        let other =
                            raw_request(RequestKind::Sync as u16, q.device(), q.tag() + 1, 0, 0, 0);
                        return Some(Response::to(&other, status));
                    }
                    (
                        ServerBug::ZeroLengthOk,
                        Ok(RequestKind::Read | RequestKind::Write | RequestKind::Discard),
                    ) if q.length() == 0 => status = 0,
                    (ServerBug::SilentOnUnknownKinds, Err(_)) => return None,
                    (ServerBug::SyncFails, Ok(RequestKind::Sync)) => status = 1,
                    _ => {}
                }
                Some(Response::to(q, status))
            })
            .collect()
    }
}

fn server_rejected(bug: ServerBug, rule: ServerRule, also: &[ServerRule]) {
    let (inner, _server) = mem_server_harness(64, 0x4000);
    let mut harness = BrokenServer {
        inner,
        bug,
        blocks: 64,
    };
    let report = server_compliance(&format!("server with {bug:?}"), &mut harness);
    rejected_for(&report, rule, also);
}

#[test]
fn server_geometry() {
    server_rejected(ServerBug::BlockLengthLies, ServerRule::Geometry, &[]);
}

#[test]
fn server_echo() {
    server_rejected(
        ServerBug::WrongSyncTag,
        ServerRule::Echo,
        &[ServerRule::UnknownDevice, ServerRule::Sync],
    );
}

#[test]
fn server_zero_length() {
    server_rejected(ServerBug::ZeroLengthOk, ServerRule::ZeroLength, &[]);
}

#[test]
fn server_length_alignment() {
    server_rejected(
        ServerBug::PartialUnalignedWrites,
        ServerRule::LengthAlignment,
        &[],
    );
}

#[test]
fn server_range() {
    server_rejected(ServerBug::WritesUpToTheEnd, ServerRule::Range, &[]);
}

#[test]
fn server_buffer_bounds() {
    server_rejected(
        ServerBug::BufferFallsBackToZero,
        ServerRule::BufferBounds,
        &[],
    );
}

#[test]
fn server_unknown_kind() {
    server_rejected(
        ServerBug::SilentOnUnknownKinds,
        ServerRule::UnknownKind,
        &[],
    );
}

#[test]
fn server_unknown_device() {
    server_rejected(ServerBug::IgnoresDeviceId, ServerRule::UnknownDevice, &[]);
}

#[test]
fn server_transfer() {
    server_rejected(ServerBug::ReadsOneSectorLate, ServerRule::Transfer, &[]);
}

#[test]
fn server_discard() {
    server_rejected(ServerBug::DiscardsOneMore, ServerRule::Discard, &[]);
}

#[test]
fn server_sync() {
    server_rejected(ServerBug::SyncFails, ServerRule::Sync, &[]);
}

// ------------------------------------------------------------ random sequences

/// A block device that drops the last block of writes of three or more blocks that
/// start on an odd block: found by the random sequences, shrunk to a few operations.
struct DropsTail(MemBlock);

impl AsMut<MemBlock> for DropsTail {
    fn as_mut(&mut self) -> &mut MemBlock {
        &mut self.0
    }
}

impl BlockDevice for DropsTail {
    fn info(&self) -> BlockInfo {
        self.0.info()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.0.read(offset, buf)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        self.0.check(offset, data.len() as u64)?;
        let blocks = data.len() / 512;
        if (offset / 512) % 2 == 1 && blocks >= 3 {
            return self.0.write(offset, &data[..(blocks - 1) * 512]);
        }
        self.0.write(offset, data)
    }
    fn sync(&mut self) -> Result<(), BlockError> {
        self.0.sync()
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        self.0.discard(offset, len)
    }
}

#[test]
fn random_block_sequences_find_and_shrink_a_lost_write() {
    let mut dev = DropsTail(MemBlock::new(256, 512));
    let config = RandomConfig {
        seed: 0x5eed,
        cases: 50,
        ops: 200,
    };
    let failure = block_random("DropsTail", &mut dev, &mut MemBlockPeer, config)
        .expect_err("the lost write is found");
    eprintln!("{failure}");
    assert_eq!(failure.violation.rule, BlockRule::ReadAfterWrite);
    assert_eq!(failure.config.seed, 0x5eed);
    // The window line, the write and the read that sees it (or the final check).
    assert!(failure.minimal.len() <= 3, "not shrunk: {failure}");
    let text = failure.to_string();
    assert!(text.contains("COMPLIANCE_SEED=0x5eed"), "{text}");
}

/// A network device that returns the newest of three waiting frames first.
#[test]
fn random_frame_exchanges_find_and_shrink_a_reordering() {
    let mut dev = BrokenNet::new(NetBug::NewestFirst);
    let config = RandomConfig {
        seed: 0xf00d,
        cases: 50,
        ops: 200,
    };
    let failure = net_random("NewestFirst", &mut dev, &mut MemNetPeer, config)
        .expect_err("the reordering is found");
    eprintln!("{failure}");
    assert_eq!(failure.violation.rule, NetRule::Order);
    // Three sends and a receive.
    assert!(failure.minimal.len() <= 4, "not shrunk: {failure}");
}

/// Every broken network device of the rule tests that random sequences can see is
/// caught by them too (not only by the rule's own check).
#[test]
fn random_frame_exchanges_catch_the_broken_devices() {
    for (bug, rule) in [
        (NetBug::PadsShortFrames, NetRule::TransmitWhole),
        (NetBug::AcceptsEmpty, NetRule::TransmitEmpty),
        (NetBug::TruncatesOversize, NetRule::TransmitOversize),
        (NetBug::FillsSmallBuffers, NetRule::ReceiveBufferTooSmall),
        (NetBug::HasDataLies, NetRule::NoData),
        (NetBug::DeafAfterPeerRestart, NetRule::NoData),
    ] {
        let mut dev = BrokenNet::new(bug);
        let config = RandomConfig {
            seed: 0xabcd,
            cases: 50,
            ops: 200,
        };
        let failure = net_random(&format!("{bug:?}"), &mut dev, &mut MemNetPeer, config)
            .expect_err("the bug is found");
        assert_eq!(failure.violation.rule, rule, "{failure}");
    }
}

/// The same for the block devices.
#[test]
fn random_block_sequences_catch_the_broken_devices() {
    for (bug, rule) in [
        (BlockBug::ReadsOnlySyncedData, BlockRule::ReadAfterWrite),
        (BlockBug::ZeroLengthIsNoop, BlockRule::ZeroLength),
        (BlockBug::RoundsLengthDown, BlockRule::LengthAlignment),
        (BlockBug::RoundsOffsetDown, BlockRule::OffsetAlignment),
        (BlockBug::ChecksOnlyTheStart, BlockRule::Range),
        (BlockBug::DiscardFillsOnes, BlockRule::Discard),
        (BlockBug::SyncFails, BlockRule::Sync),
        (BlockBug::SyncDoesNotFlush, BlockRule::Durability),
    ] {
        let mut dev = BrokenBlock {
            inner: MemBlock::new(256, 512),
            bug,
            broken: false,
        };
        let config = RandomConfig {
            seed: 0xabcd,
            cases: 50,
            ops: 200,
        };
        let failure = block_random(&format!("{bug:?}"), &mut dev, &mut MemBlockPeer, config)
            .expect_err("the bug is found");
        assert_eq!(failure.violation.rule, rule, "{failure}");
    }
}

// ------------------------------------------------------------------ typed channels

/// The channel element of the channel tests: 20 bytes.
#[derive(zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct Ping([u8; 20]);

impl muen_channel::ElementType for Ping {
    const PROTOCOL: u64 = 0x7069_6e67_0000_0001;
}

/// One way to break the receiver's contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReceiverBug {
    /// Whole: `receive_batch` returns its elements newest first.
    BatchNewestFirst,
    /// NoData: `has_data` is always false.
    HasDataLies,
    /// Overrun: `Lost` counts one element less than were skipped.
    LostOneTooFew,
    /// PeerRestart: `PeerRestarted` is swallowed (the next result is returned instead).
    SwallowsRestart,
    /// WrongType: a channel of another type is `Again`, as if nothing waited.
    HidesWrongType,
    /// PeerMisbehaviour: after a write counter went back, the receiver follows it
    /// (re-bases on it), so the elements between are delivered again.
    FollowsRewoundCounter,
}

struct BrokenReceiver {
    inner: MemReceiver<'static, Ping>,
    bug: ReceiverBug,
}

impl Pollable for BrokenReceiver {
    fn has_data(&self) -> bool {
        self.bug != ReceiverBug::HasDataLies && self.inner.has_data()
    }
}

impl Receiver<Ping> for BrokenReceiver {
    fn receive(&mut self) -> Result<Ping, ChannelError> {
        let r = self.inner.receive();
        match (self.bug, r) {
            (ReceiverBug::LostOneTooFew, Err(ChannelError::Lost { lost })) if lost > 1 => {
                Err(ChannelError::Lost { lost: lost - 1 })
            }
            (ReceiverBug::SwallowsRestart, Err(ChannelError::PeerRestarted)) => {
                self.inner.receive()
            }
            (ReceiverBug::HidesWrongType, Err(ChannelError::WrongType(_))) => {
                Err(ChannelError::Again)
            }
            (
                ReceiverBug::FollowsRewoundCounter,
                Err(e @ ChannelError::PeerMisbehaved(Misbehaviour::WriteCounterBehind { .. })),
            ) => {
                let _ = self.inner.reader.drain();
                Err(e)
            }
            (_, r) => r,
        }
    }

    fn receive_batch(&mut self, elements: &mut [Ping]) -> Result<usize, ChannelError> {
        let mut n = 0;
        for slot in elements.iter_mut() {
            match self.receive() {
                Ok(e) => *slot = e,
                Err(ChannelError::Again) if n > 0 => break,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
            n += 1;
        }
        if self.bug == ReceiverBug::BatchNewestFirst {
            elements[..n].reverse();
        }
        Ok(n)
    }
}

fn receiver_rejected(bug: ReceiverBug, rule: ChannelRule, also: &[ChannelRule]) {
    let memory = shared(0x1000);
    let mut rx = BrokenReceiver {
        inner: MemReceiver::new(memory),
        bug,
    };
    let report = receiver_compliance(&format!("MemReceiver with {bug:?}"), &mut rx, memory);
    rejected_for(&report, rule, also);
}

#[test]
fn channel_whole() {
    receiver_rejected(ReceiverBug::BatchNewestFirst, ChannelRule::Whole, &[]);
}

#[test]
fn channel_no_data() {
    receiver_rejected(
        ReceiverBug::HasDataLies,
        ChannelRule::NoData,
        &[ChannelRule::Overrun, ChannelRule::PeerRestart],
    );
}

#[test]
fn channel_overrun() {
    receiver_rejected(ReceiverBug::LostOneTooFew, ChannelRule::Overrun, &[]);
}

#[test]
fn channel_peer_restart() {
    receiver_rejected(ReceiverBug::SwallowsRestart, ChannelRule::PeerRestart, &[]);
}

#[test]
fn channel_wrong_type() {
    receiver_rejected(ReceiverBug::HidesWrongType, ChannelRule::WrongType, &[]);
}

#[test]
fn channel_peer_misbehaviour() {
    receiver_rejected(
        ReceiverBug::FollowsRewoundCounter,
        ChannelRule::PeerMisbehaviour,
        &[],
    );
}

/// One way to break the sender's contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SenderBug {
    /// SendWhole: the signal comes before the element is written.
    SignalsFirst,
    /// Start: every start has the same epoch (1, as Muen's block components use), so
    /// readers cannot see a restart.
    ConstantEpoch,
}

struct BrokenSender {
    inner: MemSender<'static, Ping>,
    bug: SenderBug,
}

impl Sender<Ping> for BrokenSender {
    fn send(&mut self, element: &Ping) {
        if self.bug == SenderBug::SignalsFirst {
            self.inner.signal.signal();
            let _ = self.inner.writer.write(element);
        } else {
            self.inner.send(element);
        }
    }

    fn send_batch(&mut self, elements: &[Ping]) {
        for e in elements {
            self.send(e);
        }
    }
}

struct BrokenSenderHarness {
    inner: MemSenderHarness<'static>,
    bug: SenderBug,
}

impl SenderHarness<Ping> for BrokenSenderHarness {
    type Sender = BrokenSender;

    fn take(&mut self) -> BrokenSender {
        if self.bug == SenderBug::ConstantEpoch {
            self.inner.epoch = 0;
        }
        BrokenSender {
            inner: self.inner.take(),
            bug: self.bug,
        }
    }

    fn signals(&mut self) -> Option<Vec<u64>> {
        SenderHarness::<Ping>::signals(&mut self.inner)
    }
}

fn sender_rejected(bug: SenderBug, rule: ChannelRule, also: &[ChannelRule]) {
    let memory = shared(0x1000);
    let mut harness = BrokenSenderHarness {
        inner: MemSenderHarness::new(memory),
        bug,
    };
    let report = sender_compliance(&format!("MemSender with {bug:?}"), &mut harness, memory);
    rejected_for(&report, rule, also);
}

#[test]
fn channel_send_whole() {
    sender_rejected(SenderBug::SignalsFirst, ChannelRule::SendWhole, &[]);
}

#[test]
fn channel_start() {
    sender_rejected(SenderBug::ConstantEpoch, ChannelRule::Start, &[]);
}
