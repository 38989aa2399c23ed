//! The specification of any valid plan: what `muen_spec::parse` reads back from it is
//! what `policy-gen` made (for both generations of Muen's tools), and the subject's
//! view Muen's toolchain makes of it is page-aligned and overlap-free, with the plan's
//! numbers.

mod common;

use std::path::Path;

use muen_abi::layout::{self, PAGE_SIZE};
use muen_abi::names::Role;
use muen_manifest::{App, BlockDevice, NetDevice, Plan, DEFAULT_RAM};
use muen_spec::{expand, parse, write, Generation, Library, Origin};
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

proptest! {
    #[test]
    fn plans_round_trip_and_expand_to_a_valid_view(
        net in proptest::collection::btree_map("[a-z][a-z0-9_]{0,8}", 1u64..64, 0..20),
        block in proptest::collection::btree_map("[A-Z][a-z0-9_]{0,8}", 1u64..64, 0..20),
        ram_pages in 1u64..0x10_0000,
        name in "[a-z][a-z0-9_-]{0,20}",
        with_image in any::<bool>(),
    ) {
        let net: Vec<(&str, u64)> = net.iter().map(|(n, p)| (n.as_str(), p * PAGE_SIZE)).collect();
        let block: Vec<(&str, u64)> =
            block.iter().map(|(n, p)| (n.as_str(), p * PAGE_SIZE)).collect();
        let plan = Plan::new(&app(&name, ram_pages * PAGE_SIZE, &net, &block)).unwrap();
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
        prop_assert_eq!(m.len(), regions + 1 + plan.devices.len() + 2 + 3);
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
        prop_assert_eq!(view.events.len(), 2 + net.len() + block.len());
        prop_assert_eq!(view.vectors.len(), 1 + net.len() + block.len());
        prop_assert!(view.has_library(Library::Debuglog) && view.has_library(Library::Time));
        prop_assert_eq!(view.registers.rsp, Some(plan.stack_top));
    }
}
