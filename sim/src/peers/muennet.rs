//! The peer of a muennet device: writer of `<dev>|in`, reader of `<dev>|out`.

use std::sync::atomic::AtomicU64;

use muen_channel::protocol::muennet::{self, Element};
use muen_channel::{epoch_from, Field, ReadError, Reader, Region, RegionMut, Writer};
use muen_device::FRAME_MAX;
use muen_sinfo::{MemoryKind, SubjectInfo};
use zerocopy::IntoBytes;

use crate::{memory, page, shared};

/// The peer of a muennet device: it writes frames into the device's input channel
/// (`<dev>|in`, which it initialises) and reads the device's output channel
/// (`<dev>|out`, which the device initialises). Besides well-formed frames it can
/// restart, write elements with invalid length fields, rewind its write counter and
/// switch to another protocol.
pub struct MuennetPeer {
    input: &'static [AtomicU64],
    to_device: Option<Writer<'static>>,
    from_device: Reader<'static>,
    epoch: u64,
    /// Elements read from `<dev>|out` with an invalid length field.
    pub bad_elements: u64,
}

impl MuennetPeer {
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
        MuennetPeer {
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

    /// Writes `frame` into `<dev>|in` (overwriting the oldest unread element when the
    /// ring is full, as any writer of a SHMStream channel).
    ///
    /// # Panics
    ///
    /// If `frame` is longer than [`FRAME_MAX`] (a test bug).
    pub fn send(&mut self, frame: &[u8]) {
        let element = Element::new(frame).expect("a frame of at most 1514 bytes");
        // The writer has the element's size: the write cannot fail.
        let _ = self.writer().write(&element);
    }

    /// Writes an element whose length field is `length` (a peer's error when it is 0
    /// or above [`FRAME_MAX`]); its frame bytes are all `0xee`.
    pub fn send_length_field(&mut self, length: u16) {
        let mut raw = [0xeeu8; muennet::ELEMENT_SIZE];
        raw[FRAME_MAX..].copy_from_slice(&length.to_le_bytes());
        // The element has the channel's element size: the write cannot fail.
        let _ = self.writer().write_bytes(&raw);
    }

    /// The next element the device wrote into `<dev>|out`: its frame, or the whole
    /// element (1516 bytes, counted in [`bad_elements`](Self::bad_elements)) if its
    /// length field is invalid. `None` when there is nothing to read. A new epoch,
    /// an overrun or a broken header are skipped (the reader resynchronises).
    pub fn receive(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.from_device.read::<Element>() {
                Ok(e) => {
                    return Some(match e.frame() {
                        Ok(f) => f.to_vec(),
                        // Hand the whole element on: it is no frame the device sent.
                        Err(_) => {
                            self.bad_elements += 1;
                            e.as_bytes().to_vec()
                        }
                    });
                }
                Err(
                    ReadError::EpochChanged
                    | ReadError::Overrun { .. }
                    | ReadError::Misbehaviour(_),
                ) => {}
                Err(_) => return None,
            }
        }
    }

    /// Everything the device wrote into `<dev>|out` since the last read, as
    /// [`receive`](Self::receive) returns it.
    pub fn collect(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.receive()).collect()
    }

    /// Elements of `<dev>|in` and of `<dev>|out`.
    pub fn capacity(&self) -> (usize, usize) {
        let elements = |bytes: usize| (bytes - 64) / muennet::ELEMENT_SIZE;
        let input = std::mem::size_of_val(self.input);
        let output = self.from_device.region().len();
        (elements(input), elements(output))
    }

    /// Restarts: `<dev>|in` gets a new epoch (the device sees the restart), and what
    /// the device wrote but the peer had not read is dropped.
    pub fn restart(&mut self) {
        self.restart_with_protocol(muennet::PROTOCOL);
        let _ = self.from_device.drain();
    }

    /// Reinitialises `<dev>|in` with a new epoch for `protocol` (another protocol than
    /// muennet's is an incompatible peer).
    pub fn restart_with_protocol(&mut self, protocol: u64) {
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

    /// Moves the write counter of `<dev>|in` back to 0 without a new epoch: a broken
    /// protocol the device must survive.
    pub fn rewind_write_counter(&mut self) {
        RegionMut::from_atomics(self.input)
            .expect("an input region")
            .store(Field::Wc, 0);
    }
}

/// A muennet device `device` of subject `subject` on two channels of `channel_bytes`
/// each: the sinfo page naming `<device>|in` (read-only, vector 33) and
/// `<device>|out` (writable, with event 2 if `with_event`), and the device's peer.
///
/// # Panics
///
/// If the names are invalid or the channels are too small for one muennet element (a
/// test bug).
pub fn muennet_device(
    subject: &str,
    device: &str,
    channel_bytes: usize,
    with_event: bool,
) -> (SubjectInfo<'static>, MuennetPeer) {
    let input = shared(channel_bytes);
    let output = shared(channel_bytes);
    let (r#in, out) = (format!("{device}|in"), format!("{device}|out"));
    let info = page(subject, |b| {
        b.memory(&r#in, memory(input, MemoryKind::SubjectChannel, false))
            .and_then(|b| b.memory(&out, memory(output, MemoryKind::SubjectChannel, true)))
            .and_then(|b| b.vector(&r#in, 33))
            .expect("valid resources");
        if with_event {
            b.event(&out, 2).expect("a valid event");
        }
    });
    (info, MuennetPeer::new(input, output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use muen_channel::Misbehaviour;

    /// A peer on channels of 16 KiB, the device's writer of `<dev>|out` and its reader
    /// of `<dev>|in`.
    fn setup() -> (MuennetPeer, Writer<'static>, Reader<'static>) {
        let (input, output) = (shared(0x4000), shared(0x4000));
        let device_out = Writer::init(
            RegionMut::from_atomics(output).unwrap(),
            muennet::PROTOCOL,
            muennet::ELEMENT_SIZE,
            epoch_from(5),
        )
        .unwrap();
        let peer = MuennetPeer::new(input, output);
        let device_in = Reader::new(
            Region::from_atomics(input).unwrap(),
            muennet::PROTOCOL,
            muennet::ELEMENT_SIZE,
        )
        .unwrap();
        (peer, device_out, device_in)
    }

    fn read(reader: &mut Reader<'static>) -> Result<Vec<u8>, ReadError> {
        loop {
            match reader.read::<Element>() {
                Ok(e) => return Ok(e.frame().unwrap().to_vec()),
                Err(ReadError::EpochChanged) => {}
                Err(e) => return Err(e),
            }
        }
    }

    #[test]
    fn frames_go_both_ways_and_bad_elements_are_handed_on_whole() {
        let (mut peer, mut device_out, mut device_in) = setup();
        peer.send(&[1, 2, 3]);
        assert_eq!(read(&mut device_in), Ok(vec![1, 2, 3]));
        device_out.write(&Element::new(&[4; 60]).unwrap()).unwrap();
        let mut bad = [0u8; muennet::ELEMENT_SIZE];
        bad[FRAME_MAX..].copy_from_slice(&2000u16.to_le_bytes());
        device_out.write_bytes(&bad).unwrap();
        assert_eq!(peer.collect(), [vec![4; 60], bad.to_vec()]);
        assert_eq!(peer.bad_elements, 1);
        assert_eq!(peer.receive(), None);
        assert_eq!(peer.capacity(), (10, 10));
    }

    #[test]
    fn faults_reach_the_device_as_the_channel_shows_them() {
        let (mut peer, _device_out, mut device_in) = setup();
        peer.send_length_field(0);
        let mut raw = [0u8; muennet::ELEMENT_SIZE];
        assert_eq!(device_in.read_bytes(&mut raw), Err(ReadError::EpochChanged));
        device_in.read_bytes(&mut raw).unwrap();
        assert_eq!(&raw[FRAME_MAX..], &[0, 0]);
        peer.send(&[9]);
        peer.rewind_write_counter();
        assert!(matches!(
            device_in.read::<Element>(),
            Err(ReadError::Misbehaviour(
                Misbehaviour::WriteCounterBehind { .. }
            ))
        ));
        peer.restart();
        peer.send(&[8]);
        assert_eq!(read(&mut device_in), Ok(vec![8]));
        peer.restart_with_protocol(1);
        assert!(matches!(
            device_in.read::<Element>(),
            Err(ReadError::Incompatible(_))
        ));
    }
}
