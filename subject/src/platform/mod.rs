//! The two platforms a subject runs on, behind one small interface.
//!
//! | | `muen` (`target_os = "none"`) | `hosted` (`target_os = "linux"`) |
//! |---|---|---|
//! | start | `_start` at `0x20_0000`, own GDT/TSS/IDT | maps the testbed's memory file (fd 3) |
//! | trigger event | `vmcall`, number in RAX | `Event(n)` on the control socket (fd 4) |
//! | vectors | IDT stubs set bits in [`PENDING`] | `Vector(v)` messages drained into [`PENDING`] |
//! | halt | `sti; hlt` with interrupts off until then | `Halt`, then a blocking `recv` |
//! | time | `rdtsc` | `rdtsc` |
//! | exit | `cli; hlt` forever | `_exit(code)` |
//!
//! Everything above this module (runtime, idle loop, drivers) is written against
//! [`Platform`], so the same code runs on both, and unit tests run it on a mock.

use core::sync::atomic::{AtomicU64, Ordering};

use muen_abi::time::Tsc;
use muen_channel::EventHook;

#[cfg(target_os = "linux")]
pub mod hosted;
#[cfg(target_os = "none")]
pub mod muen;

/// The platform of this build.
#[cfg(target_os = "none")]
pub type Current = muen::Muen;
/// The platform of this build.
#[cfg(target_os = "linux")]
pub type Current = hosted::Hosted;

/// What the runtime needs from the machine. Triggering an event comes from
/// [`EventHook`] (`vmcall` on Muen).
pub trait Platform: EventHook {
    /// The current TSC reading.
    fn tsc(&self) -> Tsc;

    /// A spin-wait hint (`PAUSE`).
    fn pause(&self);

    /// The vectors received since the last call (and forgets them).
    fn take_pending(&self) -> VectorSet;

    /// Sleeps until a vector arrives, unless `ready()` returns true or a vector is
    /// already pending; returns whether it slept.
    ///
    /// `ready` runs with vectors held back (interrupts disabled on Muen; on hosted,
    /// after the control socket was drained), so a vector that arrives after `ready`
    /// looked at the channels is not lost: it ends the sleep at once.
    fn halt_unless(&self, ready: &mut dyn FnMut() -> bool) -> bool;

    /// Ends the subject with `code`: halts forever (Muen) or exits the process (hosted).
    fn exit(&self, code: i32) -> !;
}

impl<P: Platform + ?Sized> Platform for &P {
    fn tsc(&self) -> Tsc {
        (**self).tsc()
    }
    fn pause(&self) {
        (**self).pause()
    }
    fn take_pending(&self) -> VectorSet {
        (**self).take_pending()
    }
    fn halt_unless(&self, ready: &mut dyn FnMut() -> bool) -> bool {
        (**self).halt_unless(ready)
    }
    fn exit(&self, code: i32) -> ! {
        (**self).exit(code)
    }
}

/// A set of interrupt vectors (256 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectorSet([u64; 4]);

impl VectorSet {
    /// The empty set.
    pub const EMPTY: VectorSet = VectorSet([0; 4]);

    /// Adds vector `v`.
    pub fn insert(&mut self, v: u8) {
        self.0[usize::from(v / 64)] |= 1 << (v % 64);
    }

    /// Whether `v` is in the set.
    pub fn contains(&self, v: u8) -> bool {
        self.0[usize::from(v / 64)] & (1 << (v % 64)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// The vectors in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(|&v| self.contains(v))
    }
}

/// Vectors received and not yet taken: one bit per vector, set by the interrupt stubs
/// (Muen, `lock bts`) or by the socket drain (hosted), taken by
/// [`Platform::take_pending`].
#[derive(Debug)]
pub struct PendingVectors([AtomicU64; 4]);

impl Default for PendingVectors {
    fn default() -> Self {
        Self::new()
    }
}

impl PendingVectors {
    /// No vector pending.
    pub const fn new() -> Self {
        PendingVectors([const { AtomicU64::new(0) }; 4])
    }

    /// Marks `v` pending.
    pub fn set(&self, v: u8) {
        self.0[usize::from(v / 64)].fetch_or(1 << (v % 64), Ordering::AcqRel);
    }

    /// Whether any vector is pending.
    pub fn any(&self) -> bool {
        self.0.iter().any(|w| w.load(Ordering::Acquire) != 0)
    }

    /// Takes (and clears) the pending set.
    pub fn take(&self) -> VectorSet {
        VectorSet(core::array::from_fn(|i| {
            self.0[i].swap(0, Ordering::AcqRel)
        }))
    }
}

/// The pending vectors of this subject (written by the platform's interrupt path).
pub static PENDING: PendingVectors = PendingVectors::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_sets() {
        let p = PendingVectors::new();
        assert!(!p.any());
        for v in [0u8, 32, 63, 64, 200, 255] {
            p.set(v);
        }
        assert!(p.any());
        let s = p.take();
        assert!(!p.any() && p.take().is_empty());
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 32, 63, 64, 200, 255]);
        assert!(s.contains(255) && !s.contains(254));
        let mut t = VectorSet::EMPTY;
        t.insert(7);
        assert!(!t.is_empty() && t.contains(7));
    }
}
