//! Cross-check of `lnx_sinfo` against the policy it was generated from.
//!
//! The test reads `test_policy.xml` with roxmltree, derives subject `lnx`'s resources
//! the way `sinfo.md` §6–§9 says Muen's generator does (memory mappings in policy order,
//! then each logical device with a `<pci>` element followed by its memory, then vmcall
//! events, then vectors), writes them with the builder and compares the result with the
//! page Muen wrote, byte for byte. So the decoded page matches the policy, and the
//! builder can stand in for Muen's generator.

mod support;

use muen_sinfo::{
    Builder, Content, Device, DeviceFlags, DeviceMemory, Memory, MemoryFlags, MemoryKind,
    ResourceData, SubjectInfo, Version,
};
use roxmltree::{Document, Node};
use support::{hex, LNX_SINFO, TEST_POLICY};

/// Parses a policy number: decimal or Ada-style `16#dead_beef#`.
fn number(text: &str) -> u64 {
    let text = text.replace('_', "");
    match text.strip_prefix("16#").and_then(|t| t.strip_suffix('#')) {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
        None => text.parse().unwrap(),
    }
}

fn attr<'a>(node: Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name)
        .unwrap_or_else(|| panic!("<{}> has no {name}", node.tag_name().name()))
}

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

fn children<'a, 'i>(node: Node<'a, 'i>, tag: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| c.has_tag_name(tag))
}

fn named<'a, 'i>(
    mut nodes: impl Iterator<Item = Node<'a, 'i>>,
    attribute: &str,
    value: &str,
) -> Node<'a, 'i> {
    nodes
        .find(|n| n.attribute(attribute) == Some(value))
        .unwrap_or_else(|| panic!("no element with {attribute}=\"{value}\""))
}

fn flags(mapping: Node<'_, '_>) -> MemoryFlags {
    let mut flags = MemoryFlags::empty();
    flags.set(MemoryFlags::WRITABLE, attr(mapping, "writable") == "true");
    flags.set(
        MemoryFlags::EXECUTABLE,
        attr(mapping, "executable") == "true",
    );
    flags
}

/// The resources of `subject` in generator order, derived from the policy.
fn resources_from_policy(doc: &Document<'_>, subject: &str) -> Vec<(String, ResourceData)> {
    let root = doc.root_element();
    let physical_memory = child(root, "memory").unwrap();
    let physical_devices = child(child(root, "hardware").unwrap(), "devices").unwrap();
    let subject = named(
        children(child(root, "subjects").unwrap(), "subject"),
        "name",
        subject,
    );
    let mut out = Vec::new();

    // 1. Memory mappings, in policy order.
    for mapping in children(child(subject, "memory").unwrap(), "memory") {
        let region = named(
            children(physical_memory, "memory"),
            "name",
            attr(mapping, "physical"),
        );
        let (content, pattern) = if let Some(fill) = child(region, "fill") {
            (Content::Fill, Some(number(attr(fill, "pattern")) as u8))
        } else if child(region, "file").is_some() {
            (Content::File, None)
        } else {
            (Content::Uninitialized, None)
        };
        let hash = child(region, "hash")
            .map(|h| attr(h, "value"))
            .filter(|v| *v != "none")
            .map(|v| {
                let digits = v.trim_start_matches("16#").trim_end_matches('#');
                <[u8; 32]>::try_from(hex(digits)).unwrap()
            });
        let memory = Memory {
            kind: MemoryKind::from_policy_name(attr(region, "type")).unwrap(),
            content,
            flags: flags(mapping),
            pattern,
            address: number(attr(mapping, "virtualAddress")),
            size: number(attr(region, "size")),
            hash,
        };
        out.push((
            attr(mapping, "logical").to_owned(),
            ResourceData::Memory(memory),
        ));
    }

    // 2. Logical devices with a <pci> element, each followed by its memory.
    for logical in children(child(subject, "devices").unwrap(), "device") {
        let Some(pci) = child(logical, "pci") else {
            continue;
        };
        let physical = named(
            children(physical_devices, "device"),
            "name",
            attr(logical, "physical"),
        );
        let sid = (number(attr(pci, "bus")) << 8)
            | (number(attr(pci, "device")) << 3)
            | number(attr(pci, "function"));
        let vectors: Vec<u64> = children(logical, "irq")
            .map(|irq| number(attr(irq, "vector")))
            .collect();
        let irtes: Vec<u64> = children(logical, "irq")
            .map(|irq| {
                let phys = named(children(physical, "irq"), "name", attr(irq, "physical"));
                number(attr(phys, "number"))
            })
            .collect();
        let device = if vectors.is_empty() {
            Device {
                sid: sid as u16,
                irte_start: 0,
                irq_start: 0,
                ir_count: 0,
                flags: DeviceFlags::empty(),
                pci: None,
            }
        } else {
            let (low, high) = (
                *vectors.iter().min().unwrap(),
                *vectors.iter().max().unwrap(),
            );
            let msi = child(physical, "pci").unwrap().attribute("msi") == Some("true");
            Device {
                sid: sid as u16,
                irte_start: *irtes.iter().min().unwrap() as u16,
                irq_start: low as u8,
                ir_count: (high - low + 1) as u8,
                flags: if msi {
                    DeviceFlags::MSI_CAPABLE
                } else {
                    DeviceFlags::empty()
                },
                pci: None,
            }
        };
        let device_name = attr(logical, "logical");
        out.push((device_name.to_owned(), ResourceData::Device(device)));
        for mapping in children(logical, "memory") {
            let region = named(
                children(physical, "memory"),
                "name",
                attr(mapping, "physical"),
            );
            let region = DeviceMemory {
                flags: flags(mapping),
                address: number(attr(mapping, "virtualAddress")),
                size: number(attr(region, "size")),
                bar: None,
            };
            out.push((
                format!("{device_name}_{}", attr(mapping, "logical")),
                ResourceData::DeviceMemory(region),
            ));
        }
    }

    // 3. vmcall source events, 4. target events that inject an interrupt.
    let events = child(subject, "events").unwrap();
    let vmcall = named(
        children(child(events, "source").unwrap(), "group"),
        "name",
        "vmcall",
    );
    for event in children(vmcall, "event") {
        let id = number(attr(event, "id")) as u8;
        out.push((attr(event, "logical").to_owned(), ResourceData::Event(id)));
    }
    for event in children(child(events, "target").unwrap(), "event") {
        if let Some(inject) = child(event, "inject_interrupt") {
            let vector = number(attr(inject, "vector")) as u8;
            out.push((
                attr(event, "logical").to_owned(),
                ResourceData::Vector(vector),
            ));
        }
    }
    out
}

#[test]
fn lnx_sinfo_is_what_the_policy_says() {
    let doc = Document::parse(TEST_POLICY).unwrap();
    let root = doc.root_element();
    let processor = child(child(root, "hardware").unwrap(), "processor").unwrap();
    let tsc_khz = number(attr(processor, "speed")) as u32;
    // The subject is named by its sinfo region, `<subject>|sinfo`.
    let sinfo_region = named(
        children(child(root, "memory").unwrap(), "memory"),
        "type",
        "subject_info",
    );
    let subject = attr(sinfo_region, "name").split('|').next().unwrap();
    let expected = resources_from_policy(&doc, subject);
    assert_eq!(expected.len(), 13);

    // Decoding the page gives the policy's values...
    let info = SubjectInfo::new_checked(LNX_SINFO).unwrap();
    assert_eq!(info.name(), subject);
    assert_eq!(info.tsc_khz(), tsc_khz);
    let decoded: Vec<_> = info.resources().collect();
    assert_eq!(decoded.len(), expected.len());
    for (resource, (name, data)) in decoded.iter().zip(&expected) {
        assert_eq!(resource.name, name.as_str());
        assert_eq!(resource.data, *data, "{name}");
    }

    // ... and writing the policy's values gives the page.
    let mut builder = Builder::new(Version::V4, subject, tsc_khz).unwrap();
    for (name, data) in &expected {
        builder.resource(name, *data).unwrap();
    }
    assert!(builder.build() == LNX_SINFO[..]);
}
