//! `muennet`: Ethernet frames between a subject and Muen's Linux network driver.
//!
//! One element carries one frame without FCS, zero padded to 1514 bytes, followed by
//! its length. A device has an input channel (`<dev>|in`, read) and an output channel
//! (`<dev>|out`, written).

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::little_endian::U16;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::ReadError;
use crate::reader::Reader;

/// Protocol identifier (bytes in memory `14 e8 08 9b 54 5c de 7a`).
pub const PROTOCOL: u64 = 0x7ade_5c54_9b08_e814;

/// Largest frame: 1500 bytes of payload plus the 14-byte Ethernet header.
pub const FRAME_MAX: usize = 1514;

/// MTU offered to the IP layer.
pub const MTU: usize = 1500;

/// Size of one element.
pub const ELEMENT_SIZE: usize = size_of::<Element>();

/// Offset of the length field in an element.
pub const LENGTH_OFFSET: usize = offset_of!(Element, length);

/// One frame as it lies in the channel (1516 bytes, no padding).
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Element {
    frame: [u8; FRAME_MAX],
    length: U16,
}

const _: () = assert!(size_of::<Element>() == 1516);
const _: () = assert!(offset_of!(Element, length) == 1514);

/// A frame longer than [`FRAME_MAX`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTooLong {
    /// Length of the frame (the value of the length field, for a received element).
    pub length: usize,
}

impl fmt::Display for FrameTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame of {} bytes exceeds {FRAME_MAX}", self.length)
    }
}

impl Element {
    /// An element carrying `frame`, zero padded. Fails for frames longer than
    /// [`FRAME_MAX`].
    pub fn new(frame: &[u8]) -> Result<Self, FrameTooLong> {
        let mut e = Element::new_zeroed();
        e.set_frame(frame)?;
        Ok(e)
    }

    /// Replaces the frame (the bytes past it keep their old values; the length field
    /// says how many are valid).
    pub fn set_frame(&mut self, frame: &[u8]) -> Result<(), FrameTooLong> {
        let length = frame.len();
        let Some(dst) = self.frame.get_mut(..length) else {
            return Err(FrameTooLong { length });
        };
        dst.copy_from_slice(frame);
        // `length <= 1514` fits a u16.
        self.length = U16::new(length as u16);
        Ok(())
    }

    /// The frame, validated: the length field comes from the peer, and a value beyond
    /// [`FRAME_MAX`] is the peer's error.
    pub fn frame(&self) -> Result<&[u8], FrameTooLong> {
        let length = usize::from(self.length.get());
        self.frame.get(..length).ok_or(FrameTooLong { length })
    }

    /// The raw length field.
    pub fn length_field(&self) -> u16 {
        self.length.get()
    }
}

/// Reads the next element of `reader` (a muennet channel) straight into `frame`: its
/// length field, then that many bytes of its frame, checked together as one element
/// ([`Reader::read_with`]). One copy of the frame, and none of the padding after it.
///
/// Returns the length field, which comes from the peer: for a value of 0, above
/// [`FRAME_MAX`] or above `frame.len()` nothing is copied (the frame is not whole or
/// does not fit). On an error the contents of `frame` are unspecified.
pub fn read_frame(reader: &mut Reader<'_>, frame: &mut [u8]) -> Result<u16, ReadError> {
    if reader.element_size() != ELEMENT_SIZE {
        return Err(ReadError::WrongLength {
            element_size: reader.element_size(),
            found: ELEMENT_SIZE,
        });
    }
    reader.read_with(|element| {
        let mut length = [0u8; 2];
        // In range: the element is ELEMENT_SIZE bytes (checked above).
        let _ = element.copy_to(LENGTH_OFFSET, &mut length);
        let field = u16::from_le_bytes(length);
        // The field may be torn (the writer racing this copy); then the read fails
        // afterwards, and the bounds keep the copy inside both the element and `frame`.
        let n = usize::from(field);
        if n <= FRAME_MAX {
            if let Some(dst) = frame.get_mut(..n) {
                let _ = element.copy_to(0, dst);
            }
        }
        field
    })
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("muennet::Element")
            .field("length", &self.length.get())
            .finish_non_exhaustive()
    }
}

impl core::error::Error for FrameTooLong {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::ring_elements;

    #[test]
    fn layout_and_identifier() {
        assert_eq!(
            PROTOCOL.to_le_bytes(),
            [0x14, 0xe8, 0x08, 0x9b, 0x54, 0x5c, 0xde, 0x7a]
        );
        assert_eq!(ELEMENT_SIZE, 1516);
        assert_eq!(ring_elements(0x10_0000, ELEMENT_SIZE), Some(691));
        let e = Element::new(&[1, 2, 3]).unwrap();
        let b = e.as_bytes();
        assert_eq!(&b[..4], &[1, 2, 3, 0]);
        assert_eq!(&b[1514..], &[3, 0]);
        assert_eq!(e.frame().unwrap(), &[1, 2, 3]);
    }

    #[test]
    fn read_frame_copies_the_frame_straight_into_the_buffer() {
        extern crate std;
        use crate::{epoch_from, Region, RegionMut, Writer};
        use core::sync::atomic::AtomicU64;
        let memory: std::vec::Vec<AtomicU64> = (0..0x4000 / 8).map(|_| AtomicU64::new(0)).collect();
        let mut tx = Writer::init(
            RegionMut::from_atomics(&memory).unwrap(),
            PROTOCOL,
            ELEMENT_SIZE,
            epoch_from(7),
        )
        .unwrap();
        let mut rx = Reader::new(
            Region::from_atomics(&memory).unwrap(),
            PROTOCOL,
            ELEMENT_SIZE,
        )
        .unwrap();
        let mut buf = [0x55u8; FRAME_MAX];
        assert_eq!(read_frame(&mut rx, &mut buf), Err(ReadError::EpochChanged));
        assert_eq!(read_frame(&mut rx, &mut buf), Err(ReadError::NoData));
        for len in [1usize, 60, 1000, FRAME_MAX] {
            let frame: std::vec::Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            tx.write(&Element::new(&frame).unwrap()).unwrap();
            buf.fill(0x55);
            assert_eq!(read_frame(&mut rx, &mut buf), Ok(len as u16));
            assert_eq!(&buf[..len], &frame[..]);
            // Nothing after the frame was copied.
            assert!(buf[len..].iter().all(|b| *b == 0x55));
        }
        // A frame longer than the buffer: the field says so, nothing is copied.
        tx.write(&Element::new(&[9; 100]).unwrap()).unwrap();
        let mut small = [0u8; 10];
        assert_eq!(read_frame(&mut rx, &mut small), Ok(100));
        assert_eq!(small, [0; 10]);
        // A length field beyond FRAME_MAX (a hostile peer): returned as it is, nothing
        // copied.
        let mut bad = Element::new(&[1; 8]).unwrap();
        bad.length = U16::new(u16::MAX);
        tx.write(&bad).unwrap();
        let mut big = [0u8; 2 * FRAME_MAX];
        assert_eq!(read_frame(&mut rx, &mut big), Ok(u16::MAX));
        assert!(big.iter().all(|b| *b == 0));
        // A reader of another element size is refused.
        let mut other = Reader::new(Region::from_atomics(&memory).unwrap(), PROTOCOL, 32).unwrap();
        assert_eq!(
            read_frame(&mut other, &mut buf),
            Err(ReadError::WrongLength {
                element_size: 32,
                found: ELEMENT_SIZE
            })
        );
    }

    #[test]
    fn lengths_are_checked_both_ways() {
        assert!(Element::new(&[0xaa; FRAME_MAX]).is_ok());
        assert_eq!(
            Element::new(&[0; FRAME_MAX + 1]).unwrap_err(),
            FrameTooLong { length: 1515 }
        );
        let mut bytes = [0u8; ELEMENT_SIZE];
        for (len, ok) in [(0u16, true), (1514, true), (1515, false), (u16::MAX, false)] {
            bytes[1514..].copy_from_slice(&len.to_le_bytes());
            let e = Element::read_from_bytes(&bytes[..]).unwrap();
            assert_eq!(e.length_field(), len);
            match e.frame() {
                Ok(f) => assert!(ok && f.len() == usize::from(len)),
                Err(err) => assert!(!ok && err.length == usize::from(len)),
            }
        }
    }
}
