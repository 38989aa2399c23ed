//! The subject's view: what Muen's toolchain makes of a component for one subject.
//!
//! A [`SubjectView`] lists every region the subject maps, in the order of its sinfo
//! page, the vmcall events it may trigger, the vectors it receives, and its initial
//! registers. It does not say how it was made: [`expand`] makes it from a
//! [`ComponentSpec`] as Muen's toolchain would, and anything else may build one and
//! [`SubjectView::check`] it.
//!
//! # What the toolchain adds, and in which order
//!
//! Observed in Muen's pipeline (`mucfgexpand`, `mugensinfo`; both tool generations
//! give the same pages) and followed by [`expand`]:
//!
//! 1. The libraries the component depends on are merged into it first, libmutime
//!    before libmudebuglog (the order of the tools' hash map of library names, not
//!    `<depends>` order). Each library element goes right after the component's last
//!    element with the same tag, or last if there is none: libmutime's `<reader>`
//!    `time_info` after the last reader, libmudebuglog's `<writer>` `debuglog` after
//!    the last writer. (echo: `service0|in, time_info, service0|out, debuglog`.)
//! 2. The mappings, one sinfo memory resource each: `<provides><memory>` in document
//!    order, `<requires><memory>`, the channels (after the merge; zero-filled, as
//!    `mucfgexpand` fills every physical channel with pattern 0), then the toolchain's
//!    pages `sinfo`, `scheduling_info`, `timed_event`.
//! 3. The vmcall events: the component's source events, then one per writer channel
//!    with an `event`.
//! 4. The vectors: the component's target events with `<inject_interrupt>`, then one
//!    per reader channel with a `vector`.

use std::collections::HashSet;
use std::fmt;

use muen_abi::layout::{self, Region, PAGE_SIZE};
use muen_abi::names::{self, Role, NAME_MAX};
use muen_sinfo::MemoryKind;

use crate::model::{ChannelEnd, ComponentSpec, Content, Hash, Registers, TargetAction};
use crate::Channel;

/// The subject's view of its world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectView {
    /// The subject's name (the component name).
    pub name: String,
    /// Every region the subject maps, in sinfo order.
    pub mappings: Vec<Mapping>,
    /// The vmcall events, in sinfo order.
    pub events: Vec<NamedNumber>,
    /// The vectors, in sinfo order.
    pub vectors: Vec<NamedNumber>,
    /// The initial registers the specification sets.
    pub registers: Registers,
    /// CR4.OSXMMEXCPT is set (`<OSSupportSIMDExceptions>`).
    pub simd_exceptions: bool,
}

/// One region of the subject's address space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The logical name (the sinfo resource name).
    pub name: String,
    /// Virtual address and size.
    pub region: Region,
    /// The subject may write it.
    pub writable: bool,
    /// The subject may execute it.
    pub executable: bool,
    /// Its memory kind, as the sinfo page states it.
    pub kind: MemoryKind,
    /// Its initial content.
    pub content: Content,
    /// SHA-256 of its initial content, if known.
    pub hash: Option<[u8; 32]>,
    /// Plain memory, or which end of a channel the subject is.
    pub role: Role,
    /// Who adds it.
    pub origin: Origin,
}

impl Mapping {
    /// A channel of the component or a library (kind `subject_channel`, writable for
    /// the writer, zero-filled: Muen's `mucfgexpand` gives every physical channel
    /// `<fill pattern="16#00#"/>`, and `mugensinfo` states it as fill, pattern 0).
    pub fn channel(name: &str, region: Region, role: Role, origin: Origin) -> Mapping {
        Mapping {
            name: name.to_string(),
            region,
            writable: role == Role::Writer,
            executable: false,
            kind: MemoryKind::SubjectChannel,
            content: Content::Fill(0),
            hash: None,
            role,
            origin,
        }
    }

    /// Plain memory of the component (kind `subject`, not executable, no content).
    pub fn memory(name: &str, region: Region, writable: bool) -> Mapping {
        Mapping {
            name: name.to_string(),
            region,
            writable,
            executable: false,
            kind: MemoryKind::Subject,
            content: Content::Unspecified,
            hash: None,
            role: Role::Memory,
            origin: Origin::Component,
        }
    }
}

/// Who adds a region to the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The component specification.
    Component,
    /// A library the component depends on.
    Library(Library),
    /// Muen's toolchain (every subject has these pages).
    Toolchain,
}

/// A named event id or vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedNumber {
    /// The logical name.
    pub name: String,
    /// The event id (0..=63) or vector.
    pub number: u8,
}

/// A Muen library whose resources [`expand`] knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    /// `libmutime`: the `time_info` reader channel (the time subject writes it).
    Time,
    /// `libmudebuglog`: the `debuglog` writer channel (the debug server reads it).
    Debuglog,
}

impl Library {
    /// The known libraries, in the order Muen's tools merge them into a component.
    pub const ALL: [Library; 2] = [Library::Time, Library::Debuglog];

    /// The library's name in the policy.
    pub fn policy_name(self) -> &'static str {
        match self {
            Library::Time => "libmutime",
            Library::Debuglog => "libmudebuglog",
        }
    }

    /// The library named `name`.
    pub fn from_policy_name(name: &str) -> Option<Library> {
        Library::ALL.into_iter().find(|l| l.policy_name() == name)
    }

    /// The channel the library requires, at the address and size of its Muen
    /// specification (`muen_abi::layout`; the debug log's size is the MirageOS
    /// template's `$logchannel_size`).
    pub fn channel(self) -> Channel {
        match self {
            Library::Time => Channel {
                logical: names::TIME_INFO.to_string(),
                region: layout::TIME_INFO,
                end: ChannelEnd::Reader { vector: None },
            },
            Library::Debuglog => Channel {
                logical: names::DEBUGLOG.to_string(),
                region: layout::DEBUGLOG,
                end: ChannelEnd::Writer { event: None },
            },
        }
    }
}

/// The three pages Muen's toolchain adds to every subject `subject`, in the order it
/// adds them.
pub fn toolchain_mappings(subject: &str) -> [Mapping; 3] {
    let page = |name: &str, region: Region, writable, kind, content| Mapping {
        name: name.to_string(),
        region,
        writable,
        executable: false,
        kind,
        content,
        hash: None,
        role: Role::Memory,
        origin: Origin::Toolchain,
    };
    [
        // The toolchain writes the page into the file `<subject>_sinfo`.
        page(
            names::SINFO,
            layout::SINFO,
            false,
            MemoryKind::SubjectInfo,
            Content::File {
                filename: format!("{subject}_sinfo"),
                offset: None,
            },
        ),
        page(
            names::SCHEDULING_INFO,
            layout::SCHEDULING_INFO,
            false,
            MemoryKind::SubjectSchedulingInfo,
            Content::Unspecified,
        ),
        page(
            names::TIMED_EVENT,
            layout::TIMED_EVENT,
            true,
            MemoryKind::SubjectTimedEvent,
            Content::Unspecified,
        ),
    ]
}

/// Why a view is not one Muen's toolchain could give a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewError {
    /// A name does not fit the sinfo page (63 bytes) or is empty.
    BadName(String),
    /// A region is empty, not page-aligned or wraps around.
    BadRegion(String),
    /// Two regions share addresses.
    Overlap(String, String),
    /// Two regions, events or vectors have the same name.
    DuplicateName(String),
    /// An event id above 63.
    EventRange(String, u8),
    /// Two events with the same id.
    DuplicateEvent(u8, String, String),
    /// Two vectors with the same number.
    DuplicateVector(u8, String, String),
    /// The component depends on a library [`expand`] does not know.
    UnknownLibrary(String),
    /// The specification uses something [`expand`] does not lay out (devices, arrays).
    Unsupported(&'static str),
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::BadName(n) => write!(
                f,
                "name \"{n}\" must have 1 to {NAME_MAX} bytes to fit the sinfo page"
            ),
            ViewError::BadRegion(n) => write!(
                f,
                "region `{n}` must be non-empty, page-aligned and must not wrap around"
            ),
            ViewError::Overlap(a, b) => write!(f, "regions `{a}` and `{b}` overlap"),
            ViewError::DuplicateName(n) => write!(f, "`{n}` is declared twice"),
            ViewError::EventRange(n, id) => {
                write!(f, "event `{n}` has id {id}; vmcall events are 0 to 63")
            }
            ViewError::DuplicateEvent(id, a, b) => {
                write!(f, "events `{a}` and `{b}` both have id {id}")
            }
            ViewError::DuplicateVector(v, a, b) => {
                write!(f, "vectors `{a}` and `{b}` are both {v}")
            }
            ViewError::UnknownLibrary(name) => write!(
                f,
                "library `{name}` is not known (known: {})",
                Library::ALL.map(Library::policy_name).join(", ")
            ),
            ViewError::Unsupported(what) => write!(f, "{what} are not supported"),
        }
    }
}

impl std::error::Error for ViewError {}

/// The view Muen's toolchain gives the subject of `spec` (same name), or why it could
/// not (the module documentation has the rules).
pub fn expand(spec: &ComponentSpec) -> Result<SubjectView, ViewError> {
    if !spec.memory_arrays.is_empty() {
        return Err(ViewError::Unsupported("memory arrays"));
    }
    if !spec.channel_arrays.is_empty() {
        return Err(ViewError::Unsupported("channel arrays"));
    }
    if !spec.devices.is_empty() {
        return Err(ViewError::Unsupported("devices"));
    }
    let mut libraries = Vec::new();
    for name in &spec.depends {
        let library = Library::from_policy_name(name)
            .ok_or_else(|| ViewError::UnknownLibrary(name.clone()))?;
        if !libraries.contains(&library) {
            libraries.push(library);
        }
    }
    libraries.sort_by_key(|l| Library::ALL.iter().position(|k| k == l));

    // The libraries' channels, each after the last channel of the same tag.
    let mut channels: Vec<(Channel, Origin)> = spec
        .channels
        .iter()
        .map(|c| (c.clone(), Origin::Component))
        .collect();
    for library in libraries {
        let channel = library.channel();
        let at = channels
            .iter()
            .rposition(|(c, _)| c.role() == channel.role())
            .map_or(channels.len(), |i| i + 1);
        channels.insert(at, (channel, Origin::Library(library)));
    }

    let digest_of = |name: &str| {
        spec.provides
            .iter()
            .find(|m| m.logical == name)
            .and_then(|m| match m.hash {
                Some(Hash::Sha256(d)) => Some(d),
                _ => None,
            })
    };
    let mut mappings: Vec<Mapping> = spec
        .provides
        .iter()
        .map(|m| Mapping {
            name: m.logical.clone(),
            region: m.region,
            writable: m.writable,
            executable: m.executable,
            kind: m.kind,
            content: m.content.clone(),
            hash: match &m.hash {
                Some(Hash::Sha256(d)) => Some(*d),
                Some(Hash::Ref(other)) => digest_of(other),
                Some(Hash::Omitted) | None => None,
            },
            role: Role::Memory,
            origin: Origin::Component,
        })
        .collect();
    mappings.extend(spec.memory.iter().map(|m| Mapping {
        executable: m.executable,
        ..Mapping::memory(&m.logical, m.region, m.writable)
    }));
    mappings.extend(
        channels
            .iter()
            .map(|(c, origin)| Mapping::channel(&c.logical, c.region, c.role(), *origin)),
    );
    mappings.extend(toolchain_mappings(&spec.name));

    let number = |name: &str, number| NamedNumber {
        name: name.to_string(),
        number,
    };
    let mut events: Vec<NamedNumber> = spec
        .events
        .source
        .iter()
        .map(|e| number(&e.logical, e.id))
        .collect();
    let mut vectors: Vec<NamedNumber> = spec
        .events
        .target
        .iter()
        .filter_map(|e| match e.action {
            Some(TargetAction::InjectInterrupt { vector }) => Some(number(&e.logical, vector)),
            _ => None,
        })
        .collect();
    for (c, _) in &channels {
        match c.end {
            ChannelEnd::Writer { event: Some(e) } => events.push(number(&c.logical, e)),
            ChannelEnd::Reader { vector: Some(v) } => vectors.push(number(&c.logical, v)),
            _ => {}
        }
    }

    let view = SubjectView {
        name: spec.name.clone(),
        mappings,
        events,
        vectors,
        registers: spec.vcpu.registers.clone(),
        simd_exceptions: spec.vcpu.simd_exceptions(),
    };
    view.check()?;
    Ok(view)
}

impl SubjectView {
    /// Checks what Muen's toolchain guarantees: names fit the sinfo page, regions are
    /// non-empty, page-aligned and do not overlap, names are unique among the regions,
    /// the events and the vectors, event ids are at most 63 and unique, vectors unique.
    pub fn check(&self) -> Result<(), ViewError> {
        check_name(&self.name)?;
        for m in &self.mappings {
            check_name(&m.name)?;
            let r = m.region;
            if r.size == 0
                || !r.address.is_page_aligned()
                || r.size % PAGE_SIZE != 0
                || r.end().is_none()
            {
                return Err(ViewError::BadRegion(m.name.clone()));
            }
        }
        let mut sorted: Vec<&Mapping> = self.mappings.iter().collect();
        sorted.sort_by_key(|m| m.region.address);
        for pair in sorted.windows(2) {
            if pair[0].region.overlaps(&pair[1].region) {
                return Err(ViewError::Overlap(
                    pair[0].name.clone(),
                    pair[1].name.clone(),
                ));
            }
        }
        unique(self.mappings.iter().map(|m| &m.name))?;
        unique(self.events.iter().map(|e| &e.name))?;
        unique(self.vectors.iter().map(|v| &v.name))?;
        for e in &self.events {
            check_name(&e.name)?;
            if e.number > muen_sinfo::EVENT_NUMBER_MAX {
                return Err(ViewError::EventRange(e.name.clone(), e.number));
            }
        }
        for v in &self.vectors {
            check_name(&v.name)?;
        }
        for (i, a) in self.events.iter().enumerate() {
            if let Some(b) = self.events[..i].iter().find(|b| b.number == a.number) {
                return Err(ViewError::DuplicateEvent(
                    a.number,
                    b.name.clone(),
                    a.name.clone(),
                ));
            }
        }
        for (i, a) in self.vectors.iter().enumerate() {
            if let Some(b) = self.vectors[..i].iter().find(|b| b.number == a.number) {
                return Err(ViewError::DuplicateVector(
                    a.number,
                    b.name.clone(),
                    a.name.clone(),
                ));
            }
        }
        Ok(())
    }

    /// The mapping named `name`.
    pub fn mapping(&self, name: &str) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.name == name)
    }

    /// The index of the mapping named `name`.
    pub fn mapping_index(&self, name: &str) -> Option<usize> {
        self.mappings.iter().position(|m| m.name == name)
    }

    /// The number of event `name`.
    pub fn event(&self, name: &str) -> Option<u8> {
        self.events
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.number)
    }

    /// The number of vector `name`.
    pub fn vector(&self, name: &str) -> Option<u8> {
        self.vectors
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.number)
    }

    /// Whether the subject maps the resources of `library`.
    pub fn has_library(&self, library: Library) -> bool {
        self.mappings
            .iter()
            .any(|m| m.origin == Origin::Library(library))
    }
}

fn check_name(name: &str) -> Result<(), ViewError> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(ViewError::BadName(name.to_string()));
    }
    Ok(())
}

fn unique<'a>(names: impl Iterator<Item = &'a String>) -> Result<(), ViewError> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n.as_str()) {
            return Err(ViewError::DuplicateName(n.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RequiredMemory, SourceEvent, TargetEvent};
    use muen_abi::VirtAddr;

    fn region(address: u64, size: u64) -> Region {
        Region {
            address: VirtAddr::new(address),
            size,
        }
    }

    fn memory(name: &str, address: u64, size: u64) -> Mapping {
        Mapping::memory(name, region(address, size), true)
    }

    fn num(name: &str, number: u8) -> NamedNumber {
        NamedNumber {
            name: name.into(),
            number,
        }
    }

    fn view(mappings: Vec<Mapping>, events: Vec<NamedNumber>) -> SubjectView {
        SubjectView {
            name: "t".into(),
            mappings,
            events,
            vectors: vec![],
            registers: Registers::default(),
            simd_exceptions: false,
        }
    }

    fn checked(mappings: Vec<Mapping>, events: Vec<NamedNumber>) -> Result<(), ViewError> {
        view(mappings, events).check()
    }

    #[test]
    fn rejects_bad_regions_and_numbers() {
        assert_eq!(
            checked(
                vec![memory("a", 0x1000, 0x2000), memory("b", 0x2000, 0x1000)],
                vec![]
            ),
            Err(ViewError::Overlap("a".into(), "b".into()))
        );
        for (address, size) in [(0x1800, 0x1000), (0x1000, 0), (0x1000, 0x1800)] {
            assert_eq!(
                checked(vec![memory("a", address, size)], vec![]),
                Err(ViewError::BadRegion("a".into()))
            );
        }
        assert_eq!(
            checked(vec![memory("a", u64::MAX - 0xfff, 0x1000)], vec![]),
            Err(ViewError::BadRegion("a".into()))
        );
        assert_eq!(
            checked(
                vec![memory("a", 0x1000, 0x1000), memory("a", 0x3000, 0x1000)],
                vec![]
            ),
            Err(ViewError::DuplicateName("a".into()))
        );
        assert_eq!(
            checked(vec![memory(&"x".repeat(64), 0x1000, 0x1000)], vec![]),
            Err(ViewError::BadName("x".repeat(64)))
        );
        assert_eq!(
            checked(vec![], vec![num("a", 64)]),
            Err(ViewError::EventRange("a".into(), 64))
        );
        assert_eq!(
            checked(vec![], vec![num("a", 1), num("b", 1)]),
            Err(ViewError::DuplicateEvent(1, "a".into(), "b".into()))
        );
        let mut v = view(vec![], vec![]);
        v.vectors = vec![num("a", 40), num("b", 40)];
        assert_eq!(
            v.check(),
            Err(ViewError::DuplicateVector(40, "a".into(), "b".into()))
        );
        // An event and a vector may share a name (`timer`).
        v.vectors = vec![num("timer", 32)];
        v.events = vec![num("timer", 1)];
        assert_eq!(v.check(), Ok(()));
    }

    #[test]
    fn libraries_and_toolchain_pages_use_the_shared_layout() {
        let d = Library::Debuglog.channel();
        assert_eq!(
            (d.region, d.role()),
            (region(0xf_fff0_0000, 0x2_0000), Role::Writer)
        );
        let t = Library::Time.channel();
        assert_eq!(
            (t.region, t.role()),
            (region(0xf_ffd0_0000, 0x1000), Role::Reader)
        );
        let [s, sched, timed] = toolchain_mappings("echo");
        assert_eq!(
            (s.name.as_str(), s.region),
            ("sinfo", region(0xe_0000_0000, 0x8000))
        );
        assert_eq!(
            s.content,
            Content::File {
                filename: "echo_sinfo".into(),
                offset: None
            }
        );
        assert_eq!(sched.region.address, VirtAddr::new(0xe_0000_8000));
        assert!(timed.writable && !sched.writable && !s.writable);
        assert_eq!(Library::from_policy_name("libmutime"), Some(Library::Time));
        assert_eq!(Library::from_policy_name("libfoo"), None);
    }

    fn spec(channels: &[(&str, ChannelEnd)], depends: &[&str]) -> ComponentSpec {
        ComponentSpec {
            name: "c".into(),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            channels: channels
                .iter()
                .enumerate()
                .map(|(i, &(name, end))| Channel {
                    logical: name.into(),
                    region: region(0x10_0000_0000 + 0x10_0000 * i as u64, 0x1000),
                    end,
                })
                .collect(),
            ..ComponentSpec::default()
        }
    }

    fn order(spec: &ComponentSpec) -> Vec<String> {
        expand(spec)
            .unwrap()
            .mappings
            .into_iter()
            .map(|m| m.name)
            .take_while(|n| n != "sinfo")
            .collect()
    }

    const READER: ChannelEnd = ChannelEnd::Reader { vector: None };
    const WRITER: ChannelEnd = ChannelEnd::Writer { event: None };

    /// The orders mugensinfo gave for hello, echo, blockstore and Muen's `example`
    /// (`/work/notes/pipeline.md` §4.6): not `<depends>` order.
    #[test]
    fn libraries_merge_as_muens_toolchain_merges_them() {
        let both = ["libmudebuglog", "libmutime"];
        assert_eq!(order(&spec(&[], &both)), ["time_info", "debuglog"]);
        let reversed = ["libmutime", "libmudebuglog"];
        assert_eq!(order(&spec(&[], &reversed)), ["time_info", "debuglog"]);
        assert_eq!(
            order(&spec(&[("in", READER), ("out", WRITER)], &both)),
            ["in", "time_info", "out", "debuglog"]
        );
        assert_eq!(
            order(&spec(&[("req", WRITER), ("resp", READER)], &both)),
            ["req", "debuglog", "resp", "time_info"]
        );
        assert_eq!(
            order(&spec(
                &[
                    ("example_request", READER),
                    ("example_response", WRITER),
                    ("blockdev_request2", WRITER),
                    ("blockdev_response2", READER)
                ],
                &["libmudebuglog"]
            )),
            [
                "example_request",
                "example_response",
                "blockdev_request2",
                "debuglog",
                "blockdev_response2"
            ]
        );
        // A library named twice is merged once.
        assert_eq!(
            order(&spec(&[], &["libmutime", "libmutime"])),
            ["time_info"]
        );
    }

    #[test]
    fn the_view_orders_memory_then_channels_then_pages_and_numbers() {
        let mut s = spec(
            &[
                ("in", ChannelEnd::Reader { vector: Some(40) }),
                ("out", ChannelEnd::Writer { event: Some(7) }),
                ("poll", ChannelEnd::Reader { vector: None }),
            ],
            &["libmudebuglog"],
        );
        s.memory.push(RequiredMemory {
            logical: "buf".into(),
            region: region(0x2000_0000, 0x1000),
            writable: true,
            executable: true,
        });
        s.provides.push(crate::model::ProvidedMemory {
            logical: "blob".into(),
            region: region(0x3000_0000, 0x1000),
            writable: false,
            executable: false,
            kind: MemoryKind::SubjectBinary,
            content: Content::Fill(7),
            hash: Some(Hash::Ref("code".into())),
        });
        s.provides.push(crate::model::ProvidedMemory {
            logical: "code".into(),
            region: region(0x3000_1000, 0x1000),
            writable: false,
            executable: true,
            kind: MemoryKind::SubjectBinary,
            content: Content::Unspecified,
            hash: Some(Hash::Sha256([9; 32])),
        });
        s.events.source.push(SourceEvent {
            logical: "exit".into(),
            id: 0,
            action: None,
        });
        s.events.target.push(TargetEvent {
            logical: "reset".into(),
            id: None,
            action: Some(TargetAction::Reset),
        });
        s.events.target.push(TargetEvent {
            logical: "tick".into(),
            id: None,
            action: Some(TargetAction::InjectInterrupt { vector: 32 }),
        });
        let v = expand(&s).unwrap();
        let names: Vec<&str> = v.mappings.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "blob",
                "code",
                "buf",
                "in",
                "out",
                "debuglog",
                "poll",
                "sinfo",
                "scheduling_info",
                "timed_event"
            ]
        );
        // A hash reference takes the named region's digest.
        assert_eq!(v.mappings[0].hash, Some([9; 32]));
        assert_eq!(v.mappings[0].content, Content::Fill(7));
        assert!(v.mappings[2].executable && v.mappings[2].kind == MemoryKind::Subject);
        // Every channel, the component's and the libraries', is zero-filled as Muen's
        // toolchain fills every physical channel.
        for m in &v.mappings[3..7] {
            assert_eq!(
                (m.kind, &m.content),
                (MemoryKind::SubjectChannel, &Content::Fill(0))
            );
        }
        let events: Vec<_> = v
            .events
            .iter()
            .map(|e| (e.name.as_str(), e.number))
            .collect();
        assert_eq!(events, [("exit", 0), ("out", 7)]);
        let vectors: Vec<_> = v
            .vectors
            .iter()
            .map(|e| (e.name.as_str(), e.number))
            .collect();
        assert_eq!(vectors, [("tick", 32), ("in", 40)]);
        assert!(v.has_library(Library::Debuglog) && !v.has_library(Library::Time));
    }

    #[test]
    fn what_expand_cannot_lay_out_is_an_error() {
        let unknown = spec(&[], &["libmucontrol"]);
        assert_eq!(
            expand(&unknown),
            Err(ViewError::UnknownLibrary("libmucontrol".into()))
        );
        assert_eq!(
            expand(&unknown).unwrap_err().to_string(),
            "library `libmucontrol` is not known (known: libmutime, libmudebuglog)"
        );
        let mut s = spec(&[], &[]);
        s.devices.push(crate::model::Device {
            logical: "d".into(),
            irqs: vec![],
            memory: vec![],
            io_ports: vec![],
        });
        assert_eq!(expand(&s), Err(ViewError::Unsupported("devices")));
    }
}
