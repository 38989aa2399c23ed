//! The parts of an ELF64 x86-64 file QEMU mode reads: loadable segments (with their
//! physical addresses, for the boot stage) and symbol values (the runtime's stubs).
//!
//! Checked views over the file's bytes (zerocopy layouts, every offset and size
//! bounds-checked): a malformed file gives an error naming the problem, never a panic.
//! (`xmas-elf`, which `policy-gen` uses behind its own checks, indexes without checking
//! in the section and symbol paths needed here.)

use std::mem::size_of;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The ELF header.
#[derive(Clone, Copy, Debug, FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Header {
    ident: [u8; 16],
    kind: U16,
    machine: U16,
    version: U32,
    entry: U64,
    phoff: U64,
    shoff: U64,
    flags: U32,
    ehsize: U16,
    phentsize: U16,
    phnum: U16,
    shentsize: U16,
    shnum: U16,
    shstrndx: U16,
}

/// A program header.
#[derive(Clone, Copy, Debug, FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct ProgramHeader {
    kind: U32,
    flags: U32,
    offset: U64,
    vaddr: U64,
    paddr: U64,
    filesz: U64,
    memsz: U64,
    align: U64,
}

/// A section header.
#[derive(Clone, Copy, Debug, FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct SectionHeader {
    name: U32,
    kind: U32,
    flags: U64,
    addr: U64,
    offset: U64,
    size: U64,
    link: U32,
    info: U32,
    addralign: U64,
    entsize: U64,
}

/// A symbol table entry.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Symbol {
    name: U32,
    info: u8,
    other: u8,
    shndx: U16,
    value: U64,
    size: U64,
}

const _: () = assert!(size_of::<Header>() == 64);
const _: () = assert!(size_of::<ProgramHeader>() == 56);
const _: () = assert!(size_of::<SectionHeader>() == 64);
const _: () = assert!(size_of::<Symbol>() == 24);
const _: () = assert!(std::mem::offset_of!(Header, phoff) == 32);
const _: () = assert!(std::mem::offset_of!(Header, shnum) == 60);
const _: () = assert!(std::mem::offset_of!(SectionHeader, link) == 40);
const _: () = assert!(std::mem::offset_of!(Symbol, value) == 8);

const PT_LOAD: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const STT_FUNC: u8 = 2;
const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

/// A symbol: its value, size and whether it is a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolEntry {
    /// The value (a function's address).
    pub value: u64,
    /// The size in bytes (a function's length).
    pub size: u64,
    /// Whether its type is `STT_FUNC`.
    pub function: bool,
}

/// A loadable segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Virtual address.
    pub vaddr: u64,
    /// Physical address (where the boot stage's segments go).
    pub paddr: u64,
    /// The file bytes.
    pub bytes: Vec<u8>,
    /// Size in memory (the bytes, then zeroes).
    pub memsz: u64,
    /// Writable.
    pub writable: bool,
    /// Executable.
    pub executable: bool,
}

/// A checked ELF64 x86-64 executable.
#[derive(Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    header: Header,
}

/// `count` records of `T` at `offset` of `bytes`, each `entsize` bytes apart.
fn table<T: FromBytes + Copy>(
    bytes: &[u8],
    offset: u64,
    count: u64,
    entsize: u64,
    what: &str,
) -> Result<Vec<T>, String> {
    if count > 0 && entsize != size_of::<T>() as u64 {
        return Err(format!(
            "{what}: entry size {entsize}, expected {}",
            size_of::<T>()
        ));
    }
    let range = range(bytes, offset, count.saturating_mul(entsize), what)?;
    Ok(range
        .chunks_exact(size_of::<T>())
        .filter_map(|c| T::read_from_bytes(c).ok())
        .collect())
}

/// `len` bytes at `offset` of `bytes`, or an error naming `what`.
fn range<'a>(bytes: &'a [u8], offset: u64, len: u64, what: &str) -> Result<&'a [u8], String> {
    let start = usize::try_from(offset).ok();
    let end = offset
        .checked_add(len)
        .and_then(|e| usize::try_from(e).ok());
    match (start, end) {
        (Some(s), Some(e)) if e <= bytes.len() => Ok(&bytes[s..e]),
        _ => Err(format!(
            "{what}: {len:#x} bytes at offset {offset:#x} lie beyond the end of the file \
             ({:#x} bytes)",
            bytes.len()
        )),
    }
}

impl<'a> Elf<'a> {
    /// Checks that `bytes` is a little-endian ELF64 x86-64 executable (`ET_EXEC`).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let header = Header::read_from_prefix(bytes)
            .map(|(h, _)| h)
            .map_err(|_| "not an ELF file: shorter than an ELF64 header".to_string())?;
        if header.ident[..4] != *b"\x7fELF" {
            return Err("not an ELF file".into());
        }
        if header.ident[4] != 2 || header.ident[5] != 1 || header.machine.get() != EM_X86_64 {
            return Err("not a little-endian ELF64 file for x86-64".into());
        }
        if header.kind.get() != ET_EXEC {
            return Err(format!(
                "not a static executable (ELF type {}, expected ET_EXEC)",
                header.kind.get()
            ));
        }
        Ok(Elf { bytes, header })
    }

    /// The entry point.
    pub fn entry(&self) -> u64 {
        self.header.entry.get()
    }

    /// The `PT_LOAD` segments with a non-zero memory size, in file order.
    pub fn segments(&self) -> Result<Vec<Segment>, String> {
        let h = &self.header;
        let headers: Vec<ProgramHeader> = table(
            self.bytes,
            h.phoff.get(),
            u64::from(h.phnum.get()),
            u64::from(h.phentsize.get()),
            "program header table",
        )?;
        let mut out = Vec::new();
        for (i, ph) in headers.iter().enumerate() {
            if ph.kind.get() != PT_LOAD || ph.memsz.get() == 0 {
                continue;
            }
            if ph.filesz.get() > ph.memsz.get() {
                return Err(format!("segment {i}: file size exceeds memory size"));
            }
            let what = format!("segment {i}");
            let bytes = range(self.bytes, ph.offset.get(), ph.filesz.get(), &what)?;
            out.push(Segment {
                offset: ph.offset.get(),
                vaddr: ph.vaddr.get(),
                paddr: ph.paddr.get(),
                bytes: bytes.to_vec(),
                memsz: ph.memsz.get(),
                writable: ph.flags.get() & PF_W != 0,
                executable: ph.flags.get() & PF_X != 0,
            });
        }
        Ok(out)
    }

    /// The value of the symbol `name` in the file's symbol tables (`None`: no such
    /// symbol, or no symbol table: a stripped file).
    pub fn symbol(&self, name: &str) -> Result<Option<u64>, String> {
        Ok(self.symbol_entry(name)?.map(|s| s.value))
    }

    /// The symbol `name` (the first of that name, local or global) in the file's symbol
    /// tables (`None`: no such symbol, or no symbol table: a stripped file).
    pub fn symbol_entry(&self, name: &str) -> Result<Option<SymbolEntry>, String> {
        let h = &self.header;
        let sections: Vec<SectionHeader> = table(
            self.bytes,
            h.shoff.get(),
            u64::from(h.shnum.get()),
            u64::from(h.shentsize.get()),
            "section header table",
        )?;
        for (i, s) in sections.iter().enumerate() {
            if s.kind.get() != SHT_SYMTAB {
                continue;
            }
            let strtab = sections
                .get(s.link.get() as usize)
                .filter(|t| t.kind.get() == SHT_STRTAB)
                .ok_or_else(|| format!("section {i}: its string table is missing"))?;
            let strings = range(
                self.bytes,
                strtab.offset.get(),
                strtab.size.get(),
                "string table",
            )?;
            let count = s.size.get() / size_of::<Symbol>() as u64;
            let symbols: Vec<Symbol> = table(
                self.bytes,
                s.offset.get(),
                count,
                s.entsize.get(),
                &format!("section {i}"),
            )?;
            for sym in symbols {
                let Some(rest) = strings.get(sym.name.get() as usize..) else {
                    continue;
                };
                let text = rest.split(|&b| b == 0).next().unwrap_or_default();
                if text == name.as_bytes() {
                    return Ok(Some(SymbolEntry {
                        value: sym.value.get(),
                        size: sym.size.get(),
                        function: sym.info & 0xf == STT_FUNC,
                    }));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal executable: one segment, a symbol table with `one` = 0x1234.
    fn tiny() -> Vec<u8> {
        let mut f = vec![0u8; 0x400];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        let put64 =
            |f: &mut Vec<u8>, at: usize, v: u64| f[at..at + 8].copy_from_slice(&v.to_le_bytes());
        let put16 =
            |f: &mut Vec<u8>, at: usize, v: u16| f[at..at + 2].copy_from_slice(&v.to_le_bytes());
        put64(&mut f, 24, 0x20_0000); // entry
        put64(&mut f, 32, 0x40); // phoff
        put64(&mut f, 40, 0x100); // shoff
        put16(&mut f, 54, 56);
        put16(&mut f, 56, 1);
        put16(&mut f, 58, 64);
        put16(&mut f, 60, 3);
        // Program header: PT_LOAD R-X, 0x10 file bytes at 0x300, 0x20 in memory.
        put64(&mut f, 0x40, u64::from(PT_LOAD) | (5u64 << 32));
        put64(&mut f, 0x48, 0x300);
        put64(&mut f, 0x50, 0x20_0000);
        put64(&mut f, 0x58, 0x10_0000);
        put64(&mut f, 0x60, 0x10);
        put64(&mut f, 0x68, 0x20);
        // Sections: 0 null, 1 symtab at 0x200 (2 symbols, link 2), 2 strtab at 0x280.
        let sym = 0x100 + 64;
        f[sym + 4..sym + 8].copy_from_slice(&SHT_SYMTAB.to_le_bytes());
        put64(&mut f, sym + 24, 0x200);
        put64(&mut f, sym + 32, 48);
        f[sym + 40..sym + 44].copy_from_slice(&2u32.to_le_bytes());
        put64(&mut f, sym + 56, 24);
        let str_ = 0x100 + 128;
        f[str_ + 4..str_ + 8].copy_from_slice(&SHT_STRTAB.to_le_bytes());
        put64(&mut f, str_ + 24, 0x280);
        put64(&mut f, str_ + 32, 8);
        let one = Symbol {
            name: 1.into(),
            info: 0,
            other: 0,
            shndx: 1.into(),
            value: 0x1234.into(),
            size: 0.into(),
        };
        f[0x218..0x230].copy_from_slice(one.as_bytes());
        f[0x280..0x288].copy_from_slice(b"\0one\0two");
        f[0x300..0x310].copy_from_slice(&[0xaa; 16]);
        f
    }

    #[test]
    fn segments_and_symbols_are_read() {
        let f = tiny();
        let elf = Elf::parse(&f).unwrap();
        assert_eq!(elf.entry(), 0x20_0000);
        let s = elf.segments().unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].vaddr, s[0].paddr, s[0].memsz),
            (0x20_0000, 0x10_0000, 0x20)
        );
        assert_eq!(s[0].bytes, [0xaa; 16]);
        assert!(s[0].executable && !s[0].writable);
        assert_eq!(elf.symbol("one").unwrap(), Some(0x1234));
        assert_eq!(elf.symbol("on").unwrap(), None);
        assert_eq!(elf.symbol("two").unwrap(), None);
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        assert!(Elf::parse(b"short").unwrap_err().contains("shorter"));
        let mut f = tiny();
        f[0] = 0;
        assert_eq!(Elf::parse(&f).unwrap_err(), "not an ELF file");
        let mut f = tiny();
        f[4] = 1;
        assert!(Elf::parse(&f).unwrap_err().contains("ELF64"));
        let mut f = tiny();
        f[16] = 3;
        assert!(Elf::parse(&f).unwrap_err().contains("ET_EXEC"));
        // Segment bytes, tables and names beyond the end of the file.
        let mut f = tiny();
        f[0x48..0x50].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Elf::parse(&f)
            .unwrap()
            .segments()
            .unwrap_err()
            .contains("segment 0"));
        let mut f = tiny();
        f[40..48].copy_from_slice(&0xffff_ff00u64.to_le_bytes());
        assert!(Elf::parse(&f)
            .unwrap()
            .symbol("one")
            .unwrap_err()
            .contains("section header"));
        let mut f = tiny();
        f[0x218..0x21c].copy_from_slice(&0xffffu32.to_le_bytes());
        assert_eq!(Elf::parse(&f).unwrap().symbol("one").unwrap(), None);
        let mut f = tiny();
        f[0x100 + 64 + 40..0x100 + 64 + 44].copy_from_slice(&9u32.to_le_bytes());
        assert!(Elf::parse(&f)
            .unwrap()
            .symbol("one")
            .unwrap_err()
            .contains("string table"));
        let mut f = tiny();
        f[58..60].copy_from_slice(&40u16.to_le_bytes());
        assert!(Elf::parse(&f)
            .unwrap()
            .symbol("one")
            .unwrap_err()
            .contains("entry size"));
    }
}
