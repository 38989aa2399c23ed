//! The note by which a Solo5 unikernel says that its Muen bindings are this project's
//! (`solo5-muen`, Solo5's `solo5.h` on the `muen-subject` runtime) rather than Solo5's
//! own C bindings.
//!
//! Both kinds of image carry Solo5's `ABI1` note (target `muen`) and `MFT1` manifest,
//! so Muen's tools and Solo5's treat them alike. What differs is what the bindings can
//! use, and so what `policy-gen --elf` writes: with these bindings the policy also
//! gets the runtime's `timer` event and vector (so that `solo5_yield` halts), events
//! and vectors on the network channels, and muenblock channels for block devices. The
//! bindings therefore declare themselves with one more ELF note:
//!
//! | field | value |
//! |---|---|
//! | `n_namesz` | 13 ([`NOTE_NAME`], `"muen-subject"` and its NUL, padded to 16) |
//! | `n_descsz` | 4 |
//! | `n_type` | [`NOTE_TYPE`] (`"MSB1"` read as a little-endian word) |
//! | descriptor | `u32` [`NOTE_VERSION`]: what the bindings expect of the policy |
//!
//! It lies in section [`NOTE_SECTION`], which Solo5's linker script (`*(.note.solo5.abi*)`)
//! puts right after the `ABI1` note in that note's `PT_NOTE` segment. Solo5's loader and
//! `solo5-elftool` read only the first note of a segment, so they never see it;
//! [`find_in_segment`] walks every note of a segment. Unlike a symbol it survives
//! `strip`.

/// The event a Solo5 unikernel's bindings trigger when it ends (`vmcall` with its
/// number), if the subject has one: Solo5's C bindings and solo5-muen alike. Muen's
/// MirageOS system links it to a reset of a resettable unikernel; the component
/// specification leaves it to the system (`policy-gen --elf` writes none).
pub const EXIT_EVENT: &str = "solo5_exit";

/// The note's name, NUL included.
pub const NOTE_NAME: &[u8; 13] = b"muen-subject\0";

/// The note's type: `"MSB1"` (muen-subject bindings, version 1 of the note).
pub const NOTE_TYPE: u32 = u32::from_le_bytes(*b"MSB1");

/// The descriptor's value: the policy contract the bindings expect. 1: the runtime's
/// `timer` event and vector, writer events and reader vectors on the channels,
/// `<dev>|req`, `<dev>|resp`, `<dev>|data` for block devices.
pub const NOTE_VERSION: u32 = 1;

/// The section the bindings put the note in.
pub const NOTE_SECTION: &str = ".note.solo5.abi.muen_subject";

/// Size of the whole note: 12-byte header, name padded to 16, 4-byte descriptor.
pub const NOTE_SIZE: usize = 32;

/// The note's bytes as the bindings emit them (little-endian, 4-byte aligned).
pub const fn note_bytes() -> [u8; NOTE_SIZE] {
    let mut bytes = [0u8; NOTE_SIZE];
    let words = [NOTE_NAME.len() as u32, 4, NOTE_TYPE];
    let mut i = 0;
    while i < 3 {
        let w = words[i].to_le_bytes();
        let mut j = 0;
        while j < 4 {
            bytes[i * 4 + j] = w[j];
            j += 1;
        }
        i += 1;
    }
    let mut k = 0;
    while k < NOTE_NAME.len() {
        bytes[12 + k] = NOTE_NAME[k];
        k += 1;
    }
    let v = NOTE_VERSION.to_le_bytes();
    let mut m = 0;
    while m < 4 {
        bytes[28 + m] = v[m];
        m += 1;
    }
    bytes
}

/// Rounds `n` up to a multiple of 4 (`None` on overflow).
fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

/// A little-endian word of `bytes` at `at`, if all four bytes are there.
fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The descriptor version of the bindings note among the notes of `segment` (the bytes
/// of one `PT_NOTE` segment), if one is there. Walks the notes as ELF lays them out
/// (12-byte header, name and descriptor each padded to 4 bytes) and stops at the first
/// note that does not fit; never reads outside `segment`.
pub fn find_in_segment(segment: &[u8]) -> Option<u32> {
    let mut at = 0usize;
    while let (Some(namesz), Some(descsz), Some(note_type)) = (
        word(segment, at),
        word(segment, at.checked_add(4)?),
        word(segment, at.checked_add(8)?),
    ) {
        let name_at = at.checked_add(12)?;
        let desc_at = name_at.checked_add(align4(namesz as usize)?)?;
        let next = desc_at.checked_add(align4(descsz as usize)?)?;
        if next > segment.len() {
            return None;
        }
        let name = &segment[name_at..name_at + namesz as usize];
        if note_type == NOTE_TYPE && name == NOTE_NAME && descsz >= 4 {
            return word(segment, desc_at);
        }
        at = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Solo5's ABI1 note of muen version 4 (36 bytes), as the bindings declare it.
    const ABI1: [u8; 36] = [
        6, 0, 0, 0, 16, 0, 0, 0, b'A', b'B', b'I', b'1', b'S', b'o', b'l', b'o', b'5', 0, 0, 0, 4,
        0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn the_note_follows_the_abi_note_and_is_found_there() {
        let note = note_bytes();
        assert_eq!(
            &note[..12],
            &[13, 0, 0, 0, 4, 0, 0, 0, b'M', b'S', b'B', b'1']
        );
        assert_eq!(&note[12..28], b"muen-subject\0\0\0\0");
        assert_eq!(&note[28..], &[1, 0, 0, 0]);
        let mut segment = ABI1.to_vec();
        assert_eq!(find_in_segment(&segment), None, "Solo5's C bindings");
        segment.extend_from_slice(&note);
        assert_eq!(find_in_segment(&segment), Some(NOTE_VERSION));
        assert_eq!(find_in_segment(&note), Some(NOTE_VERSION));
        // Cut anywhere: not found, no panic.
        for len in 0..segment.len() {
            assert_eq!(find_in_segment(&segment[..len]), None, "{len}");
        }
    }

    #[test]
    fn a_note_of_another_name_or_type_is_not_it() {
        let mut other = note_bytes();
        other[8] = b'X';
        assert_eq!(find_in_segment(&other), None);
        let mut other = note_bytes();
        other[14] = b'X';
        assert_eq!(find_in_segment(&other), None);
        let mut other = note_bytes();
        other[4] = 0; // no descriptor
        assert_eq!(find_in_segment(&other[..28]), None);
    }

    proptest! {
        #[test]
        fn any_bytes_are_walked_without_panicking(
            prefix in proptest::collection::vec(any::<u8>(), 0..100),
            with_note in any::<bool>(),
        ) {
            let mut segment = prefix;
            let before = segment.len();
            if with_note {
                segment.extend_from_slice(&note_bytes());
            }
            let found = find_in_segment(&segment);
            if with_note && before == 0 {
                prop_assert_eq!(found, Some(NOTE_VERSION));
            }
        }
    }
}
