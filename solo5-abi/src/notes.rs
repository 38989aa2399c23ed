//! Both notes of an image, found and read as a Solo5 tender does at start.

use crate::abi1::Abi;
use crate::error::{Error, NoteError};
use crate::mft::{Devices, Manifest};
use crate::note::{find_note, NoteKind};

/// An image's ABI and manifest, read from its `PT_NOTE` segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Solo5Notes<'a> {
    /// The ABI the image declares.
    pub abi: Abi,
    /// The label of the segment holding the ABI note.
    pub abi_segment: usize,
    /// The manifest, validated as Solo5's `mft_validate` validates it.
    pub manifest: Manifest<'a>,
    /// The label of the segment holding the manifest note.
    pub manifest_segment: usize,
}

impl<'a> Solo5Notes<'a> {
    /// Finds both notes among `segments` (label and file bytes of every `PT_NOTE`
    /// segment, in program header order) as Solo5's `hvt` and `spt` tenders do: the
    /// ABI note first, then the manifest note, each by the loader's rules
    /// ([`find_note`]); then reads the ABI ([`Abi::from_descriptor`]) and validates
    /// the manifest ([`Manifest::validate`]). The ABI is not compared with any
    /// expected one (see [`Abi::expect`]) and the manifest's devices are not checked
    /// beyond Solo5's rules (see [`Manifest::devices`] or [`Self::devices`]).
    pub fn from_note_segments<I>(segments: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (usize, &'a [u8])> + Clone,
    {
        let abi_note = find_note(segments.clone(), NoteKind::Abi)?.ok_or(NoteError::Missing {
            kind: NoteKind::Abi,
        })?;
        let abi = Abi::from_descriptor(abi_note.descriptor)?;
        let manifest_note = find_note(segments, NoteKind::Manifest)?.ok_or(NoteError::Missing {
            kind: NoteKind::Manifest,
        })?;
        let manifest = Manifest::validate(manifest_note.descriptor)?;
        Ok(Self {
            abi,
            abi_segment: abi_note.segment,
            manifest,
            manifest_segment: manifest_note.segment,
        })
    }

    /// The manifest's devices, after the checks of [`Manifest::devices`].
    pub fn devices(&self) -> Result<Devices<'a>, Error> {
        Ok(self.manifest.devices()?)
    }
}
