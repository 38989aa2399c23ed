//! A Muen system policy in format B, and the subjects in it.
//!
//! Format B is the policy `mucfgalloc` writes (the input of `mucfgvalidate`,
//! `mugensinfo` and `mucfgmemhashes`; `pipeline.sh` copies it to `OUT/policy_b.xml`):
//! the components have been expanded into the subjects, every channel has become a
//! physical memory region plus events, and every region has a physical address. The
//! reader takes what running subjects needs and checks it (every reference resolves,
//! numbers in range); it is not a validator: `mucfgvalidate` is.
//!
//! # How the reader tells format B
//!
//! The root is `<system>` (a `<component>` or `<library>` is a component
//! specification); it has no `<channels>` or `<components>` (those are the source
//! format's: `mucfgexpand` turns them into memory and events); and every
//! `/system/memory/memory` has a `physicalAddress` (format A, `mucfgexpand`'s output,
//! has it only for the few fixed regions). The TSC rate comes from
//! `/system/hardware/processor`: `@speed` (2026-01 tools) or `x86_64/@tscFrequency`
//! (2026-04 tools), which also tells the tool generation. Files may start with a UTF-8
//! byte order mark (Muen's tools write one).
//!
//! # A subject's view
//!
//! [`System::view`] builds the [`SubjectView`] the testbed runs a subject in, by the
//! rule `mugensinfo` writes a subject's page with: one mapping per
//! `subject/memory/memory` in document order (logical name, virtual address and
//! rights from the mapping; size, type, content and hash from the physical region it
//! names), one event per `events/source/group[@name='vmcall']/event`, one vector per
//! `events/target/event` with `<inject_interrupt>`, in document order. [`System::wiring`]
//! adds what running the subject needs besides: who else maps each of its regions,
//! where each of its events goes, its `HLT` exit, and its place in the scheduling plan.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use muen_abi::layout::Region;
use muen_abi::names::{self, Role};
use muen_abi::time::TscRate;
use muen_abi::{PhysAddr, VirtAddr};
use muen_sinfo::MemoryKind;
use roxmltree::{Document, Node};

use crate::model::{Content, Hash, SourceAction, SourceEvent, TargetAction, TargetEvent, Vcpu};
use crate::parse::{elements, Reader, Result};
use crate::view::{Library, Mapping, NamedNumber, Origin, SubjectView, ViewError};
use crate::{Generation, SpecError};

/// A system policy in format B.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct System {
    /// The generation of Muen's tools that wrote it (from the processor's format).
    pub generation: Generation,
    /// The processor's TSC rate (`speed` or `tscFrequency`, kHz): sinfo's `tsc_khz`.
    pub tsc: TscRate,
    /// The physical memory regions subjects can map (`/system/memory/memory` of a
    /// subject memory type, in document order; kernel and system regions are left out).
    pub regions: Vec<PhysicalRegion>,
    /// The physical events (`/system/events/event`), in document order.
    pub events: Vec<PhysicalEvent>,
    /// The subjects (`/system/subjects/subject`), in document order.
    pub subjects: Vec<Subject>,
    /// The scheduling plan (`/system/scheduling`).
    pub scheduling: Scheduling,
}

/// `/system/memory/memory` of a subject memory type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalRegion {
    /// `name`, e.g. `echo|ram`, `echo_service0_in`, `time_info`.
    pub name: String,
    /// `physicalAddress`.
    pub address: PhysAddr,
    /// `size`.
    pub size: u64,
    /// `type`.
    pub kind: MemoryKind,
    /// `<fill>` or `<file>`.
    pub content: Content,
    /// `<hash value>` (a `<hashRef>` resolved to the referenced region's digest).
    pub hash: Option<[u8; 32]>,
}

/// `/system/events/event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalEvent {
    /// `name`.
    pub name: String,
    /// `mode`.
    pub mode: EventMode,
}

/// How a physical event travels (`mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventMode {
    /// `self`: back to the subject that triggered it.
    SelfEvent,
    /// `async`: to a subject on the same CPU, delivered when it runs next.
    Async,
    /// `ipi`: to a subject on another CPU, with an inter-processor interrupt.
    Ipi,
    /// `switch`: to a subject of the same scheduling group, which runs at once.
    Switch,
    /// `kernel`: handled by the kernel (the source event's action).
    Kernel,
}

impl EventMode {
    /// Every mode.
    pub const ALL: [EventMode; 5] = [
        EventMode::SelfEvent,
        EventMode::Async,
        EventMode::Ipi,
        EventMode::Switch,
        EventMode::Kernel,
    ];

    /// The name in the policy.
    pub fn policy_name(self) -> &'static str {
        match self {
            EventMode::SelfEvent => "self",
            EventMode::Async => "async",
            EventMode::Ipi => "ipi",
            EventMode::Switch => "switch",
            EventMode::Kernel => "kernel",
        }
    }

    /// The mode named `name`.
    pub fn from_policy_name(name: &str) -> Option<EventMode> {
        EventMode::ALL.into_iter().find(|m| m.policy_name() == name)
    }
}

/// `/system/subjects/subject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// `name`.
    pub name: String,
    /// `cpu`: the CPU it runs on.
    pub cpu: u32,
    /// `globalId`.
    pub global_id: u32,
    /// `schedGroupId`: its scheduling group.
    pub sched_group: u32,
    /// `vcpu`: its complete vCPU settings (either generation's form).
    pub vcpu: Vcpu,
    /// `memory/memory`, in document order.
    pub mappings: Vec<SubjectMapping>,
    /// `devices/device` logical names.
    pub devices: Vec<String>,
    /// `events/source/group[@name='vmx_exit']/event`, in document order.
    pub vmx_exits: Vec<LinkedSourceEvent>,
    /// `events/source/group[@name='vmcall']/event`, in document order.
    pub vmcalls: Vec<LinkedSourceEvent>,
    /// `events/target/event`, in document order.
    pub targets: Vec<LinkedTargetEvent>,
}

/// `subject/memory/memory`: a physical region mapped into the subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectMapping {
    /// `logical`: the sinfo resource name.
    pub logical: String,
    /// `physical`: index in [`System::regions`].
    pub region: usize,
    /// `virtualAddress`.
    pub address: VirtAddr,
    /// `writable`.
    pub writable: bool,
    /// `executable`.
    pub executable: bool,
}

/// A source event of a subject and the physical event it triggers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedSourceEvent {
    /// The event (`id`, `logical`, the action child of a kernel event).
    pub event: SourceEvent,
    /// `physical`: index in [`System::events`].
    pub physical: usize,
}

/// A target event of a subject and the physical event that triggers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedTargetEvent {
    /// The event (`id`, `logical`, `<inject_interrupt>` or `<reset/>`).
    pub event: TargetEvent,
    /// `physical`: index in [`System::events`].
    pub physical: usize,
}

/// `/system/scheduling`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduling {
    /// `tickRate`: ticks per second.
    pub tick_rate_hz: u64,
    /// `partitions/partition`, in document order.
    pub partitions: Vec<Partition>,
    /// `majorFrame`, in document order (the plan switches between them).
    pub major_frames: Vec<MajorFrame>,
}

/// `partitions/partition`: subjects that share minor frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// `id`.
    pub id: u32,
    /// `name`.
    pub name: String,
    /// `cpu`.
    pub cpu: u32,
    /// `group`: its scheduling groups.
    pub groups: Vec<SchedulingGroup>,
}

/// `partition/group`: subjects of which one runs at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulingGroup {
    /// `id` (a subject's `schedGroupId`).
    pub id: u32,
    /// `subject`: indices in [`System::subjects`].
    pub subjects: Vec<usize>,
}

/// `majorFrame`: one round of the plan, per CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MajorFrame {
    /// `cpu`: each CPU's minor frames.
    pub cpus: Vec<CpuFrames>,
}

/// `majorFrame/cpu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuFrames {
    /// `id`.
    pub cpu: u32,
    /// `minorFrame`, in order.
    pub minor_frames: Vec<MinorFrame>,
}

/// `minorFrame`: a partition runs for some ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinorFrame {
    /// `partition`: index in [`Scheduling::partitions`].
    pub partition: usize,
    /// `ticks`.
    pub ticks: u64,
}

/// Why a subject of a system cannot be run or viewed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemError {
    /// No subject has this name; the known ones follow.
    UnknownSubject(String, Vec<String>),
    /// The subject has PCI devices, which the testbed cannot give it.
    Devices(String, String),
    /// The view is not one Muen's toolchain could give.
    View(String, ViewError),
}

impl fmt::Display for SystemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemError::UnknownSubject(name, known) => write!(
                f,
                "the system has no subject `{name}`; its subjects: {}",
                known.join(", ")
            ),
            SystemError::Devices(subject, device) => write!(
                f,
                "subject `{subject}` has device `{device}`: devices are not supported"
            ),
            SystemError::View(subject, e) => write!(f, "subject `{subject}`: {e}"),
        }
    }
}

impl std::error::Error for SystemError {}

/// Reads the system policy in `path`.
pub fn load(path: &Path) -> Result<System> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::new(path, format!("cannot read the system policy: {e}")))?;
    read(&text, path)
}

/// Reads the system policy `text`; `file` names it in errors.
pub fn read(text: &str, file: &Path) -> Result<System> {
    // roxmltree skips a byte order mark itself; this keeps positions right either way.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = Document::parse(text).map_err(|e| {
        let pos = e.pos();
        SpecError::at_position(
            file,
            (pos.row, pos.col),
            format!("not well-formed XML: {e}"),
        )
    })?;
    SystemReader {
        r: Reader { doc: &doc, file },
    }
    .system()
}

/// Where a physical region name points while reading.
enum RegionRef<'a> {
    /// A subject memory region: index in `System::regions`.
    Subject(usize),
    /// A kernel or system region, with its type.
    Other(&'a str),
}

struct SystemReader<'a, 'input> {
    r: Reader<'a, 'input>,
}

impl<'a, 'input> SystemReader<'a, 'input> {
    fn system(&self) -> Result<System> {
        let r = &self.r;
        let root = r.doc.root_element();
        match root.tag_name().name() {
            "system" => {}
            "component" | "library" => {
                return Err(r.error(
                    root,
                    "this is a component specification, not a system policy (expected \
                     Muen's format B, e.g. pipeline.sh's OUT/policy_b.xml)",
                ))
            }
            _ => {
                return Err(r.error(
                    root,
                    "expected a Muen system policy in format B (<system>, as mucfgalloc \
                     writes it)",
                ))
            }
        }
        let child = |tag: &str| elements(root).find(|c| c.has_tag_name(tag));
        for source_only in ["channels", "components"] {
            if let Some(c) = child(source_only) {
                return Err(r.error(
                    c,
                    "this is a system policy in Muen's source format; the testbed reads \
                     format B (mucfgalloc's output, e.g. pipeline.sh's OUT/policy_b.xml)",
                ));
            }
        }
        let need =
            |tag: &str| child(tag).ok_or_else(|| r.error(root, format!("<{tag}> is missing")));
        let (generation, tsc) = self.processor(need("hardware")?)?;
        let (regions, refs) = self.memory(need("memory")?)?;
        let (events, event_index) = self.events(need("events")?)?;
        let subjects_node = need("subjects")?;
        let mut subjects = Vec::new();
        for s in elements(subjects_node) {
            r.expect(s, "subject")?;
            subjects.push(self.subject(s, &regions, &refs, &event_index)?);
        }
        for (i, s) in subjects.iter().enumerate() {
            if let Some(j) = subjects[..i].iter().position(|o| o.name == s.name) {
                let node = elements(subjects_node).nth(i).unwrap_or(subjects_node);
                return Err(r.error(
                    node,
                    format!("subject `{}` is defined twice (also #{})", s.name, j + 1),
                ));
            }
        }
        let scheduling = self.scheduling(need("scheduling")?, &subjects)?;
        Ok(System {
            generation,
            tsc,
            regions,
            events,
            subjects,
            scheduling,
        })
    }

    fn processor(&self, hardware: Node) -> Result<(Generation, TscRate)> {
        let r = &self.r;
        let processor = elements(hardware)
            .find(|c| c.has_tag_name("processor"))
            .ok_or_else(|| r.error(hardware, "<processor> is missing"))?;
        let (generation, node, attribute) = match processor.attribute("speed") {
            Some(_) => (Generation::V2026_01, processor, "speed"),
            None => {
                let x86 = elements(processor)
                    .find(|c| c.has_tag_name("x86_64"))
                    .ok_or_else(|| {
                        r.error(
                            processor,
                            "neither `speed` (2026-01 tools) nor <x86_64 tscFrequency> \
                             (2026-04 tools) gives the TSC rate",
                        )
                    })?;
                (Generation::V2026_04, x86, "tscFrequency")
            }
        };
        let khz: u32 = r.sized(node, attribute)?;
        let tsc = TscRate::from_khz(khz)
            .ok_or_else(|| r.error(node, format!("`{attribute}` must not be 0")))?;
        Ok((generation, tsc))
    }

    #[allow(clippy::type_complexity)]
    fn memory(
        &self,
        node: Node<'a, 'input>,
    ) -> Result<(Vec<PhysicalRegion>, HashMap<&'a str, RegionRef<'a>>)> {
        let r = &self.r;
        let mut regions = Vec::new();
        let mut refs = HashMap::new();
        let mut hash_refs = Vec::new();
        for m in elements(node) {
            r.expect(m, "memory")?;
            let name = r.attr(m, "name")?;
            if m.attribute("physicalAddress").is_none() {
                return Err(r.error(
                    m,
                    format!(
                        "memory region `{name}` has no physicalAddress: this is format A \
                         (mucfgexpand's output); the testbed reads format B (mucfgalloc's)"
                    ),
                ));
            }
            let address = PhysAddr::new(r.number(m, "physicalAddress")?);
            let size = r.number(m, "size")?;
            let kind_name = r.attr(m, "type")?;
            let entry = match MemoryKind::from_policy_name(kind_name) {
                Some(kind) => {
                    let (content, hash) = r.content(m)?;
                    let hash = match hash {
                        Some(Hash::Sha256(d)) => Some(d),
                        Some(Hash::Ref(other)) => {
                            hash_refs.push((regions.len(), other, m));
                            None
                        }
                        Some(Hash::Omitted) | None => None,
                    };
                    regions.push(PhysicalRegion {
                        name: name.to_string(),
                        address,
                        size,
                        kind,
                        content,
                        hash,
                    });
                    RegionRef::Subject(regions.len() - 1)
                }
                None => RegionRef::Other(kind_name),
            };
            if refs.insert(name, entry).is_some() {
                return Err(r.error(m, format!("memory region `{name}` is defined twice")));
            }
        }
        // Before mucfgmemhashes the referenced region has no digest yet: neither has
        // the referring one (mugensinfo then writes none).
        for (i, other, m) in hash_refs {
            regions[i].hash = match refs.get(other.as_str()) {
                Some(RegionRef::Subject(j)) => regions[*j].hash,
                _ => {
                    return Err(r.error(
                        m,
                        format!("<hashRef memory=\"{other}\">: no such subject memory region"),
                    ))
                }
            };
        }
        Ok((regions, refs))
    }

    #[allow(clippy::type_complexity)]
    fn events(
        &self,
        node: Node<'a, 'input>,
    ) -> Result<(Vec<PhysicalEvent>, HashMap<&'a str, usize>)> {
        let r = &self.r;
        let mut events = Vec::new();
        let mut index = HashMap::new();
        for e in elements(node) {
            r.expect(e, "event")?;
            let name = r.attr(e, "name")?;
            let mode = r.attr(e, "mode")?;
            let mode = EventMode::from_policy_name(mode)
                .ok_or_else(|| r.error(e, format!("unknown event mode `{mode}`")))?;
            if index.insert(name, events.len()).is_some() {
                return Err(r.error(e, format!("event `{name}` is defined twice")));
            }
            events.push(PhysicalEvent {
                name: name.to_string(),
                mode,
            });
        }
        Ok((events, index))
    }

    fn subject(
        &self,
        s: Node<'a, 'input>,
        regions: &[PhysicalRegion],
        refs: &HashMap<&'a str, RegionRef<'a>>,
        event_index: &HashMap<&'a str, usize>,
    ) -> Result<Subject> {
        let r = &self.r;
        let mut subject = Subject {
            name: r.attr(s, "name")?.to_string(),
            cpu: r.sized(s, "cpu")?,
            global_id: r.sized(s, "globalId")?,
            sched_group: r.sized(s, "schedGroupId")?,
            vcpu: Vcpu::default(),
            mappings: Vec::new(),
            devices: Vec::new(),
            vmx_exits: Vec::new(),
            vmcalls: Vec::new(),
            targets: Vec::new(),
        };
        let physical_event = |e: Node| -> Result<usize> {
            let name = r.attr(e, "physical")?;
            event_index
                .get(name)
                .copied()
                .ok_or_else(|| r.error(e, format!("physical event `{name}` is not defined")))
        };
        for c in elements(s) {
            match c.tag_name().name() {
                "vcpu" => subject.vcpu = r.vcpu(c)?,
                "memory" => {
                    for m in elements(c) {
                        r.expect(m, "memory")?;
                        let physical = r.attr(m, "physical")?;
                        let region = match refs.get(physical) {
                            Some(RegionRef::Subject(i)) => *i,
                            Some(RegionRef::Other(kind)) => {
                                return Err(r.error(
                                    m,
                                    format!(
                                        "maps physical region `{physical}` of type `{kind}`, \
                                         which is not subject memory"
                                    ),
                                ))
                            }
                            None => {
                                return Err(r.error(
                                    m,
                                    format!("physical region `{physical}` is not defined"),
                                ))
                            }
                        };
                        let address = VirtAddr::new(r.number(m, "virtualAddress")?);
                        if address.checked_add(regions[region].size).is_none() {
                            return Err(r.error(m, "the mapping wraps around"));
                        }
                        subject.mappings.push(SubjectMapping {
                            logical: r.attr(m, "logical")?.to_string(),
                            region,
                            address,
                            writable: r.boolean(m, "writable")?,
                            executable: r.boolean(m, "executable")?,
                        });
                    }
                }
                "devices" => {
                    for d in elements(c) {
                        r.expect(d, "device")?;
                        subject.devices.push(r.attr(d, "logical")?.to_string());
                    }
                }
                "events" => {
                    for part in elements(c) {
                        match part.tag_name().name() {
                            "source" => {
                                for group in elements(part) {
                                    r.expect(group, "group")?;
                                    let list = match r.attr(group, "name")? {
                                        "vmcall" => &mut subject.vmcalls,
                                        "vmx_exit" => &mut subject.vmx_exits,
                                        // Other architectures' exception groups.
                                        _ => continue,
                                    };
                                    for e in elements(group) {
                                        r.expect(e, "event")?;
                                        let id = r.number(e, "id")?;
                                        let id = u8::try_from(id)
                                            .ok()
                                            .filter(|n| *n <= muen_sinfo::EVENT_NUMBER_MAX)
                                            .ok_or_else(|| {
                                                r.error(e, "source event ids are 0 to 63")
                                            })?;
                                        list.push(LinkedSourceEvent {
                                            event: SourceEvent {
                                                logical: r.attr(e, "logical")?.to_string(),
                                                id,
                                                action: r.source_action(e)?,
                                            },
                                            physical: physical_event(e)?,
                                        });
                                    }
                                }
                            }
                            "target" => {
                                for e in elements(part) {
                                    r.expect(e, "event")?;
                                    subject.targets.push(LinkedTargetEvent {
                                        event: TargetEvent {
                                            logical: r.attr(e, "logical")?.to_string(),
                                            id: match e.attribute("id") {
                                                None => None,
                                                Some(_) => Some(r.number(e, "id")?),
                                            },
                                            action: r.target_action(e)?,
                                        },
                                        physical: physical_event(e)?,
                                    });
                                }
                            }
                            _ => return Err(r.error(part, "unexpected element")),
                        }
                    }
                }
                // `bootparams`, and whatever else a subject carries that running a
                // native subject does not need.
                _ => {}
            }
        }
        Ok(subject)
    }

    fn scheduling(&self, node: Node, subjects: &[Subject]) -> Result<Scheduling> {
        let r = &self.r;
        let mut scheduling = Scheduling {
            tick_rate_hz: r.number(node, "tickRate")?,
            partitions: Vec::new(),
            major_frames: Vec::new(),
        };
        if scheduling.tick_rate_hz == 0 {
            return Err(r.error(node, "`tickRate` must not be 0"));
        }
        for c in elements(node) {
            match c.tag_name().name() {
                "partitions" => {
                    for p in elements(c) {
                        r.expect(p, "partition")?;
                        let mut partition = Partition {
                            id: r.sized(p, "id")?,
                            name: r.attr(p, "name")?.to_string(),
                            cpu: r.sized(p, "cpu")?,
                            groups: Vec::new(),
                        };
                        for g in elements(p) {
                            r.expect(g, "group")?;
                            let mut group = SchedulingGroup {
                                id: r.sized(g, "id")?,
                                subjects: Vec::new(),
                            };
                            for s in elements(g) {
                                r.expect(s, "subject")?;
                                let name = r.attr(s, "name")?;
                                let i = subjects.iter().position(|x| x.name == name).ok_or_else(
                                    || r.error(s, format!("subject `{name}` is not defined")),
                                )?;
                                group.subjects.push(i);
                            }
                            partition.groups.push(group);
                        }
                        scheduling.partitions.push(partition);
                    }
                }
                "majorFrame" => {
                    let mut major = MajorFrame { cpus: Vec::new() };
                    for cpu in elements(c).filter(|n| n.has_tag_name("cpu")) {
                        let mut frames = CpuFrames {
                            cpu: r.sized(cpu, "id")?,
                            minor_frames: Vec::new(),
                        };
                        for m in elements(cpu) {
                            r.expect(m, "minorFrame")?;
                            let name = r.attr(m, "partition")?;
                            let partition = scheduling
                                .partitions
                                .iter()
                                .position(|p| p.name == name)
                                .ok_or_else(|| {
                                    r.error(m, format!("partition `{name}` is not defined"))
                                })?;
                            frames.minor_frames.push(MinorFrame {
                                partition,
                                ticks: r.number(m, "ticks")?,
                            });
                        }
                        major.cpus.push(frames);
                    }
                    scheduling.major_frames.push(major);
                }
                _ => return Err(r.error(c, "unexpected element")),
            }
        }
        Ok(scheduling)
    }
}

/// Who maps one region of a subject, besides the subject itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionLink {
    /// The physical region: index in [`System::regions`].
    pub region: usize,
    /// The other subjects mapping it, in subject order.
    pub sharers: Vec<Sharer>,
}

/// Another subject's mapping of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sharer {
    /// Index in [`System::subjects`].
    pub subject: usize,
    /// Index in that subject's [`Subject::mappings`].
    pub mapping: usize,
    /// Whether it may write the region (a channel's writer).
    pub writable: bool,
}

/// Where a vmcall event of a subject goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRoute {
    /// The physical event: index in [`System::events`].
    pub physical: usize,
    /// Its mode.
    pub mode: EventMode,
    /// A kernel event's action (the source event's action child).
    pub action: Option<SourceAction>,
    /// The subjects it reaches, with what happens there.
    pub targets: Vec<EventTarget>,
}

/// One receiver of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTarget {
    /// Index in [`System::subjects`].
    pub subject: usize,
    /// Index in that subject's [`Subject::targets`].
    pub target: usize,
    /// What happens to it: a vector, a reset, or nothing.
    pub action: Option<TargetAction>,
}

/// A subject's place in the scheduling plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectSchedule {
    /// Its partition: index in [`Scheduling::partitions`] (`None`: not scheduled).
    pub partition: Option<usize>,
    /// Ticks per second.
    pub tick_rate_hz: u64,
    /// For each major frame: its length in ticks on the subject's CPU and the
    /// partition's minor frames in it, as (start tick, ticks).
    pub major_frames: Vec<(u64, Vec<(u64, u64)>)>,
}

/// What running a subject needs besides its view. Every list that has one entry per
/// mapping or per event is in the view's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectWiring {
    /// The subject: index in [`System::subjects`].
    pub subject: usize,
    /// Per mapping of the view: the physical region and who else maps it.
    pub regions: Vec<RegionLink>,
    /// Per vmcall event of the view: where it goes.
    pub events: Vec<EventRoute>,
    /// What `HLT` does (VM exit 12's source event action; `None`: no event for it).
    pub hlt: Option<SourceAction>,
    /// Its place in the scheduling plan.
    pub schedule: SubjectSchedule,
}

/// VMX exit reason of `HLT`.
pub const EXIT_REASON_HLT: u8 = 12;

impl System {
    /// The index of subject `name`, or an error listing the subjects.
    pub fn subject_index(&self, name: &str) -> std::result::Result<usize, SystemError> {
        self.subjects
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| {
                SystemError::UnknownSubject(
                    name.to_string(),
                    self.subjects.iter().map(|s| s.name.clone()).collect(),
                )
            })
    }

    /// The view of subject `subject` (its index), as `mugensinfo` describes it in the
    /// subject's page (module documentation).
    ///
    /// Roles and origins are not in a policy; they follow from the region: a
    /// `subject_channel` mapped writable is a writer, read-only a reader, anything else
    /// memory; `debuglog` and `time_info` channels come from libmudebuglog and
    /// libmutime, `sinfo`, `scheduling_info` and `timed_event` from the toolchain (by
    /// the names and kinds those libraries and the toolchain give them), the rest from
    /// the component. Registers: RIP, RSP and the other general-purpose registers the
    /// policy sets to a value other than 0 (policy B lists all of them).
    pub fn view(&self, subject: usize) -> std::result::Result<SubjectView, SystemError> {
        let s = &self.subjects[subject];
        if let Some(d) = s.devices.first() {
            return Err(SystemError::Devices(s.name.clone(), d.clone()));
        }
        let mappings = s
            .mappings
            .iter()
            .map(|m| {
                let p = &self.regions[m.region];
                let role = match (p.kind, m.writable) {
                    (MemoryKind::SubjectChannel, true) => Role::Writer,
                    (MemoryKind::SubjectChannel, false) => Role::Reader,
                    _ => Role::Memory,
                };
                let origin = match (m.logical.as_str(), p.kind) {
                    (names::DEBUGLOG, MemoryKind::SubjectChannel) => {
                        Origin::Library(Library::Debuglog)
                    }
                    (names::TIME_INFO, MemoryKind::SubjectChannel) => {
                        Origin::Library(Library::Time)
                    }
                    (names::SINFO, MemoryKind::SubjectInfo)
                    | (names::SCHEDULING_INFO, MemoryKind::SubjectSchedulingInfo)
                    | (names::TIMED_EVENT, MemoryKind::SubjectTimedEvent) => Origin::Toolchain,
                    _ => Origin::Component,
                };
                Mapping {
                    name: m.logical.clone(),
                    region: Region {
                        address: m.address,
                        size: p.size,
                    },
                    writable: m.writable,
                    executable: m.executable,
                    kind: p.kind,
                    content: p.content.clone(),
                    hash: p.hash,
                    role,
                    origin,
                }
            })
            .collect();
        let number = |name: &str, number| NamedNumber {
            name: name.to_string(),
            number,
        };
        let mut registers = s.vcpu.registers.clone();
        registers.others.retain(|_, value| *value != 0);
        let view = SubjectView {
            name: s.name.clone(),
            mappings,
            events: s
                .vmcalls
                .iter()
                .map(|e| number(&e.event.logical, e.event.id))
                .collect(),
            vectors: s
                .targets
                .iter()
                .filter_map(|e| match e.event.action {
                    Some(TargetAction::InjectInterrupt { vector }) => {
                        Some(number(&e.event.logical, vector))
                    }
                    _ => None,
                })
                .collect(),
            registers,
            simd_exceptions: s.vcpu.simd_exceptions(),
        };
        view.check()
            .map_err(|e| SystemError::View(s.name.clone(), e))?;
        Ok(view)
    }

    /// The subjects other than `subject` that map physical region `region`.
    pub fn sharers(&self, region: usize, subject: usize) -> Vec<Sharer> {
        let mut out = Vec::new();
        for (i, s) in self.subjects.iter().enumerate() {
            if i == subject {
                continue;
            }
            for (j, m) in s.mappings.iter().enumerate() {
                if m.region == region {
                    out.push(Sharer {
                        subject: i,
                        mapping: j,
                        writable: m.writable,
                    });
                }
            }
        }
        out
    }

    /// Where physical event `physical` goes when a subject triggers it with source
    /// event `source`.
    pub fn route(&self, source: &LinkedSourceEvent) -> EventRoute {
        let mut targets = Vec::new();
        for (i, s) in self.subjects.iter().enumerate() {
            for (j, t) in s.targets.iter().enumerate() {
                if t.physical == source.physical {
                    targets.push(EventTarget {
                        subject: i,
                        target: j,
                        action: t.event.action,
                    });
                }
            }
        }
        EventRoute {
            physical: source.physical,
            mode: self.events[source.physical].mode,
            action: source.event.action,
            targets,
        }
    }

    /// Subject `subject`'s place in the scheduling plan.
    pub fn schedule(&self, subject: usize) -> SubjectSchedule {
        let plan = &self.scheduling;
        let partition = plan
            .partitions
            .iter()
            .position(|p| p.groups.iter().any(|g| g.subjects.contains(&subject)));
        let cpu = self.subjects[subject].cpu;
        let major_frames = plan
            .major_frames
            .iter()
            .map(|major| {
                let frames = major
                    .cpus
                    .iter()
                    .find(|c| c.cpu == cpu)
                    .map_or(&[][..], |c| &c.minor_frames[..]);
                let mut start: u64 = 0;
                let mut own = Vec::new();
                for f in frames {
                    if Some(f.partition) == partition {
                        own.push((start, f.ticks));
                    }
                    start = start.saturating_add(f.ticks);
                }
                (start, own)
            })
            .collect();
        SubjectSchedule {
            partition,
            tick_rate_hz: plan.tick_rate_hz,
            major_frames,
        }
    }

    /// What running subject `subject` needs besides its view.
    pub fn wiring(&self, subject: usize) -> SubjectWiring {
        let s = &self.subjects[subject];
        SubjectWiring {
            subject,
            regions: s
                .mappings
                .iter()
                .map(|m| RegionLink {
                    region: m.region,
                    sharers: self.sharers(m.region, subject),
                })
                .collect(),
            events: s.vmcalls.iter().map(|e| self.route(e)).collect(),
            hlt: s
                .vmx_exits
                .iter()
                .find(|e| e.event.id == EXIT_REASON_HLT)
                .and_then(|e| e.event.action),
            schedule: self.schedule(subject),
        }
    }
}
