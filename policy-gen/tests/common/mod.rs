//! Helpers shared by the integration tests: running the binary, validating with
//! xmllint, temporary directories and a small ELF64 writer.

#![allow(dead_code)] // each test binary uses a different subset

pub mod muen_kit;
pub mod solo5;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use zerocopy::{Immutable, IntoBytes};

/// The repository root (the directory above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub use muen_spec::Generation;

/// The schema folder of Muen's tools of `generation`, beside the repository in
/// `../shared/muen/<generation>/schema`.
pub fn schema_dir(generation: Generation) -> PathBuf {
    let path = repo_root().join(format!("../shared/muen/{generation}/schema"));
    assert!(
        path.join("component.xsd").is_file(),
        "Muen's schema of generation {generation} is missing at {}: the tests need \
         ../shared/muen beside the repository",
        path.display()
    );
    path
}

/// Muen's component schema of `generation`.
pub fn component_schema(generation: Generation) -> PathBuf {
    schema_dir(generation).join("component.xsd")
}

/// A schema for fragments of a source-format system policy: Muen's own type
/// definitions of `generation`, with `subject`, `events`, `channels`, `memory`, `map`
/// (a subject's component map) and `partition` (of the scheduling plan) as root
/// elements. Written into `dir`.
pub fn fragment_schema(dir: &TempDir, generation: Generation) -> std::path::PathBuf {
    let muen = schema_dir(generation).canonicalize().unwrap();
    let files = [
        "types.xsd",
        "config.xsd",
        "hardware.xsd",
        "devices.xsd",
        "events.xsd",
        "memory.xsd",
        "hash.xsd",
        "vcpu.xsd",
        "subject.xsd",
        "system_src/memory.xsd",
        "system_src/devices.xsd",
        "system_src/events.xsd",
        "system_src/hardware_misc.xsd",
        "system_src/components.xsd",
        "system_src/vcpu.xsd",
        "system_src/channels.xsd",
        "system_src/subject.xsd",
        "scheduling.xsd",
        "system_src/scheduling.xsd",
    ];
    let mut xsd = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" elementFormDefault=\"qualified\">\n",
    );
    for f in files {
        let path = muen.join(f);
        assert!(path.is_file(), "{}", path.display());
        xsd.push_str(&format!(
            " <xs:include schemaLocation=\"file://{}\"/>\n",
            path.display()
        ));
    }
    xsd.push_str(
        " <xs:element name=\"subject\" type=\"subjectType\"/>\n\
          <xs:element name=\"events\" type=\"eventsType\"/>\n\
          <xs:element name=\"channels\" type=\"channelsType\"/>\n\
          <xs:element name=\"memory\" type=\"memRegionsType\"/>\n\
          <xs:element name=\"map\" type=\"resourceMappingType\"/>\n\
          <xs:element name=\"partition\" type=\"schedulingPartitionType\"/>\n\
         </xs:schema>\n",
    );
    dir.write(&format!("fragments-{generation}.xsd"), xsd)
}

/// The `--muen-tools` arguments for `generation`.
pub fn tools(generation: Generation) -> [&'static str; 2] {
    ["--muen-tools", generation.name()]
}

/// Runs `policy-gen` with `args` in `dir`.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policy-gen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("policy-gen runs")
}

/// Runs `policy-gen`, expects success and an empty stderr, and returns stdout.
pub fn generate(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "policy-gen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Validates `xml` against `schema` with xmllint; panics with xmllint's messages if it
/// is invalid, and panics (never skips) if xmllint is not installed.
pub fn xmllint(xml: &str, schema: &Path, what: &str) {
    let dir = TempDir::new("xmllint");
    let file = dir.path().join("document.xml");
    std::fs::write(&file, xml).unwrap();
    let out = match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "xmllint is not installed: the schema tests need it (Debian package \
             libxml2-utils; scripts/setup.sh installs it)"
        ),
        Err(e) => panic!("cannot run xmllint: {e}"),
    };
    assert!(
        out.status.success(),
        "{what}: xmllint rejects the document (status {}):\n{}\n--- document ---\n{xml}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "policy-gen-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// A minimal ELF64 writer: a file header, program headers and segment bytes, nothing
// else (no sections). Enough for policy-gen, which reads only program headers.

/// `Elf64_Ehdr`.
#[derive(IntoBytes, Immutable)]
#[repr(C)]
struct FileHeader {
    ident: [u8; 16],
    kind: u16,
    machine: u16,
    version: u32,
    entry: u64,
    ph_offset: u64,
    sh_offset: u64,
    flags: u32,
    header_size: u16,
    ph_entry_size: u16,
    ph_count: u16,
    sh_entry_size: u16,
    sh_count: u16,
    sh_string_index: u16,
}

/// `Elf64_Phdr`.
#[derive(IntoBytes, Immutable)]
#[repr(C)]
struct ProgramHeader {
    kind: u32,
    flags: u32,
    offset: u64,
    address: u64,
    physical_address: u64,
    file_size: u64,
    memory_size: u64,
    align: u64,
}

const _: () = assert!(size_of::<FileHeader>() == 64);
const _: () = assert!(size_of::<ProgramHeader>() == 56);
const _: () = assert!(std::mem::offset_of!(FileHeader, entry) == 24);
const _: () = assert!(std::mem::offset_of!(ProgramHeader, memory_size) == 40);

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// One program header and its file bytes.
#[derive(Clone)]
pub struct Segment {
    pub kind: u32,
    pub flags: u32,
    pub address: u64,
    pub bytes: Vec<u8>,
    pub memory_size: u64,
}

/// An ELF file to write. Defaults: ELF64, little-endian, x86-64, `ET_EXEC`.
#[derive(Clone)]
pub struct Elf {
    pub class: u8,
    pub data: u8,
    pub machine: u16,
    pub kind: u16,
    pub entry: u64,
    pub segments: Vec<Segment>,
}

impl Elf {
    pub fn new(entry: u64) -> Elf {
        Elf {
            class: 2,
            data: 1,
            machine: 0x3e,
            kind: 2,
            entry,
            segments: Vec::new(),
        }
    }

    /// Adds a `PT_LOAD` segment with `file_size` bytes of content and `memory_size`.
    pub fn load(mut self, flags: u32, address: u64, file_size: usize, memory_size: u64) -> Elf {
        // Deterministic, non-zero content.
        let bytes = (0..file_size).map(|i| (i % 251) as u8 + 1).collect();
        self.segments.push(Segment {
            kind: PT_LOAD,
            flags,
            address,
            bytes,
            memory_size,
        });
        self
    }

    /// Adds a segment of another type.
    pub fn other(mut self, kind: u32, address: u64, size: usize) -> Elf {
        self.segments.push(Segment {
            kind,
            flags: PF_R,
            address,
            bytes: vec![0; size],
            memory_size: size as u64,
        });
        self
    }

    /// The file: headers, then each segment's bytes at an offset congruent to its
    /// address modulo 4 KiB.
    pub fn bytes(&self) -> Vec<u8> {
        let count = self.segments.len();
        let mut out = vec![0u8; 64 + 56 * count];
        let mut headers = Vec::new();
        for s in &self.segments {
            let mut offset = 0;
            if !s.bytes.is_empty() {
                offset = out.len() as u64;
                let want = s.address % 0x1000;
                if offset % 0x1000 != want {
                    offset = offset.next_multiple_of(0x1000) + want;
                }
                out.resize(offset as usize, 0);
                out.extend_from_slice(&s.bytes);
            }
            headers.push(ProgramHeader {
                kind: s.kind,
                flags: s.flags,
                offset,
                address: s.address,
                physical_address: s.address,
                file_size: s.bytes.len() as u64,
                memory_size: s.memory_size,
                align: 0x1000,
            });
        }
        let mut ident = [0u8; 16];
        ident[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', self.class, self.data, 1]);
        let header = FileHeader {
            ident,
            kind: self.kind,
            machine: self.machine,
            version: 1,
            entry: self.entry,
            ph_offset: 64,
            sh_offset: 0,
            flags: 0,
            header_size: 64,
            ph_entry_size: 56,
            ph_count: count as u16,
            sh_entry_size: 64,
            sh_count: 0,
            sh_string_index: 0,
        };
        out[..64].copy_from_slice(header.as_bytes());
        for (i, h) in headers.iter().enumerate() {
            out[64 + 56 * i..64 + 56 * (i + 1)].copy_from_slice(h.as_bytes());
        }
        out
    }

    /// Writes the file to `dir/name` and returns its path.
    pub fn write(&self, dir: &TempDir, name: &str) -> PathBuf {
        dir.write(name, self.bytes())
    }
}

pub const IMAGE: u64 = muen_abi::layout::IMAGE_BASE.as_u64();

/// A runtime-like image: code with the entry, read-only data, data with a zero-filled
/// tail, and a separate `.bss` segment.
pub fn typical_elf() -> Elf {
    Elf::new(IMAGE + 0x40)
        .load(PF_R | PF_X, IMAGE, 0x2345, 0x2345)
        .load(PF_R, IMAGE + 0x3000, 0x800, 0x800)
        .load(PF_R | PF_W, IMAGE + 0x4000, 0x1000, 0x3000)
        .load(PF_R | PF_W, IMAGE + 0x7000, 0, 0x1_0000)
        .other(PT_NOTE, IMAGE + 0x3800, 0x20)
}
