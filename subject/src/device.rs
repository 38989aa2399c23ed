//! Device acquisition: a driver's channels and events found by name in the subject
//! info page, and why that can fail. The device ABI itself (the traits, their errors
//! and [`Sys`]) is the crate `muen-device`, re-exported here.

use core::fmt;

use muen_abi::names::{Name, NameError};
use muen_channel::{ConfigError, RegionError};
use muen_sinfo::{Memory, MemoryKind, SubjectInfo};

pub use muen_device::*;

/// Why a device could not be acquired. Every variant names the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquireError {
    /// The device name breaks the naming rules.
    BadName {
        /// The name, cut to 63 bytes.
        device: Name,
        /// The rule it breaks.
        error: NameError,
    },
    /// The sinfo page has no memory region of this name.
    Missing {
        /// The logical region name.
        region: Name,
    },
    /// The region is not a channel (memory kind `subject_channel`).
    NotAChannel {
        /// The logical region name.
        region: Name,
        /// Its kind.
        kind: MemoryKind,
    },
    /// The region must be writable and is not.
    NotWritable {
        /// The logical region name.
        region: Name,
    },
    /// The region's address or size cannot be a channel or buffer.
    BadRegion {
        /// The logical region name.
        region: Name,
        /// Why.
        error: RegionError,
    },
    /// The region cannot hold the protocol's channel.
    Channel {
        /// The logical region name.
        region: Name,
        /// Why.
        error: ConfigError,
    },
    /// The event of this name has a number `vmcall` cannot carry (above 63).
    BadEvent {
        /// The logical event name.
        event: Name,
        /// Its number.
        number: u8,
    },
    /// The block server failed while the client asked for the geometry.
    Server {
        /// The device.
        device: Name,
        /// What failed.
        error: BlockError,
    },
    /// The device was acquired already: a device is taken once, so that its driver is
    /// the only user of its regions.
    AlreadyAcquired {
        /// The device.
        device: Name,
    },
    /// The channel name breaks the naming rules (`muen_abi::names::check_channel_name`).
    BadChannelName {
        /// The name, cut to 63 bytes.
        channel: Name,
        /// The rule it breaks.
        error: NameError,
    },
    /// A reader was asked for a channel the subject may write: its writable mapping
    /// makes the subject the channel's writer.
    NotReadOnly {
        /// The logical region name.
        region: Name,
    },
    /// The channel's end was taken already: a channel end is taken once, so that its
    /// handle is the only user of the region.
    ChannelTaken {
        /// The channel.
        channel: Name,
    },
    /// The block server answered a geometry question with an unusable value.
    BadGeometry {
        /// The device.
        device: Name,
        /// The question (`Max_Devices`, `Block_Length`, `Max_Blocks_Count`, ...).
        field: &'static str,
        /// The answer.
        value: u64,
    },
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::BadName { device, error } => {
                write!(f, "device name `{device}` {error}")
            }
            AcquireError::Missing { region } => {
                write!(f, "region `{region}`: not in the subject info page")
            }
            AcquireError::NotAChannel { region, kind } => write!(
                f,
                "region `{region}`: memory kind {kind}, expected subject_channel"
            ),
            AcquireError::NotWritable { region } => {
                write!(f, "region `{region}`: not writable, but this subject writes it")
            }
            AcquireError::BadRegion { region, error } => write!(f, "region `{region}`: {error}"),
            AcquireError::Channel { region, error } => write!(f, "region `{region}`: {error}"),
            AcquireError::BadEvent { event, number } => {
                write!(f, "event `{event}`: number {number} is above 63")
            }
            AcquireError::Server { device, error } => {
                write!(f, "block device `{device}`: {error}")
            }
            AcquireError::AlreadyAcquired { device } => {
                write!(f, "device `{device}`: acquired already (a device is taken once)")
            }
            AcquireError::BadChannelName { channel, error } => {
                write!(f, "channel name `{channel}` {error}")
            }
            AcquireError::NotReadOnly { region } => write!(
                f,
                "region `{region}`: writable, so this subject is the channel's writer; a \
                 reader takes a channel the subject reads"
            ),
            AcquireError::ChannelTaken { channel } => write!(
                f,
                "channel `{channel}`: taken already (a channel end is taken once)"
            ),
            AcquireError::BadGeometry {
                device,
                field,
                value,
            } => write!(
                f,
                "block device `{device}`: the server answered {field} with {value}, which is unusable"
            ),
        }
    }
}

impl core::error::Error for AcquireError {}

/// `s` as a [`Name`], cut to 63 bytes at a character boundary.
pub(crate) fn name(s: &str) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

/// The logical name of endpoint `e` of `device` (the device name was checked).
pub(crate) fn endpoint(device: &str, e: muen_abi::names::Endpoint) -> Name {
    muen_abi::names::endpoint_name(device, e).unwrap_or_else(|| name(device))
}

/// Checks a device name.
pub(crate) fn check_name(device: &str) -> Result<(), AcquireError> {
    muen_abi::names::check_device_name(device).map_err(|error| AcquireError::BadName {
        device: name(device),
        error,
    })
}

/// The memory region `region`, which must exist, be writable if `writable`, and be a
/// channel if `channel`.
pub(crate) fn region(
    info: &SubjectInfo<'_>,
    region: &Name,
    channel: bool,
    writable: bool,
) -> Result<Memory, AcquireError> {
    let m = info.memory(region).ok_or_else(|| AcquireError::Missing {
        region: region.clone(),
    })?;
    if channel && m.kind != MemoryKind::SubjectChannel {
        return Err(AcquireError::NotAChannel {
            region: region.clone(),
            kind: m.kind,
        });
    }
    if writable && !m.writable() {
        return Err(AcquireError::NotWritable {
            region: region.clone(),
        });
    }
    Ok(m)
}

/// The event `event`, if the page has one.
pub(crate) fn event(
    info: &SubjectInfo<'_>,
    event: &Name,
) -> Result<Option<muen_channel::Event>, AcquireError> {
    match info.event(event) {
        None => Ok(None),
        Some(number) => {
            muen_channel::Event::new(number)
                .map(Some)
                .ok_or_else(|| AcquireError::BadEvent {
                    event: event.clone(),
                    number,
                })
        }
    }
}

/// Address and length of `m` as a pointer and `usize`.
pub(crate) fn span(region: &Name, m: &Memory) -> Result<(usize, usize), AcquireError> {
    match (usize::try_from(m.address), usize::try_from(m.size)) {
        (Ok(a), Ok(l)) => Ok((a, l)),
        _ => Err(AcquireError::BadRegion {
            region: region.clone(),
            error: RegionError::TooLarge,
        }),
    }
}
