//! The application manifest (`MFT1` note, `include/mft_abi.h`): the devices a unikernel
//! was built to use.
//!
//! A manifest is a `struct mft`: version, entry count, then that many 104-byte
//! [`MftEntry`]s. Entry 0 is always a nameless entry of type
//! [`MFT_RESERVED_FIRST`]; the devices follow, and a device's entry index is its Solo5
//! handle (1 to 63).
//!
//! Three sets of rules, kept apart because their users differ:
//!
//! * [`Manifest::validate`]: exactly Solo5's `mft_validate` (`tenders/common/mft.c`),
//!   which tenders and bindings run at start. What it accepts, Solo5 runs.
//! * [`Manifest::check_elftool_rules`]: what `solo5-elftool gen-manifest` refuses to
//!   generate (device types other than block and net, empty or non-alphanumeric
//!   names); a manifest Solo5's build produces always passes.
//! * [`Manifest::check_unique_names`]: no two devices share a name. Solo5 checks this
//!   nowhere; a second device with another's name and type is unreachable (lookups
//!   return the first), and on Muen both would need the same channel names.
//!
//! [`Manifest::devices`] applies the last two and gives the typed view.

use core::fmt;
use core::mem::{align_of, offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::api::Solo5Handle;
use crate::error::ManifestError;
use crate::note::{NoteKind, Solo5NoteHeader};

/// The manifest format version (`MFT_VERSION`).
pub const MFT_VERSION: u32 = 1;

/// The most entries a manifest may have, the reserved first one included
/// (`MFT_MAX_ENTRIES`); it equals the bits of a [`Solo5HandleSet`](crate::Solo5HandleSet).
pub const MFT_MAX_ENTRIES: u32 = 64;

/// The most devices a manifest may name: every entry but the reserved first one.
/// `solo5-elftool gen-manifest` refuses more ("too many entries, maximum 63").
pub const MFT_MAX_DEVICES: usize = MFT_MAX_ENTRIES as usize - 1;

/// Size of an entry's name field, terminating NUL included (`MFT_NAME_SIZE`).
pub const MFT_NAME_SIZE: usize = 68;

/// The longest device name, in bytes (`MFT_NAME_MAX`); `name[MFT_NAME_MAX]` is always NUL.
pub const MFT_NAME_MAX: usize = 67;

/// Entry type of a basic block device (`MFT_DEV_BLOCK_BASIC`).
pub const MFT_DEV_BLOCK_BASIC: u32 = 1;

/// Entry type of a basic network device (`MFT_DEV_NET_BASIC`).
pub const MFT_DEV_NET_BASIC: u32 = 2;

/// Entry type of the reserved first entry (`MFT_RESERVED_FIRST`, `1 << 30`).
pub const MFT_RESERVED_FIRST: u32 = 1 << 30;

/// The fixed part of a manifest (`struct mft` without its entry array; `sizeof(struct
/// mft)` is 8 and its alignment 8, as here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(8))]
pub struct MftHeader {
    /// The format version, [`MFT_VERSION`].
    pub version: u32,
    /// Number of entries that follow, the reserved first one included.
    pub entries: u32,
}

/// Properties of a basic block device (`struct mft_block_basic`), filled in by a
/// tender at run time; zero in an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MftBlockBasic {
    /// Capacity in bytes.
    pub capacity: u64,
    /// Block size in bytes.
    pub block_size: u16,
    /// The C struct's tail padding.
    padding: [u8; 6],
}

impl MftBlockBasic {
    /// Properties with the given capacity and block size (padding zero).
    pub const fn new(capacity: u64, block_size: u16) -> Self {
        Self {
            capacity,
            block_size,
            padding: [0; 6],
        }
    }
}

/// Properties of a basic network device (`struct mft_net_basic`), filled in by a
/// tender at run time; zero in an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MftNetBasic {
    /// MAC address.
    pub mac: [u8; 6],
    /// MTU in bytes.
    pub mtu: u16,
}

/// One manifest entry (`struct mft_entry`), 104 bytes, aligned to 8.
///
/// The C struct's unions are byte fields here: `u` (the device properties) is
/// [`properties`](Self::properties), read with [`block_basic`](Self::block_basic) or
/// [`net_basic`](Self::net_basic), and `b` (a tender's host descriptor or a bindings
/// pointer) is [`backing`](Self::backing). The C `bool attached` is a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(8))]
pub struct MftEntry {
    /// The device name, NUL-terminated; byte 67 is always NUL in a valid manifest.
    pub name: [u8; MFT_NAME_SIZE],
    /// The entry type (`mft_type_t`): [`MFT_DEV_BLOCK_BASIC`], [`MFT_DEV_NET_BASIC`] or
    /// [`MFT_RESERVED_FIRST`] in any manifest Solo5 builds.
    pub entry_type: u32,
    /// `union u`: [`MftBlockBasic`] or [`MftNetBasic`], for the tender's use.
    pub properties: [u8; 16],
    /// `union b` (`int hostfd` or `void *data`), for the tender's or bindings' use.
    pub backing: u64,
    /// `bool attached`: must be 0 (false) in an image.
    pub attached: u8,
    /// The C struct's tail padding.
    pub padding: [u8; 7],
}

/// Size of one manifest entry (`sizeof(struct mft_entry)`).
pub const MFT_ENTRY_SIZE: usize = size_of::<MftEntry>();

/// Size of the fixed part of a manifest (`sizeof(struct mft)`).
pub const MFT_HEADER_SIZE: usize = size_of::<MftHeader>();

const _: () = {
    assert!(size_of::<MftHeader>() == 8);
    assert!(align_of::<MftHeader>() == 8);
    assert!(offset_of!(MftHeader, entries) == 4);
    assert!(size_of::<MftBlockBasic>() == 16);
    assert!(offset_of!(MftBlockBasic, block_size) == 8);
    assert!(size_of::<MftNetBasic>() == 8);
    assert!(offset_of!(MftNetBasic, mtu) == 6);
    assert!(size_of::<MftEntry>() == 104);
    assert!(align_of::<MftEntry>() == 8);
    assert!(offset_of!(MftEntry, entry_type) == 68);
    assert!(offset_of!(MftEntry, properties) == 72);
    assert!(offset_of!(MftEntry, backing) == 88);
    assert!(offset_of!(MftEntry, attached) == 96);
    assert!(
        NoteKind::Manifest.descriptor_padding()
            + MFT_HEADER_SIZE
            + MFT_MAX_ENTRIES as usize * MFT_ENTRY_SIZE
            == crate::note::MFT1_NOTE_MAX_SIZE as usize
    );
};

impl MftEntry {
    /// An all-zero entry.
    pub const ZERO: Self = Self {
        name: [0; MFT_NAME_SIZE],
        entry_type: 0,
        properties: [0; 16],
        backing: 0,
        attached: 0,
        padding: [0; 7],
    };

    /// The reserved first entry: no name, type [`MFT_RESERVED_FIRST`], the rest zero.
    pub const RESERVED_FIRST: Self = Self {
        entry_type: MFT_RESERVED_FIRST,
        ..Self::ZERO
    };

    /// An entry of raw type `entry_type` whose name field starts with `name` (at most
    /// [`MFT_NAME_SIZE`] bytes are copied; the rest is zero). No rule is checked: this
    /// also makes entries Solo5 rejects.
    pub fn new(name: &[u8], entry_type: u32) -> Self {
        let mut entry = Self {
            entry_type,
            ..Self::ZERO
        };
        let len = name.len().min(MFT_NAME_SIZE);
        entry.name[..len].copy_from_slice(&name[..len]);
        entry
    }

    /// The name: the bytes before the first NUL of the name field (all 68 if there is
    /// none, which [`Manifest::validate`] rules out).
    pub fn name_bytes(&self) -> &[u8] {
        until_nul(&self.name)
    }

    /// The properties read as a block device's.
    pub fn block_basic(&self) -> MftBlockBasic {
        zerocopy::transmute!(self.properties)
    }

    /// The properties read as a network device's (their first 8 bytes).
    pub fn net_basic(&self) -> MftNetBasic {
        let [a, b, c, d, e, f, g, h, ..] = self.properties;
        zerocopy::transmute!([a, b, c, d, e, f, g, h])
    }
}

/// The bytes of `name` before its first NUL.
fn until_nul(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == 0) {
        Some(end) => &name[..end],
        None => name,
    }
}

/// The device types of a manifest (`mft_type_t` without the reserved type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum DeviceType {
    /// A basic block device, `BLOCK_BASIC`.
    BlockBasic = MFT_DEV_BLOCK_BASIC,
    /// A basic network device, `NET_BASIC`.
    NetBasic = MFT_DEV_NET_BASIC,
}

impl DeviceType {
    /// The device type of raw entry type `raw`, if it is one.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            MFT_DEV_BLOCK_BASIC => Some(Self::BlockBasic),
            MFT_DEV_NET_BASIC => Some(Self::NetBasic),
            _ => None,
        }
    }

    /// The raw entry type.
    pub const fn raw(self) -> u32 {
        self as u32
    }

    /// The name Solo5 uses in manifest JSON (`"NET_BASIC"`, `"BLOCK_BASIC"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::BlockBasic => "BLOCK_BASIC",
            Self::NetBasic => "NET_BASIC",
        }
    }

    /// The device type named `name` in manifest JSON.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "BLOCK_BASIC" => Some(Self::BlockBasic),
            "NET_BASIC" => Some(Self::NetBasic),
            _ => None,
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks the fixed part of a manifest of `mft_size` bytes as Solo5's `mft_validate`
/// does before it looks at any entry: size at least 8, version 1, at most 64
/// entries, size exactly 8 + 104 × entries, at least one entry. Returns that exact
/// size (which is at most 6664).
///
/// For a unikernel's built-in manifest, where the size comes from the note header
/// ([`builtin_manifest_size`]) and nothing guarantees that many bytes exist: check
/// the header read in place first, then view only the returned number of bytes and
/// pass them to [`Manifest::validate`].
pub fn check_manifest_header(header: &MftHeader, mft_size: usize) -> Result<usize, ManifestError> {
    if mft_size < MFT_HEADER_SIZE {
        return Err(ManifestError::TooSmall { size: mft_size });
    }
    if header.version != MFT_VERSION {
        return Err(ManifestError::WrongVersion {
            version: header.version,
        });
    }
    if header.entries > MFT_MAX_ENTRIES {
        return Err(ManifestError::TooManyEntries {
            entries: header.entries,
        });
    }
    // entries <= 64: no overflow.
    let expected = MFT_HEADER_SIZE + header.entries as usize * MFT_ENTRY_SIZE;
    if mft_size != expected {
        return Err(ManifestError::SizeMismatch {
            size: mft_size,
            expected,
        });
    }
    if header.entries < 1 {
        return Err(ManifestError::NoEntries);
    }
    Ok(expected)
}

/// The manifest size Solo5's bindings derive from their built-in manifest note's header
/// (`mft_get_builtin_mft1`): the descriptor size minus the 4 bytes of padding, computed
/// as C does in `size_t`, so a descriptor size below 4 wraps to a huge value, which
/// [`check_manifest_header`] then rejects.
pub fn builtin_manifest_size(note_header: &Solo5NoteHeader) -> usize {
    (note_header.header.descsz as usize).wrapping_sub(NoteKind::Manifest.descriptor_padding())
}

/// A manifest that passed Solo5's `mft_validate`, viewing the bytes it was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest<'a> {
    /// The entries' bytes: `entries` × 104.
    entries: &'a [u8],
}

impl<'a> Manifest<'a> {
    /// Validates the manifest `mft` (a `struct mft` of exactly `mft.len()` bytes: the
    /// manifest note's descriptor without padding) exactly as Solo5's `mft_validate`
    /// does: [`check_manifest_header`], then entry 0 must have type
    /// [`MFT_RESERVED_FIRST`] and an empty name, and every entry a NUL at name byte 67
    /// and `attached` false. Names' characters and other entry types are not checked
    /// (see [`check_elftool_rules`](Self::check_elftool_rules)).
    pub fn validate(mft: &'a [u8]) -> Result<Self, ManifestError> {
        let Ok((header, rest)) = MftHeader::read_from_prefix(mft) else {
            return Err(ManifestError::TooSmall { size: mft.len() });
        };
        check_manifest_header(&header, mft.len())?;
        let manifest = Self { entries: rest };
        let first = manifest.entries().next().unwrap_or(MftEntry::ZERO);
        if first.entry_type != MFT_RESERVED_FIRST {
            return Err(ManifestError::FirstEntryNotReserved {
                entry_type: first.entry_type,
            });
        }
        if first.name[0] != 0 {
            return Err(ManifestError::FirstEntryNamed);
        }
        for (index, entry) in (0..).zip(manifest.entries()) {
            if entry.name[MFT_NAME_MAX] != 0 {
                return Err(ManifestError::NameNotTerminated { index });
            }
            if entry.attached != 0 {
                return Err(ManifestError::EntryAttached { index });
            }
        }
        Ok(manifest)
    }

    /// Number of entries, the reserved first one included (1 to 64).
    pub fn entry_count(&self) -> u32 {
        // At most 64 entries of 104 bytes.
        (self.entries.len() / MFT_ENTRY_SIZE) as u32
    }

    /// The manifest's bytes without its 8-byte header: the entries.
    pub fn entry_bytes(&self) -> &'a [u8] {
        self.entries
    }

    /// Entry `index` (0 is the reserved one), if there is one.
    pub fn entry(&self, index: u32) -> Option<MftEntry> {
        let start = (index as usize).checked_mul(MFT_ENTRY_SIZE)?;
        let bytes = self.entries.get(start..)?;
        MftEntry::read_from_prefix(bytes)
            .ok()
            .map(|(entry, _)| entry)
    }

    /// Every entry, the reserved first one included, in order (the position is the
    /// handle).
    pub fn entries(&self) -> impl Iterator<Item = MftEntry> + 'a {
        self.entries
            .chunks_exact(MFT_ENTRY_SIZE)
            .filter_map(|chunk| MftEntry::read_from_bytes(chunk).ok())
    }

    /// The name of entry `index` (bytes before its NUL), borrowed from the manifest.
    pub fn name(&self, index: u32) -> Option<&'a [u8]> {
        let start = (index as usize).checked_mul(MFT_ENTRY_SIZE)?;
        let field = self.entries.get(start..start.checked_add(MFT_NAME_SIZE)?)?;
        Some(until_nul(field))
    }

    /// The handle of the device `name` of type `device_type`, found as Solo5's
    /// `mft_get_by_name` finds it: the first entry of that type whose name equals
    /// `name` (up to `name`'s first NUL, if any; compared as `strncmp` with 68).
    pub fn lookup(&self, name: &[u8], device_type: DeviceType) -> Option<Solo5Handle> {
        let name = until_nul(name);
        (0..self.entry_count())
            .find(|&index| {
                self.entry(index)
                    .is_some_and(|entry| entry.entry_type == device_type.raw())
                    && self.name(index) == Some(name)
            })
            .map(|index| Solo5Handle(u64::from(index)))
    }

    /// Checks what `solo5-elftool gen-manifest` enforces when it generates a manifest
    /// (and the C compiler, which rejects any type but `BLOCK_BASIC` and `NET_BASIC`):
    /// every entry after the first has one of those two types and a non-empty name of
    /// ASCII letters and digits. A manifest built by Solo5's tool chain always
    /// passes; at most 63 devices and at most 67 bytes a name already follow from
    /// [`validate`](Self::validate).
    pub fn check_elftool_rules(&self) -> Result<(), ManifestError> {
        for (index, entry) in (0..).zip(self.entries()).skip(1) {
            if DeviceType::from_raw(entry.entry_type).is_none() {
                return Err(ManifestError::UnknownEntryType {
                    index,
                    entry_type: entry.entry_type,
                });
            }
            check_device_name(entry.name_bytes(), index)?;
        }
        Ok(())
    }

    /// Checks that no two devices share a name (whatever their types). Neither Solo5
    /// nor its tool chain checks this.
    pub fn check_unique_names(&self) -> Result<(), ManifestError> {
        for second in 2..self.entry_count() {
            let name = self.name(second);
            if let Some(first) = (1..second).find(|&first| self.name(first) == name) {
                return Err(ManifestError::DuplicateName { first, second });
            }
        }
        Ok(())
    }

    /// The devices, after [`check_elftool_rules`](Self::check_elftool_rules) and
    /// [`check_unique_names`](Self::check_unique_names).
    pub fn devices(&self) -> Result<Devices<'a>, ManifestError> {
        self.check_elftool_rules()?;
        self.check_unique_names()?;
        Ok(Devices { manifest: *self })
    }
}

/// Checks a device name as `solo5-elftool gen-manifest` does: not empty, at most
/// [`MFT_NAME_MAX`] bytes, only ASCII letters and digits (`isalnum` in the C locale).
/// `index` is the entry index the errors name.
pub fn check_device_name(name: &[u8], index: u32) -> Result<(), ManifestError> {
    if name.is_empty() {
        return Err(ManifestError::EmptyName { index });
    }
    if name.len() > MFT_NAME_MAX {
        return Err(ManifestError::NameTooLong {
            index,
            length: name.len(),
        });
    }
    if !name.iter().all(u8::is_ascii_alphanumeric) {
        return Err(ManifestError::NameNotAlphanumeric { index });
    }
    Ok(())
}

/// One device of a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Device<'a> {
    /// The name: 1 to 67 ASCII letters and digits.
    pub name: &'a str,
    /// The device type.
    pub device_type: DeviceType,
    /// The Solo5 handle: the entry index, 1 to 63.
    pub handle: Solo5Handle,
}

/// The devices of a manifest that passed [`Manifest::devices`]'s checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Devices<'a> {
    manifest: Manifest<'a>,
}

impl<'a> Devices<'a> {
    /// The manifest the devices come from.
    pub fn manifest(&self) -> Manifest<'a> {
        self.manifest
    }

    /// Number of devices (0 to 63).
    pub fn len(&self) -> usize {
        self.manifest.entry_count() as usize - 1
    }

    /// Whether there are no devices.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The devices in manifest order (handles 1, 2, ...).
    pub fn iter(&self) -> impl Iterator<Item = Device<'a>> + 'a {
        let manifest = self.manifest;
        (1..manifest.entry_count()).filter_map(move |index| device(&manifest, index))
    }

    /// The device with handle `handle`.
    pub fn get(&self, handle: Solo5Handle) -> Option<Device<'a>> {
        let index = u32::try_from(handle.0).ok().filter(|&index| index >= 1)?;
        device(&self.manifest, index)
    }

    /// The device named `name`.
    pub fn find(&self, name: &str) -> Option<Device<'a>> {
        self.iter().find(|device| device.name == name)
    }
}

/// Entry `index` of a manifest whose entries passed the elftool rules, as a device.
/// Returns `None` only for indices out of range: the checks guarantee a known type and
/// an ASCII name.
fn device<'a>(manifest: &Manifest<'a>, index: u32) -> Option<Device<'a>> {
    let entry = manifest.entry(index)?;
    let device_type = DeviceType::from_raw(entry.entry_type)?;
    let name = core::str::from_utf8(manifest.name(index)?).ok()?;
    Some(Device {
        name,
        device_type,
        handle: Solo5Handle(u64::from(index)),
    })
}
