//! What drivers need from the runtime: events, time and sleeping.
//!
//! [`Runtime`](crate::Runtime) implements [`Sys`] on top of its platform; the drivers'
//! unit tests implement it with a simulated clock and an in-test peer, so the drivers
//! run unchanged against channels in ordinary memory.

use muen_channel::Event;

use crate::clock::Clock;

/// The services of the runtime a device driver uses.
pub trait Sys {
    /// Triggers `event` (`vmcall` on Muen).
    fn trigger(&self, event: Event);

    /// The current TSC value.
    fn tsc(&self) -> u64;

    /// The TSC rate.
    fn clock(&self) -> Clock;

    /// Waits once: returns when `ready()` is true, the TSC reached `deadline`, or a
    /// vector arrived (which may be unrelated: callers loop). It may also return early
    /// for no reason (a `PAUSE` round when no timer is available); it never sleeps past
    /// data that `ready()` would have seen when it was called.
    fn wait(&self, deadline: u64, ready: &mut dyn FnMut() -> bool);
}

impl<S: Sys + ?Sized> Sys for &S {
    fn trigger(&self, event: Event) {
        (**self).trigger(event)
    }
    fn tsc(&self) -> u64 {
        (**self).tsc()
    }
    fn clock(&self) -> Clock {
        (**self).clock()
    }
    fn wait(&self, deadline: u64, ready: &mut dyn FnMut() -> bool) {
        (**self).wait(deadline, ready)
    }
}

/// Something [`Runtime::poll`](crate::Runtime::poll) can wait for.
pub trait Pollable {
    /// Whether data is waiting (a pure check: it consumes nothing).
    fn has_data(&self) -> bool;
}
