//! The unikernel's built-in manifest: the `MFT1` note the application's `manifest.o`
//! defines as `__solo5_mft1_note`, validated at start exactly as Solo5's bindings do.
//!
//! Solo5 takes the manifest from the note in place: the descriptor starts 24 bytes
//! after the note header (the 20-byte header and 4 bytes of padding) and its size is
//! the note's descriptor size minus that padding (`solo5_abi::builtin_manifest_size`).
//! [`builtin`] checks the manifest's fixed header *before* it views that many bytes
//! (`solo5_abi::check_manifest_header`), so a wrong size in the note cannot make it
//! read past the manifest's entries, then applies `solo5_abi::Manifest::validate`
//! (Solo5's `mft_validate`). A manifest that fails is Solo5's "Built-in manifest
//! validation failed. Aborting." at start.

use solo5_abi::{
    builtin_manifest_size, check_manifest_header, Manifest, ManifestError, MftHeader, NoteKind,
    Solo5NoteHeader,
};

/// Reads and validates the built-in manifest whose note starts at `note`.
///
/// # Safety
///
/// `note` points to a readable note header (20 bytes) followed by the manifest's fixed
/// header (at offset 24, 8 bytes) and by as many entries as that header says, all
/// readable and unchanged for `'a` — which holds for the note a Solo5 tool chain
/// compiled into the image.
pub unsafe fn builtin<'a>(note: *const Solo5NoteHeader) -> Result<Manifest<'a>, ManifestError> {
    // SAFETY: the note header is readable (contract); any bytes are a valid header.
    let header = unsafe { note.read_unaligned() };
    let size = builtin_manifest_size(&header);
    let mft = note
        .cast::<u8>()
        .wrapping_add(NoteKind::Manifest.descriptor_offset());
    // SAFETY: the manifest's 8-byte header is readable (contract).
    let mft_header = unsafe { mft.cast::<MftHeader>().read_unaligned() };
    let len = check_manifest_header(&mft_header, size)?;
    // SAFETY: `len` = 8 + 104 × entries of the header read above (checked), and that
    // many bytes are readable and unchanged for 'a (contract).
    let bytes: &'a [u8] = unsafe { core::slice::from_raw_parts(mft, len) };
    Manifest::validate(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use solo5_abi::build::{manifest, manifest_unchecked, mft1_note, DeviceSpec};
    use solo5_abi::{DeviceType, MftEntry, Solo5Handle, MFT_RESERVED_FIRST};

    /// The note bytes, 8-aligned as in the image.
    fn aligned(note: &[u8]) -> Vec<u64> {
        let mut words = vec![0u64; note.len().div_ceil(8)];
        // SAFETY: `words` has at least note.len() bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(note.as_ptr(), words.as_mut_ptr().cast(), note.len())
        };
        words
    }

    #[test]
    fn a_built_manifest_validates_and_finds_its_devices() {
        let mft = manifest(&[
            DeviceSpec {
                name: "service0",
                device_type: DeviceType::NetBasic,
            },
            DeviceSpec {
                name: "storage",
                device_type: DeviceType::BlockBasic,
            },
        ])
        .unwrap();
        let note = aligned(&mft1_note(&mft));
        // SAFETY: a whole note in test memory.
        let m = unsafe { builtin(note.as_ptr().cast()) }.unwrap();
        assert_eq!(m.entry_count(), 3);
        assert_eq!(
            m.lookup(b"service0", DeviceType::NetBasic),
            Some(Solo5Handle(1))
        );
        assert_eq!(
            m.lookup(b"storage", DeviceType::BlockBasic),
            Some(Solo5Handle(2))
        );
        assert_eq!(m.lookup(b"storage", DeviceType::NetBasic), None);
    }

    #[test]
    fn solo5s_validation_failures_are_errors_and_nothing_is_read_past_the_entries() {
        let reserved = MftEntry::new(b"", MFT_RESERVED_FIRST);
        let net = MftEntry::new(b"service0", solo5_abi::mft::MFT_DEV_NET_BASIC);
        type Expected = fn(&ManifestError) -> bool;
        let cases: [(Vec<u8>, Expected); 4] = [
            (manifest_unchecked(2, 1, &[reserved]), |e| {
                matches!(e, ManifestError::WrongVersion { version: 2 })
            }),
            (manifest_unchecked(1, 0, &[]), |e| {
                matches!(e, ManifestError::NoEntries)
            }),
            (manifest_unchecked(1, 1, &[net]), |e| {
                matches!(e, ManifestError::FirstEntryNotReserved { .. })
            }),
            (manifest_unchecked(1, 65, &[reserved]), |e| {
                matches!(e, ManifestError::TooManyEntries { entries: 65 })
            }),
        ];
        for (mft, expected) in cases {
            let note = aligned(&mft1_note(&mft));
            // SAFETY: the note is whole; a header claiming more entries than the note
            // holds is refused before the entries are viewed.
            let e = unsafe { builtin(note.as_ptr().cast()) }.unwrap_err();
            assert!(expected(&e), "{e:?}");
        }
        // A note whose descriptor size disagrees with the manifest's header.
        let mut note = mft1_note(&manifest_unchecked(1, 2, &[reserved, net]));
        note[4..8].copy_from_slice(&(4u32 + 8 + 104).to_le_bytes());
        let note = aligned(&note);
        // SAFETY: as above.
        let e = unsafe { builtin(note.as_ptr().cast()) }.unwrap_err();
        assert!(matches!(e, ManifestError::SizeMismatch { .. }), "{e:?}");
    }
}
