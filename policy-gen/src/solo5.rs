//! Solo5 unikernels: the component specification that Solo5's Muen bindings expect,
//! made from the unikernel's ELF image alone.
//!
//! A unikernel linked with Solo5's Muen bindings (`-t muen`) carries its device
//! manifest and its ABI in two ELF notes (`MFT1`, `ABI1`; read with `solo5-abi` as
//! Solo5's own loader reads them). [`load`] reads and checks both and the image's
//! loadable segments; [`component_spec`] writes what Muen's `solo5-gencspec.py` writes
//! with Muen's template `cspec_src.xml`, without `muinit` (see below):
//!
//! | element | value | why (Solo5 v0.12.1 `bindings/`) |
//! |---|---|---|
//! | `<config>` | boolean `resettable` false, string `bootparams` | gencspec writes both; Muen's compose step makes `bootparams` the subject's `<bootparams>`, which `mugensolo5` writes into the boot info as the command line |
//! | `<depends>` | `libmudebuglog`, `libmutime` | the console writes channel `debuglog`; the clock reads `time_info` |
//! | exception masks | all 0 (`MachineCheck` stays with the kernel) | Solo5 handles its own traps and prints a crash report |
//! | MSR `0xc000_0100` `rw` | IA32_FS_BASE | `_start` sets the TLS base with `wrmsr` |
//! | RIP, RSP, RDI | ELF entry; end of `ram` − 8; [`BOOT_INFO_ADDRESS`] | `_start(void *arg)` takes the boot info pointer as its first argument |
//! | CR4 `OSSupportSIMDExceptions` | 1 | as Muen's template |
//! | `<channels>` | per `NET_BASIC` device in manifest order: reader `<dev>\|in`, writer `<dev>\|out`, no `vector`, no `event` | the bindings poll both channels and never raise an event for them |
//! | `<events>` | none | see below |
//! | `<provides>` | `boot_info` (type `subject_solo5_boot_info`, read-only, `<file filename="<name>_bi" offset="none">`), the image's regions, `ram` right after the image | `mem_init` uses everything from `_end` to the boot info's `mem_size` as heap and stack |
//!
//! `BLOCK_BASIC` devices get nothing: Solo5's Muen bindings answer every
//! `solo5_block_*` call with `SOLO5_R_EUNSPEC`, as gencspec ignores them too.
//!
//! The image's regions are named by this project's rule (`crate::elf`: `text`,
//! `rodata`, `data`, `bss`, …), not by gencspec's (the section names joined by `+`,
//! cut to fit): the names are then short, stable across images and independent of the
//! component name's length, and the one name Muen's tools care about, `text` (the
//! region `muinit` jumps to), is the same in both.
//!
//! No `solo5_exit` event: on exit, Solo5's `platform_exit` looks up the event
//! `solo5_exit` and, if the subject has one, triggers it with `vmcall`; then it halts
//! (`cli; hlt`) either way. Muen's MirageOS system gives a resettable unikernel that
//! event at the subject level (in the system policy, not in the component) with a
//! self target that carries `<reset/>`, so that `muinit` restores the image and the
//! unikernel starts again; a unikernel that is not resettable has no such event and
//! stays halted. gencspec's specification has no `<events>` either. A source event in
//! the component would need a target with an action in every system that uses it
//! (Muen's `mucfgvalidate` refuses a self event without one), and a `<reset/>` without
//! `muinit` would restart the unikernel on its used memory. So the event is the system
//! integrator's choice, as in Muen.
//!
//! No `muinit`: gencspec makes a unikernel resettable by default, which needs the
//! `muinit` library and a copy of the image whose bytes from `.interp` to `.text` are
//! patched to NOPs (muinit jumps to the start of `text`). A specification from here
//! starts at the ELF entry, as gencspec's `--disable-reset` does, and uses the image
//! unchanged.
//!
//! # ABI versions
//!
//! Solo5's Muen bindings read one format of the subject info page, tied to the ABI
//! version in the `ABI1` note ([`sinfo_version`]): version 4 (Solo5 v0.12.1 and later)
//! reads format 5, version 3 (Solo5 v0.11.0 to v0.12.0) format 4. The component
//! specification is the same for both; the Muen tools that build the system must
//! write the matching format, so the document's comment names it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use muen_abi::layout::{Region, PAGE_SIZE, SINFO};
use muen_abi::layout::{BLOCK_REQUEST_SIZE, BLOCK_RESPONSE_SIZE};
use muen_abi::names::{self, DeviceKind, Endpoint, NameError, Role, NAME_MAX};
use muen_abi::numbers::{NumberAllocator, TIMER_EVENT, TIMER_VECTOR};
use muen_abi::VirtAddr;
use muen_sinfo::{MemoryKind, Version};
use muen_spec::model::{
    bits, BitGroup, Channel, ChannelEnd, ComponentSpec, Config, ConfigValue, Content, Events, Gpr,
    MsrMode, MsrRange, Profile, ProvidedMemory, Registers, RequiredMemory, SourceEvent,
    TargetAction, TargetEvent, Vcpu,
};
use muen_spec::Generation;
use solo5_abi::note::Solo5NoteHeader;
use solo5_abi::{Abi, AbiTarget, DeviceType};
use zerocopy::FromBytes;

use crate::elf::{self, ElfProblem, Image};
use crate::spec::LIBRARIES;

/// RAM when none is given: 512 MiB, the default of Muen's `solo5-gencspec.py`.
pub const DEFAULT_RAM: u64 = 512 << 20;

/// Size of each network channel when none is given: 1 MiB, gencspec's default.
pub const DEFAULT_CHANNEL_SIZE: u64 = 1 << 20;

/// Size of each block device's data buffer when none is given (solo5-muen images):
/// 16 MiB, as for an app's block device (`muen_manifest::DEFAULT_BUFFER_SIZE`).
pub const DEFAULT_BUFFER_SIZE: u64 = muen_manifest::DEFAULT_BUFFER_SIZE;

/// Where the boot info is mapped (Muen's template `cspec_src.xml`); RDI holds it at
/// entry.
pub const BOOT_INFO_ADDRESS: VirtAddr = VirtAddr::new(0x1000);

/// The boot info region.
pub const BOOT_INFO: Region = Region {
    address: BOOT_INFO_ADDRESS,
    size: PAGE_SIZE,
};

/// The boot info region's logical name.
pub const BOOT_INFO_NAME: &str = "boot_info";

/// The vmcall event Solo5 triggers on exit if the subject has one (the system
/// policy's choice; the component specification has none).
pub const EXIT_EVENT: &str = muen_abi::solo5::EXIT_EVENT;

/// IA32_FS_BASE, which Solo5 writes to set its TLS base.
pub const FS_BASE_MSR: u32 = 0xc000_0100;

/// The config string Muen's compose step turns into the subject's `<bootparams>`.
pub const CONFIG_BOOTPARAMS: &str = "bootparams";

/// The config boolean that says whether the subject restarts through `muinit`.
pub const CONFIG_RESETTABLE: &str = "resettable";

/// The oldest Solo5 ABI version (target `muen`) supported: 3, Solo5 v0.11.0 to v0.12.0.
pub const ABI_VERSION_MIN: u32 = 3;

/// The newest: 4, Solo5 v0.12.1 and later.
pub const ABI_VERSION_MAX: u32 = solo5_abi::MUEN_ABI_VERSION;

/// The subject info format the Muen bindings of Solo5 ABI `abi` read, if supported:
/// format 5 for `muen` version 4, format 4 for `muen` version 3 (Solo5's CHANGES.md,
/// v0.12.1: "update sinfo to 05, ABI version to 4").
pub fn sinfo_version(abi: Abi) -> Option<Version> {
    match (abi.target, abi.version) {
        (AbiTarget::Muen, 4) => Some(Version::V5),
        (AbiTarget::Muen, 3) => Some(Version::V4),
        _ => None,
    }
}

/// The Solo5 release that declares ABI `muen` version `version` (for messages).
fn solo5_releases(version: u32) -> &'static str {
    match version {
        4 => "Solo5 v0.12.1 and later",
        3 => "Solo5 v0.11.0 to v0.12.0",
        _ => "no Solo5 release known here",
    }
}

/// A device of the unikernel's manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solo5Device {
    /// The name (1 to 67 ASCII letters and digits).
    pub name: String,
    /// `NET_BASIC` or `BLOCK_BASIC`.
    pub device_type: DeviceType,
}

/// Which Muen bindings a Solo5 unikernel is linked with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bindings {
    /// Solo5's own C bindings (`bindings/solo5_muen.o`): polled network channels, no
    /// block devices, `solo5_yield` spins.
    Solo5,
    /// This project's `solo5-muen` (Solo5's API on the `muen-subject` runtime), which
    /// declares itself with the note of `muen_abi::solo5`: the runtime's timer and
    /// channel events and vectors, and muenblock channels for block devices.
    MuenSubject,
}

impl Bindings {
    /// The bindings of `image`: [`Bindings::MuenSubject`] when one of its `PT_NOTE`
    /// segments holds the bindings note (`muen_abi::solo5`) with a version this
    /// policy-gen knows, [`Bindings::Solo5`] when none does.
    pub fn of(image: &[u8]) -> Result<Bindings, Solo5Problem> {
        let Ok(segments) = solo5_abi::elf::note_segments(image) else {
            return Ok(Bindings::Solo5);
        };
        let found = segments.iter().find_map(|s| {
            image
                .get(s.offset..s.offset.saturating_add(s.size))
                .and_then(muen_abi::solo5::find_in_segment)
        });
        match found {
            None => Ok(Bindings::Solo5),
            Some(muen_abi::solo5::NOTE_VERSION) => Ok(Bindings::MuenSubject),
            Some(version) => Err(Solo5Problem::UnknownBindings { version }),
        }
    }
}

impl fmt::Display for Bindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bindings::Solo5 => "Solo5's Muen bindings",
            Bindings::MuenSubject => "solo5-muen (Solo5's API on the muen-subject runtime)",
        })
    }
}

/// A Solo5 unikernel for Muen: its ABI, its bindings, its devices and its loadable
/// regions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solo5Image {
    /// The ABI of its `ABI1` note: target `muen`, version 3 or 4.
    pub abi: Abi,
    /// The bindings it is linked with.
    pub bindings: Bindings,
    /// The devices of its `MFT1` manifest, in manifest order (handle 1 first).
    pub devices: Vec<Solo5Device>,
    /// Its loadable segments as regions (`crate::elf`).
    pub image: Image,
}

impl Solo5Image {
    /// The subject info format its bindings read ([`sinfo_version`]).
    pub fn sinfo_version(&self) -> Version {
        // `load` accepts only ABIs that have one.
        sinfo_version(self.abi).unwrap_or(Version::V5)
    }

    /// Its `NET_BASIC` devices, in manifest order.
    pub fn net_devices(&self) -> impl Iterator<Item = &Solo5Device> {
        self.devices
            .iter()
            .filter(|d| d.device_type == DeviceType::NetBasic)
    }

    /// Its `BLOCK_BASIC` devices, in manifest order.
    pub fn block_devices(&self) -> impl Iterator<Item = &Solo5Device> {
        self.devices
            .iter()
            .filter(|d| d.device_type == DeviceType::BlockBasic)
    }
}

/// Why a file is not a Solo5 unikernel this module can describe.
#[derive(Debug)]
pub struct Solo5Error {
    /// The image file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: Solo5Problem,
}

impl fmt::Display for Solo5Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for Solo5Error {}

/// What is wrong with a Solo5 image, or with the values given for its specification.
#[derive(Debug)]
#[non_exhaustive]
pub enum Solo5Problem {
    /// The file cannot be read.
    Read(io::Error),
    /// An ELF file without any Solo5 note.
    NotSolo5 {
        /// Why Solo5's loader would refuse the file anyway, if it would.
        elf: Option<solo5_abi::elf::ElfError>,
    },
    /// The notes are malformed or missing (Solo5's loader or manifest rules).
    Notes(solo5_abi::Error),
    /// The ABI note names another target or an unsupported version.
    UnsupportedAbi {
        /// What the note says.
        found: Abi,
    },
    /// The image's segments cannot be regions (`crate::elf`).
    Elf(ElfProblem),
    /// The component name (given, or made from the file name) is not valid.
    ComponentName {
        /// The name.
        name: String,
        /// Whether it was made from the file name (no `--name`).
        from_file_name: bool,
        /// What is wrong.
        error: NameError,
    },
    /// A network device's name cannot name Muen channels.
    DeviceName {
        /// The device name.
        name: String,
        /// What is wrong.
        error: NameError,
    },
    /// A region's physical name `<component>|<region>` is longer than Muen allows.
    RegionNameTooLong {
        /// The region.
        region: String,
        /// The component name.
        component: String,
    },
    /// RAM and the channels do not fit below the subject info page.
    TooLarge {
        /// The end of the last region.
        end: u64,
    },
    /// The command line does not fit the boot info region with its 40-byte header.
    BootparamsTooLong {
        /// Its length in bytes.
        length: usize,
    },
    /// The image's bindings note (`muen_abi::solo5`) has a version this policy-gen
    /// does not know.
    UnknownBindings {
        /// The version.
        version: u32,
    },
    /// More channels than the runtime's event ids or vectors can serve.
    TooManyChannels {
        /// The channel that finds no number.
        channel: String,
    },
}

impl fmt::Display for Solo5Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Solo5Problem::Read(e) => write!(f, "cannot read the file: {e}"),
            Solo5Problem::NotSolo5 { elf } => {
                f.write_str("not a Solo5 unikernel: ")?;
                match elf {
                    Some(e) => write!(f, "{e}")?,
                    None => {
                        f.write_str("no PT_NOTE segment starts with a Solo5 note (ABI1 or MFT1)")?
                    }
                }
                f.write_str("; to describe another ELF, give its manifest (app.toml)")
            }
            Solo5Problem::Notes(e) => write!(f, "{e}"),
            Solo5Problem::UnsupportedAbi { found } => write!(
                f,
                "Solo5 ABI1 note: the image is built for target {} version {} ({}); \
                 supported are target muen version {ABI_VERSION_MAX} (Solo5 v0.12.1 and \
                 later, Muen sinfo format 5) and target muen version {ABI_VERSION_MIN} \
                 (Solo5 v0.11.0 to v0.12.0, sinfo format 4): build the unikernel with \
                 `-t muen`",
                found.target,
                found.version,
                if found.target == AbiTarget::Muen {
                    solo5_releases(found.version)
                } else {
                    "not a Muen unikernel"
                }
            ),
            Solo5Problem::Elf(e) => write!(f, "{e}"),
            Solo5Problem::ComponentName {
                name,
                from_file_name,
                error,
            } => {
                write!(f, "component name \"{name}\" {error}")?;
                if *from_file_name {
                    f.write_str(
                        " (made from the file name without `.muen`; give one with --name)",
                    )?;
                }
                f.write_str(": 1 to 53 characters, an ASCII letter, then letters, digits, `_`, `-`")
            }
            Solo5Problem::DeviceName { name, error } => write!(
                f,
                "network device \"{name}\" {error}: its channels `{name}|in` and \
                 `{name}|out` need a name of at most {} characters starting with a letter",
                names::DEVICE_NAME_MAX
            ),
            Solo5Problem::RegionNameTooLong { region, component } => write!(
                f,
                "the region `{region}` becomes the physical region `{component}|{region}` \
                 of {} characters, more than Muen's {NAME_MAX}; use a component name of \
                 at most {} characters (--name)",
                component.len() + 1 + region.len(),
                NAME_MAX - 1 - region.len()
            ),
            Solo5Problem::TooLarge { end } => write!(
                f,
                "RAM and channels would end at {end:#x}, beyond {:#x} where the subject \
                 info page starts; give a smaller --ram or --channel-size",
                SINFO.address.as_u64()
            ),
            Solo5Problem::BootparamsTooLong { length } => write!(
                f,
                "--bootparams: {length} bytes; the boot info page holds at most {} \
                 (40 bytes of header and a NUL)",
                BOOT_INFO.size - 41
            ),
            Solo5Problem::UnknownBindings { version } => write!(
                f,
                "the image's solo5-muen bindings note has version {version}; this policy-gen \
                 knows version {}: use the policy-gen of the same source tree as the bindings",
                muen_abi::solo5::NOTE_VERSION
            ),
            Solo5Problem::TooManyChannels { channel } => write!(
                f,
                "channel `{channel}` finds no free event id or vector (at most {} writer and \
                 {} reader channels)",
                muen_abi::numbers::MAX_WRITER_CHANNELS,
                muen_abi::numbers::MAX_READER_CHANNELS
            ),
        }
    }
}

/// Whether `image` is an ELF file with a Solo5 note: a `PT_NOTE` segment that starts
/// with a note named `Solo5` (of any type). Such an image is described by its notes;
/// a broken one is reported by [`parse`], not taken for something else.
pub fn is_solo5_image(image: &[u8]) -> bool {
    let Ok(segments) = solo5_abi::elf::note_segments(image) else {
        return false;
    };
    segments.iter().any(|s| {
        image
            .get(s.offset..s.offset.saturating_add(s.size))
            .and_then(|bytes| Solo5NoteHeader::read_from_prefix(bytes).ok())
            .is_some_and(|(header, _)| header.is_solo5())
    })
}

/// Reads the Solo5 unikernel at `path` ([`parse`]).
pub fn load(path: &Path) -> Result<Solo5Image, Solo5Error> {
    let error = |problem| Solo5Error {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| error(Solo5Problem::Read(e)))?;
    parse(&bytes, &file_name(path)).map_err(error)
}

/// Reads a Solo5 unikernel's bytes; `file_name` is what the regions' `<file>` name.
///
/// The notes come first, found and validated as Solo5's loader and `mft_validate` do,
/// plus the rules of Solo5's manifest generator and unique names
/// (`solo5_abi::Manifest::devices`); the ABI must be `muen` version 3 or 4. Then the
/// loadable segments ([`crate::elf::parse`]).
pub fn parse(bytes: &[u8], file_name: &str) -> Result<Solo5Image, Solo5Problem> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err(Solo5Problem::Elf(ElfProblem::NotElf));
    }
    if !is_solo5_image(bytes) {
        return Err(Solo5Problem::NotSolo5 {
            elf: solo5_abi::elf::note_segments(bytes).err(),
        });
    }
    let notes = solo5_abi::elf::notes_in_elf(bytes).map_err(Solo5Problem::Notes)?;
    if sinfo_version(notes.abi).is_none() {
        return Err(Solo5Problem::UnsupportedAbi { found: notes.abi });
    }
    let devices = notes
        .devices()
        .map_err(Solo5Problem::Notes)?
        .iter()
        .map(|d| Solo5Device {
            name: d.name.to_string(),
            device_type: d.device_type,
        })
        .collect();
    let bindings = Bindings::of(bytes)?;
    let image = elf::parse(bytes, file_name).map_err(Solo5Problem::Elf)?;
    Ok(Solo5Image {
        abi: notes.abi,
        bindings,
        devices,
        image,
    })
}

/// The base name of `path`.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The component name for the image at `path` when none is given: its file name
/// without the `.muen` suffix (`test_hello.muen` → `test_hello`).
pub fn default_name(path: &Path) -> String {
    let name = file_name(path);
    match name.strip_suffix(".muen") {
        Some(stem) if !stem.is_empty() => stem.to_string(),
        _ => name,
    }
}

/// What the specification of a Solo5 image may be given besides the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solo5Options {
    /// The component name (`None`: [`default_name`] of the image's file).
    pub name: Option<String>,
    /// RAM in bytes (a non-zero multiple of 4 KiB).
    pub ram: u64,
    /// Size of each network channel in bytes (a non-zero multiple of 4 KiB).
    pub channel_size: u64,
    /// Size of each block device's data buffer in bytes (a non-zero multiple of 4 KiB;
    /// images linked with solo5-muen only).
    pub buffer_size: u64,
    /// The command line for the config string `bootparams`.
    pub bootparams: String,
}

impl Default for Solo5Options {
    fn default() -> Self {
        Solo5Options {
            name: None,
            ram: DEFAULT_RAM,
            channel_size: DEFAULT_CHANNEL_SIZE,
            buffer_size: DEFAULT_BUFFER_SIZE,
            bootparams: String::new(),
        }
    }
}

/// The component specification of `solo5` (read from `path`) with `options`, as the
/// [module documentation](self) describes it.
pub fn component_spec(
    solo5: &Solo5Image,
    path: &Path,
    options: &Solo5Options,
) -> Result<ComponentSpec, Solo5Problem> {
    let (name, from_file_name) = match &options.name {
        Some(name) => (name.clone(), false),
        None => (default_name(path), true),
    };
    names::check_component_name(&name).map_err(|error| Solo5Problem::ComponentName {
        name: name.clone(),
        from_file_name,
        error,
    })?;
    let muen_subject = solo5.bindings == Bindings::MuenSubject;
    // Solo5's own bindings use the network devices only; solo5-muen all of them.
    let devices_with_channels = solo5
        .devices
        .iter()
        .filter(|d| muen_subject || d.device_type == DeviceType::NetBasic);
    for d in devices_with_channels.clone() {
        names::check_device_name(&d.name).map_err(|error| Solo5Problem::DeviceName {
            name: d.name.clone(),
            error,
        })?;
    }
    if options.bootparams.len() + 41 > BOOT_INFO.size as usize {
        return Err(Solo5Problem::BootparamsTooLong {
            length: options.bootparams.len(),
        });
    }

    // The image's regions are sorted by address; RAM starts where the last one ends
    // (`_end`, page-aligned), the device regions after RAM: the network channels in
    // manifest order, then (solo5-muen only) each block device's request and response
    // channels and data buffer.
    let image_end = solo5
        .image
        .regions
        .iter()
        .filter_map(|r| r.region.end())
        .max()
        .map_or(0, VirtAddr::as_u64);
    let too_large = || Solo5Problem::TooLarge { end: u64::MAX };
    let ram_end = image_end.checked_add(options.ram).ok_or_else(too_large)?;
    let region = |address: u64, size: u64| Region {
        address: VirtAddr::new(address),
        size,
    };

    let mut provides = vec![ProvidedMemory {
        logical: BOOT_INFO_NAME.to_string(),
        region: BOOT_INFO,
        writable: false,
        executable: false,
        kind: MemoryKind::SubjectSolo5BootInfo,
        content: Content::File {
            filename: format!("{name}_bi"),
            offset: None,
        },
        hash: None,
    }];
    provides.extend(solo5.image.regions.iter().cloned());
    provides.push(ProvidedMemory {
        logical: names::RAM.to_string(),
        region: region(image_end, options.ram),
        writable: true,
        executable: false,
        kind: MemoryKind::Subject,
        content: Content::Unspecified,
        hash: None,
    });
    for r in &provides {
        if name.len() + 1 + r.logical.len() > NAME_MAX {
            return Err(Solo5Problem::RegionNameTooLong {
                region: r.logical.clone(),
                component: name.clone(),
            });
        }
    }

    // Solo5's C bindings poll their channels: no events, no vectors. solo5-muen gets
    // them numbered as for an app (muen_abi::numbers): writers' events from 2, readers'
    // vectors from 33.
    let mut numbers = NumberAllocator::new();
    let mut channels = Vec::new();
    let mut memory = Vec::new();
    let mut address = ram_end;
    for d in devices_with_channels {
        for &endpoint in Endpoint::of(match d.device_type {
            DeviceType::NetBasic => DeviceKind::Net,
            DeviceType::BlockBasic => DeviceKind::Block,
        }) {
            let logical = format!("{}{}", d.name, endpoint.suffix());
            let size = match endpoint {
                Endpoint::NetIn | Endpoint::NetOut => options.channel_size,
                Endpoint::BlockRequest => BLOCK_REQUEST_SIZE,
                Endpoint::BlockResponse => BLOCK_RESPONSE_SIZE,
                Endpoint::BlockData => options.buffer_size,
            };
            let place = region(address, size);
            address = address.checked_add(size).ok_or_else(too_large)?;
            let no_number = || Solo5Problem::TooManyChannels {
                channel: logical.clone(),
            };
            let end = match endpoint.role() {
                Role::Reader => ChannelEnd::Reader {
                    vector: if muen_subject {
                        Some(numbers.vector().ok_or_else(no_number)?)
                    } else {
                        None
                    },
                },
                Role::Writer => ChannelEnd::Writer {
                    event: if muen_subject {
                        Some(numbers.event().ok_or_else(no_number)?)
                    } else {
                        None
                    },
                },
                Role::Memory => {
                    memory.push(RequiredMemory {
                        logical,
                        region: place,
                        writable: true,
                        executable: false,
                    });
                    continue;
                }
            };
            channels.push(Channel {
                logical,
                region: place,
                end,
            });
        }
    }
    if address > SINFO.address.as_u64() {
        return Err(Solo5Problem::TooLarge { end: address });
    }

    let mut others = std::collections::BTreeMap::new();
    others.insert(Gpr::Rdi, BOOT_INFO_ADDRESS.as_u64());
    let mut vcpu = Vcpu {
        msrs: vec![MsrRange {
            start: FS_BASE_MSR,
            end: FS_BASE_MSR,
            mode: MsrMode::ReadWrite,
        }],
        registers: Registers {
            rip: Some(solo5.image.entry),
            rsp: Some(VirtAddr::new(ram_end - 8)),
            others,
        },
        ..Vcpu::default()
    };
    for exception in bits::COMPONENT_EXCEPTIONS {
        vcpu.set_bit(BitGroup::ExceptionMask, exception, false);
    }
    vcpu.set_bit(BitGroup::Cr4, bits::OS_SUPPORT_SIMD_EXCEPTIONS, true);
    let mut events = Events::default();
    if muen_subject {
        // The runtime's idle loop (solo5_yield) sleeps with HLT until the timed event
        // fires the `timer` event, which the integrator links to the target event that
        // injects the timer vector; it reads the TSC at will.
        vcpu.set_bit(BitGroup::ProcControls, bits::HLT_EXITING, true);
        vcpu.set_bit(BitGroup::ProcControls, bits::RDTSC_EXITING, false);
        events = Events {
            source: vec![SourceEvent {
                logical: names::TIMER.to_string(),
                id: TIMER_EVENT,
                action: None,
            }],
            target: vec![TargetEvent {
                logical: names::TIMER.to_string(),
                id: None,
                action: Some(TargetAction::InjectInterrupt {
                    vector: TIMER_VECTOR,
                }),
            }],
        };
    }

    Ok(ComponentSpec {
        name,
        profile: Profile::Native,
        config: Config {
            booleans: vec![ConfigValue {
                name: CONFIG_RESETTABLE.to_string(),
                value: false,
            }],
            integers: Vec::new(),
            strings: vec![ConfigValue {
                name: CONFIG_BOOTPARAMS.to_string(),
                value: options.bootparams.clone(),
            }],
        },
        depends: LIBRARIES.map(str::to_string).to_vec(),
        vcpu,
        memory,
        channels,
        events,
        provides,
        ..ComponentSpec::default()
    })
}

/// The comment at the top of a Solo5 unikernel's document: where it comes from, the
/// subject info format its bindings need, and the devices it gets nothing for.
pub fn comment(solo5: &Solo5Image) -> String {
    let mut text = format!(
        "Generated by policy-gen from the Solo5 unikernel {} (Solo5 ABI {}, {}); do not \
         edit. Its Muen bindings read subject info format {}: build the system with Muen \
         tools that write it.",
        solo5.image.file_name,
        solo5.abi,
        solo5_releases(solo5.abi.version),
        solo5.sinfo_version().number()
    );
    let block: Vec<&str> = solo5.block_devices().map(|d| d.name.as_str()).collect();
    match solo5.bindings {
        Bindings::Solo5 => {
            if !block.is_empty() {
                text.push_str(&format!(
                    " Block devices without resources (Solo5's Muen bindings answer \
                     solo5_block_* with SOLO5_R_EUNSPEC): {}. Only a unikernel linked with \
                     solo5-muen gets muenblock channels for them.",
                    block.join(", ")
                ));
            }
        }
        Bindings::MuenSubject => {
            text.push_str(
                " Linked with solo5-muen (Solo5's API on the muen-subject runtime): the \
                 `timer` event and vector let solo5_yield halt, the channels have events \
                 and vectors, and block devices get muenblock channels (<dev>|req, \
                 <dev>|resp, <dev>|data), which Solo5's own Muen bindings cannot use.",
            );
        }
    }
    text
}

/// [`load`] and [`component_spec`] as the XML `policy-gen --elf IMAGE` prints for the
/// tools of `generation`.
pub fn generate(
    path: &Path,
    options: &Solo5Options,
    generation: Generation,
) -> Result<String, Solo5Error> {
    let solo5 = load(path)?;
    let spec = component_spec(&solo5, path, options).map_err(|problem| Solo5Error {
        path: path.to_path_buf(),
        problem,
    })?;
    Ok(muen_spec::write_with_comment(
        &spec,
        generation,
        &comment(&solo5),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(net: &[&str], block: &[&str]) -> Solo5Image {
        let region =
            |logical: &str, address: u64, size: u64, writable, executable| ProvidedMemory {
                logical: logical.to_string(),
                region: Region {
                    address: VirtAddr::new(address),
                    size,
                },
                writable,
                executable,
                kind: MemoryKind::SubjectBinary,
                content: Content::Fill(0),
                hash: None,
            };
        let device = |name: &&str, device_type| Solo5Device {
            name: name.to_string(),
            device_type,
        };
        Solo5Image {
            abi: Abi::MUEN,
            bindings: Bindings::Solo5,
            devices: net
                .iter()
                .map(|n| device(n, DeviceType::NetBasic))
                .chain(block.iter().map(|n| device(n, DeviceType::BlockBasic)))
                .collect(),
            image: Image {
                entry: VirtAddr::new(0x20_0020),
                file_name: "u.muen".into(),
                regions: vec![
                    region("text", 0x20_0000, 0x5000, false, true),
                    region("bss", 0x20_8000, 0x5000, true, false),
                ],
            },
        }
    }

    fn spec(solo5: &Solo5Image, options: &Solo5Options) -> Result<ComponentSpec, Solo5Problem> {
        component_spec(solo5, Path::new("dir/u.muen"), options)
    }

    #[test]
    fn abi_versions_pair_with_sinfo_formats() {
        let muen = |version| Abi {
            target: AbiTarget::Muen,
            version,
        };
        assert_eq!(sinfo_version(muen(4)), Some(Version::V5));
        assert_eq!(sinfo_version(muen(3)), Some(Version::V4));
        for version in [0, 1, 2, 5, u32::MAX] {
            assert_eq!(sinfo_version(muen(version)), None);
        }
        for target in AbiTarget::ALL {
            let abi = Abi { target, version: 4 };
            assert_eq!(sinfo_version(abi).is_some(), target == AbiTarget::Muen);
        }
        let mut old = image(&[], &[]);
        old.abi = muen(3);
        assert_eq!(old.sinfo_version(), Version::V4);
        assert!(comment(&old).contains("Solo5 v0.11.0 to v0.12.0"));
        assert!(comment(&old).contains("subject info format 4"));
    }

    #[test]
    fn ram_follows_the_image_and_channels_follow_ram() {
        let options = Solo5Options {
            ram: 0x10_0000,
            channel_size: 0x2000,
            ..Solo5Options::default()
        };
        let s = spec(&image(&["a", "b"], &["disk"]), &options).unwrap();
        assert_eq!(s.name, "u");
        let ram = s.provides.last().unwrap();
        assert_eq!(ram.logical, "ram");
        assert_eq!(
            (ram.region.address.as_u64(), ram.region.size),
            (0x20_d000, 0x10_0000)
        );
        assert_eq!(s.vcpu.registers.rsp, Some(VirtAddr::new(0x30_cff8)));
        assert_eq!(s.vcpu.registers.rip, Some(VirtAddr::new(0x20_0020)));
        let channels: Vec<(&str, u64)> = s
            .channels
            .iter()
            .map(|c| (c.logical.as_str(), c.region.address.as_u64()))
            .collect();
        assert_eq!(
            channels,
            [
                ("a|in", 0x30_d000),
                ("a|out", 0x30_f000),
                ("b|in", 0x31_1000),
                ("b|out", 0x31_3000)
            ]
        );
        assert_eq!(s.provides[0].logical, BOOT_INFO_NAME);
        assert!(comment(&image(&[], &["disk"])).contains("SOLO5_R_EUNSPEC): disk. Only"));
        assert!(s.memory.is_empty() && s.events.source.is_empty());
        assert!(s.channels.iter().all(|c| matches!(
            c.end,
            ChannelEnd::Reader { vector: None } | ChannelEnd::Writer { event: None }
        )));
        muen_spec::expand(&s).unwrap();
    }

    #[test]
    fn solo5_muen_gets_the_timer_numbered_channels_and_block_devices() {
        let options = Solo5Options {
            ram: 0x10_0000,
            channel_size: 0x2000,
            buffer_size: 0x4000,
            ..Solo5Options::default()
        };
        let mut u = image(&["a"], &["disk"]);
        u.bindings = Bindings::MuenSubject;
        let s = spec(&u, &options).unwrap();
        let channels: Vec<(&str, u64, u64, ChannelEnd)> = s
            .channels
            .iter()
            .map(|c| {
                (
                    c.logical.as_str(),
                    c.region.address.as_u64(),
                    c.region.size,
                    c.end,
                )
            })
            .collect();
        assert_eq!(
            channels,
            [
                (
                    "a|in",
                    0x30_d000,
                    0x2000,
                    ChannelEnd::Reader { vector: Some(33) }
                ),
                (
                    "a|out",
                    0x30_f000,
                    0x2000,
                    ChannelEnd::Writer { event: Some(2) }
                ),
                (
                    "disk|req",
                    0x31_1000,
                    BLOCK_REQUEST_SIZE,
                    ChannelEnd::Writer { event: Some(3) }
                ),
                (
                    "disk|resp",
                    0x31_9000,
                    BLOCK_RESPONSE_SIZE,
                    ChannelEnd::Reader { vector: Some(34) }
                ),
            ]
        );
        assert_eq!(s.memory.len(), 1);
        assert_eq!(s.memory[0].logical, "disk|data");
        assert_eq!(
            (s.memory[0].region.address.as_u64(), s.memory[0].region.size),
            (0x31_d000, 0x4000)
        );
        assert!(s.memory[0].writable && !s.memory[0].executable);
        assert_eq!(
            s.events
                .source
                .iter()
                .map(|e| (e.logical.as_str(), e.id))
                .collect::<Vec<_>>(),
            [("timer", TIMER_EVENT)]
        );
        assert_eq!(s.events.target.len(), 1);
        assert!(s.vcpu.bit(BitGroup::ProcControls, bits::HLT_EXITING) == Some(true));
        assert!(s.vcpu.bit(BitGroup::ProcControls, bits::RDTSC_EXITING) == Some(false));
        assert!(comment(&u).contains("solo5-muen"));
        assert!(!comment(&u).contains("EUNSPEC"));
        muen_spec::expand(&s).unwrap();

        // Block device names must now fit their channels' names.
        let long = "d".repeat(59);
        let mut u = image(&[], &[&long]);
        u.bindings = Bindings::MuenSubject;
        assert!(matches!(
            spec(&u, &options),
            Err(Solo5Problem::DeviceName { .. })
        ));
        // And the block regions count towards the end of the address space.
        let mut u = image(&[], &["disk"]);
        u.bindings = Bindings::MuenSubject;
        let too_much = Solo5Options {
            ram: SINFO.address.as_u64() - 0x20_d000 - 0x1000,
            ..Solo5Options::default()
        };
        assert!(matches!(
            spec(&u, &too_much),
            Err(Solo5Problem::TooLarge { .. })
        ));
    }

    #[test]
    fn the_bindings_note_decides_the_bindings() {
        use solo5_abi::build::{abi1_note, elf_image};
        let abi = abi1_note(Abi::MUEN);
        let plain = elf_image(&[(solo5_abi::elf::PT_NOTE, &abi)]);
        assert_eq!(Bindings::of(&plain).unwrap(), Bindings::Solo5);
        let mut segment = abi.clone();
        segment.extend_from_slice(&muen_abi::solo5::note_bytes());
        let ours = elf_image(&[(solo5_abi::elf::PT_NOTE, &segment)]);
        assert_eq!(Bindings::of(&ours).unwrap(), Bindings::MuenSubject);
        let mut future = muen_abi::solo5::note_bytes();
        future[28] = 9;
        let mut segment = abi.clone();
        segment.extend_from_slice(&future);
        let e = Bindings::of(&elf_image(&[(solo5_abi::elf::PT_NOTE, &segment)])).unwrap_err();
        assert!(matches!(e, Solo5Problem::UnknownBindings { version: 9 }));
        assert!(e.to_string().contains("version 9"));
        assert_eq!(Bindings::of(b"not an ELF").unwrap(), Bindings::Solo5);
    }

    #[test]
    fn limits_are_errors() {
        let options = Solo5Options::default();
        let too_much = Solo5Options {
            ram: SINFO.address.as_u64() - 0x20_d000 - 0x1000,
            ..Solo5Options::default()
        };
        assert!(spec(&image(&[], &[]), &too_much).is_ok());
        assert!(matches!(
            spec(&image(&["n"], &[]), &too_much),
            Err(Solo5Problem::TooLarge { .. })
        ));
        let huge = Solo5Options {
            ram: u64::MAX - 0xfff,
            ..Solo5Options::default()
        };
        assert!(matches!(
            spec(&image(&[], &[]), &huge),
            Err(Solo5Problem::TooLarge { .. })
        ));
        let long = "d".repeat(59);
        assert!(matches!(
            spec(&image(&[&long], &[]), &options),
            Err(Solo5Problem::DeviceName { .. })
        ));
        // Block devices get no channels, so their names do not matter here.
        assert!(spec(&image(&[], &[&long]), &options).is_ok());
        let digit = Solo5Options {
            name: Some("9lives".into()),
            ..Solo5Options::default()
        };
        let e = spec(&image(&[], &[]), &digit).unwrap_err().to_string();
        assert!(e.starts_with("component name \"9lives\" must start"), "{e}");
        assert!(!e.contains("file name"), "{e}");
        let fits = Solo5Options {
            bootparams: "x".repeat(4055),
            ..Solo5Options::default()
        };
        assert!(spec(&image(&[], &[]), &fits).is_ok());
        let one_more = Solo5Options {
            bootparams: "x".repeat(4056),
            ..Solo5Options::default()
        };
        assert!(matches!(
            spec(&image(&[], &[]), &one_more),
            Err(Solo5Problem::BootparamsTooLong { length: 4056 })
        ));
    }

    #[test]
    fn names_come_from_the_file() {
        assert_eq!(default_name(Path::new("a/test_net.muen")), "test_net");
        assert_eq!(default_name(Path::new("unikernel")), "unikernel");
        assert_eq!(default_name(Path::new(".muen")), ".muen");
        assert!(!is_solo5_image(b"\x7fELF"));
        assert!(matches!(
            parse(b"#!/bin/sh", "x"),
            Err(Solo5Problem::Elf(ElfProblem::NotElf))
        ));
    }
}
