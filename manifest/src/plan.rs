//! The plan: every resource of an app with its concrete address, size and number.
//!
//! Muen's component schema accepts only resolved values, so the addresses, event ids
//! and vectors are fixed here by one rule (`docs/conventions.md`):
//!
//! - `ram` at [`layout::RAM_BASE`], the stack pointer at [`layout::stack_top`];
//! - device regions in allocation order (network devices by name, then block devices by
//!   name; per device its endpoints in [`Endpoint::of`] order), then the app channels
//!   by name, placed by [`DeviceAllocator`] from [`layout::DEVICE_BASE`] with a guard
//!   page after each;
//! - events `exit` = 0, `timer` = 1, then writer channels in allocation order; vectors
//!   `timer` = 32, then reader channels in allocation order ([`NumberAllocator`]). An
//!   app channel without an event (`event = false`) takes no number.

use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::error::NameKind;
use crate::{App, Direction};
use muen_abi::layout::{self, DeviceAllocator, PlacementError, Region};
use muen_abi::names::{self, DeviceKind, Endpoint, NameError, Role};
use muen_abi::numbers::{self, NumberAllocator};
use muen_abi::VirtAddr;

/// An app resolved into concrete addresses, sizes, event ids and vectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The component name.
    pub name: String,
    /// The `ram` region.
    pub ram: Region,
    /// The initial stack pointer (top of RAM minus 8).
    pub stack_top: VirtAddr,
    /// Every device region, in allocation order (which is also address order).
    pub devices: Vec<DeviceRegion>,
    /// Every app channel, by name, after the devices in address order.
    pub channels: Vec<ChannelRegion>,
}

/// An app channel (`[channel.NAME]`) with its place and numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRegion {
    /// The logical name: the channel's name.
    pub name: String,
    /// Whether the app writes or reads it.
    pub direction: Direction,
    /// Address and size.
    pub region: Region,
    /// Bytes per element.
    pub element_size: u64,
    /// The protocol id.
    pub protocol: u64,
    /// The event the app triggers after writing (an `out` channel with `event`).
    pub event: Option<u8>,
    /// The vector the app receives when the writer signals (an `in` channel with
    /// `event`).
    pub vector: Option<u8>,
}

impl ChannelRegion {
    /// How the app maps it.
    pub const fn role(&self) -> Role {
        self.direction.role()
    }
}

/// One region of a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRegion {
    /// The logical name, e.g. `service0|in`.
    pub name: String,
    /// The device it belongs to.
    pub device: String,
    /// The kind of that device.
    pub kind: DeviceKind,
    /// Which of the device's regions this is.
    pub endpoint: Endpoint,
    /// Address and size.
    pub region: Region,
    /// How the subject maps it.
    pub role: Role,
    /// The event the subject triggers after writing (writer channels).
    pub event: Option<u8>,
    /// The vector the subject receives when the peer has written (reader channels).
    pub vector: Option<u8>,
}

/// Why an app cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// An invalid component or device name.
    Name {
        /// The name.
        name: String,
        /// What it names.
        kind: NameKind,
        /// What is wrong with it.
        error: NameError,
    },
    /// Two devices (or a device and a channel, or two channels) with the same name.
    DuplicateDevice {
        /// The name.
        name: String,
    },
    /// A channel's element does not fit it after the header, or its size is zero.
    ElementSize {
        /// The channel.
        channel: String,
        /// The element size.
        element_size: u64,
        /// The channel size.
        size: u64,
    },
    /// A channel's protocol id is zero.
    ZeroProtocol {
        /// The channel.
        channel: String,
    },
    /// The RAM size is zero, not page-aligned or does not fit below
    /// [`layout::RAM_LIMIT`].
    Ram {
        /// The size.
        size: u64,
    },
    /// A device region cannot be placed.
    Placement {
        /// The region's logical name.
        region: String,
        /// Its size.
        size: u64,
        /// Why.
        error: PlacementError,
    },
    /// A writer channel finds no free event id.
    EventsExhausted {
        /// The channel's logical name.
        region: String,
    },
    /// A reader channel finds no free vector.
    VectorsExhausted {
        /// The channel's logical name.
        region: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Name { name, kind, error } => write!(f, "{kind} name {name:?} {error}"),
            PlanError::DuplicateDevice { name } => {
                write!(f, "device or channel name {name:?} is used more than once")
            }
            PlanError::ElementSize {
                channel,
                element_size,
                size,
            } => write!(
                f,
                "channel `{channel}`: an element of {element_size} bytes does not fit a \
                 channel of {size:#x} bytes after its 64-byte header (or is empty)"
            ),
            PlanError::ZeroProtocol { channel } => {
                write!(f, "channel `{channel}`: the protocol id is 0")
            }
            PlanError::Ram { size } => write!(
                f,
                "RAM size {size:#x} is zero, not a multiple of 4K or larger than {:#x}",
                layout::RAM_MAX
            ),
            PlanError::Placement {
                region,
                size,
                error,
            } => {
                write!(f, "device region `{region}` of size {size:#x} ")?;
                match error {
                    PlacementError::ZeroSize => f.write_str("is empty"),
                    PlacementError::Unaligned => f.write_str("is not a multiple of 4K"),
                    PlacementError::WindowFull => write!(
                        f,
                        "does not fit in the device window {:#x}..{:#x}",
                        layout::DEVICE_BASE,
                        layout::DEVICE_LIMIT
                    ),
                }
            }
            PlanError::EventsExhausted { region } => write!(
                f,
                "too many writer channels: `{region}` finds no free event id (ids {}..={} \
                 serve at most {} writer channels, one per device)",
                numbers::FIRST_CHANNEL_EVENT,
                numbers::EVENT_MAX,
                numbers::MAX_WRITER_CHANNELS
            ),
            PlanError::VectorsExhausted { region } => write!(
                f,
                "too many reader channels: `{region}` finds no free vector (vectors {}..={} \
                 serve at most {} reader channels)",
                numbers::FIRST_CHANNEL_VECTOR,
                numbers::VECTOR_MAX,
                numbers::MAX_READER_CHANNELS
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// A device as the planner sees it: name, kind and its sizes.
struct PlannedDevice<'a> {
    name: &'a str,
    kind: DeviceKind,
    /// Channel size (net) or data buffer size (block).
    size: u64,
}

impl PlannedDevice<'_> {
    fn size_of(&self, endpoint: Endpoint) -> u64 {
        match endpoint {
            Endpoint::NetIn | Endpoint::NetOut | Endpoint::BlockData => self.size,
            Endpoint::BlockRequest => layout::BLOCK_REQUEST_SIZE,
            Endpoint::BlockResponse => layout::BLOCK_RESPONSE_SIZE,
        }
    }
}

impl Plan {
    /// Resolves `app`. Checks names, uniqueness and sizes again, so that an [`App`] built
    /// by hand is held to the same rules as a parsed one.
    pub fn new(app: &App) -> Result<Plan, PlanError> {
        Plan::with_numbers(app, NumberAllocator::new())
    }

    fn with_numbers(app: &App, mut numbers: NumberAllocator) -> Result<Plan, PlanError> {
        names::check_component_name(&app.name).map_err(|error| PlanError::Name {
            name: app.name.clone(),
            kind: NameKind::Component,
            error,
        })?;
        let ram = layout::ram(app.ram).ok_or(PlanError::Ram { size: app.ram })?;

        let mut net: Vec<PlannedDevice<'_>> = app
            .net
            .iter()
            .map(|d| PlannedDevice {
                name: &d.name,
                kind: DeviceKind::Net,
                size: d.channel_size,
            })
            .collect();
        let mut block: Vec<PlannedDevice<'_>> = app
            .block
            .iter()
            .map(|d| PlannedDevice {
                name: &d.name,
                kind: DeviceKind::Block,
                size: d.buffer_size,
            })
            .collect();
        net.sort_by_key(|d| d.name);
        block.sort_by_key(|d| d.name);

        let mut seen: Vec<&str> = Vec::new();
        let mut places = DeviceAllocator::new();
        let mut devices = Vec::new();
        for device in net.iter().chain(block.iter()) {
            names::check_device_name(device.name).map_err(|error| PlanError::Name {
                name: device.name.to_string(),
                kind: NameKind::Device,
                error,
            })?;
            if seen.contains(&device.name) {
                return Err(PlanError::DuplicateDevice {
                    name: device.name.to_string(),
                });
            }
            seen.push(device.name);
            for &endpoint in Endpoint::of(device.kind) {
                // Cannot fail for a checked device name; see `names::DEVICE_NAME_MAX`.
                let name = names::endpoint_name(device.name, endpoint)
                    .ok_or(PlanError::Name {
                        name: device.name.to_string(),
                        kind: NameKind::Device,
                        error: NameError::TooLong {
                            max: names::DEVICE_NAME_MAX,
                        },
                    })?
                    .to_string();
                let size = device.size_of(endpoint);
                let region = places.place(size).map_err(|error| PlanError::Placement {
                    region: name.clone(),
                    size,
                    error,
                })?;
                let role = endpoint.role();
                let event = match role {
                    Role::Writer => {
                        Some(numbers.event().ok_or_else(|| PlanError::EventsExhausted {
                            region: name.clone(),
                        })?)
                    }
                    _ => None,
                };
                let vector = match role {
                    Role::Reader => {
                        Some(
                            numbers
                                .vector()
                                .ok_or_else(|| PlanError::VectorsExhausted {
                                    region: name.clone(),
                                })?,
                        )
                    }
                    _ => None,
                };
                devices.push(DeviceRegion {
                    name,
                    device: device.name.to_string(),
                    kind: device.kind,
                    endpoint,
                    region,
                    role,
                    event,
                    vector,
                });
            }
        }

        let mut channels: Vec<&crate::Channel> = app.channel.iter().collect();
        channels.sort_by_key(|c| c.name.as_str());
        let mut planned_channels = Vec::new();
        for c in channels {
            names::check_channel_name(&c.name).map_err(|error| PlanError::Name {
                name: c.name.clone(),
                kind: NameKind::Channel,
                error,
            })?;
            if seen.contains(&c.name.as_str()) {
                return Err(PlanError::DuplicateDevice {
                    name: c.name.clone(),
                });
            }
            seen.push(&c.name);
            let header = muen_channel::HEADER_SIZE as u64;
            if c.element_size == 0 || c.element_size > c.size.saturating_sub(header) {
                return Err(PlanError::ElementSize {
                    channel: c.name.clone(),
                    element_size: c.element_size,
                    size: c.size,
                });
            }
            if c.protocol == 0 {
                return Err(PlanError::ZeroProtocol {
                    channel: c.name.clone(),
                });
            }
            let region = places.place(c.size).map_err(|error| PlanError::Placement {
                region: c.name.clone(),
                size: c.size,
                error,
            })?;
            let (event, vector) = match (c.direction, c.event) {
                (_, false) => (None, None),
                (Direction::Out, true) => (
                    Some(numbers.event().ok_or_else(|| PlanError::EventsExhausted {
                        region: c.name.clone(),
                    })?),
                    None,
                ),
                (Direction::In, true) => (
                    None,
                    Some(
                        numbers
                            .vector()
                            .ok_or_else(|| PlanError::VectorsExhausted {
                                region: c.name.clone(),
                            })?,
                    ),
                ),
            };
            planned_channels.push(ChannelRegion {
                name: c.name.clone(),
                direction: c.direction,
                region,
                element_size: c.element_size,
                protocol: c.protocol,
                event,
                vector,
            });
        }

        Ok(Plan {
            name: app.name.clone(),
            ram,
            stack_top: layout::stack_top(ram.size),
            devices,
            channels: planned_channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::vec;

    use super::*;
    use crate::{BlockDevice, NetDevice, DEFAULT_RAM};
    use muen_abi::layout::{DEVICE_BASE, DEVICE_LIMIT, GUARD_SIZE, PAGE_SIZE, RAM_BASE};

    fn app(net: &[(&str, u64)], block: &[(&str, u64)]) -> App {
        App {
            name: "test".into(),
            ram: DEFAULT_RAM,
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

    /// (name, address, size, event, vector) of each device region.
    type Summary<'a> = (&'a str, u64, u64, Option<u8>, Option<u8>);

    fn summary(plan: &Plan) -> Vec<Summary<'_>> {
        plan.devices
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.region.address.as_u64(),
                    d.region.size,
                    d.event,
                    d.vector,
                )
            })
            .collect()
    }

    #[test]
    fn no_devices() {
        let plan = Plan::new(&app(&[], &[])).unwrap();
        assert_eq!(
            plan.ram,
            Region {
                address: RAM_BASE,
                size: 64 << 20
            }
        );
        assert_eq!(plan.stack_top, VirtAddr::new(0x4400_0000 - 8));
        assert!(plan.devices.is_empty());
    }

    #[test]
    fn net_then_block_in_name_order_with_guard_pages() {
        // Given out of order on purpose: the plan sorts by name.
        let plan = Plan::new(&app(
            &[("zeta", 0x2000), ("alpha", 0x1000)],
            &[("disk", 0x10_0000)],
        ))
        .unwrap();
        let g = GUARD_SIZE;
        let a = DEVICE_BASE.as_u64();
        let b = a + 0x1000 + g; // alpha|out
        let c = b + 0x1000 + g; // zeta|in
        let d = c + 0x2000 + g; // zeta|out
        let e = d + 0x2000 + g; // disk|req
        let f = e + 0x8000 + g; // disk|resp
        let h = f + 0x4000 + g; // disk|data
        assert_eq!(
            summary(&plan),
            vec![
                ("alpha|in", a, 0x1000, None, Some(33)),
                ("alpha|out", b, 0x1000, Some(2), None),
                ("zeta|in", c, 0x2000, None, Some(34)),
                ("zeta|out", d, 0x2000, Some(3), None),
                ("disk|req", e, 0x8000, Some(4), None),
                ("disk|resp", f, 0x4000, None, Some(35)),
                ("disk|data", h, 0x10_0000, None, None),
            ]
        );
        let roles: Vec<Role> = plan.devices.iter().map(|d| d.role).collect();
        assert_eq!(
            roles,
            vec![
                Role::Reader,
                Role::Writer,
                Role::Reader,
                Role::Writer,
                Role::Writer,
                Role::Reader,
                Role::Memory
            ]
        );
    }

    #[test]
    fn events_run_out_after_62_writer_channels() {
        let names: Vec<String> = (0..63).map(|i| std::format!("n{i:02}")).collect();
        let devices: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 0x1000)).collect();
        let plan = Plan::new(&app(&devices[..62], &[])).unwrap();
        let last = plan.devices.iter().filter_map(|d| d.event).max();
        assert_eq!(last, Some(numbers::EVENT_MAX));
        assert_eq!(
            Plan::new(&app(&devices, &[])),
            Err(PlanError::EventsExhausted {
                region: "n62|out".into()
            })
        );
        // Block request channels draw from the same ids.
        assert_eq!(
            Plan::new(&app(&devices[..62], &[("disk", 0x1000)])),
            Err(PlanError::EventsExhausted {
                region: "disk|req".into()
            })
        );
    }

    #[test]
    fn vectors_run_out() {
        // Every device has as many writers as readers, so events run out first; the
        // vector limit is reached here with vectors already in use.
        let mut numbers = NumberAllocator::new();
        while numbers.vector().is_some() {}
        assert_eq!(
            Plan::with_numbers(&app(&[("net", 0x1000)], &[]), numbers),
            Err(PlanError::VectorsExhausted {
                region: "net|in".into()
            })
        );
    }

    #[test]
    fn device_window_limit() {
        let window = layout::DEVICE_WINDOW;
        // One buffer filling the window exactly (after the two channels and guards).
        let rest = window - 0x8000 - 0x4000 - 2 * GUARD_SIZE;
        let plan = Plan::new(&app(&[], &[("big", rest)])).unwrap();
        assert_eq!(plan.devices[2].region.end(), Some(DEVICE_LIMIT));
        assert_eq!(
            Plan::new(&app(&[], &[("big", rest + PAGE_SIZE)])),
            Err(PlanError::Placement {
                region: "big|data".into(),
                size: rest + PAGE_SIZE,
                error: PlacementError::WindowFull
            })
        );
        assert!(matches!(
            Plan::new(&app(&[("n", u64::MAX - 0xfff)], &[])),
            Err(PlanError::Placement {
                error: PlacementError::WindowFull,
                ..
            })
        ));
    }

    #[test]
    fn rechecks_hand_built_apps() {
        let mut bad = app(&[("n", 0x1000)], &[("n", 0x1000)]);
        assert_eq!(
            Plan::new(&bad),
            Err(PlanError::DuplicateDevice { name: "n".into() })
        );
        bad = app(&[("n", 0x1001)], &[]);
        assert!(matches!(
            Plan::new(&bad),
            Err(PlanError::Placement {
                error: PlacementError::Unaligned,
                ..
            })
        ));
        bad = app(&[("n", 0)], &[]);
        assert!(matches!(
            Plan::new(&bad),
            Err(PlanError::Placement {
                error: PlacementError::ZeroSize,
                ..
            })
        ));
        bad = app(&[("a|b", 0x1000)], &[]);
        assert!(matches!(Plan::new(&bad), Err(PlanError::Name { .. })));
        bad = app(&[], &[]);
        bad.ram = 0;
        assert_eq!(Plan::new(&bad), Err(PlanError::Ram { size: 0 }));
        bad.ram = layout::RAM_MAX + PAGE_SIZE;
        assert!(matches!(Plan::new(&bad), Err(PlanError::Ram { .. })));
        bad.ram = DEFAULT_RAM;
        bad.name = "".into();
        assert!(matches!(Plan::new(&bad), Err(PlanError::Name { .. })));
    }

    proptest::proptest! {
        #[test]
        fn plans_are_overlap_free_with_guards_and_unique_numbers(
            net in proptest::collection::btree_map("[a-z][a-z0-9_]{0,8}", 1u64..64, 0..20),
            block in proptest::collection::btree_map("[A-Z][a-z0-9_]{0,8}", 1u64..64, 0..20),
            ram_pages in 1u64..0x10_0000,
        ) {
            let net: Vec<(&str, u64)> = net.iter().map(|(n, p)| (n.as_str(), p * PAGE_SIZE)).collect();
            let block: Vec<(&str, u64)> = block.iter().map(|(n, p)| (n.as_str(), p * PAGE_SIZE)).collect();
            let mut a = app(&net, &block);
            a.ram = ram_pages * PAGE_SIZE;
            let plan = Plan::new(&a).unwrap();
            proptest::prop_assert_eq!(plan.devices.len(), 2 * net.len() + 3 * block.len());
            for pair in plan.devices.windows(2) {
                proptest::prop_assert_eq!(
                    pair[1].region.address,
                    pair[0].region.end().unwrap().checked_add(GUARD_SIZE).unwrap()
                );
            }
            // The whole address space (with the toolchain's and libraries' pages) is
            // checked on the subject's view, in policy-gen's tests/plans.rs.
            proptest::prop_assert!(plan.ram.address.is_page_aligned());
            proptest::prop_assert!(plan.ram.end().unwrap() <= layout::RAM_LIMIT);
            for d in &plan.devices {
                proptest::prop_assert!(d.region.address.is_page_aligned());
                proptest::prop_assert_eq!(d.region.size % PAGE_SIZE, 0);
                proptest::prop_assert!(d.region.address >= DEVICE_BASE);
                proptest::prop_assert!(d.region.end().unwrap() <= DEVICE_LIMIT);
                proptest::prop_assert_eq!(d.event.is_some(), d.role == Role::Writer);
                proptest::prop_assert_eq!(d.vector.is_some(), d.role == Role::Reader);
            }
            let fixed_events = [numbers::EXIT_EVENT, numbers::TIMER_EVENT];
            let mut events: Vec<u8> =
                fixed_events.into_iter().chain(plan.devices.iter().filter_map(|d| d.event)).collect();
            let mut vectors: Vec<u8> = [numbers::TIMER_VECTOR]
                .into_iter()
                .chain(plan.devices.iter().filter_map(|d| d.vector))
                .collect();
            proptest::prop_assert!(events.iter().all(|&e| e <= numbers::EVENT_MAX));
            proptest::prop_assert!(vectors.iter().all(|&v| v >= 32));
            let (ne, nv) = (events.len(), vectors.len());
            events.sort_unstable();
            vectors.sort_unstable();
            events.dedup();
            vectors.dedup();
            proptest::prop_assert_eq!((events.len(), vectors.len()), (ne, nv));
        }
    }
}
