//! In-memory reference implementations of the contract: [`MemNet`] and [`MemBlock`],
//! with their peers, and the two ends of a typed channel on `muen-channel`
//! ([`MemReceiver`], [`MemSender`] with [`MemSenderHarness`]). They pass the suite by construction, which makes them the base of
//! the suite's own negative tests (each breaks one rule on purpose) and stand-ins for
//! a device in an app's unit tests.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;

use muen_channel::{epoch_from, ElementType, ReadError, Reader, Region, RegionMut, Writer};
use muen_device::channel::{ChannelError, Receiver, Sender};

use muen_device::{
    BlockDevice, BlockError, BlockInfo, NetDevice, NetError, NetInfo, Pollable, FRAME_MAX, MTU,
};

use crate::block::{BlockFault, BlockPeer};
use crate::channel::{SenderHarness, SignalRecorder};
use crate::net::{NetFault, NetPeer};

/// An element as the peer wrote it: bytes and a length field that may lie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// The element's frame bytes (up to 1514).
    pub bytes: Vec<u8>,
    /// The length field.
    pub length: u16,
}

/// A network device whose "channels" are two bounded queues that drop their oldest
/// frame when full, as a muennet ring overwrites its oldest element.
#[derive(Clone, Debug)]
pub struct MemNet {
    /// What `info` returns.
    pub info: NetInfo,
    /// Frames from the peer, oldest first.
    pub rx: VecDeque<RawFrame>,
    /// Frames to the peer, oldest first.
    pub tx: VecDeque<Vec<u8>>,
    /// Capacity of `rx` and `tx`.
    pub capacity: usize,
    /// The peer broke its channel: nothing is received until it restarts.
    pub rx_broken: bool,
    /// Elements dropped for their length field.
    pub rx_dropped: u64,
    /// How often the peer restarted (its channel epoch, as a device sees it).
    pub peer_restarts: u64,
}

impl MemNet {
    /// A device with queues of `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        MemNet {
            info: NetInfo {
                mac: [0x02, 0, 0, 0, 0, 0x42],
                mtu: MTU,
            },
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            capacity,
            rx_broken: false,
            rx_dropped: 0,
            peer_restarts: 0,
        }
    }
}

impl AsMut<MemNet> for MemNet {
    fn as_mut(&mut self) -> &mut MemNet {
        self
    }
}

impl Pollable for MemNet {
    fn has_data(&self) -> bool {
        !self.rx_broken && !self.rx.is_empty()
    }
}

impl NetDevice for MemNet {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if buf.len() < FRAME_MAX {
            return Err(NetError::BufferTooSmall { len: buf.len() });
        }
        if self.rx_broken {
            return Err(NetError::Again);
        }
        while let Some(raw) = self.rx.pop_front() {
            let n = usize::from(raw.length);
            if n == 0 || n > FRAME_MAX || n > raw.bytes.len() {
                self.rx_dropped += 1;
                continue;
            }
            buf[..n].copy_from_slice(&raw.bytes[..n]);
            return Ok(n);
        }
        Err(NetError::Again)
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NetError> {
        if frame.is_empty() {
            return Err(NetError::EmptyFrame);
        }
        if frame.len() > FRAME_MAX {
            return Err(NetError::FrameTooLarge { len: frame.len() });
        }
        if self.tx.len() == self.capacity {
            self.tx.pop_front();
        }
        self.tx.push_back(frame.to_vec());
        Ok(())
    }
}

/// The peer of a [`MemNet`] (or of anything that wraps one): it reaches into the
/// device's queues.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemNetPeer;

fn push_rx(dev: &mut MemNet, raw: RawFrame) {
    if dev.rx.len() == dev.capacity {
        dev.rx.pop_front();
    }
    dev.rx.push_back(raw);
}

impl<D: AsMut<MemNet> + ?Sized> NetPeer<D> for MemNetPeer {
    fn send(&mut self, dev: &mut D, frame: &[u8]) {
        push_rx(
            dev.as_mut(),
            RawFrame {
                bytes: frame.to_vec(),
                length: frame.len() as u16,
            },
        );
    }

    fn collect(&mut self, dev: &mut D) -> Vec<Vec<u8>> {
        dev.as_mut().tx.drain(..).collect()
    }

    fn capacity(&self) -> (usize, usize) {
        // A peer cannot see the device here; every MemNet in this crate's tests uses
        // at least this many.
        (MEM_NET_CAPACITY, MEM_NET_CAPACITY)
    }

    fn restart(&mut self, dev: &mut D) -> bool {
        let d = dev.as_mut();
        d.rx.clear();
        d.tx.clear();
        d.rx_broken = false;
        d.peer_restarts += 1;
        true
    }

    fn misbehave(&mut self, dev: &mut D, fault: NetFault) -> bool {
        let d = dev.as_mut();
        match fault {
            NetFault::ZeroLength => push_rx(
                d,
                RawFrame {
                    bytes: vec![0xee; FRAME_MAX],
                    length: 0,
                },
            ),
            NetFault::OversizeLength => push_rx(
                d,
                RawFrame {
                    bytes: vec![0xee; FRAME_MAX],
                    length: FRAME_MAX as u16 + 1,
                },
            ),
            NetFault::CounterRewind | NetFault::Incompatible => {
                d.rx.clear();
                d.rx_broken = true;
            }
        }
        true
    }
}

/// The queue capacity [`MemNetPeer::capacity`] reports; create a [`MemNet`] with it.
pub const MEM_NET_CAPACITY: usize = 16;

/// A block device in memory with a volatile write cache (writes are durable after
/// `sync`) and the failures of a client whose server misbehaves: it reports what a
/// correct client would.
#[derive(Clone, Debug)]
pub struct MemBlock {
    block_size: u64,
    /// Durable contents.
    pub durable: Vec<u8>,
    /// Written blocks not yet synced.
    pub cache: BTreeMap<u64, Vec<u8>>,
    /// The server is silent: operations time out.
    pub silent: bool,
    /// The server answers I/O with an error status.
    pub error_status: bool,
    /// The server restarted: the next operation fails with `ServerRestarted`.
    pub restarted: bool,
    /// Restarts so far ([`BlockFault::Restart`]).
    pub restarts: u64,
    /// Power losses so far ([`BlockFault::PowerLoss`]).
    pub power_losses: u64,
}

impl MemBlock {
    /// A device of `blocks` blocks of `block_size` bytes.
    pub fn new(blocks: u64, block_size: u64) -> Self {
        MemBlock {
            block_size,
            durable: vec![0; (blocks * block_size) as usize],
            cache: BTreeMap::new(),
            silent: false,
            error_status: false,
            restarted: false,
            restarts: 0,
            power_losses: 0,
        }
    }

    /// Checks the arguments as the contract orders them.
    pub fn check(&self, offset: u64, len: u64) -> Result<(), BlockError> {
        let bs = self.block_size;
        if len == 0 || len % bs != 0 {
            return Err(BlockError::BadLength { len });
        }
        if offset % bs != 0 {
            return Err(BlockError::BadOffset { offset });
        }
        let capacity = self.durable.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > capacity) {
            return Err(BlockError::OutOfRange {
                offset,
                len,
                capacity,
            });
        }
        Ok(())
    }

    /// What the server says before doing anything: its failures.
    fn server(&mut self, offset: u64) -> Result<(), BlockError> {
        if self.restarted {
            self.restarted = false;
            return Err(BlockError::ServerRestarted);
        }
        if self.silent {
            return Err(BlockError::Timeout);
        }
        if self.error_status {
            return Err(BlockError::Device { status: 10, offset });
        }
        Ok(())
    }

    /// Block `b` as reads see it.
    pub fn block(&self, b: u64) -> &[u8] {
        let bs = self.block_size as usize;
        self.cache
            .get(&b)
            .map_or(&self.durable[b as usize * bs..(b as usize + 1) * bs], |v| {
                &v[..]
            })
    }

    /// Writes block `b` (into the cache).
    pub fn set_block(&mut self, b: u64, data: &[u8]) {
        self.cache.insert(b, data.to_vec());
    }
}

impl AsMut<MemBlock> for MemBlock {
    fn as_mut(&mut self) -> &mut MemBlock {
        self
    }
}

impl BlockDevice for MemBlock {
    fn info(&self) -> BlockInfo {
        BlockInfo {
            block_size: self.block_size,
            capacity: self.durable.len() as u64,
        }
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check(offset, buf.len() as u64)?;
        self.server(offset)?;
        let bs = self.block_size;
        for (k, chunk) in buf.chunks_mut(bs as usize).enumerate() {
            chunk.copy_from_slice(self.block(offset / bs + k as u64));
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        self.check(offset, data.len() as u64)?;
        self.server(offset)?;
        let bs = self.block_size;
        for (k, chunk) in data.chunks(bs as usize).enumerate() {
            self.set_block(offset / bs + k as u64, chunk);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), BlockError> {
        // A failed sync reports the server's sync status (1) at offset 0.
        self.server(0).map_err(|e| match e {
            BlockError::Device { .. } => BlockError::Device {
                status: 1,
                offset: 0,
            },
            e => e,
        })?;
        let bs = self.block_size as usize;
        for (b, data) in std::mem::take(&mut self.cache) {
            self.durable[b as usize * bs..(b as usize + 1) * bs].copy_from_slice(&data);
        }
        Ok(())
    }

    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        self.check(offset, len)?;
        self.server(offset)?;
        let bs = self.block_size;
        let zeros = vec![0u8; bs as usize];
        for b in offset / bs..(offset + len) / bs {
            self.set_block(b, &zeros);
        }
        Ok(())
    }
}

/// The hooks of a [`MemBlock`] (or of anything that wraps one): every [`BlockFault`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MemBlockPeer;

impl<D: AsMut<MemBlock> + ?Sized> BlockPeer<D> for MemBlockPeer {
    fn fault(&mut self, dev: &mut D, fault: BlockFault) -> bool {
        let d = dev.as_mut();
        match fault {
            BlockFault::Silent => d.silent = true,
            BlockFault::ErrorStatus => d.error_status = true,
            // A correct client ignores them: nothing to do.
            BlockFault::StrayResponses => {}
            BlockFault::Restart => {
                d.restarted = true;
                d.restarts += 1;
            }
            BlockFault::PowerLoss => {
                d.cache.clear();
                d.restarted = true;
                d.power_losses += 1;
            }
        }
        true
    }

    fn heal(&mut self, dev: &mut D) {
        let d = dev.as_mut();
        d.silent = false;
        d.error_status = false;
    }
}

/// The reading end of a channel of `E`s on `muen-channel`'s reader: its errors as
/// [`ChannelError`]s, the writer's first start no restart, each restart reported once.
#[derive(Debug)]
pub struct MemReceiver<'a, E> {
    /// The reader.
    pub reader: Reader<'a>,
    followed: bool,
    _element: PhantomData<fn() -> E>,
}

impl<'a, E: ElementType> MemReceiver<'a, E> {
    /// A receiver of the channel in `memory`.
    ///
    /// # Panics
    ///
    /// If `memory` cannot hold one element (a test bug).
    pub fn new(memory: &'a [AtomicU64]) -> Self {
        let region = Region::from_atomics(memory).expect("a channel region");
        MemReceiver {
            reader: Reader::new(region, E::PROTOCOL, E::SIZE).expect("room for an element"),
            followed: false,
            _element: PhantomData,
        }
    }
}

/// `e` as the receiver reports it.
pub fn channel_error(e: ReadError) -> ChannelError {
    match e {
        ReadError::NoData | ReadError::Inactive | ReadError::WrongLength { .. } => {
            ChannelError::Again
        }
        ReadError::EpochChanged => ChannelError::PeerRestarted,
        ReadError::Overrun { lost } => ChannelError::Lost { lost },
        ReadError::Incompatible(i) => ChannelError::WrongType(i),
        ReadError::Misbehaviour(m) => ChannelError::PeerMisbehaved(m),
    }
}

impl<E: ElementType> Pollable for MemReceiver<'_, E> {
    fn has_data(&self) -> bool {
        self.reader.has_pending_data()
    }
}

impl<E: ElementType> Receiver<E> for MemReceiver<'_, E> {
    fn receive(&mut self) -> Result<E, ChannelError> {
        let first = !self.followed;
        let mut result = self.reader.read::<E>();
        // A copy discarded for a new epoch: the next read synchronises to it.
        if result.as_ref().err() == Some(&ReadError::EpochChanged) && self.reader.epoch().is_none()
        {
            result = self.reader.read::<E>();
        }
        if first && result.as_ref().err() == Some(&ReadError::EpochChanged) {
            result = self.reader.read::<E>();
        }
        self.followed |= self.reader.epoch().is_some();
        result.map_err(channel_error)
    }
}

/// The writing end of a channel of `E`s on `muen-channel`'s writer, signalling a
/// [`SignalRecorder`] after each element (and once per batch).
#[derive(Debug)]
pub struct MemSender<'a, E> {
    /// The writer.
    pub writer: Writer<'a>,
    /// Told after each write.
    pub signal: SignalRecorder<'a>,
    _element: PhantomData<fn(&E)>,
}

impl<'a, E: ElementType> MemSender<'a, E> {
    /// Starts the channel in `memory` with `epoch`.
    ///
    /// # Panics
    ///
    /// If `memory` cannot hold one element (a test bug).
    pub fn start(memory: &'a [AtomicU64], epoch: u64, signal: SignalRecorder<'a>) -> Self {
        let region = RegionMut::from_atomics(memory).expect("a channel region");
        MemSender {
            writer: Writer::init(region, E::PROTOCOL, E::SIZE, epoch_from(epoch))
                .expect("room for an element"),
            signal,
            _element: PhantomData,
        }
    }
}

impl<E: ElementType> Sender<E> for MemSender<'_, E> {
    fn send(&mut self, element: &E) {
        let _ = self.writer.write(element);
        self.signal.signal();
    }

    fn send_batch(&mut self, elements: &[E]) {
        if elements.is_empty() {
            return;
        }
        let _ = self.writer.write_batch(elements);
        self.signal.signal();
    }
}

/// Takes [`MemSender`]s of the channel in `memory`, each with a new epoch.
#[derive(Debug)]
pub struct MemSenderHarness<'a> {
    /// The channel.
    pub memory: &'a [AtomicU64],
    /// The signals of every sender taken.
    pub signal: SignalRecorder<'a>,
    /// The epoch of the next start.
    pub epoch: u64,
}

impl<'a> MemSenderHarness<'a> {
    /// A harness of the channel in `memory`.
    pub fn new(memory: &'a [AtomicU64]) -> Self {
        MemSenderHarness {
            memory,
            signal: SignalRecorder::new(memory),
            epoch: 0x4d45_4d00_0000_0001,
        }
    }
}

impl<'a, E: ElementType> SenderHarness<E> for MemSenderHarness<'a> {
    type Sender = MemSender<'a, E>;

    fn take(&mut self) -> MemSender<'a, E> {
        self.epoch += 1;
        MemSender::start(self.memory, self.epoch, self.signal.clone())
    }

    fn signals(&mut self) -> Option<Vec<u64>> {
        Some(self.signal.take())
    }
}
