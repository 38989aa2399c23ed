//! The muenblock server side of the block contract: [`server_compliance`].
//!
//! A block device is only as good as its server. These rules are what a client may
//! rely on from a server (`channels.md` §6.3 plus `docs/device-abi.md`, "Block
//! servers"): it refuses what the device contract forbids with an error status, and
//! it never touches the image outside the range a valid request names, nor the data
//! buffer outside the request's buffer range.

use muen_channel::protocol::muenblock::{status, Request, RequestKind, Response};
use zerocopy::{FromBytes, IntoBytes};

use crate::pattern;
use crate::report::{ensure, fail, Check, Report, Rule};

/// The rules of a muenblock server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerRule {
    /// The geometry answers are usable: a power-of-two block length of at least 512,
    /// `Media_Blocks` covering the image, at least one block per request that fits the
    /// data buffer, at least one device; `Reset` answers 0.
    Geometry,
    /// Every request gets exactly one response, echoing kind, device and tag.
    Echo,
    /// Read, Write and Discard of length 0 are refused.
    ZeroLength,
    /// A length that is not a multiple of the block length is refused.
    LengthAlignment,
    /// A range past the end of the device (also by overflow) is refused.
    Range,
    /// A buffer range outside the data buffer (also by overflow) is refused.
    BufferBounds,
    /// An unknown request kind is answered with an error status.
    UnknownKind,
    /// A device id the server does not have is refused.
    UnknownDevice,
    /// Read and Write move exactly the named bytes between image and buffer, and
    /// nothing else.
    Transfer,
    /// Discard makes blocks read as zeros (or leaves them), and nothing else.
    Discard,
    /// Sync answers 0.
    Sync,
}

impl Rule for ServerRule {
    const ALL: &'static [ServerRule] = &[
        ServerRule::Geometry,
        ServerRule::Echo,
        ServerRule::ZeroLength,
        ServerRule::LengthAlignment,
        ServerRule::Range,
        ServerRule::BufferBounds,
        ServerRule::UnknownKind,
        ServerRule::UnknownDevice,
        ServerRule::Transfer,
        ServerRule::Discard,
        ServerRule::Sync,
    ];

    fn summary(self) -> &'static str {
        match self {
            ServerRule::Geometry => "geometry answers are usable; Reset answers 0",
            ServerRule::Echo => "one response per request, echoing kind, device and tag",
            ServerRule::ZeroLength => "zero-length I/O is refused and changes nothing",
            ServerRule::LengthAlignment => "unaligned lengths are refused and change nothing",
            ServerRule::Range => "ranges past the end are refused and change nothing",
            ServerRule::BufferBounds => {
                "buffer ranges outside the data buffer are refused and change nothing"
            }
            ServerRule::UnknownKind => "unknown kinds get an error status",
            ServerRule::UnknownDevice => "unknown devices are refused",
            ServerRule::Transfer => "Read/Write move exactly the named bytes",
            ServerRule::Discard => "Discard zeroes (or keeps) exactly its blocks",
            ServerRule::Sync => "Sync answers 0",
        }
    }
}

/// A muenblock server with its channels, as the suite drives it.
pub trait ServerHarness {
    /// Size of the shared data buffer in bytes.
    fn buffer_size(&self) -> u64;

    /// Writes `bytes` into the data buffer at `offset`.
    fn write_buffer(&mut self, offset: u64, bytes: &[u8]);

    /// Reads `len` bytes of the data buffer at `offset`.
    fn read_buffer(&mut self, offset: u64, len: usize) -> Vec<u8>;

    /// Writes `requests` into the request channel, lets the server run until it is
    /// idle, and returns every response it wrote, in order.
    fn exchange(&mut self, requests: &[Request]) -> Vec<Response>;

    /// The whole image the server serves device 0 from.
    fn image(&mut self) -> Vec<u8>;
}

/// A request of `kind`, which may be a value no [`RequestKind`] has.
pub fn raw_request(
    kind: u16,
    device: u16,
    tag: u32,
    length: u64,
    sector: u64,
    buffer: u64,
) -> Request {
    let mut bytes = [0u8; 32];
    bytes[0..2].copy_from_slice(&kind.to_le_bytes());
    bytes[2..4].copy_from_slice(&device.to_le_bytes());
    bytes[4..8].copy_from_slice(&tag.to_le_bytes());
    bytes[8..16].copy_from_slice(&length.to_le_bytes());
    bytes[16..24].copy_from_slice(&sector.to_le_bytes());
    bytes[24..32].copy_from_slice(&buffer.to_le_bytes());
    // 32 bytes is a request; every pattern is valid.
    Request::read_from_bytes(&bytes).unwrap_or_else(|_| Request::simple(RequestKind::None, 0, 0))
}

/// `request` with another tag (any kind value is kept, also an unknown one).
fn retag(request: &Request, tag: u32) -> Request {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(request.as_bytes());
    bytes[4..8].copy_from_slice(&tag.to_le_bytes());
    Request::read_from_bytes(&bytes).unwrap_or(*request)
}

/// Geometry as the server answered it.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    blocks: u64,
    block_length: u64,
    max_blocks: u64,
    devices: u64,
}

/// Checks the muenblock server behind `harness` against every server rule.
///
/// The suite writes the image (a few blocks at its start, middle and end): run it on a
/// scratch image of at least 16 blocks, with a data buffer of at least 8 blocks.
pub fn server_compliance<H: ServerHarness + ?Sized>(
    subject: &str,
    harness: &mut H,
) -> Report<ServerRule> {
    let mut report = Report::new(subject);
    let mut s = Suite {
        h: harness,
        tag: 0x5356_0000,
        geometry: None,
    };
    report.check(ServerRule::Geometry, || s.geometry());
    let Some(g) = s.geometry else {
        for &rule in &ServerRule::ALL[1..] {
            report
                .skipped
                .push((rule, "the geometry is unusable (see Geometry)".to_string()));
        }
        return report;
    };
    report.check(ServerRule::Echo, || s.echo(g));
    report.check(ServerRule::ZeroLength, || s.zero_length(g));
    report.check(ServerRule::LengthAlignment, || s.length_alignment(g));
    report.check(ServerRule::Range, || s.range(g));
    report.check(ServerRule::BufferBounds, || s.buffer_bounds(g));
    report.check(ServerRule::UnknownKind, || s.unknown_kind(g));
    report.check(ServerRule::UnknownDevice, || s.unknown_device(g));
    report.check(ServerRule::Transfer, || s.transfer(g));
    report.check(ServerRule::Discard, || s.discard(g));
    report.check(ServerRule::Sync, || s.sync());
    report
}

struct Suite<'h, H: ?Sized> {
    h: &'h mut H,
    tag: u32,
    geometry: Option<Geometry>,
}

impl<H: ServerHarness + ?Sized> Suite<'_, H> {
    fn tag(&mut self) -> u32 {
        self.tag += 1;
        self.tag
    }

    /// Sends one request and returns the status of its only response.
    fn ask(&mut self, request: Request) -> Result<u64, crate::report::Outcome> {
        let responses = self.h.exchange(&[request]);
        let mine: Vec<&Response> = responses
            .iter()
            .filter(|r| r.tag() == request.tag())
            .collect();
        match mine[..] {
            [r] if r.answers(&request) => Ok(r.status()),
            [r] => fail!("the response to {request:?} does not echo it: {r:?}"),
            [] => fail!("no response to {request:?}"),
            _ => fail!("{} responses to {request:?}", mine.len()),
        }
    }

    fn simple(&mut self, kind: RequestKind) -> Result<u64, crate::report::Outcome> {
        let tag = self.tag();
        self.ask(Request::simple(kind, 0, tag))
    }

    fn geometry(&mut self) -> Check {
        let reset = self.simple(RequestKind::Reset)?;
        ensure!(reset == status::OK, "Reset answered {reset}");
        let block_length = self.simple(RequestKind::BlockLength)?;
        let blocks = self.simple(RequestKind::MediaBlocks)?;
        let max_blocks = self.simple(RequestKind::MaxBlocksCount)?;
        let devices = self.simple(RequestKind::MaxDevices)?;
        ensure!(
            block_length.is_power_of_two() && block_length >= 512,
            "Block_Length answered {block_length}"
        );
        let image = self.h.image().len() as u64;
        ensure!(
            blocks.checked_mul(block_length) == Some(image),
            "Media_Blocks answered {blocks} blocks of {block_length} bytes for an image of {image} bytes"
        );
        let buffer = self.h.buffer_size();
        ensure!(
            max_blocks >= 1 && max_blocks.saturating_mul(block_length) <= buffer,
            "Max_Blocks_Count answered {max_blocks}: a request of that size does not fit the {buffer}-byte buffer"
        );
        ensure!(devices >= 1, "Max_Devices answered {devices}");
        ensure!(
            blocks >= 16 && buffer >= 8 * block_length,
            "the suite needs at least 16 blocks and a buffer of 8 blocks"
        );
        self.geometry = Some(Geometry {
            blocks,
            block_length,
            max_blocks,
            devices,
        });
        Ok(())
    }

    fn echo(&mut self, g: Geometry) -> Check {
        let bl = g.block_length;
        let kinds = [
            RequestKind::None,
            RequestKind::Reset,
            RequestKind::MediaBlocks,
            RequestKind::BlockLength,
            RequestKind::MaxBlocksCount,
            RequestKind::MaxDevices,
            RequestKind::Sync,
        ];
        let mut batch: Vec<Request> = kinds.iter().map(|&k| Request::simple(k, 0, 0)).collect();
        batch.push(Request::new(RequestKind::Read, 0, 0, bl, 0, 0));
        batch.push(Request::new(RequestKind::Read, 0, 0, bl, 1, bl));
        // An invalid request is answered too.
        batch.push(Request::new(RequestKind::Read, 0, 0, 0, 0, 0));
        for r in &mut batch {
            *r = retag(r, self.tag());
        }
        let responses = self.h.exchange(&batch);
        for q in &batch {
            let n = responses.iter().filter(|r| r.answers(q)).count();
            ensure!(n == 1, "{n} responses echo {q:?}");
        }
        ensure!(
            responses.len() == batch.len(),
            "{} responses to {} requests",
            responses.len(),
            batch.len()
        );
        Ok(())
    }

    /// Sends each request alone and checks that it is refused (non-zero status) and
    /// changes neither the image nor the buffer.
    fn refused(&mut self, requests: &[Request]) -> Check {
        let size = self.h.buffer_size();
        let mut fill = vec![0u8; size as usize];
        pattern::fill(&mut fill, u64::from(self.tag()));
        self.h.write_buffer(0, &fill);
        let image = self.h.image();
        for q in requests {
            let q = retag(q, self.tag());
            let status = self.ask(q)?;
            ensure!(status != status::OK, "{q:?} was answered with status 0");
            ensure!(self.h.image() == image, "{q:?} changed the image");
            ensure!(
                self.h.read_buffer(0, size as usize) == fill,
                "{q:?} changed the data buffer"
            );
        }
        Ok(())
    }

    fn io_kinds() -> [RequestKind; 3] {
        [RequestKind::Read, RequestKind::Write, RequestKind::Discard]
    }

    fn zero_length(&mut self, g: Geometry) -> Check {
        let requests: Vec<Request> = Self::io_kinds()
            .iter()
            .flat_map(|&k| {
                [
                    Request::new(k, 0, 0, 0, 0, 0),
                    Request::new(k, 0, 0, 0, g.blocks - 1, 0),
                ]
            })
            .collect();
        self.refused(&requests)
    }

    fn length_alignment(&mut self, g: Geometry) -> Check {
        let bl = g.block_length;
        let requests: Vec<Request> = Self::io_kinds()
            .iter()
            .flat_map(|&k| {
                [1, bl / 2, bl - 1, bl + 1, 2 * bl + bl / 2]
                    .map(|len| Request::new(k, 0, 0, len, 1, 0))
            })
            .collect();
        self.refused(&requests)
    }

    fn range(&mut self, g: Geometry) -> Check {
        let bl = g.block_length;
        let requests: Vec<Request> = Self::io_kinds()
            .iter()
            .flat_map(|&k| {
                [
                    (g.blocks, 1),
                    (g.blocks - 1, 2),
                    (g.blocks + 100, 1),
                    (u64::MAX, 1),
                    // The sector fits, its byte offset does not.
                    (u64::MAX / bl, 1),
                    (u64::MAX - 1, 2),
                ]
                .map(|(sector, count)| Request::new(k, 0, 0, count * bl, sector, 0))
            })
            .collect();
        self.refused(&requests)
    }

    fn buffer_bounds(&mut self, g: Geometry) -> Check {
        let bl = g.block_length;
        let size = self.h.buffer_size();
        let requests: Vec<Request> = [RequestKind::Read, RequestKind::Write]
            .iter()
            .flat_map(|&k| {
                [
                    (bl, size),
                    (bl, size - bl / 2),
                    (2 * bl, size - bl),
                    (bl, u64::MAX - 10),
                    (bl, u64::MAX - bl + 1),
                ]
                .map(|(len, buffer)| Request::new(k, 0, 0, len, 2, buffer))
            })
            .collect();
        self.refused(&requests)
    }

    fn unknown_kind(&mut self, _g: Geometry) -> Check {
        for kind in [0x06u16, 0x12, 0x20, 0x7fff, 0xffff] {
            let q = raw_request(kind, 0, 0, 512, 0, 0);
            self.refused(&[q])?;
        }
        Ok(())
    }

    fn unknown_device(&mut self, g: Geometry) -> Check {
        let bl = g.block_length;
        let device = u16::try_from(g.devices).unwrap_or(u16::MAX);
        let mut requests = Vec::new();
        for d in [device, u16::MAX] {
            for k in Self::io_kinds() {
                requests.push(Request::new(k, d, 0, bl, 0, 0));
            }
            requests.push(Request::simple(RequestKind::Sync, d, 0));
        }
        self.refused(&requests)
    }

    fn transfer(&mut self, g: Geometry) -> Check {
        let bl = g.block_length;
        let size = self.h.buffer_size();
        let count = 3.min(g.max_blocks);
        let len = count * bl;
        for (sector, buffer) in [(g.blocks / 2, 0), (1, 1000), (g.blocks - count, size - len)] {
            // Write: exactly the named image range changes, to the buffer's bytes.
            let mut data = vec![0u8; len as usize];
            pattern::fill(&mut data, u64::from(self.tag()));
            self.h.write_buffer(buffer, &data);
            let before = self.h.image();
            let tag = self.tag();
            let st = self.ask(Request::new(
                RequestKind::Write,
                0,
                tag,
                len,
                sector,
                buffer,
            ))?;
            ensure!(st == status::OK, "a valid write answered {st}");
            let after = self.h.image();
            let start = (sector * bl) as usize;
            let end = start + len as usize;
            ensure!(
                after[start..end] == data[..],
                "the written range does not hold the buffer's bytes"
            );
            ensure!(
                after[..start] == before[..start] && after[end..] == before[end..],
                "a write of sectors {sector}..{} changed the image outside them",
                sector + count
            );
            // Read into another place: exactly the named buffer range changes.
            let mut fill = vec![0u8; size as usize];
            pattern::fill(&mut fill, u64::from(self.tag()));
            self.h.write_buffer(0, &fill);
            let at = if buffer == 0 { size - len } else { 0 };
            let tag = self.tag();
            let st = self.ask(Request::new(RequestKind::Read, 0, tag, len, sector, at))?;
            ensure!(st == status::OK, "a valid read answered {st}");
            let buf = self.h.read_buffer(0, size as usize);
            let (a, b) = (at as usize, (at + len) as usize);
            ensure!(
                buf[a..b] == data[..],
                "a read did not return the written bytes"
            );
            ensure!(
                buf[..a] == fill[..a] && buf[b..] == fill[b..],
                "a read into buffer bytes {a}..{b} changed the buffer outside them"
            );
            ensure!(self.h.image() == after, "a read changed the image");
        }
        Ok(())
    }

    fn discard(&mut self, g: Geometry) -> Check {
        let bl = g.block_length as usize;
        let mut data = vec![0u8; 4 * bl];
        pattern::fill(&mut data, u64::from(self.tag()));
        self.h.write_buffer(0, &data);
        let sector = 4u64;
        let tag = self.tag();
        let st = self.ask(Request::new(
            RequestKind::Write,
            0,
            tag,
            4 * bl as u64,
            sector,
            0,
        ))?;
        ensure!(st == status::OK, "a valid write answered {st}");
        let before = self.h.image();
        let tag = self.tag();
        // Discard has no buffer: its buffer offset means nothing.
        let st = self.ask(Request::new(
            RequestKind::Discard,
            0,
            tag,
            2 * bl as u64,
            sector + 1,
            u64::MAX,
        ))?;
        ensure!(st == status::OK, "a valid discard answered {st}");
        let after = self.h.image();
        let start = (sector as usize + 1) * bl;
        let end = start + 2 * bl;
        ensure!(
            after[..start] == before[..start] && after[end..] == before[end..],
            "a discard changed the image outside its blocks"
        );
        for (i, block) in after[start..end].chunks(bl).enumerate() {
            let old = &before[start + i * bl..start + (i + 1) * bl];
            ensure!(
                block == old || block.iter().all(|&x| x == 0),
                "a discarded block holds neither zeros nor its old contents"
            );
        }
        Ok(())
    }

    fn sync(&mut self) -> Check {
        let st = self.simple(RequestKind::Sync)?;
        ensure!(st == status::OK, "Sync answered {st}");
        Ok(())
    }
}
