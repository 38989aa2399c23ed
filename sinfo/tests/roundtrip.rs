//! Property tests: pages built from arbitrary values parse back to those values (v3, v4
//! and v5), and damaged pages never make the checked view panic.
//!
//! Not run under Miri: proptest's thousands of 32 KiB pages would take hours there. The
//! unit tests cover the unsafe code; these cover the logic.

#![cfg(not(miri))]

mod support;

use muen_sinfo::layout::{NAME_MAX, PAGE_SIZE, RESOURCE_MAX};
use muen_sinfo::{
    Builder, Content, Device, DeviceFlags, DeviceMemory, DevicePort, Memory, MemoryFlags,
    MemoryKind, PciBar, PciInfo, ResetMethod, ResourceData, ResourceKind, SubjectInfo, Version,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V3), Just(Version::V4), Just(Version::V5)]
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Mostly policy-like ASCII names, so that lookups by &str are exercised...
        "[a-z][a-z0-9_|]{0,62}".prop_map(String::into_bytes),
        // ... but any bytes are allowed.
        vec(any::<u8>(), 0..=NAME_MAX),
    ]
}

fn memory(version: Version) -> impl Strategy<Value = ResourceData> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<Option<u8>>(),
        any::<u64>(),
        any::<u64>(),
        any::<Option<[u8; 32]>>(),
    )
        .prop_map(
            move |(kind, content, flags, pattern, address, size, hash)| {
                ResourceData::Memory(Memory {
                    kind: MemoryKind::from_raw(version, kind),
                    content: Content::from_raw(content),
                    flags: MemoryFlags::from_bits_retain(flags),
                    pattern,
                    address,
                    size,
                    // An all-zero hash is how the page says "none".
                    hash: hash.filter(|h| *h != [0; 32]),
                })
            },
        )
}

fn device(version: Version) -> impl Strategy<Value = ResourceData> {
    (
        (
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
        ),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<u8>()),
    )
        .prop_map(
            move |((sid, irte, irq, count, flags), (vendor, dev, class, reset))| {
                ResourceData::Device(Device {
                    sid,
                    irte_start: irte,
                    irq_start: irq,
                    ir_count: count,
                    flags: DeviceFlags::from_bits_retain(flags),
                    pci: (version == Version::V5).then_some(PciInfo {
                        vendor_id: vendor,
                        device_id: dev,
                        class_code: class,
                        reset_method: ResetMethod::from_raw(reset),
                    }),
                })
            },
        )
}

fn device_memory(version: Version) -> impl Strategy<Value = ResourceData> {
    (
        (any::<u8>(), any::<u64>(), any::<u64>()),
        (any::<u16>(), any::<u8>(), any::<u8>(), any::<u64>()),
    )
        .prop_map(
            move |((flags, address, size), (sid, index, io, bar_address))| {
                ResourceData::DeviceMemory(DeviceMemory {
                    flags: MemoryFlags::from_bits_retain(flags),
                    address,
                    size,
                    bar: (version == Version::V5).then_some(PciBar {
                        sid,
                        index,
                        io_mem_flags: io,
                        address: bar_address,
                    }),
                })
            },
        )
}

/// Any resource the page of `version` can hold; `None` is an empty record.
fn resource(version: Version) -> impl Strategy<Value = Option<(Vec<u8>, ResourceData)>> {
    let port = (any::<u16>(), any::<u8>(), any::<u16>(), any::<u16>()).prop_map(
        |(sid, bar_index, address, size)| {
            ResourceData::DevicePort(DevicePort {
                sid,
                bar_index,
                address,
                size,
            })
        },
    );
    let unknown = any::<u32>()
        .prop_filter("a kind this version does not know", move |kind| {
            ResourceKind::from_raw(version, *kind) == Some(ResourceKind::Unknown(*kind))
        })
        .prop_map(ResourceData::Unknown);
    let data = prop_oneof![
        3 => memory(version),
        1 => any::<u8>().prop_map(ResourceData::Event),
        1 => any::<u8>().prop_map(ResourceData::Vector),
        1 => device(version),
        1 => device_memory(version),
        // Device ports exist in v5 only; elsewhere this draws another unknown kind.
        1 => if version == Version::V5 { port.boxed() } else { unknown.clone().boxed() },
        1 => unknown,
    ];
    prop_oneof![
        1 => Just(None),
        8 => (name(), data).prop_map(Some),
    ]
}

type Page = (Version, Vec<u8>, u32, Vec<Option<(Vec<u8>, ResourceData)>>);

fn page() -> impl Strategy<Value = Page> {
    version().prop_flat_map(|version| {
        (
            Just(version),
            name(),
            any::<u32>(),
            vec(resource(version), 0..=RESOURCE_MAX),
        )
    })
}

fn build((version, name, tsc_khz, resources): &Page) -> Vec<u8> {
    let mut builder = Builder::new(*version, name, *tsc_khz).unwrap();
    for resource in resources {
        match resource {
            Some((name, data)) => builder.resource(name, *data).unwrap(),
            None => builder.empty().unwrap(),
        };
    }
    builder.build()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn built_pages_parse_back_to_their_values(page in page()) {
        let bytes = build(&page);
        let (version, name, tsc_khz, resources) = &page;
        prop_assert_eq!(bytes.len(), PAGE_SIZE);

        let info = SubjectInfo::new_checked(&bytes).unwrap();
        prop_assert_eq!(info.version(), *version);
        prop_assert_eq!(info.name().as_bytes(), name.as_slice());
        prop_assert_eq!(info.tsc_khz(), *tsc_khz);
        prop_assert_eq!(info.resource_count(), resources.len());

        let expected: Vec<_> = resources
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|(name, data)| (i, name.as_slice(), *data)))
            .collect();
        let decoded: Vec<_> = info
            .resources()
            .map(|r| (r.index, r.name.as_bytes(), r.data))
            .collect();
        prop_assert_eq!(decoded, expected);

        // Rebuilding from the decoded values gives the same bytes.
        prop_assert_eq!(Builder::from_info(&info).unwrap().build(), bytes.clone());
        prop_assert!(support::exercise::exercise(&bytes));
    }

    #[test]
    fn damaged_pages_never_panic(
        page in page(),
        damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = build(&page);
        // Damage the header and the used records, where it matters.
        let used = 80 + 128 * page.3.len();
        for (at, value) in damage {
            bytes[at.index(used)] = value;
        }
        support::exercise::exercise(&bytes);
        support::exercise::exercise(&bytes[..cut.index(bytes.len())]);
        support::exercise::exercise_unchecked(&bytes);
    }
}
