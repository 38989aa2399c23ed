//! The subject's ELF image in guest memory: its `subject_binary` regions filled from the
//! file, and the runtime's two paravirtualisation stubs switched to their QEMU bodies.
//!
//! `vmcall` cannot be trapped portably under QEMU (TCG raises #UD into the subject's
//! IDT; KVM handles it as its own hypercall). The runtime therefore triggers events and
//! exits through two 16-byte stubs with fixed symbols (`muen_testbed_abi::qemu`); the testbed
//! finds them in the symbol table, checks that they hold exactly the Muen bodies, and
//! writes the QEMU bodies (port I/O to the doorbell and QEMU's exit device) over them
//! in guest memory. The file itself is not changed.
//!
//! A Solo5 unikernel has no such stubs: its one way out is Solo5's `platform_exit`
//! (exit status in EDI), whose start gets the QEMU exit stub's body
//! ([`SubjectImage::parse_solo5`], `crate::qemu::solo5`).

use std::path::Path;

use muen_testbed_abi::qemu::{
    EXIT_MUEN, EXIT_QEMU, EXIT_SYMBOL, HYPERCALL_MUEN, HYPERCALL_QEMU, HYPERCALL_SYMBOL, STUB_SIZE,
};

use crate::memory::Memory;
use crate::qemu::elf::Elf;
use crate::qemu::solo5;
use muen_sinfo::MemoryKind;
use muen_spec::{Content, Mapping, SubjectView};

/// A subject image: the file and where its stubs are.
#[derive(Debug)]
pub struct SubjectImage {
    bytes: Vec<u8>,
    stubs: Vec<Stub>,
}

/// A place the testbed writes a QEMU body over.
#[derive(Debug)]
struct Stub {
    /// Its address.
    address: u64,
    /// The symbol.
    name: &'static str,
    /// The bytes it must hold (`None`: a function of at least [`STUB_SIZE`] bytes whose
    /// start is overwritten, whatever it holds).
    muen: Option<[u8; STUB_SIZE]>,
    /// What it gets.
    qemu: [u8; STUB_SIZE],
}

impl SubjectImage {
    /// Reads the ELF at `path` and finds the runtime's stubs.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks the ELF `bytes` and finds the runtime's stubs.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, String> {
        let elf = Elf::parse(&bytes)?;
        let find = |name: &str| -> Result<u64, String> {
            elf.symbol(name)?.ok_or_else(|| {
                format!(
                    "no symbol `{name}`: QEMU mode routes the subject's events and exit \
                     through muen-subject's stubs, so the image must be built with the \
                     runtime and not stripped"
                )
            })
        };
        let stub = |name, muen, qemu| -> Result<Stub, String> {
            Ok(Stub {
                address: find(name)?,
                name,
                muen: Some(muen),
                qemu,
            })
        };
        Ok(SubjectImage {
            stubs: vec![
                stub(HYPERCALL_SYMBOL, HYPERCALL_MUEN, HYPERCALL_QEMU)?,
                stub(EXIT_SYMBOL, EXIT_MUEN, EXIT_QEMU)?,
            ],
            bytes,
        })
    }

    /// Reads the Solo5 unikernel at `path` ([`Self::parse_solo5`]).
    pub fn load_solo5(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse_solo5(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks the Solo5 unikernel `bytes` and finds its `platform_exit`
    /// ([`solo5::PLATFORM_EXIT`]): a function of at least [`STUB_SIZE`] bytes, whose
    /// start gets the QEMU exit stub's body (`docs/solo5.md` says why).
    pub fn parse_solo5(bytes: Vec<u8>) -> Result<Self, String> {
        let elf = Elf::parse(&bytes)?;
        let name = solo5::PLATFORM_EXIT;
        let symbol = elf.symbol_entry(name)?.ok_or_else(|| {
            format!(
                "no symbol `{name}`: QEMU mode takes a Solo5 unikernel's exit status from \
                 the start of Solo5's `{name}`, so the image must not be stripped"
            )
        })?;
        if !symbol.function || symbol.size < STUB_SIZE as u64 {
            return Err(format!(
                "symbol `{name}` at {:#x} is not a function of at least {STUB_SIZE} bytes \
                 ({} bytes{}): not Solo5's Muen bindings?",
                symbol.value,
                symbol.size,
                if symbol.function {
                    ""
                } else {
                    ", not STT_FUNC"
                }
            ));
        }
        Ok(SubjectImage {
            stubs: vec![Stub {
                address: symbol.value,
                name,
                muen: None,
                qemu: EXIT_QEMU,
            }],
            bytes,
        })
    }

    /// Fills the image regions of `view` (mapping `i` in region `regions[i]` of
    /// `memory`) from the file and patches the stubs.
    pub fn install(
        &self,
        view: &SubjectView,
        regions: &[usize],
        memory: &Memory,
    ) -> Result<(), String> {
        for (&i, r) in regions.iter().zip(&view.mappings) {
            let Some(offset) = image_offset(r) else {
                continue;
            };
            // Bytes past the end of the file read as zero (Muen pads whole pages).
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let available = self.bytes.len().saturating_sub(start);
            let len = available.min(usize::try_from(r.region.size).unwrap_or(usize::MAX));
            if len > 0 {
                memory
                    .write_initial(i, 0, &self.bytes[start..start + len])
                    .map_err(|e| format!("writing region `{}`: {e}", r.name))?;
            }
        }
        for &Stub {
            address,
            name,
            muen,
            qemu,
        } in &self.stubs
        {
            let place = regions.iter().zip(&view.mappings).find(|(_, r)| {
                let (start, size) = (r.region.address.as_u64(), r.region.size);
                image_offset(r).is_some()
                    && r.executable
                    && start <= address
                    && address + STUB_SIZE as u64 <= start + size
            });
            let Some((&i, r)) = place else {
                return Err(format!(
                    "`{name}` at {address:#x} is not inside an executable image region \
                     of the policy"
                ));
            };
            let offset = memory.placement(i).offset + (address - r.region.address.as_u64());
            let found = memory
                .read_at(offset, STUB_SIZE)
                .map_err(|e| format!("reading `{name}`: {e}"))?;
            if let Some(muen) = muen.filter(|muen| found != muen) {
                return Err(format!(
                    "`{name}` at {address:#x} holds {found:02x?}, not the stub this testbed \
                     knows ({muen:02x?}): a different muen-subject version?"
                ));
            }
            memory
                .write_at(offset, &qemu)
                .map_err(|e| format!("patching `{name}`: {e}"))?;
        }
        Ok(())
    }
}

/// Where in the ELF file an image region's bytes start: a `subject_binary` region with
/// file content (its zero-filled ones have none).
fn image_offset(m: &Mapping) -> Option<u64> {
    match m.content {
        Content::File { offset, .. } if m.kind == MemoryKind::SubjectBinary => offset,
        _ => None,
    }
}
