//! A muenblock server over an in-memory image, on channels in ordinary memory.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;

use muen_channel::protocol::muenblock::{
    self, smart, status, Request, RequestKind, Response, REQUEST_REGION_SIZE, REQUEST_SIZE,
    RESPONSE_REGION_SIZE, RESPONSE_SIZE,
};
use muen_channel::{epoch_from, ReadError, Reader, Region, RegionMut, Writer};
use muen_sinfo::{MemoryKind, SubjectInfo};

use crate::{memory, page, shared, SimSys};

/// Counters of a [`MuenblockServer`].
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

/// A muenblock server over an in-memory image, with an optional volatile write cache
/// (what a disk with a cache does: writes are durable only after `Sync`).
///
/// It serves device 0, treats the device offset as a sector number (as Muen's AHCI
/// driver does) and validates every request as the testbed's server does: an invalid
/// one is refused with [`status::ENOTSUP`] and changes nothing. Each [`step`] reads
/// every waiting request and then answers them. The public fields make it
/// misbehave (silence, error statuses, stray responses, answers in reverse order),
/// change its geometry answers, or record what it was asked; [`restart`] and
/// [`power_loss`] restart it.
///
/// [`step`]: Self::step
/// [`restart`]: Self::restart
/// [`power_loss`]: Self::power_loss
pub struct MuenblockServer {
    requests: Reader<'static>,
    responses: Writer<'static>,
    data: RegionMut<'static>,
    block_size: u64,
    disk: Vec<u8>,
    cache: BTreeMap<u64, Vec<u8>>,
    epoch: u64,
    /// The answer to `Max_Blocks_Count`: most blocks per request (16).
    pub max_blocks: u64,
    /// The answer to `Max_Requests` (`None`, the default: no answer, as Muen's AHCI
    /// driver).
    pub max_requests: Option<u64>,
    /// Keep writes in a volatile cache until `Sync` (the default).
    pub write_cache: bool,
    /// Read requests but answer none (and drop them).
    pub silent: bool,
    /// Answer every valid Read, Write and Discard with [`status::EIO`].
    pub error_status: bool,
    /// Answer the valid Read, Write and Discard requests that touch this sector with
    /// [`status::EIO`] (and leave their blocks alone).
    pub fail_sector: Option<u64>,
    /// The answer to `Sync` ([`status::OK`], the default, after writing the cache to
    /// the disk; any other value without).
    pub sync_status: u64,
    /// Before each answer, write two stray responses: one with a tag nobody used, one
    /// with the request's tag for another device.
    pub stray: bool,
    /// Answer each batch of requests in reverse order.
    pub reverse: bool,
    /// Panic on a request the server would refuse (or a broken request channel)
    /// instead of answering it with an error status: for tests of a client that must
    /// never send one, so that the test fails at the bad request.
    pub strict: bool,
    /// Keep every request read in [`requests_seen`](Self::requests_seen).
    pub record: bool,
    /// The requests read while [`record`](Self::record) was set, in order.
    pub requests_seen: Vec<Request>,
    /// The most Read, Write and Discard requests read in one step.
    pub largest_batch: usize,
    /// Counters.
    pub stats: ServerStats,
}

impl MuenblockServer {
    /// A server reading requests from `req`, answering into `resp` (initialised here
    /// with epoch 1, as Muen's AHCI driver does), with data buffer `data` and an image
    /// of `blocks` blocks of `block_size` bytes (initially each byte of block `b` is
    /// `b as u8 ^ 0x5a`).
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
        MuenblockServer {
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
            disk: (0..blocks * block_size)
                .map(|i| (i / block_size) as u8 ^ 0x5a)
                .collect(),
            cache: BTreeMap::new(),
            epoch,
            max_blocks: 16,
            max_requests: None,
            write_cache: true,
            silent: false,
            error_status: false,
            fail_sector: None,
            sync_status: status::OK,
            stray: false,
            reverse: false,
            strict: false,
            record: false,
            requests_seen: Vec::new(),
            largest_batch: 0,
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

    /// The durable image, for tests that corrupt it on purpose.
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

    /// Restarts as Muen's AHCI driver does: the response channel is reinitialised with
    /// the same constant epoch, so a client that did not look while it was inactive sees
    /// only its write counter go back. Forgets unread requests; the cache survives.
    pub fn restart_same_epoch(&mut self) {
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

    /// Reads every waiting request, then answers them (or drops them while silent).
    ///
    /// # Panics
    ///
    /// If [`strict`](Self::strict) is set, at a request the server would refuse or a
    /// broken request channel.
    pub fn step(&mut self) {
        let mut batch = Vec::new();
        loop {
            match self.requests.read::<Request>() {
                Ok(r) => batch.push(r),
                Err(ReadError::EpochChanged) => {}
                Err(e @ (ReadError::Overrun { .. } | ReadError::Misbehaviour(_))) => {
                    assert!(!self.strict, "muenblock server: request channel: {e}");
                }
                Err(_) => break,
            }
        }
        self.stats.requests += batch.len() as u64;
        if self.record {
            self.requests_seen.extend_from_slice(&batch);
        }
        let io = batch
            .iter()
            .filter(|r| r.kind().is_ok_and(RequestKind::is_io))
            .count();
        self.largest_batch = self.largest_batch.max(io);
        if self.silent {
            self.stats.dropped += batch.len() as u64;
            return;
        }
        let mut responses = Vec::new();
        for request in &batch {
            if self.stray {
                // Unknown tag, and the right tag for another device.
                let other =
                    Request::new(RequestKind::Read, 0, request.tag() ^ 0x8000_0000, 0, 0, 0);
                responses.push(Response::to(&other, 0));
                let kind = request.kind().unwrap_or(RequestKind::None);
                let other = Request::new(kind, request.device() ^ 7, request.tag(), 0, 0, 0);
                responses.push(Response::to(&other, 0));
                self.stats.stray += 2;
            }
            if let Some(status) = self.answer(request) {
                responses.push(Response::to(request, status));
            }
        }
        if self.reverse {
            responses.reverse();
        }
        for r in &responses {
            // A response has the channel's element size: the write cannot fail.
            let _ = self.responses.write(r);
        }
    }

    fn refuse(&mut self, request: &Request, status: u64) -> Option<u64> {
        assert!(
            !self.strict,
            "muenblock server: a request the contract forbids: {request:?}"
        );
        self.stats.refused += 1;
        Some(status)
    }

    fn answer(&mut self, r: &Request) -> Option<u64> {
        let Ok(kind) = r.kind() else {
            return self.refuse(r, status::ENOTSUP);
        };
        if r.device() != 0 {
            // As Muen's AHCI driver: the query kinds answer 0 for other devices.
            return match kind {
                RequestKind::None
                | RequestKind::Read
                | RequestKind::Write
                | RequestKind::Discard
                | RequestKind::Sync
                | RequestKind::Reset => self.refuse(r, status::ENOTSUP),
                _ => self.refuse(r, 0),
            };
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
            RequestKind::Sync if self.sync_status != status::OK => self.sync_status,
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
                    return self.refuse(r, status::ENOTSUP);
                }
                let sectors = sector..sector + len / bs;
                if self.error_status || self.fail_sector.is_some_and(|s| sectors.contains(&s)) {
                    return Some(status::EIO);
                }
                // Inside the buffer for Read and Write (checked above); Discard has none.
                let at = r.buffer_offset() as usize;
                for (k, b) in sectors.enumerate() {
                    let offset = at.wrapping_add(k * bs as usize);
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

/// The size of the data buffer of a [`muenblock_device`]: 64 KiB.
pub const DATA_BYTES: usize = 0x1_0000;

/// A muenblock device `device` of subject `subject`, served by a [`MuenblockServer`]
/// of `blocks` blocks of `block_size` bytes that runs whenever the driver waits on
/// `sys`: the sinfo page naming `<device>|req` (writable, event 3), `<device>|resp`
/// (read-only, vector 40) and `<device>|data` ([`DATA_BYTES`], writable), and the
/// server, shared with `sys` (adjust it before the client asks for the geometry).
///
/// # Panics
///
/// If the names are invalid (a test bug).
pub fn muenblock_device(
    subject: &str,
    device: &str,
    blocks: u64,
    block_size: u64,
    sys: &SimSys,
) -> (SubjectInfo<'static>, Rc<RefCell<MuenblockServer>>) {
    let req = shared(REQUEST_REGION_SIZE);
    let resp = shared(RESPONSE_REGION_SIZE);
    let data = shared(DATA_BYTES);
    let name = |part: &str| format!("{device}|{part}");
    let info = page(subject, |b| {
        b.memory(name("req"), memory(req, MemoryKind::SubjectChannel, true))
            .and_then(|b| {
                b.memory(
                    name("resp"),
                    memory(resp, MemoryKind::SubjectChannel, false),
                )
            })
            .and_then(|b| b.memory(name("data"), memory(data, MemoryKind::SubjectDevice, true)))
            .and_then(|b| b.event(name("req"), 3))
            .and_then(|b| b.vector(name("resp"), 40))
            .expect("valid resources");
    });
    let server = Rc::new(RefCell::new(MuenblockServer::new(
        req, resp, data, blocks, block_size,
    )));
    let s = server.clone();
    sys.set_peer(move || s.borrow_mut().step());
    (info, server)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server of 64 blocks of 512 bytes and the client's ends of its channels.
    struct Client {
        server: MuenblockServer,
        requests: Writer<'static>,
        responses: Reader<'static>,
        data: RegionMut<'static>,
        tag: u32,
    }

    impl Client {
        fn new() -> Self {
            let (req, resp, data) = (
                shared(REQUEST_REGION_SIZE),
                shared(RESPONSE_REGION_SIZE),
                shared(0x4000),
            );
            Client {
                server: MuenblockServer::new(req, resp, data, 64, 512),
                requests: Writer::init(
                    RegionMut::from_atomics(req).unwrap(),
                    muenblock::PROTOCOL,
                    REQUEST_SIZE,
                    epoch_from(9),
                )
                .unwrap(),
                responses: Reader::new(
                    Region::from_atomics(resp).unwrap(),
                    muenblock::PROTOCOL,
                    RESPONSE_SIZE,
                )
                .unwrap(),
                data: RegionMut::from_atomics(data).unwrap(),
                tag: 0,
            }
        }

        fn request(&mut self, kind: RequestKind, length: u64, sector: u64) -> Request {
            self.tag += 1;
            Request::new(kind, 0, self.tag, length, sector, 0)
        }

        /// Sends `batch`, runs the server once, returns what it answered.
        fn exchange(&mut self, batch: &[Request]) -> Vec<Response> {
            for r in batch {
                self.requests.write(r).unwrap();
            }
            self.server.step();
            let mut out = Vec::new();
            loop {
                match self.responses.read::<Response>() {
                    Ok(r) => out.push(r),
                    Err(ReadError::EpochChanged) => {}
                    Err(_) => return out,
                }
            }
        }

        fn status(&mut self, request: Request) -> u64 {
            let responses = self.exchange(&[request]);
            assert_eq!(responses.len(), 1, "{responses:?}");
            assert!(responses[0].answers(&request));
            responses[0].status()
        }
    }

    #[test]
    fn writes_stay_in_the_cache_until_sync_and_a_power_loss_drops_them() {
        let mut c = Client::new();
        c.data.write_bytes(0, &[7; 1024]).unwrap();
        let write = c.request(RequestKind::Write, 1024, 3);
        assert_eq!(c.status(write), status::OK);
        assert_eq!(&c.server.image()[3 * 512..5 * 512], &[7; 1024][..]);
        assert_eq!(c.server.durable()[3 * 512], 3 ^ 0x5a, "not durable yet");
        c.server.power_loss();
        assert_eq!(c.server.image()[3 * 512], 3 ^ 0x5a, "the write is lost");
        assert_eq!(c.status(write), status::OK);
        let sync = c.request(RequestKind::Sync, 0, 0);
        assert_eq!(c.status(sync), status::OK);
        c.server.power_loss();
        assert_eq!(&c.server.durable()[3 * 512..5 * 512], &[7; 1024][..]);
        assert_eq!(c.server.stats.restarts, 2);
    }

    #[test]
    fn chosen_errors_change_nothing() {
        let mut c = Client::new();
        c.server.fail_sector = Some(10);
        c.data.write_bytes(0, &[1; 2048]).unwrap();
        let image = c.server.image();
        let write = c.request(RequestKind::Write, 2048, 8);
        assert_eq!(c.status(write), status::EIO);
        let other = c.request(RequestKind::Write, 512, 12);
        assert_eq!(c.status(other), status::OK);
        assert_eq!(c.server.image()[..12 * 512], image[..12 * 512]);
        c.server.sync_status = status::SYNC_FAILED;
        let sync = c.request(RequestKind::Sync, 0, 0);
        assert_eq!(c.status(sync), status::SYNC_FAILED);
        assert_eq!(
            c.server.durable()[12 * 512],
            12 ^ 0x5a,
            "a failed sync flushes nothing"
        );
    }

    #[test]
    fn a_batch_is_answered_in_reverse_with_stray_responses_and_recorded() {
        let mut c = Client::new();
        c.server.reverse = true;
        c.server.stray = true;
        c.server.record = true;
        let batch: Vec<Request> = (0..4)
            .map(|i| c.request(RequestKind::Read, 512, i))
            .collect();
        let responses = c.exchange(&batch);
        assert_eq!(responses.len(), 12, "one answer and two strays each");
        let answers: Vec<u32> = responses
            .iter()
            .filter(|r| batch.iter().any(|q| r.answers(q)))
            .map(Response::tag)
            .collect();
        let mut tags: Vec<u32> = batch.iter().map(Request::tag).collect();
        tags.reverse();
        assert_eq!(answers, tags);
        assert_eq!(c.server.stats.stray, 8);
        assert_eq!(c.server.requests_seen, batch);
        assert_eq!(c.server.largest_batch, 4);
    }

    #[test]
    fn a_silent_server_drops_what_it_reads() {
        let mut c = Client::new();
        c.server.silent = true;
        let read = c.request(RequestKind::Read, 512, 0);
        assert!(c.exchange(&[read]).is_empty());
        assert_eq!(c.server.stats.dropped, 1);
    }

    #[test]
    fn invalid_requests_are_refused_and_counted() {
        let mut c = Client::new();
        for (length, sector) in [(0, 0), (100, 0), (512, 64), (17 * 512, 0)] {
            let r = c.request(RequestKind::Write, length, sector);
            assert_eq!(c.status(r), status::ENOTSUP, "{length} bytes at {sector}");
        }
        assert_eq!(c.server.stats.refused, 4);
    }

    #[test]
    #[should_panic(expected = "a request the contract forbids")]
    fn a_strict_server_fails_at_a_request_it_would_refuse() {
        let mut c = Client::new();
        c.server.strict = true;
        let r = c.request(RequestKind::Read, 512, 64);
        c.exchange(&[r]);
    }
}
