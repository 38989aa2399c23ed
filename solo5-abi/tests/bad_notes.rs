//! Synthetic malformed notes, manifests and images: every error the crate reports, in
//! the order Solo5 checks, and the inputs Solo5 skips or accepts.

use solo5_abi::build::{
    abi1_note, elf_image, manifest, manifest_unchecked, mft1_note, note_unchecked, DeviceSpec,
};
use solo5_abi::elf::{note_segments, notes_in_elf, ElfError, PT_NOTE};
use solo5_abi::note::{ElfNoteHeader, ABI1_NOTE_TYPE, MFT1_NOTE_MAX_SIZE, MFT1_NOTE_TYPE};
use solo5_abi::{
    builtin_manifest_size, check_manifest_header, find_note, parse_note, Abi, AbiTarget,
    DeviceType, Error, Manifest, ManifestError, MftEntry, MftHeader, NoteError, NoteKind,
    Solo5Handle, Solo5NoteHeader, Solo5Notes, MFT_RESERVED_FIRST, MFT_VERSION,
};

const SOLO5: [u8; 8] = *b"Solo5\0\0\0";
const OPENBSD_NOTE: [u8; 24] = *b"\x08\0\0\0\x04\0\0\0\x01\0\0\0OpenBSD\0\0\0\0\0";

fn net(name: &str) -> DeviceSpec<'_> {
    DeviceSpec {
        name,
        device_type: DeviceType::NetBasic,
    }
}

fn block(name: &str) -> DeviceSpec<'_> {
    DeviceSpec {
        name,
        device_type: DeviceType::BlockBasic,
    }
}

/// A valid manifest with the given devices.
fn mft(devices: &[DeviceSpec<'_>]) -> Vec<u8> {
    manifest(devices).unwrap()
}

fn header(namesz: u32, descsz: u32, note_type: u32) -> ElfNoteHeader {
    ElfNoteHeader {
        namesz,
        descsz,
        note_type,
    }
}

/// Reads `segments` (labelled 0, 1, ...) as a tender does.
fn notes(segments: &[&[u8]]) -> Result<(Abi, Vec<u8>), Error> {
    let labelled: Vec<(usize, &[u8])> = segments.iter().copied().enumerate().collect();
    Solo5Notes::from_note_segments(labelled.iter().copied())
        .map(|n| (n.abi, n.manifest.entry_bytes().to_vec()))
}

fn note_error(segments: &[&[u8]]) -> NoteError {
    match notes(segments) {
        Err(Error::Note(e)) => e,
        other => panic!("expected a note error, got {other:?}"),
    }
}

fn manifest_error(mft: &[u8]) -> ManifestError {
    Manifest::validate(mft).unwrap_err()
}

// ---------------------------------------------------------------------------------
// Finding notes in segments

#[test]
fn both_notes_in_their_own_segments_are_found_in_any_order() {
    let abi = abi1_note(Abi::MUEN);
    let mft_note = mft1_note(&mft(&[net("service0")]));
    for segments in [
        [&OPENBSD_NOTE[..], &abi, &mft_note],
        [&mft_note[..], &OPENBSD_NOTE, &abi],
    ] {
        let labelled: Vec<(usize, &[u8])> = segments.iter().copied().enumerate().collect();
        let found = Solo5Notes::from_note_segments(labelled.iter().copied()).unwrap();
        assert_eq!(found.abi, Abi::MUEN);
        let devices = found.devices().unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(
            segments[found.abi_segment].as_ptr(),
            abi.as_ptr(),
            "the ABI segment's label"
        );
        assert_eq!(segments[found.manifest_segment].as_ptr(), mft_note.as_ptr());
    }
}

#[test]
fn a_segment_shorter_than_an_elf_note_header_rejects_the_image() {
    for size in 0..12 {
        let short = vec![0u8; size];
        assert_eq!(
            find_note([(3, &short[..])], NoteKind::Abi),
            Err(NoteError::SegmentTooSmall { segment: 3, size })
        );
    }
    // Even before a valid note: segments are looked at in order.
    let abi = abi1_note(Abi::MUEN);
    assert_eq!(
        note_error(&[&[0u8; 4], &abi]),
        NoteError::SegmentTooSmall {
            segment: 0,
            size: 4
        }
    );
}

#[test]
fn segments_of_12_to_19_bytes_and_foreign_notes_are_skipped() {
    let abi = abi1_note(Abi::MUEN);
    for size in 12..20 {
        let short = vec![0xffu8; size];
        let found = find_note([(0, &short[..]), (1, &abi[..])], NoteKind::Abi)
            .unwrap()
            .unwrap();
        assert_eq!(found.segment, 1);
    }
    // Foreign name, wrong name size, name without NUL, other type: all skipped.
    let skipped = [
        OPENBSD_NOTE.to_vec(),
        note_unchecked(header(6, 16, ABI1_NOTE_TYPE), *b"Solo6\0\0\0", &[4; 16]),
        note_unchecked(header(5, 16, ABI1_NOTE_TYPE), SOLO5, &[4; 16]),
        note_unchecked(header(8, 16, ABI1_NOTE_TYPE), SOLO5, &[4; 16]),
        note_unchecked(header(6, 16, ABI1_NOTE_TYPE), *b"Solo5X\0\0", &[4; 16]),
        note_unchecked(header(6, 16, 0x1234_5678), SOLO5, &[4; 16]),
        // A malformed note of the other type does not matter when looking for this one.
        note_unchecked(header(6, 0, MFT1_NOTE_TYPE), SOLO5, &[]),
    ];
    for note in &skipped {
        assert_eq!(
            find_note([(0, &note[..])], NoteKind::Abi),
            Ok(None),
            "{note:02x?}"
        );
    }
    let mut segments: Vec<(usize, &[u8])> = (0..).zip(skipped.iter().map(Vec::as_slice)).collect();
    segments.push((99, &abi));
    assert_eq!(
        find_note(segments, NoteKind::Abi).unwrap().unwrap().segment,
        99
    );
}

#[test]
fn the_name_padding_bytes_are_not_compared() {
    let mut abi = abi1_note(Abi::MUEN);
    abi[18] = 0xaa;
    abi[19] = 0x55;
    let found = find_note([(0, &abi[..])], NoteKind::Abi).unwrap().unwrap();
    assert_eq!(Abi::from_descriptor(found.descriptor), Ok(Abi::MUEN));
    assert_eq!(parse_note(&abi, NoteKind::Abi).map(<[u8]>::len), Ok(16));
}

#[test]
fn only_the_first_note_of_a_segment_counts() {
    // Both notes in one segment, as a linker without Solo5's PHDRS would merge them:
    // Solo5 sees only the first, so the other is missing.
    let abi = abi1_note(Abi::MUEN);
    let mft_note = mft1_note(&mft(&[]));
    let merged = [abi.clone(), mft_note.clone()].concat();
    assert_eq!(
        note_error(&[&merged]),
        NoteError::Missing {
            kind: NoteKind::Manifest
        }
    );
    let merged = [mft_note, abi].concat();
    assert_eq!(
        note_error(&[&merged]),
        NoteError::Missing {
            kind: NoteKind::Abi
        }
    );
}

#[test]
fn the_first_matching_segment_wins_and_later_ones_are_not_examined() {
    let hvt = abi1_note(Abi {
        target: AbiTarget::Hvt,
        version: 2,
    });
    let muen = abi1_note(Abi::MUEN);
    let broken = note_unchecked(header(6, 99, ABI1_NOTE_TYPE), SOLO5, &[]);
    let found = find_note(
        [
            (0, &hvt[..]),
            (1, &muen[..]),
            (2, &broken[..]),
            (3, &[][..]),
        ],
        NoteKind::Abi,
    )
    .unwrap()
    .unwrap();
    assert_eq!(found.segment, 0);
    assert_eq!(
        Abi::from_descriptor(found.descriptor).unwrap().target,
        AbiTarget::Hvt
    );
}

#[test]
fn missing_notes_are_named_abi_first() {
    let abi = abi1_note(Abi::MUEN);
    let mft_note = mft1_note(&mft(&[]));
    assert_eq!(
        note_error(&[]),
        NoteError::Missing {
            kind: NoteKind::Abi
        }
    );
    assert_eq!(
        note_error(&[&OPENBSD_NOTE, &mft_note]),
        NoteError::Missing {
            kind: NoteKind::Abi
        }
    );
    assert_eq!(
        note_error(&[&abi, &OPENBSD_NOTE]),
        NoteError::Missing {
            kind: NoteKind::Manifest
        }
    );
    let message = NoteError::Missing {
        kind: NoteKind::Manifest,
    }
    .to_string();
    assert!(
        message.contains("missing note") && message.contains("MFT1"),
        "{message}"
    );
}

#[test]
fn descriptor_sizes_outside_the_limits_are_rejected() {
    for (kind, note_type, bad) in [
        (NoteKind::Abi, ABI1_NOTE_TYPE, [0, 33, u32::MAX]),
        (
            NoteKind::Manifest,
            MFT1_NOTE_TYPE,
            [0, MFT1_NOTE_MAX_SIZE + 1, u32::MAX],
        ),
    ] {
        for descsz in bad {
            let note = note_unchecked(header(6, descsz, note_type), SOLO5, &[0; 7000]);
            let expected = NoteError::DescriptorSizeOutOfRange {
                segment: Some(5),
                kind,
                descsz,
            };
            assert_eq!(find_note([(5, &note[..])], kind), Err(expected));
            assert_eq!(
                parse_note(&note, kind),
                Err(NoteError::DescriptorSizeOutOfRange {
                    segment: None,
                    kind,
                    descsz
                })
            );
            assert!(expected.to_string().contains("PT_NOTE segment 5"));
        }
    }
    // The largest sizes are fine as far as the envelope goes.
    let abi = note_unchecked(header(6, 32, ABI1_NOTE_TYPE), SOLO5, &[4; 32]);
    assert_eq!(parse_note(&abi, NoteKind::Abi).map(<[u8]>::len), Ok(32));
    let big = note_unchecked(
        header(6, MFT1_NOTE_MAX_SIZE, MFT1_NOTE_TYPE),
        SOLO5,
        &[0; 6668],
    );
    assert_eq!(
        parse_note(&big, NoteKind::Manifest).map(<[u8]>::len),
        Ok(6664)
    );
}

#[test]
fn a_note_longer_than_its_segment_is_rejected() {
    let abi = abi1_note(Abi::MUEN);
    let cut = &abi[..abi.len() - 1];
    let expected = NoteError::NoteExceedsSegment {
        segment: Some(0),
        kind: NoteKind::Abi,
        descsz: 16,
        size: 35,
    };
    assert_eq!(find_note([(0, cut)], NoteKind::Abi), Err(expected));
    assert!(expected.to_string().contains("truncated"), "{expected}");
    let mft_note = mft1_note(&mft(&[net("a")]));
    let cut = &mft_note[..mft_note.len() - 1];
    assert!(matches!(
        parse_note(cut, NoteKind::Manifest),
        Err(NoteError::NoteExceedsSegment { segment: None, .. })
    ));
    // Bytes after the note do not matter.
    let longer = [mft_note.as_slice(), &[0xee; 9]].concat();
    assert_eq!(
        parse_note(&longer, NoteKind::Manifest),
        parse_note(&mft_note, NoteKind::Manifest)
    );
}

#[test]
fn a_manifest_descriptor_not_longer_than_its_padding_is_rejected() {
    for descsz in 1..=4 {
        let note = note_unchecked(header(6, descsz, MFT1_NOTE_TYPE), SOLO5, &[0; 8]);
        assert_eq!(
            find_note([(2, &note[..])], NoteKind::Manifest),
            Err(NoteError::DescriptorShorterThanPadding {
                segment: Some(2),
                kind: NoteKind::Manifest,
                descsz
            })
        );
    }
    // 5 bytes: a 1-byte descriptor, which the manifest check then refuses.
    let note = note_unchecked(header(6, 5, MFT1_NOTE_TYPE), SOLO5, &[0; 8]);
    let descriptor = parse_note(&note, NoteKind::Manifest).unwrap();
    assert_eq!(descriptor.len(), 1);
    assert_eq!(
        manifest_error(descriptor),
        ManifestError::TooSmall { size: 1 }
    );
}

#[test]
fn a_note_read_in_place_must_be_the_expected_one() {
    assert_eq!(
        parse_note(&[0; 19], NoteKind::Abi),
        Err(NoteError::Truncated {
            kind: NoteKind::Abi,
            size: 19
        })
    );
    let e = parse_note(&OPENBSD_NOTE, NoteKind::Abi).unwrap_err();
    assert_eq!(
        e,
        NoteError::WrongName {
            kind: NoteKind::Abi,
            namesz: 8,
            name: *b"OpenBSD\0"
        }
    );
    assert!(e.to_string().contains("wrong note name"), "{e}");
    let abi = abi1_note(Abi::MUEN);
    let e = parse_note(&abi, NoteKind::Manifest).unwrap_err();
    assert_eq!(
        e,
        NoteError::WrongType {
            kind: NoteKind::Manifest,
            found: ABI1_NOTE_TYPE
        }
    );
    assert!(e.to_string().contains("wrong note type 0x31494241"), "{e}");
}

// ---------------------------------------------------------------------------------
// The ABI note

#[test]
fn abi_descriptors_shorter_than_abi1_info_are_refused() {
    for size in 1..16u32 {
        let note = note_unchecked(header(6, size, ABI1_NOTE_TYPE), SOLO5, &[4; 16]);
        let descriptor = parse_note(&note, NoteKind::Abi).unwrap();
        assert_eq!(
            Abi::from_descriptor(descriptor),
            Err(NoteError::AbiDescriptorTooShort {
                size: size as usize
            })
        );
    }
    // Longer ones are read as far as struct abi1_info goes.
    let mut payload = abi1_note(Abi::MUEN)[20..].to_vec();
    payload.extend_from_slice(&[0xff; 16]);
    let note = note_unchecked(header(6, 32, ABI1_NOTE_TYPE), SOLO5, &payload);
    assert_eq!(
        Abi::from_descriptor(parse_note(&note, NoteKind::Abi).unwrap()),
        Ok(Abi::MUEN)
    );
}

#[test]
fn every_target_reads_and_unknown_ones_are_refused() {
    for target in AbiTarget::ALL {
        let abi = Abi { target, version: 7 };
        let note = abi1_note(abi);
        assert_eq!(
            Abi::from_descriptor(parse_note(&note, NoteKind::Abi).unwrap()),
            Ok(abi)
        );
        assert_eq!(AbiTarget::from_raw(target as u32), Some(target));
    }
    for raw in [0, 7, u32::MAX] {
        let mut note = abi1_note(Abi::MUEN);
        note[20..24].copy_from_slice(&raw.to_le_bytes());
        let e = Abi::from_descriptor(parse_note(&note, NoteKind::Abi).unwrap()).unwrap_err();
        assert_eq!(e, NoteError::UnknownAbiTarget { target: raw });
        assert!(e.to_string().contains("unknown ABI target"), "{e}");
        // ... also when found by the tender's rules.
        let mft_note = mft1_note(&mft(&[]));
        assert_eq!(note_error(&[&note, &mft_note]), e);
    }
}

#[test]
fn the_abi_can_be_required() {
    let hvt = Abi {
        target: AbiTarget::Hvt,
        version: 2,
    };
    let old_muen = Abi {
        target: AbiTarget::Muen,
        version: 3,
    };
    for found in [hvt, old_muen] {
        let e = found.expect(Abi::MUEN).unwrap_err();
        assert_eq!(
            e,
            NoteError::AbiMismatch {
                expected: Abi::MUEN,
                found
            }
        );
        assert!(e.to_string().contains("expected muen version 4"), "{e}");
    }
    assert_eq!(Abi::MUEN.expect(Abi::MUEN), Ok(()));
}

// ---------------------------------------------------------------------------------
// The manifest: Solo5's own rules, in Solo5's order

fn raw(version: u32, count: u32, entries: &[MftEntry]) -> Vec<u8> {
    manifest_unchecked(version, count, entries)
}

#[test]
fn manifest_size_version_and_count_are_checked_in_solo5s_order() {
    let reserved = MftEntry::RESERVED_FIRST;
    for size in 0..8 {
        assert_eq!(
            manifest_error(&raw(1, 1, &[reserved])[..size]),
            ManifestError::TooSmall { size }
        );
    }
    // Version before count and size.
    assert_eq!(
        manifest_error(&raw(2, 99, &[])),
        ManifestError::WrongVersion { version: 2 }
    );
    assert_eq!(
        manifest_error(&raw(0, 1, &[reserved])),
        ManifestError::WrongVersion { version: 0 }
    );
    // Count before size.
    let entries = vec![reserved; 65];
    assert_eq!(
        manifest_error(&raw(1, 65, &entries)),
        ManifestError::TooManyEntries { entries: 65 }
    );
    assert_eq!(
        manifest_error(&raw(1, u32::MAX, &[])),
        ManifestError::TooManyEntries { entries: u32::MAX }
    );
    // Exact size.
    let one = raw(1, 1, &[reserved]);
    assert_eq!(
        manifest_error(&one[..111]),
        ManifestError::SizeMismatch {
            size: 111,
            expected: 112
        }
    );
    let longer = [one.as_slice(), &[0]].concat();
    assert_eq!(
        manifest_error(&longer),
        ManifestError::SizeMismatch {
            size: 113,
            expected: 112
        }
    );
    assert_eq!(
        manifest_error(&raw(1, 2, &[reserved])),
        ManifestError::SizeMismatch {
            size: 112,
            expected: 216
        }
    );
    // At least one entry (size before count 0).
    assert_eq!(manifest_error(&raw(1, 0, &[])), ManifestError::NoEntries);
    assert_eq!(
        manifest_error(&raw(1, 0, &[reserved])),
        ManifestError::SizeMismatch {
            size: 112,
            expected: 8
        }
    );
    let e = manifest_error(&raw(3, 1, &[reserved]));
    assert!(e.to_string().contains("wrong version 3"), "{e}");
    assert!(ManifestError::TooManyEntries { entries: 65 }
        .to_string()
        .contains("too many entries"));
    assert!(ManifestError::TooSmall { size: 3 }
        .to_string()
        .contains("truncated"));
}

#[test]
fn the_first_entry_must_be_the_nameless_reserved_one() {
    let device = MftEntry::new(b"a", DeviceType::NetBasic.raw());
    assert_eq!(
        manifest_error(&raw(1, 1, &[device])),
        ManifestError::FirstEntryNotReserved { entry_type: 2 }
    );
    let named = MftEntry::new(b"x", MFT_RESERVED_FIRST);
    assert_eq!(
        manifest_error(&raw(1, 1, &[named])),
        ManifestError::FirstEntryNamed
    );
    // A byte after the name's NUL does not make it named (Solo5 looks at name[0]).
    let mut reserved = MftEntry::RESERVED_FIRST;
    reserved.name[5] = b'z';
    assert!(Manifest::validate(&raw(1, 1, &[reserved])).is_ok());
}

#[test]
fn names_must_end_in_nul_and_entries_must_not_be_attached() {
    let mut unterminated = MftEntry::new(&[b'a'; 68], DeviceType::NetBasic.raw());
    let ok = MftEntry::new(b"ok", DeviceType::NetBasic.raw());
    assert_eq!(
        manifest_error(&raw(1, 3, &[MftEntry::RESERVED_FIRST, ok, unterminated])),
        ManifestError::NameNotTerminated { index: 2 }
    );
    // Also the reserved entry's.
    let mut reserved = MftEntry::RESERVED_FIRST;
    reserved.name[67] = 1;
    assert_eq!(
        manifest_error(&raw(1, 1, &[reserved])),
        ManifestError::NameNotTerminated { index: 0 }
    );
    // 67 characters are fine.
    unterminated.name[67] = 0;
    assert!(Manifest::validate(&raw(1, 2, &[MftEntry::RESERVED_FIRST, unterminated])).is_ok());

    for attached in [1, 2, 0xff] {
        let mut entry = ok;
        entry.attached = attached;
        let e = manifest_error(&raw(1, 3, &[MftEntry::RESERVED_FIRST, ok, entry]));
        assert_eq!(e, ManifestError::EntryAttached { index: 2 });
        assert!(e.to_string().contains("attached"));
    }
    // The per-entry checks run entry by entry, name before attached.
    let mut both = unterminated;
    both.name[67] = b'a';
    both.attached = 1;
    let mut attached = ok;
    attached.attached = 1;
    assert_eq!(
        manifest_error(&raw(1, 3, &[MftEntry::RESERVED_FIRST, attached, both])),
        ManifestError::EntryAttached { index: 1 }
    );
}

#[test]
fn solo5_ignores_properties_backing_and_tail_padding() {
    let mut entry = MftEntry::new(b"eth0", DeviceType::NetBasic.raw());
    entry.properties = [0xab; 16];
    entry.backing = u64::MAX;
    entry.padding = [0xcd; 7];
    let bytes = raw(1, 2, &[MftEntry::RESERVED_FIRST, entry]);
    let m = Manifest::validate(&bytes).unwrap();
    assert_eq!(m.entry(1).unwrap().net_basic().mac, [0xab; 6]);
    assert_eq!(m.entry(1).unwrap().block_basic().block_size, 0xabab);
    assert!(m.devices().is_ok());
}

// ---------------------------------------------------------------------------------
// The manifest: build-time rules and unique names, separate from Solo5's

#[test]
fn solo5_accepts_what_elftool_would_never_generate() {
    let bad = [
        (
            MftEntry::new(b"eth-0", 2),
            ManifestError::NameNotAlphanumeric { index: 1 },
        ),
        (
            MftEntry::new("café".as_bytes(), 2),
            ManifestError::NameNotAlphanumeric { index: 1 },
        ),
        (MftEntry::new(b"", 2), ManifestError::EmptyName { index: 1 }),
        (
            MftEntry::new(b"disk", 3),
            ManifestError::UnknownEntryType {
                index: 1,
                entry_type: 3,
            },
        ),
        (
            MftEntry::new(b"disk", 0),
            ManifestError::UnknownEntryType {
                index: 1,
                entry_type: 0,
            },
        ),
        (
            MftEntry::new(b"again", MFT_RESERVED_FIRST),
            ManifestError::UnknownEntryType {
                index: 1,
                entry_type: MFT_RESERVED_FIRST,
            },
        ),
    ];
    for (entry, error) in bad {
        let bytes = raw(1, 2, &[MftEntry::RESERVED_FIRST, entry]);
        let m = Manifest::validate(&bytes).expect("Solo5 accepts it at start");
        assert_eq!(m.check_elftool_rules(), Err(error));
        assert_eq!(m.devices(), Err(error));
        assert!(error.to_string().contains("entry 1"), "{error}");
    }
    assert!(ManifestError::NameNotAlphanumeric { index: 1 }
        .to_string()
        .contains("bad name"));
    assert!(ManifestError::UnknownEntryType {
        index: 1,
        entry_type: 3
    }
    .to_string()
    .contains("unknown device type"));
}

#[test]
fn duplicate_names_are_found_whatever_the_types() {
    let bytes = mft(&[net("a"), block("b")]);
    assert!(Manifest::validate(&bytes)
        .unwrap()
        .check_unique_names()
        .is_ok());
    for (second_type, third_type) in [(2, 2), (2, 1)] {
        let bytes = raw(
            1,
            4,
            &[
                MftEntry::RESERVED_FIRST,
                MftEntry::new(b"x", 1),
                MftEntry::new(b"dup", second_type),
                MftEntry::new(b"dup", third_type),
            ],
        );
        let m = Manifest::validate(&bytes).unwrap();
        assert_eq!(m.check_elftool_rules(), Ok(()));
        let e = ManifestError::DuplicateName {
            first: 2,
            second: 3,
        };
        assert_eq!(m.check_unique_names(), Err(e));
        assert_eq!(m.devices(), Err(e));
        assert!(e.to_string().contains("duplicate device name"), "{e}");
        // Solo5's lookup finds the first of a name and type.
        assert_eq!(
            m.lookup(b"dup", DeviceType::from_raw(second_type).unwrap()),
            Some(Solo5Handle(2))
        );
    }
}

#[test]
fn the_builder_refuses_what_elftool_refuses() {
    let long = "a".repeat(68);
    let cases: [(Vec<DeviceSpec<'_>>, ManifestError); 5] = [
        (vec![net("")], ManifestError::EmptyName { index: 1 }),
        (
            vec![net("ok"), net(&long)],
            ManifestError::NameTooLong {
                index: 2,
                length: 68,
            },
        ),
        (
            vec![net("a_b")],
            ManifestError::NameNotAlphanumeric { index: 1 },
        ),
        (
            vec![net("a"), block("b"), net("a")],
            ManifestError::DuplicateName {
                first: 1,
                second: 3,
            },
        ),
        (
            (0..64).map(|_| net("x")).collect(),
            ManifestError::TooManyDevices { devices: 64 },
        ),
    ];
    for (devices, error) in cases {
        assert_eq!(manifest(&devices), Err(error));
    }
    assert!(ManifestError::TooManyDevices { devices: 64 }
        .to_string()
        .contains("at most 63"));
    // 67 characters and 63 devices are the limits.
    let names: Vec<String> = (0..63).map(|i| format!("{}{i}", "d".repeat(60))).collect();
    let devices: Vec<_> = names.iter().map(|n| block(n)).collect();
    let bytes = manifest(&devices).unwrap();
    assert_eq!(
        Manifest::validate(&bytes).unwrap().devices().unwrap().len(),
        63
    );
    assert!(manifest(&[net(&long[..67])]).is_ok());
}

#[test]
fn lookup_compares_as_strncmp_does() {
    let bytes = raw(
        1,
        4,
        &[
            MftEntry::RESERVED_FIRST,
            MftEntry::new(b"storage0", 1),
            MftEntry::new(b"storage", 2),
            MftEntry::new(b"storage", 1),
        ],
    );
    let m = Manifest::validate(&bytes).unwrap();
    assert_eq!(
        m.lookup(b"storage", DeviceType::BlockBasic),
        Some(Solo5Handle(3))
    );
    assert_eq!(
        m.lookup(b"storage", DeviceType::NetBasic),
        Some(Solo5Handle(2))
    );
    assert_eq!(
        m.lookup(b"storage\0junk", DeviceType::NetBasic),
        Some(Solo5Handle(2))
    );
    assert_eq!(m.lookup(b"storage0", DeviceType::NetBasic), None);
    assert_eq!(m.lookup(b"storag", DeviceType::BlockBasic), None);
    assert_eq!(m.lookup(b"", DeviceType::BlockBasic), None);
    assert_eq!(
        m.check_unique_names(),
        Err(ManifestError::DuplicateName {
            first: 2,
            second: 3
        })
    );
}

#[test]
fn the_builtin_manifest_path_checks_the_header_before_any_entry() {
    let bytes = mft(&[net("service0")]);
    let note = mft1_note(&bytes);
    let header = solo5_abi::note::Solo5NoteHeader::new(NoteKind::Manifest, 4 + 216);
    assert_eq!(builtin_manifest_size(&header), 216);
    let mft_header = MftHeader {
        version: MFT_VERSION,
        entries: 2,
    };
    assert_eq!(check_manifest_header(&mft_header, 216), Ok(216));
    assert_eq!(&note[..20], zerocopy::IntoBytes::as_bytes(&header));
    // A descriptor size below the padding wraps, as in C, and is refused.
    for descsz in 0..4 {
        let header = Solo5NoteHeader::new(NoteKind::Manifest, descsz);
        let size = builtin_manifest_size(&header);
        assert!(size > usize::MAX - 4);
        assert_eq!(
            check_manifest_header(&mft_header, size),
            Err(ManifestError::SizeMismatch {
                size,
                expected: 216
            })
        );
    }
}

// ---------------------------------------------------------------------------------
// ELF images

fn image_with_notes() -> Vec<u8> {
    let abi = abi1_note(Abi::MUEN);
    let mft_note = mft1_note(&mft(&[net("service0"), block("disk")]));
    elf_image(&[
        (1, &[0xcc; 40]),
        (PT_NOTE, &OPENBSD_NOTE),
        (PT_NOTE, &abi),
        (PT_NOTE, &mft_note),
    ])
}

#[test]
fn an_elf_image_gives_both_notes_with_program_header_indices() {
    let image = image_with_notes();
    let notes = notes_in_elf(&image).unwrap();
    assert_eq!(
        (notes.abi, notes.abi_segment, notes.manifest_segment),
        (Abi::MUEN, 2, 3)
    );
    let names: Vec<_> = notes.devices().unwrap().iter().map(|d| d.name).collect();
    assert_eq!(names, ["service0", "disk"]);
    // Not 8-byte aligned in memory: read from an aligned copy, same result.
    let mut shifted = vec![0u8; image.len() + 1];
    shifted[1..].copy_from_slice(&image);
    let again = notes_in_elf(&shifted[1..]).unwrap();
    assert_eq!(again.abi, notes.abi);
    assert_eq!(again.manifest.entry_bytes(), notes.manifest.entry_bytes());
}

fn elf_error(image: &[u8]) -> ElfError {
    match notes_in_elf(image) {
        Err(Error::Elf(e)) => e,
        other => panic!("expected an ELF error, got {other:?}"),
    }
}

#[test]
fn every_elf_header_check_names_its_field() {
    let good = image_with_notes();
    let patch = |offset: usize, bytes: &[u8]| {
        let mut image = good.clone();
        image[offset..offset + bytes.len()].copy_from_slice(bytes);
        image
    };
    assert_eq!(elf_error(&good[..63]), ElfError::TooShort { size: 63 });
    assert_eq!(elf_error(&patch(0, b"\x7fELG")), ElfError::NotElf);
    assert_eq!(elf_error(&patch(4, &[1])), ElfError::NotElf64);
    assert_eq!(elf_error(&patch(4, &[3])), ElfError::NotElf64);
    assert_eq!(elf_error(&patch(5, &[2])), ElfError::NotLittleEndian);
    assert_eq!(
        elf_error(&patch(20, &[2, 0, 0, 0])),
        ElfError::WrongVersion { version: 2 }
    );
    assert_eq!(
        elf_error(&patch(52, &[0x40, 1])),
        ElfError::WrongHeaderSize { size: 0x140 }
    );
    assert_eq!(elf_error(&patch(56, &[0, 0])), ElfError::NoProgramHeaders);
    assert_eq!(
        elf_error(&patch(54, &[64, 0])),
        ElfError::WrongProgramHeaderSize { size: 64 }
    );
    assert_eq!(
        elf_error(&patch(16, &[3, 0])),
        ElfError::NotExecutable { elf_type: 3 }
    );
    assert_eq!(
        elf_error(&patch(18, &[0xb7, 0])),
        ElfError::NotX86_64 { machine: 0xb7 }
    );
    for phoff in [0u64, 65, good.len() as u64, u64::MAX - 8] {
        assert_eq!(
            elf_error(&patch(32, &phoff.to_le_bytes())),
            ElfError::ProgramHeadersOutsideFile {
                offset: phoff,
                count: 4
            }
        );
    }
    assert_eq!(
        elf_error(&patch(56, &[200, 0])),
        ElfError::ProgramHeadersOutsideFile {
            offset: 64,
            count: 200
        }
    );
    // Program header 3's p_filesz (at 64 + 3 * 56 + 32) too large; p_offset overflowing.
    let size_at = 64 + 3 * 56 + 32;
    let e = elf_error(&patch(size_at, &(good.len() as u64).to_le_bytes()));
    assert!(
        matches!(e, ElfError::SegmentOutsideFile { segment: 3, .. }),
        "{e:?}"
    );
    let e = elf_error(&patch(size_at - 24, &u64::MAX.to_le_bytes()));
    assert!(
        matches!(e, ElfError::SegmentOutsideFile { segment: 3, .. }),
        "{e:?}"
    );
    // A PT_LOAD outside the file does not matter to the note loader.
    let e = patch(64 + 8, &u64::MAX.to_le_bytes());
    assert!(notes_in_elf(&e).is_ok());
    for e in [
        ElfError::NotX86_64 { machine: 0xb7 },
        ElfError::SegmentOutsideFile {
            segment: 3,
            offset: 1,
            size: 2,
        },
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn note_errors_in_an_image_name_the_program_header() {
    let abi = abi1_note(Abi::MUEN);
    let image = elf_image(&[(PT_NOTE, &abi), (PT_NOTE, &[0; 5])]);
    assert_eq!(
        notes_in_elf(&image).unwrap_err(),
        Error::Note(NoteError::SegmentTooSmall {
            segment: 1,
            size: 5
        })
    );
    let segments = note_segments(&image).unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[1].size, 5);
    let image = elf_image(&[(PT_NOTE, &abi)]);
    let e = notes_in_elf(&image).unwrap_err();
    assert_eq!(
        e,
        Error::Note(NoteError::Missing {
            kind: NoteKind::Manifest
        })
    );
    let image = elf_image(&[
        (PT_NOTE, &abi),
        (PT_NOTE, &mft1_note(&raw(2, 1, &[MftEntry::RESERVED_FIRST]))),
    ]);
    let e = notes_in_elf(&image).unwrap_err();
    assert_eq!(
        e,
        Error::Manifest(ManifestError::WrongVersion { version: 2 })
    );
    assert!(e.to_string().contains("wrong version"));
}
