//! The subject's world: the view Muen's toolchain would give it, and the devices the
//! testbed's peers serve in it.
//!
//! The view ([`SubjectView`], from `muen-spec`) lists every region the subject maps in
//! sinfo order, the events it may trigger and the vectors it receives; [`crate::policy`]
//! makes it from a component specification. [`World::new`] adds what only the testbed
//! needs: every region must lie in the lower canonical half (a hosted subject maps it
//! there), and the devices are found by the endpoint names of `docs/conventions.md`
//! and must be complete. (Any page-sized channel holds at least one element of
//! muennet or muenblock, so sizes need no check here.)

use std::fmt;

use muen_abi::layout;
use muen_abi::names::Role;
use muen_spec::{SubjectView, ViewError};

/// A network device: frames in through `<dev>|in`, out through `<dev>|out`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetDevice {
    /// Device name.
    pub name: String,
    /// Index of `<dev>|in` (the testbed writes, the subject reads) in the view's
    /// mappings.
    pub input: usize,
    /// Index of `<dev>|out` (the subject writes, the testbed reads).
    pub output: usize,
    /// Vector injected after the testbed wrote frames (`None`: the subject polls).
    pub input_vector: Option<u8>,
    /// Event the subject triggers after writing frames (`None`: it never signals, as
    /// Solo5's Muen bindings; the network bridge then polls `<dev>|out`).
    pub output_event: Option<u8>,
}

/// A block device: requests in `<dev>|req`, responses in `<dev>|resp`, data in
/// `<dev>|data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDevice {
    /// Device name.
    pub name: String,
    /// Index of `<dev>|req` (the subject writes) in the view's mappings.
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
    /// What the subject sees: its mappings, events, vectors and registers.
    pub view: SubjectView,
    /// Network devices, in the order of their `|in` channels.
    pub net: Vec<NetDevice>,
    /// Block devices, in the order of their `|req` channels.
    pub block: Vec<BlockDevice>,
}

/// Why a view is not a world the testbed can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorldError {
    /// The view is not one Muen's toolchain could give.
    View(ViewError),
    /// A region lies outside the lower canonical half.
    OutOfReach(String),
    /// A device channel is missing or has the wrong role.
    Device(String),
}

impl fmt::Display for WorldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorldError::View(e) => e.fmt(f),
            WorldError::OutOfReach(n) => write!(
                f,
                "region `{n}` must end below {:#x}, the lower canonical half a hosted \
                 subject can map",
                ADDRESS_LIMIT.as_u64()
            ),
            WorldError::Device(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for WorldError {}

impl From<ViewError> for WorldError {
    fn from(e: ViewError) -> Self {
        WorldError::View(e)
    }
}

/// The highest address (exclusive) a hosted subject can map: the lower canonical half.
pub const ADDRESS_LIMIT: muen_abi::VirtAddr = layout::DEVICE_LIMIT;

impl World {
    /// Checks `view` and finds its devices.
    pub fn new(view: SubjectView) -> Result<World, WorldError> {
        Self::serving(view, |_| true)
    }

    /// Checks `view` and finds its devices among the mappings for which `served`
    /// holds (the indices of the mappings whose other end the testbed's peers play; in
    /// a system run, a channel another subject of the run maps is no device).
    pub fn serving(view: SubjectView, served: impl Fn(usize) -> bool) -> Result<World, WorldError> {
        view.check()?;
        for m in &view.mappings {
            if m.region.end().is_none_or(|end| end > ADDRESS_LIMIT) {
                return Err(WorldError::OutOfReach(m.name.clone()));
            }
        }
        let mut world = World {
            view,
            net: Vec::new(),
            block: Vec::new(),
        };
        world.find_devices(served)?;
        Ok(world)
    }

    /// The subject's name.
    pub fn name(&self) -> &str {
        &self.view.name
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
    fn find_devices(&mut self, served: impl Fn(usize) -> bool) -> Result<(), WorldError> {
        let mut net_names = Vec::new();
        let mut block_names = Vec::new();
        for (i, m) in self.view.mappings.iter().enumerate() {
            if !served(i) {
                continue;
            }
            if let Some((dev, end)) = m.name.rsplit_once('|') {
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
        let view = &self.view;
        for dev in net_names {
            let input = endpoint(view, dev, "in", Role::Reader)?;
            let output = endpoint(view, dev, "out", Role::Writer)?;
            self.net.push(NetDevice {
                name: dev.to_string(),
                input,
                output,
                input_vector: view.vector(&view.mappings[input].name),
                output_event: view.event(&view.mappings[output].name),
            });
        }
        for dev in block_names {
            let request = endpoint(view, dev, "req", Role::Writer)?;
            let response = endpoint(view, dev, "resp", Role::Reader)?;
            let data = endpoint(view, dev, "data", Role::Memory)?;
            let req_name = &view.mappings[request].name;
            let request_event = view.event(req_name).ok_or_else(|| no_event(req_name))?;
            if !view.mappings[data].writable {
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
                response_vector: view.vector(&view.mappings[response].name),
            });
        }
        Ok(())
    }
}

fn endpoint(view: &SubjectView, dev: &str, end: &str, role: Role) -> Result<usize, WorldError> {
    let name = format!("{dev}|{end}");
    let Some(i) = view.mapping_index(&name) else {
        return Err(WorldError::Device(format!(
            "device `{dev}` has no `{name}` (see docs/conventions.md for a device's regions)"
        )));
    };
    if view.mappings[i].role != role {
        let want = match role {
            Role::Memory => "plain memory",
            Role::Reader => "a reader channel",
            Role::Writer => "a writer channel",
        };
        return Err(WorldError::Device(format!("`{name}` must be {want}")));
    }
    Ok(i)
}

fn no_event(channel: &str) -> WorldError {
    WorldError::Device(format!(
        "writer channel `{channel}` has no `event`: the testbed's block server would never \
         learn that it was written"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use muen_abi::layout::Region;
    use muen_abi::VirtAddr;
    use muen_spec::{Mapping, NamedNumber, Origin, Registers};

    fn region(address: u64, size: u64) -> Region {
        Region {
            address: VirtAddr::new(address),
            size,
        }
    }

    fn memory(name: &str, address: u64, size: u64) -> Mapping {
        Mapping::memory(name, region(address, size), true)
    }

    fn chan(name: &str, address: u64, size: u64, role: Role) -> Mapping {
        Mapping::channel(name, region(address, size), role, Origin::Component)
    }

    fn num(name: &str, number: u8) -> NamedNumber {
        NamedNumber {
            name: name.into(),
            number,
        }
    }

    fn view(
        mappings: Vec<Mapping>,
        events: Vec<NamedNumber>,
        vectors: Vec<NamedNumber>,
    ) -> SubjectView {
        SubjectView {
            name: "t".into(),
            mappings,
            events,
            vectors,
            registers: Registers::default(),
            simd_exceptions: false,
        }
    }

    fn world(mappings: Vec<Mapping>, events: Vec<NamedNumber>) -> Result<World, WorldError> {
        World::new(view(mappings, events, vec![]))
    }

    #[test]
    fn finds_complete_devices() {
        let w = World::new(view(
            vec![
                chan("n|in", 0x10_0000, 0x10_0000, Role::Reader),
                chan("n|out", 0x20_0000, 0x10_0000, Role::Writer),
                chan("b|req", 0x30_0000, 0x8000, Role::Writer),
                chan("b|resp", 0x31_0000, 0x4000, Role::Reader),
                memory("b|data", 0x40_0000, 0x1000),
            ],
            vec![num("n|out", 2), num("b|req", 3)],
            vec![num("n|in", 33)],
        ))
        .unwrap();
        assert_eq!(
            w.net,
            [NetDevice {
                name: "n".into(),
                input: 0,
                output: 1,
                input_vector: Some(33),
                output_event: Some(2)
            }]
        );
        // Polled, as Solo5 uses them: neither a vector nor an event.
        let polled = world(
            vec![
                chan("n|in", 0x10_0000, 0x10_0000, Role::Reader),
                chan("n|out", 0x20_0000, 0x10_0000, Role::Writer),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(
            (polled.net[0].input_vector, polled.net[0].output_event),
            (None, None)
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
                chan("b|req", 0x30_0000, 0x8000, Role::Writer),
                chan("b|resp", 0x31_0000, 0x4000, Role::Reader),
                memory("b|data", 0x40_0000, 0x1000),
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
        let mut data = memory("b|data", 0x40_0000, 0x1000);
        data.writable = false;
        let e = world(
            vec![
                chan("b|req", 0x30_0000, 0x8000, Role::Writer),
                chan("b|resp", 0x31_0000, 0x4000, Role::Reader),
                data,
            ],
            vec![num("b|req", 3)],
        );
        assert!(matches!(e, Err(WorldError::Device(m)) if m.contains("must be writable")));
    }

    #[test]
    fn regions_must_lie_in_the_lower_half_and_the_view_must_hold() {
        assert_eq!(
            world(vec![memory("a", 0x8000_0000_0000, 0x1000)], vec![]),
            Err(WorldError::OutOfReach("a".into()))
        );
        assert_eq!(
            world(vec![memory("a", 0x7fff_ffff_f000, 0x1000)], vec![]).map(|_| ()),
            Ok(())
        );
        assert_eq!(
            world(
                vec![memory("a", 0x1000, 0x2000), memory("b", 0x2000, 0x1000)],
                vec![]
            ),
            Err(WorldError::View(ViewError::Overlap("a".into(), "b".into())))
        );
        let e = world(vec![memory("a", 0x8000_0000_0000, 0x1000)], vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "region `a` must end below 0x800000000000, the lower canonical half a hosted \
             subject can map"
        );
    }
}
