//! Writes note bytes and minimal ELF images that hold them (feature `builder`).
//!
//! [`manifest`] and [`abi1_note`] write what Solo5's tool chain writes; the other
//! functions write whatever they are given, so tests can make every malformed note
//! and image.

use alloc::vec::Vec;

use zerocopy::IntoBytes;

use crate::abi1::{Abi, Abi1Note};
use crate::error::ManifestError;
use crate::mft::{
    check_device_name, DeviceType, MftEntry, MftHeader, MFT_MAX_DEVICES, MFT_VERSION,
};
use crate::note::{ElfNoteHeader, NoteKind, Solo5NoteHeader};

/// A device to put in a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceSpec<'a> {
    /// The name.
    pub name: &'a str,
    /// The type.
    pub device_type: DeviceType,
}

/// The manifest (`struct mft`, the manifest note's descriptor without padding) that
/// `solo5-elftool gen-manifest` generates for `devices`: the reserved entry, then one
/// entry per device in order, everything else zero. Refuses what `gen-manifest`
/// refuses (more than 63 devices, empty, too long or non-alphanumeric names) and
/// duplicate names.
pub fn manifest(devices: &[DeviceSpec<'_>]) -> Result<Vec<u8>, ManifestError> {
    if devices.len() > MFT_MAX_DEVICES {
        return Err(ManifestError::TooManyDevices {
            devices: devices.len(),
        });
    }
    for (index, device) in (1..).zip(devices) {
        check_device_name(device.name.as_bytes(), index)?;
        if let Some(first) = (1..).zip(devices).find(|(_, d)| d.name == device.name) {
            if first.0 != index {
                return Err(ManifestError::DuplicateName {
                    first: first.0,
                    second: index,
                });
            }
        }
    }
    let mut entries = Vec::with_capacity(devices.len() + 1);
    entries.push(MftEntry::RESERVED_FIRST);
    entries.extend(
        devices
            .iter()
            .map(|d| MftEntry::new(d.name.as_bytes(), d.device_type.raw())),
    );
    Ok(manifest_unchecked(
        MFT_VERSION,
        entries.len() as u32,
        &entries,
    ))
}

/// A manifest with the given header fields and entries, nothing checked.
pub fn manifest_unchecked(version: u32, entry_count: u32, entries: &[MftEntry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(
        MftHeader {
            version,
            entries: entry_count,
        }
        .as_bytes(),
    );
    for entry in entries {
        bytes.extend_from_slice(entry.as_bytes());
    }
    bytes
}

/// The manifest note holding `mft`: header (descriptor size = 4 + `mft.len()`), 4
/// bytes of padding, `mft`, as Solo5's `MFT1_NOTE_DECLARE_BEGIN` lays it out.
pub fn mft1_note(mft: &[u8]) -> Vec<u8> {
    let padding = NoteKind::Manifest.descriptor_padding();
    let descsz = u32::try_from(padding + mft.len()).unwrap_or(u32::MAX);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(Solo5NoteHeader::new(NoteKind::Manifest, descsz).as_bytes());
    bytes.resize(bytes.len() + padding, 0);
    bytes.extend_from_slice(mft);
    bytes
}

/// The ABI note declaring `abi` (36 bytes).
pub fn abi1_note(abi: Abi) -> Vec<u8> {
    Abi1Note::new(abi).as_bytes().to_vec()
}

/// A note with any header and `payload` after it (not padded; `descsz` need not match
/// `payload`'s length).
pub fn note_unchecked(header: ElfNoteHeader, name: [u8; 8], payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(Solo5NoteHeader { header, name }.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A minimal ELF64 x86-64 executable (`ET_EXEC`) whose program headers are
/// `segments`, in order: each a program header type (`p_type`, [`PT_NOTE`] for
/// notes) and the segment's file bytes, placed after the program header table at
/// 8-byte aligned offsets. No sections, entry 0: enough for Solo5's note loader.
///
/// [`PT_NOTE`]: crate::elf::PT_NOTE
pub fn elf_image(segments: &[(u32, &[u8])]) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let count = u16::try_from(segments.len()).unwrap_or(u16::MAX);
    let mut image = Vec::new();
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, System V ABI.
    image.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    image.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
    image.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine EM_X86_64
    image.extend_from_slice(&1u32.to_le_bytes()); // e_version
    image.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    image.extend_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
    image.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    image.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    image.extend_from_slice(&(EHDR as u16).to_le_bytes()); // e_ehsize
    image.extend_from_slice(&(PHDR as u16).to_le_bytes()); // e_phentsize
    image.extend_from_slice(&count.to_le_bytes()); // e_phnum
    image.extend_from_slice(&0u16.to_le_bytes()); // e_shentsize
    image.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    image.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    let mut offset = EHDR + PHDR * segments.len();
    for &(p_type, bytes) in segments {
        offset = offset.next_multiple_of(8);
        image.extend_from_slice(&p_type.to_le_bytes());
        image.extend_from_slice(&4u32.to_le_bytes()); // p_flags PF_R
        image.extend_from_slice(&(offset as u64).to_le_bytes()); // p_offset
        image.extend_from_slice(&0u64.to_le_bytes()); // p_vaddr
        image.extend_from_slice(&0u64.to_le_bytes()); // p_paddr
        image.extend_from_slice(&(bytes.len() as u64).to_le_bytes()); // p_filesz
        image.extend_from_slice(&(bytes.len() as u64).to_le_bytes()); // p_memsz
        image.extend_from_slice(&8u64.to_le_bytes()); // p_align
        offset += bytes.len();
    }
    for &(_, bytes) in segments {
        image.resize(image.len().next_multiple_of(8), 0);
        image.extend_from_slice(bytes);
    }
    image
}
