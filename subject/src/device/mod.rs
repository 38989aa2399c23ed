//! The device ABI: what a network and a block device promise their users.
//!
//! [`NetDevice`] and [`BlockDevice`] are implemented by the muennet driver
//! ([`MuenNet`](crate::net::MuenNet)) and the muenblock client
//! ([`MuenBlock`](crate::block::MuenBlock)). They are shaped so that Solo5's C ABI
//! (`solo5_net_*`, `solo5_block_*`) can wrap them one to one, and their contracts are
//! precise enough for a compliance suite: every case is either success or one
//! specific error, never a silent truncation.

use core::fmt;

use muen_app::names::{Name, NameError};
use muen_channel::{ConfigError, ReadError, RegionError};
use muen_sinfo::{Memory, MemoryKind, SubjectInfo};

pub use crate::sys::Pollable;

/// Largest payload of a frame (the MTU offered to the IP layer).
pub const MTU: usize = 1500;
/// Length of the Ethernet header (no VLAN tag, no FCS).
pub const ETHERNET_HEADER: usize = 14;
/// Largest frame: [`MTU`] + [`ETHERNET_HEADER`] = 1514 bytes.
pub const FRAME_MAX: usize = MTU + ETHERNET_HEADER;

/// What a network device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetInfo {
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its MTU (always [`MTU`]).
    pub mtu: usize,
}

/// Why a network operation did not happen. Nothing was consumed or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// No frame is waiting. Retryable: call again after
    /// [`Runtime::poll`](crate::Runtime::poll) reports data.
    Again,
    /// `transmit`: the frame is longer than [`FRAME_MAX`]. Not retryable.
    FrameTooLarge {
        /// Its length.
        len: usize,
    },
    /// `transmit`: the frame is empty. Not retryable.
    EmptyFrame,
    /// `receive`: the buffer is shorter than [`FRAME_MAX`], so not every frame could
    /// be returned whole. Not retryable; nothing was read.
    BufferTooSmall {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Again => f.write_str("no frame waiting"),
            NetError::FrameTooLarge { len } => {
                write!(f, "frame of {len} bytes exceeds {FRAME_MAX}")
            }
            NetError::EmptyFrame => f.write_str("empty frame"),
            NetError::BufferTooSmall { len } => {
                write!(f, "receive buffer of {len} bytes is below {FRAME_MAX}")
            }
        }
    }
}

/// An Ethernet device that moves whole frames (destination MAC first, no FCS).
///
/// Contract:
///
/// - `receive` returns exactly one whole frame of 1..=[`FRAME_MAX`] bytes, or an
///   error; it never blocks and never truncates. The buffer must hold
///   [`FRAME_MAX`] bytes ([`NetError::BufferTooSmall`] otherwise, checked before
///   anything is consumed). "No data yet" is [`NetError::Again`]; a frame that the
///   peer announced with an impossible length is dropped (and counted by the driver),
///   never returned.
/// - `transmit` queues exactly one frame of 1..=[`FRAME_MAX`] bytes, or refuses it
///   ([`NetError::EmptyFrame`], [`NetError::FrameTooLarge`]); it never blocks. A
///   queued frame may still be lost if the peer does not keep up (the channel has no
///   back pressure, like a wire).
/// - Frames are received in the order the peer sent them, minus the ones lost.
/// - [`Pollable::has_data`] is true when `receive` may return a frame.
pub trait NetDevice: Pollable {
    /// MAC address and MTU.
    fn info(&self) -> NetInfo;

    /// Copies the next frame into `buf` and returns its length.
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, NetError>;

    /// Sends `frame`.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), NetError>;
}

/// What a block device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Bytes per block (a power of two, at least 512).
    pub block_size: u64,
    /// Capacity in bytes (a multiple of `block_size`).
    pub capacity: u64,
}

/// Why a block operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The length is 0 or not a multiple of the block size. Nothing was sent.
    BadLength {
        /// The length.
        len: u64,
    },
    /// The offset is not a multiple of the block size. Nothing was sent.
    BadOffset {
        /// The offset.
        offset: u64,
    },
    /// The range reaches past the end of the device. Nothing was sent.
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Its length.
        len: u64,
        /// The device's capacity.
        capacity: u64,
    },
    /// The server did not answer in time. Retryable; the device resets itself before
    /// the next operation. The operation may or may not have taken effect.
    Timeout,
    /// The server reported an error status for the request starting at byte `offset`
    /// (for Muen's AHCI driver: 1 = not supported, 10 = I/O error). Parts of the
    /// operation may have taken effect. Retryable at the caller's judgement.
    Device {
        /// The status.
        status: u64,
        /// Device byte offset of the failing request (0 for sync).
        offset: u64,
    },
    /// The server restarted (new response channel epoch) while requests were in
    /// flight. Retryable; the device resets itself before the next operation.
    ServerRestarted,
    /// The response channel overran or the server broke the protocol, so responses
    /// were lost. Retryable; the device resets itself before the next operation.
    Channel(ReadError),
}

impl BlockError {
    /// Whether the same call may succeed later (the argument errors never do).
    pub const fn is_retryable(&self) -> bool {
        !matches!(
            self,
            BlockError::BadLength { .. }
                | BlockError::BadOffset { .. }
                | BlockError::OutOfRange { .. }
        )
    }
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::BadLength { len } => {
                write!(
                    f,
                    "length {len} is not a positive multiple of the block size"
                )
            }
            BlockError::BadOffset { offset } => {
                write!(f, "offset {offset:#x} is not a multiple of the block size")
            }
            BlockError::OutOfRange {
                offset,
                len,
                capacity,
            } => write!(
                f,
                "{len} bytes at {offset:#x} exceed the capacity of {capacity} bytes"
            ),
            BlockError::Timeout => f.write_str("the block server did not answer in time"),
            BlockError::Device { status, offset } => {
                write!(
                    f,
                    "the block server reported status {status} at {offset:#x}"
                )
            }
            BlockError::ServerRestarted => f.write_str("the block server restarted"),
            BlockError::Channel(e) => write!(f, "response channel: {e}"),
        }
    }
}

/// A block device that moves whole blocks.
///
/// Contract:
///
/// - Offsets and lengths are in bytes and must be multiples of
///   [`BlockInfo::block_size`]; lengths must be positive; the range must lie within
///   [`BlockInfo::capacity`]. Violations are reported as [`BlockError::BadOffset`],
///   [`BlockError::BadLength`] or [`BlockError::OutOfRange`] before anything is sent.
/// - Every call blocks (sleeping, not spinning) until the whole operation completed
///   or failed; there is no "no data yet".
/// - A completed `write` is seen by every later `read`. It is *durable* (survives a
///   power loss) only once a later `sync` has completed successfully.
/// - After a completed `discard` the range reads as unspecified data (zeros or the
///   old contents) until it is written again.
/// - An error other than the argument errors leaves the range in an unspecified mix
///   of old and new contents.
pub trait BlockDevice {
    /// Block size and capacity.
    fn info(&self) -> BlockInfo;

    /// Reads `buf.len()` bytes from device offset `offset` into `buf`.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError>;

    /// Writes `data` at device offset `offset`.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError>;

    /// Makes every completed write durable.
    fn sync(&mut self) -> Result<(), BlockError>;

    /// Tells the device that `len` bytes at `offset` are no longer needed.
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BlockError>;
}

/// Why a device could not be acquired. Every variant names the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquireError {
    /// The device name breaks the naming rules.
    BadName {
        /// The name, cut to 63 bytes.
        device: Name,
        /// The rule it breaks.
        error: NameError,
    },
    /// The sinfo page has no memory region of this name.
    Missing {
        /// The logical region name.
        region: Name,
    },
    /// The region is not a channel (memory kind `subject_channel`).
    NotAChannel {
        /// The logical region name.
        region: Name,
        /// Its kind.
        kind: MemoryKind,
    },
    /// The region must be writable and is not.
    NotWritable {
        /// The logical region name.
        region: Name,
    },
    /// The region's address or size cannot be a channel or buffer.
    BadRegion {
        /// The logical region name.
        region: Name,
        /// Why.
        error: RegionError,
    },
    /// The region cannot hold the protocol's channel.
    Channel {
        /// The logical region name.
        region: Name,
        /// Why.
        error: ConfigError,
    },
    /// The event of this name has a number `vmcall` cannot carry (above 63).
    BadEvent {
        /// The logical event name.
        event: Name,
        /// Its number.
        number: u8,
    },
    /// The block server failed while the client asked for the geometry.
    Server {
        /// The device.
        device: Name,
        /// What failed.
        error: BlockError,
    },
    /// The block server answered a geometry question with an unusable value.
    BadGeometry {
        /// The device.
        device: Name,
        /// The question (`Max_Devices`, `Block_Length`, `Max_Blocks_Count`, ...).
        field: &'static str,
        /// The answer.
        value: u64,
    },
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::BadName { device, error } => {
                write!(f, "device name `{device}` {error}")
            }
            AcquireError::Missing { region } => {
                write!(f, "region `{region}`: not in the subject info page")
            }
            AcquireError::NotAChannel { region, kind } => write!(
                f,
                "region `{region}`: memory kind {kind}, expected subject_channel"
            ),
            AcquireError::NotWritable { region } => {
                write!(f, "region `{region}`: not writable, but this subject writes it")
            }
            AcquireError::BadRegion { region, error } => write!(f, "region `{region}`: {error}"),
            AcquireError::Channel { region, error } => write!(f, "region `{region}`: {error}"),
            AcquireError::BadEvent { event, number } => {
                write!(f, "event `{event}`: number {number} is above 63")
            }
            AcquireError::Server { device, error } => {
                write!(f, "block device `{device}`: {error}")
            }
            AcquireError::BadGeometry {
                device,
                field,
                value,
            } => write!(
                f,
                "block device `{device}`: the server answered {field} with {value}, which is unusable"
            ),
        }
    }
}

/// `s` as a [`Name`], cut to 63 bytes at a character boundary.
pub(crate) fn name(s: &str) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

/// The logical name of endpoint `e` of `device` (the device name was checked).
pub(crate) fn endpoint(device: &str, e: muen_app::names::Endpoint) -> Name {
    muen_app::names::endpoint_name(device, e).unwrap_or_else(|| name(device))
}

/// Checks a device name.
pub(crate) fn check_name(device: &str) -> Result<(), AcquireError> {
    muen_app::names::check_device_name(device).map_err(|error| AcquireError::BadName {
        device: name(device),
        error,
    })
}

/// The memory region `region`, which must exist, be writable if `writable`, and be a
/// channel if `channel`.
pub(crate) fn region(
    info: &SubjectInfo<'_>,
    region: &Name,
    channel: bool,
    writable: bool,
) -> Result<Memory, AcquireError> {
    let m = info.memory(region).ok_or_else(|| AcquireError::Missing {
        region: region.clone(),
    })?;
    if channel && m.kind != MemoryKind::SubjectChannel {
        return Err(AcquireError::NotAChannel {
            region: region.clone(),
            kind: m.kind,
        });
    }
    if writable && !m.writable() {
        return Err(AcquireError::NotWritable {
            region: region.clone(),
        });
    }
    Ok(m)
}

/// The event `event`, if the page has one.
pub(crate) fn event(
    info: &SubjectInfo<'_>,
    event: &Name,
) -> Result<Option<muen_channel::Event>, AcquireError> {
    match info.event(event) {
        None => Ok(None),
        Some(number) => {
            muen_channel::Event::new(number)
                .map(Some)
                .ok_or_else(|| AcquireError::BadEvent {
                    event: event.clone(),
                    number,
                })
        }
    }
}

/// Address and length of `m` as a pointer and `usize`.
pub(crate) fn span(region: &Name, m: &Memory) -> Result<(usize, usize), AcquireError> {
    match (usize::try_from(m.address), usize::try_from(m.size)) {
        (Ok(a), Ok(l)) => Ok((a, l)),
        _ => Err(AcquireError::BadRegion {
            region: region.clone(),
            error: RegionError::TooLarge,
        }),
    }
}
