//! Solo5's test programs built for Muen, for the tests of policy-gen and the testbed
//! (the testbed's tests include this file by path): the build by
//! `scripts/solo5-build.sh` from the pinned tree beside the repository, and images with
//! broken notes made from the real ones. Tests that need them fail with a message
//! naming what is missing; they never skip.

#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `tests/` directory of Solo5's build: runs `scripts/solo5-build.sh` once per
/// test binary (the script only checks its stamp when the build is current).
pub fn solo5_tests() -> &'static Path {
    static TESTS: OnceLock<PathBuf> = OnceLock::new();
    TESTS.get_or_init(|| {
        let src = std::env::var_os("SOLO5_SRC")
            .map_or_else(|| repo().join("../shared/solo5"), PathBuf::from);
        assert!(
            src.join("include/solo5.h").is_file(),
            "the Solo5 source tree is missing at {} (the pinned tree ../shared/solo5 must \
             lie beside the repository; SOLO5_SRC names another)",
            src.display()
        );
        let script = repo().join("scripts/solo5-build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .env("SOLO5_SRC", &src)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({}), so Solo5's test programs are missing:\n{stdout}{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("solo5-tests "))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{} printed no `solo5-tests` line", script.display()))
    })
}

/// Solo5's test program `test_<name>` built for Muen (`test_<name>.muen`).
pub fn muen_image(name: &str) -> PathBuf {
    let path = solo5_tests().join(format!("test_{name}/test_{name}.muen"));
    assert!(
        path.is_file(),
        "{} is missing after scripts/solo5-build.sh",
        path.display()
    );
    path
}

/// Every test program Solo5 builds for Muen, by name (`hello`, `net`, ...).
pub fn muen_images() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(solo5_tests())
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let name = name.strip_prefix("test_")?.to_string();
            muen_image_exists(&name).then_some(name)
        })
        .collect();
    names.sort();
    names
}

fn muen_image_exists(name: &str) -> bool {
    solo5_tests()
        .join(format!("test_{name}/test_{name}.muen"))
        .is_file()
}

const PHDR_OFFSET: usize = 32; // e_phoff
const PHDR_COUNT: usize = 56; // e_phnum
const PHDR_SIZE: usize = 56;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Solo5's note types (`include/elf_abi.h`, `include/mft_abi.h`).
pub const ABI1: u32 = 0x3149_4241;
/// The manifest note's type.
pub const MFT1: u32 = 0x3154_464d;

/// An ELF image to break on purpose, by its program headers and note bytes.
pub struct Image {
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl Image {
    /// Reads Solo5's `test_<name>.muen`.
    pub fn real(name: &str) -> Image {
        Image {
            bytes: std::fs::read(muen_image(name)).unwrap(),
        }
    }

    /// The file offset of program header `index`.
    fn phdr(&self, index: usize) -> usize {
        u64_at(&self.bytes, PHDR_OFFSET) as usize + index * PHDR_SIZE
    }

    /// The index of the `PT_NOTE` segment whose first note has type `note_type`.
    pub fn note_segment(&self, note_type: u32) -> usize {
        (0..usize::from(u16_at(&self.bytes, PHDR_COUNT)))
            .find(|&i| {
                let ph = self.phdr(i);
                u32_at(&self.bytes, ph) == 4 && {
                    let offset = u64_at(&self.bytes, ph + 8) as usize;
                    u32_at(&self.bytes, offset + 8) == note_type
                }
            })
            .unwrap_or_else(|| panic!("no PT_NOTE segment with a note of type {note_type:#x}"))
    }

    /// The file offset of the note of type `note_type`.
    pub fn note(&self, note_type: u32) -> usize {
        let ph = self.phdr(self.note_segment(note_type));
        u64_at(&self.bytes, ph + 8) as usize
    }

    /// Sets the type of the `PT_NOTE` segment holding `note_type` (e.g. to `PT_NULL`,
    /// so that the loader no longer sees the note).
    pub fn set_segment_type(&mut self, note_type: u32, p_type: u32) -> &mut Self {
        let ph = self.phdr(self.note_segment(note_type));
        self.bytes[ph..ph + 4].copy_from_slice(&p_type.to_le_bytes());
        self
    }

    /// Sets `p_filesz` of the `PT_NOTE` segment holding `note_type`.
    pub fn set_segment_size(&mut self, note_type: u32, size: u64) -> &mut Self {
        let ph = self.phdr(self.note_segment(note_type)) + 32;
        self.bytes[ph..ph + 8].copy_from_slice(&size.to_le_bytes());
        self
    }

    /// Writes `value` at `offset` from the start of the note of type `note_type`
    /// (header included: the manifest starts at 24, the ABI descriptor at 20).
    pub fn set_u32(&mut self, note_type: u32, offset: usize, value: u32) -> &mut Self {
        let at = self.note(note_type) + offset;
        self.bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        self
    }

    /// Writes `name` (NUL-padded to 68 bytes) as the name of manifest entry `index`.
    pub fn set_entry_name(&mut self, index: usize, name: &str) -> &mut Self {
        let at = self.note(MFT1) + MANIFEST_ENTRIES + index * ENTRY_SIZE;
        let mut field = [0u8; 68];
        field[..name.len()].copy_from_slice(name.as_bytes());
        self.bytes[at..at + 68].copy_from_slice(&field);
        self
    }

    /// Writes the bytes to `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.bytes).unwrap();
    }
}

/// Offsets in the manifest note: the version, the entry count, the first entry.
pub const MANIFEST_VERSION: usize = 24;
/// The entry count.
pub const MANIFEST_ENTRY_COUNT: usize = 28;
/// The first entry.
pub const MANIFEST_ENTRIES: usize = 32;
/// Size of a manifest entry.
pub const ENTRY_SIZE: usize = 104;
/// Offset of an entry's type.
pub const ENTRY_TYPE: usize = 68;
/// Offsets in the ABI note: the target and the version.
pub const ABI_TARGET: usize = 20;
/// The ABI version.
pub const ABI_VERSION: usize = 24;
