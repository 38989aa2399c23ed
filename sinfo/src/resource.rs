//! Typed values of the resources a subject info page describes.
//!
//! These are plain values, decoded from a record and independent of the page. Every raw
//! number that could hold something this crate does not know (a memory kind of a newer
//! Muen, a corrupt content byte) has an `Unknown` variant instead of being an error:
//! the page stays usable and the value is still shown to the user.

use core::fmt;

use bitflags::bitflags;
use zerocopy::transmute;

use crate::layout::{
    self, DeviceMemoryRecordV4, DeviceMemoryRecordV5, DevicePortRecord, DeviceRecordV4,
    DeviceRecordV5, MemoryRecord, NumberRecord, RawResource, HASH_SIZE,
};
use crate::Version;

/// A name from the page: at most 63 bytes.
///
/// Muen's policy writes names as ASCII, but the page does not guarantee it, so a name is
/// kept as bytes. [`Name::as_str`] gives the text when it is UTF-8; [`fmt::Display`]
/// writes it with any invalid byte escaped as `\xNN`, so nothing is lost or hidden.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name<'a>(&'a [u8]);

impl<'a> Name<'a> {
    /// Wraps the used bytes of a name.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Name(bytes)
    }

    /// The bytes of the name (without padding or terminator).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The name as text, or the UTF-8 error if it is not valid UTF-8.
    pub fn as_str(&self) -> Result<&'a str, core::str::Utf8Error> {
        core::str::from_utf8(self.0)
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the name is empty.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for Name<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl PartialEq<str> for Name<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Name<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// One resource of the page: where it is, its name and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource<'a> {
    /// Index of the record in the page (0-based; empty records before it count).
    pub index: usize,
    /// The logical name.
    pub name: Name<'a>,
    /// The kind and its values.
    pub data: ResourceData,
}

/// What a resource is, with its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceData {
    /// A memory region (channels are memory regions of kind
    /// [`MemoryKind::SubjectChannel`]).
    Memory(Memory),
    /// An event the subject may trigger: the number it passes to `vmcall` in RAX.
    Event(u8),
    /// An interrupt vector the subject receives.
    Vector(u8),
    /// A PCI device.
    Device(Device),
    /// An MMIO region of a device.
    DeviceMemory(DeviceMemory),
    /// An I/O port range of a device (format v5 only).
    DevicePort(DevicePort),
    /// A record of a kind this crate does not know (including kind 6 in a v3/v4 page),
    /// with the raw kind value.
    Unknown(u32),
}

impl ResourceData {
    /// The kind of this resource.
    pub const fn kind(&self) -> ResourceKind {
        match self {
            ResourceData::Memory(_) => ResourceKind::Memory,
            ResourceData::Event(_) => ResourceKind::Event,
            ResourceData::Vector(_) => ResourceKind::Vector,
            ResourceData::Device(_) => ResourceKind::Device,
            ResourceData::DeviceMemory(_) => ResourceKind::DeviceMemory,
            ResourceData::DevicePort(_) => ResourceKind::DevicePort,
            ResourceData::Unknown(kind) => ResourceKind::Unknown(*kind),
        }
    }

    /// Decodes a record that is not empty; `None` for an empty (NONE) record.
    pub(crate) fn decode(version: Version, record: &RawResource) -> Option<ResourceData> {
        let data = record.data;
        let kind = ResourceKind::from_raw(version, record.kind.get())?;
        Some(match kind {
            ResourceKind::Memory => {
                let raw: MemoryRecord = transmute!(data);
                ResourceData::Memory(Memory::decode(version, &raw))
            }
            ResourceKind::Event => {
                let raw: NumberRecord = transmute!(data);
                ResourceData::Event(raw.number)
            }
            ResourceKind::Vector => {
                let raw: NumberRecord = transmute!(data);
                ResourceData::Vector(raw.number)
            }
            ResourceKind::Device => ResourceData::Device(match version {
                Version::V3 | Version::V4 => Device::decode_v4(&transmute!(data)),
                Version::V5 => Device::decode_v5(&transmute!(data)),
            }),
            ResourceKind::DeviceMemory => ResourceData::DeviceMemory(match version {
                Version::V3 | Version::V4 => DeviceMemory::decode_v4(&transmute!(data)),
                Version::V5 => DeviceMemory::decode_v5(&transmute!(data)),
            }),
            ResourceKind::DevicePort => {
                let raw: DevicePortRecord = transmute!(data);
                ResourceData::DevicePort(DevicePort {
                    sid: raw.sid.get(),
                    bar_index: raw.bar_index,
                    address: raw.address.get(),
                    size: raw.size.get(),
                })
            }
            ResourceKind::Unknown(kind) => ResourceData::Unknown(kind),
        })
    }
}

/// The kind of a (non-empty) resource record, for lookups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A memory region.
    Memory,
    /// An event.
    Event,
    /// An interrupt vector.
    Vector,
    /// A PCI device.
    Device,
    /// A device MMIO region.
    DeviceMemory,
    /// A device I/O port range.
    DevicePort,
    /// Any other raw kind value.
    Unknown(u32),
}

impl ResourceKind {
    /// Interprets a raw `kind` field of a page of `version`; `None` for an empty record.
    pub const fn from_raw(version: Version, raw: u32) -> Option<ResourceKind> {
        Some(match raw {
            layout::kind::NONE => return None,
            layout::kind::MEMORY => ResourceKind::Memory,
            layout::kind::EVENT => ResourceKind::Event,
            layout::kind::VECTOR => ResourceKind::Vector,
            layout::kind::DEVICE => ResourceKind::Device,
            layout::kind::DEVICE_MEMORY => ResourceKind::DeviceMemory,
            layout::kind::DEVICE_PORT if matches!(version, Version::V5) => ResourceKind::DevicePort,
            other => ResourceKind::Unknown(other),
        })
    }

    /// The raw `kind` value of this kind.
    pub const fn raw(self) -> u32 {
        match self {
            ResourceKind::Memory => layout::kind::MEMORY,
            ResourceKind::Event => layout::kind::EVENT,
            ResourceKind::Vector => layout::kind::VECTOR,
            ResourceKind::Device => layout::kind::DEVICE,
            ResourceKind::DeviceMemory => layout::kind::DEVICE_MEMORY,
            ResourceKind::DevicePort => layout::kind::DEVICE_PORT,
            ResourceKind::Unknown(raw) => raw,
        }
    }
}

/// Kind of a memory region: the `type` attribute of Muen's physical memory element.
///
/// Format v4 inserted `subject_devicetree` as value 18 and moved `kernel_interface`
/// from 18 to 19; [`MemoryKind::from_raw`] and [`MemoryKind::to_raw`] take the
/// version into account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    /// `subject`: plain subject memory (RAM).
    Subject,
    /// `subject_info`: the subject info page.
    SubjectInfo,
    /// `subject_binary`: the subject's image.
    SubjectBinary,
    /// `subject_zeropage`: a Linux zero page.
    SubjectZeropage,
    /// `subject_initrd`: an initial ramdisk.
    SubjectInitrd,
    /// `subject_channel`: a shared-memory channel.
    SubjectChannel,
    /// `subject_state`: the saved vCPU state.
    SubjectState,
    /// `subject_timed_event`: the timed event page.
    SubjectTimedEvent,
    /// `subject_interrupts`: pending interrupts.
    SubjectInterrupts,
    /// `subject_scheduling_info`: the scheduling info page.
    SubjectSchedulingInfo,
    /// `subject_bios`: BIOS memory.
    SubjectBios,
    /// `subject_acpi_rsdp`: ACPI RSDP table.
    SubjectAcpiRsdp,
    /// `subject_acpi_xsdt`: ACPI XSDT table.
    SubjectAcpiXsdt,
    /// `subject_acpi_fadt`: ACPI FADT table.
    SubjectAcpiFadt,
    /// `subject_acpi_dsdt`: ACPI DSDT table.
    SubjectAcpiDsdt,
    /// `subject_device`: device memory mapped as memory.
    SubjectDevice,
    /// `subject_solo5_boot_info`: Solo5's boot info.
    SubjectSolo5BootInfo,
    /// `subject_crash_audit`: the crash audit page.
    SubjectCrashAudit,
    /// `subject_devicetree`: a device tree (format v4 and later).
    SubjectDevicetree,
    /// `kernel_interface`: the kernel interface (Tau0 only).
    KernelInterface,
    /// A value this crate does not know for the page's version.
    Unknown(u8),
}

/// Memory kinds in v4/v5 order: the index is the raw value.
const MEMORY_KINDS: [MemoryKind; 20] = [
    MemoryKind::Subject,
    MemoryKind::SubjectInfo,
    MemoryKind::SubjectBinary,
    MemoryKind::SubjectZeropage,
    MemoryKind::SubjectInitrd,
    MemoryKind::SubjectChannel,
    MemoryKind::SubjectState,
    MemoryKind::SubjectTimedEvent,
    MemoryKind::SubjectInterrupts,
    MemoryKind::SubjectSchedulingInfo,
    MemoryKind::SubjectBios,
    MemoryKind::SubjectAcpiRsdp,
    MemoryKind::SubjectAcpiXsdt,
    MemoryKind::SubjectAcpiFadt,
    MemoryKind::SubjectAcpiDsdt,
    MemoryKind::SubjectDevice,
    MemoryKind::SubjectSolo5BootInfo,
    MemoryKind::SubjectCrashAudit,
    MemoryKind::SubjectDevicetree,
    MemoryKind::KernelInterface,
];

/// The raw value v4 gave to `subject_devicetree`; in v3 it was `kernel_interface`.
const DEVICETREE_V4: u8 = 18;

impl MemoryKind {
    /// Every named kind, in v4/v5 value order.
    pub const ALL: [MemoryKind; 20] = MEMORY_KINDS;

    /// Interprets a raw memory kind of a page of `version`.
    pub const fn from_raw(version: Version, raw: u8) -> MemoryKind {
        match (version, raw) {
            (Version::V3, DEVICETREE_V4) => MemoryKind::KernelInterface,
            (Version::V3, 19..) => MemoryKind::Unknown(raw),
            _ if (raw as usize) < MEMORY_KINDS.len() => MEMORY_KINDS[raw as usize],
            _ => MemoryKind::Unknown(raw),
        }
    }

    /// The raw value of this kind in a page of `version`, or `None` if that version has
    /// no such kind (`subject_devicetree` in v3).
    pub fn to_raw(self, version: Version) -> Option<u8> {
        match (self, version) {
            (MemoryKind::Unknown(raw), _) => Some(raw),
            (MemoryKind::SubjectDevicetree, Version::V3) => None,
            (MemoryKind::KernelInterface, Version::V3) => Some(DEVICETREE_V4),
            // The table has 20 entries, so the index fits a u8.
            _ => MEMORY_KINDS
                .iter()
                .position(|&kind| kind == self)
                .map(|index| index as u8),
        }
    }

    /// Muen's policy name of the kind (e.g. `subject_channel`); `None` for `Unknown`.
    pub const fn policy_name(self) -> Option<&'static str> {
        Some(match self {
            MemoryKind::Subject => "subject",
            MemoryKind::SubjectInfo => "subject_info",
            MemoryKind::SubjectBinary => "subject_binary",
            MemoryKind::SubjectZeropage => "subject_zeropage",
            MemoryKind::SubjectInitrd => "subject_initrd",
            MemoryKind::SubjectChannel => "subject_channel",
            MemoryKind::SubjectState => "subject_state",
            MemoryKind::SubjectTimedEvent => "subject_timed_event",
            MemoryKind::SubjectInterrupts => "subject_interrupts",
            MemoryKind::SubjectSchedulingInfo => "subject_scheduling_info",
            MemoryKind::SubjectBios => "subject_bios",
            MemoryKind::SubjectAcpiRsdp => "subject_acpi_rsdp",
            MemoryKind::SubjectAcpiXsdt => "subject_acpi_xsdt",
            MemoryKind::SubjectAcpiFadt => "subject_acpi_fadt",
            MemoryKind::SubjectAcpiDsdt => "subject_acpi_dsdt",
            MemoryKind::SubjectDevice => "subject_device",
            MemoryKind::SubjectSolo5BootInfo => "subject_solo5_boot_info",
            MemoryKind::SubjectCrashAudit => "subject_crash_audit",
            MemoryKind::SubjectDevicetree => "subject_devicetree",
            MemoryKind::KernelInterface => "kernel_interface",
            MemoryKind::Unknown(_) => return None,
        })
    }

    /// The kind with the given policy name.
    pub fn from_policy_name(name: &str) -> Option<MemoryKind> {
        MEMORY_KINDS
            .into_iter()
            .find(|kind| kind.policy_name() == Some(name))
    }
}

/// Writes the policy name, or `unknown_N` for an unknown raw value `N`.
impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.policy_name(), self) {
            (Some(name), _) => f.write_str(name),
            (None, MemoryKind::Unknown(raw)) => write!(f, "unknown_{raw}"),
            (None, _) => Ok(()),
        }
    }
}

/// What a memory region initially holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Content {
    /// Nothing defined (the policy has neither `<fill>` nor `<file>`).
    Uninitialized,
    /// Filled with [`Memory::pattern`].
    Fill,
    /// Loaded from a file.
    File,
    /// Any other raw value.
    Unknown(u8),
}

impl Content {
    /// Interprets a raw content byte.
    pub const fn from_raw(raw: u8) -> Content {
        match raw {
            0 => Content::Uninitialized,
            1 => Content::Fill,
            2 => Content::File,
            other => Content::Unknown(other),
        }
    }

    /// The raw content byte.
    pub const fn raw(self) -> u8 {
        match self {
            Content::Uninitialized => 0,
            Content::Fill => 1,
            Content::File => 2,
            Content::Unknown(raw) => raw,
        }
    }
}

/// Writes `uninitialized`, `fill`, `file` or `unknown_N`.
impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Uninitialized => f.write_str("uninitialized"),
            Content::Fill => f.write_str("fill"),
            Content::File => f.write_str("file"),
            Content::Unknown(raw) => write!(f, "unknown_{raw}"),
        }
    }
}

bitflags! {
    /// Access rights of a memory or device memory mapping. Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MemoryFlags: u8 {
        /// The subject may write the region.
        const WRITABLE = 1 << 0;
        /// The subject may execute code from the region.
        const EXECUTABLE = 1 << 1;
    }
}

bitflags! {
    /// Properties of a PCI device. Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct DeviceFlags: u8 {
        /// The device can signal message-signalled interrupts.
        const MSI_CAPABLE = 1 << 0;
    }
}

/// A memory region mapped into the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// What the region is for.
    pub kind: MemoryKind,
    /// What it initially holds.
    pub content: Content,
    /// How the subject may access it.
    pub flags: MemoryFlags,
    /// The fill byte; `None` if there is none (raw value 256; any other value above 255
    /// cannot be a byte either and also reads as `None`).
    pub pattern: Option<u8>,
    /// Virtual address of the mapping in the subject.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the initial content; `None` when the page holds all zeros.
    pub hash: Option<[u8; HASH_SIZE]>,
}

impl Memory {
    /// Whether the subject may write the region.
    pub const fn writable(&self) -> bool {
        self.flags.contains(MemoryFlags::WRITABLE)
    }

    /// Whether the subject may execute the region.
    pub const fn executable(&self) -> bool {
        self.flags.contains(MemoryFlags::EXECUTABLE)
    }

    /// The first address past the region, `None` if `address + size` overflows.
    pub const fn end(&self) -> Option<u64> {
        self.address.checked_add(self.size)
    }

    fn decode(version: Version, raw: &MemoryRecord) -> Memory {
        let pattern = raw.pattern.get();
        Memory {
            kind: MemoryKind::from_raw(version, raw.kind),
            content: Content::from_raw(raw.content),
            flags: MemoryFlags::from_bits_retain(raw.flags),
            pattern: u8::try_from(pattern).ok(),
            address: raw.address.get(),
            size: raw.size.get(),
            hash: if raw.hash == [0; HASH_SIZE] {
                None
            } else {
                Some(raw.hash)
            },
        }
    }

    /// The raw pattern value for `pattern`.
    #[cfg(any(test, feature = "builder"))]
    pub(crate) fn raw_pattern(pattern: Option<u8>) -> u16 {
        pattern.map_or(layout::NO_PATTERN, u16::from)
    }
}

/// How a PCI device is reset (format v5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetMethod {
    /// No reset.
    None,
    /// Function level reset.
    Flr,
    /// Advanced features function level reset.
    AfFlr,
    /// Power management reset (D3hot to D0).
    Pm,
    /// Secondary bus reset.
    Bus,
    /// Any other raw value.
    Unknown(u8),
}

impl ResetMethod {
    /// Interprets a raw reset method byte.
    pub const fn from_raw(raw: u8) -> ResetMethod {
        match raw {
            0 => ResetMethod::None,
            1 => ResetMethod::Flr,
            2 => ResetMethod::AfFlr,
            3 => ResetMethod::Pm,
            4 => ResetMethod::Bus,
            other => ResetMethod::Unknown(other),
        }
    }

    /// The raw reset method byte.
    pub const fn raw(self) -> u8 {
        match self {
            ResetMethod::None => 0,
            ResetMethod::Flr => 1,
            ResetMethod::AfFlr => 2,
            ResetMethod::Pm => 3,
            ResetMethod::Bus => 4,
            ResetMethod::Unknown(raw) => raw,
        }
    }
}

/// Writes `none`, `flr`, `af_flr`, `pm`, `bus` or `unknown_N`.
impl fmt::Display for ResetMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetMethod::None => f.write_str("none"),
            ResetMethod::Flr => f.write_str("flr"),
            ResetMethod::AfFlr => f.write_str("af_flr"),
            ResetMethod::Pm => f.write_str("pm"),
            ResetMethod::Bus => f.write_str("bus"),
            ResetMethod::Unknown(raw) => write!(f, "unknown_{raw}"),
        }
    }
}

/// A PCI device assigned to the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// PCI source ID of the address the subject sees (bus << 8 | device << 3 |
    /// function).
    pub sid: u16,
    /// First interrupt remapping table entry (the lowest physical IRQ).
    pub irte_start: u16,
    /// First vector of the device's interrupts in the subject.
    pub irq_start: u8,
    /// Number of vectors (0 if the device has no interrupts).
    pub ir_count: u8,
    /// Device properties.
    pub flags: DeviceFlags,
    /// Identification and reset method; present in format v5 pages only.
    pub pci: Option<PciInfo>,
}

/// The fields format v5 added to a PCI device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciInfo {
    /// PCI vendor ID.
    pub vendor_id: u16,
    /// PCI device ID.
    pub device_id: u16,
    /// PCI class code.
    pub class_code: u16,
    /// How the device is reset.
    pub reset_method: ResetMethod,
}

impl Device {
    /// Whether the device can use message-signalled interrupts.
    pub const fn msi_capable(&self) -> bool {
        self.flags.contains(DeviceFlags::MSI_CAPABLE)
    }

    fn decode_v4(raw: &DeviceRecordV4) -> Device {
        Device {
            sid: raw.sid.get(),
            irte_start: raw.irte_start.get(),
            irq_start: raw.irq_start,
            ir_count: raw.ir_count,
            flags: DeviceFlags::from_bits_retain(raw.flags),
            pci: None,
        }
    }

    fn decode_v5(raw: &DeviceRecordV5) -> Device {
        Device {
            sid: raw.sid.get(),
            irte_start: raw.irte_start.get(),
            irq_start: raw.irq_start,
            ir_count: raw.ir_count,
            flags: DeviceFlags::from_bits_retain(raw.flags),
            pci: Some(PciInfo {
                vendor_id: raw.vendor_id.get(),
                device_id: raw.device_id.get(),
                class_code: raw.class_code.get(),
                reset_method: ResetMethod::from_raw(raw.reset_method),
            }),
        }
    }
}

/// An MMIO region of a device, mapped into the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceMemory {
    /// How the subject may access it.
    pub flags: MemoryFlags,
    /// Virtual address of the mapping.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
    /// The device and BAR the region belongs to; present in format v5 pages only.
    pub bar: Option<PciBar>,
}

/// The fields format v5 added to a device memory region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciBar {
    /// Source ID of the device.
    pub sid: u16,
    /// Index of the BAR.
    pub index: u8,
    /// The BAR's I/O-memory flags, raw (their meaning is not documented by Muen; Solo5
    /// names bit 0 "prefetchable" and bit 1 "64-bit").
    pub io_mem_flags: u8,
    /// The BAR's address.
    pub address: u64,
}

impl DeviceMemory {
    /// Whether the subject may write the region.
    pub const fn writable(&self) -> bool {
        self.flags.contains(MemoryFlags::WRITABLE)
    }

    /// Whether the subject may execute the region.
    pub const fn executable(&self) -> bool {
        self.flags.contains(MemoryFlags::EXECUTABLE)
    }

    fn decode_v4(raw: &DeviceMemoryRecordV4) -> DeviceMemory {
        DeviceMemory {
            flags: MemoryFlags::from_bits_retain(raw.flags),
            address: raw.address.get(),
            size: raw.size.get(),
            bar: None,
        }
    }

    fn decode_v5(raw: &DeviceMemoryRecordV5) -> DeviceMemory {
        DeviceMemory {
            flags: MemoryFlags::from_bits_retain(raw.flags),
            address: raw.address.get(),
            size: raw.size.get(),
            bar: Some(PciBar {
                sid: raw.sid.get(),
                index: raw.bar_index,
                io_mem_flags: raw.io_mem_flags,
                address: raw.bar_address.get(),
            }),
        }
    }
}

/// An I/O port range of a device (format v5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevicePort {
    /// Source ID of the device.
    pub sid: u16,
    /// Index of the BAR.
    pub bar_index: u8,
    /// First port.
    pub address: u16,
    /// Number of ports.
    pub size: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_kinds_follow_the_v4_renumbering() {
        assert_eq!(
            MemoryKind::from_raw(Version::V4, 18),
            MemoryKind::SubjectDevicetree
        );
        assert_eq!(
            MemoryKind::from_raw(Version::V5, 18),
            MemoryKind::SubjectDevicetree
        );
        assert_eq!(
            MemoryKind::from_raw(Version::V4, 19),
            MemoryKind::KernelInterface
        );
        assert_eq!(
            MemoryKind::from_raw(Version::V3, 18),
            MemoryKind::KernelInterface
        );
        assert_eq!(
            MemoryKind::from_raw(Version::V3, 19),
            MemoryKind::Unknown(19)
        );
        assert_eq!(
            MemoryKind::from_raw(Version::V4, 20),
            MemoryKind::Unknown(20)
        );
        assert_eq!(
            MemoryKind::from_raw(Version::V4, 5),
            MemoryKind::SubjectChannel
        );

        assert_eq!(MemoryKind::KernelInterface.to_raw(Version::V3), Some(18));
        assert_eq!(MemoryKind::KernelInterface.to_raw(Version::V4), Some(19));
        assert_eq!(MemoryKind::SubjectDevicetree.to_raw(Version::V3), None);
        assert_eq!(MemoryKind::SubjectDevicetree.to_raw(Version::V5), Some(18));
        assert_eq!(MemoryKind::Unknown(200).to_raw(Version::V5), Some(200));

        for version in [Version::V3, Version::V4, Version::V5] {
            for raw in 0..=u8::MAX {
                let kind = MemoryKind::from_raw(version, raw);
                assert_eq!(kind.to_raw(version), Some(raw), "{version:?} {raw}");
            }
        }
    }

    #[test]
    fn memory_kind_names_are_the_policy_type_names() {
        assert_eq!(
            MemoryKind::SubjectSolo5BootInfo.policy_name(),
            Some("subject_solo5_boot_info")
        );
        assert_eq!(MemoryKind::KernelInterface.to_string(), "kernel_interface");
        assert_eq!(MemoryKind::Unknown(42).to_string(), "unknown_42");
        for kind in MemoryKind::ALL {
            let name = kind.policy_name().unwrap();
            assert_eq!(MemoryKind::from_policy_name(name), Some(kind));
        }
        assert_eq!(MemoryKind::from_policy_name("subject_nothing"), None);
    }

    #[test]
    fn resource_kinds_depend_on_the_version_for_device_ports() {
        assert_eq!(ResourceKind::from_raw(Version::V4, 0), None);
        assert_eq!(
            ResourceKind::from_raw(Version::V4, 6),
            Some(ResourceKind::Unknown(6))
        );
        assert_eq!(
            ResourceKind::from_raw(Version::V5, 6),
            Some(ResourceKind::DevicePort)
        );
        assert_eq!(
            ResourceKind::from_raw(Version::V5, 7),
            Some(ResourceKind::Unknown(7))
        );
        for raw in 1..10 {
            assert_eq!(ResourceKind::from_raw(Version::V5, raw).unwrap().raw(), raw);
        }
    }

    #[test]
    fn small_enums_round_trip_their_raw_values() {
        for raw in 0..=u8::MAX {
            assert_eq!(Content::from_raw(raw).raw(), raw);
            assert_eq!(ResetMethod::from_raw(raw).raw(), raw);
        }
        assert_eq!(Content::from_raw(1), Content::Fill);
        assert_eq!(ResetMethod::from_raw(2).to_string(), "af_flr");
        assert_eq!(Content::Unknown(9).to_string(), "unknown_9");
    }

    #[test]
    fn names_display_text_and_escape_invalid_bytes() {
        use std::string::ToString;
        let name = Name::new(b"net0|in");
        assert_eq!(name, "net0|in");
        assert_eq!(name.as_str(), Ok("net0|in"));
        assert_eq!(name.to_string(), "net0|in");
        let bad = Name::new(b"a\xffb");
        assert!(bad.as_str().is_err());
        assert_eq!(bad.to_string(), "a\\xffb");
        assert_eq!(std::format!("{bad:?}"), "\"a\\xffb\"");
    }

    #[test]
    fn pattern_values_above_255_mean_none() {
        let mut raw: MemoryRecord = transmute!([0u8; layout::VARIANT_SIZE]);
        raw.pattern.set(layout::NO_PATTERN);
        assert_eq!(Memory::decode(Version::V4, &raw).pattern, None);
        raw.pattern.set(0x1234);
        assert_eq!(Memory::decode(Version::V4, &raw).pattern, None);
        raw.pattern.set(0x22);
        assert_eq!(Memory::decode(Version::V4, &raw).pattern, Some(0x22));
        assert_eq!(Memory::raw_pattern(None), 256);
        assert_eq!(Memory::raw_pattern(Some(0)), 0);
    }
}
