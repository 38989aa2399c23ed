//! Events a subject triggers and vectors it receives.
//!
//! A writer usually tells its reader about new elements by triggering an *event*; on
//! the reader's side that event arrives as an interrupt *vector*. Both are plain
//! numbers from the subject info page (looked up by name); the types keep them apart.

use core::fmt;

/// A vmcall event number this subject may trigger (0..=63).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Event(u8);

/// The highest event number: Muen's kernel masks event numbers to six bits.
const EVENT_MAX: u8 = 63;

impl Event {
    /// The highest event number (63): Muen's kernel masks event numbers to six bits.
    pub const MAX: u8 = EVENT_MAX;

    /// The event with this number, or `None` above 63 (the kernel masks event numbers
    /// to six bits and ignores a call whose number it had to mask).
    pub const fn new(number: u8) -> Option<Self> {
        if number <= EVENT_MAX {
            Some(Event(number))
        } else {
            None
        }
    }

    /// The event number (what goes into RAX).
    pub const fn number(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}", self.0)
    }
}

/// An interrupt vector this subject receives (0..=255; channel vectors are >= 32
/// because 0..=31 are CPU exceptions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vector(pub u8);

impl Vector {
    /// The vector number.
    pub const fn number(self) -> u8 {
        self.0
    }

    /// Whether the number is in the CPU exception range 0..=31 (never a channel's).
    pub const fn is_exception(self) -> bool {
        self.0 < 32
    }
}

impl fmt::Display for Vector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vector {}", self.0)
    }
}

/// How the platform triggers an event: `Vmcall` on Muen; the hosted testbed sends
/// a message to its emulated kernel instead.
pub trait EventHook {
    /// Triggers `event`. Returns when the subject runs again (immediately, unless the
    /// event hands the CPU to another subject or puts this one to sleep).
    fn trigger(&self, event: Event);
}

impl<H: EventHook + ?Sized> EventHook for &H {
    fn trigger(&self, event: Event) {
        (**self).trigger(event)
    }
}

/// Triggers events with the `vmcall` hypercall, the event number in RAX.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
#[derive(Debug)]
pub struct Vmcall(());

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
impl Vmcall {
    /// The hypercall interface.
    ///
    /// # Safety
    ///
    /// The program runs as a Muen subject in VMX non-root mode at CPL 0. Elsewhere
    /// `vmcall` raises #UD (or, in ring 3, a trap the kernel does not treat as an event).
    pub const unsafe fn new() -> Self {
        Vmcall(())
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
impl EventHook for Vmcall {
    fn trigger(&self, event: Event) {
        // SAFETY: `Vmcall::new`'s contract puts us in a Muen subject at CPL 0, where
        // `vmcall` exits to the kernel, which handles (or ignores) the event in RAX and
        // resumes us after the instruction. The asm may read or write memory as far as
        // the compiler knows (no `nomem`), so channel stores issued before it are not
        // moved past it; we do not claim flags or RAX survive.
        unsafe {
            core::arch::asm!(
                "vmcall",
                inout("rax") u64::from(event.number()) => _,
                options(nostack),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct Recorder(Cell<[u8; 4]>, Cell<usize>);

    impl EventHook for Recorder {
        fn trigger(&self, event: Event) {
            let mut seen = self.0.get();
            seen[self.1.get()] = event.number();
            self.0.set(seen);
            self.1.set(self.1.get() + 1);
        }
    }

    #[test]
    fn events_are_limited_to_the_kernel_range() {
        assert_eq!(Event::new(0).map(Event::number), Some(0));
        assert_eq!(Event::new(63).map(Event::number), Some(63));
        assert_eq!(Event::new(64), None);
        assert_eq!(Event::new(255), None);
        assert!(Vector(31).is_exception());
        assert!(!Vector(32).is_exception());
        let r = Recorder(Cell::new([0; 4]), Cell::new(0));
        let hook: &dyn EventHook = &r;
        for n in [2, 63, 7] {
            hook.trigger(Event::new(n).unwrap());
        }
        EventHook::trigger(&&r, Event::new(1).unwrap());
        assert_eq!(r.0.get(), [2, 63, 7, 1]);
    }
}
