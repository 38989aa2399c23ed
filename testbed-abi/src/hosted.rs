//! How the testbed hands a world to a subject it runs.
//!
//! The testbed emulates Muen's physical memory with one shared memory file. Every
//! region of the subject (sinfo page, RAM, channels, ...) lives at some page-aligned
//! offset of that file, and a *memory map* at offset 0 says where each region goes in
//! the subject's virtual address space. Both testbed modes read the same map:
//!
//! - hosted mode: the subject is a Linux process. Before `main`, the runtime maps each
//!   entry of the file at its virtual address ([`MEMORY_FD`]), and talks to the
//!   testbed's emulated kernel over a socket ([`CONTROL_FD`], [`Message`]).
//! - QEMU mode: the file is the guest's RAM, so file offset = guest physical address;
//!   the boot stage builds page tables from the map and jumps to [`MemMapHeader::rip`].
//!
//! The full contract, with the message sequence, is in `docs/hosted.md`.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// File descriptor (hosted mode) of the shared memory file.
pub const MEMORY_FD: i32 = 3;
/// File descriptor (hosted mode) of the control socket (`SOCK_SEQPACKET`).
pub const CONTROL_FD: i32 = 4;

/// Bytes reserved for the memory map at offset 0 of the memory file. Regions start at
/// or after this offset.
pub const MEMMAP_SIZE: u64 = 0x1_0000;

/// Magic value of the memory map: ASCII `muenmmap` in memory order.
pub const MEMMAP_MAGIC: u64 = u64::from_le_bytes(*b"muenmmap");

/// Version of the memory map format described here.
pub const MEMMAP_VERSION: u32 = 1;

/// Header of the memory map at offset 0 of the memory file.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct MemMapHeader {
    /// [`MEMMAP_MAGIC`].
    pub magic: U64,
    /// [`MEMMAP_VERSION`].
    pub version: U32,
    /// Number of [`MemMapEntry`] records that follow the header.
    pub count: U32,
    /// Initial instruction pointer from the policy (QEMU mode).
    pub rip: U64,
    /// Initial stack pointer from the policy (QEMU mode).
    pub rsp: U64,
}

/// One region: `size` bytes of the memory file at `offset`, mapped at `address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct MemMapEntry {
    /// Subject virtual address (page-aligned).
    pub address: U64,
    /// Offset in the memory file (page-aligned, at least [`MEMMAP_SIZE`]).
    pub offset: U64,
    /// Length in bytes (a non-zero multiple of the page size).
    pub size: U64,
    /// [`ENTRY_WRITABLE`] and [`ENTRY_EXECUTABLE`]; other bits are zero.
    pub flags: U64,
}

/// [`MemMapEntry::flags`]: the subject may write the region.
pub const ENTRY_WRITABLE: u64 = 1 << 0;
/// [`MemMapEntry::flags`]: the subject may execute the region.
pub const ENTRY_EXECUTABLE: u64 = 1 << 1;

const _: () = assert!(core::mem::size_of::<MemMapHeader>() == 32);
const _: () = assert!(core::mem::size_of::<MemMapEntry>() == 32);
const _: () = assert!(core::mem::offset_of!(MemMapHeader, count) == 12);
const _: () = assert!(core::mem::offset_of!(MemMapEntry, flags) == 24);

/// The most entries a memory map can hold.
pub const MEMMAP_MAX_ENTRIES: usize = (MEMMAP_SIZE as usize - core::mem::size_of::<MemMapHeader>())
    / core::mem::size_of::<MemMapEntry>();

/// Why a memory map was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemMapError {
    /// The buffer is shorter than the header or the entries it announces.
    Truncated,
    /// The magic value is wrong.
    BadMagic,
    /// The version is not [`MEMMAP_VERSION`].
    UnsupportedVersion(u32),
    /// More entries than [`MEMMAP_MAX_ENTRIES`].
    TooManyEntries(u32),
    /// Entry `index` is malformed: unaligned, empty, overflowing, inside the map
    /// itself, or with unknown flag bits.
    BadEntry(usize),
}

/// A validated view of a memory map.
#[derive(Clone, Copy, Debug)]
pub struct MemMap<'a> {
    header: &'a MemMapHeader,
    entries: &'a [MemMapEntry],
}

impl<'a> MemMap<'a> {
    /// Checks `bytes` (the start of the memory file) and returns the map.
    ///
    /// Every entry is checked: page-aligned address, offset and size, non-zero size,
    /// no overflow of `address + size` or `offset + size`, offset past the map, and
    /// only known flags. Overlap between entries is not checked here.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MemMapError> {
        let (header, rest) =
            MemMapHeader::ref_from_prefix(bytes).map_err(|_| MemMapError::Truncated)?;
        if header.magic.get() != MEMMAP_MAGIC {
            return Err(MemMapError::BadMagic);
        }
        if header.version.get() != MEMMAP_VERSION {
            return Err(MemMapError::UnsupportedVersion(header.version.get()));
        }
        let count = header.count.get();
        if count as usize > MEMMAP_MAX_ENTRIES {
            return Err(MemMapError::TooManyEntries(count));
        }
        let (entries, _) = <[MemMapEntry]>::ref_from_prefix_with_elems(rest, count as usize)
            .map_err(|_| MemMapError::Truncated)?;
        for (i, e) in entries.iter().enumerate() {
            let page = muen_abi::addr::PAGE_SIZE;
            let (a, o, s, f) = (e.address.get(), e.offset.get(), e.size.get(), e.flags.get());
            let ok = s != 0
                && a % page == 0
                && o % page == 0
                && s % page == 0
                && o >= MEMMAP_SIZE
                && a.checked_add(s).is_some()
                && o.checked_add(s).is_some()
                && f & !(ENTRY_WRITABLE | ENTRY_EXECUTABLE) == 0;
            if !ok {
                return Err(MemMapError::BadEntry(i));
            }
        }
        Ok(Self { header, entries })
    }

    /// The header.
    pub fn header(&self) -> &'a MemMapHeader {
        self.header
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &'a [MemMapEntry] {
        self.entries
    }
}

/// A message on the hosted control socket. Each message is one `SOCK_SEQPACKET`
/// datagram of two bytes: an opcode and an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// Subject to testbed: the subject executed `vmcall` with this event number.
    Event(u8),
    /// Subject to testbed: the subject executed `HLT`; it now blocks until the next
    /// [`Message::Vector`].
    Halt,
    /// Testbed to subject: inject this interrupt vector.
    Vector(u8),
}

impl Message {
    /// The two bytes of the message.
    pub const fn encode(self) -> [u8; 2] {
        match self {
            Message::Event(n) => [1, n],
            Message::Halt => [2, 0],
            Message::Vector(v) => [3, v],
        }
    }

    /// The message in `bytes`, or `None` if it is not a valid message.
    pub const fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [1, n] => Some(Message::Event(*n)),
            [2, 0] => Some(Message::Halt),
            [3, v] => Some(Message::Vector(*v)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn map(entries: &[MemMapEntry]) -> Vec<u8> {
        let header = MemMapHeader {
            magic: MEMMAP_MAGIC.into(),
            version: MEMMAP_VERSION.into(),
            count: (entries.len() as u32).into(),
            rip: 0x20_0000.into(),
            rsp: 0x4400_0000u64.into(),
        };
        let mut bytes = header.as_bytes().to_vec();
        for e in entries {
            bytes.extend_from_slice(e.as_bytes());
        }
        bytes
    }

    fn entry(address: u64, offset: u64, size: u64, flags: u64) -> MemMapEntry {
        MemMapEntry {
            address: address.into(),
            offset: offset.into(),
            size: size.into(),
            flags: flags.into(),
        }
    }

    #[test]
    fn parses_a_valid_map() {
        let e = [
            entry(0xe_0000_0000, MEMMAP_SIZE, 0x8000, 0),
            entry(0x4000_0000, MEMMAP_SIZE + 0x8000, 0x10_0000, ENTRY_WRITABLE),
        ];
        let bytes = map(&e);
        let m = MemMap::parse(&bytes).unwrap();
        assert_eq!(m.entries(), &e);
        assert_eq!(m.header().rip.get(), 0x20_0000);
    }

    #[test]
    fn rejects_bad_maps() {
        let good = entry(0x1000, MEMMAP_SIZE, 0x1000, 0);
        assert_eq!(MemMap::parse(&[0; 8]).unwrap_err(), MemMapError::Truncated);
        let mut bytes = map(&[good]);
        bytes.truncate(40);
        assert_eq!(MemMap::parse(&bytes).unwrap_err(), MemMapError::Truncated);
        let mut bytes = map(&[good]);
        bytes[0] ^= 1;
        assert_eq!(MemMap::parse(&bytes).unwrap_err(), MemMapError::BadMagic);
        let mut bytes = map(&[good]);
        bytes[8] = 2;
        assert_eq!(
            MemMap::parse(&bytes).unwrap_err(),
            MemMapError::UnsupportedVersion(2)
        );
        let mut bytes = map(&[good]);
        bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            MemMap::parse(&bytes).unwrap_err(),
            MemMapError::TooManyEntries(u32::MAX)
        );
        for bad in [
            entry(0x1001, MEMMAP_SIZE, 0x1000, 0),
            entry(0x1000, MEMMAP_SIZE + 1, 0x1000, 0),
            entry(0x1000, MEMMAP_SIZE, 0, 0),
            entry(0x1000, MEMMAP_SIZE, 0x1800, 0),
            entry(0x1000, 0, 0x1000, 0),
            entry(u64::MAX - 0xfff, MEMMAP_SIZE, 0x2000, 0),
            entry(0x1000, u64::MAX - 0xfff, 0x2000, 0),
            entry(0x1000, MEMMAP_SIZE, 0x1000, 4),
        ] {
            assert_eq!(
                MemMap::parse(&map(&[good, bad])).unwrap_err(),
                MemMapError::BadEntry(1)
            );
        }
    }

    #[test]
    fn messages_round_trip() {
        for m in [
            Message::Event(0),
            Message::Event(63),
            Message::Halt,
            Message::Vector(255),
        ] {
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
        assert_eq!(Message::decode(&[2, 1]), None);
        assert_eq!(Message::decode(&[9, 0]), None);
        assert_eq!(Message::decode(&[1]), None);
        assert_eq!(Message::decode(&[1, 2, 3]), None);
    }
}
