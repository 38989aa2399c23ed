//! An in-memory muenblock server on channels in ordinary memory, a [`MuenBlock`] wired
//! to it, and [`ChannelHarness`]: any muenblock server driven through its channels for
//! [`server_compliance`](crate::server::server_compliance).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;

use muen_channel::protocol::muenblock::{
    self, smart, status, Request, RequestKind, Response, REQUEST_REGION_SIZE, REQUEST_SIZE,
    RESPONSE_REGION_SIZE, RESPONSE_SIZE,
};
use muen_channel::{epoch_from, ReadError, Reader, Region, RegionMut, Writer};
use muen_sinfo::MemoryKind;
use muen_subject::block::MuenBlock;

use crate::block::{BlockFault, BlockPeer};
use crate::server::ServerHarness;
use muen_sim::{memory, page, shared, SimSys};

/// Counters of a [`MemServer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Requests read.
    pub requests: u64,
    /// Requests refused as invalid.
    pub refused: u64,
    /// Requests dropped while silent or at a restart.
    pub dropped: u64,
    /// Stray responses written.
    pub stray: u64,
    /// Restarts.
    pub restarts: u64,
}

/// A muenblock server over an in-memory image with an optional volatile write cache
/// (what a disk with a cache does: writes are durable only after `Sync`). It serves
/// device 0, validates every request like the testbed's server, and can misbehave on
/// request (silence, error statuses, stray responses, restarts, power loss).
pub struct MemServer {
    requests: Reader<'static>,
    responses: Writer<'static>,
    data: RegionMut<'static>,
    block_size: u64,
    /// Most blocks per request.
    pub max_blocks: u64,
    /// The answer to `Max_Requests` (`None`: no answer, as Muen's AHCI driver).
    pub max_requests: Option<u64>,
    /// Keep writes in a volatile cache until `Sync`.
    pub write_cache: bool,
    disk: Vec<u8>,
    cache: BTreeMap<u64, Vec<u8>>,
    silent: bool,
    error_status: bool,
    stray: bool,
    epoch: u64,
    /// Counters.
    pub stats: ServerStats,
}

impl MemServer {
    /// A server reading requests from `req`, answering into `resp` (initialised here),
    /// with data buffer `data` and an image of `blocks` blocks of `block_size` bytes
    /// (initially each byte of block `b` is `b as u8 ^ 0x5a`).
    ///
    /// # Panics
    ///
    /// If the regions cannot hold the channels (a test bug).
    pub fn new(
        req: &'static [AtomicU64],
        resp: &'static [AtomicU64],
        data: &'static [AtomicU64],
        blocks: u64,
        block_size: u64,
    ) -> Self {
        let epoch = 1;
        MemServer {
            requests: Reader::new(
                Region::from_atomics(req).expect("a request region"),
                muenblock::PROTOCOL,
                REQUEST_SIZE,
            )
            .expect("a request channel"),
            responses: Writer::init(
                RegionMut::from_atomics(resp).expect("a response region"),
                muenblock::PROTOCOL,
                RESPONSE_SIZE,
                epoch_from(epoch),
            )
            .expect("a response channel"),
            data: RegionMut::from_atomics(data).expect("a data region"),
            block_size,
            max_blocks: 16,
            max_requests: None,
            write_cache: true,
            disk: (0..blocks * block_size)
                .map(|i| (i / block_size) as u8 ^ 0x5a)
                .collect(),
            cache: BTreeMap::new(),
            silent: false,
            error_status: false,
            stray: false,
            epoch,
            stats: ServerStats::default(),
        }
    }

    /// Blocks of the image.
    pub fn blocks(&self) -> u64 {
        self.disk.len() as u64 / self.block_size
    }

    /// The image as reads see it (cache over disk).
    pub fn image(&self) -> Vec<u8> {
        let mut image = self.disk.clone();
        let bs = self.block_size as usize;
        for (&b, data) in &self.cache {
            image[b as usize * bs..(b as usize + 1) * bs].copy_from_slice(data);
        }
        image
    }

    /// The durable image (what survives a power loss).
    pub fn durable(&self) -> &[u8] {
        &self.disk
    }

    /// The image for tests that corrupt it on purpose.
    pub fn durable_mut(&mut self) -> &mut [u8] {
        &mut self.disk
    }

    /// Restarts: forgets unread requests and publishes a new response epoch. The cache
    /// survives (a process restart with the disk still powered).
    pub fn restart(&mut self) {
        self.epoch += 1;
        self.stats.restarts += 1;
        self.responses.reset(epoch_from(self.epoch));
        if let Ok(n) = self.requests.drain() {
            self.stats.dropped += n;
        }
    }

    /// Loses the cache, then restarts.
    pub fn power_loss(&mut self) {
        self.cache.clear();
        self.restart();
    }

    /// Answers every request waiting (or drops them while silent).
    pub fn step(&mut self) {
        loop {
            let request = match self.requests.read::<Request>() {
                Ok(r) => r,
                Err(
                    ReadError::EpochChanged
                    | ReadError::Overrun { .. }
                    | ReadError::Misbehaviour(_),
                ) => continue,
                Err(_) => return,
            };
            self.stats.requests += 1;
            if self.silent {
                self.stats.dropped += 1;
                continue;
            }
            if self.stray {
                // Unknown tag, and the right tag for another device.
                let other =
                    Request::new(RequestKind::Read, 0, request.tag() ^ 0x8000_0000, 0, 0, 0);
                let _ = self.responses.write(&Response::to(&other, 0));
                let kind = request.kind().unwrap_or(RequestKind::None);
                let other = Request::new(kind, request.device() ^ 7, request.tag(), 0, 0, 0);
                let _ = self.responses.write(&Response::to(&other, 0));
                self.stats.stray += 2;
            }
            if let Some(status) = self.answer(&request) {
                let _ = self.responses.write(&Response::to(&request, status));
            }
        }
    }

    fn refuse(&mut self) -> Option<u64> {
        self.stats.refused += 1;
        Some(status::ENOTSUP)
    }

    fn answer(&mut self, r: &Request) -> Option<u64> {
        let Ok(kind) = r.kind() else {
            return self.refuse();
        };
        if r.device() != 0 {
            self.stats.refused += 1;
            return Some(match kind {
                RequestKind::None
                | RequestKind::Read
                | RequestKind::Write
                | RequestKind::Discard
                | RequestKind::Sync
                | RequestKind::Reset => status::ENOTSUP,
                _ => 0,
            });
        }
        let bs = self.block_size;
        Some(match kind {
            RequestKind::None | RequestKind::Reset => status::OK,
            RequestKind::MediaBlocks => self.blocks(),
            RequestKind::BlockLength => bs,
            RequestKind::MaxBlocksCount => self.max_blocks,
            RequestKind::MaxDevices => 1,
            RequestKind::MaxRequests => return self.max_requests,
            RequestKind::GetSmart => smart::UNDEFINED,
            RequestKind::Sync => {
                for (b, data) in std::mem::take(&mut self.cache) {
                    let at = (b * bs) as usize;
                    self.disk[at..at + bs as usize].copy_from_slice(&data);
                }
                status::OK
            }
            RequestKind::Read | RequestKind::Write | RequestKind::Discard => {
                let len = r.length();
                let sector = r.device_offset();
                let valid = len != 0
                    && len % bs == 0
                    && len / bs <= self.max_blocks
                    && sector
                        .checked_add(len / bs)
                        .is_some_and(|end| end <= self.blocks())
                    && (kind == RequestKind::Discard
                        || r.buffer_range_fits(self.data.len() as u64));
                if !valid {
                    return self.refuse();
                }
                if self.error_status {
                    return Some(status::EIO);
                }
                // Inside the buffer for Read and Write (checked above); Discard has none.
                let at = r.buffer_offset() as usize;
                for k in 0..len / bs {
                    let b = sector + k;
                    let offset = at.wrapping_add((k * bs) as usize);
                    match kind {
                        RequestKind::Read => {
                            let block = self.read_block(b);
                            let _ = self.data.write_bytes(offset, &block);
                        }
                        RequestKind::Write => {
                            let mut block = vec![0u8; bs as usize];
                            let _ = self.data.read_bytes(offset, &mut block);
                            self.write_block(b, block);
                        }
                        _ => self.write_block(b, vec![0u8; bs as usize]),
                    }
                }
                status::OK
            }
        })
    }

    fn read_block(&self, b: u64) -> Vec<u8> {
        let bs = self.block_size as usize;
        self.cache
            .get(&b)
            .cloned()
            .unwrap_or_else(|| self.disk[b as usize * bs..(b as usize + 1) * bs].to_vec())
    }

    fn write_block(&mut self, b: u64, data: Vec<u8>) {
        if self.write_cache {
            self.cache.insert(b, data);
        } else {
            let bs = self.block_size as usize;
            self.disk[b as usize * bs..(b as usize + 1) * bs].copy_from_slice(&data);
        }
    }
}

/// The hooks of a [`MemServer`] for [`block_compliance`](crate::block::block_compliance):
/// every [`BlockFault`].
#[derive(Clone)]
pub struct MemServerPeer {
    /// The server, shared with the device's [`SimSys`].
    pub server: Rc<RefCell<MemServer>>,
}

impl<D: ?Sized> BlockPeer<D> for MemServerPeer {
    fn fault(&mut self, _dev: &mut D, fault: BlockFault) -> bool {
        let mut s = self.server.borrow_mut();
        match fault {
            BlockFault::Silent => s.silent = true,
            BlockFault::ErrorStatus => s.error_status = true,
            BlockFault::StrayResponses => s.stray = true,
            BlockFault::Restart => s.restart(),
            BlockFault::PowerLoss => s.power_loss(),
        }
        true
    }

    fn heal(&mut self, _dev: &mut D) {
        let mut s = self.server.borrow_mut();
        s.silent = false;
        s.error_status = false;
        s.stray = false;
    }
}

/// The data buffer of the in-test block device: 64 KiB.
pub const DATA_BYTES: usize = 0x1_0000;

/// A [`MuenBlock`] of subject `compliance`, device `disk`, served by a [`MemServer`]
/// with `blocks` blocks of 512 bytes (`configure` adjusts the server before the
/// client asks for the geometry), and the server's hooks. The client's timeout is
/// 50 ms of simulated time.
///
/// # Panics
///
/// If the client cannot be acquired (the server was configured into an unusable
/// geometry).
pub fn muenblock(
    blocks: u64,
    configure: impl FnOnce(&mut MemServer),
) -> (MuenBlock<'static, SimSys>, MemServerPeer) {
    let req = shared(REQUEST_REGION_SIZE);
    let resp = shared(RESPONSE_REGION_SIZE);
    let data = shared(DATA_BYTES);
    let info = page("compliance", |b| {
        b.memory("disk|req", memory(req, MemoryKind::SubjectChannel, true))
            .and_then(|b| b.memory("disk|resp", memory(resp, MemoryKind::SubjectChannel, false)))
            .and_then(|b| b.memory("disk|data", memory(data, MemoryKind::SubjectDevice, true)))
            .and_then(|b| b.event("disk|req", 3))
            .and_then(|b| b.vector("disk|resp", 40))
            .expect("valid resources");
    });
    let mut server = MemServer::new(req, resp, data, blocks, 512);
    configure(&mut server);
    let server = Rc::new(RefCell::new(server));
    let sys = SimSys::leaked();
    let s = server.clone();
    sys.set_peer(move || s.borrow_mut().step());
    // SAFETY: the page names the leaked buffers above, alive forever, used otherwise
    // only by the server through atomic accesses.
    let mut dev = unsafe { MuenBlock::acquire(sys, &info, "disk") }.expect("the server answers");
    dev.set_timeout(muen_abi::time::Duration::from_millis(50));
    (dev, MemServerPeer { server })
}

/// A muenblock server driven through its channels: the client's ends of the request
/// and response channels and of the data buffer, a function that lets the server run
/// until it is idle, and one that reads its image.
pub struct ChannelHarness<'a> {
    requests: Writer<'a>,
    responses: Reader<'a>,
    data: RegionMut<'a>,
    step: Box<dyn FnMut() + 'a>,
    image: Box<dyn FnMut() -> Vec<u8> + 'a>,
}

impl<'a> ChannelHarness<'a> {
    /// A harness writing requests into `requests` (initialised here), reading
    /// responses from `responses`, with the data buffer `data`.
    ///
    /// # Panics
    ///
    /// If the regions cannot hold the channels (a test bug).
    pub fn new(
        requests: RegionMut<'a>,
        responses: Region<'a>,
        data: RegionMut<'a>,
        step: impl FnMut() + 'a,
        image: impl FnMut() -> Vec<u8> + 'a,
    ) -> Self {
        ChannelHarness {
            requests: Writer::init(
                requests,
                muenblock::PROTOCOL,
                REQUEST_SIZE,
                epoch_from(0x4841),
            )
            .expect("a request channel"),
            responses: Reader::new(responses, muenblock::PROTOCOL, RESPONSE_SIZE)
                .expect("a response channel"),
            data,
            step: Box::new(step),
            image: Box::new(image),
        }
    }
}

impl ServerHarness for ChannelHarness<'_> {
    fn buffer_size(&self) -> u64 {
        self.data.len() as u64
    }

    fn write_buffer(&mut self, offset: u64, bytes: &[u8]) {
        self.data
            .write_bytes(offset as usize, bytes)
            .expect("the suite writes inside the buffer");
    }

    fn read_buffer(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.data
            .read_bytes(offset as usize, &mut out)
            .expect("the suite reads inside the buffer");
        out
    }

    fn exchange(&mut self, requests: &[Request]) -> Vec<Response> {
        for r in requests {
            // A request has the channel's element size: the write cannot fail.
            let _ = self.requests.write(r);
        }
        (self.step)();
        let mut responses = Vec::new();
        loop {
            match self.responses.read::<Response>() {
                Ok(r) => responses.push(r),
                Err(ReadError::EpochChanged) => {}
                Err(_) => break,
            }
        }
        responses
    }

    fn image(&mut self) -> Vec<u8> {
        (self.image)()
    }
}

/// A [`ChannelHarness`] on a fresh [`MemServer`] of `blocks` blocks (without write
/// cache), with a data buffer of `data_bytes`, and the server.
pub fn mem_server_harness(
    blocks: u64,
    data_bytes: usize,
) -> (ChannelHarness<'static>, Rc<RefCell<MemServer>>) {
    let req = shared(REQUEST_REGION_SIZE);
    let resp = shared(RESPONSE_REGION_SIZE);
    let data = shared(data_bytes);
    let mut server = MemServer::new(req, resp, data, blocks, 512);
    server.write_cache = false;
    server.max_blocks = (data_bytes as u64 / 512).max(1);
    let server = Rc::new(RefCell::new(server));
    let (s1, s2) = (server.clone(), server.clone());
    let harness = ChannelHarness::new(
        RegionMut::from_atomics(req).expect("a request region"),
        Region::from_atomics(resp).expect("a response region"),
        RegionMut::from_atomics(data).expect("a data region"),
        move || s1.borrow_mut().step(),
        move || s2.borrow().image(),
    );
    (harness, server)
}
