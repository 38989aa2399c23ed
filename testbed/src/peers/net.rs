//! The network bridge of one muennet device: the peer that Muen's Linux `nic_linux`
//! subject would be.
//!
//! - Frames from the TAP interface are written into `<dev>|in` (the testbed is its
//!   writer), a batch at a time, and then the `<dev>|in` vector is injected.
//! - When the kernel signals the `<dev>|out` event, every frame the subject wrote is
//!   read from `<dev>|out` and written to the TAP interface. A subject whose `<dev>|out`
//!   has no event (Solo5's Muen bindings never signal) is polled instead
//!   ([`OutputPolling`]): often while frames flow, seldom when idle.
//!
//! The bridge never waits for the subject: a subject that reads too slowly loses the
//! oldest frames (it sees an overrun), exactly as with a real writer. Frames the
//! subject writes are validated (a length field of 1 to 1514) before they leave. Without
//! a TAP interface, frames from the subject are counted (and recorded) and dropped.

use std::io;
use std::time::{Duration, Instant};

use muen_channel::protocol::muennet::{self, Element};
use muen_channel::{ReadError, Reader, Writer};

use crate::kernel::Injector;
use crate::os::{self, EventFd};
use crate::pcap::Pcap;
use crate::peers::tap::Tap;
use crate::peers::Stop;

/// Frames moved per batch before the bridge looks at its other descriptors again.
const BATCH: usize = 64;

/// How the bridge looks at a `<dev>|out` channel that has no event: every `busy`
/// while frames moved (either way) within the last `busy_for`, else every `idle`.
///
/// A frame from the subject waits up to one interval. A wake-up of the bridge's
/// thread costs CPU time, so the short interval lasts only while there is traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputPolling {
    /// The interval while frames flow.
    pub busy: Duration,
    /// How long after the last frame the interval stays `busy`.
    pub busy_for: Duration,
    /// The interval otherwise.
    pub idle: Duration,
}

impl OutputPolling {
    /// What the testbed uses for Solo5's polled channels: 20 µs while busy (a flood
    /// ping's round trip through test_net is then 0.1 ms under TCG; the 100 000 of
    /// Solo5's `test_net limit` take about 13 s), for 50 ms after the last frame; 1 ms
    /// when idle (the bridge's thread then costs well under 1 % of a CPU, against
    /// about 14 % polling every 20 µs all the time).
    pub const SOLO5: OutputPolling = OutputPolling {
        busy: Duration::from_micros(20),
        busy_for: Duration::from_millis(50),
        idle: Duration::from_millis(1),
    };
}

/// Counters of one device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames written to `<dev>|in`.
    pub to_subject: u64,
    /// Frames read from `<dev>|out`.
    pub from_subject: u64,
    /// Frames from the subject with an invalid length field: 0 or above 1514 (dropped).
    pub bad_frames: u64,
    /// Frames from the TAP interface longer than 1514 bytes (dropped).
    pub oversized: u64,
    /// Times `<dev>|out` lost frames (the subject restarted or its counters broke).
    pub out_overruns: u64,
    /// Frames the TAP interface refused.
    pub tap_errors: u64,
}

/// The bridge of one device.
pub struct Bridge<'m> {
    name: String,
    input: Writer<'m>,
    output: Reader<'m>,
    input_vector: Option<u8>,
    /// How to poll `<dev>|out` (`None`: when the `<dev>|out` event wakes it).
    output_poll: Option<OutputPolling>,
    tap: Option<Tap>,
    pcap: Option<Pcap>,
    /// Counters.
    pub stats: NetStats,
}

impl<'m> Bridge<'m> {
    /// A bridge for device `name` writing `input` and reading `output`.
    pub fn new(
        name: &str,
        input: Writer<'m>,
        output: muen_channel::Region<'m>,
        input_vector: Option<u8>,
        tap: Option<Tap>,
        pcap: Option<Pcap>,
    ) -> io::Result<Self> {
        let output = Reader::new(output, muennet::PROTOCOL, muennet::ELEMENT_SIZE)
            .map_err(|e| io::Error::other(format!("{name}|out: {e}")))?;
        Ok(Bridge {
            name: name.to_string(),
            input,
            output,
            input_vector,
            output_poll: None,
            tap,
            pcap,
            stats: NetStats::default(),
        })
    }

    /// The same bridge for a subject that writes `<dev>|out` without triggering an
    /// event: it looks at the channel as `polling` says.
    pub fn polling_output(mut self, polling: OutputPolling) -> Self {
        self.output_poll = Some(polling);
        self
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves frames until `stop`. `wake` is the `<dev>|out` event (never signalled for
    /// a polling bridge).
    pub fn run(&mut self, injector: &Injector<'_>, wake: &EventFd, stop: &Stop) -> io::Result<()> {
        let tap_fd = self.tap.as_ref().map_or(-1, Tap::fd);
        let mut last_frame = Instant::now();
        loop {
            let mut fds = [
                os::pollfd(stop.fd(), libc::POLLIN),
                os::pollfd(wake.fd(), libc::POLLIN),
                os::pollfd(tap_fd, libc::POLLIN),
            ];
            let timeout = self.output_poll.map(|p| {
                if last_frame.elapsed() < p.busy_for {
                    p.busy
                } else {
                    p.idle
                }
            });
            os::poll(&mut fds, timeout)?;
            if self.output_poll.is_some() {
                let moved = self.stats.from_subject;
                self.pump_out()?;
                if self.stats.from_subject != moved || os::readable(&fds[2]) {
                    last_frame = Instant::now();
                }
            } else if os::readable(&fds[1]) {
                wake.clear();
                if self.pump_out()? {
                    // More than a batch was waiting: look again soon.
                    wake.notify();
                }
            }
            if os::readable(&fds[2]) {
                self.pump_in(injector)?;
            }
            if os::readable(&fds[0]) {
                self.pump_out()?;
                if let Some(p) = &mut self.pcap {
                    p.flush()?;
                }
                return Ok(());
            }
        }
    }

    /// Moves up to a batch of frames from the TAP interface into `<dev>|in` and
    /// injects the vector. (One step of [`Bridge::run`]; tests drive it directly.)
    pub fn pump_in(&mut self, injector: &Injector<'_>) -> io::Result<()> {
        let Some(tap) = &self.tap else {
            return Ok(());
        };
        // One byte more than a frame can have, to notice longer ones.
        let mut buf = [0u8; muennet::FRAME_MAX + 1];
        let mut written = 0;
        for _ in 0..BATCH {
            let Some(n) = tap.read(&mut buf)? else { break };
            let Ok(element) = Element::new(&buf[..n.min(muennet::FRAME_MAX + 1)]) else {
                self.stats.oversized += 1;
                continue;
            };
            if let Some(p) = &mut self.pcap {
                p.record(&buf[..n])?;
            }
            // The element has the channel's element size, so the write cannot fail.
            let _ = self.input.write(&element);
            written += 1;
        }
        if written > 0 {
            self.stats.to_subject += written;
            if let Some(v) = self.input_vector {
                injector.inject(v);
            }
            if let Some(p) = &mut self.pcap {
                p.flush()?;
            }
        }
        Ok(())
    }

    /// Moves up to a ring's worth of frames from `<dev>|out` to the TAP interface.
    /// Returns whether it stopped with frames left. (One step of [`Bridge::run`];
    /// tests drive it directly.)
    pub fn pump_out(&mut self) -> io::Result<bool> {
        let mut moved = 0u64;
        let limit = self.output.elements().unwrap_or(1024).max(1);
        let mut left = true;
        for _ in 0..limit {
            let element = match self.output.read::<Element>() {
                Ok(e) => e,
                Err(ReadError::EpochChanged) => continue,
                Err(ReadError::Overrun { .. }) | Err(ReadError::Misbehaviour(_)) => {
                    self.stats.out_overruns += 1;
                    continue;
                }
                Err(_) => {
                    left = false;
                    break;
                }
            };
            // A length field of 0 is as invalid as one above 1514: a frame has at least
            // one byte, and an empty one must not reach the TAP interface or the pcap.
            let frame = match element.frame() {
                Ok(frame) if !frame.is_empty() => frame,
                _ => {
                    self.stats.bad_frames += 1;
                    continue;
                }
            };
            moved += 1;
            if let Some(p) = &mut self.pcap {
                p.record(frame)?;
            }
            if let Some(tap) = &self.tap {
                if tap.write(frame).is_err() {
                    self.stats.tap_errors += 1;
                }
            }
        }
        self.stats.from_subject += moved;
        if moved > 0 {
            if let Some(p) = &mut self.pcap {
                p.flush()?;
            }
        }
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::AtomicU64;

    use muen_channel::{epoch_from, Region, RegionMut};

    use super::*;

    fn words(bytes: usize) -> Vec<AtomicU64> {
        (0..bytes / 8).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn invalid_elements_from_the_subject_never_reach_the_tap() {
        let input = words(0x4000);
        let output = words(0x4000);
        let (tap, host) = os::seqpacket_pair().unwrap();
        let tap = Tap::from_fd(tap, "test").unwrap();
        let to_subject = Writer::init(
            RegionMut::from_atomics(&input).unwrap(),
            muennet::PROTOCOL,
            muennet::ELEMENT_SIZE,
            epoch_from(1),
        )
        .unwrap();
        let mut bridge = Bridge::new(
            "net0",
            to_subject,
            Region::from_atomics(&output).unwrap(),
            None,
            Some(tap),
            None,
        )
        .unwrap();
        // The subject's channel: length fields 0 and 1515 around a good frame.
        let mut subject = Writer::init(
            RegionMut::from_atomics(&output).unwrap(),
            muennet::PROTOCOL,
            muennet::ELEMENT_SIZE,
            epoch_from(2),
        )
        .unwrap();
        for length in [0u16, 1515] {
            let mut raw = [0x77u8; muennet::ELEMENT_SIZE];
            raw[muennet::FRAME_MAX..].copy_from_slice(&length.to_le_bytes());
            subject.write_bytes(&raw).unwrap();
        }
        subject.write(&Element::new(&[9; 60]).unwrap()).unwrap();
        bridge.pump_out().unwrap();
        let mut buf = [0u8; 2000];
        let mut got = Vec::new();
        // SAFETY: reads into a live buffer of its length.
        while let Ok(n) = os::cvt_size(unsafe {
            libc::recv(
                host.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        }) {
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, [vec![9u8; 60]], "only the valid frame reaches the TAP");
        assert_eq!(bridge.stats.bad_frames, 2);
        assert_eq!(bridge.stats.from_subject, 1);
    }
}
