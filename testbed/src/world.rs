//! The subject's world: what Muen's toolchain and kernel give it, resolved from its
//! component specification.
//!
//! A [`World`] lists every region the subject maps (in the order Muen's toolchain adds
//! them to the subject, which is the order of the sinfo page), the events it may
//! trigger, the vectors it receives, and the devices the testbed's peers serve. It is
//! built by [`crate::policy`] and checked by [`World::new`]: names fit the sinfo page,
//! regions are page-aligned and do not overlap, numbers are unique and in range, and
//! every device is complete. (Any page-sized channel holds at least one element of
//! muennet or muenblock, so sizes need no check here.)
//!
//! # Order (`sinfo.md` §9.1)
//!
//! Muen's expander (`mucfgexpand`) appends mappings to the subject in this order, and
//! `mugensinfo` writes one resource per mapping in that order:
//!
//! 1. the component's `<provides><memory>` (without `subject_binary` regions in hosted
//!    mode, where Linux loads the executable; with them in QEMU mode),
//! 2. its `<requires><memory>`,
//! 3. its channels, then the channels of its libraries (`debuglog`, `time_info`),
//! 4. the toolchain's pages `sinfo`, `scheduling_info`, `timed_event`;
//!
//! then the vmcall events (the component's, then one per writer channel with an
//! `event`), then the vectors (the component's target events with `inject_interrupt`,
//! then one per reader channel with a `vector`).

use std::fmt;

use muen_abi::layout;
use muen_abi::names::NAME_MAX;
use muen_sinfo::MemoryKind;

/// How the subject maps a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Plain memory.
    Memory,
    /// A channel the subject reads (a peer writes it).
    Reader,
    /// A channel the subject writes (a peer reads it).
    Writer,
}

/// What a region initially holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Nothing defined (the testbed's memory file starts zeroed).
    Uninitialized,
    /// Every byte is this value.
    Fill(u8),
    /// A file's bytes (only the toolchain's `sinfo` page in hosted mode).
    File,
    /// The subject's ELF image from this file offset on (its `subject_binary` regions,
    /// QEMU mode only).
    Image {
        /// Offset in the ELF file.
        offset: u64,
    },
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

/// One region of the subject's address space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Logical name (the sinfo resource name).
    pub name: String,
    /// Subject virtual address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
    /// The subject may write it.
    pub writable: bool,
    /// The subject may execute it.
    pub executable: bool,
    /// Memory kind, as the sinfo page states it.
    pub kind: MemoryKind,
    /// Initial content.
    pub content: Content,
    /// SHA-256 of the initial content, if the policy states one.
    pub hash: Option<[u8; 32]>,
    /// Memory, or which end of a channel the subject is.
    pub role: Role,
    /// Who adds it.
    pub origin: Origin,
}

impl Region {
    /// A channel region of the component or a library (kind `subject_channel`).
    pub fn channel(name: &str, address: u64, size: u64, role: Role, origin: Origin) -> Region {
        Region {
            name: name.to_string(),
            address,
            size,
            writable: role == Role::Writer,
            executable: false,
            kind: MemoryKind::SubjectChannel,
            content: Content::Uninitialized,
            hash: None,
            role,
            origin,
        }
    }

    /// The first address past the region (`None` on overflow).
    pub fn end(&self) -> Option<u64> {
        self.address.checked_add(self.size)
    }
}

/// A named event or vector number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Number {
    /// Logical name.
    pub name: String,
    /// The event id (0..=63) or vector (0..=255).
    pub number: u8,
}

/// A Muen library the testbed provides (it plays the library's peer subject).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    /// `libmudebuglog`: the `debuglog` writer channel, read by the testbed's log sink as
    /// Muen's debug server would.
    Debuglog,
    /// `libmutime`: the `time_info` page, published by the testbed as Muen's time
    /// subject would.
    Time,
}

impl Library {
    /// The library's policy name.
    pub fn policy_name(self) -> &'static str {
        match self {
            Library::Debuglog => "libmudebuglog",
            Library::Time => "libmutime",
        }
    }

    /// The library named `name`.
    pub fn from_policy_name(name: &str) -> Option<Library> {
        [Library::Debuglog, Library::Time]
            .into_iter()
            .find(|l| l.policy_name() == name)
    }

    /// The channel the library maps, at the address and size of its Muen
    /// specification (`muen_abi::layout`; the debug log size is the MirageOS
    /// template's `$logchannel_size`).
    pub fn region(self) -> Region {
        match self {
            Library::Debuglog => Region::channel(
                muen_abi::names::DEBUGLOG,
                layout::DEBUGLOG.address.as_u64(),
                layout::DEBUGLOG.size,
                Role::Writer,
                Origin::Library(self),
            ),
            Library::Time => Region::channel(
                muen_abi::names::TIME_INFO,
                layout::TIME_INFO.address.as_u64(),
                layout::TIME_INFO.size,
                Role::Reader,
                Origin::Library(self),
            ),
        }
    }
}

/// The three pages Muen's toolchain adds to every subject, in the order it adds them.
pub fn toolchain_regions() -> [Region; 3] {
    let page = |name: &str, r: layout::Region, writable, kind, content| Region {
        name: name.to_string(),
        address: r.address.as_u64(),
        size: r.size,
        writable,
        executable: false,
        kind,
        content,
        hash: None,
        role: Role::Memory,
        origin: Origin::Toolchain,
    };
    [
        // The sinfo region is file-backed (the toolchain writes `<subject>_sinfo`).
        page(
            muen_abi::names::SINFO,
            layout::SINFO,
            false,
            MemoryKind::SubjectInfo,
            Content::File,
        ),
        page(
            muen_abi::names::SCHEDULING_INFO,
            layout::SCHEDULING_INFO,
            false,
            MemoryKind::SubjectSchedulingInfo,
            Content::Uninitialized,
        ),
        page(
            muen_abi::names::TIMED_EVENT,
            layout::TIMED_EVENT,
            true,
            MemoryKind::SubjectTimedEvent,
            Content::Uninitialized,
        ),
    ]
}

/// A network device: frames in through `<dev>|in`, out through `<dev>|out`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetDevice {
    /// Device name.
    pub name: String,
    /// Index of `<dev>|in` (the testbed writes, the subject reads) in
    /// [`World::regions`].
    pub input: usize,
    /// Index of `<dev>|out` (the subject writes, the testbed reads).
    pub output: usize,
    /// Vector injected after the testbed wrote frames (`None`: the subject polls).
    pub input_vector: Option<u8>,
    /// Event the subject triggers after writing frames.
    pub output_event: u8,
}

/// A block device: requests in `<dev>|req`, responses in `<dev>|resp`, data in
/// `<dev>|data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDevice {
    /// Device name.
    pub name: String,
    /// Index of `<dev>|req` (the subject writes).
    pub request: usize,
    /// Index of `<dev>|resp` (the testbed writes).
    pub response: usize,
    /// Index of `<dev>|data` (both write).
    pub data: usize,
    /// Event the subject triggers after writing requests.
    pub request_event: u8,
    /// Vector injected after the testbed wrote responses (`None`: the subject polls).
    pub response_vector: Option<u8>,
}

/// The subject's world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    /// Subject name (the component name).
    pub name: String,
    /// Initial instruction pointer from the policy (0 if none).
    pub rip: u64,
    /// Initial stack pointer from the policy (0 if none).
    pub rsp: u64,
    /// Every region, in sinfo order.
    pub regions: Vec<Region>,
    /// vmcall events, in sinfo order.
    pub events: Vec<Number>,
    /// Vectors, in sinfo order.
    pub vectors: Vec<Number>,
    /// Network devices, in the order of their `|in` channels.
    pub net: Vec<NetDevice>,
    /// Block devices, in the order of their `|req` channels.
    pub block: Vec<BlockDevice>,
    /// The policy sets CR4.OSXMMEXCPT (`<OSSupportSIMDExceptions>`); QEMU mode's boot
    /// stage sets it.
    pub simd_exceptions: bool,
}

/// Why a set of resources is not a world the testbed can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorldError {
    /// A name does not fit the sinfo page (63 bytes) or is empty.
    BadName(String),
    /// A region is empty, not page-aligned, wraps around or lies outside the lower
    /// canonical half.
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
    /// A device channel is missing or has the wrong role.
    Device(String),
}

impl fmt::Display for WorldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorldError::BadName(n) => write!(
                f,
                "name \"{n}\" must have 1 to {NAME_MAX} bytes to fit the sinfo page"
            ),
            WorldError::BadRegion(n) => write!(
                f,
                "region `{n}` must be non-empty, page-aligned and below 0x8000_0000_0000"
            ),
            WorldError::Overlap(a, b) => write!(f, "regions `{a}` and `{b}` overlap"),
            WorldError::DuplicateName(n) => write!(f, "`{n}` is declared twice"),
            WorldError::EventRange(n, id) => {
                write!(f, "event `{n}` has id {id}; vmcall events are 0 to 63")
            }
            WorldError::DuplicateEvent(id, a, b) => {
                write!(f, "events `{a}` and `{b}` both have id {id}")
            }
            WorldError::DuplicateVector(v, a, b) => {
                write!(f, "vectors `{a}` and `{b}` are both {v}")
            }
            WorldError::Device(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for WorldError {}

/// The highest address (exclusive) a hosted subject can map: the lower canonical half.
const ADDRESS_LIMIT: u64 = layout::DEVICE_LIMIT.as_u64();

impl World {
    /// Checks the resources and finds the devices. `regions`, `events` and `vectors`
    /// must already be in sinfo order.
    pub fn new(
        name: String,
        (rip, rsp): (u64, u64),
        regions: Vec<Region>,
        events: Vec<Number>,
        vectors: Vec<Number>,
    ) -> Result<World, WorldError> {
        check_name(&name)?;
        for r in &regions {
            check_name(&r.name)?;
            let page = layout::PAGE_SIZE;
            let fits = r.end().is_some_and(|end| end <= ADDRESS_LIMIT);
            if r.size == 0 || r.address % page != 0 || r.size % page != 0 || !fits {
                return Err(WorldError::BadRegion(r.name.clone()));
            }
        }
        let mut sorted: Vec<&Region> = regions.iter().collect();
        sorted.sort_by_key(|r| r.address);
        for pair in sorted.windows(2) {
            // Ends exist: checked above.
            if pair[0].end().is_none_or(|end| end > pair[1].address) {
                return Err(WorldError::Overlap(
                    pair[0].name.clone(),
                    pair[1].name.clone(),
                ));
            }
        }
        unique(regions.iter().map(|r| &r.name))?;
        unique(events.iter().map(|e| &e.name))?;
        unique(vectors.iter().map(|v| &v.name))?;
        for e in &events {
            check_name(&e.name)?;
            if e.number > muen_sinfo::EVENT_NUMBER_MAX {
                return Err(WorldError::EventRange(e.name.clone(), e.number));
            }
        }
        for v in &vectors {
            check_name(&v.name)?;
        }
        for (i, a) in events.iter().enumerate() {
            if let Some(b) = events[..i].iter().find(|b| b.number == a.number) {
                return Err(WorldError::DuplicateEvent(
                    a.number,
                    b.name.clone(),
                    a.name.clone(),
                ));
            }
        }
        for (i, a) in vectors.iter().enumerate() {
            if let Some(b) = vectors[..i].iter().find(|b| b.number == a.number) {
                return Err(WorldError::DuplicateVector(
                    a.number,
                    b.name.clone(),
                    a.name.clone(),
                ));
            }
        }
        let mut world = World {
            name,
            rip,
            rsp,
            regions,
            events,
            vectors,
            net: Vec::new(),
            block: Vec::new(),
            simd_exceptions: false,
        };
        world.find_devices()?;
        Ok(world)
    }

    /// The region named `name`.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// The index of the region named `name`.
    pub fn region_index(&self, name: &str) -> Option<usize> {
        self.regions.iter().position(|r| r.name == name)
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

    /// Whether the subject depends on `library`.
    pub fn has_library(&self, library: Library) -> bool {
        self.regions
            .iter()
            .any(|r| r.origin == Origin::Library(library))
    }

    /// The network device named `name`.
    pub fn net_device(&self, name: &str) -> Option<&NetDevice> {
        self.net.iter().find(|d| d.name == name)
    }

    /// The block device named `name`.
    pub fn block_device(&self, name: &str) -> Option<&BlockDevice> {
        self.block.iter().find(|d| d.name == name)
    }

    /// Finds the devices by the endpoint names of `docs/conventions.md`: a channel
    /// named `<dev>|in`, `|out`, `|req`, `|resp` or `|data` belongs to device `<dev>`,
    /// and every device must be complete.
    fn find_devices(&mut self) -> Result<(), WorldError> {
        let mut net_names = Vec::new();
        let mut block_names = Vec::new();
        for r in &self.regions {
            if let Some((dev, end)) = r.name.rsplit_once('|') {
                let list = match end {
                    "in" | "out" => &mut net_names,
                    "req" | "resp" | "data" => &mut block_names,
                    _ => continue,
                };
                if !list.contains(&dev) {
                    list.push(dev);
                }
            }
        }
        for dev in net_names {
            let input = self.endpoint(dev, "in", Role::Reader)?;
            let output = self.endpoint(dev, "out", Role::Writer)?;
            let out_name = &self.regions[output].name;
            let output_event = self.event(out_name).ok_or_else(|| no_event(out_name))?;
            self.net.push(NetDevice {
                name: dev.to_string(),
                input,
                output,
                input_vector: self.vector(&self.regions[input].name),
                output_event,
            });
        }
        for dev in block_names {
            let request = self.endpoint(dev, "req", Role::Writer)?;
            let response = self.endpoint(dev, "resp", Role::Reader)?;
            let data = self.endpoint(dev, "data", Role::Memory)?;
            let req_name = &self.regions[request].name;
            let request_event = self.event(req_name).ok_or_else(|| no_event(req_name))?;
            if !self.regions[data].writable {
                return Err(WorldError::Device(format!(
                    "`{dev}|data` must be writable: the block server returns data in it"
                )));
            }
            self.block.push(BlockDevice {
                name: dev.to_string(),
                request,
                response,
                data,
                request_event,
                response_vector: self.vector(&self.regions[response].name),
            });
        }
        Ok(())
    }

    fn endpoint(&self, dev: &str, end: &str, role: Role) -> Result<usize, WorldError> {
        let name = format!("{dev}|{end}");
        let Some(i) = self.region_index(&name) else {
            return Err(WorldError::Device(format!(
                "device `{dev}` has no `{name}` (see docs/conventions.md for a device's regions)"
            )));
        };
        if self.regions[i].role != role {
            let want = match role {
                Role::Memory => "plain memory",
                Role::Reader => "a reader channel",
                Role::Writer => "a writer channel",
            };
            return Err(WorldError::Device(format!("`{name}` must be {want}")));
        }
        Ok(i)
    }
}

fn no_event(channel: &str) -> WorldError {
    WorldError::Device(format!(
        "writer channel `{channel}` has no `event`: the testbed's peer would never learn \
         that it was written"
    ))
}

fn check_name(name: &str) -> Result<(), WorldError> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(WorldError::BadName(name.to_string()));
    }
    Ok(())
}

fn unique<'a>(names: impl Iterator<Item = &'a String>) -> Result<(), WorldError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n.as_str()) {
            return Err(WorldError::DuplicateName(n.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(name: &str, address: u64, size: u64) -> Region {
        Region {
            name: name.into(),
            address,
            size,
            writable: true,
            executable: false,
            kind: MemoryKind::Subject,
            content: Content::Uninitialized,
            hash: None,
            role: Role::Memory,
            origin: Origin::Component,
        }
    }

    fn chan(name: &str, address: u64, size: u64, role: Role) -> Region {
        Region::channel(name, address, size, role, Origin::Component)
    }

    fn num(name: &str, number: u8) -> Number {
        Number {
            name: name.into(),
            number,
        }
    }

    fn world(regions: Vec<Region>, events: Vec<Number>) -> Result<World, WorldError> {
        World::new("t".into(), (0, 0), regions, events, vec![])
    }

    #[test]
    fn finds_complete_devices() {
        let w = World::new(
            "t".into(),
            (0, 0),
            vec![
                chan("n|in", 0x10_0000, 0x10_0000, Role::Reader),
                chan("n|out", 0x20_0000, 0x10_0000, Role::Writer),
                chan("b|req", 0x30_0000, 0x8000, Role::Writer),
                chan("b|resp", 0x31_0000, 0x4000, Role::Reader),
                memory("b|data", 0x40_0000, 0x1000),
            ],
            vec![num("n|out", 2), num("b|req", 3)],
            vec![num("n|in", 33)],
        )
        .unwrap();
        assert_eq!(
            w.net,
            [NetDevice {
                name: "n".into(),
                input: 0,
                output: 1,
                input_vector: Some(33),
                output_event: 2
            }]
        );
        assert_eq!(w.block[0].name, "b");
        assert_eq!(
            (w.block[0].request, w.block[0].response, w.block[0].data),
            (2, 3, 4)
        );
        assert_eq!(w.block[0].response_vector, None);
    }

    #[test]
    fn rejects_incomplete_devices() {
        let e = world(
            vec![chan("n|in", 0x10_0000, 0x10_0000, Role::Reader)],
            vec![],
        );
        assert!(matches!(e, Err(WorldError::Device(m)) if m.contains("`n|out`")));
        let e = world(
            vec![
                chan("n|in", 0x10_0000, 0x10_0000, Role::Reader),
                chan("n|out", 0x20_0000, 0x10_0000, Role::Writer),
            ],
            vec![],
        );
        assert!(matches!(e, Err(WorldError::Device(m)) if m.contains("no `event`")));
        let e = world(
            vec![
                chan("n|in", 0x10_0000, 0x10_0000, Role::Writer),
                chan("n|out", 0x20_0000, 0x10_0000, Role::Writer),
            ],
            vec![num("n|out", 2)],
        );
        assert!(matches!(e, Err(WorldError::Device(m)) if m.contains("reader channel")));
    }

    #[test]
    fn rejects_bad_regions_and_numbers() {
        assert_eq!(
            world(
                vec![memory("a", 0x1000, 0x2000), memory("b", 0x2000, 0x1000)],
                vec![]
            ),
            Err(WorldError::Overlap("a".into(), "b".into()))
        );
        assert_eq!(
            world(vec![memory("a", 0x1800, 0x1000)], vec![]),
            Err(WorldError::BadRegion("a".into()))
        );
        assert_eq!(
            world(vec![memory("a", 0x1000, 0)], vec![]),
            Err(WorldError::BadRegion("a".into()))
        );
        assert_eq!(
            world(vec![memory("a", 0x8000_0000_0000, 0x1000)], vec![]),
            Err(WorldError::BadRegion("a".into()))
        );
        assert_eq!(
            world(vec![memory("a", u64::MAX - 0xfff, 0x1000)], vec![]),
            Err(WorldError::BadRegion("a".into()))
        );
        assert_eq!(
            world(
                vec![memory("a", 0x1000, 0x1000), memory("a", 0x3000, 0x1000)],
                vec![]
            ),
            Err(WorldError::DuplicateName("a".into()))
        );
        assert_eq!(
            world(vec![memory(&"x".repeat(64), 0x1000, 0x1000)], vec![]),
            Err(WorldError::BadName("x".repeat(64)))
        );
        assert_eq!(
            world(vec![], vec![num("a", 64)]),
            Err(WorldError::EventRange("a".into(), 64))
        );
        assert_eq!(
            world(vec![], vec![num("a", 1), num("b", 1)]),
            Err(WorldError::DuplicateEvent(1, "a".into(), "b".into()))
        );
        assert_eq!(
            World::new(
                "t".into(),
                (0, 0),
                vec![],
                vec![],
                vec![num("a", 40), num("b", 40)]
            ),
            Err(WorldError::DuplicateVector(40, "a".into(), "b".into()))
        );
    }

    #[test]
    fn libraries_and_toolchain_pages_use_the_shared_layout() {
        let d = Library::Debuglog.region();
        assert_eq!(
            (d.address, d.size, d.role),
            (0xf_fff0_0000, 0x2_0000, Role::Writer)
        );
        let t = Library::Time.region();
        assert_eq!(
            (t.address, t.size, t.role),
            (0xf_ffd0_0000, 0x1000, Role::Reader)
        );
        let [s, sched, timed] = toolchain_regions();
        assert_eq!(
            (s.name.as_str(), s.address, s.size),
            ("sinfo", 0xe_0000_0000, 0x8000)
        );
        assert_eq!(sched.address, 0xe_0000_8000);
        assert!(timed.writable && !sched.writable && !s.writable);
        assert_eq!(Library::from_policy_name("libmutime"), Some(Library::Time));
        assert_eq!(Library::from_policy_name("libfoo"), None);
    }
}
