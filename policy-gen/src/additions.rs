//! System additions: what an integrator adds to a Muen system policy (Muen's source
//! format, `system_src`) so that apps run as subjects. `policy-gen --system-additions`
//! writes them.
//!
//! For each app ([`ComponentSpec`]), [`SystemAdditions::new`] derives:
//!
//! - the **subject** of the same name: its `vmx_exit` events (every exit panics the
//!   system, except HLT, which sleeps until the next event when the specification sets
//!   `HLTExiting`), the `<component ref>` with one `<map>` per logical resource, and a
//!   `restart` target (`<reset/>`) for an `exit` event that has no target of its own;
//! - the **physical channels** `<app>_<logical>` (`|` becomes `_`) with the
//!   specification's sizes, and `hasEvent="asap"` where the specification's reader has
//!   a vector or its writer an event; the **memory** `<app>_<logical>` for each
//!   required region; one **self event** `<app>_<logical>` per vmcall event (a target
//!   event of the same name receives it, as `timer` does; a source event with an action
//!   goes to the system's kernel event of that name);
//! - for `libmudebuglog`, a **debug log channel** `debuglog_<app>` of its own
//!   (`$logchannel_size`, the size the library requires on every Muen system) and the
//!   **dbgserver map** `log_<app>` that makes Muen's debug server read it; for
//!   `libmutime`, the map of `time_info` to the system's `time_info` channel;
//! - **app-to-app channels** (`[channel.NAME]` in the manifests; logical names without
//!   `|`): the `out` channel `NAME` of one app and the `in` channels `NAME` of the
//!   others are one physical channel `<writer>_NAME`, mapped in each of them, with
//!   `hasEvent="asap"` if the ends signal. The ends must agree on the size, the element
//!   size, the protocol id and whether they signal ([`SystemAdditions::with_protocols`]
//!   checks what the manifests say), and a channel has one writer;
//! - a **stand-in peer** `<app>_peer` (component `peer`, no code) at the other end of
//!   every device channel and every app channel that no other app of the set serves,
//!   and sharing every required region, so that each channel has its reader and its
//!   writer. It is marked as a stand-in in the XML: a real system puts
//!   its own subjects there (a network device's channels go to e.g. `nic_linux`'s
//!   muennet interface, a block device's to e.g. Muen's AHCI driver);
//! - a **scheduling suggestion**: a partition `apps` with one group per subject.
//!
//! What Muen's tools refuse is refused here, naming the app: a source event without a
//! target with an action (Muen: "Invalid number of targets", "does not specify an
//! action"), a target event that no source event triggers, and what the derivation does
//! not cover (devices, arrays, libraries other than libmudebuglog and libmutime).
//! Muen's tools accept the fragment on Muen's demo system for both tool generations
//! (the XML is the same for both): `../shared/muen/pipeline.sh --additions` applies it,
//! and the tests run it.
//!
//! Usage and the format are described in `docs/policy-gen.md` and `docs/muen.md`.

use std::fmt;
use std::io;

use muen_abi::names::{self, DeviceKind, Endpoint, Role, NAME_MAX};
use muen_spec::hex::word64;
use muen_spec::model::{bits, BitGroup, SourceAction};
use muen_spec::{ChannelEnd, ComponentSpec, Library};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

/// The fragment for a set of apps, in the sections of Muen's system policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemAdditions {
    /// What each app adds, in the order the apps were given.
    pub apps: Vec<AppAdditions>,
    /// The suggested scheduling partition.
    pub partition: Partition,
}

/// What one app adds to the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppAdditions {
    /// The app (component and subject) name.
    pub app: String,
    /// `/system/memory`: the regions behind the app's required memory.
    pub memory: Vec<PhysicalMemory>,
    /// `/system/events`: the app's self events.
    pub events: Vec<String>,
    /// `/system/channels`: the app's debug log and its devices' channels.
    pub channels: Vec<PhysicalChannel>,
    /// `/system/channels`: the app channels this app declares (those it writes, and
    /// those it reads that no app of the set writes), with their logical names. They
    /// go after every other channel, by logical name ([`SystemAdditions::to_xml`]).
    pub app_channels: Vec<(String, PhysicalChannel)>,
    /// `/system/subjects`: the app's subject.
    pub subject: Subject,
    /// `/system/subjects`: the stand-in at the other end of its channels, if it has any.
    pub peer: Option<Peer>,
    /// The map that makes Muen's debug server read the app's debug log.
    pub dbgserver_log: Option<Map>,
}

/// `<memory name size caching="WB"/>` in `/system/memory`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalMemory {
    /// The physical name.
    pub name: String,
    /// Its size: the specification's.
    pub size: u64,
}

/// `<channel name size [hasEvent]/>` in `/system/channels`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalChannel {
    /// The physical name.
    pub name: String,
    /// Its size.
    pub size: ChannelSize,
    /// Whether writes are signalled (`hasEvent="asap"`).
    pub has_event: bool,
}

/// The size of a physical channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelSize {
    /// This many bytes (the specification's).
    Bytes(u64),
    /// `$logchannel_size`: the system's debug log size, which `libmudebuglog` requires.
    LogChannel,
}

/// A `<subject>` running an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The subject name (the app's).
    pub name: String,
    /// HLT exits go to `subject_sleep` (the specification sets `HLTExiting`).
    pub sleeps_on_hlt: bool,
    /// Target events the subject adds: `(logical, physical)`, each with `<reset/>`.
    pub restarts: Vec<Map>,
    /// `<component ref>`: the component it runs.
    pub component: String,
    /// The component's `<map>`s: logical resource to physical one.
    pub maps: Vec<Map>,
}

/// A stand-in subject holding the other ends of an app's channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The subject name (`<app>_peer`).
    pub name: String,
    /// Its memory mappings (writable, not executable): `(logical, physical)`.
    pub memory: Vec<Map>,
    /// Its channel ends.
    pub channels: Vec<PeerChannel>,
    /// What a real system puts in its place, one line per device or channel.
    pub replaces: Vec<String>,
}

/// A channel end of a [`Peer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerChannel {
    /// `Reader` or `Writer` (the opposite of the app's end).
    pub role: Role,
    /// Its logical name in the peer.
    pub logical: String,
    /// The physical channel.
    pub physical: String,
    /// It has an event (writer) or vector (reader), chosen by Muen's tools (`auto`).
    pub notified: bool,
}

/// `<map logical physical/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// The logical name.
    pub logical: String,
    /// The physical name.
    pub physical: String,
}

/// The suggested place in the scheduling plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The partition name.
    pub name: String,
    /// Its scheduling groups, one subject each.
    pub groups: Vec<String>,
    /// The CPU its minor frames are on.
    pub cpu: u32,
    /// The ticks per major frame it gets.
    pub ticks: u32,
    /// The demo system's partition that gives up those ticks (for `pipeline.sh`).
    pub take_from: String,
}

/// The component of every stand-in peer: native, with no resources of its own.
pub const PEER_COMPONENT: &str = "peer";

/// What an app's manifest says of one of its app channels beyond the specification:
/// the protocol id and the element size, on which both ends must agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelProtocol {
    /// The channel's logical name.
    pub logical: String,
    /// Its protocol id.
    pub protocol: u64,
    /// Its element size in bytes.
    pub element_size: u64,
}

/// Whether a logical channel name is an app channel's (`[channel.NAME]`): device
/// endpoints are `<device>|<endpoint>`, and the libraries' channels are not in a
/// specification's `<channels>`.
pub fn is_app_channel(logical: &str) -> bool {
    !logical.contains('|')
}

/// Why no additions were written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdditionsError {
    /// Two apps have the same name.
    DuplicateApp(String),
    /// A name the additions need is longer than Muen's names may be.
    NameTooLong {
        /// What the name is for.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A library whose resources the derivation does not know.
    UnknownLibrary(String),
    /// Something the derivation does not cover.
    Unsupported(&'static str),
    /// A vmcall event without a target event that has an action.
    NoTarget(String),
    /// A target event without an action.
    TargetWithoutAction(String),
    /// A target event that no source event triggers.
    TargetWithoutSource(String),
    /// A source event with an action that has no kernel event of its name.
    SourceAction(String),
    /// Two apps write the app channel of this name.
    ChannelWriters {
        /// The channel.
        channel: String,
        /// The other writer.
        other: String,
    },
    /// Two ends of an app channel disagree.
    ChannelMismatch(Box<ChannelMismatch>),
}

/// Two ends of an app channel that disagree (for [`AdditionsError::ChannelMismatch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMismatch {
    /// The channel.
    pub channel: String,
    /// What they disagree on (`size`, `element size`, `protocol id`, `event`).
    pub field: &'static str,
    /// This app's end: `reads` or `writes`, and its value.
    pub this: (&'static str, String),
    /// The other app.
    pub other: String,
    /// The other app's end and value.
    pub theirs: (&'static str, String),
}

impl fmt::Display for AdditionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdditionsError::DuplicateApp(name) => {
                write!(
                    f,
                    "two apps are named `{name}`; subject names must be unique"
                )
            }
            AdditionsError::NameTooLong { what, name } => write!(
                f,
                "the {what} `{name}` has {} characters, more than Muen's {NAME_MAX}; \
                 use a shorter app or device name",
                name.len()
            ),
            AdditionsError::UnknownLibrary(name) => write!(
                f,
                "`<library ref=\"{name}\">`: the additions cannot wire library `{name}` \
                 (known: {})",
                Library::ALL.map(Library::policy_name).join(", ")
            ),
            AdditionsError::Unsupported(what) => {
                write!(
                    f,
                    "{what}: the additions cannot wire them; write them by hand"
                )
            }
            AdditionsError::NoTarget(event) => write!(
                f,
                "source event `{event}` has no target event of the same name, and only \
                 `exit` gets one (restart); Muen refuses a self event without exactly one \
                 target with an action"
            ),
            AdditionsError::TargetWithoutAction(event) => write!(
                f,
                "target event `{event}` has no action; Muen refuses a self event whose \
                 target does not specify one"
            ),
            AdditionsError::TargetWithoutSource(event) => write!(
                f,
                "target event `{event}` has no source event of the same name that \
                 triggers it"
            ),
            AdditionsError::SourceAction(event) => write!(
                f,
                "source event `{event}` has an action with no kernel event of its name \
                 (unmask_irq)"
            ),
            AdditionsError::ChannelWriters { channel, other } => write!(
                f,
                "channel `{channel}`: `{other}` writes it too; a channel has one writer \
                 (direction = \"out\" in one manifest, \"in\" in the others)"
            ),
            AdditionsError::ChannelMismatch(m) => write!(
                f,
                "channel `{channel}`: this app {} it with {field} {}, `{other}` {} it with \
                 {field} {}; both ends of a channel must agree",
                m.this.0,
                m.this.1,
                m.theirs.0,
                m.theirs.1,
                channel = m.channel,
                field = m.field,
                other = m.other,
            ),
        }
    }
}

impl std::error::Error for AdditionsError {}

/// The physical name of an app's logical resource: `<app>_<logical>`, `|` as `_`.
fn physical(app: &str, logical: &str) -> String {
    format!("{app}_{}", logical.replace('|', "_"))
}

fn check_length(what: &'static str, name: &str) -> Result<(), AdditionsError> {
    if name.len() > NAME_MAX {
        return Err(AdditionsError::NameTooLong {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

fn map(logical: &str, physical: &str) -> Map {
    Map {
        logical: logical.to_string(),
        physical: physical.to_string(),
    }
}

impl SystemAdditions {
    /// The additions for `apps`, each paired with a label for errors (its manifest
    /// file); an error comes with the label of the app it concerns. App channels are
    /// paired by name, their ends checked for what the specifications say (size,
    /// event); [`SystemAdditions::with_protocols`] also checks the manifests' protocol
    /// ids and element sizes.
    pub fn new<L: Clone>(apps: &[(L, ComponentSpec)]) -> Result<Self, (L, AdditionsError)> {
        let apps: Vec<(L, ComponentSpec, Vec<ChannelProtocol>)> = apps
            .iter()
            .map(|(l, s)| (l.clone(), s.clone(), Vec::new()))
            .collect();
        Self::with_protocols(&apps)
    }

    /// [`SystemAdditions::new`] for apps whose app channels' protocol ids and element
    /// sizes are known (from their manifests): paired ends must agree on them too.
    pub fn with_protocols<L: Clone>(
        apps: &[(L, ComponentSpec, Vec<ChannelProtocol>)],
    ) -> Result<Self, (L, AdditionsError)> {
        for (i, (label, spec, _)) in apps.iter().enumerate() {
            if apps[..i].iter().any(|(_, s, _)| s.name == spec.name) {
                return Err((
                    label.clone(),
                    AdditionsError::DuplicateApp(spec.name.clone()),
                ));
            }
        }
        let inputs: Vec<(&ComponentSpec, &[ChannelProtocol])> = apps
            .iter()
            .map(|(_, spec, protocols)| (spec, protocols.as_slice()))
            .collect();
        let pairing = Pairing::of(&inputs).map_err(|(i, e)| (apps[i].0.clone(), e))?;
        let mut out = Vec::new();
        let mut groups = Vec::new();
        for (i, (label, spec, _)) in apps.iter().enumerate() {
            let app = AppAdditions::wired(spec, i, &pairing).map_err(|e| (label.clone(), e))?;
            groups.push(app.subject.name.clone());
            if let Some(peer) = &app.peer {
                groups.push(peer.name.clone());
            }
            out.push(app);
        }
        Ok(SystemAdditions {
            apps: out,
            partition: Partition {
                name: "apps".to_string(),
                groups,
                cpu: 0,
                ticks: 20,
                take_from: "nic_linux".to_string(),
            },
        })
    }

    /// Whether any app has a stand-in peer (then the `peer` component is needed).
    pub fn has_peers(&self) -> bool {
        self.apps.iter().any(|a| a.peer.is_some())
    }

    /// The fragment as XML (`<systemAdditions>`, the format of `pipeline.sh
    /// --additions`), with `comment` (the command that made it) at the top.
    pub fn to_xml(&self, comment: &str) -> String {
        let mut w = Out(Writer::new_with_indent(Vec::new(), b' ', 1));
        // Writing into a `Vec` cannot fail, and everything written is `&str`.
        w.additions(self, comment)
            .expect("writing XML into memory cannot fail");
        let mut xml = w.0.into_inner();
        xml.push(b'\n');
        String::from_utf8(xml).expect("the document is built from UTF-8 strings")
    }
}

/// How the app channels of a set of apps are wired, by name.
#[derive(Clone, Debug, Default)]
struct Pairing {
    channels: Vec<PairedChannel>,
}

/// One app channel of the set: its physical channel, and who serves its ends.
#[derive(Clone, Debug)]
struct PairedChannel {
    logical: String,
    /// `<owner>_<logical>`.
    physical: String,
    /// The app that declares the physical channel: the writer, else the first reader.
    owner: usize,
    /// The end the owner's stand-in peer holds, if no app of the set does.
    stand_in: Option<Role>,
}

/// One end of an app channel, as an app of the set declares it.
struct End<'a> {
    app: usize,
    role: Role,
    size: u64,
    signals: bool,
    protocol: Option<&'a ChannelProtocol>,
}

impl End<'_> {
    fn verb(&self) -> &'static str {
        match self.role {
            Role::Writer => "writes",
            _ => "reads",
        }
    }
}

impl Pairing {
    /// Pairs the app channels of `apps` (specification and manifest protocols); an
    /// error comes with the index of the app it concerns.
    fn of(
        apps: &[(&ComponentSpec, &[ChannelProtocol])],
    ) -> Result<Pairing, (usize, AdditionsError)> {
        let mut names: Vec<&str> = Vec::new();
        let mut ends: Vec<(&str, End<'_>)> = Vec::new();
        for (app, (spec, protocols)) in apps.iter().enumerate() {
            for c in spec.channels.iter().filter(|c| is_app_channel(&c.logical)) {
                if !names.contains(&c.logical.as_str()) {
                    names.push(&c.logical);
                }
                let signals = matches!(
                    c.end,
                    ChannelEnd::Reader { vector: Some(_) } | ChannelEnd::Writer { event: Some(_) }
                );
                ends.push((
                    &c.logical,
                    End {
                        app,
                        role: c.role(),
                        size: c.region.size,
                        signals,
                        protocol: protocols.iter().find(|p| p.logical == c.logical),
                    },
                ));
            }
        }
        let app_name = |i: usize| apps[i].0.name.clone();
        let mut channels = Vec::new();
        for name in names {
            let group: Vec<&End<'_>> = ends
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, e)| e)
                .collect();
            let mut writers = group.iter().filter(|e| e.role == Role::Writer);
            let writer = writers.next();
            if let Some(second) = writers.next() {
                return Err((
                    second.app,
                    AdditionsError::ChannelWriters {
                        channel: name.to_string(),
                        other: app_name(writer.map_or(0, |w| w.app)),
                    },
                ));
            }
            let reference: &End<'_> = writer.copied().unwrap_or(group[0]);
            for end in group.iter().filter(|e| !std::ptr::eq(**e, reference)) {
                let mismatch = |field: &'static str, this: String, theirs: String| {
                    (
                        end.app,
                        AdditionsError::ChannelMismatch(Box::new(ChannelMismatch {
                            channel: name.to_string(),
                            field,
                            this: (end.verb(), this),
                            other: app_name(reference.app),
                            theirs: (reference.verb(), theirs),
                        })),
                    )
                };
                if end.size != reference.size {
                    return Err(mismatch(
                        "size",
                        format!("{:#x}", end.size),
                        format!("{:#x}", reference.size),
                    ));
                }
                if end.signals != reference.signals {
                    let on = |b: bool| if b { "on" } else { "off" }.to_string();
                    return Err(mismatch("event", on(end.signals), on(reference.signals)));
                }
                if let (Some(a), Some(b)) = (end.protocol, reference.protocol) {
                    if a.element_size != b.element_size {
                        return Err(mismatch(
                            "element size",
                            a.element_size.to_string(),
                            b.element_size.to_string(),
                        ));
                    }
                    if a.protocol != b.protocol {
                        return Err(mismatch(
                            "protocol id",
                            format!("{:#x}", a.protocol),
                            format!("{:#x}", b.protocol),
                        ));
                    }
                }
            }
            let has_reader = group.iter().any(|e| e.role == Role::Reader);
            let stand_in = match (writer.is_some(), has_reader) {
                (false, _) => Some(Role::Writer),
                (true, false) => Some(Role::Reader),
                (true, true) => None,
            };
            channels.push(PairedChannel {
                logical: name.to_string(),
                physical: physical(&app_name(reference.app), name),
                owner: reference.app,
                stand_in,
            });
        }
        Ok(Pairing { channels })
    }

    fn channel(&self, logical: &str) -> Option<&PairedChannel> {
        self.channels.iter().find(|c| c.logical == logical)
    }
}

impl AppAdditions {
    /// What the app of `spec` adds to the system on its own: its app channels'
    /// other ends are held by its stand-in peer.
    pub fn new(spec: &ComponentSpec) -> Result<Self, AdditionsError> {
        let pairing = Pairing::of(&[(spec, &[])]).map_err(|(_, e)| e)?;
        Self::wired(spec, 0, &pairing)
    }

    /// What app number `index` of a set adds, its app channels wired by `pairing`.
    fn wired(
        spec: &ComponentSpec,
        index: usize,
        pairing: &Pairing,
    ) -> Result<Self, AdditionsError> {
        if !spec.devices.is_empty() {
            return Err(AdditionsError::Unsupported("devices (<requires><devices>)"));
        }
        if !spec.memory_arrays.is_empty() || !spec.channel_arrays.is_empty() {
            return Err(AdditionsError::Unsupported("memory and channel arrays"));
        }
        let app = spec.name.as_str();
        let mut memory = Vec::new();
        let mut events = Vec::new();
        let mut channels = Vec::new();
        let mut app_channels = Vec::new();
        let mut maps = Vec::new();
        let mut restarts = Vec::new();
        let mut dbgserver_log = None;

        let mut libraries = Vec::new();
        for name in &spec.depends {
            let library = Library::from_policy_name(name)
                .ok_or_else(|| AdditionsError::UnknownLibrary(name.clone()))?;
            if !libraries.contains(&library) {
                libraries.push(library);
            }
        }
        for library in libraries {
            match library {
                Library::Debuglog => {
                    let channel = format!("debuglog_{app}");
                    check_length("debug log channel name", &channel)?;
                    let log = format!("log_{app}");
                    check_length("dbgserver's logical name", &log)?;
                    channels.push(PhysicalChannel {
                        name: channel.clone(),
                        size: ChannelSize::LogChannel,
                        has_event: false,
                    });
                    maps.push(map(names::DEBUGLOG, &channel));
                    dbgserver_log = Some(map(&log, &channel));
                }
                Library::Time => maps.push(map(names::TIME_INFO, names::TIME_INFO)),
            }
        }

        let mut peer_channels = Vec::new();
        let mut replaces = Vec::new();
        for c in &spec.channels {
            let has_event = matches!(
                c.end,
                ChannelEnd::Reader { vector: Some(_) } | ChannelEnd::Writer { event: Some(_) }
            );
            let paired = pairing.channel(&c.logical);
            let (name, owner, stand_in) = match paired {
                Some(p) => (p.physical.clone(), p.owner == index, p.stand_in.is_some()),
                None => (physical(app, &c.logical), true, true),
            };
            if owner {
                check_length("physical channel name", &name)?;
                let channel = PhysicalChannel {
                    name: name.clone(),
                    size: ChannelSize::Bytes(c.region.size),
                    has_event,
                };
                if is_app_channel(&c.logical) {
                    app_channels.push((c.logical.clone(), channel));
                } else {
                    channels.push(channel);
                }
            }
            maps.push(map(&c.logical, &name));
            // The other end: another app of the set, or (once, by the owner) the
            // stand-in peer.
            if !(owner && stand_in) {
                continue;
            }
            let (role, prefix) = match c.role() {
                Role::Reader => (Role::Writer, "to_"),
                _ => (Role::Reader, "from_"),
            };
            let logical = format!("{prefix}{}", c.logical.replace('|', "_"));
            check_length("peer's logical name", &logical)?;
            peer_channels.push(PeerChannel {
                role,
                logical,
                physical: name,
                notified: has_event,
            });
            let serves = if is_app_channel(&c.logical) {
                let other = match c.role() {
                    Role::Reader => "out",
                    _ => "in",
                };
                format!(
                    "channel `{}`: an app with `[channel.{}]`, direction = \"{other}\" \
                     (given to policy-gen with this one, it is wired here)",
                    c.logical, c.logical
                )
            } else {
                replacement(&c.logical)
            };
            push_once(&mut replaces, serves);
        }
        let mut peer_memory = Vec::new();
        for m in &spec.memory {
            let name = physical(app, &m.logical);
            check_length("physical memory name", &name)?;
            memory.push(PhysicalMemory {
                name: name.clone(),
                size: m.region.size,
            });
            maps.push(map(&m.logical, &name));
            peer_memory.push(map(&m.logical.replace('|', "_"), &name));
            push_once(&mut replaces, replacement(&m.logical));
        }

        for source in &spec.events.source {
            let target = spec
                .events
                .target
                .iter()
                .find(|t| t.logical == source.logical);
            match (source.action, target) {
                (Some(SourceAction::UnmaskIrq(_)), _) => {
                    return Err(AdditionsError::SourceAction(source.logical.clone()))
                }
                // A kernel action: the system's kernel event of that name.
                (Some(action), _) => maps.push(map(&source.logical, action.policy_name())),
                (None, Some(t)) if t.action.is_none() => {
                    return Err(AdditionsError::TargetWithoutAction(t.logical.clone()))
                }
                (None, Some(_)) => {
                    let name = physical(app, &source.logical);
                    check_length("event name", &name)?;
                    maps.push(map(&source.logical, &name));
                    events.push(name);
                }
                (None, None) if source.logical == names::EXIT_EVENT => {
                    let name = physical(app, &source.logical);
                    check_length("event name", &name)?;
                    maps.push(map(&source.logical, &name));
                    restarts.push(map("restart", &name));
                    events.push(name);
                }
                (None, None) => return Err(AdditionsError::NoTarget(source.logical.clone())),
            }
        }
        // Every target event shares its name (and so its physical event) with the
        // source event that triggers it; the loop above checked their actions.
        if let Some(t) = spec
            .events
            .target
            .iter()
            .find(|t| !spec.events.source.iter().any(|s| s.logical == t.logical))
        {
            return Err(AdditionsError::TargetWithoutSource(t.logical.clone()));
        }

        let subject = Subject {
            name: app.to_string(),
            sleeps_on_hlt: spec.vcpu.bit(BitGroup::ProcControls, bits::HLT_EXITING) == Some(true),
            restarts,
            component: app.to_string(),
            maps,
        };
        let peer = if peer_channels.is_empty() && peer_memory.is_empty() {
            None
        } else {
            let name = format!("{app}_peer");
            check_length("peer subject name", &name)?;
            Some(Peer {
                name,
                memory: peer_memory,
                channels: peer_channels,
                replaces,
            })
        };
        Ok(AppAdditions {
            app: app.to_string(),
            memory,
            events,
            channels,
            app_channels,
            subject,
            peer,
            dbgserver_log,
        })
    }
}

fn push_once(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// What a real system puts at the other end of the app's resource `logical`.
fn replacement(logical: &str) -> String {
    let device = [DeviceKind::Net, DeviceKind::Block]
        .into_iter()
        .find_map(|kind| {
            Endpoint::of(kind).iter().find_map(|e| {
                logical
                    .strip_suffix(e.suffix())
                    .filter(|d| !d.is_empty())
                    .map(|d| (kind, d))
            })
        });
    match device {
        Some((DeviceKind::Net, dev)) => format!(
            "network device `{dev}` (muennet): a network subject, e.g. nic_linux with a \
             muennet interface on these channels"
        ),
        Some((DeviceKind::Block, dev)) => format!(
            "block device `{dev}` (muenblock): a block server, e.g. Muen's AHCI driver \
             (ahci_drv) with its blockdev_requestN, blockdev_responseN and blockdev_shmN"
        ),
        None => format!("`{logical}`: the subject that serves it"),
    }
}

type Attributes<'a> = &'a [(&'a str, &'a str)];

struct Out(Writer<Vec<u8>>);

impl Out {
    fn start(&mut self, tag: &str, attributes: Attributes<'_>) -> io::Result<()> {
        let element = BytesStart::new(tag).with_attributes(attributes.iter().copied());
        self.0.write_event(Event::Start(element))
    }

    fn end(&mut self, tag: &str) -> io::Result<()> {
        self.0.write_event(Event::End(BytesEnd::new(tag)))
    }

    fn empty(&mut self, tag: &str, attributes: Attributes<'_>) -> io::Result<()> {
        let element = BytesStart::new(tag).with_attributes(attributes.iter().copied());
        self.0.write_event(Event::Empty(element))
    }

    /// `<!-- text -->` (a `--` in it is written as `- -`, which XML requires).
    fn comment(&mut self, text: &str) -> io::Result<()> {
        let text = format!(" {} ", text.replace("--", "- -"));
        self.0
            .write_event(Event::Comment(BytesText::from_escaped(text.as_str())))
    }

    /// A section with one part per app that has something for it; left out if none.
    fn section<'a, T: 'a>(
        &mut self,
        tag: &str,
        parts: impl Iterator<Item = (&'a str, &'a [T])> + Clone,
        mut item: impl FnMut(&mut Out, &T) -> io::Result<()>,
    ) -> io::Result<()> {
        if parts.clone().all(|(_, items)| items.is_empty()) {
            return Ok(());
        }
        self.start(tag, &[])?;
        for (app, items) in parts.filter(|(_, items)| !items.is_empty()) {
            self.comment(app)?;
            for i in items {
                item(self, i)?;
            }
        }
        self.end(tag)
    }

    fn additions(&mut self, a: &SystemAdditions, comment: &str) -> io::Result<()> {
        self.0
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        self.comment(comment)?;
        self.comment(
            "What the apps need in a Muen system policy (source format). Each section
     below is Muen system-policy XML. Add
     - the children of <memory>, <events>, <channels> and <subjects> to the system
       policy's sections of the same name,
     - the maps of <dbgserverLogs> at the end of the dbgserver subject's
       <component ref=\"dbgserver\">,
     - the <partition> of <scheduling> to the scheduling plan, with its minor frames,
     - the component of <components> to the system's component specifications.
     The subjects marked STAND-IN hold the other ends of the apps' channels until the
     real peers replace them. Muen's demo system takes this file as it is:
     ../shared/muen/pipeline.sh, option additions.",
        )?;
        self.start("systemAdditions", &[])?;
        let apps = &a.apps;
        self.section(
            "memory",
            apps.iter().map(|p| (p.app.as_str(), p.memory.as_slice())),
            |w, m| {
                w.empty(
                    "memory",
                    &[
                        ("name", &m.name),
                        ("size", &word64(m.size)),
                        ("caching", "WB"),
                    ],
                )
            },
        )?;
        self.section(
            "events",
            apps.iter().map(|p| (p.app.as_str(), p.events.as_slice())),
            |w, e| w.empty("event", &[("name", e), ("mode", "self")]),
        )?;
        // The app channels after all the others, by logical name: Muen lists a
        // subject's channel events and vectors in the order the system declares its
        // channels, so each app's come in the order of its specification (its devices'
        // first, then its app channels by name), and the pages are what its
        // specification alone gives.
        let mut app_channels: Vec<&(String, PhysicalChannel)> =
            apps.iter().flat_map(|a| &a.app_channels).collect();
        app_channels.sort_by(|a, b| a.0.cmp(&b.0));
        let app_channels: Vec<PhysicalChannel> =
            app_channels.into_iter().map(|(_, c)| c.clone()).collect();
        let between = [("channels between the apps", app_channels.as_slice())];
        self.section(
            "channels",
            apps.iter()
                .map(|p| (p.app.as_str(), p.channels.as_slice()))
                .chain(between.iter().copied()),
            |w, c| {
                let size = match c.size {
                    ChannelSize::Bytes(n) => word64(n),
                    ChannelSize::LogChannel => "$logchannel_size".to_string(),
                };
                let mut attributes = vec![("name", c.name.as_str()), ("size", size.as_str())];
                if c.has_event {
                    attributes.push(("hasEvent", "asap"));
                }
                w.empty("channel", &attributes)
            },
        )?;
        self.start("subjects", &[])?;
        for app in apps {
            self.subject(&app.subject)?;
            if let Some(peer) = &app.peer {
                self.peer(peer, &app.app)?;
            }
        }
        self.end("subjects")?;
        let logs: Vec<&Map> = apps
            .iter()
            .filter_map(|a| a.dbgserver_log.as_ref())
            .collect();
        if !logs.is_empty() {
            self.start("dbgserverLogs", &[])?;
            self.comment(
                "append to the maps of the dbgserver subject's <component \
                 ref=\"dbgserver\">: each becomes one of its log channels",
            )?;
            for m in logs {
                self.map(m)?;
            }
            self.end("dbgserverLogs")?;
        }
        self.scheduling(&a.partition)?;
        if a.has_peers() {
            self.start("components", &[])?;
            self.comment("STAND-IN: the component of the stand-in peers (no code)")?;
            self.empty(
                "component",
                &[("name", PEER_COMPONENT), ("profile", "native")],
            )?;
            self.end("components")?;
        }
        self.end("systemAdditions")
    }

    fn map(&mut self, m: &Map) -> io::Result<()> {
        self.empty("map", &[("logical", &m.logical), ("physical", &m.physical)])
    }

    /// `<events>` with the `vmx_exit` group: everything panics, HLT may sleep.
    fn vmx_exit(&mut self, sleeps_on_hlt: bool) -> io::Result<()> {
        self.start("source", &[])?;
        self.start("group", &[("name", "vmx_exit")])?;
        self.start("default", &[("physical", "system_panic")])?;
        self.empty("system_panic", &[])?;
        self.end("default")?;
        if sleeps_on_hlt {
            // Exit reason 12 is HLT.
            self.start(
                "event",
                &[
                    ("id", "12"),
                    ("logical", "hlt"),
                    ("physical", "subject_sleep"),
                ],
            )?;
            self.empty("subject_sleep", &[])?;
            self.end("event")?;
        }
        self.end("group")?;
        self.end("source")
    }

    fn subject(&mut self, s: &Subject) -> io::Result<()> {
        self.start("subject", &[("name", &s.name)])?;
        self.start("events", &[])?;
        self.vmx_exit(s.sleeps_on_hlt)?;
        if !s.restarts.is_empty() {
            self.start("target", &[])?;
            for r in &s.restarts {
                self.start(
                    "event",
                    &[("logical", &r.logical), ("physical", &r.physical)],
                )?;
                self.empty("reset", &[])?;
                self.end("event")?;
            }
            self.end("target")?;
        }
        self.end("events")?;
        self.start("component", &[("ref", &s.component)])?;
        for m in &s.maps {
            self.map(m)?;
        }
        self.end("component")?;
        self.end("subject")
    }

    fn peer(&mut self, p: &Peer, app: &str) -> io::Result<()> {
        let mut text = format!(
            "STAND-IN for the subjects at the other end of {app}'s channels; replace it
       with the real ones:"
        );
        for r in &p.replaces {
            text.push_str("\n       - ");
            text.push_str(r);
        }
        self.comment(&text)?;
        self.start("subject", &[("name", &p.name)])?;
        if !p.memory.is_empty() {
            self.start("memory", &[])?;
            for m in &p.memory {
                self.empty(
                    "memory",
                    &[
                        ("logical", &m.logical),
                        ("physical", &m.physical),
                        ("writable", "true"),
                        ("executable", "false"),
                    ],
                )?;
            }
            self.end("memory")?;
        }
        self.start("events", &[])?;
        self.vmx_exit(false)?;
        self.end("events")?;
        self.start("channels", &[])?;
        for c in &p.channels {
            let (tag, notification) = match c.role {
                Role::Writer => ("writer", "event"),
                _ => ("reader", "vector"),
            };
            let mut attributes = vec![("logical", c.logical.as_str()), ("physical", &c.physical)];
            if c.notified {
                attributes.push((notification, "auto"));
            }
            self.empty(tag, &attributes)?;
        }
        self.end("channels")?;
        self.empty("component", &[("ref", PEER_COMPONENT)])?;
        self.end("subject")
    }

    fn scheduling(&mut self, p: &Partition) -> io::Result<()> {
        let (cpu, ticks) = (p.cpu.to_string(), p.ticks.to_string());
        self.start(
            "scheduling",
            &[("cpu", &cpu), ("takeFrom", &p.take_from), ("ticks", &ticks)],
        )?;
        self.comment(&format!(
            "A suggestion: add the <partition> to the scheduling plan's <partitions>,
       and to every major frame a <minorFrame partition=\"{}\" ticks=\"{ticks}\"/>
       on CPU {cpu}, taking the ticks from another partition's minor frame there
       (pipeline.sh takes them from {})",
            p.name, p.take_from
        ))?;
        self.start("partition", &[("name", &p.name)])?;
        for g in &p.groups {
            self.start("group", &[])?;
            self.empty("subject", &[("name", g)])?;
            self.end("group")?;
        }
        self.end("partition")?;
        self.end("scheduling")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muen_spec::model::{SourceEvent, TargetAction, TargetEvent};
    use std::path::Path;

    fn echo() -> ComponentSpec {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/echo/app.toml");
        crate::component_spec(&manifest, None, None).unwrap()
    }

    fn source(logical: &str, id: u8, action: Option<SourceAction>) -> SourceEvent {
        SourceEvent {
            logical: logical.into(),
            id,
            action,
        }
    }

    #[test]
    fn events_get_targets_with_actions_or_are_refused() {
        let a = AppAdditions::new(&echo()).unwrap();
        assert_eq!(a.events, ["echo_exit", "echo_timer"]);
        assert_eq!(a.subject.restarts, [map("restart", "echo_exit")]);
        assert!(a.subject.sleeps_on_hlt);

        // A vmcall event without a target of its own: Muen wants exactly one target
        // with an action, and only `exit` gets one here (make-additions.py's target
        // without an action fails mucfgvalidate).
        let mut s = echo();
        s.events.source.push(source("ping", 5, None));
        assert_eq!(
            AppAdditions::new(&s),
            Err(AdditionsError::NoTarget("ping".into()))
        );
        s.events.target.push(TargetEvent {
            logical: "ping".into(),
            id: None,
            action: None,
        });
        assert_eq!(
            AppAdditions::new(&s),
            Err(AdditionsError::TargetWithoutAction("ping".into()))
        );
        s.events.target.last_mut().unwrap().action = Some(TargetAction::Reset);
        let a = AppAdditions::new(&s).unwrap();
        assert!(a.events.contains(&"echo_ping".to_string()));
        assert!(a.subject.maps.contains(&map("ping", "echo_ping")));

        let mut s = echo();
        s.events.target.push(TargetEvent {
            logical: "wake".into(),
            id: None,
            action: Some(TargetAction::InjectInterrupt { vector: 40 }),
        });
        assert_eq!(
            AppAdditions::new(&s),
            Err(AdditionsError::TargetWithoutSource("wake".into()))
        );
    }

    /// The variant of docs/muen.md: `exit` with the kernel action `system_poweroff` goes
    /// to the system's kernel event of that name, with no self event and no restart.
    #[test]
    fn a_kernel_action_maps_to_the_systems_kernel_event() {
        let mut s = echo();
        s.events.source[0] = source("exit", 0, Some(SourceAction::SystemPoweroff));
        let a = AppAdditions::new(&s).unwrap();
        assert!(a.subject.maps.contains(&map("exit", "system_poweroff")));
        assert!(a.subject.restarts.is_empty());
        assert_eq!(a.events, ["echo_timer"]);
        s.events.source[0] = source("exit", 0, Some(SourceAction::UnmaskIrq(3)));
        assert_eq!(
            AppAdditions::new(&s),
            Err(AdditionsError::SourceAction("exit".into()))
        );
    }

    #[test]
    fn what_cannot_be_wired_is_refused() {
        let mut s = echo();
        s.depends.push("libmucontrol".into());
        let e = AppAdditions::new(&s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`<library ref=\"libmucontrol\">`: the additions cannot wire library \
             `libmucontrol` (known: libmutime, libmudebuglog)"
        );
        let mut s = echo();
        s.devices.push(muen_spec::model::Device {
            logical: "nic".into(),
            irqs: vec![],
            memory: vec![],
            io_ports: vec![],
        });
        assert_eq!(
            AppAdditions::new(&s),
            Err(AdditionsError::Unsupported("devices (<requires><devices>)"))
        );
        let spec = echo();
        let twice = [("a", spec.clone()), ("b", spec)];
        assert_eq!(
            SystemAdditions::new(&twice),
            Err(("b", AdditionsError::DuplicateApp("echo".into())))
        );
    }

    /// Without HLT exits the subject has no `subject_sleep` exit; without libraries no
    /// debug log and no dbgserver map; without channels no peer.
    #[test]
    fn only_what_the_specification_asks_for() {
        let mut s = echo();
        s.vcpu
            .set_bit(BitGroup::ProcControls, bits::HLT_EXITING, false);
        s.depends.clear();
        s.channels.clear();
        let a = AppAdditions::new(&s).unwrap();
        assert!(!a.subject.sleeps_on_hlt);
        assert_eq!(a.dbgserver_log, None);
        assert!(a.channels.is_empty() && a.peer.is_none());
        let all = SystemAdditions::new(&[((), s)]).unwrap();
        assert!(!all.has_peers());
        let xml = all.to_xml("test");
        assert!(!xml.contains("\n <components>") && !xml.contains("\n <dbgserverLogs>"));
        assert!(xml.contains("\n <subjects>"));
        assert!(!xml.contains("subject_sleep"));
        assert_eq!(all.partition.groups, ["echo"]);
    }

    /// Writes manifests into a fresh directory and returns the apps as
    /// `system_additions` gives them to [`SystemAdditions::with_protocols`].
    fn apps(tag: &str, manifests: &[&str]) -> Vec<(String, ComponentSpec, Vec<ChannelProtocol>)> {
        let dir = std::env::temp_dir().join(format!("additions-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut out = Vec::new();
        for (i, text) in manifests.iter().enumerate() {
            let path = dir.join(format!("{i}.toml"));
            std::fs::write(&path, text).unwrap();
            let spec = crate::component_spec(&path, None, None).unwrap();
            let protocols = muen_manifest::App::load(&path, None)
                .unwrap()
                .channel
                .iter()
                .map(|c| ChannelProtocol {
                    logical: c.name.clone(),
                    protocol: c.protocol,
                    element_size: c.element_size,
                })
                .collect();
            out.push((spec.name.clone(), spec, protocols));
        }
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    const WEB: &str = "name = \"web\"\n[net.service0]\n\
        [channel.requests]\ndirection = \"out\"\nsize = \"64K\"\nelement_size = 512\nprotocol = 7\n\
        [channel.responses]\ndirection = \"in\"\nsize = \"64K\"\nelement_size = 512\nprotocol = 8\n";
    const VAULT: &str = "name = \"vault\"\n\
        [channel.requests]\ndirection = \"in\"\nsize = \"64K\"\nelement_size = 512\nprotocol = 7\n\
        [channel.responses]\ndirection = \"out\"\nsize = \"64K\"\nelement_size = 512\nprotocol = 8\n";

    #[test]
    fn an_out_and_an_in_channel_of_one_name_are_one_channel() {
        let all = SystemAdditions::with_protocols(&apps("pair", &[WEB, VAULT])).unwrap();
        let (web, vault) = (&all.apps[0], &all.apps[1]);
        // Each channel is declared once, by its writer, and mapped in both.
        let declared = |a: &AppAdditions| -> Vec<(String, bool)> {
            a.channels
                .iter()
                .chain(a.app_channels.iter().map(|(_, c)| c))
                .filter(|c| !c.name.starts_with("debuglog_"))
                .map(|c| (c.name.clone(), c.has_event))
                .collect()
        };
        assert_eq!(
            declared(web),
            [
                ("web_service0_in".to_string(), true),
                ("web_service0_out".to_string(), true),
                ("web_requests".to_string(), true)
            ]
        );
        assert_eq!(declared(vault), [("vault_responses".to_string(), true)]);
        assert!(web.subject.maps.contains(&map("requests", "web_requests")));
        assert!(web
            .subject
            .maps
            .contains(&map("responses", "vault_responses")));
        assert!(vault
            .subject
            .maps
            .contains(&map("requests", "web_requests")));
        assert!(vault
            .subject
            .maps
            .contains(&map("responses", "vault_responses")));
        // No stand-in for them: web's peer holds only its network device's ends, and
        // vault has nothing left for a peer.
        let peer = web.peer.as_ref().unwrap();
        let ends: Vec<&str> = peer.channels.iter().map(|c| c.physical.as_str()).collect();
        assert_eq!(ends, ["web_service0_in", "web_service0_out"]);
        assert!(vault.peer.is_none());
        assert_eq!(all.partition.groups, ["web", "web_peer", "vault"]);
        let xml = all.to_xml("test");
        assert_eq!(
            xml.matches("<channel name=\"web_requests\"").count(),
            1,
            "{xml}"
        );
        assert_eq!(xml.matches("physical=\"web_requests\"").count(), 2, "{xml}");
    }

    #[test]
    fn an_end_without_its_other_gets_the_stand_in() {
        let alone = SystemAdditions::with_protocols(&apps("alone", &[VAULT])).unwrap();
        let vault = &alone.apps[0];
        let peer = vault.peer.as_ref().unwrap();
        let ends: Vec<(Role, &str, &str, bool)> = peer
            .channels
            .iter()
            .map(|c| (c.role, c.logical.as_str(), c.physical.as_str(), c.notified))
            .collect();
        assert_eq!(
            ends,
            [
                (Role::Writer, "to_requests", "vault_requests", true),
                (Role::Reader, "from_responses", "vault_responses", true)
            ]
        );
        assert!(
            peer.replaces[0].starts_with(
                "channel `requests`: an app with `[channel.requests]`, direction = \"out\""
            ),
            "{:?}",
            peer.replaces
        );
        // The same from AppAdditions::new.
        let spec = &apps("alone2", &[VAULT])[0].1;
        assert_eq!(AppAdditions::new(spec).unwrap(), *vault);
        // Two readers and no writer: one channel, one stand-in writer (the first
        // reader's peer).
        let reader2 = VAULT.replace("vault", "mirror").replace(
            "[channel.responses]\ndirection = \"out\"",
            "[channel.other]\ndirection = \"out\"",
        );
        let two = SystemAdditions::with_protocols(&apps("two", &[VAULT, &reader2])).unwrap();
        assert!(two.apps[1]
            .subject
            .maps
            .contains(&map("requests", "vault_requests")));
        let writers = two
            .apps
            .iter()
            .filter_map(|a| a.peer.as_ref())
            .flat_map(|p| &p.channels)
            .filter(|c| c.physical == "vault_requests")
            .count();
        assert_eq!(writers, 1);
    }

    #[test]
    fn ends_that_disagree_are_refused_naming_both() {
        let refused = |tag: &str, web: &str| {
            SystemAdditions::with_protocols(&apps(tag, &[web, VAULT]))
                .unwrap_err()
                .1
                .to_string()
        };
        assert_eq!(
            refused(
                "size",
                &WEB.replacen("size = \"64K\"", "size = \"128K\"", 1)
            ),
            "channel `requests`: this app reads it with size 0x10000, `web` writes it with \
             size 0x20000; both ends of a channel must agree"
        );
        assert_eq!(
            refused(
                "elem",
                &WEB.replacen("element_size = 512", "element_size = 256", 1)
            ),
            "channel `requests`: this app reads it with element size 512, `web` writes it \
             with element size 256; both ends of a channel must agree"
        );
        assert_eq!(
            refused("proto", &WEB.replacen("protocol = 7", "protocol = 9", 1)),
            "channel `requests`: this app reads it with protocol id 0x7, `web` writes it \
             with protocol id 0x9; both ends of a channel must agree"
        );
        assert_eq!(
            refused(
                "event",
                &WEB.replacen("protocol = 7\n", "protocol = 7\nevent = false\n", 1)
            ),
            "channel `requests`: this app reads it with event on, `web` writes it with event \
             off; both ends of a channel must agree"
        );
        let writer2 = VAULT.replace("vault", "forger").replace(
            "[channel.requests]\ndirection = \"in\"",
            "[channel.requests]\ndirection = \"out\"",
        );
        let e = SystemAdditions::with_protocols(&apps("writers", &[WEB, &writer2])).unwrap_err();
        assert_eq!(e.0, "forger");
        assert_eq!(
            e.1.to_string(),
            "channel `requests`: `web` writes it too; a channel has one writer (direction = \
             \"out\" in one manifest, \"in\" in the others)"
        );
    }

    #[test]
    fn stand_ins_say_what_replaces_them() {
        // One line per device, however its channels and memory interleave.
        let manifest = "name = \"two\"\n[block.a]\n[block.b]\n[net.c]\n";
        let dir = std::env::temp_dir().join(format!("additions-two-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.toml");
        std::fs::write(&path, manifest).unwrap();
        let spec = crate::component_spec(&path, None, None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let peer = AppAdditions::new(&spec).unwrap().peer.unwrap();
        let devices: Vec<&str> = peer
            .replaces
            .iter()
            .map(|r| r.split('`').nth(1).unwrap())
            .collect();
        assert_eq!(devices.len(), 3, "{:?}", peer.replaces);
        for d in ["a", "b", "c"] {
            assert!(devices.contains(&d), "{devices:?}");
        }
        assert!(replacement("service0|in").starts_with("network device `service0`"));
        assert!(replacement("storage|data").starts_with("block device `storage`"));
        assert_eq!(replacement("other"), "`other`: the subject that serves it");
        assert_eq!(replacement("|in"), "`|in`: the subject that serves it");
    }
}
