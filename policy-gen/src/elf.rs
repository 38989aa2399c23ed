//! The ELF image: its loadable segments as Muen memory regions.
//!
//! Each `PT_LOAD` segment becomes a file-backed `subject_binary` region for the pages
//! that hold its file bytes, and a zero-filled region for the pages beyond (`.bss`).
//! Muen maps whole pages, so:
//!
//! - a segment's first page starts at its address rounded down to 4 KiB, and its file
//!   offset is rounded down by the same amount (ELF requires the address and the offset
//!   to be congruent modulo the page size);
//! - the zero-filled part must start on a page boundary: the bytes after the file part
//!   in its last page would otherwise come from the file instead of being zero. Link
//!   with `.bss` aligned to 4 KiB.
//!
//! Region names (see `docs/conventions.md`): the segment holding the entry point is
//! `text`, the region Muen's `muinit` jumps to and Solo5's script names alike; other
//! segments are named for their access: `text` (executable), `bss` (writable, no file
//! bytes), `data` (writable) or `rodata` (read-only), with `2`, `3`, ... appended to
//! repeated names in address order. The zero-filled tail of a segment `N` that also
//! has file bytes is `N|fill`, as in Solo5's script. The names stay short because Muen
//! prefixes them with `<component>|` within 63 characters.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use muen_abi::layout::{Region, IMAGE_BASE, PAGE_SIZE, RAM_BASE};
use muen_abi::VirtAddr;
use muen_sinfo::MemoryKind;
use muen_spec::{Content, ProvidedMemory};
use xmas_elf::header::{Class, Data, Machine, Type};
use xmas_elf::program::{self, ProgramHeader};
use xmas_elf::ElfFile;
use zerocopy::IntoBytes;

/// The loadable part of an ELF file, as regions of the subject's address space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The entry point (initial RIP).
    pub entry: VirtAddr,
    /// The file name Muen's toolchain looks the file up by (the ELF's base name).
    pub file_name: String,
    /// The regions in address order: `subject_binary` memory the component provides,
    /// with the file's bytes (`<file>`) or zeroes (`<fill pattern="16#00#">`).
    pub regions: Vec<ProvidedMemory>,
}

/// Why an ELF file cannot be used.
#[derive(Debug)]
pub struct ElfError {
    /// The ELF file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: ElfProblem,
}

/// What is wrong with an ELF file.
#[derive(Debug)]
#[non_exhaustive]
pub enum ElfProblem {
    /// The file cannot be read.
    Read(io::Error),
    /// The file does not start with the ELF magic, or is too short.
    NotElf,
    /// Not a little-endian 64-bit x86-64 file.
    NotElf64X86_64 {
        /// What it is instead, e.g. "32-bit" or "machine AArch64".
        found: String,
    },
    /// Not an executable (`ET_EXEC`): relocatable objects and position-independent or
    /// shared objects have no fixed addresses.
    NotExecutable {
        /// The ELF type found.
        found: String,
    },
    /// The headers do not describe a consistent file.
    Malformed(String),
    /// No `PT_LOAD` segment with a non-zero memory size.
    NoLoadableSegments,
    /// A segment lies (partly) outside the image window.
    OutsideImageWindow {
        /// Program header index.
        index: usize,
        /// First address.
        start: u64,
        /// End address (exclusive).
        end: u64,
    },
    /// A segment's zero-filled part does not start on a page boundary.
    BssNotPageAligned {
        /// Program header index.
        index: usize,
        /// Where the zero-filled part starts.
        at: u64,
    },
    /// Two segments share a page.
    Overlap {
        /// One region.
        first: String,
        /// The other region.
        second: String,
        /// A shared address.
        at: u64,
    },
    /// The entry point is not in the file part of an executable segment.
    BadEntry {
        /// The entry point.
        entry: u64,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl fmt::Display for ElfProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfProblem::Read(e) => write!(f, "cannot read the ELF file: {e}"),
            ElfProblem::NotElf => f.write_str("not an ELF file (no ELF magic)"),
            ElfProblem::NotElf64X86_64 { found } => {
                write!(f, "not an ELF64 x86-64 file: it is {found}")
            }
            ElfProblem::NotExecutable { found } => write!(
                f,
                "not an executable with fixed addresses (the ELF type is {found}); link a \
                 static, non-PIE executable (ET_EXEC)"
            ),
            ElfProblem::Malformed(what) => write!(f, "malformed ELF file: {what}"),
            ElfProblem::NoLoadableSegments => {
                f.write_str("no loadable segments (no PT_LOAD with a non-zero size)")
            }
            ElfProblem::OutsideImageWindow { index, start, end } => write!(
                f,
                "segment {index} ({start:#x}..{end:#x}) is outside the image window \
                 {IMAGE_BASE:#x}..{RAM_BASE:#x}"
            ),
            ElfProblem::BssNotPageAligned { index, at } => write!(
                f,
                "segment {index}: its zero-filled part (.bss) starts at {at:#x}, not on a \
                 4 KiB page boundary; Muen would fill that page from the file. Align \
                 .bss to 4 KiB in the linker script"
            ),
            ElfProblem::Overlap { first, second, at } => write!(
                f,
                "regions `{first}` and `{second}` share the page at {at:#x}; link with \
                 page-aligned segments"
            ),
            ElfProblem::BadEntry { entry } => write!(
                f,
                "the entry point {entry:#x} is not in the file part of an executable \
                 loadable segment"
            ),
        }
    }
}

impl std::error::Error for ElfError {}

/// Size of an ELF64 program header.
const PH64_SIZE: u16 = 56;

/// Reads and checks the ELF file at `path`.
pub fn load(path: &Path) -> Result<Image, ElfError> {
    let error = |problem| ElfError {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| error(ElfProblem::Read(e)))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&bytes, &file_name).map_err(error)
}

/// Checks ELF file contents; `file_name` is what the policy's `<file>` elements name.
pub fn parse(bytes: &[u8], file_name: &str) -> Result<Image, ElfProblem> {
    // xmas-elf reads headers in place and asserts their alignment, so give it an
    // 8-byte-aligned copy.
    let mut aligned = vec![0u64; bytes.len().div_ceil(8)];
    aligned.as_mut_bytes()[..bytes.len()].copy_from_slice(bytes);
    let bytes = &aligned.as_bytes()[..bytes.len()];

    if bytes.len() < 64 || bytes[..4] != [0x7f, b'E', b'L', b'F'] {
        return Err(ElfProblem::NotElf);
    }
    let elf = ElfFile::new(bytes).map_err(|_| ElfProblem::NotElf)?;
    let header = &elf.header;
    let found = match (
        header.pt1.class(),
        header.pt1.data(),
        header.pt2.machine().as_machine(),
    ) {
        (Class::SixtyFour, Data::LittleEndian, Machine::X86_64) => None,
        (Class::SixtyFour, Data::LittleEndian, Machine::Other(code)) => {
            Some(format!("an ELF64 file for machine {code:#x}"))
        }
        (Class::SixtyFour, Data::LittleEndian, machine) => {
            Some(format!("an ELF64 file for {machine:?}"))
        }
        (Class::SixtyFour, _, _) => Some("a big-endian ELF64 file".to_string()),
        (Class::ThirtyTwo, _, _) => Some("a 32-bit ELF file".to_string()),
        (_, _, _) => Some("an ELF file of unknown class".to_string()),
    };
    if let Some(found) = found {
        return Err(ElfProblem::NotElf64X86_64 { found });
    }
    let found = match header.pt2.type_().as_type() {
        Type::Executable => None,
        Type::SharedObject => Some("ET_DYN, a position-independent executable or shared object"),
        Type::Relocatable => Some("ET_REL, a relocatable object"),
        Type::Core => Some("ET_CORE, a core dump"),
        _ => Some("not ET_EXEC"),
    };
    if let Some(found) = found {
        return Err(ElfProblem::NotExecutable {
            found: found.to_string(),
        });
    }
    let segments = load_segments(&elf)?;
    let entry = header.pt2.entry_point();
    image_regions(&segments, entry, file_name).map(|regions| Image {
        entry: VirtAddr::new(entry),
        file_name: file_name.to_string(),
        regions,
    })
}

/// A `PT_LOAD` segment with a non-zero memory size.
#[derive(Clone, Copy, Debug)]
struct Segment {
    index: usize,
    offset: u64,
    address: u64,
    file_size: u64,
    memory_size: u64,
    writable: bool,
    executable: bool,
}

fn load_segments(elf: &ElfFile<'_>) -> Result<Vec<Segment>, ElfProblem> {
    let malformed = |what: String| ElfProblem::Malformed(what);
    let pt2 = &elf.header.pt2;
    let count = pt2.ph_count();
    if count == 0 {
        return Err(ElfProblem::NoLoadableSegments);
    }
    // Checked here because xmas-elf indexes (and panics) without checking.
    let table_end = u64::from(count)
        .checked_mul(u64::from(PH64_SIZE))
        .and_then(|size| pt2.ph_offset().checked_add(size));
    if pt2.ph_entry_size() != PH64_SIZE
        || pt2.ph_offset() % 8 != 0
        || table_end.is_none_or(|end| end > elf.input.len() as u64)
    {
        return Err(malformed(format!(
            "the program header table ({count} entries of {} bytes at offset {:#x}) \
             does not fit the file",
            pt2.ph_entry_size(),
            pt2.ph_offset()
        )));
    }
    let mut segments = Vec::new();
    for index in 0..count {
        let ph = match elf.program_header(index) {
            Ok(ProgramHeader::Ph64(ph)) => ph,
            _ => return Err(malformed(format!("program header {index} is unreadable"))),
        };
        if ph.get_type() != Ok(program::Type::Load) || ph.mem_size == 0 {
            continue;
        }
        let index = usize::from(index);
        if ph.file_size > ph.mem_size {
            return Err(malformed(format!(
                "segment {index}: file size {:#x} exceeds memory size {:#x}",
                ph.file_size, ph.mem_size
            )));
        }
        if ph
            .offset
            .checked_add(ph.file_size)
            .is_none_or(|end| end > elf.input.len() as u64)
        {
            return Err(malformed(format!(
                "segment {index}: file bytes {:#x}+{:#x} lie beyond the end of the file",
                ph.offset, ph.file_size
            )));
        }
        if ph.file_size > 0 && ph.offset % PAGE_SIZE != ph.virtual_addr % PAGE_SIZE {
            return Err(malformed(format!(
                "segment {index}: address {:#x} and file offset {:#x} differ modulo the \
                 page size",
                ph.virtual_addr, ph.offset
            )));
        }
        segments.push(Segment {
            index,
            offset: ph.offset,
            address: ph.virtual_addr,
            file_size: ph.file_size,
            memory_size: ph.mem_size,
            writable: ph.flags.is_write(),
            executable: ph.flags.is_execute(),
        });
    }
    if segments.is_empty() {
        return Err(ElfProblem::NoLoadableSegments);
    }
    segments.sort_by_key(|s| s.address);
    Ok(segments)
}

const fn page_down(address: u64) -> u64 {
    address & !(PAGE_SIZE - 1)
}

/// Rounds up; only called on addresses below `RAM_BASE`, so it cannot overflow.
const fn page_up(address: u64) -> u64 {
    page_down(address + PAGE_SIZE - 1)
}

/// The regions of `segments` (sorted by address) of the file `file_name`, named by the
/// rule in the module documentation.
fn image_regions(
    segments: &[Segment],
    entry: u64,
    file_name: &str,
) -> Result<Vec<ProvidedMemory>, ElfProblem> {
    let holds_entry =
        |s: &Segment| s.executable && s.address <= entry && entry - s.address < s.file_size;
    if !segments.iter().any(holds_entry) {
        return Err(ElfProblem::BadEntry { entry });
    }

    let mut regions: Vec<ProvidedMemory> = Vec::new();
    // How often each name was given; `text` starts taken by the entry segment.
    let mut uses = [("text", 1u32), ("bss", 0), ("data", 0), ("rodata", 0)];
    for s in segments {
        let end = s.address.checked_add(s.memory_size);
        let Some(end) =
            end.filter(|&end| s.address >= IMAGE_BASE.as_u64() && end <= RAM_BASE.as_u64())
        else {
            return Err(ElfProblem::OutsideImageWindow {
                index: s.index,
                start: s.address,
                end: end.unwrap_or(u64::MAX),
            });
        };
        let name = if holds_entry(s) {
            "text".to_string()
        } else {
            let base = match (s.executable, s.writable, s.file_size) {
                (true, _, _) => 0,
                (false, true, 0) => 1,
                (false, true, _) => 2,
                (false, false, _) => 3,
            };
            uses[base].1 += 1;
            match uses[base] {
                (name, 1) => name.to_string(),
                (name, n) => format!("{name}{n}"),
            }
        };
        let start = page_down(s.address);
        let file_end = s.address + s.file_size;
        let region = |logical: String, from: u64, to: u64, content| ProvidedMemory {
            logical,
            region: Region {
                address: VirtAddr::new(from),
                size: to - from,
            },
            writable: s.writable,
            executable: s.executable,
            kind: MemoryKind::SubjectBinary,
            content,
            hash: None,
        };
        let (fill_start, fill_name) = if s.file_size > 0 {
            if s.memory_size > s.file_size && file_end % PAGE_SIZE != 0 {
                return Err(ElfProblem::BssNotPageAligned {
                    index: s.index,
                    at: file_end,
                });
            }
            let offset = s.offset - (s.address - start);
            regions.push(region(
                name.clone(),
                start,
                page_up(file_end),
                Content::File {
                    filename: file_name.to_string(),
                    offset: Some(offset),
                },
            ));
            (page_up(file_end), format!("{name}|fill"))
        } else {
            (start, name)
        };
        if page_up(end) > fill_start {
            regions.push(region(
                fill_name,
                fill_start,
                page_up(end),
                Content::Fill(0),
            ));
        }
    }
    for pair in regions.windows(2) {
        if pair[0].region.overlaps(&pair[1].region) {
            return Err(ElfProblem::Overlap {
                first: pair[0].logical.clone(),
                second: pair[1].logical.clone(),
                at: pair[1].region.address.as_u64(),
            });
        }
    }
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = IMAGE_BASE.as_u64();
    const R: (bool, bool) = (false, false);
    const RX: (bool, bool) = (false, true);
    const RW: (bool, bool) = (true, false);

    fn segment(address: u64, file_size: u64, memory_size: u64, (w, x): (bool, bool)) -> Segment {
        Segment {
            index: 0,
            offset: address - BASE,
            address,
            file_size,
            memory_size,
            writable: w,
            executable: x,
        }
    }

    fn regions(segments: &[Segment], entry: u64) -> Result<Vec<ProvidedMemory>, ElfProblem> {
        image_regions(segments, entry, "app")
    }

    fn file(offset: u64) -> Content {
        Content::File {
            filename: "app".into(),
            offset: Some(offset),
        }
    }

    fn names(regions: &[ProvidedMemory]) -> Vec<(&str, u64, u64, Content)> {
        regions
            .iter()
            .map(|r| {
                (
                    r.logical.as_str(),
                    r.region.address.as_u64(),
                    r.region.size,
                    r.content.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn names_follow_the_entry_and_access() {
        let b = BASE;
        let segments = [
            segment(b, 0x1800, 0x1800, R),           // headers + rodata
            segment(b + 0x2000, 0x100, 0x100, RX),   // helper code
            segment(b + 0x3000, 0x1000, 0x1000, RX), // code with the entry
            segment(b + 0x4000, 0x10, 0x10, R),      // more rodata
            segment(b + 0x5000, 0x1000, 0x3000, RW), // data + bss
            segment(b + 0x8000, 0, 0x10, RW),        // bss only
        ];
        let regions = regions(&segments, b + 0x3010).unwrap();
        assert_eq!(
            names(&regions),
            vec![
                ("rodata", b, 0x2000, file(0)),
                ("text2", b + 0x2000, 0x1000, file(0x2000)),
                ("text", b + 0x3000, 0x1000, file(0x3000)),
                ("rodata2", b + 0x4000, 0x1000, file(0x4000)),
                ("data", b + 0x5000, 0x1000, file(0x5000)),
                ("data|fill", b + 0x6000, 0x2000, Content::Fill(0)),
                ("bss", b + 0x8000, 0x1000, Content::Fill(0)),
            ]
        );
        assert!(regions[4].writable && !regions[4].executable);
        assert!(regions[5].writable);
        assert!(regions[2].executable && !regions[2].writable);
    }

    #[test]
    fn unaligned_start_rounds_address_and_offset_down() {
        let mut s = segment(BASE + 0x1f10, 0xf0, 0xf0, RW);
        s.offset = 0xf10;
        let text = segment(BASE, 0x100, 0x100, RX);
        let regions = regions(&[text, s], BASE).unwrap();
        assert_eq!(regions[1].region.address.as_u64(), BASE + 0x1000);
        assert_eq!(regions[1].region.size, 0x1000);
        assert_eq!(regions[1].content, file(0));
        assert_eq!(regions[1].kind, MemoryKind::SubjectBinary);
    }

    #[test]
    fn rejects_bss_sharing_a_page_with_file_bytes() {
        let text = segment(BASE, 0x100, 0x100, RX);
        let data = segment(BASE + 0x1000, 0x4, 0x8, RW);
        assert!(matches!(
            regions(&[text, data], BASE),
            Err(ElfProblem::BssNotPageAligned { at, .. }) if at == BASE + 0x1004
        ));
    }

    #[test]
    fn rejects_segments_sharing_a_page() {
        let text = segment(BASE, 0x100, 0x100, RX);
        let mut data = segment(BASE + 0x800, 0x100, 0x100, RW);
        data.offset = 0x800;
        assert!(matches!(
            regions(&[text, data], BASE),
            Err(ElfProblem::Overlap { .. })
        ));
    }

    #[test]
    fn segments_must_lie_in_the_image_window() {
        let text = segment(BASE, 0x100, 0x100, RX);
        let low = Segment {
            address: BASE - 0x1000,
            ..text
        };
        assert!(matches!(
            regions(&[low], BASE - 0x1000),
            Err(ElfProblem::OutsideImageWindow { .. })
        ));
        let high = segment(RAM_BASE.as_u64() - 0x1000, 0x1000, 0x1001, RW);
        assert!(matches!(
            regions(&[text, high], BASE),
            Err(ElfProblem::OutsideImageWindow { end, .. }) if end == RAM_BASE.as_u64() + 1
        ));
        let last = segment(RAM_BASE.as_u64() - 0x1000, 0x1000, 0x1000, RW);
        assert!(regions(&[text, last], BASE).is_ok());
        let wrap = Segment {
            memory_size: u64::MAX,
            ..segment(BASE + 0x1000, 0, 0, RW)
        };
        assert!(matches!(
            regions(&[text, wrap], BASE),
            Err(ElfProblem::OutsideImageWindow { .. })
        ));
    }

    #[test]
    fn entry_must_be_in_executable_file_bytes() {
        // The entry must not be in the zero-filled tail or in a non-executable segment.
        let text = segment(BASE, 0x1000, 0x2000, RX);
        let data = segment(BASE + 0x2000, 0x1000, 0x1000, RW);
        for entry in [BASE + 0x1000, BASE + 0x2000, 0] {
            assert!(matches!(
                regions(&[text, data], entry),
                Err(ElfProblem::BadEntry { .. })
            ));
        }
        assert!(regions(&[text, data], BASE + 0xfff).is_ok());
    }
}
