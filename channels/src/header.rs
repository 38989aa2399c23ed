//! The 64-byte SHMStream v2 header at the start of every channel.
//!
//! The layout is described once, by [`Header`]; the atomic accesses of the reader and
//! the writer use the field offsets computed from it ([`Field::offset`]).

use core::mem::{offset_of, size_of};
use zerocopy::little_endian::U64;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Size of the header; element slot 0 starts here.
pub const HEADER_SIZE: usize = size_of::<Header>();

/// The SHMStream v2 transport marker: the base64 text `SHMStream20=` decoded and read
/// as a big-endian number (bytes in memory `6d 9b 9a b7 b6 12 73 48`).
pub const TRANSPORT_MARKER: u64 = 0x4873_12b6_b79a_9b6d;

/// The header as it lies in memory. All fields are little-endian `u64`.
///
/// This type describes the bytes; it is never used as a reference into a live channel
/// (the peer may change it at any time). [`Region::header`](crate::Region::header)
/// returns a snapshot, and the reader and writer access single fields atomically.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct Header {
    /// [`TRANSPORT_MARKER`]; may be 0 while the channel is inactive.
    pub transport: U64,
    /// Chosen by the writer, changed on every (re)initialisation; 0 = inactive.
    pub epoch: U64,
    /// Non-zero identifier of the payload protocol.
    pub protocol: U64,
    /// Size of one element in bytes.
    pub size: U64,
    /// Number of element slots in the ring.
    pub elements: U64,
    /// Zero, ignored.
    pub reserved: U64,
    /// Write start counter: incremented before an element is written.
    pub wsc: U64,
    /// Write counter: number of completely written elements.
    pub wc: U64,
}

const _: () = assert!(size_of::<Header>() == 64);
const _: () = assert!(offset_of!(Header, transport) == 0);
const _: () = assert!(offset_of!(Header, epoch) == 8);
const _: () = assert!(offset_of!(Header, protocol) == 16);
const _: () = assert!(offset_of!(Header, size) == 24);
const _: () = assert!(offset_of!(Header, elements) == 32);
const _: () = assert!(offset_of!(Header, reserved) == 40);
const _: () = assert!(offset_of!(Header, wsc) == 48);
const _: () = assert!(offset_of!(Header, wc) == 56);

/// One field of the header, for atomic access through
/// [`Region::load`](crate::Region::load) and [`RegionMut::store`](crate::RegionMut::store).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// [`Header::transport`].
    Transport,
    /// [`Header::epoch`].
    Epoch,
    /// [`Header::protocol`].
    Protocol,
    /// [`Header::size`].
    Size,
    /// [`Header::elements`].
    Elements,
    /// [`Header::reserved`].
    Reserved,
    /// [`Header::wsc`].
    Wsc,
    /// [`Header::wc`].
    Wc,
}

impl Field {
    /// Every field, in memory order.
    pub const ALL: [Field; 8] = [
        Field::Transport,
        Field::Epoch,
        Field::Protocol,
        Field::Size,
        Field::Elements,
        Field::Reserved,
        Field::Wsc,
        Field::Wc,
    ];

    /// Byte offset of the field in the header (a multiple of 8, below 64).
    pub const fn offset(self) -> usize {
        match self {
            Field::Transport => offset_of!(Header, transport),
            Field::Epoch => offset_of!(Header, epoch),
            Field::Protocol => offset_of!(Header, protocol),
            Field::Size => offset_of!(Header, size),
            Field::Elements => offset_of!(Header, elements),
            Field::Reserved => offset_of!(Header, reserved),
            Field::Wsc => offset_of!(Header, wsc),
            Field::Wc => offset_of!(Header, wc),
        }
    }

    /// The field's value in `header`.
    pub fn get(self, header: &Header) -> u64 {
        self.of(header).get()
    }

    /// Sets the field's value in `header`.
    pub fn set(self, header: &mut Header, value: u64) {
        *self.of_mut(header) = value.into();
    }

    fn of(self, h: &Header) -> &U64 {
        match self {
            Field::Transport => &h.transport,
            Field::Epoch => &h.epoch,
            Field::Protocol => &h.protocol,
            Field::Size => &h.size,
            Field::Elements => &h.elements,
            Field::Reserved => &h.reserved,
            Field::Wsc => &h.wsc,
            Field::Wc => &h.wc,
        }
    }

    fn of_mut(self, h: &mut Header) -> &mut U64 {
        match self {
            Field::Transport => &mut h.transport,
            Field::Epoch => &mut h.epoch,
            Field::Protocol => &mut h.protocol,
            Field::Size => &mut h.size,
            Field::Elements => &mut h.elements,
            Field::Reserved => &mut h.reserved,
            Field::Wsc => &mut h.wsc,
            Field::Wc => &mut h.wc,
        }
    }
}

impl Header {
    /// The header of an active channel with freshly reset counters.
    pub fn new(epoch: u64, protocol: u64, size: u64, elements: u64) -> Self {
        Header {
            transport: TRANSPORT_MARKER.into(),
            epoch: epoch.into(),
            protocol: protocol.into(),
            size: size.into(),
            elements: elements.into(),
            reserved: 0.into(),
            wsc: 0.into(),
            wc: 0.into(),
        }
    }
}

/// Number of `size`-byte elements a writer puts into a region of `region_len` bytes:
/// `(region_len - 64) / size`, as every SHMStream implementation computes it. `None`
/// if `size` is 0 or not even one element fits.
pub const fn ring_elements(region_len: usize, size: usize) -> Option<u64> {
    if size == 0 || region_len < HEADER_SIZE + size {
        return None;
    }
    Some(((region_len - HEADER_SIZE) / size) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal base64 decoder for the derivation checks below.
    fn base64(text: &str) -> ([u8; 16], usize) {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let (mut out, mut n, mut acc, mut bits) = ([0u8; 16], 0, 0u32, 0);
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out[n] = (acc >> bits) as u8;
                n += 1;
            }
        }
        (out, n)
    }

    #[test]
    fn marker_is_the_decoded_text_read_big_endian() {
        let (bytes, n) = base64("SHMStream20=");
        assert_eq!(n, 8);
        assert_eq!(
            u64::from_be_bytes(bytes[..8].try_into().unwrap()),
            TRANSPORT_MARKER
        );
        assert_eq!(
            TRANSPORT_MARKER.to_le_bytes(),
            [0x6d, 0x9b, 0x9a, 0xb7, 0xb6, 0x12, 0x73, 0x48]
        );
    }

    #[test]
    fn header_bytes_are_the_documented_layout() {
        let mut h = Header::new(7, 0x1122, 1516, 691);
        h.wsc = 5.into();
        h.wc = 4.into();
        let b = h.as_bytes();
        assert_eq!(&b[0..8], &TRANSPORT_MARKER.to_le_bytes());
        assert_eq!(&b[8..16], &7u64.to_le_bytes());
        assert_eq!(&b[16..24], &0x1122u64.to_le_bytes());
        assert_eq!(&b[24..32], &1516u64.to_le_bytes());
        assert_eq!(&b[32..40], &691u64.to_le_bytes());
        assert_eq!(&b[40..48], &[0; 8]);
        assert_eq!(&b[48..56], &5u64.to_le_bytes());
        assert_eq!(&b[56..64], &4u64.to_le_bytes());
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(f.offset(), i * 8);
        }
        let mut h2 = Header::default();
        for f in Field::ALL {
            f.set(&mut h2, f.get(&h));
        }
        assert_eq!(h2, h);
    }

    #[test]
    fn ring_elements_matches_the_reference_channels() {
        assert_eq!(ring_elements(0x10_0000, 1516), Some(691));
        assert_eq!(ring_elements(0x2_0000, 64), Some(2047));
        assert_eq!(ring_elements(0x8000, 32), Some(1022));
        assert_eq!(ring_elements(0x4000, 16), Some(1020));
        assert_eq!(ring_elements(64 + 15, 16), None);
        assert_eq!(ring_elements(64 + 16, 16), Some(1));
        assert_eq!(ring_elements(0x1000, 0), None);
        assert_eq!(ring_elements(10, 1), None);
    }
}
