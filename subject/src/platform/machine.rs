//! What the runtime needs from the machine: the [`Platform`] trait, and the set of
//! interrupt vectors that arrive in between ([`VectorSet`], filled by the platform's
//! interrupt path into a process-wide bitmap).
//!
//! A leaf: both platforms and everything above them import it, and it imports nothing
//! of the crate.

use core::sync::atomic::{AtomicU64, Ordering};

use muen_abi::time::Tsc;
use muen_channel::{EventHook, Vector};

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

/// A CPU exception (vectors 0..=31) as the Muen platform's exception stubs see it: the
/// vector and the interrupt frame the CPU pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuException {
    /// The vector (0 = #DE, ..., 14 = #PF, ...).
    pub vector: u8,
    /// The error code the CPU pushed; 0 for the vectors that push none.
    pub error_code: u64,
    /// The faulting instruction (or the next one, for traps).
    pub rip: u64,
    /// The code segment selector at the time.
    pub cs: u64,
    /// RFLAGS at the time.
    pub rflags: u64,
    /// The stack pointer at the time.
    pub rsp: u64,
    /// The stack segment selector at the time.
    pub ss: u64,
    /// CR2 (the faulting address) for a page fault, `None` for every other vector.
    pub cr2: Option<u64>,
}

/// A set of interrupt vectors (256 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectorSet([u64; 4]);

impl VectorSet {
    /// The empty set.
    pub const EMPTY: VectorSet = VectorSet([0; 4]);

    /// Adds vector `v`.
    pub fn insert(&mut self, v: Vector) {
        let n = v.number();
        self.0[usize::from(n / 64)] |= 1 << (n % 64);
    }

    /// Whether `v` is in the set.
    pub fn contains(&self, v: Vector) -> bool {
        let n = v.number();
        self.0[usize::from(n / 64)] & (1 << (n % 64)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// The vectors in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Vector> + '_ {
        (0..=255u8).map(Vector).filter(|&v| self.contains(v))
    }
}

/// Vectors received and not yet taken: one bit per vector, set by the interrupt stubs
/// (Muen, `lock bts` on [`PENDING`] from assembly) or by the socket drain (hosted),
/// taken by [`Platform::take_pending`].
#[derive(Debug)]
pub(crate) struct PendingVectors([AtomicU64; 4]);

impl PendingVectors {
    /// No vector pending.
    pub(crate) const fn new() -> Self {
        PendingVectors([const { AtomicU64::new(0) }; 4])
    }

    /// Marks `v` pending (hosted; Muen's stubs set the bit from assembly).
    #[cfg_attr(target_os = "none", allow(dead_code))]
    pub(crate) fn set(&self, v: Vector) {
        let n = v.number();
        self.0[usize::from(n / 64)].fetch_or(1 << (n % 64), Ordering::AcqRel);
    }

    /// Whether any vector is pending.
    pub(crate) fn any(&self) -> bool {
        self.0.iter().any(|w| w.load(Ordering::Acquire) != 0)
    }

    /// Takes (and clears) the pending set.
    pub(crate) fn take(&self) -> VectorSet {
        VectorSet(core::array::from_fn(|i| {
            self.0[i].swap(0, Ordering::AcqRel)
        }))
    }
}

/// The pending vectors of this subject (written by the platform's interrupt path).
pub(crate) static PENDING: PendingVectors = PendingVectors::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_sets() {
        let p = PendingVectors::new();
        assert!(!p.any());
        for v in [0u8, 32, 63, 64, 200, 255] {
            p.set(Vector(v));
        }
        assert!(p.any());
        let s = p.take();
        assert!(!p.any() && p.take().is_empty());
        assert_eq!(
            s.iter().map(Vector::number).collect::<Vec<_>>(),
            [0, 32, 63, 64, 200, 255]
        );
        assert!(s.contains(Vector(255)) && !s.contains(Vector(254)));
        let mut t = VectorSet::EMPTY;
        t.insert(Vector(7));
        assert!(!t.is_empty() && t.contains(Vector(7)));
    }
}
