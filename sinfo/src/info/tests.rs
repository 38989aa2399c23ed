//! Tests of the checked view on pages assembled here from the layout types (not with
//! the builder, so that parser and builder are checked independently).

use std::vec::Vec;

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{transmute, IntoBytes};

use super::*;
use crate::layout::{
    kind, DeviceMemoryRecordV5, DevicePortRecord, DeviceRecordV4, DeviceRecordV5, MemoryRecord,
    NumberRecord, HEADER_SIZE, RESOURCE_SIZE, VARIANT_SIZE,
};
use crate::resource::{
    Content, DeviceFlags, DeviceMemory, DevicePort, MemoryFlags, PciBar, PciInfo, ResetMethod,
};

/// A full page of `version` with `name`, TSC 1000 kHz and these records; the header's
/// count is `count`.
fn page_with_count(version: Version, name: &[u8], records: &[RawResource], count: u16) -> Vec<u8> {
    let mut page = std::vec![0u8; PAGE_SIZE];
    let name = RawName::new(name).unwrap();
    let header = match version {
        Version::V3 | Version::V4 => HeaderV4 {
            magic: version.magic(),
            tsc_khz: U32::new(1000),
            name,
            resource_count: U16::new(count),
            padding: 0,
        }
        .as_bytes()
        .to_vec(),
        Version::V5 => HeaderV5 {
            magic: version.magic(),
            tsc_khz: U32::new(1000),
            name,
            padding: 0,
            resource_count: U16::new(count),
        }
        .as_bytes()
        .to_vec(),
    };
    page[..HEADER_SIZE].copy_from_slice(&header);
    for (i, record) in records.iter().enumerate() {
        let at = HEADER_SIZE + i * RESOURCE_SIZE;
        page[at..at + RESOURCE_SIZE].copy_from_slice(record.as_bytes());
    }
    page
}

fn page(version: Version, name: &[u8], records: &[RawResource]) -> Vec<u8> {
    page_with_count(version, name, records, records.len() as u16)
}

fn record(kind: u32, name: &[u8], data: [u8; VARIANT_SIZE]) -> RawResource {
    RawResource {
        kind: U32::new(kind),
        name: RawName::new(name).unwrap(),
        padding: [0; 3],
        data,
    }
}

fn number(kind: u32, name: &[u8], n: u8) -> RawResource {
    let data: [u8; VARIANT_SIZE] = transmute!(NumberRecord {
        number: n,
        padding: [0; VARIANT_SIZE - 1],
    });
    record(kind, name, data)
}

fn memory(name: &[u8], kind: u8, flags: u8, pattern: u16, address: u64) -> RawResource {
    let data: [u8; VARIANT_SIZE] = transmute!(MemoryRecord {
        kind,
        content: if pattern < 256 { 1 } else { 0 },
        flags,
        pattern: U16::new(pattern),
        padding: [0; 3],
        address: U64::new(address),
        size: U64::new(0x1000),
        hash: [0; 32],
    });
    record(kind::MEMORY, name, data)
}

fn with_byte(mut bytes: Vec<u8>, at: usize, value: u8) -> Vec<u8> {
    bytes[at] = value;
    bytes
}

// ---- one test per malformed-input class, each with the exact error ----

#[test]
fn short_buffer_is_truncated() {
    assert_eq!(
        SubjectInfo::new_checked(&[]).unwrap_err(),
        Error::Truncated { len: 0 }
    );
    let page = page(Version::V4, b"s", &[]);
    assert_eq!(
        SubjectInfo::new_checked(&page[..HEADER_SIZE - 1]).unwrap_err(),
        Error::Truncated { len: 79 }
    );
    // The header alone is a valid page without resources.
    let info = SubjectInfo::new_checked(&page[..HEADER_SIZE]).unwrap();
    assert_eq!(info.resource_count(), 0);
}

#[test]
fn bad_magic_is_reported_with_the_bytes_found() {
    let bad = with_byte(page(Version::V4, b"s", &[]), 5, b'X');
    assert_eq!(
        SubjectInfo::new_checked(&bad).unwrap_err(),
        Error::BadMagic {
            found: *b"muinfX\0\x04"
        }
    );
    // Byte 6 belongs to the magic: Muen's version counter is the top byte only.
    let bad = with_byte(page(Version::V4, b"s", &[]), 6, 1);
    assert_eq!(
        SubjectInfo::new_checked(&bad).unwrap_err(),
        Error::BadMagic {
            found: *b"muinfo\x01\x04"
        }
    );
    assert_eq!(
        SubjectInfo::new_checked(&[0xff; PAGE_SIZE]).unwrap_err(),
        Error::BadMagic { found: [0xff; 8] }
    );
}

#[test]
fn unknown_version_is_named() {
    for version in [0u8, 1, 2, 6, 0xff] {
        let bad = with_byte(page(Version::V4, b"s", &[]), 7, version);
        assert_eq!(
            SubjectInfo::new_checked(&bad).unwrap_err(),
            Error::UnsupportedVersion { version }
        );
    }
}

#[test]
fn count_over_255_is_rejected() {
    let bad = page_with_count(Version::V4, b"s", &[], 256);
    assert_eq!(
        SubjectInfo::new_checked(&bad).unwrap_err(),
        Error::TooManyResources { count: 256 }
    );
    let bad = page_with_count(Version::V5, b"s", &[], u16::MAX);
    assert_eq!(
        SubjectInfo::new_checked(&bad).unwrap_err(),
        Error::TooManyResources { count: u16::MAX }
    );
    // 255 fills the page exactly.
    let full = page_with_count(Version::V5, b"s", &[], 255);
    assert_eq!(
        SubjectInfo::new_checked(&full).unwrap().resource_count(),
        255
    );
}

#[test]
fn count_past_the_end_of_a_short_buffer_is_rejected() {
    let records = [number(kind::EVENT, b"a", 1), number(kind::EVENT, b"b", 2)];
    let full = page(Version::V4, b"s", &records);
    let exact = HEADER_SIZE + 2 * RESOURCE_SIZE;
    assert_eq!(
        SubjectInfo::new_checked(&full[..exact - 1]).unwrap_err(),
        Error::ResourcesPastEnd {
            count: 2,
            len: exact - 1
        }
    );
    let info = SubjectInfo::new_checked(&full[..exact]).unwrap();
    assert_eq!(info.event("b"), Some(2));
}

#[test]
fn header_name_longer_than_63_is_rejected() {
    for length in [64u8, 0xff] {
        let bad = with_byte(page(Version::V4, b"s", &[]), 12, length);
        assert_eq!(
            SubjectInfo::new_checked(&bad).unwrap_err(),
            Error::NameTooLong { length }
        );
    }
    let longest = with_byte(page(Version::V4, b"s", &[]), 12, 63);
    assert_eq!(SubjectInfo::new_checked(&longest).unwrap().name().len(), 63);
}

#[test]
fn record_name_longer_than_63_is_rejected() {
    let records = [
        number(kind::EVENT, b"a", 1),
        RawResource::EMPTY,
        number(kind::VECTOR, b"c", 3),
    ];
    let name_length_at = |index: usize| HEADER_SIZE + index * RESOURCE_SIZE + 4;
    let bad = with_byte(page(Version::V5, b"s", &records), name_length_at(2), 64);
    assert_eq!(
        SubjectInfo::new_checked(&bad).unwrap_err(),
        Error::ResourceNameTooLong {
            index: 2,
            length: 64
        }
    );
    // Empty records within the count are checked too...
    let bad = with_byte(page(Version::V5, b"s", &records), name_length_at(1), 200);
    assert_eq!(
        SubjectInfo::new_checked(&bad).unwrap_err(),
        Error::ResourceNameTooLong {
            index: 1,
            length: 200
        }
    );
    // ... records past the count are not.
    let ignored = with_byte(page(Version::V5, b"s", &records), name_length_at(3), 200);
    assert!(SubjectInfo::new_checked(&ignored).is_ok());
}

#[test]
fn unknown_kinds_are_reported_not_rejected() {
    let records = [
        record(6, b"port", [0; VARIANT_SIZE]),
        record(7, b"seven", [0; VARIANT_SIZE]),
        record(0xdead_beef, b"beef", [0xff; VARIANT_SIZE]),
        memory(b"mem", 77, 0xff, 0x22, 0x1000),
    ];
    // Kind 6 (device port) exists only in v5.
    let info_bytes = page(Version::V4, b"s", &records);
    let info = SubjectInfo::new_checked(&info_bytes).unwrap();
    let kinds: Vec<_> = info.resources().map(|r| r.data.kind()).collect();
    assert_eq!(
        kinds,
        [
            ResourceKind::Unknown(6),
            ResourceKind::Unknown(7),
            ResourceKind::Unknown(0xdead_beef),
            ResourceKind::Memory
        ]
    );
    let mem = info.memory("mem").unwrap();
    assert_eq!(mem.kind, MemoryKind::Unknown(77));
    assert_eq!(mem.flags.bits(), 0xff);
    assert!(mem.writable() && mem.executable());

    let info_bytes = page(Version::V5, b"s", &records);
    let info = SubjectInfo::new_checked(&info_bytes).unwrap();
    assert_eq!(
        info.resources().next().unwrap().data,
        ResourceData::DevicePort(DevicePort {
            sid: 0,
            bar_index: 0,
            address: 0,
            size: 0
        })
    );
}

#[test]
fn checks_run_in_the_documented_order() {
    // Everything wrong at once: the earliest check wins.
    let mut bad = page_with_count(Version::V4, b"s", &[], 300);
    bad[12] = 99;
    bad[5] = b'X';
    assert!(matches!(
        SubjectInfo::new_checked(&bad),
        Err(Error::BadMagic { .. })
    ));
    bad[5] = b'o';
    assert_eq!(
        SubjectInfo::new_checked(&bad).unwrap_err(),
        Error::TooManyResources { count: 300 }
    );
    let mut bad = page_with_count(Version::V4, b"s", &[], 3);
    bad[12] = 99;
    assert_eq!(
        SubjectInfo::new_checked(&bad[..HEADER_SIZE]).unwrap_err(),
        Error::ResourcesPastEnd {
            count: 3,
            len: HEADER_SIZE
        }
    );
    assert_eq!(
        SubjectInfo::new_checked(&bad).unwrap_err(),
        Error::NameTooLong { length: 99 }
    );
}

#[test]
fn errors_name_the_field_and_the_problem() {
    use std::string::ToString;
    assert_eq!(
        Error::UnsupportedVersion { version: 6 }.to_string(),
        "magic: format version 6 is not supported (supported: 3, 4, 5)"
    );
    assert_eq!(
        Error::ResourcesPastEnd { count: 2, len: 100 }.to_string(),
        "resource_count: 2 records need 336 bytes, but the data is 100 bytes long"
    );
    assert_eq!(
        Error::BadMagic { found: [0; 8] }.to_string(),
        "magic: expected 6d 75 69 6e 66 6f 00 (\"muinfo\\0\") and a version byte, found 00 00 00 00 00 00 00 00"
    );
    assert_eq!(
        Error::ResourceNameTooLong {
            index: 4,
            length: 70
        }
        .to_string(),
        "resource 4: name length 70 is more than 63"
    );
}

// ---- accessors ----

#[test]
fn the_count_sits_where_the_version_says() {
    // Bytes 77..80 = 00 02 00: v5 reads count 2 at 78, v4 would read 0x200 at 77.
    let records = [number(kind::EVENT, b"a", 1), number(kind::EVENT, b"b", 2)];
    let v5 = page(Version::V5, b"s", &records);
    assert_eq!(&v5[77..80], &[0, 2, 0]);
    assert_eq!(SubjectInfo::new_checked(&v5).unwrap().resource_count(), 2);
    let v4 = with_byte(v5.clone(), 7, 4);
    assert_eq!(
        SubjectInfo::new_checked(&v4).unwrap_err(),
        Error::TooManyResources { count: 0x200 }
    );
    let v4 = page(Version::V4, b"s", &records);
    assert_eq!(&v4[77..80], &[2, 0, 0]);
}

#[test]
fn every_kind_of_a_v5_page_decodes() {
    let device: [u8; VARIANT_SIZE] = transmute!(DeviceRecordV5 {
        sid: U16::new(0x00c8),
        vendor_id: U16::new(0x8086),
        device_id: U16::new(0x3c31),
        class_code: U16::new(0x0c03),
        irte_start: U16::new(40),
        irq_start: 59,
        ir_count: 2,
        flags: 1,
        reset_method: 1,
        padding: [0; 42],
    });
    let devmem: [u8; VARIANT_SIZE] = transmute!(DeviceMemoryRecordV5 {
        sid: U16::new(0x00c8),
        flags: 1,
        io_mem_flags: 2,
        bar_index: 3,
        padding1: [0; 3],
        bar_address: U64::new(0xd250_0000),
        address: U64::new(0xfea5_5000),
        size: U64::new(0x2_0000),
        padding2: [0; 24],
    });
    let port: [u8; VARIANT_SIZE] = transmute!(DevicePortRecord {
        sid: U16::new(0x00c8),
        bar_index: 4,
        padding1: 0,
        address: U16::new(0x3f8),
        size: U16::new(8),
        padding2: [0; 48],
    });
    let records = [
        memory(b"ram", 0, 3, 256, 0x4000_0000),
        memory(b"net0|in", 5, 0, 0x22, 0x10_0000_0000),
        RawResource::EMPTY,
        number(kind::EVENT, b"net0|out", 2),
        number(kind::VECTOR, b"net0|in", 33),
        record(kind::DEVICE, b"eth0", device),
        record(kind::DEVICE_MEMORY, b"eth0_mem1", devmem),
        record(kind::DEVICE_PORT, b"eth0_io", port),
    ];
    let bytes = page(Version::V5, b"subject-1", &records);
    let info = SubjectInfo::new_checked(&bytes).unwrap();
    assert_eq!(info.version(), Version::V5);
    assert_eq!(info.name(), "subject-1");
    assert_eq!(info.tsc_khz(), 1000);
    assert_eq!(info.resource_count(), 8);

    let all: Vec<_> = info.resources().collect();
    assert_eq!(all.len(), 7, "the empty record is skipped");
    assert_eq!(
        all.iter().map(|r| r.index).collect::<Vec<_>>(),
        [0, 1, 3, 4, 5, 6, 7]
    );
    assert_eq!(
        all[0].data,
        ResourceData::Memory(Memory {
            kind: MemoryKind::Subject,
            content: Content::Uninitialized,
            flags: MemoryFlags::WRITABLE | MemoryFlags::EXECUTABLE,
            pattern: None,
            address: 0x4000_0000,
            size: 0x1000,
            hash: None,
        })
    );
    assert_eq!(
        all[4].data,
        ResourceData::Device(Device {
            sid: 0xc8,
            irte_start: 40,
            irq_start: 59,
            ir_count: 2,
            flags: DeviceFlags::MSI_CAPABLE,
            pci: Some(PciInfo {
                vendor_id: 0x8086,
                device_id: 0x3c31,
                class_code: 0x0c03,
                reset_method: ResetMethod::Flr,
            }),
        })
    );
    assert_eq!(
        all[5].data,
        ResourceData::DeviceMemory(DeviceMemory {
            flags: MemoryFlags::WRITABLE,
            address: 0xfea5_5000,
            size: 0x2_0000,
            bar: Some(PciBar {
                sid: 0xc8,
                index: 3,
                io_mem_flags: 2,
                address: 0xd250_0000,
            }),
        })
    );
    assert_eq!(
        all[6].data,
        ResourceData::DevicePort(DevicePort {
            sid: 0xc8,
            bar_index: 4,
            address: 0x3f8,
            size: 8,
        })
    );

    // Lookups are by (name, kind).
    assert_eq!(info.memory("ram").unwrap().address, 0x4000_0000);
    assert_eq!(info.channel("ram"), None, "not a channel");
    let channel = info.channel("net0|in").unwrap();
    assert_eq!(channel.pattern, Some(0x22));
    assert_eq!(channel.content, Content::Fill);
    assert!(!channel.writable());
    assert_eq!(info.vector("net0|in"), Some(33));
    assert_eq!(info.event("net0|in"), None);
    assert_eq!(info.event("net0|out"), Some(2));
    assert_eq!(info.vector("net0|out"), None);
    assert_eq!(info.memory("net0|out"), None);
    assert_eq!(info.device_by_sid(0xc8).unwrap().irq_start, 59);
    assert_eq!(info.device_by_sid(0xc9), None);
    assert_eq!(
        info.resource("eth0_io", ResourceKind::DevicePort)
            .unwrap()
            .index,
        7
    );
    assert_eq!(info.memory(""), None);
    assert_eq!(info.memory("ra"), None);
    assert_eq!(info.memory("ramx"), None);
}

#[test]
fn v4_devices_have_no_v5_fields() {
    let device: [u8; VARIANT_SIZE] = transmute!(DeviceRecordV4 {
        sid: U16::new(0x2300),
        irte_start: U16::new(0),
        irq_start: 0,
        ir_count: 0,
        flags: 0,
        padding: [0; 49],
    });
    let records = [record(kind::DEVICE, b"wlan0", device)];
    for version in [Version::V3, Version::V4] {
        let bytes = page(version, b"s", &records);
        let info = SubjectInfo::new_checked(&bytes).unwrap();
        let device = info.device_by_sid(0x2300).unwrap();
        assert_eq!(device.pci, None);
        assert!(!device.msi_capable());
    }
}

#[test]
fn v3_pages_number_kernel_interface_18() {
    let records = [memory(b"iface", 18, 0, 256, 0)];
    let v3 = page(Version::V3, b"tau0", &records);
    let v4 = page(Version::V4, b"tau0", &records);
    assert_eq!(
        SubjectInfo::new_checked(&v3)
            .unwrap()
            .memory("iface")
            .unwrap()
            .kind,
        MemoryKind::KernelInterface
    );
    assert_eq!(
        SubjectInfo::new_checked(&v4)
            .unwrap()
            .memory("iface")
            .unwrap()
            .kind,
        MemoryKind::SubjectDevicetree
    );
}

#[test]
fn the_first_of_duplicate_names_wins() {
    let records = [number(kind::EVENT, b"x", 1), number(kind::EVENT, b"x", 2)];
    let bytes = page(Version::V4, b"s", &records);
    assert_eq!(
        SubjectInfo::new_checked(&bytes).unwrap().event("x"),
        Some(1)
    );
}

#[test]
fn bytes_past_the_page_are_ignored() {
    let mut bytes = page(Version::V4, b"s", &[number(kind::EVENT, b"e", 9)]);
    bytes.resize(0x8000, 0xff);
    let info = SubjectInfo::new_checked(&bytes).unwrap();
    assert_eq!(info.resources().count(), 1);
}

#[test]
fn unchecked_views_agree_on_valid_pages_and_never_panic_on_garbage() {
    let records = [
        memory(b"m", 5, 1, 256, 0x1000),
        number(kind::VECTOR, b"v", 40),
    ];
    let bytes = page(Version::V5, b"s", &records);
    let array: &[u8; PAGE_SIZE] = bytes.as_slice().try_into().unwrap();
    let checked = SubjectInfo::new_checked(array).unwrap();
    let unchecked = SubjectInfo::new_unchecked(array);
    assert!(checked.resources().eq(unchecked.resources()));
    assert_eq!(checked.name(), unchecked.name());

    // A deterministic pseudo-random page: every byte garbage.
    let mut garbage = std::vec![0u8; PAGE_SIZE];
    let mut x: u32 = 0x1234_5678;
    for byte in garbage.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte = x as u8;
    }
    garbage[77] = 0xff;
    garbage[78] = 0xff;
    let array: &[u8; PAGE_SIZE] = garbage.as_slice().try_into().unwrap();
    assert!(SubjectInfo::new_checked(array).is_err());
    let view = SubjectInfo::new_unchecked(array);
    assert!(view.resource_count() <= RESOURCE_MAX);
    assert!(view.name().len() <= NAME_MAX);
    for resource in view.resources() {
        assert!(resource.name.len() <= NAME_MAX);
    }
}

#[test]
fn debug_shows_the_header() {
    let bytes = page(Version::V4, b"lnx", &[]);
    let info = SubjectInfo::new_checked(&bytes).unwrap();
    assert_eq!(
        std::format!("{info:?}"),
        "SubjectInfo { version: V4, name: \"lnx\", tsc_khz: 1000, resource_count: 0 }"
    );
}
