//! The on-disk format: 512-byte sectors, two superblock copies, then record slots.
//!
//! ```text
//! sector 0          superblock copy 0
//! sector 1          superblock copy 1
//! sector 2 + i      record slot i (i = 0 .. log_slots), holding record i + 1 or nothing
//! ```
//!
//! Every structure is one sector, little-endian, and ends with a CRC-32
//! (ISO-HDLC, the zlib/Ethernet one, as `crc32fast` computes it) of its first 508
//! bytes. Sizes and offsets are checked at compile time below.
//!
//! Superblock:
//!
//! | offset | size | field | value |
//! |-------:|-----:|-------|-------|
//! | 0 | 8 | `magic` | `MUENBLKS` |
//! | 8 | 4 | `version` | 1 |
//! | 12 | 4 | `slot_size` | 512 |
//! | 16 | 8 | `boot_count` | boots so far (the one that wrote this copy included) |
//! | 24 | 8 | `log_start` | 2: the sector of slot 0 |
//! | 32 | 8 | `log_slots` | record slots, fixed when the disk is formatted |
//! | 40 | 468 | reserved | 0 |
//! | 508 | 4 | `crc` | CRC-32 of bytes 0..508 |
//!
//! Record (in slot `i`):
//!
//! | offset | size | field | value |
//! |-------:|-----:|-------|-------|
//! | 0 | 4 | `magic` | `MREC` |
//! | 4 | 4 | `length` | payload bytes, 0..=484 |
//! | 8 | 8 | `sequence` | `i + 1`: record *n* lives in slot *n - 1* |
//! | 16 | 8 | `boot` | the boot count of the boot that wrote it |
//! | 24 | 484 | `payload` | `length` bytes, then zeros |
//! | 508 | 4 | `crc` | CRC-32 of bytes 0..508 |
//!
//! A record is *valid* when its magic, checksum, length, sequence number (equal to its
//! slot's) and zero padding are all right. Because the sequence number is tied to the
//! slot, a valid record can only be in its own slot, and writing record *n* touches
//! slot *n - 1* and nothing else.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Bytes per sector, superblock and record slot.
pub const SECTOR: usize = 512;
/// The superblock's magic.
pub const SUPERBLOCK_MAGIC: [u8; 8] = *b"MUENBLKS";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// The record's magic.
pub const RECORD_MAGIC: [u8; 4] = *b"MREC";
/// The sector of record slot 0 (after the two superblock copies).
pub const LOG_START: u64 = 2;
/// The most record slots a disk is formatted with (4 MiB of records), so that
/// checking every slot at boot reads a bounded amount.
pub const MAX_LOG_SLOTS: u64 = 8192;
/// Payload bytes a record holds at most.
pub const PAYLOAD_MAX: usize = 484;
/// Bytes the checksum covers: everything before it.
const CHECKED: usize = SECTOR - 4;

/// A superblock copy.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Superblock {
    /// [`SUPERBLOCK_MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: U32,
    /// [`SECTOR`].
    pub slot_size: U32,
    /// Boots so far.
    pub boot_count: U64,
    /// [`LOG_START`].
    pub log_start: U64,
    /// Record slots on this disk.
    pub log_slots: U64,
    /// Zero.
    pub reserved: [u8; 468],
    /// CRC-32 of the bytes before it.
    pub crc: U32,
}

/// A record slot's content.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Record {
    /// [`RECORD_MAGIC`].
    pub magic: [u8; 4],
    /// Payload bytes.
    pub length: U32,
    /// Slot index + 1.
    pub sequence: U64,
    /// The writer's boot count.
    pub boot: U64,
    /// Payload, then zeros.
    pub payload: [u8; PAYLOAD_MAX],
    /// CRC-32 of the bytes before it.
    pub crc: U32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Superblock>() == SECTOR);
    assert!(offset_of!(Superblock, version) == 8);
    assert!(offset_of!(Superblock, slot_size) == 12);
    assert!(offset_of!(Superblock, boot_count) == 16);
    assert!(offset_of!(Superblock, log_start) == 24);
    assert!(offset_of!(Superblock, log_slots) == 32);
    assert!(offset_of!(Superblock, reserved) == 40);
    assert!(offset_of!(Superblock, crc) == CHECKED);
    assert!(size_of::<Record>() == SECTOR);
    assert!(offset_of!(Record, length) == 4);
    assert!(offset_of!(Record, sequence) == 8);
    assert!(offset_of!(Record, boot) == 16);
    assert!(offset_of!(Record, payload) == 24);
    assert!(offset_of!(Record, crc) == CHECKED);
};

/// The checksum of a sector: CRC-32 of its first 508 bytes.
pub fn checksum(sector: &[u8; SECTOR]) -> u32 {
    crc32fast::hash(&sector[..CHECKED])
}

/// Why a sector is not what it should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectorError {
    /// All zeros: never written (or discarded).
    Empty,
    /// The magic is wrong.
    BadMagic,
    /// The checksum does not match the content.
    BadChecksum {
        /// The stored checksum.
        stored: u32,
        /// The checksum of the content.
        computed: u32,
    },
    /// Superblock: a version this code does not know.
    BadVersion(u32),
    /// Superblock: a geometry other than this format's (slot size, log start, or no
    /// slots).
    BadGeometry,
    /// Record: a length above [`PAYLOAD_MAX`].
    BadLength(u32),
    /// Record: a sequence number other than its slot's.
    BadSequence {
        /// What the slot requires.
        expected: u64,
        /// What the record says.
        found: u64,
    },
    /// Record: non-zero bytes after the payload.
    BadPadding,
}

impl core::fmt::Display for SectorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SectorError::Empty => f.write_str("empty"),
            SectorError::BadMagic => f.write_str("bad magic"),
            SectorError::BadChecksum { stored, computed } => {
                write!(f, "crc {stored:#010x}, content {computed:#010x}")
            }
            SectorError::BadVersion(v) => write!(f, "version {v}"),
            SectorError::BadGeometry => f.write_str("bad geometry"),
            SectorError::BadLength(n) => write!(f, "length {n}"),
            SectorError::BadSequence { expected, found } => {
                write!(f, "sequence {found}, slot needs {expected}")
            }
            SectorError::BadPadding => f.write_str("bytes after payload"),
        }
    }
}

fn is_empty(sector: &[u8; SECTOR]) -> bool {
    sector.iter().all(|&b| b == 0)
}

fn check_crc(sector: &[u8; SECTOR], stored: u32) -> Result<(), SectorError> {
    let computed = checksum(sector);
    if stored == computed {
        Ok(())
    } else {
        Err(SectorError::BadChecksum { stored, computed })
    }
}

impl Superblock {
    /// A superblock of boot `boot_count` for a disk with `log_slots` record slots.
    pub fn new(boot_count: u64, log_slots: u64) -> Self {
        let mut s = Superblock {
            magic: SUPERBLOCK_MAGIC,
            version: VERSION.into(),
            slot_size: (SECTOR as u32).into(),
            boot_count: boot_count.into(),
            log_start: LOG_START.into(),
            log_slots: log_slots.into(),
            reserved: [0; 468],
            crc: 0.into(),
        };
        s.crc = checksum(s.as_sector()).into();
        s
    }

    /// Reads and checks a superblock copy.
    pub fn parse(sector: &[u8; SECTOR]) -> Result<Self, SectorError> {
        let s: Superblock = zerocopy::transmute!(*sector);
        if is_empty(sector) {
            return Err(SectorError::Empty);
        }
        if s.magic != SUPERBLOCK_MAGIC {
            return Err(SectorError::BadMagic);
        }
        check_crc(sector, s.crc.get())?;
        if s.version.get() != VERSION {
            return Err(SectorError::BadVersion(s.version.get()));
        }
        if s.slot_size.get() as usize != SECTOR
            || s.log_start.get() != LOG_START
            || s.log_slots.get() == 0
        {
            return Err(SectorError::BadGeometry);
        }
        Ok(s)
    }

    /// The sector's bytes.
    pub fn as_sector(&self) -> &[u8; SECTOR] {
        zerocopy::transmute_ref!(self)
    }
}

impl Record {
    /// Record `sequence` (for slot `sequence - 1`), written by boot `boot`, holding
    /// `payload` (cut to [`PAYLOAD_MAX`] bytes).
    pub fn new(sequence: u64, boot: u64, payload: &[u8]) -> Self {
        let len = payload.len().min(PAYLOAD_MAX);
        let mut r = Record {
            magic: RECORD_MAGIC,
            length: (len as u32).into(),
            sequence: sequence.into(),
            boot: boot.into(),
            payload: [0; PAYLOAD_MAX],
            crc: 0.into(),
        };
        r.payload[..len].copy_from_slice(&payload[..len]);
        r.crc = checksum(r.as_sector()).into();
        r
    }

    /// Reads and checks the content of slot `slot`.
    pub fn parse(sector: &[u8; SECTOR], slot: u64) -> Result<Self, SectorError> {
        let r: Record = zerocopy::transmute!(*sector);
        if is_empty(sector) {
            return Err(SectorError::Empty);
        }
        if r.magic != RECORD_MAGIC {
            return Err(SectorError::BadMagic);
        }
        check_crc(sector, r.crc.get())?;
        let len = r.length.get();
        if len as usize > PAYLOAD_MAX {
            return Err(SectorError::BadLength(len));
        }
        let expected = slot.saturating_add(1);
        if r.sequence.get() != expected {
            return Err(SectorError::BadSequence {
                expected,
                found: r.sequence.get(),
            });
        }
        if r.payload[len as usize..].iter().any(|&b| b != 0) {
            return Err(SectorError::BadPadding);
        }
        Ok(r)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let len = (self.length.get() as usize).min(PAYLOAD_MAX);
        &self.payload[..len]
    }

    /// The sector's bytes.
    pub fn as_sector(&self) -> &[u8; SECTOR] {
        zerocopy::transmute_ref!(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblocks_round_trip_and_every_damage_is_named() {
        let s = Superblock::new(7, 100);
        let bytes = *s.as_sector();
        assert_eq!(&bytes[..8], b"MUENBLKS");
        assert_eq!(bytes[16], 7, "boot count, little-endian, at 16");
        assert_eq!(bytes[32], 100, "log slots at 32");
        assert_eq!(
            u32::from_le_bytes(bytes[508..].try_into().unwrap()),
            crc32fast::hash(&bytes[..508])
        );
        let back = Superblock::parse(&bytes).unwrap();
        assert_eq!(back.boot_count.get(), 7);
        assert_eq!(back.log_slots.get(), 100);

        assert_eq!(
            Superblock::parse(&[0; SECTOR]).err(),
            Some(SectorError::Empty)
        );
        let mut bad = bytes;
        bad[0] = b'X';
        assert_eq!(Superblock::parse(&bad).err(), Some(SectorError::BadMagic));
        let mut bad = bytes;
        bad[16] ^= 1;
        assert!(matches!(
            Superblock::parse(&bad),
            Err(SectorError::BadChecksum { .. })
        ));
        let mut v2 = Superblock::new(1, 1);
        v2.version = 2.into();
        v2.crc = checksum(v2.as_sector()).into();
        assert_eq!(
            Superblock::parse(v2.as_sector()).err(),
            Some(SectorError::BadVersion(2))
        );
        assert_eq!(
            Superblock::parse(Superblock::new(1, 0).as_sector()).err(),
            Some(SectorError::BadGeometry)
        );
    }

    #[test]
    fn records_round_trip_and_belong_to_their_slot() {
        let r = Record::new(3, 9, b"hello");
        let bytes = *r.as_sector();
        assert_eq!(&bytes[..4], b"MREC");
        assert_eq!(bytes[4], 5);
        assert_eq!(bytes[8], 3);
        assert_eq!(bytes[16], 9);
        assert_eq!(&bytes[24..29], b"hello");
        let back = Record::parse(&bytes, 2).unwrap();
        assert_eq!(back.payload(), b"hello");
        assert_eq!(back.boot.get(), 9);
        assert_eq!(
            Record::parse(&bytes, 3).err(),
            Some(SectorError::BadSequence {
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            Record::parse(&[0; SECTOR], 0).err(),
            Some(SectorError::Empty)
        );
        // A flipped payload bit, a torn second half.
        let mut bad = bytes;
        bad[25] ^= 0x10;
        assert!(matches!(
            Record::parse(&bad, 2),
            Err(SectorError::BadChecksum { .. })
        ));
        let mut torn = bytes;
        torn[256..].fill(0);
        assert!(matches!(
            Record::parse(&torn, 2),
            Err(SectorError::BadChecksum { .. })
        ));
        // Length and padding are checked even under a matching checksum.
        let mut long = Record::new(1, 1, b"x");
        long.length = 485.into();
        long.crc = checksum(long.as_sector()).into();
        assert_eq!(
            Record::parse(long.as_sector(), 0).err(),
            Some(SectorError::BadLength(485))
        );
        let mut padded = Record::new(1, 1, b"x");
        padded.payload[100] = 1;
        padded.crc = checksum(padded.as_sector()).into();
        assert_eq!(
            Record::parse(padded.as_sector(), 0).err(),
            Some(SectorError::BadPadding)
        );
        assert_eq!(Record::new(1, 1, &[7; 600]).payload().len(), PAYLOAD_MAX);
    }
}
