//! `muennet`: Ethernet frames between a subject and Muen's Linux network driver.
//!
//! One element carries one frame without FCS, zero padded to 1514 bytes, followed by
//! its length. A device has an input channel (`<dev>|in`, read) and an output channel
//! (`<dev>|out`, written).

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::little_endian::U16;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Protocol identifier (bytes in memory `14 e8 08 9b 54 5c de 7a`).
pub const PROTOCOL: u64 = 0x7ade_5c54_9b08_e814;

/// Largest frame: 1500 bytes of payload plus the 14-byte Ethernet header.
pub const FRAME_MAX: usize = 1514;

/// MTU offered to the IP layer.
pub const MTU: usize = 1500;

/// Size of one element.
pub const ELEMENT_SIZE: usize = size_of::<Element>();

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
