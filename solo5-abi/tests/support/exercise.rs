//! Runs arbitrary bytes through every reader of the crate; shared by the fuzz target
//! (`fuzz/fuzz_targets/notes.rs`) and the host tests.
//!
//! The bytes are read as one `PT_NOTE` segment, as a note read in place, as several
//! segments (the first byte gives their number, each has a 16-bit length prefix), as
//! an ELF image holding those segments, and as an ELF image themselves (also one byte
//! off, so the aligning copy runs). Whatever is accepted must be accepted again after
//! it is rebuilt from its decoded values, with the same result; errors must format.
//! Any panic is a finding.

#![allow(dead_code)]

use solo5_abi::build::{elf_image, manifest, manifest_unchecked, mft1_note, DeviceSpec};
use solo5_abi::elf::{notes_in_elf, PT_NOTE};
use solo5_abi::{
    find_note, parse_note, Abi, DeviceType, Manifest, NoteKind, Solo5Handle, Solo5Notes,
    MFT_VERSION,
};

/// Exercises `data` (see the module documentation).
pub fn exercise(data: &[u8]) {
    for kind in [NoteKind::Abi, NoteKind::Manifest] {
        match find_note([(0, data)], kind) {
            Ok(Some(found)) => check_descriptor(kind, found.descriptor),
            Ok(None) => {}
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        match parse_note(data, kind) {
            Ok(descriptor) => check_descriptor(kind, descriptor),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    // The whole input as a manifest.
    if let Ok(manifest) = Manifest::validate(data) {
        check_manifest(manifest);
    }

    let segments = split(data);
    let labelled: Vec<(usize, &[u8])> = segments.iter().copied().enumerate().collect();
    let from_segments = Solo5Notes::from_note_segments(labelled.iter().copied());
    match &from_segments {
        Ok(notes) => check_notes(notes),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if !segments.is_empty() {
        // The same segments in an ELF image: the same result, labels being program
        // header indices.
        let headers: Vec<(u32, &[u8])> = segments.iter().map(|s| (PT_NOTE, *s)).collect();
        let image = elf_image(&headers);
        assert_eq!(notes_in_elf(&image), from_segments);
    }

    for image in [data, data.get(1..).unwrap_or_default()] {
        match notes_in_elf(image) {
            Ok(notes) => check_notes(&notes),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// Splits `data` into segments: `data[0] % 5` segments, each a little-endian `u16`
/// length and that many bytes (fewer at the end); the last takes the rest.
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let Some((&count, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let count = usize::from(count % 5);
    let mut segments = Vec::new();
    for i in 0..count {
        if i + 1 == count {
            segments.push(rest);
            break;
        }
        let (len, tail) = match rest {
            [a, b, tail @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), tail),
            _ => (0, &[][..]),
        };
        let len = len.min(tail.len());
        segments.push(&tail[..len]);
        rest = &tail[len..];
    }
    segments
}

fn check_descriptor(kind: NoteKind, descriptor: &[u8]) {
    assert!(!descriptor.is_empty());
    assert!(descriptor.len() + kind.descriptor_padding() <= kind.max_descriptor_size() as usize);
    match kind {
        NoteKind::Abi => {
            if let Ok(abi) = Abi::from_descriptor(descriptor) {
                check_abi(abi);
            }
        }
        NoteKind::Manifest => {
            if let Ok(manifest) = Manifest::validate(descriptor) {
                check_manifest(manifest);
                // The note rebuilt around it reads back the same.
                let note = mft1_note(descriptor);
                let again = parse_note(&note, NoteKind::Manifest).unwrap();
                assert_eq!(again, descriptor);
            }
        }
    }
}

fn check_abi(abi: Abi) {
    let note = solo5_abi::build::abi1_note(abi);
    let descriptor = parse_note(&note, NoteKind::Abi).unwrap();
    assert_eq!(Abi::from_descriptor(descriptor), Ok(abi));
    assert_eq!(abi.expect(abi), Ok(()));
}

fn check_notes(notes: &Solo5Notes<'_>) {
    check_abi(notes.abi);
    check_manifest(notes.manifest);
}

/// An accepted manifest: rebuilt from its entries it validates to the same bytes;
/// lookups agree with the entries; its devices, if it has valid ones, rebuild to the
/// same devices.
fn check_manifest(manifest: Manifest<'_>) {
    let count = manifest.entry_count();
    assert!((1..=64).contains(&count));
    let entries: Vec<_> = manifest.entries().collect();
    assert_eq!(entries.len(), count as usize);
    let rebuilt = manifest_unchecked(MFT_VERSION, count, &entries);
    let again = Manifest::validate(&rebuilt).expect("a rebuilt valid manifest re-validates");
    assert_eq!(again.entry_bytes(), manifest.entry_bytes());

    for (index, entry) in (0u32..).zip(&entries) {
        assert_eq!(manifest.entry(index).as_ref(), Some(entry));
        assert_eq!(manifest.name(index), Some(entry.name_bytes()));
        if let Some(device_type) = DeviceType::from_raw(entry.entry_type) {
            let found = manifest
                .lookup(entry.name_bytes(), device_type)
                .expect("every device entry can be looked up");
            // The first entry of that type and name.
            assert!(found.0 <= u64::from(index));
            let first = &entries[found.0 as usize];
            assert_eq!(first.entry_type, entry.entry_type);
            assert_eq!(first.name_bytes(), entry.name_bytes());
        }
    }
    assert_eq!(manifest.entry(count), None);

    let elftool = manifest.check_elftool_rules();
    let unique = manifest.check_unique_names();
    match manifest.devices() {
        Ok(devices) => {
            assert_eq!((elftool, unique), (Ok(()), Ok(())));
            assert_eq!(devices.len(), count as usize - 1);
            let specs: Vec<DeviceSpec<'_>> = devices
                .iter()
                .map(|d| DeviceSpec {
                    name: d.name,
                    device_type: d.device_type,
                })
                .collect();
            assert_eq!(specs.len(), devices.len());
            for (handle, device) in (1u64..).zip(devices.iter()) {
                assert_eq!(device.handle, Solo5Handle(handle));
                assert_eq!(devices.get(device.handle), Some(device));
                assert_eq!(devices.find(device.name), Some(device));
                assert_eq!(
                    manifest.lookup(device.name.as_bytes(), device.device_type),
                    Some(device.handle)
                );
            }
            let built = manifest_from(&specs);
            let rebuilt = Manifest::validate(&built).expect("a built manifest validates");
            let rebuilt_devices = rebuilt.devices().expect("built devices pass the checks");
            assert!(rebuilt_devices.iter().eq(devices.iter()));
        }
        Err(e) => {
            assert!(elftool.is_err() || unique.is_err());
            assert_eq!(Err(e), elftool.and(unique));
            assert!(!e.to_string().is_empty());
        }
    }
}

fn manifest_from(specs: &[DeviceSpec<'_>]) -> Vec<u8> {
    manifest(specs).expect("devices that passed the checks build")
}
