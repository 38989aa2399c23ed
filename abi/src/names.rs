//! Logical names of a Muen app's resources, and the rules for valid names.
//!
//! The runtime finds every resource by (name, kind) in the subject info page, so these
//! names are the contract between `policy-gen` (which writes them into the policy) and
//! the runtime (which looks them up).

use core::fmt::Write;

/// Muen's limit for any name (`nameType`: 1..63 characters).
pub const NAME_MAX: usize = 63;

/// A name of at most [`NAME_MAX`] bytes, built without a heap.
pub type Name = heapless::String<NAME_MAX>;

/// The RAM region (memory kind `subject`) the component provides.
pub const RAM: &str = "ram";
/// The debug log writer channel mapped by `libmudebuglog`.
pub const DEBUGLOG: &str = "debuglog";
/// The time info page mapped by `libmutime`.
pub const TIME_INFO: &str = "time_info";
/// The subject info page (added by Muen's toolchain).
pub const SINFO: &str = "sinfo";
/// The scheduling info page (added by Muen's toolchain).
pub const SCHEDULING_INFO: &str = "scheduling_info";
/// The timed event page (added by Muen's toolchain).
pub const TIMED_EVENT: &str = "timed_event";
/// The event the runtime triggers when the application exits.
pub const EXIT_EVENT: &str = "exit";
/// The event the runtime writes into the timed event page, and the vector that the
/// policy injects when it fires (both carry this name).
pub const TIMER: &str = "timer";

/// The kinds of device the runtime offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    /// A network device on two muennet channels.
    Net,
    /// A block device on muenblock request/response channels and a data buffer.
    Block,
}

/// One of the regions a device consists of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// Net: frames from the peer (reader channel with a vector).
    NetIn,
    /// Net: frames to the peer (writer channel with an event).
    NetOut,
    /// Block: requests to the server (writer channel with an event).
    BlockRequest,
    /// Block: responses from the server (reader channel with a vector).
    BlockResponse,
    /// Block: the shared data buffer (writable memory).
    BlockData,
}

impl Endpoint {
    /// The endpoints of a device of `kind`, in the order they are allocated.
    pub const fn of(kind: DeviceKind) -> &'static [Endpoint] {
        match kind {
            DeviceKind::Net => &[Endpoint::NetIn, Endpoint::NetOut],
            DeviceKind::Block => &[
                Endpoint::BlockRequest,
                Endpoint::BlockResponse,
                Endpoint::BlockData,
            ],
        }
    }

    /// The suffix appended to the device name, including the `|`.
    pub const fn suffix(self) -> &'static str {
        match self {
            Endpoint::NetIn => "|in",
            Endpoint::NetOut => "|out",
            Endpoint::BlockRequest => "|req",
            Endpoint::BlockResponse => "|resp",
            Endpoint::BlockData => "|data",
        }
    }

    /// How the subject maps this endpoint.
    pub const fn role(self) -> Role {
        match self {
            Endpoint::NetIn | Endpoint::BlockResponse => Role::Reader,
            Endpoint::NetOut | Endpoint::BlockRequest => Role::Writer,
            Endpoint::BlockData => Role::Memory,
        }
    }
}

/// How a subject maps one of its device regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A channel the subject reads (read-only mapping); it receives a vector.
    Reader,
    /// A channel the subject writes (writable mapping); it triggers an event.
    Writer,
    /// Plain shared memory, writable.
    Memory,
}

/// Longest suffix of any [`Endpoint`] (`|resp`, `|data`).
pub const ENDPOINT_SUFFIX_MAX: usize = 5;

/// Longest device name: every endpoint name must fit [`NAME_MAX`].
pub const DEVICE_NAME_MAX: usize = NAME_MAX - ENDPOINT_SUFFIX_MAX;

/// Longest component name: the toolchain names provided regions `<component>|<logical>`
/// and the shortest one, `|ram`, must fit [`NAME_MAX`].
pub const COMPONENT_NAME_MAX: usize = NAME_MAX - 1 - RAM.len();

/// Why a name is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than the limit given.
    TooLong {
        /// The limit that applies.
        max: usize,
    },
    /// The name does not start with an ASCII letter.
    BadStart,
    /// The name contains a character other than ASCII letters, digits, `_` and `-`
    /// (device and channel names: letters, digits and `_`).
    BadCharacter {
        /// The offending character.
        found: char,
        /// Its byte position.
        position: usize,
    },
    /// The name is one the runtime or Muen's toolchain uses for the subject's own
    /// resources ([`RESERVED`]).
    Reserved,
}

impl core::fmt::Display for NameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NameError::Empty => f.write_str("is empty"),
            NameError::TooLong { max } => write!(f, "is longer than {max} characters"),
            NameError::BadStart => f.write_str("must start with an ASCII letter"),
            NameError::BadCharacter { found, position } => {
                write!(
                    f,
                    "has the character {found:?} at position {position}, which is not allowed"
                )
            }
            NameError::Reserved => {
                f.write_str("is reserved for the subject's own resources (")?;
                for (i, name) in RESERVED.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(name)?;
                }
                f.write_str(")")
            }
        }
    }
}

fn check(name: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max {
        return Err(NameError::TooLong { max });
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(NameError::BadStart);
    }
    match name.char_indices().find(|&(_, c)| !allowed(c)) {
        Some((position, found)) => Err(NameError::BadCharacter { found, position }),
        None => Ok(()),
    }
}

/// Checks a component (subject) name: 1..=[`COMPONENT_NAME_MAX`] characters, an ASCII
/// letter first, then ASCII letters, digits, `_` or `-`.
pub fn check_component_name(name: &str) -> Result<(), NameError> {
    check(name, COMPONENT_NAME_MAX, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == '-'
    })
}

/// Checks a device name: 1..=[`DEVICE_NAME_MAX`] characters, an ASCII letter first,
/// then ASCII letters, digits or `_`. (Solo5 manifests allow only letters and digits,
/// a subset; `|` is excluded because it separates the endpoint suffix.)
pub fn check_device_name(name: &str) -> Result<(), NameError> {
    check(name, DEVICE_NAME_MAX, |c| {
        c.is_ascii_alphanumeric() || c == '_'
    })
}

/// Logical names of the subject's own resources, which an app channel may not take:
/// its memory, the libraries' channels, the toolchain's pages, and the runtime's
/// events and vectors (a writer channel's event and a reader channel's vector carry
/// the channel's name).
pub const RESERVED: [&str; 8] = [
    RAM,
    DEBUGLOG,
    TIME_INFO,
    SINFO,
    SCHEDULING_INFO,
    TIMED_EVENT,
    EXIT_EVENT,
    TIMER,
];

/// Checks the name of an app-to-app channel (`[channel.NAME]` in `app.toml`): the rules
/// of [`check_device_name`] (the names share one name space: a channel's logical name is
/// its name, a device's regions are `<device>|<endpoint>`), and none of [`RESERVED`].
pub fn check_channel_name(name: &str) -> Result<(), NameError> {
    check_device_name(name)?;
    if RESERVED.contains(&name) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// The logical name of `endpoint` of device `device`, e.g. `service0|in`.
///
/// Returns `None` if the result would exceed [`NAME_MAX`] (it never does for a device
/// name that passes [`check_device_name`]).
pub fn endpoint_name(device: &str, endpoint: Endpoint) -> Option<Name> {
    let mut name = Name::new();
    write!(name, "{device}{}", endpoint.suffix()).ok()?;
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names() {
        assert_eq!(
            endpoint_name("service0", Endpoint::NetIn).unwrap(),
            "service0|in"
        );
        assert_eq!(
            endpoint_name("service0", Endpoint::NetOut).unwrap(),
            "service0|out"
        );
        assert_eq!(
            endpoint_name("disk", Endpoint::BlockRequest).unwrap(),
            "disk|req"
        );
        assert_eq!(
            endpoint_name("disk", Endpoint::BlockResponse).unwrap(),
            "disk|resp"
        );
        assert_eq!(
            endpoint_name("disk", Endpoint::BlockData).unwrap(),
            "disk|data"
        );
        let longest = "d".repeat(DEVICE_NAME_MAX);
        for kind in [DeviceKind::Net, DeviceKind::Block] {
            for &e in Endpoint::of(kind) {
                assert!(endpoint_name(&longest, e).is_some());
                assert!(e.suffix().len() <= ENDPOINT_SUFFIX_MAX);
            }
        }
        assert!(endpoint_name(&"d".repeat(DEVICE_NAME_MAX + 1), Endpoint::BlockData).is_none());
    }

    #[test]
    fn name_rules() {
        assert_eq!(check_device_name("service0"), Ok(()));
        assert_eq!(check_device_name("net_1"), Ok(()));
        assert_eq!(check_device_name(""), Err(NameError::Empty));
        assert_eq!(check_device_name("0net"), Err(NameError::BadStart));
        assert_eq!(
            check_device_name("a|b"),
            Err(NameError::BadCharacter {
                found: '|',
                position: 1
            })
        );
        assert_eq!(
            check_device_name("a-b"),
            Err(NameError::BadCharacter {
                found: '-',
                position: 1
            })
        );
        assert_eq!(
            check_device_name(&"x".repeat(59)),
            Err(NameError::TooLong {
                max: DEVICE_NAME_MAX
            })
        );
        assert_eq!(check_component_name("echo-2"), Ok(()));
        assert_eq!(check_component_name(&"c".repeat(59)), Ok(()));
        assert_eq!(
            check_component_name(&"c".repeat(60)),
            Err(NameError::TooLong { max: 59 })
        );
        assert_eq!(check_component_name("é"), Err(NameError::BadStart));
    }

    #[test]
    fn channel_names_follow_device_names_and_leave_the_subjects_own_alone() {
        assert_eq!(check_channel_name("requests"), Ok(()));
        assert_eq!(check_channel_name("to_vault_2"), Ok(()));
        assert_eq!(
            check_channel_name("a|b"),
            Err(NameError::BadCharacter {
                found: '|',
                position: 1
            })
        );
        assert_eq!(
            check_channel_name(&"c".repeat(DEVICE_NAME_MAX + 1)),
            Err(NameError::TooLong {
                max: DEVICE_NAME_MAX
            })
        );
        for name in RESERVED {
            assert_eq!(check_device_name(name), Ok(()), "{name}");
            assert_eq!(check_channel_name(name), Err(NameError::Reserved), "{name}");
        }
        let mut text = heapless::String::<128>::new();
        write!(text, "{}", NameError::Reserved).unwrap();
        assert_eq!(
            text,
            "is reserved for the subject's own resources (ram, debuglog, time_info, sinfo, \
             scheduling_info, timed_event, exit, timer)"
        );
    }
}
