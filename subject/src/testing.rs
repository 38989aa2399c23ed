//! Test support: shared memory in ordinary process memory, a simulated [`Sys`], and
//! subject info pages that point at both.

use core::cell::{Cell, RefCell};
use core::sync::atomic::AtomicU64;

use muen_channel::Event;
use muen_sinfo::{Builder, Content, Memory, MemoryFlags, MemoryKind, SubjectInfo, Version};

use crate::clock::Clock;
use crate::sys::Sys;

/// TSC rate of the simulated clock: 1 GHz, so ticks are nanoseconds.
pub const KHZ: u32 = 1_000_000;

/// Zeroed, 8-byte aligned memory that Rust accesses only atomically, leaked so that
/// sinfo records can point at it for `'static`.
pub fn shared(bytes: usize) -> &'static [AtomicU64] {
    let words: Vec<AtomicU64> = (0..bytes / 8).map(|_| AtomicU64::new(0)).collect();
    Box::leak(words.into_boxed_slice())
}

/// The address of `words` as a sinfo memory record.
pub fn memory(words: &[AtomicU64], kind: MemoryKind, writable: bool) -> Memory {
    Memory {
        kind,
        content: Content::Uninitialized,
        flags: if writable {
            MemoryFlags::WRITABLE
        } else {
            MemoryFlags::empty()
        },
        pattern: None,
        address: words.as_ptr() as u64,
        size: core::mem::size_of_val(words) as u64,
        hash: None,
    }
}

/// A subject info page of subject `name`; `f` adds the resources.
pub fn page(name: &str, f: impl FnOnce(&mut Builder)) -> SubjectInfo<'static> {
    let mut b = Builder::new(Version::V5, name, KHZ).unwrap();
    f(&mut b);
    let bytes: &'static [u8] = Box::leak(b.build().into_boxed_slice());
    SubjectInfo::new_checked(bytes).unwrap()
}

/// A simulated kernel: a TSC that advances only when the driver waits (by `step`
/// ticks), a record of triggered events, and a hook that plays the peer whenever the
/// driver waits.
pub struct TestSys {
    pub now: Cell<u64>,
    pub step: Cell<u64>,
    pub events: RefCell<Vec<u8>>,
    pub waits: Cell<u64>,
    #[allow(clippy::type_complexity)]
    pub peer: RefCell<Option<Box<dyn FnMut()>>>,
}

impl TestSys {
    pub fn new() -> Self {
        TestSys {
            now: Cell::new(1_000_000),
            step: Cell::new(100_000),
            events: RefCell::new(Vec::new()),
            waits: Cell::new(0),
            peer: RefCell::new(None),
        }
    }

    pub fn set_peer(&self, peer: impl FnMut() + 'static) {
        *self.peer.borrow_mut() = Some(Box::new(peer));
    }
}

impl Sys for TestSys {
    fn trigger(&self, event: Event) {
        self.events.borrow_mut().push(event.number());
    }

    fn tsc(&self) -> u64 {
        self.now.get()
    }

    fn clock(&self) -> Clock {
        Clock::new(KHZ).unwrap()
    }

    fn wait(&self, deadline: u64, ready: &mut dyn FnMut() -> bool) {
        self.waits.set(self.waits.get() + 1);
        if let Some(peer) = self.peer.borrow_mut().as_mut() {
            peer();
        }
        if !ready() {
            self.now
                .set((self.now.get() + self.step.get()).min(deadline.max(self.now.get())));
        }
    }
}
