//! The ABI note (`ABI1`, `include/elf_abi.h`): which Solo5 target (tender or
//! platform) an image was built for, and that target's ABI version.

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::NoteError;
use crate::note::{NoteKind, Solo5NoteHeader};

/// The ABI version Solo5's Muen bindings declare (Solo5 v0.12.1, `bindings/muen/start.c`;
/// it was 3 before v0.12.1).
pub const MUEN_ABI_VERSION: u32 = 4;

/// The descriptor of the ABI note (`struct abi1_info`), 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Abi1Info {
    /// The target (`enum abi_target`, see [`AbiTarget`]).
    pub abi_target: u32,
    /// The target's ABI version.
    pub abi_version: u32,
    /// Reserved, written as 0; Solo5 does not look at it.
    pub reserved0: u32,
    /// Reserved, written as 0; Solo5 does not look at it.
    pub reserved1: u32,
}

/// A whole ABI note (`struct abi1_note`): header and descriptor, 36 bytes, as a
/// unikernel's bindings declare it in section `.note.solo5.abi`.
///
/// [`Abi1Note::new`] is `const`, so a Rust implementation of the bindings can emit the
/// note as a `#[link_section = ".note.solo5.abi"]` static.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Abi1Note {
    /// The note header (descriptor size 16, type `ABI1`).
    pub header: Solo5NoteHeader,
    /// The descriptor.
    pub info: Abi1Info,
}

const _: () = {
    assert!(size_of::<Abi1Info>() == 16);
    assert!(offset_of!(Abi1Info, abi_target) == 0);
    assert!(offset_of!(Abi1Info, abi_version) == 4);
    assert!(offset_of!(Abi1Info, reserved0) == 8);
    assert!(offset_of!(Abi1Info, reserved1) == 12);
    assert!(size_of::<Abi1Note>() == 36);
    assert!(offset_of!(Abi1Note, info) == NoteKind::Abi.descriptor_offset());
    assert!(core::mem::align_of::<Abi1Note>() == 4);
};

impl Abi1Note {
    /// The note declaring `abi` (reserved words 0), as Solo5's `ABI1_NOTE_DECLARE_BEGIN`
    /// writes it.
    pub const fn new(abi: Abi) -> Self {
        Self {
            header: Solo5NoteHeader::new(NoteKind::Abi, size_of::<Abi1Info>() as u32),
            info: Abi1Info {
                abi_target: abi.target as u32,
                abi_version: abi.version,
                reserved0: 0,
                reserved1: 0,
            },
        }
    }
}

/// Solo5's targets (`enum abi_target`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AbiTarget {
    /// `hvt`, the hardware-virtualised tender.
    Hvt = 1,
    /// `spt`, the sandboxed-process tender.
    Spt = 2,
    /// `virtio`.
    Virtio = 3,
    /// `muen`, a Muen subject.
    Muen = 4,
    /// `genode`.
    Genode = 5,
    /// `xen`.
    Xen = 6,
}

impl AbiTarget {
    /// Every target, in number order.
    pub const ALL: [Self; 6] = [
        Self::Hvt,
        Self::Spt,
        Self::Virtio,
        Self::Muen,
        Self::Genode,
        Self::Xen,
    ];

    /// The target numbered `raw`, if Solo5 defines it.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::Hvt,
            2 => Self::Spt,
            3 => Self::Virtio,
            4 => Self::Muen,
            5 => Self::Genode,
            6 => Self::Xen,
            _ => return None,
        })
    }

    /// The target's name as `solo5-elftool query-abi` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hvt => "hvt",
            Self::Spt => "spt",
            Self::Virtio => "virtio",
            Self::Muen => "muen",
            Self::Genode => "genode",
            Self::Xen => "xen",
        }
    }
}

impl fmt::Display for AbiTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An image's ABI: its target and the target's ABI version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Abi {
    /// The target.
    pub target: AbiTarget,
    /// The target's ABI version.
    pub version: u32,
}

impl Abi {
    /// What Solo5 v0.12.1's Muen bindings declare: target `muen`, version 4.
    pub const MUEN: Self = Self {
        target: AbiTarget::Muen,
        version: MUEN_ABI_VERSION,
    };

    /// Reads the descriptor of an ABI note (padding already removed, as
    /// [`find_note`](crate::find_note) returns it).
    ///
    /// Solo5's loader accepts 1 to 32 descriptor bytes and the tenders then read the
    /// first 8 whatever the size; this requires the whole 16-byte `struct abi1_info`
    /// ([`NoteError::AbiDescriptorTooShort`]) and ignores bytes after it, as Solo5
    /// does. A target Solo5 does not define is [`NoteError::UnknownAbiTarget`].
    pub fn from_descriptor(descriptor: &[u8]) -> Result<Self, NoteError> {
        let Ok((info, _)) = Abi1Info::read_from_prefix(descriptor) else {
            return Err(NoteError::AbiDescriptorTooShort {
                size: descriptor.len(),
            });
        };
        Self::from_info(&info)
    }

    /// The ABI `info` declares, if its target is one Solo5 defines.
    pub fn from_info(info: &Abi1Info) -> Result<Self, NoteError> {
        match AbiTarget::from_raw(info.abi_target) {
            Some(target) => Ok(Self {
                target,
                version: info.abi_version,
            }),
            None => Err(NoteError::UnknownAbiTarget {
                target: info.abi_target,
            }),
        }
    }

    /// Checks that this is the `expected` ABI, as a tender checks an image's ABI note
    /// against its own target and version before loading it.
    pub fn expect(self, expected: Abi) -> Result<(), NoteError> {
        if self == expected {
            Ok(())
        } else {
            Err(NoteError::AbiMismatch {
                expected,
                found: self,
            })
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} version {}", self.target, self.version)
    }
}
