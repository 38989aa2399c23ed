//! Finding the notes in an ELF image, as Solo5's loader does (feature `elf`).
//!
//! Solo5's `elf_load_note` (`tenders/common/elf.c`) first checks the ELF header (its
//! `ehdr_is_valid`): ELF64, the target's byte order (little-endian here), `e_version`
//! 1, a 64-byte header, at least one program header of 56 bytes, `ET_EXEC`, and the
//! target's machine (x86-64 here; Solo5's Muen target is x86-64 only). It then reads
//! the program header table and looks at the `PT_NOTE` segments by the rules of
//! [`crate::note`]. [`notes_in_elf`] does the same and also rejects, where Solo5 would
//! only fail once it read there, a program header table or `PT_NOTE` segment that
//! does not lie inside the file, and a program header table at offset 0 or at an offset
//! that is not a multiple of 8 (every linker aligns it; the ELF parser, `xmas-elf`, reads the
//! headers in place and needs that).
//!
//! `xmas-elf` panics on some malformed input (it indexes the file and asserts the
//! alignment of what it reads without checking), so every offset and size is checked
//! here before it reads, and the image is copied to an 8-byte-aligned buffer when it
//! is not aligned already.

use alloc::vec::Vec;
use core::fmt;

use xmas_elf::header::{Class, Data, Machine, Type};
use xmas_elf::program::{self, ProgramHeader};
use xmas_elf::ElfFile;
use zerocopy::IntoBytes;

use crate::error::Error;
use crate::notes::Solo5Notes;

/// Size of an ELF64 file header (`sizeof(Elf64_Ehdr)`).
pub const ELF64_HEADER_SIZE: usize = 64;

/// Size of an ELF64 program header (`sizeof(Elf64_Phdr)`).
pub const ELF64_PROGRAM_HEADER_SIZE: usize = 56;

/// Program header type of a note segment (`PT_NOTE`).
pub const PT_NOTE: u32 = 4;

/// What is wrong with an ELF image before its notes are looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF64 header.
    TooShort {
        /// The file's size.
        size: usize,
    },
    /// No ELF magic number.
    NotElf,
    /// Not a 64-bit ELF file.
    NotElf64,
    /// Not little-endian.
    NotLittleEndian,
    /// `e_version` is not 1 (`EV_CURRENT`).
    WrongVersion {
        /// The version found.
        version: u32,
    },
    /// `e_ehsize` is not 64.
    WrongHeaderSize {
        /// The header size found.
        size: u16,
    },
    /// No program headers.
    NoProgramHeaders,
    /// `e_phentsize` is not 56.
    WrongProgramHeaderSize {
        /// The size found.
        size: u16,
    },
    /// Not an executable (`ET_EXEC`).
    NotExecutable {
        /// The `e_type` found.
        elf_type: u16,
    },
    /// Not for x86-64.
    NotX86_64 {
        /// The `e_machine` found.
        machine: u16,
    },
    /// The program header table does not lie inside the file, or its offset is 0 or
    /// not a multiple of 8.
    ProgramHeadersOutsideFile {
        /// `e_phoff`.
        offset: u64,
        /// `e_phnum`.
        count: u16,
    },
    /// A `PT_NOTE` segment does not lie inside the file.
    SegmentOutsideFile {
        /// The program header's index.
        segment: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        size: u64,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { size } => write!(
                f,
                "not an ELF image: {size} bytes, shorter than an ELF64 header \
                 ({ELF64_HEADER_SIZE} bytes)"
            ),
            Self::NotElf => f.write_str("not an ELF image: no ELF magic number"),
            Self::NotElf64 => f.write_str("ELF header: not a 64-bit ELF file"),
            Self::NotLittleEndian => f.write_str("ELF header: not little-endian"),
            Self::WrongVersion { version } => {
                write!(f, "ELF header: e_version {version}, expected 1")
            }
            Self::WrongHeaderSize { size } => write!(
                f,
                "ELF header: e_ehsize {size}, expected {ELF64_HEADER_SIZE}"
            ),
            Self::NoProgramHeaders => f.write_str("ELF header: no program headers"),
            Self::WrongProgramHeaderSize { size } => write!(
                f,
                "ELF header: e_phentsize {size}, expected {ELF64_PROGRAM_HEADER_SIZE}"
            ),
            Self::NotExecutable { elf_type } => write!(
                f,
                "ELF header: e_type {elf_type}, expected ET_EXEC (2): Solo5 loads only \
                 static executables"
            ),
            Self::NotX86_64 { machine } => write!(
                f,
                "ELF header: e_machine {machine:#x}, expected x86-64 (0x3e)"
            ),
            Self::ProgramHeadersOutsideFile { offset, count } => write!(
                f,
                "the program header table ({count} entries at offset {offset:#x}) does not \
                 lie inside the file after the ELF header at an 8-byte aligned offset"
            ),
            Self::SegmentOutsideFile {
                segment,
                offset,
                size,
            } => write!(
                f,
                "PT_NOTE segment {segment} (offset {offset:#x}, {size:#x} bytes) does not \
                 lie inside the file"
            ),
        }
    }
}

impl core::error::Error for ElfError {}

/// A `PT_NOTE` segment: its program header index and its place in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoteSegment {
    /// The program header's index.
    pub index: usize,
    /// `p_offset`.
    pub offset: usize,
    /// `p_filesz`.
    pub size: usize,
}

/// The `PT_NOTE` segments of `image` in program header order, after the checks of the
/// [module documentation](self). Each one lies inside the file.
pub fn note_segments(image: &[u8]) -> Result<Vec<NoteSegment>, ElfError> {
    if image.len() < ELF64_HEADER_SIZE {
        return Err(ElfError::TooShort { size: image.len() });
    }
    let words;
    let aligned = if image.as_ptr().align_offset(8) == 0 {
        image
    } else {
        words = aligned_words(image);
        &words.as_bytes()[..image.len()]
    };
    let elf = ElfFile::new(aligned).map_err(|_| header_error(aligned))?;
    let header = &elf.header;
    if header.pt1.class() != Class::SixtyFour {
        return Err(ElfError::NotElf64);
    }
    if header.pt1.data() != Data::LittleEndian {
        return Err(ElfError::NotLittleEndian);
    }
    let pt2 = &header.pt2;
    if pt2.version() != 1 {
        return Err(ElfError::WrongVersion {
            version: pt2.version(),
        });
    }
    if usize::from(pt2.header_size()) != ELF64_HEADER_SIZE {
        return Err(ElfError::WrongHeaderSize {
            size: pt2.header_size(),
        });
    }
    if pt2.ph_count() < 1 {
        return Err(ElfError::NoProgramHeaders);
    }
    if usize::from(pt2.ph_entry_size()) != ELF64_PROGRAM_HEADER_SIZE {
        return Err(ElfError::WrongProgramHeaderSize {
            size: pt2.ph_entry_size(),
        });
    }
    if pt2.type_().as_type() != Type::Executable {
        return Err(ElfError::NotExecutable {
            elf_type: pt2.type_().0,
        });
    }
    if pt2.machine().as_machine() != Machine::X86_64 {
        return Err(ElfError::NotX86_64 {
            machine: u16::from_le_bytes([aligned[18], aligned[19]]),
        });
    }
    let count = pt2.ph_count();
    let table_end = (ELF64_PROGRAM_HEADER_SIZE as u64 * u64::from(count))
        .checked_add(pt2.ph_offset())
        .filter(|&end| end <= image.len() as u64);
    if table_end.is_none() || pt2.ph_offset() == 0 || pt2.ph_offset() % 8 != 0 {
        return Err(ElfError::ProgramHeadersOutsideFile {
            offset: pt2.ph_offset(),
            count,
        });
    }
    let mut segments = Vec::new();
    for index in 0..count {
        // The table lies inside the file and is aligned: this cannot fail.
        let Ok(ProgramHeader::Ph64(ph)) = elf.program_header(index) else {
            return Err(ElfError::ProgramHeadersOutsideFile {
                offset: pt2.ph_offset(),
                count,
            });
        };
        if ph.get_type() != Ok(program::Type::Note) {
            continue;
        }
        let outside = ElfError::SegmentOutsideFile {
            segment: usize::from(index),
            offset: ph.offset,
            size: ph.file_size,
        };
        let end = ph.offset.checked_add(ph.file_size).ok_or(outside)?;
        if end > image.len() as u64 {
            return Err(outside);
        }
        segments.push(NoteSegment {
            index: usize::from(index),
            // Both lie inside the file, so they fit a usize.
            offset: ph.offset as usize,
            size: ph.file_size as usize,
        });
    }
    Ok(segments)
}

/// Finds and reads both Solo5 notes of `image` as Solo5 does (see
/// [`Solo5Notes::from_note_segments`]), after the ELF checks of
/// [`note_segments`]. Segment labels are program header indices.
pub fn notes_in_elf(image: &[u8]) -> Result<Solo5Notes<'_>, Error> {
    let segments = note_segments(image)?;
    let bytes: Vec<(usize, &[u8])> = segments
        .iter()
        .filter_map(|s| Some((s.index, image.get(s.offset..s.offset.checked_add(s.size)?)?)))
        .collect();
    Solo5Notes::from_note_segments(bytes.iter().copied())
}

/// The error for a header `xmas-elf` refused (it checks only the magic, the class and
/// the length).
fn header_error(image: &[u8]) -> ElfError {
    if image.get(..4) != Some(b"\x7fELF".as_slice()) {
        ElfError::NotElf
    } else {
        ElfError::NotElf64
    }
}

/// `image` copied into 8-byte aligned memory (the last word padded with zeroes).
fn aligned_words(image: &[u8]) -> Vec<u64> {
    image
        .chunks(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            u64::from_ne_bytes(word)
        })
        .collect()
}
