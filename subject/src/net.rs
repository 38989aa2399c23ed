//! The muennet driver: Ethernet frames over a pair of Muen channels.
//!
//! Device `D` is the reader channel `D|in` (frames from the peer) and the writer
//! channel `D|out` (frames to the peer), both of memory kind `subject_channel`.
//!
//! - The writer is initialised at acquisition with a fresh epoch (the TSC, never 0),
//!   so the peer sees every restart of this subject.
//! - A received frame is copied once, out of the channel straight into the caller's
//!   buffer (`muennet::read_frame`: the element's length field, then that many bytes
//!   of its frame, checked together by muen-channel's hardened reader after the
//!   copy; the padding after the frame is never copied). A length field above 1514
//!   bytes, above the caller's buffer, or 0, drops the frame and counts it in
//!   [`NetStats::rx_dropped`]; it is never copied.
//!   Overruns (the peer wrote faster than this subject read) are counted and reading
//!   continues with the oldest frame still whole.
//! - After each transmitted frame the `D|out` event is triggered, if the policy has
//!   one (no batching: one `vmcall` per frame keeps the peer's latency minimal; a peer
//!   that is still busy simply finds several frames).
//! - The MAC address is locally administered and stable across restarts: the first
//!   six bytes of the 64-bit FNV-1a hash of `subject name, 0xff, device name`, with
//!   the multicast bit cleared and the locally-administered bit set ([`derive_mac`]).
//!   Solo5 mixes the boot time into its MAC, so its MAC changes on every boot.

use muen_abi::names::Endpoint;
use muen_channel::protocol::muennet::{self, Element};
use muen_channel::{epoch_from, Event, ReadError, Reader, Region, RegionMut, Writer};
use muen_sinfo::SubjectInfo;

use crate::device::Sys;
use crate::device::{self, AcquireError, NetDevice, NetError, NetInfo, Pollable, FRAME_MAX, MTU};

/// Elements looked at per `receive` call at most, so that a peer flooding the channel
/// with bad elements cannot keep the subject inside one call.
const RECEIVE_BUDGET: usize = 32;

/// Counters of a network device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Received elements dropped for their length field (0, above 1514 or above the
    /// buffer).
    pub rx_dropped: u64,
    /// Overruns: times the peer overwrote frames before they were read.
    pub rx_overruns: u64,
    /// Frames lost in those overruns.
    pub rx_lost: u64,
    /// Channel errors: an incompatible channel or a writer breaking the protocol.
    pub rx_errors: u64,
}

/// A network device on muennet channels.
pub struct MuenNet<'a, S: Sys + ?Sized> {
    sys: &'a S,
    rx: Reader<'a>,
    tx: Writer<'a>,
    out_event: Option<Event>,
    mac: [u8; 6],
    stats: NetStats,
}

/// The MAC address of device `device` of subject `subject`: stable, unicast, locally
/// administered (see the module documentation).
pub fn derive_mac(subject: &[u8], device: &[u8]) -> [u8; 6] {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = subject
        .iter()
        .chain(&[0xff])
        .chain(device)
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    let b = hash.to_le_bytes();
    [(b[0] & !0x01) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

impl<'a, S: Sys + ?Sized> MuenNet<'a, S> {
    /// Acquires network device `device` of the subject `info` describes.
    ///
    /// # Safety
    ///
    /// The regions `info` names are mapped at their addresses with their rights for
    /// `'a`, and nothing else in this program uses `device`'s channels.
    pub unsafe fn acquire(
        sys: &'a S,
        info: &SubjectInfo<'_>,
        device: &str,
    ) -> Result<Self, AcquireError> {
        device::check_name(device)?;
        let in_name = device::endpoint(device, Endpoint::NetIn);
        let out_name = device::endpoint(device, Endpoint::NetOut);
        let input = device::region(info, &in_name, true, false)?;
        let output = device::region(info, &out_name, true, true)?;
        let out_event = device::event(info, &out_name)?;

        let (address, len) = device::span(&in_name, &input)?;
        // SAFETY: mapped readable for 'a (contract); only this reader uses it.
        let region = unsafe { Region::new(address as *const u8, len) }.map_err(|error| {
            AcquireError::BadRegion {
                region: in_name.clone(),
                error,
            }
        })?;
        let rx =
            Reader::new(region, muennet::PROTOCOL, muennet::ELEMENT_SIZE).map_err(|error| {
                AcquireError::Channel {
                    region: in_name.clone(),
                    error,
                }
            })?;
        let (address, len) = device::span(&out_name, &output)?;
        // SAFETY: mapped writable for 'a (contract, and checked writable above); only
        // this writer uses it.
        let region = unsafe { RegionMut::new(address as *mut u8, len) }.map_err(|error| {
            AcquireError::BadRegion {
                region: out_name.clone(),
                error,
            }
        })?;
        let tx = Writer::init(
            region,
            muennet::PROTOCOL,
            muennet::ELEMENT_SIZE,
            epoch_from(sys.tsc().ticks()),
        )
        .map_err(|error| AcquireError::Channel {
            region: out_name.clone(),
            error,
        })?;
        Ok(MuenNet {
            sys,
            rx,
            tx,
            out_event,
            mac: derive_mac(info.name().as_bytes(), device.as_bytes()),
            stats: NetStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The epoch of the output channel.
    pub fn tx_epoch(&self) -> u64 {
        self.tx.epoch().get()
    }
}

impl<S: Sys + ?Sized> Pollable for MuenNet<'_, S> {
    fn has_data(&self) -> bool {
        self.rx.has_pending_data()
    }
}

impl<S: Sys + ?Sized> NetDevice for MuenNet<'_, S> {
    fn info(&self) -> NetInfo {
        NetInfo {
            mac: self.mac,
            mtu: MTU,
        }
    }

    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if buf.len() < FRAME_MAX {
            return Err(NetError::BufferTooSmall { len: buf.len() });
        }
        for _ in 0..RECEIVE_BUDGET {
            match muennet::read_frame(&mut self.rx, buf) {
                // The length field is checked once the copy is known to be whole.
                Ok(length) => match usize::from(length) {
                    len @ 1..=FRAME_MAX if len <= buf.len() => {
                        self.stats.rx_frames += 1;
                        self.stats.rx_bytes += len as u64;
                        return Ok(len);
                    }
                    _ => self.stats.rx_dropped += 1,
                },
                Err(ReadError::NoData | ReadError::Inactive) => return Err(NetError::Again),
                Err(ReadError::EpochChanged) => {}
                Err(ReadError::Overrun { lost }) => {
                    self.stats.rx_overruns += 1;
                    self.stats.rx_lost = self.stats.rx_lost.saturating_add(lost);
                }
                Err(ReadError::Misbehaviour(_)) => self.stats.rx_errors += 1,
                // The channel is refused until the peer fixes it; has_data is false
                // for it meanwhile, so pollers sleep.
                Err(ReadError::Incompatible(_) | ReadError::WrongLength { .. }) => {
                    self.stats.rx_errors += 1;
                    return Err(NetError::Again);
                }
            }
        }
        Err(NetError::Again)
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NetError> {
        if frame.is_empty() {
            return Err(NetError::EmptyFrame);
        }
        let element =
            Element::new(frame).map_err(|_| NetError::FrameTooLarge { len: frame.len() })?;
        // Cannot fail: the writer was created with the element's size.
        let _ = self.tx.write(&element);
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;
        if let Some(e) = self.out_event {
            self.sys.trigger(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
