//! The handle given to the application: resources, clocks, the idle loop, devices.

use core::cell::{Cell, RefCell};
use core::fmt;
use core::ptr::NonNull;

use muen_abi::names::{self, DeviceKind, Endpoint, Name};
use muen_abi::time::{Duration, Instant, Tsc, TscRate};
use muen_channel::{Event, Vector};
use muen_sinfo::{
    Memory, ResourceKind, SubjectInfo, TimeInfo, TimeInfoError, TimeInfoRecord, TimedEvent,
    TimedEventRecord,
};

use crate::block::MuenBlock;
use crate::channel::{ChannelReader, ChannelWriter, ElementType};
use crate::clock;
use crate::device::{self, AcquireError, Pollable, Sys};
use crate::exit;
use crate::net::MuenNet;
use crate::platform::{Current, Platform, VectorSet};

/// The longest the idle loop sleeps without a deadline or before a far one: 1 s. It
/// bounds how late a subject notices channel data whose writer triggers no event (as
/// Solo5's network peers do not).
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

/// The runtime handle `main` receives.
///
/// Everything takes `&self`, so devices (which borrow the runtime) and the idle loop
/// can be used together. `P` is the platform; applications use the default.
pub struct Runtime<P: Platform = Current> {
    platform: P,
    info: SubjectInfo<'static>,
    name: Name,
    tsc_rate: TscRate,
    timer: Option<Timer>,
    exit_event: Option<Event>,
    /// The memory regions handed to device drivers.
    taken: Cell<ResourceSet>,
}

/// The timed event page and the `timer` event and vector, when the policy has all three.
struct Timer {
    page: RefCell<TimedEvent<'static>>,
    event: u8,
    vector: Vector,
}

/// A set of sinfo resources, by record index (a page has at most 255 records).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ResourceSet([u64; 4]);

impl ResourceSet {
    fn insert(&mut self, index: usize) {
        if let Some(word) = self.0.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }

    fn contains(&self, index: usize) -> bool {
        self.0
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    fn union(self, other: ResourceSet) -> ResourceSet {
        ResourceSet(core::array::from_fn(|i| self.0[i] | other.0[i]))
    }
}

/// Why the runtime cannot start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The sinfo page gives a TSC rate of 0 kHz.
    NoTscRate,
    /// The subject's name in the sinfo page is not UTF-8 (Muen's policy writes ASCII).
    NameNotUtf8,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoTscRate => f.write_str("sinfo: tsc_khz is 0"),
            StartError::NameNotUtf8 => f.write_str("sinfo: the subject name is not UTF-8"),
        }
    }
}

impl core::error::Error for StartError {}

/// Why [`Runtime::wall_clock`] has no time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WallClockError {
    /// The subject has no usable `time_info` region (no `libmutime`).
    NoTimeInfo,
    /// The time subject did not publish the time within the wait.
    NotPublished,
    /// The published record is out of range.
    Invalid(TimeInfoError),
}

impl fmt::Display for WallClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WallClockError::NoTimeInfo => f.write_str("no time_info region"),
            WallClockError::NotPublished => f.write_str("time not published"),
            WallClockError::Invalid(e) => write!(f, "time_info invalid: {e}"),
        }
    }
}

impl core::error::Error for WallClockError {}

/// Which of the devices passed to [`Runtime::poll`] have data, by their index in the
/// slice given to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready(u64);

impl Ready {
    /// Whether device `index` has data.
    pub const fn contains(&self, index: usize) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    /// Whether no device has data (the deadline passed).
    pub const fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The set as a bitmap: bit `i` is device `i`.
    pub const fn bits(&self) -> u64 {
        self.0
    }

    /// The indices of the devices that have data, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..64).filter(|&i| self.contains(i))
    }
}

/// A memory region of the page that can hold a `T` (aligned, large enough), as a
/// pointer.
fn record_at<T>(memory: Option<Memory>, writable: bool) -> Option<NonNull<T>> {
    let m = memory?;
    let fits = m.size >= core::mem::size_of::<T>() as u64
        && m.address % core::mem::align_of::<T>() as u64 == 0
        && (m.writable() || !writable);
    if !fits {
        return None;
    }
    NonNull::new(usize::try_from(m.address).ok()? as *mut T)
}

impl<P: Platform> Runtime<P> {
    /// The runtime of the subject `info` describes, on `platform`.
    ///
    /// # Safety
    ///
    /// Every memory region `info` names is mapped at its address with its rights for
    /// the rest of the program (Muen and the hosted platform guarantee it for the
    /// subject's own sinfo page), nothing else in this program creates a view of the
    /// timed event page, and no other runtime for these regions exists: the devices
    /// that [`net`](Runtime::net) and [`block`](Runtime::block) hand out, once each,
    /// are then the only users of their regions.
    pub unsafe fn new(platform: P, info: SubjectInfo<'static>) -> Result<Self, StartError> {
        let tsc_rate = TscRate::from_khz(info.tsc_khz()).ok_or(StartError::NoTscRate)?;
        // At most 63 bytes (the page was validated), so it always fits.
        let name = info
            .name()
            .as_str()
            .ok()
            .and_then(|s| Name::try_from(s).ok())
            .ok_or(StartError::NameNotUtf8)?;
        let page = record_at::<TimedEventRecord>(info.memory(names::TIMED_EVENT), true);
        let event = info
            .event(names::TIMER)
            .filter(|&e| Event::new(e).is_some());
        let vector = info.vector(names::TIMER).map(Vector);
        let timer = match (page, event, vector) {
            (Some(page), Some(event), Some(vector)) => Some(Timer {
                // SAFETY: the page is mapped writable (contract), aligned and large
                // enough (checked), and this is its only view (contract).
                page: RefCell::new(unsafe { TimedEvent::from_ptr(page) }),
                event,
                vector,
            }),
            _ => None,
        };
        let exit_event = info.event(names::EXIT_EVENT).and_then(Event::new);
        Ok(Runtime {
            platform,
            info,
            name,
            tsc_rate,
            timer,
            exit_event,
            taken: Cell::new(ResourceSet::default()),
        })
    }

    /// The subject's name (from the sinfo page).
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The subject info page.
    pub fn info(&self) -> &SubjectInfo<'static> {
        &self.info
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The TSC rate (from sinfo).
    pub fn tsc_rate(&self) -> TscRate {
        self.tsc_rate
    }

    /// Monotonic time since the TSC was 0.
    pub fn now(&self) -> Instant {
        self.tsc_rate.instant(self.platform.tsc())
    }

    /// Whether the idle loop can sleep with the timed event (else it polls with PAUSE).
    pub fn has_timer(&self) -> bool {
        self.timer.is_some()
    }

    /// The `timer` vector, if the idle loop uses the timed event.
    pub fn timer_vector(&self) -> Option<Vector> {
        self.timer.as_ref().map(|t| t.vector)
    }

    /// The `exit` event, if the policy has one.
    pub fn exit_event(&self) -> Option<Event> {
        self.exit_event
    }

    /// Wall clock time: the time since the Unix epoch (UTC), from the `time_info` page.
    /// Waits (spinning with PAUSE) up to `max_wait` for the time subject to publish it.
    pub fn wall_clock(&self, max_wait: Duration) -> Result<Duration, WallClockError> {
        let record = record_at::<TimeInfoRecord>(self.info.memory(names::TIME_INFO), false)
            .ok_or(WallClockError::NoTimeInfo)?;
        // SAFETY: the region is mapped readable (`new`'s contract), aligned and large
        // enough (checked); the view only reads it with volatile loads.
        let view = unsafe { TimeInfo::from_ptr(record) };
        let deadline = self
            .platform
            .tsc()
            .saturating_add(self.tsc_rate.ticks(max_wait));
        loop {
            match view.read() {
                Ok(r) => return Ok(clock::wall_time(&r, self.platform.tsc())),
                Err(TimeInfoError::NotPublished) if self.platform.tsc() < deadline => {
                    self.platform.pause()
                }
                Err(TimeInfoError::NotPublished) => return Err(WallClockError::NotPublished),
                Err(e) => return Err(WallClockError::Invalid(e)),
            }
        }
    }

    /// The vectors received since the last call.
    pub fn take_vectors(&self) -> VectorSet {
        self.platform.take_pending()
    }

    /// Waits until one of `devices` has data or monotonic time reaches `deadline`
    /// ([`Instant::MAX`]: no deadline), and returns which devices have data (empty: the
    /// deadline passed). At most 64 devices are looked at.
    ///
    /// It sleeps with HLT (hosted: blocks in the control socket) until a vector
    /// arrives, with the timed event armed for the deadline (at most
    /// [`MAX_SLEEP`] ahead) when the policy provides the `timed_event` page and the
    /// `timer` event and vector; otherwise it polls with PAUSE. Channels are checked
    /// after arming and with vectors held back, so data that arrived before the sleep
    /// is never slept over.
    pub fn poll(&self, deadline: Instant, devices: &[&dyn Pollable]) -> Ready {
        let deadline = self.tsc_rate.tsc_at(deadline);
        let devices = &devices[..devices.len().min(64)];
        let ready = || {
            devices
                .iter()
                .enumerate()
                .fold(0u64, |acc, (i, d)| acc | (u64::from(d.has_data()) << i))
        };
        loop {
            let now = Ready(ready());
            if !now.is_empty() || self.platform.tsc() >= deadline {
                return now;
            }
            self.wait(deadline, &mut || ready() != 0);
        }
    }

    /// Acquires the network device `name` (channels `name|in` and `name|out`).
    ///
    /// A device is taken once: asking again for a device that was acquired (or for
    /// one whose regions another device of this runtime uses) is
    /// [`AcquireError::AlreadyAcquired`]. A failed acquisition takes nothing.
    pub fn net(&self, name: &str) -> Result<MuenNet<'_, Self>, AcquireError> {
        let regions = self.untaken(name, DeviceKind::Net)?;
        // SAFETY: every region of the page is mapped (`new`'s contract), and nothing
        // else uses the device's regions: this runtime never handed them out
        // (`untaken`), no other runtime exists (`new`'s contract), and the runtime's
        // own regions (`debuglog`, `timed_event`) have no `|` in their names.
        let net = unsafe { MuenNet::acquire(self, &self.info, name) }?;
        self.take(regions);
        Ok(net)
    }

    /// Acquires the block device `name` (`name|req`, `name|resp`, `name|data`), asking
    /// the server for its geometry. Taken once, as [`Runtime::net`].
    pub fn block(&self, name: &str) -> Result<MuenBlock<'_, Self>, AcquireError> {
        let regions = self.untaken(name, DeviceKind::Block)?;
        // SAFETY: as in `net`.
        let block = unsafe { MuenBlock::acquire(self, &self.info, name) }?;
        self.take(regions);
        Ok(block)
    }

    /// Takes the reading end of the app channel `name` for elements of type `E`
    /// ([`channel`](crate::channel)): the region `name` (a channel the subject reads)
    /// and the vector `name`, if the policy has one. Taken once, as
    /// [`Runtime::net`]: asking again is [`AcquireError::ChannelTaken`].
    ///
    /// The reader is [`Pollable`]: `poll` returns when an element waits.
    pub fn reader<E: ElementType>(&self, name: &str) -> Result<ChannelReader<'_, E>, AcquireError> {
        let region = self.untaken_channel(name)?;
        // SAFETY: every region of the page is mapped (`new`'s contract), and nothing
        // else reads the channel through another reader: this runtime never handed
        // it out (`untaken_channel`), no other runtime exists (`new`'s contract), and
        // channel names are never the runtime's own regions (`names::RESERVED`).
        let reader = unsafe { ChannelReader::acquire(&self.info, name) }?;
        self.take(region);
        Ok(reader)
    }

    /// Takes the writing end of the app channel `name` for elements of type `E` and
    /// starts the channel ([`channel`](crate::channel)): the region `name` (writable)
    /// and the event `name`, if the policy has one. Taken once, as
    /// [`Runtime::reader`].
    pub fn writer<E: ElementType>(
        &self,
        name: &str,
    ) -> Result<ChannelWriter<'_, E, Self>, AcquireError> {
        let region = self.untaken_channel(name)?;
        // SAFETY: as in `reader`; nothing else writes the channel.
        let writer = unsafe { ChannelWriter::acquire(self, &self.info, name) }?;
        self.take(region);
        Ok(writer)
    }

    /// The region of app channel `name`, if the page has it and it was not handed
    /// out.
    fn untaken_channel(&self, name: &str) -> Result<ResourceSet, AcquireError> {
        let mut regions = ResourceSet::default();
        // The name is checked by the acquisition (a bad one is never in the page as a
        // channel the runtime hands out, but it must be reported as bad, not taken).
        if names::check_channel_name(name).is_err() {
            return Ok(regions);
        }
        if let Some(r) = self.info.resource(name, ResourceKind::Memory) {
            if self.taken.get().contains(r.index) {
                return Err(AcquireError::ChannelTaken {
                    channel: device::name(name),
                });
            }
            regions.insert(r.index);
        }
        Ok(regions)
    }

    /// The memory regions of device `name` of `kind` that the page has, if none of
    /// them was handed out.
    fn untaken(&self, name: &str, kind: DeviceKind) -> Result<ResourceSet, AcquireError> {
        device::check_name(name)?;
        let taken = self.taken.get();
        let mut regions = ResourceSet::default();
        for &endpoint in Endpoint::of(kind) {
            let region = device::endpoint(name, endpoint);
            let Some(r) = self.info.resource(&region, ResourceKind::Memory) else {
                continue; // the driver reports it missing
            };
            if taken.contains(r.index) {
                return Err(AcquireError::AlreadyAcquired {
                    device: device::name(name),
                });
            }
            regions.insert(r.index);
        }
        Ok(regions)
    }

    /// Marks `regions` handed out.
    fn take(&self, regions: ResourceSet) {
        self.taken.set(self.taken.get().union(regions));
    }

    /// Ends the subject: logs the code, triggers the `exit` event if the policy has
    /// one, then halts forever (Muen) or exits the process with `code` (hosted).
    pub fn exit(&self, code: i32) -> ! {
        exit::finish(&self.platform, self.exit_event, code)
    }
}

impl<P: Platform> Sys for Runtime<P> {
    fn trigger(&self, event: Event) {
        self.platform.trigger(event)
    }

    fn tsc(&self) -> Tsc {
        self.platform.tsc()
    }

    fn tsc_rate(&self) -> TscRate {
        self.tsc_rate
    }

    fn wait(&self, deadline: Tsc, ready: &mut dyn FnMut() -> bool) {
        let p = &self.platform;
        // Vectors only wake us; the channels say what happened. Forget old ones so
        // that a stale vector does not cut the sleep short.
        let _ = p.take_pending();
        let Some(timer) = &self.timer else {
            if !ready() {
                p.pause();
            }
            return;
        };
        let now = p.tsc();
        let wake = deadline.min(now.saturating_add(self.tsc_rate.ticks(MAX_SLEEP)));
        // The event number goes first, the trigger last (TimedEvent::arm).
        let _ = timer.page.borrow_mut().arm(timer.event, wake);
        p.halt_unless(&mut || ready() || p.tsc() >= wake);
        timer.page.borrow_mut().disarm();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ElementType;
    use crate::platform::PENDING;
    use core::cell::Cell;
    use core::sync::atomic::{AtomicU64, Ordering};
    use muen_channel::protocol::muenblock::{
        self, Request, RequestKind, Response, REQUEST_REGION_SIZE, REQUEST_SIZE,
        RESPONSE_REGION_SIZE, RESPONSE_SIZE,
    };
    use muen_channel::{epoch_from, EventHook, ReadError, Reader, Region, RegionMut, Writer};
    use muen_device::{BlockDevice, NetDevice};
    use muen_sim::{memory, page, shared, SimSys, KHZ};
    use muen_sinfo::{Builder, MemoryKind};
    use std::rc::Rc;

    /// The runtime's platform on muen-sim's simulated CPU and kernel: `pause` advances
    /// the TSC, `halt` runs the kernel hook, which plays the timed event and the peers.
    #[derive(Clone, Copy)]
    struct Sim(&'static SimSys);

    impl core::ops::Deref for Sim {
        type Target = SimSys;
        fn deref(&self) -> &SimSys {
            self.0
        }
    }

    impl EventHook for Sim {
        fn trigger(&self, event: Event) {
            Sys::trigger(self.0, event)
        }
    }

    impl Platform for Sim {
        fn tsc(&self) -> Tsc {
            Sys::tsc(self.0)
        }
        fn pause(&self) {
            self.0.pause()
        }
        fn take_pending(&self) -> VectorSet {
            PENDING.take()
        }
        fn halt_unless(&self, ready: &mut dyn FnMut() -> bool) -> bool {
            if ready() || PENDING.any() {
                return false;
            }
            self.0.halt();
            true
        }
        fn exit(&self, code: i32) -> ! {
            panic!("exit {code}")
        }
    }

    /// A simulated platform whose kernel hook is `kernel`.
    fn mock(kernel: impl FnMut(&SimSys) + 'static) -> Sim {
        let sim = SimSys::leaked();
        sim.set_kernel(kernel);
        Sim(sim)
    }

    /// The timed event record in `words` (event number, trigger).
    fn timed(words: &[AtomicU64]) -> (u64, u64) {
        (
            words[1].load(Ordering::Relaxed),
            words[0].load(Ordering::Relaxed),
        )
    }

    fn with_timer(b: &mut Builder, timed_page: &[AtomicU64]) {
        b.memory(
            "timed_event",
            memory(timed_page, MemoryKind::SubjectTimedEvent, true),
        )
        .unwrap()
        .event("timer", 1)
        .unwrap()
        .vector("timer", 32)
        .unwrap();
    }

    struct Flag(Rc<Cell<bool>>);
    impl Pollable for Flag {
        fn has_data(&self) -> bool {
            self.0.get()
        }
    }

    // One test at a time touches PENDING (a process-wide static).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn poll_sleeps_with_the_timed_event_until_the_deadline() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let page_mem = shared(0x1000);
        page_mem[0].store(u64::MAX, Ordering::Relaxed);
        let seen = Rc::new(Cell::new((0, 0)));
        let seen2 = seen.clone();
        // The kernel: the timed event fires at its trigger and injects `timer`.
        let m = mock(move |m| {
            let (event, trigger) = timed(page_mem);
            seen2.set((event, trigger));
            assert_ne!(trigger, u64::MAX, "armed before the sleep");
            m.set_tsc(Tsc::from_ticks(m.tsc().ticks().max(trigger)));
            page_mem[0].store(u64::MAX, Ordering::Relaxed);
            PENDING.set(Vector(32));
        });
        let info = page("idle", |b| with_timer(b, page_mem));
        // SAFETY: the page points at leaked test memory.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        assert!(rt.has_timer());
        assert_eq!(rt.timer_vector(), Some(Vector(32)));
        let deadline = rt.now() + Duration::from_millis(5);
        let r = rt.poll(deadline, &[]);
        assert!(r.is_empty());
        assert!(rt.now() >= deadline);
        assert_eq!(m.halts(), 1, "one sleep, no spinning");
        assert_eq!(m.pauses(), 0);
        let ticks = rt.tsc_rate().tsc_at(deadline).ticks();
        assert_eq!(
            seen.get(),
            (1, ticks),
            "event number `timer`, trigger = deadline"
        );
        assert_eq!(timed(page_mem).1, u64::MAX, "disarmed after waking");
    }

    #[test]
    fn poll_caps_a_far_deadline_at_max_sleep() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let page_mem = shared(0x1000);
        let triggers = Rc::new(RefCell::new(Vec::new()));
        let t2 = triggers.clone();
        let m = mock(move |m| {
            let (_, trigger) = timed(page_mem);
            t2.borrow_mut().push(trigger - m.tsc().ticks());
            m.set_tsc(Tsc::from_ticks(trigger));
            PENDING.set(Vector(32));
        });
        let info = page("idle", |b| with_timer(b, page_mem));
        // SAFETY: as above.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        let deadline = rt.now() + Duration::from_millis(2500);
        assert!(rt.poll(deadline, &[]).is_empty());
        let max = rt.tsc_rate().ticks(MAX_SLEEP);
        assert_eq!(
            *triggers.borrow(),
            [max, max, rt.tsc_rate().ticks(Duration::from_millis(500))]
        );
    }

    #[test]
    fn poll_returns_at_once_when_data_is_waiting_and_wakes_for_data() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let page_mem = shared(0x1000);
        let flag = Rc::new(Cell::new(true));
        let f2 = flag.clone();
        // The kernel: a peer writes data during the sleep and its vector arrives.
        let m = mock(move |_| {
            f2.set(true);
            PENDING.set(Vector(33));
        });
        let info = page("idle", |b| with_timer(b, page_mem));
        // SAFETY: as above.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        let idle = Flag(Rc::new(Cell::new(false)));
        let dev = Flag(flag.clone());
        let r = rt.poll(Instant::MAX, &[&idle, &dev]);
        assert_eq!(r, Ready(0b10));
        assert!(r.contains(1) && !r.contains(0));
        assert_eq!(m.halts(), 0, "data was waiting: no sleep");
        flag.set(false);
        let r = rt.poll(Instant::MAX, &[&idle, &dev]);
        assert_eq!(r, Ready(0b10));
        assert_eq!(m.halts(), 1);
        assert!(
            rt.take_vectors().contains(Vector(33)),
            "the vector is left for the application"
        );
    }

    #[test]
    fn data_that_arrives_after_the_check_but_before_the_halt_prevents_the_sleep() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let page_mem = shared(0x1000);
        let m = mock(|_| panic!("must not sleep"));
        let info = page("idle", |b| with_timer(b, page_mem));
        // SAFETY: as above.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        // has_data is false for poll's first look, true from the second on: the look
        // inside halt_unless (vectors held back) sees it.
        struct Late(Cell<u32>);
        impl Pollable for Late {
            fn has_data(&self) -> bool {
                self.0.set(self.0.get() + 1);
                self.0.get() > 1
            }
        }
        let late = Late(Cell::new(0));
        assert_eq!(rt.poll(Instant::MAX, &[&late]), Ready(1));
        assert_eq!(m.halts(), 0);
    }

    #[test]
    fn without_a_timed_event_poll_falls_back_to_pause() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let m = mock(|_| panic!("must not halt without a timer"));
        // `timer` event and vector, but no timed_event page.
        let info = page("idle", |b| {
            b.event("timer", 1).unwrap().vector("timer", 32).unwrap();
        });
        // SAFETY: the page names no memory.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        assert!(!rt.has_timer());
        let deadline = rt.now() + Duration::from_micros(100);
        assert!(rt.poll(deadline, &[]).is_empty());
        assert!(m.pauses() >= 100);
        assert_eq!(m.halts(), 0);
    }

    #[test]
    fn wall_clock_waits_a_bounded_time_and_validates() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let m = mock(|_| {});
        m.set_pause_step(10_000);
        let time = shared(0x1000);
        let info = page("clock", |b| {
            b.memory("time_info", memory(time, MemoryKind::SubjectChannel, false))
                .unwrap();
        });
        // SAFETY: as above.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        let start = m.tsc().ticks();
        assert_eq!(
            rt.wall_clock(Duration::from_millis(2)),
            Err(WallClockError::NotPublished)
        );
        let waited = m.tsc().ticks() - start;
        assert!((2_000_000..2_020_000).contains(&waited), "{waited}");
        // Published: rate then base (base last, as the time subject does).
        time[1].store(u64::from(KHZ) * 1000, Ordering::Relaxed);
        time[0].store(1_700_000_000_000_000, Ordering::Relaxed);
        let now = m.tsc().ticks();
        assert_eq!(
            rt.wall_clock(Duration::ZERO),
            Ok(Duration::from_nanos(1_700_000_000_000_000_000 + now))
        );
        time[1].store(5, Ordering::Relaxed);
        assert_eq!(
            rt.wall_clock(Duration::ZERO),
            Err(WallClockError::Invalid(TimeInfoError::TickRateOutOfRange(
                5
            )))
        );
        let bare = page("clock", |_| {});
        // SAFETY: as above.
        let rt = unsafe { Runtime::new(m, bare) }.unwrap();
        assert_eq!(
            rt.wall_clock(Duration::from_millis(1)),
            Err(WallClockError::NoTimeInfo)
        );
        assert_eq!(
            rt.now(),
            rt.tsc_rate().instant(Tsc::from_ticks(m.tsc().ticks()))
        );
    }

    #[test]
    fn exit_triggers_the_exit_event_then_stops_the_platform() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let _log = crate::log::serial();
        let m = mock(|_| {});
        let info = page("bye", |b| {
            b.event("exit", 0).unwrap();
        });
        // SAFETY: as above.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.exit(7)));
        let message = r.unwrap_err().downcast::<String>().unwrap();
        assert_eq!(*message, "exit 7");
        assert_eq!(m.events(), [0]);
        let zero = page("bad", |_| {});
        let m2 = mock(|_| {});
        let mut b = Builder::new(muen_sinfo::Version::V5, "x", 0).unwrap();
        let bytes: &'static [u8] =
            Box::leak(b.event("exit", 0).unwrap().build().into_boxed_slice());
        // SAFETY: as above.
        let r = unsafe { Runtime::new(m2, SubjectInfo::new_checked(bytes).unwrap()) };
        assert_eq!(r.err(), Some(StartError::NoTscRate));
        // SAFETY: as above.
        let rt = unsafe { Runtime::new(m2, zero) }.unwrap();
        assert_eq!(rt.exit_event(), None);
    }

    #[test]
    fn the_name_is_the_pages_and_must_be_utf8() {
        let m = mock(|_| {});
        let info = page("idle-timer", |_| {});
        // SAFETY: the page names no memory.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        assert_eq!(rt.name(), "idle-timer");
        assert_eq!(rt.name().len(), 10);
        let name = [b'a'; 63];
        let bytes: &'static [u8] = Box::leak(
            Builder::new(muen_sinfo::Version::V5, name, KHZ)
                .unwrap()
                .build()
                .into_boxed_slice(),
        );
        // SAFETY: as above.
        let rt = unsafe { Runtime::new(m, SubjectInfo::new_checked(bytes).unwrap()) }.unwrap();
        assert_eq!(rt.name().as_bytes(), name, "the longest name fits");
        let bytes: &'static [u8] = Box::leak(
            Builder::new(muen_sinfo::Version::V5, b"caf\xe9", KHZ)
                .unwrap()
                .build()
                .into_boxed_slice(),
        );
        // SAFETY: as above.
        let r = unsafe { Runtime::new(m, SubjectInfo::new_checked(bytes).unwrap()) };
        assert_eq!(r.err(), Some(StartError::NameNotUtf8));
        assert_eq!(
            StartError::NameNotUtf8.to_string(),
            "sinfo: the subject name is not UTF-8"
        );
    }

    /// A muenblock server that answers `Reset` and the geometry questions (not
    /// `Max_Requests`, as Muen's AHCI driver), with the block length `block_length`
    /// holds; played by the simulated kernel whenever the runtime halts, which also
    /// lets 1 µs pass (so a new acquisition starts a new epoch).
    fn geometry_server(
        req: &'static [AtomicU64],
        resp: &'static [AtomicU64],
        block_length: Rc<Cell<u64>>,
    ) -> impl FnMut(&SimSys) {
        let mut requests = Reader::new(
            Region::from_atomics(req).unwrap(),
            muenblock::PROTOCOL,
            REQUEST_SIZE,
        )
        .unwrap();
        let mut responses = Writer::init(
            RegionMut::from_atomics(resp).unwrap(),
            muenblock::PROTOCOL,
            RESPONSE_SIZE,
            epoch_from(1),
        )
        .unwrap();
        move |m| loop {
            m.set_tsc(Tsc::from_ticks(m.tsc().ticks() + 1_000));
            let request = match requests.read::<Request>() {
                Ok(request) => request,
                Err(ReadError::EpochChanged) => continue,
                Err(_) => return,
            };
            let answer = match request.kind() {
                Ok(RequestKind::Reset) => 0,
                Ok(RequestKind::MaxDevices) => 1,
                Ok(RequestKind::MediaBlocks) => 64,
                Ok(RequestKind::BlockLength) => block_length.get(),
                Ok(RequestKind::MaxBlocksCount) => 8,
                _ => continue,
            };
            responses.write(&Response::to(&request, answer)).unwrap();
        }
    }

    #[test]
    fn a_device_is_taken_once_and_a_failed_acquisition_takes_nothing() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let timed_page = shared(0x1000);
        let (net_in, net_out) = (shared(0x4000), shared(0x4000));
        let req = shared(REQUEST_REGION_SIZE);
        let resp = shared(RESPONSE_REGION_SIZE);
        let data = shared(0x1_0000);
        let block_length = Rc::new(Cell::new(1000));
        let m = mock(geometry_server(req, resp, block_length.clone()));
        let info = page("devices", |b| {
            with_timer(b, timed_page);
            b.memory("net0|in", memory(net_in, MemoryKind::SubjectChannel, false))
                .unwrap()
                .memory(
                    "net0|out",
                    memory(net_out, MemoryKind::SubjectChannel, true),
                )
                .unwrap()
                .memory("disk|req", memory(req, MemoryKind::SubjectChannel, true))
                .unwrap()
                .memory("disk|resp", memory(resp, MemoryKind::SubjectChannel, false))
                .unwrap()
                .memory("disk|data", memory(data, MemoryKind::SubjectDevice, true))
                .unwrap();
        });
        // SAFETY: the page points at leaked test memory; this is its only runtime.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        let taken = |device: &str| AcquireError::AlreadyAcquired {
            device: Name::try_from(device).unwrap(),
        };

        {
            let mut net = rt.net("net0").unwrap();
            assert_eq!(rt.net("net0").err(), Some(taken("net0")));
            assert_eq!(
                taken("net0").to_string(),
                "device `net0`: acquired already (a device is taken once)"
            );
            // The first handle still works.
            net.transmit(&[0x42; 60]).unwrap();
            assert_eq!(net.stats().tx_frames, 1);
        }
        // Its end does not give the device back.
        assert_eq!(rt.net("net0").err(), Some(taken("net0")));
        // A bad name is reported as such, taken or not.
        assert!(matches!(rt.net("net|0"), Err(AcquireError::BadName { .. })));

        // The server answers an unusable block length first: that acquisition fails
        // and takes nothing, so the next one (with a usable answer) succeeds.
        assert!(matches!(
            rt.block("disk"),
            Err(AcquireError::BadGeometry {
                field: "Block_Length",
                value: 1000,
                ..
            })
        ));
        block_length.set(512);
        let disk = rt.block("disk").unwrap();
        assert_eq!(disk.info().capacity, 64 * 512);
        assert_eq!(rt.block("disk").err(), Some(taken("disk")));
        assert!(m.halts() > 0, "the server answered while the runtime slept");
        // Names that are not devices of the page are still reported missing.
        assert!(matches!(rt.net("net1"), Err(AcquireError::Missing { .. })));
    }

    /// An element type for the channel tests.
    #[derive(
        Clone,
        Copy,
        Debug,
        PartialEq,
        Eq,
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout,
    )]
    #[repr(C)]
    struct Word(u64);

    impl ElementType for Word {
        const PROTOCOL: u64 = 0x776f_7264;
    }

    #[test]
    fn a_channel_end_is_taken_once_and_poll_wakes_on_its_vector() {
        use crate::channel::{ChannelError, Receiver, Sender};
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let timed_page = shared(0x1000);
        let (inbox, outbox) = (shared(0x1000), shared(0x1000));
        // The peer that writes the inbox: it writes one word while the subject
        // sleeps, and its event arrives as the inbox's vector.
        let mut peer = Writer::init(
            RegionMut::from_atomics(inbox).unwrap(),
            Word::PROTOCOL,
            8,
            epoch_from(7),
        )
        .unwrap();
        let m = mock(move |_| {
            peer.write(&Word(42)).unwrap();
            PENDING.set(Vector(41));
        });
        let info = page("channels", |b| {
            with_timer(b, timed_page);
            b.memory("inbox", memory(inbox, MemoryKind::SubjectChannel, false))
                .unwrap()
                .vector("inbox", 41)
                .unwrap()
                .memory("outbox", memory(outbox, MemoryKind::SubjectChannel, true))
                .unwrap()
                .event("outbox", 6)
                .unwrap();
        });
        // SAFETY: the page points at leaked test memory; this is its only runtime.
        let rt = unsafe { Runtime::new(m, info) }.unwrap();
        let taken = |channel: &str| AcquireError::ChannelTaken {
            channel: Name::try_from(channel).unwrap(),
        };
        let mut rx = rt.reader::<Word>("inbox").unwrap();
        assert_eq!(rt.reader::<Word>("inbox").err(), Some(taken("inbox")));
        assert_eq!(rt.writer::<Word>("inbox").err(), Some(taken("inbox")));
        assert_eq!(
            taken("inbox").to_string(),
            "channel `inbox`: taken already (a channel end is taken once)"
        );
        // A failed acquisition takes nothing: the reader of a writable channel fails,
        // its writer then succeeds, once.
        assert!(matches!(
            rt.reader::<Word>("outbox"),
            Err(AcquireError::NotReadOnly { .. })
        ));
        let mut tx = rt.writer::<Word>("outbox").unwrap();
        assert_eq!(rt.writer::<Word>("outbox").err(), Some(taken("outbox")));
        assert!(matches!(
            rt.reader::<Word>("in|box"),
            Err(AcquireError::BadChannelName { .. })
        ));
        assert!(matches!(
            rt.reader::<Word>("nothere"),
            Err(AcquireError::Missing { .. })
        ));

        // Nothing waits: poll sleeps until the peer's vector, then the word is there.
        assert_eq!(rx.receive(), Err(ChannelError::Again));
        let r = rt.poll(Instant::MAX, &[&rx]);
        assert_eq!(r, Ready(1));
        assert_eq!(m.halts(), 1);
        assert!(rt.take_vectors().contains(Vector(41)));
        assert_eq!(rx.receive(), Ok(Word(42)));
        tx.send(&Word(1));
        assert_eq!(m.events(), [6]);
    }
}
