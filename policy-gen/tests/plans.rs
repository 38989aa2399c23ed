//! The specification of any valid plan: what `muen_spec::parse` reads back from it is
//! what `policy-gen` made (for both generations of Muen's tools), and the subject's
//! view Muen's toolchain makes of it is page-aligned and overlap-free, with the plan's
//! numbers.

mod common;

use std::path::Path;

use muen_abi::layout::{self, PAGE_SIZE};
use muen_abi::names::Role;
use muen_manifest::{App, BlockDevice, Channel, Direction, NetDevice, Plan, DEFAULT_RAM};
use muen_spec::{expand, parse, write, ChannelEnd, Generation, Library, Origin};
use policy_gen::elf::{self, Image};
use policy_gen::spec::component_spec;
use proptest::prelude::*;

use common::typical_elf;

fn app(name: &str, ram: u64, net: &[(&str, u64)], block: &[(&str, u64)]) -> App {
    App {
        name: name.into(),
        ram,
        elf: None,
        net: net
            .iter()
            .map(|&(name, channel_size)| NetDevice {
                name: name.into(),
                channel_size,
            })
            .collect(),
        block: block
            .iter()
            .map(|&(name, buffer_size)| BlockDevice {
                name: name.into(),
                buffer_size,
            })
            .collect(),
        channel: Vec::new(),
    }
}

/// An app channel of `size` bytes with 512-byte elements.
fn channel(name: &str, direction: Direction, size: u64, event: bool) -> Channel {
    Channel {
        name: name.into(),
        direction,
        size,
        element_size: 512,
        protocol: 0x6775_6573_7462_6f6f,
        event,
    }
}

fn image() -> Image {
    elf::parse(&typical_elf().bytes(), "app").expect("the typical image")
}

/// The example of the old `Plan::mappings` test: every region, in sinfo order (Muen
/// merges libmutime before libmudebuglog, each after the component's last channel of
/// its end), writable where it should be.
#[test]
fn the_view_covers_everything_in_sinfo_order() {
    let plan = Plan::new(&app(
        "test",
        DEFAULT_RAM,
        &[("n", 0x1000)],
        &[("b", 0x1000)],
    ))
    .unwrap();
    let view = expand(&component_spec(&plan, None).unwrap()).unwrap();
    let m = &view.mappings;
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ram",
            "b|data",
            "n|in",
            "n|out",
            "b|req",
            "debuglog",
            "b|resp",
            "time_info",
            "sinfo",
            "scheduling_info",
            "timed_event"
        ]
    );
    let writable: Vec<bool> = m.iter().map(|m| m.writable).collect();
    assert_eq!(
        writable,
        [true, true, false, true, true, true, false, false, false, false, true]
    );
    let origins: Vec<Origin> = m.iter().map(|m| m.origin).collect();
    assert_eq!(origins[5], Origin::Library(Library::Debuglog));
    assert_eq!(origins[7], Origin::Library(Library::Time));
    assert_eq!(origins[8..], [Origin::Toolchain; 3]);
    let mut by_address: Vec<_> = m.iter().map(|m| m.region).collect();
    by_address.sort_by_key(|r| r.address);
    for pair in by_address.windows(2) {
        assert!(pair[0].end().unwrap() <= pair[1].address);
    }
    let events: Vec<(&str, u8)> = view
        .events
        .iter()
        .map(|e| (e.name.as_str(), e.number))
        .collect();
    assert_eq!(
        events,
        [("exit", 0), ("timer", 1), ("n|out", 2), ("b|req", 3)]
    );
    let vectors: Vec<(&str, u8)> = view
        .vectors
        .iter()
        .map(|v| (v.name.as_str(), v.number))
        .collect();
    assert_eq!(vectors, [("timer", 32), ("n|in", 33), ("b|resp", 34)]);
}

/// With an image, its regions come first (QEMU mode maps them; Muen does).
#[test]
fn image_regions_come_first() {
    let plan = Plan::new(&app("test", DEFAULT_RAM, &[], &[])).unwrap();
    let image = image();
    let spec = component_spec(&plan, Some(&image)).unwrap();
    let view = expand(&spec).unwrap();
    let names: Vec<&str> = view.mappings.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names[..image.regions.len() + 1],
        ["text", "rodata", "data", "data|fill", "bss", "ram"]
    );
    assert_eq!(view.registers.rip, Some(image.entry));
    assert_eq!(view.registers.rsp, Some(plan.stack_top));
    assert!(view.simd_exceptions);
    // Without devices, the component's own numbers only.
    let events: Vec<(&str, u8)> = view
        .events
        .iter()
        .map(|e| (e.name.as_str(), e.number))
        .collect();
    assert_eq!(events, [("exit", 0), ("timer", 1)]);
    let vectors: Vec<(&str, u8)> = view
        .vectors
        .iter()
        .map(|v| (v.name.as_str(), v.number))
        .collect();
    assert_eq!(vectors, [("timer", 32)]);
}

/// App channels follow the devices, in name order; writers with an event get the next
/// event ids, readers with one the next vectors; in the view they are channels of the
/// component (sinfo order: the component's readers, then its writers).
#[test]
fn app_channels_follow_the_devices() {
    let mut a = app("web", DEFAULT_RAM, &[("service0", 0x10_0000)], &[]);
    a.channel = vec![
        channel("responses", Direction::In, 0x1_0000, true),
        channel("requests", Direction::Out, 0x1_0000, true),
        channel("quiet", Direction::Out, 0x1000, false),
    ];
    let plan = Plan::new(&a).unwrap();
    let spec = component_spec(&plan, None).unwrap();
    let channels: Vec<(&str, u64, u64, ChannelEnd)> = spec
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
    let base = layout::DEVICE_BASE.as_u64();
    let g = layout::GUARD_SIZE;
    let quiet = base + 2 * (0x10_0000 + g);
    let requests = quiet + 0x1000 + g;
    let responses = requests + 0x1_0000 + g;
    assert_eq!(
        channels,
        [
            (
                "service0|in",
                base,
                0x10_0000,
                ChannelEnd::Reader { vector: Some(33) }
            ),
            (
                "service0|out",
                base + 0x10_0000 + g,
                0x10_0000,
                ChannelEnd::Writer { event: Some(2) }
            ),
            ("quiet", quiet, 0x1000, ChannelEnd::Writer { event: None }),
            (
                "requests",
                requests,
                0x1_0000,
                ChannelEnd::Writer { event: Some(3) }
            ),
            (
                "responses",
                responses,
                0x1_0000,
                ChannelEnd::Reader { vector: Some(34) }
            ),
        ]
    );
    let view = expand(&spec).unwrap();
    assert_eq!(view.event("requests"), Some(3));
    assert_eq!(view.vector("responses"), Some(34));
    assert_eq!(view.event("quiet"), None);
    let responses = view.mapping("responses").unwrap();
    assert!(!responses.writable && responses.role == Role::Reader);
    assert_eq!(responses.kind, muen_sinfo::MemoryKind::SubjectChannel);
    assert!(view.mapping("requests").unwrap().writable);
    for g in Generation::ALL {
        let xml = policy_gen::document(&spec, g);
        assert!(
            xml.contains("<writer logical=\"requests\" virtualAddress=\"16#0010_0020_4000#\" size=\"16#0001_0000#\" event=\"3\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<writer logical=\"quiet\" virtualAddress=\"16#0010_0020_2000#\" size=\"16#1000#\"/>"),
            "{xml}"
        );
        assert_eq!(parse(&xml, Path::new("web.xml")).unwrap(), spec);
    }
}

proptest! {
    #[test]
    fn plans_round_trip_and_expand_to_a_valid_view(
        net in proptest::collection::btree_map("[a-z][a-z0-9_]{0,8}", 1u64..64, 0..20),
        block in proptest::collection::btree_map("[A-Z][a-z0-9_]{0,8}", 1u64..64, 0..20),
        channels in proptest::collection::btree_map(
            "[a-z][a-z0-9_]{0,8}",
            (1u64..16, any::<bool>(), any::<bool>()),
            0..12,
        ),
        ram_pages in 1u64..0x10_0000,
        name in "[a-z][a-z0-9_-]{0,20}",
        with_image in any::<bool>(),
    ) {
        let net: Vec<(&str, u64)> = net.iter().map(|(n, p)| (n.as_str(), p * PAGE_SIZE)).collect();
        let block: Vec<(&str, u64)> =
            block.iter().map(|(n, p)| (n.as_str(), p * PAGE_SIZE)).collect();
        let mut a = app(&name, ram_pages * PAGE_SIZE, &net, &block);
        a.channel = channels
            .iter()
            .filter(|(n, _)| {
                !net.iter().any(|(d, _)| d == n)
                    && muen_abi::names::check_channel_name(n).is_ok()
            })
            .map(|(n, &(pages, out, event))| {
                let direction = if out { Direction::Out } else { Direction::In };
                channel(n, direction, pages * PAGE_SIZE, event)
            })
            .collect();
        let plan = Plan::new(&a).unwrap();
        let image = with_image.then(image);
        let spec = component_spec(&plan, image.as_ref()).unwrap();

        for g in Generation::ALL {
            for xml in [write(&spec, g), policy_gen::document(&spec, g)] {
                let back = parse(&xml, Path::new("spec.xml"))
                    .map_err(|e| TestCaseError::fail(format!("{g}: {e}")))?;
                prop_assert_eq!(&back, &spec);
            }
        }

        let view = expand(&spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let m = &view.mappings;
        let regions = image.as_ref().map_or(0, |i| i.regions.len());
        prop_assert_eq!(
            m.len(),
            regions + 1 + plan.devices.len() + plan.channels.len() + 2 + 3
        );
        for (i, x) in m.iter().enumerate() {
            prop_assert!(x.region.address.is_page_aligned());
            prop_assert_eq!(x.region.size % PAGE_SIZE, 0);
            prop_assert!(x.region.end().is_some_and(|e| e <= layout::DEVICE_LIMIT));
            for y in &m[i + 1..] {
                prop_assert!(!x.region.overlaps(&y.region), "{:?} {:?}", x, y);
            }
        }
        for d in &plan.devices {
            let mapping = view.mapping(&d.name).unwrap();
            prop_assert_eq!(mapping.region, d.region);
            prop_assert_eq!(mapping.role, d.role);
            prop_assert_eq!(mapping.writable, d.role != Role::Reader);
            prop_assert_eq!(view.event(&d.name), d.event);
            prop_assert_eq!(view.vector(&d.name), d.vector);
        }
        for c in &plan.channels {
            let mapping = view.mapping(&c.name).unwrap();
            prop_assert_eq!(mapping.region, c.region);
            prop_assert_eq!(mapping.role, c.role());
            prop_assert_eq!(mapping.writable, c.role() == Role::Writer);
            prop_assert_eq!(view.event(&c.name), c.event);
            prop_assert_eq!(view.vector(&c.name), c.vector);
        }
        let signalling = |d: Direction| {
            a.channel.iter().filter(|c| c.event && c.direction == d).count()
        };
        prop_assert_eq!(
            view.events.len(),
            2 + net.len() + block.len() + signalling(Direction::Out)
        );
        prop_assert_eq!(
            view.vectors.len(),
            1 + net.len() + block.len() + signalling(Direction::In)
        );
        prop_assert!(view.has_library(Library::Debuglog) && view.has_library(Library::Time));
        prop_assert_eq!(view.registers.rsp, Some(plan.stack_top));
    }
}
