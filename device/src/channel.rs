//! Typed channels between subjects: what a channel's reader and writer promise their
//! users ([`Receiver`], [`Sender`]), and why a receive returned no element
//! ([`ChannelError`]).
//!
//! A channel carries elements of one [`ElementType`] from one subject (the writer) to
//! others (the readers), as Muen's SHMStream channels do: a ring in shared memory, no
//! back pressure, no way for a reader to talk back. The writer may be hostile, so a
//! receiver treats what it reads as input: it never panics or reads outside the
//! channel, it returns only whole elements the writer published, and the element's
//! fields are validated by the application on the returned copy. The rules have names
//! (the compliance suite's `ChannelRule`), as in `docs/device-abi.md`.

use core::fmt;

use muen_channel::{ElementType, Incompatible, Misbehaviour, ReadError};

use crate::Pollable;

/// Why [`Receiver::receive`] returned no element. After every one of them the
/// receiver works on: calling `receive` again is always right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// No element is waiting: none since the last one, or the writer has not started
    /// the channel (yet). Retryable after [`Pollable::has_data`] (or the runtime's
    /// `poll`) reports data.
    Again,
    /// The writer started the channel anew (it restarted): elements of its previous
    /// run that were not received are gone, and those of the new run follow. Reported
    /// once per restart.
    PeerRestarted,
    /// The writer overwrote elements before they were received (a channel has no back
    /// pressure): the `lost` elements that were waiting are skipped, and receiving goes
    /// on with those written after.
    Lost {
        /// How many elements were skipped.
        lost: u64,
    },
    /// The writer's channel is not one of this element type (another protocol id or
    /// element size, or no SHMStream channel at all). No element is returned, and
    /// `has_data` is false, until the writer starts it correctly.
    WrongType(Incompatible),
    /// The writer broke the channel's protocol (counters that go back or jump, a ring
    /// that does not fit the region); the receiver resynchronises.
    PeerMisbehaved(Misbehaviour),
}

impl ChannelError {
    /// Whether elements were lost with this report: the writer restarted or ran
    /// ahead, or broke the protocol.
    pub const fn lost_elements(&self) -> bool {
        matches!(
            self,
            ChannelError::PeerRestarted
                | ChannelError::Lost { .. }
                | ChannelError::PeerMisbehaved(_)
        )
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Again => f.write_str("no element waiting"),
            ChannelError::PeerRestarted => f.write_str("the writer restarted"),
            ChannelError::Lost { lost } => write!(f, "{lost} elements lost (overrun)"),
            // muen-channel's words: "incompatible channel: protocol 0x...", "writer
            // misbehaves: ...".
            ChannelError::WrongType(e) => ReadError::Incompatible(*e).fmt(f),
            ChannelError::PeerMisbehaved(e) => ReadError::Misbehaviour(*e).fmt(f),
        }
    }
}

impl core::error::Error for ChannelError {}

/// The reading end of a channel of `E`s.
///
/// - **Whole.** `receive` returns one whole element as the writer wrote it (a copy:
///   the writer cannot change it afterwards), in the order written, each once.
/// - **NoData.** With nothing waiting it returns [`ChannelError::Again`] at once.
///   While an element waits, [`Pollable::has_data`] is true and `receive` does not
///   say `Again`; after `Again`, `has_data` stays false until the writer writes.
///   (`has_data` is also true when a restart or a loss is waiting to be reported.)
/// - **Overrun.** A receiver that falls behind by more than the channel holds gets
///   [`ChannelError::Lost`] with the exact number of skipped elements, then the
///   elements written after; never a part of an element.
/// - **PeerRestart.** After the writer starts the channel anew, `receive` reports
///   [`ChannelError::PeerRestarted`] once, then returns the new run's elements.
/// - **WrongType.** A channel of another protocol id or element size gives
///   [`ChannelError::WrongType`] and no element; it works once the writer starts it
///   with this type.
/// - **PeerMisbehaviour.** Whatever the writer puts into the channel, the receiver
///   never panics, never reads outside the channel, never returns an element the
///   writer did not publish whole, and never returns one element twice.
pub trait Receiver<E: ElementType>: Pollable {
    /// Receives the next element.
    fn receive(&mut self) -> Result<E, ChannelError>;

    /// Receives as many waiting elements as fit `elements` (at least one, in order)
    /// and returns how many; the errors are those of [`Receiver::receive`]. An empty
    /// slice receives nothing and returns 0.
    fn receive_batch(&mut self, elements: &mut [E]) -> Result<usize, ChannelError> {
        let mut n = 0;
        for slot in elements.iter_mut() {
            match self.receive() {
                Ok(e) => *slot = e,
                Err(ChannelError::Again) if n > 0 => break,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
            n += 1;
        }
        Ok(n)
    }
}

/// The writing end of a channel of `E`s.
///
/// - **SendWhole.** `send` writes the element whole into the channel, after the
///   elements sent before, and signals the readers (the channel's event, if it has
///   one) once it is visible to them. It never blocks and never fails: there is no
///   back pressure, and a reader that falls behind loses elements (its
///   [`ChannelError::Lost`]).
/// - **Start.** Taking the writer starts the channel anew, with the element type's
///   protocol id and size and a new epoch, so readers see each start of the writing
///   subject ([`ChannelError::PeerRestarted`]).
pub trait Sender<E: ElementType> {
    /// Sends one element.
    fn send(&mut self, element: &E);

    /// Sends `elements` one after the other. An implementation may make them visible
    /// together with one signal (the runtime's `ChannelWriter` does); this default
    /// sends each with [`Sender::send`], one signal each.
    fn send_batch(&mut self, elements: &[E]) {
        for e in elements {
            self.send(e);
        }
    }
}
