//! The three v4 pages written by Muen's own generator (`../shared/testdata/sinfo-v4`):
//! every resource decoded and compared with `sinfo.md` §12, and each page reproduced
//! byte for byte by the builder.

mod support;

use muen_sinfo::{
    Builder, Content, Device, DeviceFlags, DeviceMemory, Memory, MemoryFlags, MemoryKind,
    ResourceData, ResourceKind, SubjectInfo, Version,
};
use support::{hex, LNX_SINFO, NULL_INFO, PAGES, SUBJECT_INFO};

const NONE: MemoryFlags = MemoryFlags::empty();
const W: MemoryFlags = MemoryFlags::WRITABLE;
const X: MemoryFlags = MemoryFlags::EXECUTABLE;

fn memory(
    kind: MemoryKind,
    content: Content,
    flags: MemoryFlags,
    pattern: Option<u8>,
    address: u64,
    size: u64,
) -> ResourceData {
    ResourceData::Memory(Memory {
        kind,
        content,
        flags,
        pattern,
        address,
        size,
        hash: None,
    })
}

fn devmem(address: u64, size: u64) -> ResourceData {
    ResourceData::DeviceMemory(DeviceMemory {
        flags: W,
        address,
        size,
        bar: None,
    })
}

/// `sinfo.md` §12.3, all 13 records of `lnx_sinfo` in page order.
fn lnx_expected() -> Vec<(&'static str, ResourceData)> {
    use Content::{File, Fill, Uninitialized};
    use MemoryKind::*;
    let rsdp_hash: [u8; 32] =
        hex("e10e6c3b5f7e8eb8a5510b8562ed449100a856e02a31a27d30bf5e76efd91235")
            .try_into()
            .unwrap();
    vec![
        (
            "text",
            memory(SubjectBinary, Uninitialized, X, None, 0x3000, 0xd000),
        ),
        ("zp", memory(SubjectZeropage, File, W, None, 0x1000, 0x1000)),
        (
            "initramfs",
            memory(SubjectInitrd, File, W | X, None, 0xf000, 0x9000),
        ),
        (
            "sinfo",
            memory(SubjectInfo, File, NONE, None, 0x1_0000, 0x6000),
        ),
        (
            "acpi_rsdp",
            ResourceData::Memory(Memory {
                kind: SubjectAcpiRsdp,
                content: File,
                flags: NONE,
                pattern: None,
                address: 0x1000_0000,
                size: 0x1000,
                hash: Some(rsdp_hash),
            }),
        ),
        (
            "keyboard",
            memory(SubjectChannel, Fill, NONE, Some(0x22), 0xffff_e000, 0x1000),
        ),
        (
            "console",
            memory(SubjectChannel, Uninitialized, W, None, 0xffff_f000, 0x1000),
        ),
        (
            "eth0",
            ResourceData::Device(Device {
                sid: 0x00c8,
                irte_start: 40,
                irq_start: 59,
                ir_count: 2,
                flags: DeviceFlags::MSI_CAPABLE,
                pci: None,
            }),
        ),
        ("eth0_mem1", devmem(0xfea5_5000, 0x2_0000)),
        ("eth0_mem2", devmem(0xfea5_6000, 0x1000)),
        (
            "wlan0",
            ResourceData::Device(Device {
                sid: 0x2300,
                irte_start: 0,
                irq_start: 0,
                ir_count: 0,
                flags: DeviceFlags::empty(),
                pci: None,
            }),
        ),
        ("channel_event_lnx_console", ResourceData::Event(61)),
        ("channel_event_lnx_keyboard", ResourceData::Vector(34)),
    ]
}

#[test]
fn lnx_sinfo_decodes_to_the_tabulated_values() {
    let info = SubjectInfo::new_checked(LNX_SINFO).unwrap();
    assert_eq!(info.version(), Version::V4);
    assert_eq!(info.name(), "lnx");
    assert_eq!(info.tsc_khz(), 2_900_123);
    assert_eq!(info.resource_count(), 13);

    let decoded: Vec<_> = info.resources().collect();
    let expected = lnx_expected();
    assert_eq!(decoded.len(), expected.len());
    for (i, (resource, (name, data))) in decoded.iter().zip(&expected).enumerate() {
        assert_eq!(resource.index, i);
        assert_eq!(resource.name, *name, "record {i}");
        assert_eq!(resource.data, *data, "record {i} ({name})");
    }
}

#[test]
fn lnx_sinfo_lookups_from_the_reference() {
    // The lookups sinfo.md §12.3 suggests.
    let info = SubjectInfo::new_checked(LNX_SINFO).unwrap();
    let console = info.channel("console").unwrap();
    assert_eq!((console.address, console.size), (0xffff_f000, 0x1000));
    assert!(console.writable());
    let keyboard = info.channel("keyboard").unwrap();
    assert!(!keyboard.writable());
    assert_eq!(
        (keyboard.content, keyboard.pattern),
        (Content::Fill, Some(0x22))
    );
    assert_eq!(info.event("channel_event_lnx_console"), Some(61));
    assert_eq!(info.vector("channel_event_lnx_console"), None);
    assert_eq!(info.vector("channel_event_lnx_keyboard"), Some(34));
    assert_eq!(info.device_by_sid(0xc8).unwrap().irte_start, 40);
    assert_eq!(info.device_by_sid(0x2300).unwrap().ir_count, 0);
    assert_eq!(info.channel("text"), None, "binary, not a channel");
    assert_eq!(info.memory("text").unwrap().kind, MemoryKind::SubjectBinary);
    assert_eq!(
        info.resource("eth0_mem2", ResourceKind::DeviceMemory)
            .unwrap()
            .index,
        9
    );
    // The device without <pci> (legacy_dev) is not exported.
    assert!(info.resources().all(|r| r.name != "legacy_dev"));
}

#[test]
fn null_info_has_ten_empty_records_and_nothing_else() {
    let info = SubjectInfo::new_checked(NULL_INFO).unwrap();
    assert_eq!(info.version(), Version::V4);
    assert_eq!(info.name(), "");
    assert_eq!(info.tsc_khz(), 1000);
    assert_eq!(info.resource_count(), 10);
    assert_eq!(info.resources().count(), 0);
}

#[test]
fn subject_info_resources_behind_ten_empty_records_are_found() {
    let info = SubjectInfo::new_checked(SUBJECT_INFO).unwrap();
    assert_eq!(info.version(), Version::V4);
    assert_eq!(info.name(), "subject1");
    assert_eq!(info.tsc_khz(), 2_893_000);
    assert_eq!(info.resource_count(), 12);
    let all: Vec<_> = info
        .resources()
        .map(|r| (r.index, r.name, r.data))
        .collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, 10);
    assert_eq!(all[0].1, "Evt1");
    assert_eq!(all[0].2, ResourceData::Event(12));
    assert_eq!(all[1].0, 11);
    assert_eq!(all[1].1, "Vec1");
    assert_eq!(all[1].2, ResourceData::Vector(13));
    // Solo5 stops at record 0 and finds neither; this crate skips the holes.
    assert_eq!(info.event("Evt1"), Some(12));
    assert_eq!(info.vector("Vec1"), Some(13));
}

#[test]
fn the_builder_reproduces_every_page_from_its_decoded_values() {
    for (file, page) in PAGES {
        let info = SubjectInfo::new_checked(page).unwrap();
        let rebuilt = Builder::from_info(&info).unwrap().build();
        assert!(rebuilt == page[..], "{file} differs after rebuilding");
    }
}

#[test]
fn the_builder_writes_each_page_from_explicit_values() {
    // The same pages written resource by resource, as a user of the builder would.
    let mut lnx = Builder::new(Version::V4, "lnx", 2_900_123).unwrap();
    for (name, data) in lnx_expected() {
        lnx.resource(name, data).unwrap();
    }
    assert!(lnx.build() == LNX_SINFO[..], "lnx_sinfo");

    let mut null = Builder::new(Version::V4, "", 1000).unwrap();
    for _ in 0..10 {
        null.empty().unwrap();
    }
    assert!(null.build() == NULL_INFO[..], "null_info");

    let mut subject = Builder::new(Version::V4, "subject1", 2_893_000).unwrap();
    for _ in 0..10 {
        subject.empty().unwrap();
    }
    subject
        .event("Evt1", 12)
        .unwrap()
        .vector("Vec1", 13)
        .unwrap();
    assert!(subject.build() == SUBJECT_INFO[..], "subject_info");
}

#[test]
fn pages_trimmed_to_their_records_still_check() {
    // 80 + 13 * 128 bytes hold every record of lnx_sinfo.
    let info = SubjectInfo::new_checked(&LNX_SINFO[..1744]).unwrap();
    assert_eq!(info.resources().count(), 13);
    assert!(SubjectInfo::new_checked(&LNX_SINFO[..1743]).is_err());
}

#[test]
fn the_pages_pass_the_shared_workout() {
    for (_, page) in PAGES {
        assert!(support::exercise::exercise(page));
        support::exercise::exercise_unchecked(page);
    }
}
