//! The notes of Solo5's own test images (built by `scripts/solo5-build.sh` from the
//! pinned tree `../shared/solo5`), against what the built `solo5-elftool` says about
//! the same files.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use solo5_abi::elf::{note_segments, notes_in_elf};
use solo5_abi::{
    find_note, Abi, AbiTarget, DeviceType, Error, Manifest, NoteError, NoteKind, Solo5Handle,
    MFT_RESERVED_FIRST,
};

/// Reads a test image's notes as a Solo5 tender does and returns its ABI and devices
/// as (name, type, handle).
fn devices_of(path: &Path) -> (Abi, Vec<(String, DeviceType, u64)>) {
    let bytes = std::fs::read(path).unwrap();
    let notes = notes_in_elf(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let devices = notes
        .devices()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list = devices
        .iter()
        .map(|d| (d.name.to_string(), d.device_type, d.handle.0))
        .collect();
    (notes.abi, list)
}

/// `solo5-elftool query-manifest` of `path` as (name, type name) pairs, or `None` when
/// it fails.
fn elftool_manifest(path: &Path) -> Option<Vec<(String, String)>> {
    let (ok, stdout, _) = support::elftool(&[OsStr::new("query-manifest"), path.as_os_str()]);
    if !ok {
        return None;
    }
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "solo5-elftool printed no JSON for {}: {e}\n{stdout}",
            path.display()
        )
    });
    assert_eq!(json["type"], "solo5.manifest");
    assert_eq!(json["version"], 1);
    Some(
        json["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["type"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    )
}

/// `solo5-elftool query-abi` of `path` as (target name, version), or `None`.
fn elftool_abi(path: &Path) -> Option<(String, u64)> {
    let (ok, stdout, _) = support::elftool(&[OsStr::new("query-abi"), path.as_os_str()]);
    if !ok {
        return None;
    }
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["type"], "solo5.abi");
    Some((
        json["target"].as_str().unwrap().to_string(),
        json["version"].as_u64().unwrap(),
    ))
}

#[test]
fn hello_has_no_devices_and_declares_muen_4() {
    let path = support::test_image("hello", "muen");
    let (abi, devices) = devices_of(&path);
    assert_eq!(abi, Abi::MUEN);
    assert_eq!(abi.expect(Abi::MUEN), Ok(()));
    assert!(devices.is_empty());
    assert_eq!(elftool_manifest(&path), Some(vec![]));
    assert_eq!(elftool_abi(&path), Some(("muen".to_string(), 4)));
}

#[test]
fn net_2if_has_two_net_devices_as_elftool_says() {
    let path = support::test_image("net_2if", "muen");
    let (abi, devices) = devices_of(&path);
    assert_eq!(abi, Abi::MUEN);
    assert_eq!(
        devices,
        vec![
            ("service0".to_string(), DeviceType::NetBasic, 1),
            ("service1".to_string(), DeviceType::NetBasic, 2),
        ]
    );
    let from_elftool = elftool_manifest(&path).expect("solo5-elftool reads test_net_2if.muen");
    let ours: Vec<_> = devices
        .iter()
        .map(|(name, ty, _)| (name.clone(), ty.name().to_string()))
        .collect();
    assert_eq!(ours, from_elftool);
}

#[test]
fn mft_maxdevices_has_63_block_devices_as_elftool_says() {
    let path = support::test_image("mft_maxdevices", "muen");
    let (abi, devices) = devices_of(&path);
    assert_eq!(abi, Abi::MUEN);
    let expected: Vec<_> = (0..63)
        .map(|i| (format!("storage{i}"), DeviceType::BlockBasic, i + 1))
        .collect();
    assert_eq!(devices, expected);
    let from_elftool = elftool_manifest(&path).unwrap();
    let ours: Vec<_> = devices
        .iter()
        .map(|(name, ty, _)| (name.clone(), ty.name().to_string()))
        .collect();
    assert_eq!(ours, from_elftool);

    // The largest manifest Solo5 loads: 64 entries, descriptor at the size limit.
    let bytes = std::fs::read(&path).unwrap();
    let notes = notes_in_elf(&bytes).unwrap();
    assert_eq!(notes.manifest.entry_count(), 64);
    assert_eq!(
        notes.manifest.lookup(b"storage62", DeviceType::BlockBasic),
        Some(Solo5Handle(63))
    );
    assert_eq!(
        notes.manifest.lookup(b"storage62", DeviceType::NetBasic),
        None
    );
}

/// Every image Solo5's build made (every target, and the deliberately broken
/// `buggyelf.hvt`).
fn all_images() -> Vec<PathBuf> {
    let tests = &support::solo5_build().tests;
    let mut images = Vec::new();
    for dir in std::fs::read_dir(tests).unwrap() {
        let dir = dir.unwrap().path();
        if !dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("test_")
        {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ["hvt", "spt", "muen", "virtio", "xen"].contains(&ext) {
                images.push(file);
            }
        }
    }
    images.sort();
    images
}

/// Every image, every target: the manifest and the ABI note are accepted exactly when
/// `solo5-elftool` accepts them, and say the same.
#[test]
fn every_built_image_reads_as_elftool_reads_it() {
    let images = all_images();
    assert!(
        images.len() >= 22 * 3,
        "expected Solo5's test images for every target, found {}",
        images.len()
    );
    assert!(images
        .iter()
        .any(|p| p.ends_with("test_buggyelf/buggyelf.hvt")));
    let mut muen = 0;
    for path in &images {
        let bytes = std::fs::read(path).unwrap();
        let segments = note_segments(&bytes);
        let slices: Vec<(usize, &[u8])> = match &segments {
            Ok(segments) => segments
                .iter()
                .map(|s| (s.index, &bytes[s.offset..s.offset + s.size]))
                .collect(),
            Err(_) => Vec::new(),
        };

        let manifest = segments
            .as_ref()
            .ok()
            .and_then(|_| {
                find_note(slices.iter().copied(), NoteKind::Manifest)
                    .ok()
                    .flatten()
            })
            .and_then(|found| Manifest::validate(found.descriptor).ok());
        let ours = manifest.map(|m| {
            m.entries()
                .filter(|e| e.entry_type < MFT_RESERVED_FIRST)
                .map(|e| {
                    let name = String::from_utf8(e.name_bytes().to_vec()).unwrap();
                    let ty = DeviceType::from_raw(e.entry_type)
                        .map_or("<undefined type>", DeviceType::name);
                    (name, ty.to_string())
                })
                .collect::<Vec<_>>()
        });
        assert_eq!(ours, elftool_manifest(path), "{}: manifest", path.display());

        let abi = segments
            .as_ref()
            .ok()
            .and_then(|_| {
                find_note(slices.iter().copied(), NoteKind::Abi)
                    .ok()
                    .flatten()
            })
            .map(|found| Abi::from_descriptor(found.descriptor).unwrap());
        let ours = abi.map(|abi| (abi.target.name().to_string(), u64::from(abi.version)));
        assert_eq!(ours, elftool_abi(path), "{}: ABI", path.display());

        if path.extension() == Some(OsStr::new("muen")) {
            muen += 1;
            let notes = notes_in_elf(&bytes).unwrap();
            assert_eq!(notes.abi.target, AbiTarget::Muen, "{}", path.display());
            notes.devices().unwrap();
        }
    }
    assert!(
        muen >= 22,
        "expected at least 22 .muen images, found {muen}"
    );
}

/// Solo5's deliberately broken test image (a manifest note with descriptor size 1,
/// less than its 4 bytes of padding) is refused by both, for the same reason.
#[test]
fn buggyelf_is_refused() {
    let path = support::solo5_build()
        .tests
        .join("test_buggyelf/buggyelf.hvt");
    let bytes = std::fs::read(&path).unwrap();
    let error = notes_in_elf(&bytes).unwrap_err();
    assert_eq!(
        error,
        Error::Note(NoteError::DescriptorShorterThanPadding {
            segment: Some(8),
            kind: NoteKind::Manifest,
            descsz: 1
        })
    );
    assert!(error.to_string().contains("PT_NOTE segment 8"), "{error}");
    let (ok, _, stderr) = support::elftool(&[OsStr::new("query-manifest"), path.as_os_str()]);
    assert!(!ok);
    assert!(
        stderr.contains("phdr[8] note does not fall within valid size"),
        "{stderr}"
    );
}
