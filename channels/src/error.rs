//! What can go wrong on a channel, from the point of view of this subject.

use core::fmt;

/// A writer or reader was configured with parameters no channel can have. These come
/// from this subject's own configuration (protocol constants, sinfo region sizes),
/// never from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The element size is 0.
    ZeroElementSize,
    /// The protocol identifier is 0 (SHMStream reserves it).
    ZeroProtocol,
    /// The region cannot hold the header and one element.
    RegionTooSmall {
        /// Length of the region.
        region: usize,
        /// Element size asked for.
        element_size: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroElementSize => f.write_str("element size is 0"),
            ConfigError::ZeroProtocol => f.write_str("protocol identifier is 0"),
            ConfigError::RegionTooSmall {
                region,
                element_size,
            } => write!(
                f,
                "a {region}-byte region cannot hold the 64-byte header and one {element_size}-byte element"
            ),
        }
    }
}

/// Why an element was not written. Only caller mistakes: the writer never depends on
/// anything the peer can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The element (or batch) length does not match the channel's element size (a
    /// batch must be a whole number of elements).
    WrongLength {
        /// The channel's element size.
        element_size: usize,
        /// Length that was passed.
        found: usize,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::WrongLength {
                element_size,
                found,
            } => write!(
                f,
                "{found} bytes are not a whole number of {element_size}-byte elements"
            ),
        }
    }
}

/// Why the channel is not the one this reader expects. The writer may simply speak
/// another protocol, or not have initialised the channel yet; the reader keeps trying
/// on every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incompatible {
    /// The transport field is not the SHMStream v2 marker.
    Transport {
        /// Value found.
        found: u64,
    },
    /// The protocol field is not the expected protocol.
    Protocol {
        /// Value found.
        found: u64,
    },
    /// The element size differs from the expected protocol's element size.
    ElementSize {
        /// Value found.
        found: u64,
    },
}

/// The writer published something an honest SHMStream writer cannot: the reader
/// refused it without touching memory outside the region and recovered as described
/// per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// `elements` is 0. The channel is refused until the epoch changes.
    NoElements,
    /// `64 + size * elements` exceeds the region (or overflows 64 bits). The channel is
    /// refused until the epoch changes.
    RingOutsideRegion {
        /// The `elements` value found.
        elements: u64,
    },
    /// The write counter is below the read counter without a new epoch. Reported
    /// once; the reader keeps its read counter (it never goes back within an epoch,
    /// so no slot is delivered twice), reads return `NoData` and no data is pending
    /// until the write counter passes it. A writer that restarts is followed when the
    /// reader sees the channel inactive or a new epoch, or when the application
    /// calls [`Reader::drain`](crate::Reader::drain), which re-bases the reader on
    /// the writer's counter.
    WriteCounterBehind {
        /// Write counter found.
        wc: u64,
        /// Read counter of this reader.
        rc: u64,
    },
    /// After copying element `rc`, the write start counter says that element was never
    /// started (`wsc <= rc`), or the write counter went backwards. The copy is
    /// discarded and the reader continues from the write counter it saw.
    CountersInconsistent {
        /// Write start counter found after the copy.
        wsc: u64,
        /// Read counter of this reader (the element that was copied).
        rc: u64,
    },
}

/// Why [`Reader::read`](crate::Reader::read) returned no element.
///
/// The first five are the SHMStream reader states (success being `Ok`);
/// [`ReadError::Misbehaviour`] separates a hostile or broken writer from an honest one
/// being slow or restarting, and [`ReadError::WrongLength`] is the caller's mistake.
/// After every error the reader is in a consistent state: calling `read` again is
/// always correct and never blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The channel's epoch is 0: no writer is active.
    Inactive,
    /// The channel is active but speaks another transport, protocol or element size.
    Incompatible(Incompatible),
    /// The reader (re)synchronised with a new epoch, or the epoch changed since the
    /// reader last checked it (during this call, or while elements it knew to be
    /// published were left unread). Nothing was returned; read again. Every new epoch
    /// is reported, twice in the second case: once for the discarded copy, once when
    /// the reader synchronises.
    EpochChanged,
    /// No new element.
    NoData,
    /// The writer overwrote elements before this reader got to them. The reader
    /// skipped to the writer's counter (`rc := wc`, as the SHMStream specification
    /// recommends): the next read returns the next element the writer completes.
    Overrun {
        /// Number of elements skipped (the read counter advanced by this much).
        lost: u64,
    },
    /// The writer broke the protocol; see [`Misbehaviour`] for the recovery.
    Misbehaviour(Misbehaviour),
    /// The buffer passed to the reader is not one element long. Nothing was read.
    WrongLength {
        /// The reader's element size.
        element_size: usize,
        /// Length of the buffer passed.
        found: usize,
    },
}

impl ReadError {
    /// The result number of the reference implementations (0 inactive, 1 incompatible
    /// interface, 2 epoch changed, 3 no data, 4 overrun detected; 5 is success) for
    /// logs that compare with them. Misbehaviour maps to 1 for a refused channel and 4
    /// for counters; `WrongLength` has no equivalent and maps to 1.
    pub const fn reference_code(&self) -> u8 {
        match self {
            ReadError::Inactive => 0,
            ReadError::Incompatible(_) => 1,
            ReadError::EpochChanged => 2,
            ReadError::NoData => 3,
            ReadError::Overrun { .. } => 4,
            ReadError::Misbehaviour(Misbehaviour::NoElements)
            | ReadError::Misbehaviour(Misbehaviour::RingOutsideRegion { .. }) => 1,
            ReadError::Misbehaviour(_) => 4,
            ReadError::WrongLength { .. } => 1,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Inactive => f.write_str("channel inactive"),
            ReadError::Incompatible(Incompatible::Transport { found }) => {
                write!(f, "incompatible channel: transport {found:#x}")
            }
            ReadError::Incompatible(Incompatible::Protocol { found }) => {
                write!(f, "incompatible channel: protocol {found:#x}")
            }
            ReadError::Incompatible(Incompatible::ElementSize { found }) => {
                write!(f, "incompatible channel: element size {found}")
            }
            ReadError::EpochChanged => f.write_str("channel epoch changed"),
            ReadError::NoData => f.write_str("no data"),
            ReadError::Overrun { lost } => write!(f, "overrun: {lost} elements lost"),
            ReadError::Misbehaviour(Misbehaviour::NoElements) => {
                f.write_str("writer misbehaves: ring has 0 elements")
            }
            ReadError::Misbehaviour(Misbehaviour::RingOutsideRegion { elements }) => {
                write!(
                    f,
                    "writer misbehaves: {elements} elements exceed the region"
                )
            }
            ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind { wc, rc }) => {
                write!(
                    f,
                    "writer misbehaves: write counter {wc} below read counter {rc}"
                )
            }
            ReadError::Misbehaviour(Misbehaviour::CountersInconsistent { wsc, rc }) => write!(
                f,
                "writer misbehaves: write start counter {wsc} inconsistent with element {rc}"
            ),
            ReadError::WrongLength {
                element_size,
                found,
            } => write!(
                f,
                "buffer of {found} bytes for {element_size}-byte elements"
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

impl core::error::Error for WriteError {}

impl core::error::Error for ReadError {}
