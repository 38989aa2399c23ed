//! Writing subject info pages (feature `builder`).
//!
//! [`Builder`] lays a page out the way Muen's generator (`mugensinfo`) does: the header,
//! then one record per resource in the order they are added, every unused byte zero
//! (name padding, name terminator, record and variant padding, unused slots), and the
//! pattern 256 for "no pattern". Given the values decoded from a page that Muen wrote,
//! it reproduces that page byte for byte.
//!
//! ```
//! use muen_sinfo::{Builder, Content, Memory, MemoryFlags, MemoryKind, SubjectInfo, Version};
//!
//! let channel = Memory {
//!     kind: MemoryKind::SubjectChannel,
//!     content: Content::Uninitialized,
//!     flags: MemoryFlags::WRITABLE,
//!     pattern: None,
//!     address: 0x10_0000_0000,
//!     size: 0x1000,
//!     hash: None,
//! };
//! let page = Builder::new(Version::V5, "app", 2_900_000)?
//!     .memory("net0|out", channel)?
//!     .event("net0|out", 2)?
//!     .vector("timer", 32)?
//!     .build();
//! let info = SubjectInfo::new_checked(&page).unwrap();
//! assert_eq!(info.channel("net0|out"), Some(channel));
//! assert_eq!(info.event("net0|out"), Some(2));
//! # Ok::<(), muen_sinfo::BuildError>(())
//! ```

use alloc::vec::Vec;
use core::fmt;

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{transmute, IntoBytes};

use crate::layout::{
    DeviceMemoryRecordV4, DeviceMemoryRecordV5, DevicePortRecord, DeviceRecordV4, DeviceRecordV5,
    HeaderV4, HeaderV5, MemoryRecord, NumberRecord, RawName, RawResource, HASH_SIZE, PAGE_SIZE,
    RESOURCE_MAX, VARIANT_SIZE,
};
use crate::resource::{
    Content, Device, DeviceMemory, DevicePort, Memory, MemoryKind, ResetMethod, ResourceData,
    ResourceKind,
};
use crate::{SubjectInfo, Version};

/// Why a resource or page cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The subject name is longer than 63 bytes.
    NameTooLong {
        /// Its length in bytes.
        length: usize,
    },
    /// A resource name is longer than 63 bytes.
    ResourceNameTooLong {
        /// Index the record would have had.
        index: usize,
        /// The name's length in bytes.
        length: usize,
    },
    /// The page already holds 255 records.
    TooManyResources,
    /// The value has no representation in the page's version (a device port or the
    /// `subject_devicetree` memory kind in v3, v5 device fields in a v3/v4 page).
    NotInVersion {
        /// The page's version.
        version: Version,
        /// What cannot be written.
        what: &'static str,
    },
    /// The page's version needs a value that is missing (the v5 fields of a device or
    /// device memory region).
    RequiredByVersion {
        /// The page's version.
        version: Version,
        /// What is missing.
        what: &'static str,
    },
    /// An `Unknown(value)` whose value is a known one: it would read back as something
    /// else.
    KnownValueAsUnknown {
        /// Which field.
        what: &'static str,
        /// The raw value.
        value: u32,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuildError::NameTooLong { length } => {
                write!(f, "subject name: {length} bytes, more than 63")
            }
            BuildError::ResourceNameTooLong { index, length } => {
                write!(f, "resource {index}: name of {length} bytes, more than 63")
            }
            BuildError::TooManyResources => {
                write!(f, "more than {RESOURCE_MAX} resources")
            }
            BuildError::NotInVersion { version, what } => {
                write!(
                    f,
                    "{what} cannot be written in format v{}",
                    version.number()
                )
            }
            BuildError::RequiredByVersion { version, what } => {
                write!(f, "format v{} needs {what}", version.number())
            }
            BuildError::KnownValueAsUnknown { what, value } => {
                write!(f, "{what}: {value} is a known value, not an unknown one")
            }
        }
    }
}

impl core::error::Error for BuildError {}

/// Writes a subject info page; see the [module documentation](self).
///
/// Methods that add a resource return `&mut Self` so that calls chain with `?`.
#[derive(Clone, Debug)]
pub struct Builder {
    version: Version,
    tsc_khz: u32,
    name: RawName,
    records: Vec<RawResource>,
}

impl Builder {
    /// A page of `version` for subject `name` with TSC rate `tsc_khz` and no resources.
    pub fn new(version: Version, name: impl AsRef<[u8]>, tsc_khz: u32) -> Result<Self, BuildError> {
        let name = name.as_ref();
        let name = RawName::new(name).ok_or(BuildError::NameTooLong { length: name.len() })?;
        Ok(Builder {
            version,
            tsc_khz,
            name,
            records: Vec::new(),
        })
    }

    /// A builder holding everything a checked page holds: same version, name, TSC rate,
    /// resources at the same indices (with empty records in the holes) and the same
    /// resource count. For a page written by Muen, [`Builder::build`] then returns the
    /// same bytes. Never fails for a view of a valid page.
    pub fn from_info(info: &SubjectInfo<'_>) -> Result<Self, BuildError> {
        let mut builder = Builder::new(info.version(), info.name(), info.tsc_khz())?;
        for resource in info.resources() {
            while builder.len() < resource.index {
                builder.empty()?;
            }
            builder.resource(resource.name, resource.data)?;
        }
        while builder.len() < info.resource_count() {
            builder.empty()?;
        }
        Ok(builder)
    }

    /// The page's version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Number of records so far (empty ones included); the next record gets this index.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was added yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Adds a memory region (a channel is a memory region of kind `subject_channel`).
    pub fn memory(
        &mut self,
        name: impl AsRef<[u8]>,
        memory: Memory,
    ) -> Result<&mut Self, BuildError> {
        self.resource(name, ResourceData::Memory(memory))
    }

    /// Adds an event the subject may trigger.
    pub fn event(&mut self, name: impl AsRef<[u8]>, number: u8) -> Result<&mut Self, BuildError> {
        self.resource(name, ResourceData::Event(number))
    }

    /// Adds an interrupt vector the subject receives.
    pub fn vector(&mut self, name: impl AsRef<[u8]>, number: u8) -> Result<&mut Self, BuildError> {
        self.resource(name, ResourceData::Vector(number))
    }

    /// Adds a PCI device (`device.pci` must be set exactly in v5 pages).
    pub fn device(
        &mut self,
        name: impl AsRef<[u8]>,
        device: Device,
    ) -> Result<&mut Self, BuildError> {
        self.resource(name, ResourceData::Device(device))
    }

    /// Adds a device MMIO region (`region.bar` must be set exactly in v5 pages).
    pub fn device_memory(
        &mut self,
        name: impl AsRef<[u8]>,
        region: DeviceMemory,
    ) -> Result<&mut Self, BuildError> {
        self.resource(name, ResourceData::DeviceMemory(region))
    }

    /// Adds a device I/O port range (v5 pages only).
    pub fn device_port(
        &mut self,
        name: impl AsRef<[u8]>,
        ports: DevicePort,
    ) -> Result<&mut Self, BuildError> {
        self.resource(name, ResourceData::DevicePort(ports))
    }

    /// Adds an empty (NONE) record: an all-zero slot that readers skip. Muen's generator
    /// never writes one, but its serializer test pages have them.
    pub fn empty(&mut self) -> Result<&mut Self, BuildError> {
        self.push(RawResource::EMPTY)
    }

    /// Adds a resource of any kind.
    pub fn resource(
        &mut self,
        name: impl AsRef<[u8]>,
        data: ResourceData,
    ) -> Result<&mut Self, BuildError> {
        let name = name.as_ref();
        let index = self.records.len();
        let name = RawName::new(name).ok_or(BuildError::ResourceNameTooLong {
            index,
            length: name.len(),
        })?;
        let (kind, data) = encode(self.version, &data)?;
        self.push(RawResource {
            kind: U32::new(kind),
            name,
            padding: [0; 3],
            data,
        })
    }

    fn push(&mut self, record: RawResource) -> Result<&mut Self, BuildError> {
        if self.records.len() >= RESOURCE_MAX {
            return Err(BuildError::TooManyResources);
        }
        self.records.push(record);
        Ok(self)
    }

    /// The page: exactly [`PAGE_SIZE`] bytes.
    pub fn build(&self) -> Vec<u8> {
        // At most RESOURCE_MAX records (checked in `push`), so the count fits.
        let count = U16::new(self.records.len() as u16);
        let mut page = Vec::with_capacity(PAGE_SIZE);
        match self.version {
            Version::V3 | Version::V4 => page.extend_from_slice(
                HeaderV4 {
                    magic: self.version.magic(),
                    tsc_khz: U32::new(self.tsc_khz),
                    name: self.name,
                    resource_count: count,
                    padding: 0,
                }
                .as_bytes(),
            ),
            Version::V5 => page.extend_from_slice(
                HeaderV5 {
                    magic: self.version.magic(),
                    tsc_khz: U32::new(self.tsc_khz),
                    name: self.name,
                    padding: 0,
                    resource_count: count,
                }
                .as_bytes(),
            ),
        }
        for record in &self.records {
            page.extend_from_slice(record.as_bytes());
        }
        page.resize(PAGE_SIZE, 0);
        page
    }
}

/// The raw kind and variant bytes of a resource in a page of `version`.
fn encode(version: Version, data: &ResourceData) -> Result<(u32, [u8; VARIANT_SIZE]), BuildError> {
    let v5 = version == Version::V5;
    let bytes: [u8; VARIANT_SIZE] = match *data {
        ResourceData::Memory(memory) => transmute!(encode_memory(version, &memory)?),
        ResourceData::Event(number) | ResourceData::Vector(number) => transmute!(NumberRecord {
            number,
            padding: [0; VARIANT_SIZE - 1],
        }),
        ResourceData::Device(device) => match (v5, device.pci) {
            (false, None) => transmute!(DeviceRecordV4 {
                sid: U16::new(device.sid),
                irte_start: U16::new(device.irte_start),
                irq_start: device.irq_start,
                ir_count: device.ir_count,
                flags: device.flags.bits(),
                padding: [0; 49],
            }),
            (true, Some(pci)) => {
                known_as_unknown(
                    "reset method",
                    u32::from(pci.reset_method.raw()),
                    ResetMethod::from_raw(pci.reset_method.raw()) != pci.reset_method,
                )?;
                transmute!(DeviceRecordV5 {
                    sid: U16::new(device.sid),
                    vendor_id: U16::new(pci.vendor_id),
                    device_id: U16::new(pci.device_id),
                    class_code: U16::new(pci.class_code),
                    irte_start: U16::new(device.irte_start),
                    irq_start: device.irq_start,
                    ir_count: device.ir_count,
                    flags: device.flags.bits(),
                    reset_method: pci.reset_method.raw(),
                    padding: [0; 42],
                })
            }
            (false, Some(_)) => return Err(not_in(version, "device PCI identification")),
            (true, None) => return Err(required(version, "device PCI identification")),
        },
        ResourceData::DeviceMemory(region) => match (v5, region.bar) {
            (false, None) => transmute!(DeviceMemoryRecordV4 {
                flags: region.flags.bits(),
                padding1: [0; 7],
                address: U64::new(region.address),
                size: U64::new(region.size),
                padding2: [0; 32],
            }),
            (true, Some(bar)) => transmute!(DeviceMemoryRecordV5 {
                sid: U16::new(bar.sid),
                flags: region.flags.bits(),
                io_mem_flags: bar.io_mem_flags,
                bar_index: bar.index,
                padding1: [0; 3],
                bar_address: U64::new(bar.address),
                address: U64::new(region.address),
                size: U64::new(region.size),
                padding2: [0; 24],
            }),
            (false, Some(_)) => return Err(not_in(version, "device memory BAR information")),
            (true, None) => return Err(required(version, "device memory BAR information")),
        },
        ResourceData::DevicePort(ports) if v5 => transmute!(DevicePortRecord {
            sid: U16::new(ports.sid),
            bar_index: ports.bar_index,
            padding1: 0,
            address: U16::new(ports.address),
            size: U16::new(ports.size),
            padding2: [0; 48],
        }),
        ResourceData::DevicePort(_) => return Err(not_in(version, "a device port resource")),
        ResourceData::Unknown(kind) => {
            known_as_unknown(
                "resource kind",
                kind,
                ResourceKind::from_raw(version, kind) != Some(ResourceKind::Unknown(kind)),
            )?;
            [0; VARIANT_SIZE]
        }
    };
    Ok((data.kind().raw(), bytes))
}

fn encode_memory(version: Version, memory: &Memory) -> Result<MemoryRecord, BuildError> {
    let kind = memory
        .kind
        .to_raw(version)
        .ok_or(not_in(version, "memory kind subject_devicetree"))?;
    known_as_unknown(
        "memory kind",
        u32::from(kind),
        MemoryKind::from_raw(version, kind) != memory.kind,
    )?;
    let content = memory.content.raw();
    known_as_unknown(
        "content",
        u32::from(content),
        Content::from_raw(content) != memory.content,
    )?;
    Ok(MemoryRecord {
        kind,
        content,
        flags: memory.flags.bits(),
        pattern: U16::new(Memory::raw_pattern(memory.pattern)),
        padding: [0; 3],
        address: U64::new(memory.address),
        size: U64::new(memory.size),
        hash: memory.hash.unwrap_or([0; HASH_SIZE]),
    })
}

fn known_as_unknown(what: &'static str, value: u32, mismatch: bool) -> Result<(), BuildError> {
    if mismatch {
        Err(BuildError::KnownValueAsUnknown { what, value })
    } else {
        Ok(())
    }
}

fn not_in(version: Version, what: &'static str) -> BuildError {
    BuildError::NotInVersion { version, what }
}

fn required(version: Version, what: &'static str) -> BuildError {
    BuildError::RequiredByVersion { version, what }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{DeviceFlags, MemoryFlags, PciBar, PciInfo};
    use crate::Error;

    fn ram() -> Memory {
        Memory {
            kind: MemoryKind::Subject,
            content: Content::Fill,
            flags: MemoryFlags::WRITABLE,
            pattern: Some(0),
            address: 0x4000_0000,
            size: 0x10_0000,
            hash: Some([0xab; 32]),
        }
    }

    fn device(pci: Option<PciInfo>) -> Device {
        Device {
            sid: 0xc8,
            irte_start: 40,
            irq_start: 59,
            ir_count: 2,
            flags: DeviceFlags::MSI_CAPABLE,
            pci,
        }
    }

    #[test]
    fn writes_header_fields_where_each_version_has_them() {
        let v4 = Builder::new(Version::V4, "lnx", 2_900_123)
            .unwrap()
            .event("e", 1)
            .unwrap()
            .build();
        assert_eq!(v4.len(), PAGE_SIZE);
        assert_eq!(&v4[..8], b"muinfo\0\x04");
        assert_eq!(&v4[8..12], &2_900_123u32.to_le_bytes());
        assert_eq!(&v4[12..16], b"\x03lnx");
        assert!(
            v4[16..77].iter().all(|&b| b == 0),
            "name padding and terminator"
        );
        assert_eq!(&v4[77..80], &[1, 0, 0]);

        let v5 = Builder::new(Version::V5, "lnx", 1)
            .unwrap()
            .event("e", 1)
            .unwrap()
            .build();
        assert_eq!(v5[7], 5);
        assert_eq!(&v5[77..80], &[0, 1, 0]);
    }

    #[test]
    fn writes_memory_records_like_the_generator() {
        let mut memory = ram();
        memory.pattern = None;
        memory.hash = None;
        memory.content = Content::File;
        let page = Builder::new(Version::V4, "s", 1)
            .unwrap()
            .memory("text", memory)
            .unwrap()
            .build();
        let record = &page[80..208];
        assert_eq!(&record[..4], &[1, 0, 0, 0]);
        assert_eq!(&record[4..9], b"\x04text");
        assert!(record[9..72].iter().all(|&b| b == 0));
        // kind 0, content 2, flags 1, pattern 256 (00 01), three bytes padding.
        assert_eq!(&record[72..80], &[0, 2, 1, 0, 1, 0, 0, 0]);
        assert_eq!(&record[80..88], &0x4000_0000u64.to_le_bytes());
        assert_eq!(&record[88..96], &0x10_0000u64.to_le_bytes());
        assert!(record[96..].iter().all(|&b| b == 0), "no hash");
        assert!(page[208..].iter().all(|&b| b == 0), "unused slots");
    }

    #[test]
    fn refuses_what_the_page_cannot_hold() {
        let long = [b'n'; 64];
        assert_eq!(
            Builder::new(Version::V4, long, 1).unwrap_err(),
            BuildError::NameTooLong { length: 64 }
        );
        let mut b = Builder::new(Version::V4, [b'n'; 63], 1).unwrap();
        assert_eq!(
            b.event(long, 1).map(|_| ()),
            Err(BuildError::ResourceNameTooLong {
                index: 0,
                length: 64
            })
        );
        for i in 0..RESOURCE_MAX {
            b.vector([b'v'; 63], i as u8).unwrap();
        }
        assert_eq!(b.empty().map(|_| ()), Err(BuildError::TooManyResources));
        assert_eq!(b.len(), 255);
        let page = b.build();
        let info = SubjectInfo::new_checked(&page).unwrap();
        assert_eq!(info.resources().count(), 255);
    }

    #[test]
    fn refuses_values_of_another_version() {
        let port = DevicePort {
            sid: 1,
            bar_index: 0,
            address: 0x3f8,
            size: 8,
        };
        let mut v4 = Builder::new(Version::V4, "s", 1).unwrap();
        assert_eq!(
            v4.device_port("p", port).map(|_| ()),
            Err(BuildError::NotInVersion {
                version: Version::V4,
                what: "a device port resource"
            })
        );
        let pci = PciInfo {
            vendor_id: 0x8086,
            device_id: 1,
            class_code: 2,
            reset_method: ResetMethod::Flr,
        };
        assert!(matches!(
            v4.device("d", device(Some(pci))),
            Err(BuildError::NotInVersion { .. })
        ));
        let bar = PciBar {
            sid: 0xc8,
            index: 0,
            io_mem_flags: 0,
            address: 0,
        };
        let region = DeviceMemory {
            flags: MemoryFlags::WRITABLE,
            address: 0x1000,
            size: 0x1000,
            bar: Some(bar),
        };
        assert!(matches!(
            v4.device_memory("m", region),
            Err(BuildError::NotInVersion { .. })
        ));
        let mut v5 = Builder::new(Version::V5, "s", 1).unwrap();
        assert_eq!(
            v5.device("d", device(None)).map(|_| ()),
            Err(BuildError::RequiredByVersion {
                version: Version::V5,
                what: "device PCI identification"
            })
        );
        assert!(matches!(
            v5.device_memory(
                "m",
                DeviceMemory {
                    bar: None,
                    ..region
                }
            ),
            Err(BuildError::RequiredByVersion { .. })
        ));
        let mut v3 = Builder::new(Version::V3, "s", 1).unwrap();
        let tree = Memory {
            kind: MemoryKind::SubjectDevicetree,
            ..ram()
        };
        assert_eq!(
            v3.memory("dt", tree).map(|_| ()),
            Err(BuildError::NotInVersion {
                version: Version::V3,
                what: "memory kind subject_devicetree"
            })
        );
        assert!(v5.device("d", device(Some(pci))).is_ok());
        assert!(v5.device_port("p", port).is_ok());
        assert_eq!(v5.len(), 2, "refused resources are not added");
    }

    #[test]
    fn refuses_unknown_values_that_are_known() {
        let mut b = Builder::new(Version::V4, "s", 1).unwrap();
        for (data, what, value) in [
            (ResourceData::Unknown(1), "resource kind", 1),
            (ResourceData::Unknown(0), "resource kind", 0),
            (
                ResourceData::Memory(Memory {
                    kind: MemoryKind::Unknown(5),
                    ..ram()
                }),
                "memory kind",
                5,
            ),
            (
                ResourceData::Memory(Memory {
                    content: Content::Unknown(2),
                    ..ram()
                }),
                "content",
                2,
            ),
        ] {
            assert_eq!(
                b.resource("x", data).map(|_| ()),
                Err(BuildError::KnownValueAsUnknown { what, value })
            );
        }
        // Kind 6 is unknown in v4 but a device port in v5.
        assert!(b.resource("x", ResourceData::Unknown(6)).is_ok());
        let mut v5 = Builder::new(Version::V5, "s", 1).unwrap();
        assert!(v5.resource("x", ResourceData::Unknown(6)).is_err());
        let pci = PciInfo {
            vendor_id: 0,
            device_id: 0,
            class_code: 0,
            reset_method: ResetMethod::Unknown(4),
        };
        assert_eq!(
            v5.device("d", device(Some(pci))).map(|_| ()),
            Err(BuildError::KnownValueAsUnknown {
                what: "reset method",
                value: 4
            })
        );
    }

    #[test]
    fn from_info_keeps_holes_and_trailing_empty_records() {
        let page = Builder::new(Version::V5, "s", 7)
            .unwrap()
            .empty()
            .unwrap()
            .event("e", 3)
            .unwrap()
            .empty()
            .unwrap()
            .build();
        let info = SubjectInfo::new_checked(&page).unwrap();
        assert_eq!(info.resource_count(), 3);
        assert_eq!(info.resources().next().unwrap().index, 1);
        assert_eq!(Builder::from_info(&info).unwrap().build(), page);
    }

    #[test]
    fn every_kind_round_trips_in_v5() {
        let pci = PciInfo {
            vendor_id: 0x8086,
            device_id: 0x3c31,
            class_code: 0x0c03,
            reset_method: ResetMethod::Bus,
        };
        let region = DeviceMemory {
            flags: MemoryFlags::WRITABLE,
            address: 0xfea5_5000,
            size: 0x2_0000,
            bar: Some(PciBar {
                sid: 0xc8,
                index: 1,
                io_mem_flags: 3,
                address: 0xd250_0000,
            }),
        };
        let port = DevicePort {
            sid: 0xc8,
            bar_index: 2,
            address: 0xe000,
            size: 32,
        };
        let page = Builder::new(Version::V5, "all", 1)
            .unwrap()
            .memory("ram", ram())
            .unwrap()
            .event("e", 63)
            .unwrap()
            .vector("v", 255)
            .unwrap()
            .device("d", device(Some(pci)))
            .unwrap()
            .device_memory("m", region)
            .unwrap()
            .device_port("p", port)
            .unwrap()
            .resource("u", ResourceData::Unknown(99))
            .unwrap()
            .build();
        let info = SubjectInfo::new_checked(&page).unwrap();
        let data: Vec<_> = info.resources().map(|r| r.data).collect();
        assert_eq!(
            data,
            [
                ResourceData::Memory(ram()),
                ResourceData::Event(63),
                ResourceData::Vector(255),
                ResourceData::Device(device(Some(pci))),
                ResourceData::DeviceMemory(region),
                ResourceData::DevicePort(port),
                ResourceData::Unknown(99),
            ]
        );
        assert_eq!(
            SubjectInfo::new_checked(&page[..100]).unwrap_err(),
            Error::ResourcesPastEnd { count: 7, len: 100 }
        );
    }
}
