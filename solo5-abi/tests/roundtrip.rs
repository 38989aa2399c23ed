//! Random valid manifests written by the builder read back the same; the builder
//! writes byte for byte what `solo5-elftool gen-manifest` and Solo5's header macros
//! make, and refuses the same device lists; arbitrary bytes never panic a reader.

mod support;

#[path = "support/exercise.rs"]
mod exercise;

use std::ffi::OsStr;
use std::process::Command;

use proptest::collection::vec;
use proptest::prelude::*;
use solo5_abi::build::{abi1_note, elf_image, manifest, mft1_note, DeviceSpec};
use solo5_abi::elf::{notes_in_elf, PT_NOTE};
use solo5_abi::{Abi, AbiTarget, DeviceType, ManifestError, Solo5Handle, Solo5Notes};

/// Device names and types, in manifest order.
type DeviceList = Vec<(String, DeviceType)>;

fn device_type() -> impl Strategy<Value = DeviceType> {
    prop_oneof![Just(DeviceType::NetBasic), Just(DeviceType::BlockBasic)]
}

/// 0 to 63 devices with distinct valid names.
fn devices() -> impl Strategy<Value = DeviceList> {
    vec(("[a-zA-Z0-9]{1,67}", device_type()), 0..=63).prop_map(|mut list| {
        let mut seen = std::collections::HashSet::new();
        list.retain(|(name, _)| seen.insert(name.clone()));
        list
    })
}

fn specs(list: &[(String, DeviceType)]) -> Vec<DeviceSpec<'_>> {
    list.iter()
        .map(|(name, device_type)| DeviceSpec {
            name,
            device_type: *device_type,
        })
        .collect()
}

fn abi() -> impl Strategy<Value = Abi> {
    (0..AbiTarget::ALL.len(), any::<u32>()).prop_map(|(target, version)| Abi {
        target: AbiTarget::ALL[target],
        version,
    })
}

proptest! {
    #[test]
    fn built_notes_read_back_the_same(list in devices(), abi in abi(), abi_first in any::<bool>()) {
        let mft = manifest(&specs(&list)).unwrap();
        let mft_note = mft1_note(&mft);
        let abi_note = abi1_note(abi);
        let segments: Vec<&[u8]> = if abi_first {
            vec![&abi_note, &mft_note]
        } else {
            vec![&mft_note, &abi_note]
        };
        let labelled: Vec<(usize, &[u8])> = segments.iter().copied().enumerate().collect();
        let notes = Solo5Notes::from_note_segments(labelled.iter().copied()).unwrap();
        prop_assert_eq!(notes.abi, abi);
        prop_assert_eq!(notes.manifest.entry_count() as usize, list.len() + 1);
        let devices = notes.devices().unwrap();
        let read: Vec<_> = devices
            .iter()
            .map(|d| (d.name.to_string(), d.device_type, d.handle))
            .collect();
        let expected: Vec<_> = (1u64..)
            .zip(&list)
            .map(|(h, (name, ty))| (name.clone(), *ty, Solo5Handle(h)))
            .collect();
        prop_assert_eq!(read, expected);
        for (name, ty) in &list {
            prop_assert!(notes.manifest.lookup(name.as_bytes(), *ty).is_some());
        }

        // The same notes in an ELF image.
        let image = elf_image(&[(PT_NOTE, segments[0]), (PT_NOTE, segments[1])]);
        let from_elf = notes_in_elf(&image).unwrap();
        prop_assert_eq!(from_elf.abi, abi);
        prop_assert_eq!(from_elf.manifest.entry_bytes(), notes.manifest.entry_bytes());
        exercise::exercise(&image);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..2048)) {
        exercise::exercise(&data);
    }

    #[test]
    fn mutated_notes_never_panic(list in devices(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mft_note = mft1_note(&manifest(&specs(&list)).unwrap());
        let abi_note = abi1_note(Abi::MUEN);
        let mut input = vec![2u8];
        input.extend_from_slice(&(abi_note.len() as u16).to_le_bytes());
        input.extend_from_slice(&abi_note);
        input.extend_from_slice(&mft_note);
        for (index, value) in flips {
            let i = index.index(input.len());
            input[i] = value;
        }
        exercise::exercise(&input);
    }
}

/// Runs `solo5-elftool gen-manifest` on `json`; on success compiles its C output
/// against Solo5's headers and returns the bytes of section `.note.solo5.manifest`.
fn elftool_generated_note(dir: &std::path::Path, json: &str) -> Result<Vec<u8>, String> {
    let source = dir.join("manifest.json");
    let c = dir.join("manifest.c");
    let object = dir.join("manifest.o");
    let note = dir.join("note.bin");
    std::fs::write(&source, json).unwrap();
    let (ok, _, stderr) = support::elftool(&[
        OsStr::new("gen-manifest"),
        source.as_os_str(),
        c.as_os_str(),
    ]);
    if !ok {
        return Err(stderr);
    }
    let include = support::solo5_src().join("include");
    support::gcc(&[
        OsStr::new("-c"),
        OsStr::new("-I"),
        include.as_os_str(),
        c.as_os_str(),
        OsStr::new("-o"),
        object.as_os_str(),
    ]);
    let status = Command::new("objcopy")
        .args([OsStr::new("-O"), OsStr::new("binary")])
        .arg("--only-section=.note.solo5.manifest")
        .arg(&object)
        .arg(&note)
        .status()
        .expect("cannot run objcopy (Debian: binutils)");
    assert!(status.success(), "objcopy failed on {}", object.display());
    Ok(std::fs::read(&note).unwrap())
}

fn json(list: &[(String, DeviceType)]) -> String {
    let devices: Vec<String> = list
        .iter()
        .map(|(name, ty)| format!("{{ \"name\": \"{name}\", \"type\": \"{}\" }}", ty.name()))
        .collect();
    format!(
        "{{ \"type\": \"solo5.manifest\", \"version\": 1, \"devices\": [ {} ] }}",
        devices.join(", ")
    )
}

#[test]
fn the_builder_writes_what_elftool_generates() {
    let dir = support::scratch("elftool_gen_manifest");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 16,
        ..ProptestConfig::default()
    });
    runner
        .run(&devices(), |list| {
            let ours = mft1_note(&manifest(&specs(&list)).unwrap());
            let theirs = elftool_generated_note(&dir, &json(&list)).unwrap();
            prop_assert_eq!(ours, theirs);
            Ok(())
        })
        .unwrap();
    // The largest: 63 devices of 67 characters.
    let list: Vec<_> = (0..63)
        .map(|i| (format!("{i:0>67}"), DeviceType::BlockBasic))
        .collect();
    let ours = mft1_note(&manifest(&specs(&list)).unwrap());
    assert_eq!(Ok(ours), elftool_generated_note(&dir, &json(&list)));
}

#[test]
fn the_builder_refuses_what_elftool_refuses() {
    let dir = support::scratch("elftool_refuses");
    let cases: Vec<(DeviceList, ManifestError, &str)> = vec![
        (
            vec![("".into(), DeviceType::NetBasic)],
            ManifestError::EmptyName { index: 1 },
            "may not be empty",
        ),
        (
            vec![("a".repeat(68), DeviceType::NetBasic)],
            ManifestError::NameTooLong {
                index: 1,
                length: 68,
            },
            "name too long",
        ),
        (
            vec![("eth_0".into(), DeviceType::NetBasic)],
            ManifestError::NameNotAlphanumeric { index: 1 },
            "not alphanumeric",
        ),
        (
            (0..64)
                .map(|i| (format!("d{i}"), DeviceType::NetBasic))
                .collect(),
            ManifestError::TooManyDevices { devices: 64 },
            "too many entries, maximum 63",
        ),
    ];
    for (list, error, message) in cases {
        assert_eq!(manifest(&specs(&list)), Err(error));
        let refused = elftool_generated_note(&dir, &json(&list)).unwrap_err();
        assert!(refused.contains(message), "{refused}");
    }
    // Solo5's test of the limit: its manifest.json has 64 devices.
    let too_many = support::solo5_build()
        .src
        .join("tests/test_too_many_entries/manifest.json");
    let text = std::fs::read_to_string(&too_many).unwrap();
    let refused = elftool_generated_note(&dir, &text).unwrap_err();
    assert!(
        refused.contains("too many entries, maximum 63"),
        "{refused}"
    );
    let count = text.matches("\"name\"").count();
    let list: Vec<_> = (0..count)
        .map(|i| (format!("d{i}"), DeviceType::BlockBasic))
        .collect();
    assert_eq!(
        manifest(&specs(&list)),
        Err(ManifestError::TooManyDevices { devices: count })
    );
    // Duplicate names: elftool generates them, the builder refuses them.
    let list = vec![
        ("same".to_string(), DeviceType::NetBasic),
        ("same".to_string(), DeviceType::BlockBasic),
    ];
    assert!(elftool_generated_note(&dir, &json(&list)).is_ok());
    assert_eq!(
        manifest(&specs(&list)),
        Err(ManifestError::DuplicateName {
            first: 1,
            second: 2
        })
    );
}

/// The real notes and images go through every reader without a finding.
#[test]
fn real_images_pass_the_fuzz_checks() {
    for name in ["hello", "net_2if", "mft_maxdevices"] {
        let image = std::fs::read(support::test_image(name, "muen")).unwrap();
        exercise::exercise(&image);
        let notes = notes_in_elf(&image).unwrap();
        let mft_note = mft1_note(&manifest_bytes(&notes));
        exercise::exercise(&mft_note);
    }
}

/// The whole manifest (header and entries) of `notes`.
fn manifest_bytes(notes: &Solo5Notes<'_>) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&notes.manifest.entry_count().to_le_bytes());
    bytes.extend_from_slice(notes.manifest.entry_bytes());
    bytes
}
