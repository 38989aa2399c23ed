//! Errors: every way the notes (and, with feature `elf`, the image) can be malformed,
//! each naming the problem and where it is.

use core::fmt;

use crate::abi1::Abi;
#[cfg(feature = "elf")]
use crate::elf::ElfError;
use crate::mft::{MFT_ENTRY_SIZE, MFT_HEADER_SIZE, MFT_MAX_DEVICES, MFT_MAX_ENTRIES, MFT_NAME_MAX};
use crate::note::{NoteKind, ELF_NOTE_HEADER_SIZE, SOLO5_NOTE_HEADER_SIZE};

/// A problem with a note's envelope, its place, or the ABI note's contents.
///
/// `segment` is the label the caller gave the `PT_NOTE` segment (the program header
/// index when read from an ELF image); `None` for a note read on its own
/// ([`parse_note`](crate::parse_note)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteError {
    /// A `PT_NOTE` segment is shorter than an ELF note header; Solo5 rejects the image.
    SegmentTooSmall {
        /// The segment.
        segment: usize,
        /// Its size in bytes.
        size: usize,
    },
    /// The note's descriptor size is 0 or above Solo5's maximum for its kind.
    DescriptorSizeOutOfRange {
        /// The segment, if the note was found in one.
        segment: Option<usize>,
        /// The note.
        kind: NoteKind,
        /// The descriptor size (`n_descsz`).
        descsz: u32,
    },
    /// The note's descriptor runs past the end of its segment (or of the bytes given).
    NoteExceedsSegment {
        /// The segment, if the note was found in one.
        segment: Option<usize>,
        /// The note.
        kind: NoteKind,
        /// The descriptor size (`n_descsz`).
        descsz: u32,
        /// The bytes available, header included.
        size: usize,
    },
    /// The descriptor size does not exceed the alignment padding, so nothing is left
    /// (the manifest note has 4 bytes of padding).
    DescriptorShorterThanPadding {
        /// The segment, if the note was found in one.
        segment: Option<usize>,
        /// The note.
        kind: NoteKind,
        /// The descriptor size (`n_descsz`).
        descsz: u32,
    },
    /// No `PT_NOTE` segment starts with a Solo5 note of this kind.
    Missing {
        /// The note.
        kind: NoteKind,
    },
    /// Fewer bytes than a Solo5 note header where a note was expected.
    Truncated {
        /// The note expected.
        kind: NoteKind,
        /// The bytes available.
        size: usize,
    },
    /// The note expected is not named `"Solo5"` (name size 6).
    WrongName {
        /// The note expected.
        kind: NoteKind,
        /// The name size found.
        namesz: u32,
        /// The first 8 name bytes found.
        name: [u8; 8],
    },
    /// The note expected has another type.
    WrongType {
        /// The note expected.
        kind: NoteKind,
        /// The type found.
        found: u32,
    },
    /// The ABI note's descriptor is shorter than `struct abi1_info` (16 bytes).
    AbiDescriptorTooShort {
        /// The descriptor's size.
        size: usize,
    },
    /// The ABI note names a target Solo5 does not define.
    UnknownAbiTarget {
        /// The target number.
        target: u32,
    },
    /// The ABI is not the one required.
    AbiMismatch {
        /// The ABI required.
        expected: Abi,
        /// The ABI the note declares.
        found: Abi,
    },
}

/// Writes `segment N: ` or nothing.
fn at(f: &mut fmt::Formatter<'_>, segment: Option<usize>) -> fmt::Result {
    match segment {
        Some(segment) => write!(f, "PT_NOTE segment {segment}: "),
        None => Ok(()),
    }
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SegmentTooSmall { segment, size } => write!(
                f,
                "PT_NOTE segment {segment}: {size} bytes, shorter than an ELF note header \
                 ({ELF_NOTE_HEADER_SIZE} bytes); Solo5 rejects the image"
            ),
            Self::DescriptorSizeOutOfRange {
                segment,
                kind,
                descsz,
            } => {
                at(f, segment)?;
                write!(
                    f,
                    "Solo5 {kind} note: descriptor size {descsz} is outside 1..={}",
                    kind.max_descriptor_size()
                )
            }
            Self::NoteExceedsSegment {
                segment,
                kind,
                descsz,
                size,
            } => {
                at(f, segment)?;
                write!(
                    f,
                    "Solo5 {kind} note truncated: header and descriptor need {} bytes, \
                     only {size} present",
                    SOLO5_NOTE_HEADER_SIZE + descsz as usize
                )
            }
            Self::DescriptorShorterThanPadding {
                segment,
                kind,
                descsz,
            } => {
                at(f, segment)?;
                write!(
                    f,
                    "Solo5 {kind} note: descriptor size {descsz} leaves nothing after \
                     {} bytes of alignment padding",
                    kind.descriptor_padding()
                )
            }
            Self::Missing { kind } => write!(
                f,
                "missing note: no PT_NOTE segment starts with a Solo5 {kind} note"
            ),
            Self::Truncated { kind, size } => write!(
                f,
                "Solo5 {kind} note truncated: {size} bytes, shorter than the \
                 {SOLO5_NOTE_HEADER_SIZE}-byte note header"
            ),
            Self::WrongName { kind, namesz, name } => write!(
                f,
                "expected a Solo5 {kind} note: wrong note name (name size {namesz}, name bytes \
                 {}), expected \"Solo5\" (name size 6)",
                name.escape_ascii()
            ),
            Self::WrongType { kind, found } => write!(
                f,
                "expected a Solo5 {kind} note (type {:#x}): wrong note type {found:#x}",
                kind.note_type()
            ),
            Self::AbiDescriptorTooShort { size } => write!(
                f,
                "Solo5 ABI1 note truncated: descriptor of {size} bytes, shorter than \
                 struct abi1_info (16 bytes)"
            ),
            Self::UnknownAbiTarget { target } => {
                write!(f, "Solo5 ABI1 note: unknown ABI target {target}")
            }
            Self::AbiMismatch { expected, found } => write!(
                f,
                "Solo5 ABI1 note: the image is built for {found}, expected {expected}"
            ),
        }
    }
}

/// A problem with a manifest: Solo5's own rules (`mft_validate`), then those of its
/// manifest generator and the uniqueness of names. `index` is an entry index (0 is the
/// reserved entry; a device's index is its handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// Shorter than the 8-byte manifest header.
    TooSmall {
        /// The manifest's size in bytes.
        size: usize,
    },
    /// The version is not [`MFT_VERSION`](crate::MFT_VERSION).
    WrongVersion {
        /// The version found.
        version: u32,
    },
    /// More than [`MFT_MAX_ENTRIES`] entries.
    TooManyEntries {
        /// The entry count found.
        entries: u32,
    },
    /// The size does not match the entry count exactly.
    SizeMismatch {
        /// The manifest's size in bytes.
        size: usize,
        /// 8 + 104 × entries.
        expected: usize,
    },
    /// No entries (not even the reserved first one).
    NoEntries,
    /// Entry 0 does not have type [`MFT_RESERVED_FIRST`](crate::MFT_RESERVED_FIRST).
    FirstEntryNotReserved {
        /// The type found.
        entry_type: u32,
    },
    /// Entry 0 has a name.
    FirstEntryNamed,
    /// An entry's name byte 67 is not NUL.
    NameNotTerminated {
        /// The entry.
        index: u32,
    },
    /// An entry is marked attached (`attached` true).
    EntryAttached {
        /// The entry.
        index: u32,
    },
    /// A device entry has a type that is neither `BLOCK_BASIC` nor `NET_BASIC`.
    UnknownEntryType {
        /// The entry.
        index: u32,
        /// The type found.
        entry_type: u32,
    },
    /// A device name is empty.
    EmptyName {
        /// The entry.
        index: u32,
    },
    /// A device name is longer than [`MFT_NAME_MAX`] bytes.
    NameTooLong {
        /// The entry.
        index: u32,
        /// The name's length in bytes.
        length: usize,
    },
    /// A device name has a byte other than an ASCII letter or digit.
    NameNotAlphanumeric {
        /// The entry.
        index: u32,
    },
    /// More than [`MFT_MAX_DEVICES`] devices.
    TooManyDevices {
        /// The number of devices.
        devices: usize,
    },
    /// Two devices have the same name.
    DuplicateName {
        /// The first entry with the name.
        first: u32,
        /// The later entry with the same name.
        second: u32,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Solo5 manifest: ")?;
        match *self {
            Self::TooSmall { size } => write!(
                f,
                "truncated: {size} bytes, shorter than the {MFT_HEADER_SIZE}-byte header"
            ),
            Self::WrongVersion { version } => write!(
                f,
                "wrong version {version}, expected {}",
                crate::MFT_VERSION
            ),
            Self::TooManyEntries { entries } => write!(
                f,
                "too many entries: {entries}, at most {MFT_MAX_ENTRIES} (the reserved one included)"
            ),
            Self::SizeMismatch { size, expected } => write!(
                f,
                "size {size} bytes does not match its entry count: expected {expected} \
                 ({MFT_HEADER_SIZE} + {MFT_ENTRY_SIZE} per entry)"
            ),
            Self::NoEntries => f.write_str("no entries (the reserved first entry is missing)"),
            Self::FirstEntryNotReserved { entry_type } => write!(
                f,
                "entry 0 has type {entry_type:#x}, expected RESERVED_FIRST ({:#x})",
                crate::MFT_RESERVED_FIRST
            ),
            Self::FirstEntryNamed => f.write_str("entry 0 (RESERVED_FIRST) has a name"),
            Self::NameNotTerminated { index } => write!(
                f,
                "entry {index}: bad name: byte {MFT_NAME_MAX} of the name is not NUL"
            ),
            Self::EntryAttached { index } => {
                write!(f, "entry {index} is marked attached")
            }
            Self::UnknownEntryType { index, entry_type } => write!(
                f,
                "entry {index}: unknown device type {entry_type:#x} \
                 (expected BLOCK_BASIC 1 or NET_BASIC 2)"
            ),
            Self::EmptyName { index } => write!(f, "entry {index}: bad name: empty"),
            Self::NameTooLong { index, length } => write!(
                f,
                "entry {index}: bad name: {length} bytes, at most {MFT_NAME_MAX}"
            ),
            Self::NameNotAlphanumeric { index } => write!(
                f,
                "entry {index}: bad name: only ASCII letters and digits are allowed"
            ),
            Self::TooManyDevices { devices } => {
                write!(f, "too many devices: {devices}, at most {MFT_MAX_DEVICES}")
            }
            Self::DuplicateName { first, second } => write!(
                f,
                "duplicate device name: entries {first} and {second} have the same name"
            ),
        }
    }
}

/// Any problem finding and reading an image's Solo5 notes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The ELF image itself (feature `elf`).
    #[cfg(feature = "elf")]
    Elf(ElfError),
    /// A note's envelope or place, or the ABI note.
    Note(NoteError),
    /// The manifest.
    Manifest(ManifestError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "elf")]
            Self::Elf(e) => e.fmt(f),
            Self::Note(e) => e.fmt(f),
            Self::Manifest(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for NoteError {}
impl core::error::Error for ManifestError {}
impl core::error::Error for Error {}

#[cfg(feature = "elf")]
impl From<ElfError> for Error {
    fn from(e: ElfError) -> Self {
        Self::Elf(e)
    }
}

impl From<NoteError> for Error {
    fn from(e: NoteError) -> Self {
        Self::Note(e)
    }
}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Self {
        Self::Manifest(e)
    }
}
