//! For any specification the model can hold, the reader gives back what the writer
//! wrote, for both generations: `parse(write(spec, g)) == spec`. (policy-gen's tests
//! check the same for the specifications it makes from random plans.)

use std::collections::BTreeMap;
use std::path::Path;

use muen_abi::layout::Region;
use muen_abi::VirtAddr;
use muen_sinfo::MemoryKind;
use muen_spec::model::*;
use muen_spec::{parse, write, Generation};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

/// Names: characters XML must escape, `|`, spaces, tabs and line breaks (which the
/// writer must escape against attribute normalisation) and non-ASCII included.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_|<>&\"' é.\t\n\r-]{1,12}"
}

/// XML element names (the names of vCPU bits).
fn element_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9]{0,10}"
}

fn region() -> impl Strategy<Value = Region> {
    (any::<u64>(), any::<u64>()).prop_map(|(a, size)| Region {
        address: VirtAddr::new(a),
        size,
    })
}

fn config() -> impl Strategy<Value = Config> {
    (
        vec((name(), any::<bool>()), 0..3),
        vec((name(), any::<i64>()), 0..3),
        vec((name(), name()), 0..3),
    )
        .prop_map(|(b, i, s)| Config {
            booleans: b
                .into_iter()
                .map(|(name, value)| ConfigValue { name, value })
                .collect(),
            integers: i
                .into_iter()
                .map(|(name, value)| ConfigValue { name, value })
                .collect(),
            strings: s
                .into_iter()
                .map(|(name, value)| ConfigValue { name, value })
                .collect(),
        })
}

fn vcpu() -> impl Strategy<Value = Vcpu> {
    let group = prop::sample::select(BitGroup::ALL.to_vec());
    let bits = btree_map(group, btree_map(element_name(), any::<bool>(), 1..4), 0..5);
    let msr = (
        any::<u32>(),
        any::<u32>(),
        prop::sample::select(MsrMode::ALL.to_vec()),
    )
        .prop_map(|(start, end, mode)| MsrRange { start, end, mode });
    let registers = (
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        btree_map(prop::sample::select(Gpr::ALL.to_vec()), any::<u64>(), 0..4),
    )
        .prop_map(|(rip, rsp, others)| Registers {
            rip: rip.map(VirtAddr::new),
            rsp: rsp.map(VirtAddr::new),
            others,
        });
    let segment = (any::<u16>(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(
        |(selector, base, limit, access)| Segment {
            selector,
            base,
            limit,
            access,
        },
    );
    let segments = btree_map(
        prop::sample::select(SegmentRegister::ALL.to_vec()),
        segment,
        0..3,
    );
    (bits, vec(msr, 0..3), registers, segments).prop_map(|(bits, msrs, registers, segments)| Vcpu {
        bits: bits
            .into_iter()
            .map(|(g, bits)| {
                let bits = bits
                    .into_iter()
                    .map(|(name, value)| Bit { name, value })
                    .collect();
                (g, bits)
            })
            .collect::<BTreeMap<_, _>>(),
        msrs,
        registers,
        segments,
    })
}

fn required() -> impl Strategy<Value = RequiredMemory> {
    (name(), region(), any::<bool>(), any::<bool>()).prop_map(
        |(logical, region, writable, executable)| RequiredMemory {
            logical,
            region,
            writable,
            executable,
        },
    )
}

fn memory_array() -> impl Strategy<Value = MemoryArray> {
    (
        name(),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
        vec(name(), 0..3),
    )
        .prop_map(
            |(logical, writable, executable, a, element_size, elements)| MemoryArray {
                logical,
                writable,
                executable,
                address: VirtAddr::new(a),
                element_size,
                elements,
            },
        )
}

fn channel() -> impl Strategy<Value = Channel> {
    let end = prop_oneof![
        option::of(any::<u8>()).prop_map(|vector| ChannelEnd::Reader { vector }),
        option::of(any::<u8>()).prop_map(|event| ChannelEnd::Writer { event }),
    ];
    (name(), region(), end).prop_map(|(logical, region, end)| Channel {
        logical,
        region,
        end,
    })
}

fn channel_array() -> impl Strategy<Value = ChannelArray> {
    let elements = prop_oneof![
        vec(name(), 0..3).prop_map(ArrayElements::Readers),
        // An empty array reads back as readers: the schema cannot tell.
        vec(name(), 1..3).prop_map(ArrayElements::Writers),
    ];
    (
        name(),
        any::<u64>(),
        any::<u64>(),
        option::of(any::<u64>()),
        option::of(any::<u8>()),
        elements,
    )
        .prop_map(
            |(logical, a, element_size, event_base, vector_base, elements)| ChannelArray {
                logical,
                address: VirtAddr::new(a),
                element_size,
                event_base,
                vector_base,
                elements,
            },
        )
}

fn device() -> impl Strategy<Value = Device> {
    let irq = (name(), any::<u8>(), vec(name(), 0..2)).prop_map(|(logical, vector, msis)| Irq {
        logical,
        vector,
        msis,
    });
    let port = (name(), any::<u16>(), any::<u16>()).prop_map(|(logical, start, end)| IoPort {
        logical,
        start,
        end,
    });
    (
        name(),
        vec(irq, 0..2),
        vec(required(), 0..2),
        vec(port, 0..2),
    )
        .prop_map(|(logical, irqs, memory, io_ports)| Device {
            logical,
            irqs,
            memory,
            io_ports,
        })
}

fn events() -> impl Strategy<Value = Events> {
    let source_action = prop_oneof![
        prop::sample::select(SourceAction::PLAIN.to_vec()),
        any::<u8>().prop_map(SourceAction::UnmaskIrq),
    ];
    let source = (name(), 0u8..=63, option::of(source_action)).prop_map(|(logical, id, action)| {
        SourceEvent {
            logical,
            id,
            action,
        }
    });
    let target_action = prop_oneof![
        any::<u8>().prop_map(|vector| TargetAction::InjectInterrupt { vector }),
        Just(TargetAction::Reset),
    ];
    let target = (name(), option::of(any::<u64>()), option::of(target_action)).prop_map(
        |(logical, id, action)| TargetEvent {
            logical,
            id,
            action,
        },
    );
    (vec(source, 0..3), vec(target, 0..3)).prop_map(|(source, target)| Events { source, target })
}

/// Every memory kind a policy can name.
fn kinds() -> Vec<MemoryKind> {
    (0..=255u8)
        .map(|raw| MemoryKind::from_raw(muen_sinfo::Version::V5, raw))
        .filter(|k| k.policy_name().is_some())
        .collect()
}

fn provided() -> impl Strategy<Value = ProvidedMemory> {
    let content = prop_oneof![
        Just(Content::Unspecified),
        (name(), option::of(any::<u64>()))
            .prop_map(|(filename, offset)| Content::File { filename, offset }),
        any::<u8>().prop_map(Content::Fill),
    ];
    let hash = option::of(prop_oneof![
        any::<[u8; 32]>().prop_map(Hash::Sha256),
        Just(Hash::Omitted),
        name().prop_map(Hash::Ref),
    ]);
    (
        name(),
        region(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(kinds()),
        content,
        hash,
    )
        .prop_map(
            |(logical, region, writable, executable, kind, content, hash)| ProvidedMemory {
                logical,
                region,
                writable,
                executable,
                kind,
                content,
                hash,
            },
        )
}

prop_compose! {
    fn spec()(
        name in name(),
        profile in prop::sample::select(Profile::ALL.to_vec()),
        config in config(),
        depends in vec(name(), 0..3),
        vcpu in vcpu(),
        memory in vec(required(), 0..3),
        memory_arrays in vec(memory_array(), 0..2),
        channels in vec(channel(), 0..4),
        channel_arrays in vec(channel_array(), 0..2),
        devices in vec(device(), 0..2),
        events in events(),
        provides in vec(provided(), 0..3),
    ) -> ComponentSpec {
        ComponentSpec {
            name,
            profile,
            config,
            depends,
            vcpu,
            memory,
            memory_arrays,
            channels,
            channel_arrays,
            devices,
            events,
            provides,
        }
    }
}

proptest! {
    #[test]
    fn parse_gives_back_what_write_wrote(spec in spec()) {
        for g in Generation::ALL {
            let xml = write(&spec, g);
            let back = parse(&xml, Path::new("spec.xml"))
                .map_err(|e| TestCaseError::fail(format!("{g}: {e}\n{xml}")))?;
            prop_assert_eq!(&back, &spec, "{}:\n{}", g, xml);
        }
    }

    #[test]
    fn generations_differ_only_in_the_vcpu_architecture_element(spec in spec()) {
        let old = write(&spec, Generation::V2026_01);
        let new = write(&spec, Generation::V2026_04);
        let has_vcpu = !spec.vcpu.is_empty();
        prop_assert_eq!(new.contains("<x86_64>"), has_vcpu);
        prop_assert!(!old.contains("<x86_64>"));
        let unwrapped: Vec<&str> = new
            .lines()
            .filter(|l| !l.trim_start().starts_with("<x86_64>") && !l.trim_start().starts_with("</x86_64>"))
            .collect();
        let old_lines: Vec<&str> = old.lines().collect();
        prop_assert_eq!(unwrapped.len(), old_lines.len());
        for (a, b) in unwrapped.iter().zip(&old_lines) {
            prop_assert_eq!(a.trim_start(), b.trim_start());
        }
    }
}
