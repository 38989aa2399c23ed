//! The bytes of a subject info page, as `zerocopy` types.
//!
//! Every type here is [`Unaligned`]: multi-byte fields use zerocopy's little-endian
//! byte-order types. On a real page only two fields are actually misaligned (the v3/v4
//! `resource_count` at header offset 77 and the memory `pattern` at variant offset 3),
//! but making the whole layout alignment-free lets the checked view accept any byte
//! slice: a file read into a `Vec<u8>`, a fuzzer's input or the page at its fixed
//! address. Sizes and offsets are asserted at compile time below each type; they are the
//! numbers of `../shared/reference/sinfo.md` §3–§8.
//!
//! These types describe layout only. The checked view ([`crate::SubjectInfo`]) and the
//! typed values of [`crate::resource`] are what the rest of a program should use.

use core::mem::{offset_of, size_of};

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Longest name (subject or resource) in bytes.
pub const NAME_MAX: usize = 63;
/// Most resource records a page holds.
pub const RESOURCE_MAX: usize = 255;
/// Size of the page header (magic, TSC rate, name, resource count).
pub const HEADER_SIZE: usize = 80;
/// Size of one resource record.
pub const RESOURCE_SIZE: usize = 128;
/// Size of the kind-specific part of a resource record.
pub const VARIANT_SIZE: usize = 56;
/// Size of the whole structure as Muen writes it (the region around it is 0x8000).
pub const PAGE_SIZE: usize = HEADER_SIZE + RESOURCE_MAX * RESOURCE_SIZE;
/// Size of a memory region's content hash (SHA-256).
pub const HASH_SIZE: usize = 32;
/// The first seven bytes of the magic; the eighth is the format version.
pub const MAGIC_PREFIX: [u8; 7] = *b"muinfo\0";
/// The `pattern` value that means "no fill pattern".
pub const NO_PATTERN: u16 = 256;

/// Raw values of a resource record's `kind` field.
pub mod kind {
    /// An empty slot.
    pub const NONE: u32 = 0;
    /// A memory region.
    pub const MEMORY: u32 = 1;
    /// An event the subject may trigger.
    pub const EVENT: u32 = 2;
    /// An interrupt vector the subject receives.
    pub const VECTOR: u32 = 3;
    /// A PCI device.
    pub const DEVICE: u32 = 4;
    /// A device's MMIO region.
    pub const DEVICE_MEMORY: u32 = 5;
    /// A device's I/O port range (format v5 only).
    pub const DEVICE_PORT: u32 = 6;
}

/// A name: length byte, up to 63 bytes of text, zero padding and a terminating zero.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct RawName {
    /// Number of bytes used in `data` (Muen's type has 6 bits; more than 63 is corrupt).
    pub length: u8,
    /// The text, zero-padded.
    pub data: [u8; NAME_MAX],
    /// Always zero, so that `data` is a C string.
    pub terminator: u8,
}

const _: () = assert!(size_of::<RawName>() == 65);
const _: () = assert!(offset_of!(RawName, data) == 1);
const _: () = assert!(offset_of!(RawName, terminator) == 64);

impl RawName {
    /// The empty name (all zero).
    pub const EMPTY: RawName = RawName {
        length: 0,
        data: [0; NAME_MAX],
        terminator: 0,
    };

    /// The used bytes of `data`. A length over 63 is clamped, so this never panics, even
    /// on a name that failed validation.
    pub fn bytes(&self) -> &[u8] {
        let len = usize::from(self.length).min(NAME_MAX);
        &self.data[..len]
    }

    /// Encodes `bytes` as Muen's generator does (zero padding, zero terminator), or
    /// `None` if they are longer than [`NAME_MAX`].
    pub fn new(bytes: &[u8]) -> Option<RawName> {
        let mut name = RawName::EMPTY;
        name.data.get_mut(..bytes.len())?.copy_from_slice(bytes);
        // Cannot truncate: bytes.len() <= NAME_MAX here.
        name.length = bytes.len() as u8;
        Some(name)
    }
}

/// The page header of formats v3 and v4.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct HeaderV4 {
    /// `"muinfo\0"` and the format version.
    pub magic: [u8; 8],
    /// TSC rate in kHz.
    pub tsc_khz: U32,
    /// The subject's name.
    pub name: RawName,
    /// Number of resource records in use (unaligned, offset 77).
    pub resource_count: U16,
    /// Zero.
    pub padding: u8,
}

const _: () = assert!(size_of::<HeaderV4>() == HEADER_SIZE);
const _: () = assert!(offset_of!(HeaderV4, tsc_khz) == 8);
const _: () = assert!(offset_of!(HeaderV4, name) == 12);
const _: () = assert!(offset_of!(HeaderV4, resource_count) == 77);
const _: () = assert!(offset_of!(HeaderV4, padding) == 79);

/// The page header of format v5: padding and resource count swapped places.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct HeaderV5 {
    /// `"muinfo\0"` and the format version.
    pub magic: [u8; 8],
    /// TSC rate in kHz.
    pub tsc_khz: U32,
    /// The subject's name.
    pub name: RawName,
    /// Zero.
    pub padding: u8,
    /// Number of resource records in use (offset 78).
    pub resource_count: U16,
}

const _: () = assert!(size_of::<HeaderV5>() == HEADER_SIZE);
const _: () = assert!(offset_of!(HeaderV5, tsc_khz) == 8);
const _: () = assert!(offset_of!(HeaderV5, name) == 12);
const _: () = assert!(offset_of!(HeaderV5, padding) == 77);
const _: () = assert!(offset_of!(HeaderV5, resource_count) == 78);

/// One resource record: kind, name and a kind-specific variant.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct RawResource {
    /// One of the values in [`kind`].
    pub kind: U32,
    /// The resource's logical name.
    pub name: RawName,
    /// Zero.
    pub padding: [u8; 3],
    /// The variant; its layout depends on `kind` and, for devices, on the version.
    pub data: [u8; VARIANT_SIZE],
}

const _: () = assert!(size_of::<RawResource>() == RESOURCE_SIZE);
const _: () = assert!(offset_of!(RawResource, name) == 4);
const _: () = assert!(offset_of!(RawResource, padding) == 69);
const _: () = assert!(offset_of!(RawResource, data) == 72);

impl RawResource {
    /// The empty (NONE) record, all zero.
    pub const EMPTY: RawResource = RawResource {
        kind: U32::ZERO,
        name: RawName::EMPTY,
        padding: [0; 3],
        data: [0; VARIANT_SIZE],
    };
}

/// A whole page: a header (v3/v4 or v5, decided by the magic) and 255 records.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawPage {
    /// [`HeaderV4`] or [`HeaderV5`].
    pub header: [u8; HEADER_SIZE],
    /// All record slots; only the first `resource_count` are meaningful.
    pub resources: [RawResource; RESOURCE_MAX],
}

const _: () = assert!(size_of::<RawPage>() == PAGE_SIZE);
const _: () = assert!(PAGE_SIZE == 32720);
const _: () = assert!(offset_of!(RawPage, resources) == HEADER_SIZE);

/// Variant of a memory region (kind 1).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct MemoryRecord {
    /// Memory kind (numbering depends on the version, see [`crate::MemoryKind`]).
    pub kind: u8,
    /// Content kind: 0 uninitialized, 1 fill, 2 file.
    pub content: u8,
    /// Bit 0 writable, bit 1 executable.
    pub flags: u8,
    /// Fill byte, or [`NO_PATTERN`] (unaligned, offset 3).
    pub pattern: U16,
    /// Zero.
    pub padding: [u8; 3],
    /// Virtual address of the mapping.
    pub address: U64,
    /// Size of the region in bytes.
    pub size: U64,
    /// SHA-256 of the initial content, or all zero.
    pub hash: [u8; HASH_SIZE],
}

const _: () = assert!(size_of::<MemoryRecord>() == VARIANT_SIZE);
const _: () = assert!(offset_of!(MemoryRecord, pattern) == 3);
const _: () = assert!(offset_of!(MemoryRecord, address) == 8);
const _: () = assert!(offset_of!(MemoryRecord, size) == 16);
const _: () = assert!(offset_of!(MemoryRecord, hash) == 24);

/// Variant of an event or vector (kinds 2 and 3).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct NumberRecord {
    /// Event number or interrupt vector.
    pub number: u8,
    /// Zero.
    pub padding: [u8; VARIANT_SIZE - 1],
}

const _: () = assert!(size_of::<NumberRecord>() == VARIANT_SIZE);

/// Variant of a PCI device (kind 4) in formats v3 and v4.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DeviceRecordV4 {
    /// PCI source ID (bus << 8 | device << 3 | function).
    pub sid: U16,
    /// First interrupt remapping table entry.
    pub irte_start: U16,
    /// First vector of the device's interrupts in the subject.
    pub irq_start: u8,
    /// Number of vectors.
    pub ir_count: u8,
    /// Bit 0: MSI capable.
    pub flags: u8,
    /// Zero.
    pub padding: [u8; 49],
}

const _: () = assert!(size_of::<DeviceRecordV4>() == VARIANT_SIZE);
const _: () = assert!(offset_of!(DeviceRecordV4, irte_start) == 2);
const _: () = assert!(offset_of!(DeviceRecordV4, irq_start) == 4);
const _: () = assert!(offset_of!(DeviceRecordV4, ir_count) == 5);
const _: () = assert!(offset_of!(DeviceRecordV4, flags) == 6);

/// Variant of a PCI device (kind 4) in format v5.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DeviceRecordV5 {
    /// PCI source ID.
    pub sid: U16,
    /// PCI vendor ID.
    pub vendor_id: U16,
    /// PCI device ID.
    pub device_id: U16,
    /// PCI class code.
    pub class_code: U16,
    /// First interrupt remapping table entry.
    pub irte_start: U16,
    /// First vector of the device's interrupts in the subject.
    pub irq_start: u8,
    /// Number of vectors.
    pub ir_count: u8,
    /// Bit 0: MSI capable.
    pub flags: u8,
    /// 0 none, 1 FLR, 2 AF FLR, 3 PM, 4 bus.
    pub reset_method: u8,
    /// Zero.
    pub padding: [u8; 42],
}

const _: () = assert!(size_of::<DeviceRecordV5>() == VARIANT_SIZE);
const _: () = assert!(offset_of!(DeviceRecordV5, vendor_id) == 2);
const _: () = assert!(offset_of!(DeviceRecordV5, device_id) == 4);
const _: () = assert!(offset_of!(DeviceRecordV5, class_code) == 6);
const _: () = assert!(offset_of!(DeviceRecordV5, irte_start) == 8);
const _: () = assert!(offset_of!(DeviceRecordV5, irq_start) == 10);
const _: () = assert!(offset_of!(DeviceRecordV5, ir_count) == 11);
const _: () = assert!(offset_of!(DeviceRecordV5, flags) == 12);
const _: () = assert!(offset_of!(DeviceRecordV5, reset_method) == 13);

/// Variant of a device MMIO region (kind 5) in formats v3 and v4.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DeviceMemoryRecordV4 {
    /// Bit 0 writable, bit 1 executable.
    pub flags: u8,
    /// Zero.
    pub padding1: [u8; 7],
    /// Virtual address of the mapping.
    pub address: U64,
    /// Size in bytes.
    pub size: U64,
    /// Zero.
    pub padding2: [u8; 32],
}

const _: () = assert!(size_of::<DeviceMemoryRecordV4>() == VARIANT_SIZE);
const _: () = assert!(offset_of!(DeviceMemoryRecordV4, address) == 8);
const _: () = assert!(offset_of!(DeviceMemoryRecordV4, size) == 16);

/// Variant of a device MMIO region (kind 5) in format v5.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DeviceMemoryRecordV5 {
    /// Source ID of the device the region belongs to.
    pub sid: U16,
    /// Bit 0 writable, bit 1 executable.
    pub flags: u8,
    /// The BAR's I/O-memory flags.
    pub io_mem_flags: u8,
    /// Index of the BAR.
    pub bar_index: u8,
    /// Zero.
    pub padding1: [u8; 3],
    /// The BAR's address.
    pub bar_address: U64,
    /// Virtual address of the mapping.
    pub address: U64,
    /// Size in bytes.
    pub size: U64,
    /// Zero.
    pub padding2: [u8; 24],
}

const _: () = assert!(size_of::<DeviceMemoryRecordV5>() == VARIANT_SIZE);
const _: () = assert!(offset_of!(DeviceMemoryRecordV5, flags) == 2);
const _: () = assert!(offset_of!(DeviceMemoryRecordV5, io_mem_flags) == 3);
const _: () = assert!(offset_of!(DeviceMemoryRecordV5, bar_index) == 4);
const _: () = assert!(offset_of!(DeviceMemoryRecordV5, bar_address) == 8);
const _: () = assert!(offset_of!(DeviceMemoryRecordV5, address) == 16);
const _: () = assert!(offset_of!(DeviceMemoryRecordV5, size) == 24);

/// Variant of a device I/O port range (kind 6, format v5 only).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DevicePortRecord {
    /// Source ID of the device the ports belong to.
    pub sid: U16,
    /// Index of the BAR.
    pub bar_index: u8,
    /// Zero.
    pub padding1: u8,
    /// First port.
    pub address: U16,
    /// Number of ports.
    pub size: U16,
    /// Zero.
    pub padding2: [u8; 48],
}

const _: () = assert!(size_of::<DevicePortRecord>() == VARIANT_SIZE);
const _: () = assert!(offset_of!(DevicePortRecord, bar_index) == 2);
const _: () = assert!(offset_of!(DevicePortRecord, address) == 4);
const _: () = assert!(offset_of!(DevicePortRecord, size) == 6);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_like_the_generator_and_clamp_on_read() {
        let name = RawName::new(b"lnx").unwrap();
        assert_eq!(name.length, 3);
        assert_eq!(&name.data[..4], b"lnx\0");
        assert!(name.data[3..].iter().all(|&b| b == 0));
        assert_eq!(name.terminator, 0);
        assert_eq!(name.bytes(), b"lnx");

        assert_eq!(
            RawName::new(&[b'a'; NAME_MAX]).unwrap().bytes().len(),
            NAME_MAX
        );
        assert_eq!(RawName::new(&[b'a'; NAME_MAX + 1]), None);

        let corrupt = RawName {
            length: 200,
            data: [b'x'; NAME_MAX],
            terminator: 0,
        };
        assert_eq!(corrupt.bytes().len(), NAME_MAX);
    }
}
