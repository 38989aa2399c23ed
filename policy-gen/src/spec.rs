//! The component specification of a plan: the [`ComponentSpec`] `policy-gen` writes
//! (with `muen_spec::write`) and the testbed runs.
//!
//! Every value is resolved, because Muen's component schema accepts no `auto`,
//! `$variable` or `<include>`: the addresses, event ids and vectors are the plan's.

use std::fmt;

use muen_abi::names::{self, Role, NAME_MAX};
use muen_abi::numbers::{EXIT_EVENT, TIMER_EVENT, TIMER_VECTOR};
use muen_manifest::Plan;
use muen_sinfo::MemoryKind;
use muen_spec::model::{
    bits, BitGroup, Channel, ChannelEnd, ComponentSpec, Content, Events, Profile, ProvidedMemory,
    Registers, RequiredMemory, SourceEvent, TargetAction, TargetEvent, Vcpu,
};

use crate::elf::Image;

/// Libraries every generated component depends on: the runtime logs through
/// `libmudebuglog`'s `debuglog` channel and reads the wall clock from `libmutime`'s
/// `time_info`.
pub const LIBRARIES: [&str; 2] = ["libmudebuglog", "libmutime"];

/// Muen names a provided region `<component>|<region>`, and for an image region that
/// is too long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionNameTooLong {
    /// The region's logical name.
    pub region: String,
    /// The component name.
    pub component: String,
}

impl fmt::Display for RegionNameTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RegionNameTooLong { region, component } = self;
        write!(
            f,
            "the image region `{region}` becomes the physical region \
             `{component}|{region}` of {} characters, more than Muen's {NAME_MAX}; \
             use a component name of at most {} characters",
            component.len() + 1 + region.len(),
            NAME_MAX - 1 - region.len()
        )
    }
}

impl std::error::Error for RegionNameTooLong {}

/// The component specification of `plan`, with the regions of `image` if given (else
/// RIP is the runtime's fixed entry, [`muen_abi::layout::ENTRY`]).
///
/// - `<depends>`: [`LIBRARIES`].
/// - `<vcpu>`: HLT exits (the runtime's idle loop sleeps), RDTSC does not (the runtime
///   reads the TSC), every exception the schema allows goes to the subject's own
///   handlers, RIP and RSP, and CR4.OSXMMEXCPT so that SIMD floating-point exceptions
///   raise #XM, as in Muen's MirageOS component.
/// - `<memory>`: the block devices' data buffers; `<channels>`: the devices' readers
///   with their vector and writers with their event, then the app channels
///   (`[channel.NAME]`, logical name `NAME`), with a vector or event if they signal.
/// - `<events>`: vmcall events `exit` and `timer`, and the `timer` target event that
///   injects the timer vector (the integrator links `timer` to it with a `self` event).
/// - `<provides>`: the image's regions (`subject_binary`), then `ram`.
pub fn component_spec(
    plan: &Plan,
    image: Option<&Image>,
) -> Result<ComponentSpec, RegionNameTooLong> {
    if let Some(image) = image {
        for r in &image.regions {
            if plan.name.len() + 1 + r.logical.len() > NAME_MAX {
                return Err(RegionNameTooLong {
                    region: r.logical.clone(),
                    component: plan.name.clone(),
                });
            }
        }
    }
    let mut vcpu = Vcpu {
        registers: Registers {
            rip: Some(image.map_or(muen_abi::layout::ENTRY, |i| i.entry)),
            rsp: Some(plan.stack_top),
            others: Default::default(),
        },
        ..Vcpu::default()
    };
    vcpu.set_bit(BitGroup::ProcControls, bits::HLT_EXITING, true);
    vcpu.set_bit(BitGroup::ProcControls, bits::RDTSC_EXITING, false);
    for exception in bits::COMPONENT_EXCEPTIONS {
        vcpu.set_bit(BitGroup::ExceptionMask, exception, false);
    }
    vcpu.set_bit(BitGroup::Cr4, bits::OS_SUPPORT_SIMD_EXCEPTIONS, true);

    let memory = plan
        .devices
        .iter()
        .filter(|d| d.role == Role::Memory)
        .map(|d| RequiredMemory {
            logical: d.name.clone(),
            region: d.region,
            writable: true,
            executable: false,
        })
        .collect();
    let devices = plan.devices.iter().filter_map(|d| {
        let end = match d.role {
            Role::Reader => ChannelEnd::Reader { vector: d.vector },
            Role::Writer => ChannelEnd::Writer { event: d.event },
            Role::Memory => return None,
        };
        Some(Channel {
            logical: d.name.clone(),
            region: d.region,
            end,
        })
    });
    // App channels after the devices: their logical name is the channel's name.
    let app_channels = plan.channels.iter().map(|c| Channel {
        logical: c.name.clone(),
        region: c.region,
        end: match c.role() {
            Role::Writer => ChannelEnd::Writer { event: c.event },
            _ => ChannelEnd::Reader { vector: c.vector },
        },
    });
    let channels = devices.chain(app_channels).collect();
    let events = Events {
        source: [(EXIT_EVENT, names::EXIT_EVENT), (TIMER_EVENT, names::TIMER)]
            .into_iter()
            .map(|(id, name)| SourceEvent {
                logical: name.to_string(),
                id,
                action: None,
            })
            .collect(),
        target: vec![TargetEvent {
            logical: names::TIMER.to_string(),
            id: None,
            action: Some(TargetAction::InjectInterrupt {
                vector: TIMER_VECTOR,
            }),
        }],
    };

    let mut provides: Vec<ProvidedMemory> = image.map_or(Vec::new(), |i| i.regions.clone());
    provides.push(ProvidedMemory {
        logical: names::RAM.to_string(),
        region: plan.ram,
        writable: true,
        executable: false,
        kind: MemoryKind::Subject,
        content: Content::Unspecified,
        hash: None,
    });

    Ok(ComponentSpec {
        name: plan.name.clone(),
        profile: Profile::Native,
        depends: LIBRARIES.map(str::to_string).to_vec(),
        vcpu,
        memory,
        channels,
        events,
        provides,
        ..ComponentSpec::default()
    })
}
