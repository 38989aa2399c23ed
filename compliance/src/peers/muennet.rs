//! A muennet peer on channels in ordinary memory, and a [`MuenNet`] wired to it.

use std::sync::atomic::AtomicU64;

use muen_channel::protocol::muennet::{self, Element};
use muen_channel::{epoch_from, Field, ReadError, Reader, Region, RegionMut, Writer};
use muen_sinfo::MemoryKind;
use muen_subject::device::FRAME_MAX;
use muen_subject::net::MuenNet;

use crate::net::{NetFault, NetPeer};
use muen_sim::{memory, page, shared, SimSys};

/// A protocol identifier that is not muennet's, for [`NetFault::Incompatible`].
const OTHER_PROTOCOL: u64 = 0x0bad_0bad_0bad_0bad;

/// The peer of a muennet device: writer of `<dev>|in`, reader of `<dev>|out`.
pub struct ChannelNetPeer {
    input: &'static [AtomicU64],
    to_device: Option<Writer<'static>>,
    from_device: Reader<'static>,
    epoch: u64,
    /// Elements read from `<dev>|out` with an invalid length field.
    pub bad_elements: u64,
}

impl ChannelNetPeer {
    /// A peer writing `input` (`<dev>|in`, initialised here) and reading `output`
    /// (`<dev>|out`, which the device initialises).
    ///
    /// # Panics
    ///
    /// If the regions cannot hold a muennet channel (a test bug).
    pub fn new(input: &'static [AtomicU64], output: &'static [AtomicU64]) -> Self {
        let epoch = 0x7000;
        let to_device = Writer::init(
            RegionMut::from_atomics(input).expect("an input region"),
            muennet::PROTOCOL,
            muennet::ELEMENT_SIZE,
            epoch_from(epoch),
        )
        .expect("the input region holds a muennet channel");
        let from_device = Reader::new(
            Region::from_atomics(output).expect("an output region"),
            muennet::PROTOCOL,
            muennet::ELEMENT_SIZE,
        )
        .expect("the output region holds a muennet channel");
        ChannelNetPeer {
            input,
            to_device: Some(to_device),
            from_device,
            epoch,
            bad_elements: 0,
        }
    }

    fn writer(&mut self) -> &mut Writer<'static> {
        self.to_device
            .as_mut()
            .expect("the peer always has a writer")
    }

    /// Reinitialises `<dev>|in` with a new epoch for `protocol`.
    fn reinit(&mut self, protocol: u64) {
        self.epoch += 1;
        let region = match self.to_device.take() {
            Some(w) => w.deactivate(),
            None => RegionMut::from_atomics(self.input).expect("an input region"),
        };
        self.to_device = Some(
            Writer::init(
                region,
                protocol,
                muennet::ELEMENT_SIZE,
                epoch_from(self.epoch),
            )
            .expect("the input region holds a muennet channel"),
        );
    }
}

impl<D: ?Sized> NetPeer<D> for ChannelNetPeer {
    fn send(&mut self, _dev: &mut D, frame: &[u8]) {
        let element = Element::new(frame).expect("the suite sends frames of at most 1514 bytes");
        // The writer has the element's size: the write cannot fail.
        let _ = self.writer().write(&element);
    }

    fn collect(&mut self, _dev: &mut D) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        loop {
            match self.from_device.read::<Element>() {
                Ok(e) => match e.frame() {
                    Ok(f) => frames.push(f.to_vec()),
                    // Hand the whole element on: it is no frame the device sent.
                    Err(_) => {
                        self.bad_elements += 1;
                        frames.push(zerocopy::IntoBytes::as_bytes(&e).to_vec());
                    }
                },
                Err(
                    ReadError::EpochChanged
                    | ReadError::Overrun { .. }
                    | ReadError::Misbehaviour(_),
                ) => {}
                Err(_) => break,
            }
        }
        frames
    }

    fn capacity(&self) -> (usize, usize) {
        let elements = |bytes: usize| (bytes - 64) / muennet::ELEMENT_SIZE;
        let input = std::mem::size_of_val(self.input);
        let output = self.from_device.region().len();
        (elements(input), elements(output))
    }

    fn restart(&mut self, _dev: &mut D) -> bool {
        self.reinit(muennet::PROTOCOL);
        // A restarted peer does not replay what it had not read.
        let _ = self.from_device.drain();
        true
    }

    fn misbehave(&mut self, _dev: &mut D, fault: NetFault) -> bool {
        match fault {
            NetFault::ZeroLength | NetFault::OversizeLength => {
                let mut raw = [0xeeu8; muennet::ELEMENT_SIZE];
                let length: u16 = if fault == NetFault::ZeroLength {
                    0
                } else {
                    FRAME_MAX as u16 + 1
                };
                raw[FRAME_MAX..].copy_from_slice(&length.to_le_bytes());
                let _ = self.writer().write_bytes(&raw);
            }
            NetFault::CounterRewind => {
                // Publish one more element, then move the counter back behind it.
                let _ = self
                    .writer()
                    .write(&Element::new(&[0xcc; 64]).expect("64 bytes"));
                RegionMut::from_atomics(self.input)
                    .expect("an input region")
                    .store(Field::Wc, 0);
            }
            NetFault::Incompatible => self.reinit(OTHER_PROTOCOL),
        }
        true
    }
}

/// A [`MuenNet`] of subject `compliance`, device `net0`, on two channels of
/// `channel_bytes` each (with the `net0|out` event 2 and vector 33 for `net0|in`), and
/// its peer.
///
/// # Panics
///
/// If the channels are too small for one muennet element (a test bug).
pub fn muennet(
    channel_bytes: usize,
) -> (MuenNet<'static, SimSys>, ChannelNetPeer, &'static SimSys) {
    let input = shared(channel_bytes);
    let output = shared(channel_bytes);
    let info = page("compliance", |b| {
        b.memory("net0|in", memory(input, MemoryKind::SubjectChannel, false))
            .and_then(|b| b.memory("net0|out", memory(output, MemoryKind::SubjectChannel, true)))
            .and_then(|b| b.event("net0|out", 2))
            .and_then(|b| b.vector("net0|in", 33))
            .expect("valid resources");
    });
    let peer = ChannelNetPeer::new(input, output);
    let sys = SimSys::leaked();
    // SAFETY: the page names the leaked buffers above, alive forever and used by no one
    // else but the peer, through atomic accesses.
    let dev = unsafe { MuenNet::acquire(sys, &info, "net0") }.expect("the device is complete");
    (dev, peer, sys)
}
