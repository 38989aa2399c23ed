//! Event ids and interrupt vectors of a Muen app.
//!
//! Muen's component schema accepts only concrete numbers, so `policy-gen` allocates
//! them with this rule (the runtime itself never relies on a number: it looks events
//! and vectors up by name in the subject info page):
//!
//! - vmcall events: `exit` = 0, `timer` = 1, then one per writer channel in device
//!   allocation order, from [`FIRST_CHANNEL_EVENT`] up to [`EVENT_MAX`].
//! - vectors: 0..=31 are CPU exceptions and never used; `timer` = 32, then one per
//!   reader channel in device allocation order, from [`FIRST_CHANNEL_VECTOR`] up to
//!   [`VECTOR_MAX`].

/// The vmcall event the runtime triggers on exit.
pub const EXIT_EVENT: u8 = 0;
/// The vmcall event the runtime arms in the timed event page.
pub const TIMER_EVENT: u8 = 1;
/// The first event id given to a writer channel.
pub const FIRST_CHANNEL_EVENT: u8 = 2;
/// The highest valid event id (Muen masks event numbers to 6 bits).
pub const EVENT_MAX: u8 = 63;

/// The vector injected when the timer event fires.
pub const TIMER_VECTOR: u8 = 32;
/// The first vector given to a reader channel.
pub const FIRST_CHANNEL_VECTOR: u8 = 33;
/// The highest valid vector.
pub const VECTOR_MAX: u8 = 255;

/// The most writer channels an app can have.
pub const MAX_WRITER_CHANNELS: usize = (EVENT_MAX - FIRST_CHANNEL_EVENT) as usize + 1;
/// The most reader channels an app can have.
pub const MAX_READER_CHANNELS: usize = (VECTOR_MAX - FIRST_CHANNEL_VECTOR) as usize + 1;

/// Hands out event ids and vectors in allocation order.
#[derive(Clone, Debug)]
pub struct NumberAllocator {
    next_event: u8,
    next_vector: u8,
    events_exhausted: bool,
    vectors_exhausted: bool,
}

impl Default for NumberAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl NumberAllocator {
    /// An allocator whose first channel event is [`FIRST_CHANNEL_EVENT`] and whose first
    /// channel vector is [`FIRST_CHANNEL_VECTOR`].
    pub const fn new() -> Self {
        Self {
            next_event: FIRST_CHANNEL_EVENT,
            next_vector: FIRST_CHANNEL_VECTOR,
            events_exhausted: false,
            vectors_exhausted: false,
        }
    }

    /// The next event id for a writer channel, `None` once all are used.
    pub fn event(&mut self) -> Option<u8> {
        if self.events_exhausted {
            return None;
        }
        let id = self.next_event;
        if id == EVENT_MAX {
            self.events_exhausted = true;
        } else {
            self.next_event += 1;
        }
        Some(id)
    }

    /// The next vector for a reader channel, `None` once all are used.
    pub fn vector(&mut self) -> Option<u8> {
        if self.vectors_exhausted {
            return None;
        }
        let v = self.next_vector;
        if v == VECTOR_MAX {
            self.vectors_exhausted = true;
        } else {
            self.next_vector += 1;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_every_number_once_then_stops() {
        let mut a = NumberAllocator::new();
        let mut events = 0;
        while let Some(e) = a.event() {
            assert_eq!(e, FIRST_CHANNEL_EVENT + events as u8);
            assert!(e != EXIT_EVENT && e != TIMER_EVENT && e <= EVENT_MAX);
            events += 1;
        }
        assert_eq!(events, MAX_WRITER_CHANNELS);
        assert_eq!(a.event(), None);
        let mut vectors = 0;
        while let Some(v) = a.vector() {
            assert!(v >= 32 && v != TIMER_VECTOR);
            vectors += 1;
        }
        assert_eq!(vectors, MAX_READER_CHANNELS);
        assert_eq!(a.vector(), None);
    }
}
