//! The ELF note envelope of Solo5's notes, and finding a note among `PT_NOTE` segments
//! by Solo5's loader's rules.
//!
//! Both Solo5 notes are ordinary ELF notes (an [`ElfNoteHeader`], the name, the
//! descriptor) named `"Solo5"`. Solo5's loader (`elf_load_note` in
//! `tenders/common/elf.c`, used by the tenders and `solo5-elftool`) finds a note by
//! program header, not by section, and looks at **only the first note header of each
//! `PT_NOTE` segment**. For every `PT_NOTE` segment, in program header order:
//!
//! 1. shorter than an ELF note header (12 bytes): the image is rejected
//!    ([`NoteError::SegmentTooSmall`]);
//! 2. shorter than a Solo5 note header (20 bytes): skipped;
//! 3. name size not 6, name not `"Solo5"` followed by NUL, or another note type: skipped
//!    (the two bytes of name padding are not looked at);
//! 4. descriptor size 0 or above the note kind's maximum
//!    ([`NoteKind::max_descriptor_size`]): rejected;
//! 5. segment shorter than 20 bytes plus the descriptor size: rejected;
//! 6. otherwise this is the note (later segments are not looked at). Its descriptor
//!    starts at 20 rounded up to the kind's alignment ([`NoteKind::descriptor_align`]);
//!    the padding counts in the descriptor size, so the descriptor proper is that many
//!    bytes shorter, and must not be empty ([`NoteError::DescriptorShorterThanPadding`]).
//!
//! No such segment: the note is missing. [`find_note`] applies exactly these rules;
//! [`parse_note`] reads one note whose place is known (a section, the built-in
//! manifest), where a wrong name or type is an error instead of a reason to skip.

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::NoteError;

/// The name of every Solo5 note, with its terminating NUL (`SOLO5_NOTE_NAME`).
pub const SOLO5_NOTE_NAME: [u8; 6] = *b"Solo5\0";

/// The name size (`n_namesz`) of a Solo5 note: the name and its NUL.
pub const SOLO5_NOTE_NAME_SIZE: u32 = SOLO5_NOTE_NAME.len() as u32;

/// Note type of the application manifest note (`MFT1_NOTE_TYPE`, `"MFT1"` read as a
/// little-endian `u32`).
pub const MFT1_NOTE_TYPE: u32 = 0x3154_464d;

/// Note type of the ABI note (`ABI1_NOTE_TYPE`, `"ABI1"` read as a little-endian `u32`).
pub const ABI1_NOTE_TYPE: u32 = 0x3149_4241;

/// Alignment of the manifest descriptor inside its note (`MFT1_NOTE_ALIGN`): `struct
/// mft` holds 8-byte members, so 4 bytes of padding follow the 20-byte header.
pub const MFT1_NOTE_ALIGN: usize = 8;

/// Alignment of the ABI descriptor inside its note (`ABI1_NOTE_ALIGN`): no padding.
pub const ABI1_NOTE_ALIGN: usize = 4;

/// Largest descriptor size (`n_descsz`, padding included) of a manifest note that
/// Solo5 loads (`MFT1_NOTE_MAX_SIZE`): 4 bytes of padding, the 8-byte manifest header
/// and [`MFT_MAX_ENTRIES`](crate::MFT_MAX_ENTRIES) entries of 104 bytes.
pub const MFT1_NOTE_MAX_SIZE: u32 = 6668;

/// Largest descriptor size of an ABI note that Solo5 loads (`ABI1_NOTE_MAX_SIZE`): room
/// for twice the 16-byte `struct abi1_info`.
pub const ABI1_NOTE_MAX_SIZE: u32 = 32;

/// An ELF note header (`Elf64_Nhdr`; ELF64 uses 32-bit words here, like ELF32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ElfNoteHeader {
    /// Size of the name in bytes, NUL included (`n_namesz`).
    pub namesz: u32,
    /// Size of the descriptor in bytes (`n_descsz`).
    pub descsz: u32,
    /// The note type (`n_type`), meaningful within the name's owner.
    pub note_type: u32,
}

/// The header of a Solo5 note: the ELF note header and the name padded to 8 bytes
/// (`struct mft1_nhdr`, `struct abi1_nhdr`, the loader's `struct solo5_nhdr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Solo5NoteHeader {
    /// The ELF note header.
    pub header: ElfNoteHeader,
    /// The name, `"Solo5"`, NUL and two bytes of padding.
    pub name: [u8; 8],
}

const _: () = {
    assert!(size_of::<ElfNoteHeader>() == 12);
    assert!(offset_of!(ElfNoteHeader, namesz) == 0);
    assert!(offset_of!(ElfNoteHeader, descsz) == 4);
    assert!(offset_of!(ElfNoteHeader, note_type) == 8);
    assert!(size_of::<Solo5NoteHeader>() == 20);
    assert!(offset_of!(Solo5NoteHeader, name) == 12);
    assert!(core::mem::align_of::<Solo5NoteHeader>() == 4);
};

/// Size of an ELF note header (`sizeof(Elf64_Nhdr)`).
pub const ELF_NOTE_HEADER_SIZE: usize = size_of::<ElfNoteHeader>();

/// Size of a Solo5 note header (`sizeof(struct solo5_nhdr)`).
pub const SOLO5_NOTE_HEADER_SIZE: usize = size_of::<Solo5NoteHeader>();

impl Solo5NoteHeader {
    /// The header of a Solo5 note of `kind` whose descriptor (padding included) is
    /// `descsz` bytes long, as Solo5's note declarations write it.
    pub const fn new(kind: NoteKind, descsz: u32) -> Self {
        Self {
            header: ElfNoteHeader {
                namesz: SOLO5_NOTE_NAME_SIZE,
                descsz,
                note_type: kind.note_type(),
            },
            name: [b'S', b'o', b'l', b'o', b'5', 0, 0, 0],
        }
    }

    /// Whether the name is Solo5's as the loader compares it: name size 6 and the name
    /// bytes `"Solo5"` then NUL (the two padding bytes do not matter).
    pub fn is_solo5(&self) -> bool {
        self.header.namesz == SOLO5_NOTE_NAME_SIZE && self.name[..6] == SOLO5_NOTE_NAME
    }
}

/// The two Solo5 notes this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// The application manifest, `MFT1`.
    Manifest,
    /// The ABI target and version, `ABI1`.
    Abi,
}

impl NoteKind {
    /// The note type (`n_type`).
    pub const fn note_type(self) -> u32 {
        match self {
            Self::Manifest => MFT1_NOTE_TYPE,
            Self::Abi => ABI1_NOTE_TYPE,
        }
    }

    /// Alignment of the descriptor within the note (the loader's `note_align`).
    pub const fn descriptor_align(self) -> usize {
        match self {
            Self::Manifest => MFT1_NOTE_ALIGN,
            Self::Abi => ABI1_NOTE_ALIGN,
        }
    }

    /// Offset of the descriptor proper from the start of the note: the Solo5 note
    /// header rounded up to [`descriptor_align`](Self::descriptor_align) (24 for the
    /// manifest, 20 for the ABI note).
    pub const fn descriptor_offset(self) -> usize {
        let align = self.descriptor_align();
        (SOLO5_NOTE_HEADER_SIZE + align - 1) & !(align - 1)
    }

    /// Bytes of padding between the header and the descriptor proper; they count in
    /// `n_descsz`.
    pub const fn descriptor_padding(self) -> usize {
        self.descriptor_offset() - SOLO5_NOTE_HEADER_SIZE
    }

    /// The largest `n_descsz` Solo5 loads for this kind (`*_NOTE_MAX_SIZE`).
    pub const fn max_descriptor_size(self) -> u32 {
        match self {
            Self::Manifest => MFT1_NOTE_MAX_SIZE,
            Self::Abi => ABI1_NOTE_MAX_SIZE,
        }
    }

    /// The kind whose note type is `note_type`, if any.
    pub const fn from_note_type(note_type: u32) -> Option<Self> {
        match note_type {
            MFT1_NOTE_TYPE => Some(Self::Manifest),
            ABI1_NOTE_TYPE => Some(Self::Abi),
            _ => None,
        }
    }
}

impl fmt::Display for NoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Manifest => "MFT1 (manifest)",
            Self::Abi => "ABI1",
        })
    }
}

/// A note found in a segment: the segment's label and the descriptor proper (padding
/// removed), which borrows from the segment's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundNote<'a> {
    /// The label the caller gave the segment (the program header index for
    /// `elf::notes_in_elf`).
    pub segment: usize,
    /// The descriptor without its alignment padding: `n_descsz` minus the padding.
    pub descriptor: &'a [u8],
}

/// Finds the note of `kind` among `PT_NOTE` segments by Solo5's loader's rules (see
/// the [module documentation](self)).
///
/// `segments` yields, in program header order, each `PT_NOTE` segment's label
/// (reported in errors and in the result; the program header index is the natural
/// choice) and its file bytes (`p_filesz` bytes from `p_offset`). Segments after the
/// one holding the note are not looked at, so a malformed one there is not reported,
/// as with Solo5. Returns `Ok(None)` when no segment holds the note.
pub fn find_note<'a, I>(segments: I, kind: NoteKind) -> Result<Option<FoundNote<'a>>, NoteError>
where
    I: IntoIterator<Item = (usize, &'a [u8])>,
{
    for (segment, bytes) in segments {
        if bytes.len() < ELF_NOTE_HEADER_SIZE {
            return Err(NoteError::SegmentTooSmall {
                segment,
                size: bytes.len(),
            });
        }
        let Ok((header, _)) = Solo5NoteHeader::read_from_prefix(bytes) else {
            // 12..20 bytes: cannot be a Solo5 note; Solo5 skips it.
            continue;
        };
        if !header.is_solo5() || header.header.note_type != kind.note_type() {
            continue;
        }
        let descriptor = descriptor(bytes, &header, kind, Some(segment))?;
        return Ok(Some(FoundNote {
            segment,
            descriptor,
        }));
    }
    Ok(None)
}

/// Reads one Solo5 note of `kind` that starts at the first byte of `note` (for a note
/// found by its section, or a unikernel's built-in note): the size rules of
/// [`find_note`], and a wrong name or type is an error. Bytes after the note are
/// ignored. Returns the descriptor without its padding.
pub fn parse_note(note: &[u8], kind: NoteKind) -> Result<&[u8], NoteError> {
    let Ok((header, _)) = Solo5NoteHeader::read_from_prefix(note) else {
        return Err(NoteError::Truncated {
            kind,
            size: note.len(),
        });
    };
    if !header.is_solo5() {
        return Err(NoteError::WrongName {
            kind,
            namesz: header.header.namesz,
            name: header.name,
        });
    }
    if header.header.note_type != kind.note_type() {
        return Err(NoteError::WrongType {
            kind,
            found: header.header.note_type,
        });
    }
    descriptor(note, &header, kind, None)
}

/// The size checks of steps 4 to 6 and the descriptor proper.
fn descriptor<'a>(
    bytes: &'a [u8],
    header: &Solo5NoteHeader,
    kind: NoteKind,
    segment: Option<usize>,
) -> Result<&'a [u8], NoteError> {
    let descsz = header.header.descsz;
    if descsz < 1 || descsz > kind.max_descriptor_size() {
        return Err(NoteError::DescriptorSizeOutOfRange {
            segment,
            kind,
            descsz,
        });
    }
    // descsz <= 6668, so the sum cannot overflow.
    let end = SOLO5_NOTE_HEADER_SIZE + descsz as usize;
    if bytes.len() < end {
        return Err(NoteError::NoteExceedsSegment {
            segment,
            kind,
            descsz,
            size: bytes.len(),
        });
    }
    if descsz as usize <= kind.descriptor_padding() {
        return Err(NoteError::DescriptorShorterThanPadding {
            segment,
            kind,
            descsz,
        });
    }
    Ok(&bytes[kind.descriptor_offset()..end])
}
