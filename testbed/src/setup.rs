//! What a run sets up: the physical regions in the memory file, the subjects mapping
//! them (each with its [`World`]), and the links between them: where each event goes,
//! which regions the testbed's peers serve, which debug logs it prints and which time
//! pages it publishes.
//!
//! A [`Setup`] comes from one of two places:
//!
//! * [`Setup::single`]: one subject from its component specification (`run APP`,
//!   `run --policy`). The testbed plays the toolchain: every mapping is a region of
//!   its own, a source event named like one of the subject's vectors is a self event
//!   (`timer`), `exit` ends the run when the subject ends, and every channel's other
//!   end is a testbed peer.
//! * [`from_system`]: subjects of a Muen system policy in format B (`run --system`).
//!   The policy says it all: the physical regions the subjects map (a region two
//!   subjects map is one region, so a channel between them is shared memory), the
//!   events as the physical events link them (a vector in a subject the testbed runs,
//!   a reset, a kernel action), and for every channel whose other end is a subject the
//!   testbed does not run, the testbed's peer for its protocol: a network bridge or a
//!   block server for a subject's device (`docs/conventions.md`), the log sink for
//!   `debuglog`, the published time for `time_info`; any other is an error naming the
//!   channel and its protocol.

use std::fmt;

use muen_abi::names::{self, Role};
use muen_sinfo::{MemoryKind, Version};
use muen_spec::model::SourceAction;
use muen_spec::model::TargetAction;
use muen_spec::system::{System, SystemError};
use muen_spec::{Library, Mapping, SubjectView};

use crate::memory::Backing;
use crate::world::World;

/// What a run sets up.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The regions of the memory file.
    pub regions: Vec<SetupRegion>,
    /// The subjects, in start order.
    pub subjects: Vec<SetupSubject>,
    /// Debug log channels the log sink prints.
    pub logs: Vec<LogLink>,
    /// Regions where the testbed publishes the time info (as Muen's time subject does).
    pub time_info: Vec<usize>,
}

/// A region of the memory file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupRegion {
    /// The physical region's name (for a subject on its own: `<subject>|<logical>`).
    pub name: String,
    /// Its size and initial content.
    pub backing: Backing,
}

/// A subject of the run.
#[derive(Clone, Debug)]
pub struct SetupSubject {
    /// Its view and the devices the testbed's peers serve.
    pub world: World,
    /// Per mapping of the view: the region (index in [`Setup::regions`]).
    pub regions: Vec<usize>,
    /// Per event number (0 to 63): what triggering it does.
    pub deliveries: Vec<Vec<Delivery>>,
    /// The number of its `exit` event, if it has one (counted in the statistics).
    pub exit_event: Option<u8>,
    /// What `HLT` does besides sleeping until a vector arrives (`None`: only that).
    pub hlt: Option<SourceAction>,
    /// Its sinfo page.
    pub page: Page,
}

/// Where a subject's sinfo page comes from.
#[derive(Clone, Debug)]
pub enum Page {
    /// Built by the testbed from this view in this format (with the run's TSC rate).
    Build(SubjectView, Version),
    /// Given (`--sinfo`, mugensinfo's page): written as it is.
    Given(Vec<u8>),
}

/// What an event does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Injects `vector` into subject `subject` (an index in [`Setup::subjects`]).
    Inject {
        /// The receiving subject.
        subject: usize,
        /// The vector.
        vector: u8,
    },
    /// Resets subject `subject`: the testbed starts it again.
    Reset {
        /// The subject.
        subject: usize,
    },
    /// A kernel action (`system_poweroff`, `system_reboot`, `system_panic`; sleeping
    /// and yielding are no deliveries).
    Kernel(SourceAction),
}

/// A debug log the log sink prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLink {
    /// The channel (index in [`Setup::regions`]).
    pub region: usize,
    /// The subject writing it (its name prefixes the lines).
    pub subject: usize,
}

impl SetupSubject {
    /// The subject's name.
    pub fn name(&self) -> &str {
        self.world.name()
    }

    /// The region of mapping `name`, if the subject maps it.
    pub fn region_of(&self, name: &str) -> Option<usize> {
        self.world.view.mapping_index(name).map(|i| self.regions[i])
    }
}

/// Deliveries that do nothing, one list per event number.
fn no_deliveries() -> Vec<Vec<Delivery>> {
    vec![Vec::new(); usize::from(muen_sinfo::EVENT_NUMBER_MAX) + 1]
}

impl Setup {
    /// One subject on its own (module documentation), its page in format `version`.
    pub fn single(world: World, version: Version) -> Setup {
        let name = world.name().to_string();
        let regions = world
            .view
            .mappings
            .iter()
            .map(|m| SetupRegion {
                name: format!("{name}|{}", m.name),
                backing: Backing {
                    size: m.region.size,
                    content: m.content.clone(),
                    phase: Backing::phase_of(m.region.address),
                },
            })
            .collect();
        let view = &world.view;
        let mut deliveries = no_deliveries();
        for e in &view.events {
            // A source and a target event of one name form a self event (`timer`).
            if let Some(vector) = view.vector(&e.name) {
                deliveries[usize::from(e.number & 63)]
                    .push(Delivery::Inject { subject: 0, vector });
            }
        }
        let library =
            |l: Library, name: &str| view.mapping_index(name).filter(|_| view.has_library(l));
        let logs = library(Library::Debuglog, names::DEBUGLOG)
            .map(|region| LogLink { region, subject: 0 })
            .into_iter()
            .collect();
        let time_info = library(Library::Time, names::TIME_INFO)
            .into_iter()
            .collect();
        let subject = SetupSubject {
            regions: (0..view.mappings.len()).collect(),
            deliveries,
            exit_event: view.event(names::EXIT_EVENT),
            hlt: None,
            page: Page::Build(view.clone(), version),
            world,
        };
        Setup {
            regions,
            subjects: vec![subject],
            logs,
            time_info,
        }
    }
}

/// A subject of a system to run.
#[derive(Clone, Debug)]
pub struct Chosen {
    /// Its name in the policy.
    pub name: String,
    /// QEMU mode: the image regions of the app's ELF, which the guest loads (the
    /// policy's `subject_binary` regions are used if it has them, else these are
    /// added). `None`: hosted mode, where Linux loads the executable; the policy's
    /// image regions are mapped, zeroed, for the page's sake.
    pub image: Option<Vec<Mapping>>,
    /// mugensinfo's page to give it instead of the testbed's (`--sinfo`).
    pub page: Option<Vec<u8>>,
}

/// Why subjects of a system cannot run together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// A problem of the system or of a subject in it.
    System(SystemError),
    /// A subject is given twice.
    Twice(String),
    /// A channel's other end is a subject the testbed does not run and it has no peer
    /// for it: subject, channel, physical region, other subjects, protocol.
    NoPeer {
        /// The subject the testbed runs.
        subject: String,
        /// Its logical name for the channel.
        channel: String,
        /// The physical region.
        physical: String,
        /// The subjects at the other end, with their names for it.
        others: Vec<(String, String)>,
        /// The protocol, as far as the names tell.
        protocol: String,
    },
    /// A device's channels lead partly to testbed peers, partly to subjects it runs.
    SplitDevice(String, String),
    /// Two subjects the testbed runs map a region with different sizes.
    Sizes(String),
    /// Something the testbed cannot set up (the world's message).
    World(String, String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::System(e) => e.fmt(f),
            SetupError::Twice(s) => write!(f, "subject `{s}` is given twice"),
            SetupError::NoPeer {
                subject,
                channel,
                physical,
                others,
                protocol,
            } => {
                let others: Vec<String> = others
                    .iter()
                    .map(|(s, logical)| format!("`{s}` (as `{logical}`)"))
                    .collect();
                write!(
                    f,
                    "subject `{subject}`: channel `{channel}` (physical `{physical}`) leads to {}, \
                     which the testbed does not run, and the testbed has no peer for it \
                     (protocol: {protocol}); run {} too",
                    others.join(", "),
                    if others.len() == 1 { "it" } else { "them" }
                )
            }
            SetupError::SplitDevice(subject, device) => write!(
                f,
                "subject `{subject}`: device `{device}` has channels to a subject the testbed \
                 runs and channels to one it does not; run both ends of every channel or none"
            ),
            SetupError::Sizes(m) => f.write_str(m),
            SetupError::World(subject, m) => write!(f, "subject `{subject}`: {m}"),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<SystemError> for SetupError {
    fn from(e: SystemError) -> Self {
        SetupError::System(e)
    }
}

/// The protocol a channel speaks, as far as its logical names tell
/// (`docs/conventions.md`).
fn protocol(names: &[&str]) -> String {
    for n in names {
        let suffix = n.rsplit_once('|').map(|(_, s)| s);
        let p = match (*n, suffix) {
            (names::DEBUGLOG, _) => "debuglog",
            (names::TIME_INFO, _) => "time",
            (_, Some("in" | "out")) => "muennet",
            (_, Some("req" | "resp" | "data")) => "muenblock",
            _ => continue,
        };
        return format!("{p} (by the name `{n}`)");
    }
    "unknown (no name follows docs/conventions.md)".into()
}

/// Sets up subjects `chosen` of `system` to run together (module documentation). The
/// sinfo pages the testbed builds are in format `version`.
pub fn from_system(
    system: &System,
    chosen: &[Chosen],
    version: Version,
) -> Result<Setup, SetupError> {
    let mut indices = Vec::new();
    for c in chosen {
        let i = system.subject_index(&c.name)?;
        if indices.contains(&i) {
            return Err(SetupError::Twice(c.name.clone()));
        }
        indices.push(i);
    }
    let run_index = |subject: usize| indices.iter().position(|&i| i == subject);

    let mut regions: Vec<SetupRegion> = Vec::new();
    // Index in `regions` of each physical region of the policy used so far.
    let mut physical: Vec<Option<usize>> = vec![None; system.regions.len()];
    let mut subjects = Vec::new();
    let mut logs = Vec::new();
    let mut time_info: Vec<usize> = Vec::new();
    for (r, (c, &index)) in chosen.iter().zip(&indices).enumerate() {
        let policy_view = system.view(index)?;
        let wiring = system.wiring(index);
        let s = &system.subjects[index];
        // The run's view: the policy's, in QEMU mode with the app's image regions if
        // the policy maps none. In hosted mode the policy's image regions stay mapped
        // (zeroed: Linux runs the host executable), because the runtime checks that
        // every region its page names is mapped.
        let mut view = policy_view.clone();
        let mut links: Vec<Option<usize>> = wiring.regions.iter().map(|l| Some(l.region)).collect();
        if let Some(image) = &c.image {
            if !view
                .mappings
                .iter()
                .any(|m| m.kind == MemoryKind::SubjectBinary)
            {
                view.mappings.splice(0..0, image.iter().cloned());
                links.splice(0..0, image.iter().map(|_| None));
            }
        }
        // Who is at the other end of each mapping: for a reader the writer, for a
        // writer the readers, for memory anyone else mapping it.
        let sharers: Vec<Vec<muen_spec::system::Sharer>> = links
            .iter()
            .zip(&view.mappings)
            .map(|(l, m)| {
                let all = l.map_or_else(Vec::new, |region| system.sharers(region, index));
                all.into_iter()
                    .filter(|sh| match m.role {
                        Role::Reader => sh.writable,
                        Role::Writer => !sh.writable,
                        Role::Memory => true,
                    })
                    .collect()
            })
            .collect();
        let to_run = |i: usize| sharers[i].iter().any(|sh| run_index(sh.subject).is_some());
        let world = World::serving(view, |i| !to_run(i))
            .map_err(|e| SetupError::World(s.name.clone(), e.to_string()))?;
        for d in &world.net {
            if to_run(d.input) != to_run(d.output) {
                return Err(SetupError::SplitDevice(s.name.clone(), d.name.clone()));
            }
        }
        for d in &world.block {
            if to_run(d.request) != to_run(d.response) || to_run(d.request) != to_run(d.data) {
                return Err(SetupError::SplitDevice(s.name.clone(), d.name.clone()));
            }
        }
        let served: Vec<usize> = world
            .net
            .iter()
            .flat_map(|d| [d.input, d.output])
            .chain(
                world
                    .block
                    .iter()
                    .flat_map(|d| [d.request, d.response, d.data]),
            )
            .collect();

        // The regions, each physical one once.
        let mut subject_regions = Vec::new();
        for (i, (m, link)) in world.view.mappings.iter().zip(&links).enumerate() {
            // In QEMU mode every guest has a TSC of its own, so pages the testbed
            // writes in TSC values (scheduling info, the time published for a reader)
            // are each guest's own copy.
            let per_guest = c.image.is_some()
                && (m.kind == MemoryKind::SubjectSchedulingInfo
                    || (m.name == names::TIME_INFO && m.role == Role::Reader && !to_run(i)));
            let link = if per_guest { &None } else { link };
            let region =
                match link {
                    Some(p) => match physical[*p] {
                        Some(region) => {
                            if regions[region].backing.size != m.region.size {
                                return Err(SetupError::Sizes(format!(
                                "region `{}` has {:#x} bytes for one subject and {:#x} for `{}`",
                                regions[region].name, regions[region].backing.size, m.region.size,
                                s.name
                            )));
                            }
                            region
                        }
                        None => {
                            let p_region = &system.regions[*p];
                            regions.push(SetupRegion {
                                name: p_region.name.clone(),
                                backing: Backing {
                                    size: p_region.size,
                                    content: p_region.content.clone(),
                                    phase: Backing::phase_of(m.region.address),
                                },
                            });
                            physical[*p] = Some(regions.len() - 1);
                            regions.len() - 1
                        }
                    },
                    None => {
                        regions.push(SetupRegion {
                            name: match links[i] {
                                Some(p) => format!("{} ({})", system.regions[p].name, s.name),
                                None => format!("{}|{}", s.name, m.name),
                            },
                            backing: Backing {
                                size: m.region.size,
                                content: m.content.clone(),
                                phase: Backing::phase_of(m.region.address),
                            },
                        });
                        regions.len() - 1
                    }
                };
            subject_regions.push(region);

            // Channels to subjects the testbed does not run need a peer.
            let others_not_run = !sharers[i].is_empty() && !to_run(i);
            if m.kind != MemoryKind::SubjectChannel || !others_not_run || served.contains(&i) {
                continue;
            }
            let writes = m.role == Role::Writer;
            if m.name == names::DEBUGLOG && writes {
                logs.push(LogLink { region, subject: r });
                continue;
            }
            if m.name == names::TIME_INFO && !writes {
                if !time_info.contains(&region) {
                    time_info.push(region);
                }
                continue;
            }
            let others: Vec<(String, String)> = sharers[i]
                .iter()
                .map(|sh| {
                    let o = &system.subjects[sh.subject];
                    (o.name.clone(), o.mappings[sh.mapping].logical.clone())
                })
                .collect();
            let mut names_: Vec<&str> = vec![m.name.as_str()];
            names_.extend(others.iter().map(|(_, l)| l.as_str()));
            return Err(SetupError::NoPeer {
                subject: s.name.clone(),
                channel: m.name.clone(),
                physical: links[i].map_or_else(String::new, |p| system.regions[p].name.clone()),
                protocol: protocol(&names_),
                others,
            });
        }

        // The events, as the physical events link them.
        let mut deliveries = no_deliveries();
        for (e, route) in world.view.events.iter().zip(&wiring.events) {
            let list = &mut deliveries[usize::from(e.number & 63)];
            match route.action {
                Some(SourceAction::SubjectSleep | SourceAction::SubjectYield) | None => {}
                Some(action) => list.push(Delivery::Kernel(action)),
            }
            for t in &route.targets {
                let Some(target) = run_index(t.subject) else {
                    continue;
                };
                match t.action {
                    Some(TargetAction::InjectInterrupt { vector }) => {
                        list.push(Delivery::Inject {
                            subject: target,
                            vector,
                        });
                    }
                    Some(TargetAction::Reset) => list.push(Delivery::Reset { subject: target }),
                    None => {}
                }
            }
        }
        let hlt = match wiring.hlt {
            Some(SourceAction::SubjectSleep | SourceAction::SubjectYield) | None => None,
            other => other,
        };
        let page = match &c.page {
            Some(bytes) => Page::Given(bytes.clone()),
            None => Page::Build(policy_view, version),
        };
        subjects.push(SetupSubject {
            exit_event: world.view.event(names::EXIT_EVENT),
            regions: subject_regions,
            deliveries,
            hlt,
            page,
            world,
        });
    }
    Ok(Setup {
        regions,
        subjects,
        logs,
        time_info,
    })
}

/// The first difference between the view an app's specification gives (`app`) and
/// the subject's view in the policy (`policy`), as a sentence; `None` if they agree in
/// what the subject sees: every mapping's name, address, size, rights and kind in
/// order, the events and the vectors (by name: Muen lists the events and vectors of
/// channels in the order the system declares its channels, which a component cannot
/// know), RIP and RSP. (Contents and hashes are the policy's business: Muen fills
/// channels the specification leaves uninitialized.)
pub fn first_mismatch(app: &SubjectView, policy: &SubjectView) -> Option<String> {
    let describe = |m: &Mapping| {
        format!(
            "`{}` at {:#x}, {:#x} bytes, {}{}, {}",
            m.name,
            m.region.address.as_u64(),
            m.region.size,
            if m.writable { "writable" } else { "read-only" },
            if m.executable { ", executable" } else { "" },
            m.kind.policy_name().unwrap_or("(no policy type)")
        )
    };
    for i in 0..app.mappings.len().max(policy.mappings.len()) {
        let (a, p) = (app.mappings.get(i), policy.mappings.get(i));
        let same = match (a, p) {
            (Some(a), Some(p)) => {
                a.name == p.name
                    && a.region == p.region
                    && a.writable == p.writable
                    && a.executable == p.executable
                    && a.kind == p.kind
            }
            _ => false,
        };
        if !same {
            let show = |m: Option<&Mapping>| m.map_or_else(|| "nothing".to_string(), describe);
            return Some(format!(
                "memory #{i}: the app has {}, the policy {}",
                show(a),
                show(p)
            ));
        }
    }
    // By name: each of the app's with the policy's of that name, then the policy's
    // that the app lacks.
    let numbers = |kind: &str, a: &[muen_spec::NamedNumber], p: &[muen_spec::NamedNumber]| {
        for n in a {
            match p.iter().find(|m| m.name == n.name) {
                Some(m) if m.number == n.number => {}
                Some(m) => {
                    return Some(format!(
                        "{kind} `{}`: the app has {}, the policy {}",
                        n.name, n.number, m.number
                    ))
                }
                None => {
                    return Some(format!(
                        "{kind} `{}`: the app has {}, the policy none",
                        n.name, n.number
                    ))
                }
            }
        }
        p.iter()
            .find(|m| !a.iter().any(|n| n.name == m.name))
            .map(|m| {
                format!(
                    "{kind} `{}`: the app has none, the policy {}",
                    m.name, m.number
                )
            })
    };
    if let Some(m) = numbers("event", &app.events, &policy.events) {
        return Some(m);
    }
    if let Some(m) = numbers("vector", &app.vectors, &policy.vectors) {
        return Some(m);
    }
    let show = |r: Option<muen_abi::VirtAddr>| r.map_or("none".to_string(), |a| format!("{a}"));
    if app.registers.rip != policy.registers.rip {
        return Some(format!(
            "RIP: the app has {}, the policy {}",
            show(app.registers.rip),
            show(policy.registers.rip)
        ));
    }
    if app.registers.rsp != policy.registers.rsp {
        return Some(format!(
            "RSP: the app has {}, the policy {}",
            show(app.registers.rsp),
            show(policy.registers.rsp)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;
    use std::path::Path;

    fn echo() -> SubjectView {
        policy::parse(
            include_str!("../../policy-gen/tests/snapshots/2026-04/echo.xml"),
            Path::new("echo.xml"),
            policy::Image::Skip,
        )
        .unwrap()
        .view
    }

    #[test]
    fn the_first_mismatch_names_the_place_and_both_sides() {
        let app = echo();
        assert_eq!(first_mismatch(&app, &app), None);
        // Contents are the policy's business (Muen fills its channels).
        let mut filled = app.clone();
        filled.mappings[1].content = muen_spec::Content::Fill(0);
        assert_eq!(first_mismatch(&app, &filled), None);
        let mut policy = app.clone();
        policy.mappings[1].region.size = 0x8_0000;
        assert_eq!(
            first_mismatch(&app, &policy).unwrap(),
            "memory #1: the app has `service0|in` at 0x1000000000, 0x100000 bytes, \
             read-only, subject_channel, the policy `service0|in` at 0x1000000000, \
             0x80000 bytes, read-only, subject_channel"
        );
        let mut shorter = app.clone();
        shorter.mappings.pop();
        assert!(first_mismatch(&app, &shorter)
            .unwrap()
            .ends_with("subject_timed_event, the policy nothing"));
        let mut events = app.clone();
        events.events[2].number = 5;
        assert_eq!(
            first_mismatch(&app, &events).unwrap(),
            "event `service0|out`: the app has 2, the policy 5"
        );
        let mut vectors = app.clone();
        vectors.vectors.pop();
        assert_eq!(
            first_mismatch(&app, &vectors).unwrap(),
            "vector `service0|in`: the app has 33, the policy none"
        );
        assert_eq!(
            first_mismatch(&vectors, &app).unwrap(),
            "vector `service0|in`: the app has none, the policy 33"
        );
        // Muen orders the events and vectors of channels as the system declares its
        // channels: another order is no mismatch.
        let mut reordered = app.clone();
        reordered.vectors.reverse();
        reordered.events.reverse();
        assert_eq!(first_mismatch(&app, &reordered), None);
        let mut entry = app.clone();
        entry.registers.rip = Some(muen_abi::VirtAddr::new(0x30_0000));
        assert_eq!(
            first_mismatch(&app, &entry).unwrap(),
            "RIP: the app has 0x200000, the policy 0x300000"
        );
    }

    #[test]
    fn protocols_follow_the_names_of_either_end() {
        assert_eq!(
            protocol(&["to_service0_in", "service0|in"]),
            "muennet (by the name `service0|in`)"
        );
        assert_eq!(
            protocol(&["storage|req"]),
            "muenblock (by the name `storage|req`)"
        );
        assert_eq!(protocol(&["debuglog"]), "debuglog (by the name `debuglog`)");
        assert!(protocol(&["a", "b"]).starts_with("unknown"));
    }

    #[test]
    fn a_single_subject_is_its_own_system() {
        let view = echo();
        let setup = Setup::single(World::new(view.clone()).unwrap(), Version::V5);
        assert_eq!(setup.regions.len(), view.mappings.len());
        assert_eq!(setup.regions[0].name, "echo|ram");
        let s = &setup.subjects[0];
        assert_eq!(s.regions, (0..view.mappings.len()).collect::<Vec<_>>());
        // `timer` is a self event, `exit` only counted, channel events go to peers.
        assert_eq!(
            s.deliveries[1],
            [Delivery::Inject {
                subject: 0,
                vector: 32
            }]
        );
        assert!(s.deliveries[0].is_empty() && s.deliveries[2].is_empty());
        assert_eq!(s.exit_event, Some(0));
        assert_eq!(
            setup.logs,
            [LogLink {
                region: 4,
                subject: 0
            }]
        );
        assert_eq!(setup.time_info, [2]);
    }
}
