//! `muenblock`: block device requests to Muen's AHCI driver and its responses.
//!
//! A client writes [`Request`]s into its request channel (and triggers the channel's
//! event) and reads [`Response`]s from its response channel; data moves through a
//! separate shared buffer that both map. Responses echo kind, device and tag.

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::header::{ring_elements, HEADER_SIZE};

/// Protocol identifier of both channels (bytes in memory `3d 6f 51 53 44 68 55 51`;
/// read big-endian it is the ASCII text `QUhDSQo=`).
pub const PROTOCOL: u64 = 0x5155_6844_5351_6f3d;

/// Size of a request element.
pub const REQUEST_SIZE: usize = size_of::<Request>();
/// Size of a response element.
pub const RESPONSE_SIZE: usize = size_of::<Response>();
/// Size of the request channel region.
pub const REQUEST_REGION_SIZE: usize = 0x8000;
/// Size of the response channel region.
pub const RESPONSE_REGION_SIZE: usize = 0x4000;
/// Elements in the request ring (the server checks this exact count).
pub const REQUEST_ELEMENTS: u64 = 1022;
/// Elements in the response ring (the client's reader checks this exact count).
pub const RESPONSE_ELEMENTS: u64 = 1020;

const _: () =
    assert!(HEADER_SIZE + REQUEST_SIZE * REQUEST_ELEMENTS as usize == REQUEST_REGION_SIZE);
const _: () =
    assert!(HEADER_SIZE + RESPONSE_SIZE * RESPONSE_ELEMENTS as usize == RESPONSE_REGION_SIZE);
const _: () = assert!(matches!(
    ring_elements(REQUEST_REGION_SIZE, REQUEST_SIZE),
    Some(REQUEST_ELEMENTS)
));
const _: () = assert!(matches!(
    ring_elements(RESPONSE_REGION_SIZE, RESPONSE_SIZE),
    Some(RESPONSE_ELEMENTS)
));

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum RequestKind {
    /// No operation.
    None = 0x00,
    /// Read `length` bytes from the device into the buffer.
    Read = 0x01,
    /// Write `length` bytes from the buffer to the device.
    Write = 0x02,
    /// Discard (trim) blocks.
    Discard = 0x03,
    /// Flush the device's caches. Status 0 OK, 1 failure.
    Sync = 0x04,
    /// Copy raw SMART data into the buffer. Status: [`smart`] codes, 0 on failure.
    GetSmart = 0x05,
    /// Status = number of blocks of the device.
    MediaBlocks = 0x10,
    /// Status = block size in bytes.
    BlockLength = 0x11,
    /// Defined by the protocol; Muen's AHCI driver does not answer it.
    MaxRequests = 0x19,
    /// Status = most blocks per Read/Write/Discard request.
    MaxBlocksCount = 0x1a,
    /// Status = number of devices behind this channel pair.
    MaxDevices = 0x1b,
    /// Reset the device state; status 0. Collected requests are executed without
    /// responses.
    Reset = 0x1f,
}

impl RequestKind {
    /// Every kind, in numeric order.
    pub const ALL: [RequestKind; 12] = [
        RequestKind::None,
        RequestKind::Read,
        RequestKind::Write,
        RequestKind::Discard,
        RequestKind::Sync,
        RequestKind::GetSmart,
        RequestKind::MediaBlocks,
        RequestKind::BlockLength,
        RequestKind::MaxRequests,
        RequestKind::MaxBlocksCount,
        RequestKind::MaxDevices,
        RequestKind::Reset,
    ];

    /// The kind with this wire value, if any.
    pub fn from_u16(value: u16) -> Option<Self> {
        RequestKind::ALL
            .iter()
            .copied()
            .find(|k| *k as u16 == value)
    }

    /// Whether the request moves data through the shared buffer.
    pub const fn is_io(self) -> bool {
        matches!(
            self,
            RequestKind::Read | RequestKind::Write | RequestKind::Discard
        )
    }
}

/// Status values in [`Response::status`].
pub mod status {
    /// Success (I/O, Sync, Reset).
    pub const OK: u64 = 0;
    /// Operation not supported, or device ID out of range.
    pub const ENOTSUP: u64 = 1;
    /// I/O error.
    pub const EIO: u64 = 10;
    /// Sync failed.
    pub const SYNC_FAILED: u64 = 1;
}

/// Status values of a [`RequestKind::GetSmart`] response.
pub mod smart {
    /// The request failed.
    pub const FAILED: u64 = 0;
    /// SMART status good.
    pub const OK: u64 = 1;
    /// A threshold is exceeded.
    pub const THRESHOLD_EXCEEDED: u64 = 2;
    /// Status undefined.
    pub const UNDEFINED: u64 = 3;
}

/// A request kind value not in [`RequestKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKind(pub u16);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown muenblock request kind {:#x}", self.0)
    }
}

/// A request (32 bytes).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Request {
    kind: U16,
    device: U16,
    tag: U32,
    length: U64,
    device_offset: U64,
    buffer_offset: U64,
}

const _: () = assert!(size_of::<Request>() == 32);
const _: () = assert!(offset_of!(Request, tag) == 4);
const _: () = assert!(offset_of!(Request, length) == 8);
const _: () = assert!(offset_of!(Request, device_offset) == 16);
const _: () = assert!(offset_of!(Request, buffer_offset) == 24);

impl Request {
    /// A request. For I/O, `length` is in bytes (a multiple of the block length),
    /// `device_offset` the start sector as Muen's AHCI driver interprets it, and
    /// `buffer_offset` a byte offset into the shared data buffer; all three are 0 for
    /// other kinds.
    pub fn new(
        kind: RequestKind,
        device: u16,
        tag: u32,
        length: u64,
        device_offset: u64,
        buffer_offset: u64,
    ) -> Self {
        Request {
            kind: (kind as u16).into(),
            device: device.into(),
            tag: tag.into(),
            length: length.into(),
            device_offset: device_offset.into(),
            buffer_offset: buffer_offset.into(),
        }
    }

    /// A request without data (`length`, offsets 0).
    pub fn simple(kind: RequestKind, device: u16, tag: u32) -> Self {
        Request::new(kind, device, tag, 0, 0, 0)
    }

    /// The request kind, validated.
    pub fn kind(&self) -> Result<RequestKind, UnknownKind> {
        let raw = self.kind.get();
        RequestKind::from_u16(raw).ok_or(UnknownKind(raw))
    }

    /// The device ID.
    pub fn device(&self) -> u16 {
        self.device.get()
    }

    /// The client's tag.
    pub fn tag(&self) -> u32 {
        self.tag.get()
    }

    /// Length in bytes.
    pub fn length(&self) -> u64 {
        self.length.get()
    }

    /// Device offset (start sector, see [`Request::new`]).
    pub fn device_offset(&self) -> u64 {
        self.device_offset.get()
    }

    /// Offset into the shared data buffer.
    pub fn buffer_offset(&self) -> u64 {
        self.buffer_offset.get()
    }

    /// Whether `[buffer_offset, buffer_offset + length)` lies inside a data buffer of
    /// `buffer_size` bytes (checked arithmetic); a server must check this before
    /// touching the buffer.
    pub fn buffer_range_fits(&self, buffer_size: u64) -> bool {
        self.buffer_offset()
            .checked_add(self.length())
            .is_some_and(|end| end <= buffer_size)
    }
}

/// A response (16 bytes).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Response {
    kind: U16,
    device: U16,
    tag: U32,
    status: U64,
}

const _: () = assert!(size_of::<Response>() == 16);
const _: () = assert!(offset_of!(Response, tag) == 4);
const _: () = assert!(offset_of!(Response, status) == 8);

impl Response {
    /// The response to `request` with `status` (kind, device and tag are copied).
    pub fn to(request: &Request, status: u64) -> Self {
        Response {
            kind: request.kind,
            device: request.device,
            tag: request.tag,
            status: status.into(),
        }
    }

    /// The request kind it answers, validated.
    pub fn kind(&self) -> Result<RequestKind, UnknownKind> {
        let raw = self.kind.get();
        RequestKind::from_u16(raw).ok_or(UnknownKind(raw))
    }

    /// The device ID.
    pub fn device(&self) -> u16 {
        self.device.get()
    }

    /// The tag of the request it answers.
    pub fn tag(&self) -> u32 {
        self.tag.get()
    }

    /// Status code or result value (meaning depends on the kind).
    pub fn status(&self) -> u64 {
        self.status.get()
    }

    /// Whether this answers `request` (same kind, device and tag).
    pub fn answers(&self, request: &Request) -> bool {
        self.kind == request.kind && self.device == request.device && self.tag == request.tag
    }
}

impl core::error::Error for UnknownKind {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_is_the_documented_text() {
        assert_eq!(
            PROTOCOL.to_le_bytes(),
            [0x3d, 0x6f, 0x51, 0x53, 0x44, 0x68, 0x55, 0x51]
        );
        assert_eq!(&PROTOCOL.to_be_bytes(), b"QUhDSQo=");
    }

    #[test]
    fn request_and_response_layouts() {
        let r = Request::new(RequestKind::Write, 1, 0x1000, 0x2000, 34, 0x10_0000);
        let b = r.as_bytes();
        assert_eq!(&b[0..2], &[2, 0]);
        assert_eq!(&b[2..4], &[1, 0]);
        assert_eq!(&b[4..8], &0x1000u32.to_le_bytes());
        assert_eq!(&b[8..16], &0x2000u64.to_le_bytes());
        assert_eq!(&b[16..24], &34u64.to_le_bytes());
        assert_eq!(&b[24..32], &0x10_0000u64.to_le_bytes());
        let resp = Response::to(&r, status::EIO);
        assert_eq!(
            resp.as_bytes(),
            &[2, 0, 1, 0, 0, 0x10, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0]
        );
        assert!(resp.answers(&r));
        assert!(!resp.answers(&Request::new(RequestKind::Write, 1, 0x1001, 0x2000, 34, 0)));
        assert_eq!(resp.kind(), Ok(RequestKind::Write));
        assert!(r.buffer_range_fits(0x10_2000));
        assert!(!r.buffer_range_fits(0x10_1fff));
        let evil = Request::new(RequestKind::Read, 0, 0, u64::MAX, 0, 1);
        assert!(!evil.buffer_range_fits(u64::MAX));
    }

    #[test]
    fn request_kinds_match_the_table() {
        let table = [
            (0x00, RequestKind::None),
            (0x01, RequestKind::Read),
            (0x02, RequestKind::Write),
            (0x03, RequestKind::Discard),
            (0x04, RequestKind::Sync),
            (0x05, RequestKind::GetSmart),
            (0x10, RequestKind::MediaBlocks),
            (0x11, RequestKind::BlockLength),
            (0x19, RequestKind::MaxRequests),
            (0x1a, RequestKind::MaxBlocksCount),
            (0x1b, RequestKind::MaxDevices),
            (0x1f, RequestKind::Reset),
        ];
        for (v, k) in table {
            assert_eq!(RequestKind::from_u16(v), Some(k));
            assert_eq!(Request::simple(k, 0, 0).kind(), Ok(k));
        }
        let known: usize = (0..0x400u16)
            .chain([u16::MAX])
            .filter(|&v| RequestKind::from_u16(v).is_some())
            .count();
        assert_eq!(known, table.len());
        let mut raw = Request::simple(RequestKind::None, 0, 0);
        raw.as_mut_bytes()[..2].copy_from_slice(&0x06u16.to_le_bytes());
        assert_eq!(raw.kind(), Err(UnknownKind(6)));
        assert!(RequestKind::Read.is_io() && !RequestKind::Sync.is_io());
    }
}
