//! The ELF reader on generated files: what it extracts, and that no input makes it
//! panic (xmas-elf indexes and asserts alignment without checking; `elf::parse` checks
//! first).

mod common;

use common::*;
use muen_spec::Content;
use policy_gen::elf::{self, ElfProblem};
use proptest::prelude::*;

fn file(offset: u64) -> Content {
    Content::File {
        filename: "echo".into(),
        offset: Some(offset),
    }
}

#[test]
fn typical_image() {
    let image = elf::parse(&typical_elf().bytes(), "echo").unwrap();
    assert_eq!(image.entry.as_u64(), IMAGE + 0x40);
    assert_eq!(image.file_name, "echo");
    let regions: Vec<(&str, u64, u64, bool, bool, Content)> = image
        .regions
        .iter()
        .map(|r| {
            (
                r.logical.as_str(),
                r.region.address.as_u64(),
                r.region.size,
                r.writable,
                r.executable,
                r.content.clone(),
            )
        })
        .collect();
    // The writer puts segment bytes after the headers at offsets congruent to their
    // addresses: text at 0x1000, rodata at 0x4000, data at 0x5000.
    assert_eq!(
        regions,
        vec![
            ("text", IMAGE, 0x3000, false, true, file(0x1000)),
            ("rodata", IMAGE + 0x3000, 0x1000, false, false, file(0x4000)),
            ("data", IMAGE + 0x4000, 0x1000, true, false, file(0x5000)),
            (
                "data|fill",
                IMAGE + 0x5000,
                0x2000,
                true,
                false,
                Content::Fill(0)
            ),
            (
                "bss",
                IMAGE + 0x7000,
                0x1_0000,
                true,
                false,
                Content::Fill(0)
            ),
        ]
    );
}

#[test]
fn program_header_table_beyond_the_file() {
    let mut bytes = typical_elf().bytes();
    let len = bytes.len() as u64;
    bytes[32..40].copy_from_slice(&len.to_le_bytes()); // e_phoff
    assert!(matches!(
        elf::parse(&bytes, "x"),
        Err(ElfProblem::Malformed(m)) if m.contains("program header table")
    ));
    let mut bytes = typical_elf().bytes();
    bytes[32..40].copy_from_slice(&0x41u64.to_le_bytes()); // misaligned
    assert!(matches!(
        elf::parse(&bytes, "x"),
        Err(ElfProblem::Malformed(_))
    ));
}

#[test]
fn segment_bytes_beyond_the_file() {
    let bytes = typical_elf().bytes();
    // `data` lies at 0x5000..0x6000 in the file.
    let truncated = &bytes[..0x5fff];
    assert!(matches!(
        elf::parse(truncated, "x"),
        Err(ElfProblem::Malformed(m)) if m.contains("beyond the end of the file")
    ));
}

#[test]
fn file_size_larger_than_memory_size() {
    let mut bytes = typical_elf().bytes();
    // Program header 0: p_memsz at 64 + 40.
    bytes[104..112].copy_from_slice(&1u64.to_le_bytes());
    assert!(matches!(
        elf::parse(&bytes, "x"),
        Err(ElfProblem::Malformed(m)) if m.contains("exceeds memory size")
    ));
}

proptest! {
    #[test]
    fn corrupted_files_give_errors_not_panics(
        edits in proptest::collection::vec((0usize..0x200, any::<u8>()), 1..16),
        cut in 0usize..0x9000,
    ) {
        let mut bytes = typical_elf().bytes();
        for (at, value) in edits {
            // Mostly the headers, where the structure is.
            let at = at % bytes.len();
            bytes[at] = value;
        }
        bytes.truncate(cut.min(bytes.len()));
        let _ = elf::parse(&bytes, "x");
    }

    #[test]
    fn random_headers_give_errors_not_panics(
        phoff in any::<u64>(),
        phentsize in any::<u16>(),
        phnum in any::<u16>(),
        offset in any::<u64>(),
        filesz in any::<u64>(),
        memsz in any::<u64>(),
        vaddr in any::<u64>(),
    ) {
        let mut bytes = typical_elf().bytes();
        bytes[32..40].copy_from_slice(&phoff.to_le_bytes());
        bytes[54..56].copy_from_slice(&phentsize.to_le_bytes());
        bytes[56..58].copy_from_slice(&phnum.to_le_bytes());
        let _ = elf::parse(&bytes, "x");
        let mut bytes = typical_elf().bytes();
        bytes[72..80].copy_from_slice(&offset.to_le_bytes());
        bytes[80..88].copy_from_slice(&vaddr.to_le_bytes());
        bytes[96..104].copy_from_slice(&filesz.to_le_bytes());
        bytes[104..112].copy_from_slice(&memsz.to_le_bytes());
        let _ = elf::parse(&bytes, "x");
    }
}
