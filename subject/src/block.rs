//! The muenblock client: a block device served by another subject (Muen's AHCI
//! driver, or the testbed's block server).
//!
//! Device `D` is the request channel `D|req` (written, with an event), the response
//! channel `D|resp` (read, with a vector) and the shared data buffer `D|data`.
//!
//! Acquisition: the request writer is initialised with a fresh epoch (the TSC), old
//! responses are drained, and the client sends `Reset` and waits for its answer. Then
//! it sends `Max_Requests`, `Max_Devices`, `Media_Blocks`, `Block_Length` and
//! `Max_Blocks_Count` back to back and matches the answers by tag. Muen's AHCI driver
//! does not answer `Max_Requests`; because it is sent *first* and servers answer
//! simple requests in order, its answer (if any) precedes the others, so once they
//! are all in, the client drains what is queued and, without an answer, uses
//! [`DEFAULT_MAX_REQUESTS`]. No timing bound is involved, so a slow server cannot
//! make the answer look missing.
//!
//! I/O: a transfer is checked (alignment, length, range) before anything is sent,
//! then split into requests of at most `Max_Blocks_Count` blocks that also fit the
//! data buffer; up to `min(Max_Requests, buffer size / request size)` requests are in
//! flight at once, each with its own slice of the buffer and its own tag. The
//! *device offset* of a request is its first sector (block number), as Muen's AHCI
//! driver interprets it (the protocol's field comment says bytes; see
//! `../shared/reference/channels.md` §6.3). Chunks are consecutive sector ranges in
//! order. (The AHCI driver merges a request into the previous one only if its device
//! offset equals the previous one plus the previous length *in bytes*, which sector
//! numbers never do: every chunk runs as its own command at the right sector.)
//!
//! Data moves through the buffer with byte-wise atomic copies (the server may write it
//! at any time). Responses are matched to requests by kind, device and tag, in any
//! order; unknown ones are counted and ignored. A server error status fails the
//! operation after every request in flight has completed (so the buffer is no longer
//! in use). A timeout, a server restart or a broken response channel fails it at
//! once and marks the device for a `Reset` before the next operation, which also
//! makes the server forget (without answering) requests still pending.

use muen_abi::names::{Endpoint, Name};
use muen_abi::time::{Duration, Tsc};
use muen_channel::protocol::muenblock::{
    self, status, Request, RequestKind, Response, REQUEST_SIZE, RESPONSE_SIZE,
};
use muen_channel::{epoch_from, Event, ReadError, Reader, Region, RegionMut, Writer};
use muen_sinfo::SubjectInfo;

use crate::device::Sys;
use crate::device::{self, AcquireError, BlockDevice, BlockError, BlockInfo, Pollable};

/// The most requests the client keeps in flight.
pub const IN_FLIGHT_LIMIT: usize = 32;

/// Requests in flight when the server does not answer `Max_Requests` (Muen's AHCI
/// driver collects up to 64 per device, so 32 never exceeds it).
pub const DEFAULT_MAX_REQUESTS: usize = 32;

/// Default time the client waits for the next response: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters of a block device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Requests sent.
    pub requests: u64,
    /// Responses matched to a request.
    pub responses: u64,
    /// Responses that matched no request in flight (late answers after a timeout,
    /// a server's garbage).
    pub stray_responses: u64,
    /// The most read/write/discard requests that were in flight at once.
    pub max_in_flight: u64,
    /// Operations that timed out.
    pub timeouts: u64,
    /// Resets sent after a failure.
    pub resets: u64,
}

/// The geometry the server reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Devices behind the channel pair (`Max_Devices`).
    pub devices: u64,
    /// Blocks of this device (`Media_Blocks`).
    pub blocks: u64,
    /// Bytes per block (`Block_Length`).
    pub block_size: u64,
    /// Most blocks per request (`Max_Blocks_Count`).
    pub max_blocks: u64,
    /// Most requests in flight (`Max_Requests`, or [`DEFAULT_MAX_REQUESTS`]).
    pub max_requests: usize,
    /// Whether the server answered `Max_Requests`.
    pub max_requests_answered: bool,
}

/// A block device on muenblock channels.
pub struct MuenBlock<'a, S: Sys + ?Sized> {
    sys: &'a S,
    name: Name,
    req: Writer<'a>,
    resp: Reader<'a>,
    data: RegionMut<'a>,
    req_event: Option<Event>,
    device: u16,
    geometry: Geometry,
    /// Bytes per read/write request, and how many of them are in flight at most.
    io_chunk: u64,
    io_slots: usize,
    next_tag: u32,
    timeout: Duration,
    needs_reset: bool,
    stats: BlockStats,
}

#[derive(Clone, Copy)]
struct InFlight {
    request: Request,
    /// Offset of the chunk in the caller's transfer.
    at: u64,
}

/// What a transfer moves.
enum Transfer<'b> {
    Read(&'b mut [u8]),
    Write(&'b [u8]),
    Discard(u64),
}

impl Transfer<'_> {
    fn len(&self) -> u64 {
        match self {
            Transfer::Read(b) => b.len() as u64,
            Transfer::Write(b) => b.len() as u64,
            Transfer::Discard(len) => *len,
        }
    }
}

const QUESTIONS: [RequestKind; 5] = [
    RequestKind::MaxRequests,
    RequestKind::MaxDevices,
    RequestKind::MediaBlocks,
    RequestKind::BlockLength,
    RequestKind::MaxBlocksCount,
];

impl<'a, S: Sys + ?Sized> MuenBlock<'a, S> {
    /// Acquires block device `device` (device ID 0 behind its channels) of the subject
    /// `info` describes, and asks the server for its geometry.
    ///
    /// # Safety
    ///
    /// The regions `info` names are mapped at their addresses with their rights for
    /// `'a`, and nothing else in this program uses `device`'s regions.
    pub unsafe fn acquire(
        sys: &'a S,
        info: &SubjectInfo<'_>,
        device: &str,
    ) -> Result<Self, AcquireError> {
        device::check_name(device)?;
        let req_name = device::endpoint(device, Endpoint::BlockRequest);
        let resp_name = device::endpoint(device, Endpoint::BlockResponse);
        let data_name = device::endpoint(device, Endpoint::BlockData);
        let req = device::region(info, &req_name, true, true)?;
        let resp = device::region(info, &resp_name, true, false)?;
        let data = device::region(info, &data_name, false, true)?;
        let req_event = device::event(info, &req_name)?;
        let bad = |region: &Name| {
            let region = region.clone();
            move |error| AcquireError::BadRegion { region, error }
        };
        let chan = |region: &Name| {
            let region = region.clone();
            move |error| AcquireError::Channel { region, error }
        };

        let (address, len) = device::span(&req_name, &req)?;
        // SAFETY: mapped writable for 'a (contract, checked writable); ours alone.
        let region = unsafe { RegionMut::new(address as *mut u8, len) }.map_err(bad(&req_name))?;
        let req = Writer::init(
            region,
            muenblock::PROTOCOL,
            REQUEST_SIZE,
            epoch_from(sys.tsc().ticks()),
        )
        .map_err(chan(&req_name))?;
        let (address, len) = device::span(&resp_name, &resp)?;
        // SAFETY: mapped readable for 'a (contract); ours alone.
        let region = unsafe { Region::new(address as *const u8, len) }.map_err(bad(&resp_name))?;
        let resp =
            Reader::new(region, muenblock::PROTOCOL, RESPONSE_SIZE).map_err(chan(&resp_name))?;
        let (address, len) = device::span(&data_name, &data)?;
        // SAFETY: mapped writable for 'a (contract, checked writable); shared only
        // with the server, through byte-wise atomic copies.
        let data = unsafe { RegionMut::new(address as *mut u8, len) }.map_err(bad(&data_name))?;

        let name = device::name(device);
        let mut dev = MuenBlock {
            sys,
            name: name.clone(),
            req,
            resp,
            data,
            req_event,
            device: 0,
            geometry: Geometry {
                devices: 0,
                blocks: 0,
                block_size: 0,
                max_blocks: 0,
                max_requests: DEFAULT_MAX_REQUESTS,
                max_requests_answered: false,
            },
            io_chunk: 0,
            io_slots: 0,
            // Tags continue from the TSC so that answers meant for an earlier
            // incarnation of this subject do not match ours.
            next_tag: sys.tsc().ticks() as u32,
            timeout: DEFAULT_TIMEOUT,
            needs_reset: true,
            stats: BlockStats::default(),
        };
        let server = |error| AcquireError::Server {
            device: name.clone(),
            error,
        };
        // What an earlier incarnation left unread is not ours.
        let _ = dev.resp.drain();
        dev.reset().map_err(server)?;
        let answers = dev.ask(&QUESTIONS, false).map_err(server)?;
        dev.configure(answers)?;
        Ok(dev)
    }

    fn configure(&mut self, answers: [Option<u64>; 5]) -> Result<(), AcquireError> {
        let bad = |field: &'static str, value: u64| AcquireError::BadGeometry {
            device: self.name.clone(),
            field,
            value,
        };
        // `ask` waits for every answer but the first, so these are present.
        let [max_requests, devices, blocks, block_size, max_blocks] =
            answers.map(|a| a.unwrap_or(0));
        if devices <= u64::from(self.device) {
            return Err(bad("Max_Devices", devices));
        }
        let buffer = self.data.len() as u64;
        if !block_size.is_power_of_two() || !(512..=buffer).contains(&block_size) {
            return Err(bad("Block_Length", block_size));
        }
        if blocks.checked_mul(block_size).is_none() {
            return Err(bad("Media_Blocks", blocks));
        }
        if max_blocks == 0 {
            return Err(bad("Max_Blocks_Count", max_blocks));
        }
        let answered = answers[0].is_some_and(|n| n > 0);
        let max_requests = if answered {
            usize::try_from(max_requests).map_or(IN_FLIGHT_LIMIT, |n| n.min(IN_FLIGHT_LIMIT))
        } else {
            DEFAULT_MAX_REQUESTS
        };
        self.geometry = Geometry {
            devices,
            blocks,
            block_size,
            max_blocks,
            max_requests,
            max_requests_answered: answered,
        };
        let chunk_blocks = max_blocks.min(buffer / block_size);
        self.io_chunk = chunk_blocks * block_size;
        self.io_slots = max_requests.min((buffer / self.io_chunk) as usize).max(1);
        Ok(())
    }

    /// The server's answers.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The counters.
    pub fn stats(&self) -> BlockStats {
        self.stats
    }

    /// How long the client waits for the next response before giving up.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Bytes per read/write request and the requests in flight at most.
    pub fn io_window(&self) -> (u64, usize) {
        (self.io_chunk, self.io_slots)
    }

    fn deadline(&self) -> Tsc {
        self.sys
            .tsc()
            .saturating_add(self.sys.tsc_rate().ticks(self.timeout))
    }

    fn tag(&mut self) -> u32 {
        let t = self.next_tag;
        self.next_tag = t.wrapping_add(1);
        t
    }

    fn send(&mut self, request: &Request) {
        // Cannot fail: the writer was created with the request's size.
        let _ = self.req.write(request);
        self.stats.requests += 1;
    }

    fn notify(&self) {
        if let Some(e) = self.req_event {
            self.sys.trigger(e);
        }
    }

    /// The next response; waits (sleeping) until `deadline`. A new server epoch is an
    /// error unless `allow_restart`.
    fn next_response(
        &mut self,
        deadline: Tsc,
        allow_restart: bool,
    ) -> Result<Response, BlockError> {
        loop {
            match self.resp.read::<Response>() {
                Ok(r) => return Ok(r),
                Err(ReadError::NoData | ReadError::Inactive) => {
                    if self.sys.tsc() >= deadline {
                        self.stats.timeouts += 1;
                        self.needs_reset = true;
                        return Err(BlockError::Timeout);
                    }
                    let resp = &self.resp;
                    self.sys.wait(deadline, &mut || resp.has_pending_data());
                }
                Err(ReadError::EpochChanged) if allow_restart => {}
                Err(ReadError::EpochChanged) => {
                    self.needs_reset = true;
                    return Err(BlockError::ServerRestarted);
                }
                Err(e) => {
                    self.needs_reset = true;
                    return Err(BlockError::Channel(e));
                }
            }
        }
    }

    /// Sends one simple request per kind, back to back, and returns the answers in the
    /// same order. Waits for all but a leading `Max_Requests` (see the module
    /// documentation).
    fn ask<const N: usize>(
        &mut self,
        kinds: &[RequestKind; N],
        allow_restart: bool,
    ) -> Result<[Option<u64>; N], BlockError> {
        let mut requests = [Request::simple(RequestKind::None, 0, 0); N];
        for (r, &kind) in requests.iter_mut().zip(kinds) {
            *r = Request::simple(kind, self.device, self.tag());
            self.send(r);
        }
        self.notify();
        let optional = |i: usize| i == 0 && kinds[0] == RequestKind::MaxRequests && N > 1;
        let mut answers = [None; N];
        let mut deadline = self.deadline();
        while (0..N).any(|i| answers[i].is_none() && !optional(i)) {
            let r = self.next_response(deadline, allow_restart)?;
            self.take_answer(&requests, &mut answers, &r);
            deadline = self.deadline();
        }
        // Whatever is queued now may still hold a late answer to Max_Requests.
        while answers[0].is_none() {
            match self.resp.read::<Response>() {
                Ok(r) => self.take_answer(&requests, &mut answers, &r),
                Err(ReadError::NoData) => break,
                Err(_) => break,
            }
        }
        Ok(answers)
    }

    fn take_answer<const N: usize>(
        &mut self,
        requests: &[Request; N],
        answers: &mut [Option<u64>; N],
        r: &Response,
    ) {
        match requests.iter().position(|q| r.answers(q)) {
            Some(i) if answers[i].is_none() => {
                answers[i] = Some(r.status());
                self.stats.responses += 1;
            }
            _ => self.stats.stray_responses += 1,
        }
    }

    /// Sends `Reset` and waits for its answer: the server forgets every request still
    /// pending (without answering it).
    pub fn reset(&mut self) -> Result<(), BlockError> {
        let [status] = self.ask(&[RequestKind::Reset], true)?;
        match status {
            Some(status::OK) => {
                self.needs_reset = false;
                Ok(())
            }
            Some(status) => Err(BlockError::Device { status, offset: 0 }),
            None => Err(BlockError::Timeout),
        }
    }

    fn recover(&mut self) -> Result<(), BlockError> {
        if self.needs_reset {
            self.stats.resets += 1;
            // Follow the server wherever its response channel is now: a server that
            // restarted with the same epoch (Muen's AHCI driver uses a constant one)
            // moved its write counter back, which the reader reports once and never
            // follows by itself (docs/channels.md); what is queued answers requests the
            // reset abandons anyway.
            let _ = self.resp.drain();
            self.reset()?;
        }
        Ok(())
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), BlockError> {
        let bs = self.geometry.block_size;
        if len == 0 || len % bs != 0 {
            return Err(BlockError::BadLength { len });
        }
        if offset % bs != 0 {
            return Err(BlockError::BadOffset { offset });
        }
        let capacity = self.geometry.blocks * bs;
        if offset.checked_add(len).is_none_or(|end| end > capacity) {
            return Err(BlockError::OutOfRange {
                offset,
                len,
                capacity,
            });
        }
        Ok(())
    }

    fn transfer(&mut self, offset: u64, mut what: Transfer<'_>) -> Result<(), BlockError> {
        let len = what.len();
        self.check(offset, len)?;
        self.recover()?;
        let bs = self.geometry.block_size;
        let (kind, chunk, slots) = match what {
            Transfer::Read(_) => (RequestKind::Read, self.io_chunk, self.io_slots),
            Transfer::Write(_) => (RequestKind::Write, self.io_chunk, self.io_slots),
            Transfer::Discard(_) => (
                RequestKind::Discard,
                self.geometry.max_blocks.saturating_mul(bs),
                self.geometry.max_requests,
            ),
        };
        let mut in_flight: [Option<InFlight>; IN_FLIGHT_LIMIT] = [None; IN_FLIGHT_LIMIT];
        let slots = slots.clamp(1, IN_FLIGHT_LIMIT);
        let mut next = 0u64;
        let mut failure = None;
        let mut deadline = self.deadline();
        loop {
            let mut sent = false;
            while failure.is_none() && next < len {
                let Some(slot) = in_flight[..slots].iter().position(Option::is_none) else {
                    break;
                };
                let n = chunk.min(len - next);
                let buffer_offset = match what {
                    Transfer::Discard(_) => 0,
                    _ => slot as u64 * chunk,
                };
                if let Transfer::Write(src) = &what {
                    // In range: slots * chunk <= buffer size (configure).
                    let _ = self.data.write_bytes(
                        buffer_offset as usize,
                        &src[next as usize..(next + n) as usize],
                    );
                }
                let request = Request::new(
                    kind,
                    self.device,
                    self.tag(),
                    n,
                    (offset + next) / bs,
                    buffer_offset,
                );
                self.send(&request);
                in_flight[slot] = Some(InFlight { request, at: next });
                next += n;
                sent = true;
            }
            let busy = in_flight.iter().flatten().count() as u64;
            if busy == 0 {
                break;
            }
            if sent {
                self.stats.max_in_flight = self.stats.max_in_flight.max(busy);
                self.notify();
            }
            let r = self.next_response(deadline, false)?;
            let Some(slot) = in_flight
                .iter()
                .position(|f| f.is_some_and(|f| r.answers(&f.request)))
            else {
                self.stats.stray_responses += 1;
                continue;
            };
            self.stats.responses += 1;
            deadline = self.deadline();
            let Some(done) = in_flight[slot].take() else {
                continue;
            };
            if r.status() != status::OK {
                failure.get_or_insert(BlockError::Device {
                    status: r.status(),
                    offset: offset + done.at,
                });
                continue;
            }
            if let Transfer::Read(dst) = &mut what {
                let at = done.at as usize;
                let n = done.request.length() as usize;
                let _ = self
                    .data
                    .read_bytes(done.request.buffer_offset() as usize, &mut dst[at..at + n]);
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

impl<S: Sys + ?Sized> Pollable for MuenBlock<'_, S> {
    fn has_data(&self) -> bool {
        self.resp.has_pending_data()
    }
}

impl<S: Sys + ?Sized> BlockDevice for MuenBlock<'_, S> {
    fn info(&self) -> BlockInfo {
        BlockInfo {
            block_size: self.geometry.block_size,
            capacity: self.geometry.blocks * self.geometry.block_size,
        }
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.transfer(offset, Transfer::Read(buf))
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        self.transfer(offset, Transfer::Write(data))
    }

    fn sync(&mut self) -> Result<(), BlockError> {
        self.recover()?;
        match self.ask(&[RequestKind::Sync], false)? {
            [Some(status::OK)] => Ok(()),
            [Some(status)] => Err(BlockError::Device { status, offset: 0 }),
            [None] => Err(BlockError::Timeout),
        }
    }

    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        self.transfer(offset, Transfer::Discard(len))
    }
}

#[cfg(test)]
mod tests;
