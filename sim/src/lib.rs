//! The simulated Muen kernel of the project's tests: shared memory in ordinary process
//! memory, subject info pages naming it, and a [`Sys`] ([`SimSys`]) whose clock
//! advances only while the driver waits, during which it runs the peer; and the
//! in-memory peers of the runtime's drivers ([`peers`]: a muennet peer and a muenblock
//! server).
//!
//! The runtime's driver tests, the device compliance suite and the testbed's tests all
//! use this one simulator. It depends only on the ABI, device, channel and sinfo crates,
//! so the runtime (`muen-subject`) can use it as a dev-dependency without a cycle.
//!
//! Everything is leaked on purpose: drivers borrow their regions and their `Sys` for
//! `'static`, as on Muen.

pub mod peers;

use std::cell::{Cell, RefCell};
use std::sync::atomic::AtomicU64;

use muen_abi::time::{Tsc, TscRate};
use muen_channel::Event;
use muen_device::Sys;
use muen_sinfo::{Builder, Content, Memory, MemoryFlags, MemoryKind, SubjectInfo, Version};

/// TSC rate of the simulated clock in kHz: 1 GHz, so ticks are nanoseconds.
pub const KHZ: u32 = 1_000_000;

/// The rate of the simulated clock ([`KHZ`]).
pub const TSC_RATE: TscRate = match TscRate::from_khz(KHZ) {
    Some(rate) => rate,
    None => panic!("KHZ is not 0"),
};

/// Zeroed, 8-byte aligned memory of `bytes` bytes (rounded up to 8) that is only
/// accessed atomically, leaked.
pub fn shared(bytes: usize) -> &'static [AtomicU64] {
    let words: Vec<AtomicU64> = (0..bytes.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
    Box::leak(words.into_boxed_slice())
}

/// A sinfo memory record for `len` bytes at `address`.
pub fn memory_at(address: u64, len: u64, kind: MemoryKind, writable: bool) -> Memory {
    Memory {
        kind,
        content: Content::Uninitialized,
        flags: if writable {
            MemoryFlags::WRITABLE
        } else {
            MemoryFlags::empty()
        },
        pattern: None,
        address,
        size: len,
        hash: None,
    }
}

/// A sinfo memory record for `words`.
pub fn memory(words: &[AtomicU64], kind: MemoryKind, writable: bool) -> Memory {
    memory_at(
        words.as_ptr() as u64,
        std::mem::size_of_val(words) as u64,
        kind,
        writable,
    )
}

/// A subject info page of subject `name`; `f` adds the resources.
///
/// # Panics
///
/// If the builder refuses what `f` added (a test bug).
pub fn page(name: &str, f: impl FnOnce(&mut Builder)) -> SubjectInfo<'static> {
    let mut b = Builder::new(Version::V5, name, KHZ).expect("a valid subject name");
    f(&mut b);
    let bytes: &'static [u8] = Box::leak(b.build().into_boxed_slice());
    SubjectInfo::new_checked(bytes).expect("the builder writes valid pages")
}

/// The simulated kernel (and CPU) of the tests.
///
/// Two levels use it:
///
/// - drivers, through [`Sys`]: the TSC advances by `step` ticks whenever the driver
///   waits without its condition being met, triggered events are recorded, and a peer
///   hook plays the other side each time the driver waits;
/// - the runtime's idle loop, through its `Platform` (which the runtime's tests
///   implement on this type): [`pause`](SimSys::pause) advances the TSC by
///   `pause_step`, [`halt`](SimSys::halt) counts the sleep and runs the kernel hook,
///   which plays the timed event and the peers and may set the clock.
pub struct SimSys {
    now: Cell<u64>,
    step: Cell<u64>,
    pause_step: Cell<u64>,
    events: RefCell<Vec<u8>>,
    waits: Cell<u64>,
    pauses: Cell<u64>,
    halts: Cell<u64>,
    #[allow(clippy::type_complexity)]
    peer: RefCell<Option<Box<dyn FnMut()>>>,
    #[allow(clippy::type_complexity)]
    kernel: RefCell<Option<Box<dyn FnMut(&SimSys)>>>,
}

impl Default for SimSys {
    fn default() -> Self {
        SimSys::new()
    }
}

impl SimSys {
    /// A clock at 1 ms that advances 100 µs per unsatisfied wait and 1 µs per pause,
    /// no peer and no kernel hook.
    pub fn new() -> Self {
        SimSys {
            now: Cell::new(1_000_000),
            step: Cell::new(100_000),
            pause_step: Cell::new(1_000),
            events: RefCell::new(Vec::new()),
            waits: Cell::new(0),
            pauses: Cell::new(0),
            halts: Cell::new(0),
            peer: RefCell::new(None),
            kernel: RefCell::new(None),
        }
    }

    /// A new `SimSys`, leaked (drivers borrow it for `'static`).
    pub fn leaked() -> &'static SimSys {
        Box::leak(Box::new(SimSys::new()))
    }

    /// Runs `peer` whenever the driver waits.
    pub fn set_peer(&self, peer: impl FnMut() + 'static) {
        *self.peer.borrow_mut() = Some(Box::new(peer));
    }

    /// Runs `kernel` whenever the CPU halts ([`halt`](SimSys::halt)).
    pub fn set_kernel(&self, kernel: impl FnMut(&SimSys) + 'static) {
        *self.kernel.borrow_mut() = Some(Box::new(kernel));
    }

    /// How far the clock advances per unsatisfied wait.
    pub fn set_step(&self, ticks: u64) {
        self.step.set(ticks);
    }

    /// How far the clock advances per [`pause`](SimSys::pause).
    pub fn set_pause_step(&self, ticks: u64) {
        self.pause_step.set(ticks);
    }

    /// A spin-wait round (`PAUSE`): the clock advances by the pause step.
    pub fn pause(&self) {
        self.pauses.set(self.pauses.get() + 1);
        self.now.set(self.now.get() + self.pause_step.get());
    }

    /// The CPU sleeps until a vector: counts the sleep and runs the kernel hook (which
    /// decides what happens meanwhile: time passes, peers write, vectors arrive).
    pub fn halt(&self) {
        self.halts.set(self.halts.get() + 1);
        let hook = self.kernel.borrow_mut().take();
        if let Some(mut hook) = hook {
            hook(self);
            // Put it back unless the hook installed another one.
            let mut slot = self.kernel.borrow_mut();
            if slot.is_none() {
                *slot = Some(hook);
            }
        }
    }

    /// How often [`pause`](SimSys::pause) ran.
    pub fn pauses(&self) -> u64 {
        self.pauses.get()
    }

    /// How often the CPU halted.
    pub fn halts(&self) -> u64 {
        self.halts.get()
    }

    /// Sets the clock to `tsc`.
    pub fn set_tsc(&self, tsc: Tsc) {
        self.now.set(tsc.ticks());
    }

    /// The events triggered so far (and keeps them).
    pub fn events(&self) -> Vec<u8> {
        self.events.borrow().clone()
    }

    /// The events triggered so far (and forgets them).
    pub fn take_events(&self) -> Vec<u8> {
        std::mem::take(&mut self.events.borrow_mut())
    }

    /// How often the driver waited.
    pub fn waits(&self) -> u64 {
        self.waits.get()
    }
}

impl Sys for SimSys {
    fn trigger(&self, event: Event) {
        self.events.borrow_mut().push(event.number());
    }

    fn tsc(&self) -> Tsc {
        Tsc::from_ticks(self.now.get())
    }

    fn tsc_rate(&self) -> TscRate {
        TSC_RATE
    }

    fn wait(&self, deadline: Tsc, ready: &mut dyn FnMut() -> bool) {
        self.waits.set(self.waits.get() + 1);
        if let Some(peer) = self.peer.borrow_mut().as_mut() {
            peer();
        }
        if !ready() {
            let now = self.now.get();
            self.now
                .set((now + self.step.get()).min(deadline.ticks().max(now)));
        }
    }
}
