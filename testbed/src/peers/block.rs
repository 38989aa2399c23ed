//! A muenblock server over an image file: the server side of `channels.md` §6.3, in the
//! place of Muen's AHCI driver.
//!
//! The subject writes requests into `<dev>|req` and triggers its event; the server
//! reads them, answers each one in `<dev>|resp` and injects the `<dev>|resp` vector
//! after each batch (a batch ends early once it has taken [`RESPONSE_DELAY_MAX`]).
//! Data moves through `<dev>|data` with `pread`/`pwrite` directly between the image
//! and the shared buffer (as the AHCI controller's DMA would); reads of
//! [`SPLIT_MIN`] or more are read in two halves at once, by the server and a helper
//! thread. After a batch the server watches the request ring for [`POLL_MAX`] before
//! it sleeps on the event again ([`Server::run`]).
//!
//! # Durability
//!
//! A Write is answered once `pwrite` returned: the data is in the host's page cache,
//! so it survives the testbed (killed or crashed), not a power loss. A Sync is
//! answered after `fdatasync`. After signalling a batch the server starts the
//! write-back of what it wrote ([`Server::start_writeback`]), which makes a later
//! Sync quicker without changing either promise.
//!
//! # What it answers
//!
//! | kind | response status |
//! |------|-----------------|
//! | Read, Write | 0 after the transfer; 10 (EIO) if the host I/O fails |
//! | Discard | 0 after punching a hole (or writing zeros where the file system cannot) |
//! | Sync | 0 after `fdatasync`; 1 if it fails |
//! | Media_Blocks | number of 512-byte blocks of the image |
//! | Block_Length | 512 |
//! | Max_Blocks_Count | blocks per Read/Write/Discard: the data buffer's size in blocks, at most 8192 (4 MiB) |
//! | Max_Devices | 1 (each device has its own channel pair) |
//! | Max_Requests | 1020, the response ring's size: more requests in flight than that would overrun the client's responses (Muen's AHCI driver does not answer this kind) |
//! | Reset | 0 (requests are executed as they arrive, so none are pending) |
//! | Get_SMART | 3, "undefined": an image file has no SMART data; the buffer is not touched |
//! | None | 0 |
//!
//! # What it refuses
//!
//! Every request is validated on a private copy before anything is done; a bad request
//! is answered with status 1 (ENOTSUP, the status Muen's driver uses for requests it
//! cannot serve) and has no other effect. Bad are: an unknown kind (Muen's driver would
//! not answer at all; the testbed answers so that the client does not wait forever), a
//! device id other than 0 (then, as in Muen's driver, 1 for I/O, Sync, Reset and None
//! and 0 for the other kinds), and for Read/Write/Discard: a length of 0, not a
//! multiple of 512 or above Max_Blocks_Count blocks; a range beyond the end of the
//! image (checked arithmetic); for Read/Write a buffer range outside `<dev>|data`.
//!
//! The device offset is a sector (block) number, as Muen's AHCI driver uses it (not a
//! byte offset, as the protocol's record comment suggests).

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use muen_channel::protocol::muenblock::{
    self, smart, status, Request, RequestKind, Response, RESPONSE_ELEMENTS,
};
use muen_channel::{ReadError, Reader, Writer};

mod transfer;

pub use transfer::SPLIT_MIN;
use transfer::{transfer_all, Direction, ReadHelper};

use crate::kernel::Injector;
use crate::memory::Memory;
use crate::os::{self, cvt, EventFd};
use crate::peers::Stop;

/// Block size of every device.
pub const BLOCK_SIZE: u64 = 512;
/// Most blocks per I/O request, if the data buffer is larger.
pub const MAX_BLOCKS: u64 = 8192;
/// Devices behind one channel pair.
pub const MAX_DEVICES: u64 = 1;
/// Requests a client may have in flight (the response ring's capacity).
pub const MAX_REQUESTS: u64 = RESPONSE_ELEMENTS;
/// How long a response may wait for the rest of its batch before the server signals
/// it (see [`Server::serve_batch`]).
pub const RESPONSE_DELAY_MAX: Duration = Duration::from_micros(50);
/// How long the server keeps watching the request ring after a batch before it sleeps
/// on the request event (see [`Server::run`]).
pub const POLL_MAX: Duration = Duration::from_micros(50);

/// An image file serving as a disk.
#[derive(Debug)]
pub struct Disk {
    file: File,
    blocks: u64,
}

impl Disk {
    /// Opens `path` read-write (a regular file or a block device) and locks it, so that
    /// two testbeds cannot serve the same image.
    pub fn open(path: &Path) -> io::Result<Disk> {
        let mut file = File::options().read(true).write(true).open(path)?;
        // SAFETY: plain flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(io::Error::other(
                "the image is in use (another testbed holds its lock)",
            ));
        }
        let size = file.seek(SeekFrom::End(0))?;
        if size % BLOCK_SIZE != 0 {
            return Err(io::Error::other(format!(
                "its size ({size} bytes) is not a multiple of {BLOCK_SIZE}"
            )));
        }
        Ok(Disk {
            file,
            blocks: size / BLOCK_SIZE,
        })
    }

    /// Number of blocks.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }
}

/// What a valid I/O request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Io {
    /// Byte offset in the image.
    pub disk_offset: u64,
    /// Bytes.
    pub length: u64,
    /// Byte offset in `<dev>|data` (0 for Discard, which has no buffer).
    pub buffer_offset: u64,
}

/// The geometry a server checks requests against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Blocks of the image.
    pub blocks: u64,
    /// Most blocks per request.
    pub max_blocks: u64,
    /// Size of `<dev>|data`.
    pub buffer_size: u64,
}

impl Geometry {
    /// The geometry of `blocks` blocks served through a buffer of `buffer_size` bytes.
    pub fn new(blocks: u64, buffer_size: u64) -> Self {
        Geometry {
            blocks,
            max_blocks: (buffer_size / BLOCK_SIZE).clamp(1, MAX_BLOCKS),
            buffer_size,
        }
    }

    /// Validates a Read, Write or Discard request (see the module documentation).
    pub fn check_io(&self, kind: RequestKind, req: &Request) -> Option<Io> {
        let length = req.length();
        if length == 0 || length % BLOCK_SIZE != 0 || length / BLOCK_SIZE > self.max_blocks {
            return None;
        }
        let end = req.device_offset().checked_add(length / BLOCK_SIZE)?;
        if end > self.blocks {
            return None;
        }
        let buffer_offset = if kind == RequestKind::Discard {
            0
        } else {
            if !req.buffer_range_fits(self.buffer_size) {
                return None;
            }
            req.buffer_offset()
        };
        Some(Io {
            // `end <= blocks`, and `blocks * 512` is the image size, so no overflow.
            disk_offset: req.device_offset() * BLOCK_SIZE,
            length,
            buffer_offset,
        })
    }
}

/// Counters of one device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Requests answered.
    pub requests: u64,
    /// Requests refused as invalid.
    pub refused: u64,
    /// Requests whose host I/O failed.
    pub failed: u64,
    /// Times the request ring lost requests (the client's counters jumped).
    pub overruns: u64,
}

/// The server of one block device.
pub struct Server<'m> {
    name: String,
    memory: &'m Memory,
    data: usize,
    requests: Reader<'m>,
    responses: Writer<'m>,
    response_vector: Option<u8>,
    disk: Option<Disk>,
    geometry: Geometry,
    /// Bytes of the image written since their write-back was last started.
    unwritten: Option<Range<u64>>,
    /// The second reader of large reads, started by the first one.
    read_helper: Option<ReadHelper>,
    /// Counters.
    pub stats: BlockStats,
}

impl<'m> Server<'m> {
    /// A server for device `name`: requests from region `request`, responses into
    /// `responses`, data in region `data` of `memory`, blocks from `disk` (none: a
    /// device with 0 blocks).
    pub fn new(
        name: &str,
        memory: &'m Memory,
        request: usize,
        responses: Writer<'m>,
        data: usize,
        response_vector: Option<u8>,
        disk: Option<Disk>,
    ) -> io::Result<Self> {
        let region = memory
            .channel(request)
            .map_err(|e| io::Error::other(format!("{name}|req: {e}")))?;
        let requests = Reader::new(region, muenblock::PROTOCOL, muenblock::REQUEST_SIZE)
            .map_err(|e| io::Error::other(format!("{name}|req: {e}")))?;
        let blocks = disk.as_ref().map_or(0, Disk::blocks);
        let geometry = Geometry::new(blocks, memory.placement(data).size);
        Ok(Server {
            name: name.to_string(),
            memory,
            data,
            requests,
            responses,
            response_vector,
            disk,
            geometry,
            unwritten: None,
            read_helper: None,
            stats: BlockStats::default(),
        })
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Serves requests until `stop`. `wake` is the `<dev>|req` event.
    ///
    /// Woken by the event, the server serves batches until the request ring has stayed
    /// empty for [`POLL_MAX`] after the last one, and only then sleeps on the event
    /// again: a client that queues its next request as soon as it sees a response (one
    /// request in flight) finds the server still watching, without the trip through
    /// the kernel's event and the server's wake-up (QEMU's I/O threads poll for the same
    /// reason, `poll-max-ns`).
    pub fn run(&mut self, injector: &Injector<'_>, wake: &EventFd, stop: &Stop) -> io::Result<()> {
        loop {
            let mut fds = [
                os::pollfd(stop.fd(), libc::POLLIN),
                os::pollfd(wake.fd(), libc::POLLIN),
            ];
            os::poll(&mut fds, None)?;
            if os::readable(&fds[0]) {
                return Ok(());
            }
            if !os::readable(&fds[1]) {
                continue;
            }
            wake.clear();
            loop {
                let (answered, more) = self.serve_batch();
                if answered > 0 {
                    if let Some(v) = self.response_vector {
                        injector.inject(v);
                    }
                }
                self.start_writeback();
                if stop.given() {
                    return Ok(());
                }
                // A request, or a change of the ring's header.
                if !more && !os::spin_until(POLL_MAX, || self.requests.has_pending_data()) {
                    break;
                }
            }
        }
    }

    /// Answers up to a ring's worth of requests. Returns how many were answered and
    /// whether requests may be left.
    ///
    /// A batch also ends after a request once it has taken [`RESPONSE_DELAY_MAX`], so
    /// that the responses so far are signalled while later requests are served: a
    /// client with several large requests in flight gets each answer as its transfer
    /// completes and can queue the next one while the server works on the others
    /// (quick requests are still answered with one vector per batch).
    pub fn serve_batch(&mut self) -> (u64, bool) {
        let mut answered = 0;
        let start = Instant::now();
        for _ in 0..muenblock::REQUEST_ELEMENTS {
            let request = match self.requests.read::<Request>() {
                Ok(r) => r,
                Err(ReadError::EpochChanged) => continue,
                Err(ReadError::Overrun { .. }) | Err(ReadError::Misbehaviour(_)) => {
                    self.stats.overruns += 1;
                    continue;
                }
                Err(_) => return (answered, false),
            };
            let status = self.answer(&request);
            // A response has the channel's element size: the write cannot fail.
            let _ = self.responses.write(&Response::to(&request, status));
            self.stats.requests += 1;
            answered += 1;
            if start.elapsed() >= RESPONSE_DELAY_MAX {
                break;
            }
        }
        (answered, true)
    }

    /// Starts writing back to the disk what the writes answered since the last call,
    /// without waiting for it (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that a
    /// later `Sync` finds most of the data on the disk already instead of writing all
    /// of it then. Called after the responses were signalled. It changes when data
    /// reaches the disk, never what a response promises: a completed Write is in the
    /// host's page cache (it survives the testbed, not a power loss), a completed
    /// Sync on the disk.
    pub fn start_writeback(&mut self) {
        let (Some(range), Some(disk)) = (self.unwritten.take(), &self.disk) else {
            return;
        };
        // SAFETY: plain sync_file_range on a descriptor we own. Its result is only a
        // hint: a failed write-back is reported by the next Sync's fdatasync.
        unsafe {
            libc::sync_file_range(
                disk.file.as_raw_fd(),
                range.start as libc::off64_t,
                (range.end - range.start) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
    }

    /// Notes that `length` bytes at `offset` of the image were written.
    fn written(&mut self, offset: u64, length: u64) {
        let (now, pending) = pending_writeback(self.unwritten.take(), offset..offset + length);
        if now.is_some() {
            self.unwritten = now;
            self.start_writeback();
        }
        self.unwritten = Some(pending);
    }

    /// The status for `req`, after doing what it asks if it is valid.
    fn answer(&mut self, req: &Request) -> u64 {
        let Ok(kind) = req.kind() else {
            self.stats.refused += 1;
            return status::ENOTSUP;
        };
        if u64::from(req.device()) >= MAX_DEVICES {
            self.stats.refused += 1;
            return match kind {
                RequestKind::None
                | RequestKind::Read
                | RequestKind::Write
                | RequestKind::Discard
                | RequestKind::Sync
                | RequestKind::Reset => status::ENOTSUP,
                _ => 0,
            };
        }
        match kind {
            RequestKind::None | RequestKind::Reset => status::OK,
            RequestKind::MediaBlocks => self.geometry.blocks,
            RequestKind::BlockLength => BLOCK_SIZE,
            RequestKind::MaxBlocksCount => self.geometry.max_blocks,
            RequestKind::MaxDevices => MAX_DEVICES,
            RequestKind::MaxRequests => MAX_REQUESTS,
            RequestKind::GetSmart => smart::UNDEFINED,
            RequestKind::Sync => {
                // fdatasync writes back what is pending, too.
                self.unwritten = None;
                match &self.disk {
                    // SAFETY: plain fdatasync on a descriptor we own.
                    Some(d) if unsafe { libc::fdatasync(d.file.as_raw_fd()) } != 0 => {
                        self.stats.failed += 1;
                        status::SYNC_FAILED
                    }
                    _ => status::OK,
                }
            }
            RequestKind::Read | RequestKind::Write | RequestKind::Discard => {
                let (Some(io), Some(_)) = (self.geometry.check_io(kind, req), &self.disk) else {
                    self.stats.refused += 1;
                    return status::ENOTSUP;
                };
                match self.transfer(kind, io) {
                    Ok(()) => {
                        if kind == RequestKind::Write {
                            self.written(io.disk_offset, io.length);
                        }
                        status::OK
                    }
                    Err(_) => {
                        self.stats.failed += 1;
                        status::EIO
                    }
                }
            }
        }
    }

    fn transfer(&mut self, kind: RequestKind, io: Io) -> io::Result<()> {
        let Some(disk) = &self.disk else {
            return Err(io::Error::other("no image"));
        };
        let fd = disk.file.as_raw_fd();
        if kind == RequestKind::Discard {
            return discard(&disk.file, io.disk_offset, io.length);
        }
        let (buffer, rest) = self
            .memory
            .range(self.data, io.buffer_offset)
            .ok_or_else(|| io::Error::other("buffer outside the data region"))?;
        // Checked by `check_io`; repeated here because the transfers below rely on it.
        let len = usize::try_from(io.length)
            .ok()
            .filter(|_| rest >= io.length)
            .ok_or_else(|| io::Error::other("buffer outside the data region"))?;
        if kind == RequestKind::Read && len >= SPLIT_MIN && self.read_helper.is_none() {
            // Without a helper thread the server reads alone.
            self.read_helper = ReadHelper::spawn(&format!("{}-read", self.name)).ok();
        }
        let direction = if kind == RequestKind::Read {
            Direction::Read
        } else {
            Direction::Write
        };
        match &self.read_helper {
            Some(helper) if direction == Direction::Read && len >= SPLIT_MIN => {
                // SAFETY: `buffer .. buffer + len` lies inside `<dev>|data` of the
                // shared mapping (checked above), which outlives the call; no Rust
                // reference to it exists, and the subject changing it meanwhile only
                // changes the bytes transferred.
                unsafe { helper.read(fd, buffer, len, io.disk_offset) }
            }
            // SAFETY: as for the read above.
            _ => unsafe { transfer_all(fd, direction, buffer, len, io.disk_offset) },
        }
    }
}

/// The write-back to start now and the range still pending after `written` was
/// written: contiguous or overlapping ranges become one, a range elsewhere is started
/// now.
fn pending_writeback(
    pending: Option<Range<u64>>,
    written: Range<u64>,
) -> (Option<Range<u64>>, Range<u64>) {
    match pending {
        None => (None, written),
        Some(r) if written.start <= r.end && written.end >= r.start => {
            (None, r.start.min(written.start)..r.end.max(written.end))
        }
        Some(r) => (Some(r), written),
    }
}

/// Deallocates `length` bytes at `offset` of `file` so that they read as zeros: a hole
/// where the file system supports it, written zeros elsewhere.
fn discard(file: &File, offset: u64, length: u64) -> io::Result<()> {
    // SAFETY: plain fallocate on a descriptor we own.
    let punched = cvt(unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            length as libc::off_t,
        )
    });
    if punched.is_ok() {
        return Ok(());
    }
    use std::os::unix::fs::FileExt;
    let zeros = vec![0u8; length.min(1 << 20) as usize];
    let mut done = 0;
    while done < length {
        let n = (length - done).min(zeros.len() as u64);
        file.write_all_at(&zeros[..n as usize], offset + done)?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(length: u64, sector: u64, buffer: u64) -> Request {
        Request::new(RequestKind::Read, 0, 7, length, sector, buffer)
    }

    #[test]
    fn written_ranges_merge_until_one_lies_elsewhere() {
        assert_eq!(pending_writeback(None, 0..512), (None, 0..512));
        // Contiguous on either side, or overlapping: one range.
        assert_eq!(pending_writeback(Some(0..512), 512..1024), (None, 0..1024));
        assert_eq!(pending_writeback(Some(512..1024), 0..512), (None, 0..1024));
        assert_eq!(
            pending_writeback(Some(0..4096), 1024..2048),
            (None, 0..4096)
        );
        // Elsewhere: the pending range is started now.
        assert_eq!(
            pending_writeback(Some(0..512), 4096..4608),
            (Some(0..512), 4096..4608)
        );
    }

    #[test]
    fn geometry_limits() {
        assert_eq!(Geometry::new(100, 0x100_0000).max_blocks, 8192);
        assert_eq!(Geometry::new(100, 0x1000).max_blocks, 8);
        assert_eq!(Geometry::new(100, 0x100).max_blocks, 1);
    }

    #[test]
    fn valid_io_is_accepted() {
        let g = Geometry::new(100, 0x2000);
        assert_eq!(
            g.check_io(RequestKind::Read, &io(1024, 98, 0x1c00)),
            Some(Io {
                disk_offset: 98 * 512,
                length: 1024,
                buffer_offset: 0x1c00
            })
        );
        // Discard has no buffer: its buffer offset is not looked at.
        let d = Request::new(RequestKind::Discard, 0, 1, 512, 5, u64::MAX);
        assert_eq!(
            g.check_io(RequestKind::Discard, &d),
            Some(Io {
                disk_offset: 2560,
                length: 512,
                buffer_offset: 0
            })
        );
    }

    #[test]
    fn bad_io_is_refused() {
        let g = Geometry::new(100, 0x2000);
        let bad = [
            io(0, 0, 0),                // empty
            io(100, 0, 0),              // not a multiple of the block size
            io(513, 0, 0),              // not a multiple of the block size
            io(17 * 512, 0, 0),         // more than max_blocks (16)
            io(1024, 99, 0),            // crosses the end of the image
            io(512, 100, 0),            // starts at the end
            io(512, u64::MAX, 0),       // sector overflow
            io(512, u64::MAX / 512, 0), // byte offset would overflow
            io(1024, 0, 0x1e00),        // buffer crosses the end of |data
            io(512, 0, 0x2000),         // buffer starts at the end
            io(512, 0, u64::MAX - 100), // buffer range overflows
        ];
        for (i, r) in bad.iter().enumerate() {
            assert_eq!(g.check_io(RequestKind::Write, r), None, "case {i}");
        }
    }
}
