//! SHMStream v2 channels of the Muen separation kernel, and the protocols spoken on
//! them.
//!
//! A channel is a shared memory region: a 64-byte [`Header`] followed by a ring of
//! fixed-size elements. One subject writes it ([`Writer`]), others read it
//! ([`Reader`]) without any way to talk back. The reader treats the writer as hostile:
//! whatever the writer puts into the region, the reader
//!
//! - never reads or writes outside the region, never panics, never blocks;
//! - copies every element into private memory exactly once, and decides whether the
//!   copy is good only after the copy (seqlock on the `wsc` counter and the epoch);
//! - reports a broken peer as [`ReadError::Misbehaviour`] or
//!   [`ReadError::Incompatible`], distinct from an honest writer that is slow
//!   ([`ReadError::NoData`]), restarting ([`ReadError::EpochChanged`]) or too fast
//!   ([`ReadError::Overrun`]), and always recovers (no state that repeats forever).
//!
//! The design, the memory ordering and the differences to the reference C reader are
//! explained in `docs/channels.md`.
//!
//! Layout of the crate:
//! - [`region`]: [`Region`]/[`RegionMut`], the only code that touches shared memory;
//! - [`header`]: the header layout and its field offsets;
//! - [`copy`]: the race-free element copy;
//! - [`writer`], [`reader`], [`error`]: the SHMStream algorithm;
//! - [`protocol`]: `muennet`, `debuglog`, `muenblock`;
//! - [`element`]: [`ElementType`], a protocol's element as one Rust type (its id and
//!   size), which the protocols' element types implement;
//! - [`event`]: events and vectors.
//!
//! ```
//! use core::sync::atomic::AtomicU64;
//! use muen_channel::protocol::muennet;
//! use muen_channel::{epoch_from, ReadError, Reader, Region, RegionMut, Writer};
//!
//! // In a subject the regions come from sinfo (`Region::new`); here from a buffer.
//! let memory: Vec<AtomicU64> = (0..0x4000 / 8).map(|_| AtomicU64::new(0)).collect();
//! let mut tx = Writer::init(
//!     RegionMut::from_atomics(&memory)?,
//!     muennet::PROTOCOL,
//!     muennet::ELEMENT_SIZE,
//!     epoch_from(0x1234),
//! )?;
//! let mut rx = Reader::new(Region::from_atomics(&memory)?, muennet::PROTOCOL, muennet::ELEMENT_SIZE)?;
//!
//! tx.write(&muennet::Element::new(b"frame bytes")?)?;
//! assert_eq!(rx.read::<muennet::Element>().unwrap_err(), ReadError::EpochChanged);
//! let element: muennet::Element = rx.read()?;
//! assert_eq!(element.frame()?, b"frame bytes");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![no_std]

pub mod copy;
pub mod element;
pub mod error;
pub mod event;
pub mod header;
pub mod protocol;
pub mod reader;
pub mod region;
pub mod writer;

pub use element::ElementType;
pub use error::{ConfigError, Incompatible, Misbehaviour, ReadError, WriteError};
pub use event::{Event, EventHook, Vector};
pub use header::{ring_elements, Field, Header, HEADER_SIZE, TRANSPORT_MARKER};
pub use reader::{ElementRef, Reader};
pub use region::{OutOfBounds, Region, RegionError, RegionMut};
pub use writer::{epoch_from, Writer};

#[cfg(test)]
mod tests;
