//! The device ABI: what a network and a block device promise their users, and what
//! their drivers need from the kernel.
//!
//! [`NetDevice`] and [`BlockDevice`] are implemented by the runtime's muennet driver
//! (`muen_subject::net::MuenNet`) and muenblock client (`muen_subject::block::MuenBlock`),
//! by the compliance suite's reference devices, and by anything else that wants to be
//! a device of a Muen subject. They are shaped so that Solo5's C ABI
//! (`solo5_net_*`, `solo5_block_*`) can wrap them one to one, and their contracts are
//! precise enough for a compliance suite: every case is either success or one
//! specific error, never a silent truncation.
//!
//! The full contract, with the reasons for each rule, is `docs/device-abi.md`; the trait
//! documentation below states it rule by rule. The crate `muen-device-compliance`
//! checks an implementation against it (one check per rule, plus random operation
//! sequences against a model).
//!
//! [`Sys`] is the other side: the kernel services a driver uses (trigger an event, read
//! the TSC, wait for a vector or a deadline). The runtime implements it on Muen and in
//! the testbed; `muen-sim` implements it with a simulated clock for tests.

#![no_std]
#![deny(unsafe_code)]

pub mod channel;

use core::fmt;

use muen_abi::time::{Tsc, TscRate};
use muen_channel::{Event, ReadError};

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

/// Why a network operation did not happen. In every case nothing was consumed, sent
/// or written to the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// "No data yet": no whole frame can be returned now. Retryable: call again after
    /// the runtime's `poll` (or [`Pollable::has_data`]) reports data. Not an end of stream: a network device never ends.
    Again,
    /// `transmit`: the frame is longer than [`FRAME_MAX`]. Not retryable (the same
    /// frame is refused again); nothing was sent, in particular no truncated frame.
    FrameTooLarge {
        /// Its length.
        len: usize,
    },
    /// `transmit`: the frame is empty. Not retryable; nothing was sent.
    EmptyFrame,
    /// `receive`: the buffer is shorter than [`FRAME_MAX`], so not every frame could
    /// be returned whole. Not retryable with the same buffer; no frame was consumed
    /// (the next call with a large enough buffer returns it).
    BufferTooSmall {
        /// Its length.
        len: usize,
    },
}

impl NetError {
    /// Whether the same call may succeed later: only [`NetError::Again`]. The others
    /// are the caller's mistakes and fail the same way every time.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, NetError::Again)
    }
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

impl core::error::Error for NetError {}

/// An Ethernet device that moves whole frames (destination MAC first, no FCS).
///
/// A *frame* is 1..=[`FRAME_MAX`] bytes. The device does not look inside: it moves any
/// such bytes, pads nothing and checks no header. The rules (names as in
/// `docs/device-abi.md` and the compliance suite's `NetRule`):
///
/// - **Info.** [`NetDevice::info`] returns the same value every time: `mtu` is
///   [`MTU`] (1500), `mac` is a unicast address (bit 0 of byte 0 clear) other than
///   all zeros.
/// - **TransmitWhole.** `transmit` of a frame queues exactly that frame, whole and
///   once, and returns `Ok`. It never blocks and never waits for the peer.
/// - **TransmitEmpty.** `transmit(&[])` is [`NetError::EmptyFrame`]; nothing is sent.
/// - **TransmitOversize.** `transmit` of more than [`FRAME_MAX`] bytes is
///   [`NetError::FrameTooLarge`] with that length; nothing is sent, in particular no
///   truncated frame.
/// - **ReceiveWhole.** `receive` copies exactly one whole frame to the start of `buf`
///   and returns its length (1..=[`FRAME_MAX`]); the bytes of `buf` after it are
///   unspecified. Any buffer of at least [`FRAME_MAX`] bytes works.
/// - **ReceiveBufferTooSmall.** A buffer shorter than [`FRAME_MAX`] is
///   [`NetError::BufferTooSmall`] with its length, checked before anything else: no
///   frame is consumed and `buf` is not written.
/// - **NoData.** "No data yet" is [`NetError::Again`], returned at once. While a
///   frame is waiting, [`Pollable::has_data`] is true and `receive` returns it (never
///   `Again`). Once `receive` returned `Again`, `has_data` stays false until the peer
///   sends something. (`has_data` may be true while `receive` then returns `Again`:
///   the peer restarted, or sent only elements that are dropped.)
/// - **Order.** Frames arrive in the order they were sent, in each direction; none is
///   duplicated or altered.
/// - **Overrun.** There is no back pressure, as on a wire: a side that falls behind
///   loses whole frames (the oldest ones for muennet), never parts of frames, and
///   `transmit` still returns `Ok`. The frames that do arrive are whole, in order,
///   and after the loss the device works as before.
/// - **PeerRestart.** After the peer restarts, frames queued in either direction and
///   not yet read may be lost; frames sent after the restart flow normally. The device
///   needs no call to recover and reports no error.
/// - **PeerMisbehaviour.** Whatever the peer writes into the shared memory, the device
///   never panics, never reads or writes outside its buffers and never returns a frame
///   the peer did not send whole (an element whose length field is 0 or above
///   [`FRAME_MAX`] is dropped and counted). While the peer's channel is unusable
///   (incompatible header, counters moving backwards) `receive` returns
///   [`NetError::Again`]; it works again once the peer reinitialises. A driver may
///   bound the elements it skips per call: behind a flood of bad elements `receive`
///   may say `Again` with `has_data` still true, and the next call goes on.
///
/// Frames the peer queued before the device was acquired may be delivered.
pub trait NetDevice: Pollable {
    /// MAC address and MTU (the same every time).
    fn info(&self) -> NetInfo;

    /// Copies the next frame into `buf` (at least [`FRAME_MAX`] bytes) and returns its
    /// length; [`NetError::Again`] if none is waiting. Never blocks.
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, NetError>;

    /// Sends `frame` (1..=[`FRAME_MAX`] bytes). Never blocks.
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
///
/// The first three are *argument errors*: the call was wrong, nothing was sent,
/// nothing changed (a read buffer was not written), and the same call fails the same
/// way every time. They are checked in this order, so a call with several faults gets
/// the first that applies. The others are *device errors*: retryable, and the device
/// stays usable (it resets itself before the next operation where needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The length is 0 or not a multiple of the block size. Nothing was sent.
    BadLength {
        /// The length.
        len: u64,
    },
    /// The offset is not a multiple of the block size (and the length is valid).
    /// Nothing was sent.
    BadOffset {
        /// The offset.
        offset: u64,
    },
    /// The range reaches past the end of the device (`offset + len > capacity`,
    /// including an overflowing sum; offset and length are valid). Nothing was sent.
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Its length.
        len: u64,
        /// The device's capacity.
        capacity: u64,
    },
    /// The server did not answer in time. Retryable; the device resets itself before
    /// the next operation. The operation may or may not have taken effect (each block
    /// of the range holds its old or its new contents).
    Timeout,
    /// The server reported an error status for the request starting at byte `offset`
    /// (for Muen's AHCI driver: 1 = not supported, 10 = I/O error). Parts of the
    /// operation may have taken effect: each block of the range holds its old or its
    /// new contents. Retryable at the caller's judgement (a medium error may persist);
    /// the device stays usable.
    Device {
        /// The status.
        status: u64,
        /// Device byte offset of the failing request (0 for sync).
        offset: u64,
    },
    /// The server restarted (new response channel epoch) while requests were in
    /// flight. Retryable; the device resets itself before the next operation. The
    /// operation may or may not have taken effect, as for [`BlockError::Timeout`].
    ServerRestarted,
    /// The response channel overran or the server broke the protocol, so responses
    /// were lost. Retryable; the device resets itself before the next operation. The
    /// operation may or may not have taken effect, as for [`BlockError::Timeout`].
    Channel(ReadError),
}

impl BlockError {
    /// Whether the same call may succeed later: true for the device errors, false for
    /// the argument errors.
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

impl core::error::Error for BlockError {}

/// A block device that moves whole blocks.
///
/// Offsets and lengths are in bytes. The rules (names as in `docs/device-abi.md` and
/// the compliance suite's `BlockRule`):
///
/// - **Info.** [`BlockDevice::info`] returns the same value every time: `block_size`
///   is a power of two, at least 512; `capacity` is a multiple of it.
/// - **ZeroLength.** A zero-length `read`, `write` or `discard` is an error,
///   [`BlockError::BadLength`] `{ len: 0 }`, not a no-op: it is always a caller's
///   mistake, and at the hardware a sector count of 0 means the largest count.
/// - **LengthAlignment.** A length that is not a multiple of the block size is
///   [`BlockError::BadLength`].
/// - **OffsetAlignment.** An offset that is not a multiple of the block size is
///   [`BlockError::BadOffset`].
/// - **Range.** A range past the end (`offset + len > capacity`, also when the sum
///   overflows) is [`BlockError::OutOfRange`]; the last block itself is usable.
/// - **ErrorOrder.** The argument errors are checked in the order length, offset,
///   range. After any of them nothing was sent, nothing changed and a read buffer was
///   not written.
/// - **ReadAfterWrite.** Every call blocks (sleeping) until the whole operation
///   completed or failed; there is no "no data yet". Operations take effect in call
///   order: a completed `write` is returned by every later `read` of its blocks until
///   they are written or discarded again.
/// - **WriteIsolation.** A `write` (or `discard`) changes only the blocks of its range.
/// - **Discard.** After a completed `discard` each block of the range reads as all
///   zeros or as its previous contents, the same on every read until it is written
///   again. (A discard is a hint; a device may ignore it.)
/// - **Sync.** `sync` on a working device succeeds, with or without writes before it.
/// - **Durability.** A write is *durable* (survives a power loss or a crash of the
///   server) once a `sync` called after it completed successfully. After a power loss
///   each block holds its contents at the last completed `sync` or one of the
///   contents written (or discarded) since; blocks are never torn.
/// - **PeerRestart.** When the server restarts, operations in flight (and the next
///   one) may fail with a retryable error; a retried operation succeeds once the
///   server works. Durable data is intact; what was written since the last `sync`
///   follows the durability rule.
/// - **PeerFailure.** A server that stops answering gives [`BlockError::Timeout`]
///   (the call returns; it does not hang), an error status gives
///   [`BlockError::Device`] (its offset inside the range, on a block boundary),
///   responses that answer nothing are ignored; every one of them leaves the device
///   usable, and a failed `write` or `discard` leaves each block of its range with
///   its old or its new contents. A server's data is never taken as the answer to a
///   request it does not answer.
pub trait BlockDevice {
    /// Block size and capacity (the same every time).
    fn info(&self) -> BlockInfo;

    /// Reads `buf.len()` bytes from device offset `offset` into `buf`. On a device
    /// error the contents of `buf` are unspecified.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError>;

    /// Writes `data` at device offset `offset`; later reads return it.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError>;

    /// Makes every write completed before this call durable.
    fn sync(&mut self) -> Result<(), BlockError>;

    /// Tells the device that `len` bytes at `offset` are no longer needed: they read
    /// as zeros or as their old contents until written again.
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BlockError>;
}

/// Something a subject can wait for: a device, a channel.
pub trait Pollable {
    /// Whether data is waiting (a pure check: it consumes nothing).
    fn has_data(&self) -> bool;
}

/// The services of the kernel a device driver uses: events, time and sleeping.
///
/// The runtime implements it on its platform (Muen or the testbed's hosted mode); the
/// drivers' tests implement it with a simulated clock and an in-test peer
/// (`muen-sim`), so the drivers run unchanged against channels in ordinary memory.
pub trait Sys {
    /// Triggers `event` (`vmcall` on Muen).
    fn trigger(&self, event: Event);

    /// The current TSC reading.
    fn tsc(&self) -> Tsc;

    /// The TSC rate.
    fn tsc_rate(&self) -> TscRate;

    /// Waits once: returns when `ready()` is true, the TSC reached `deadline`, or a
    /// vector arrived (which may be unrelated: callers loop). It may also return early
    /// for no reason (a `PAUSE` round when no timer is available); it never sleeps past
    /// data that `ready()` would have seen when it was called.
    fn wait(&self, deadline: Tsc, ready: &mut dyn FnMut() -> bool);
}

impl<S: Sys + ?Sized> Sys for &S {
    fn trigger(&self, event: Event) {
        (**self).trigger(event)
    }
    fn tsc(&self) -> Tsc {
        (**self).tsc()
    }
    fn tsc_rate(&self) -> TscRate {
        (**self).tsc_rate()
    }
    fn wait(&self, deadline: Tsc, ready: &mut dyn FnMut() -> bool) {
        (**self).wait(deadline, ready)
    }
}
