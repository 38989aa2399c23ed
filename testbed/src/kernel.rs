//! The emulated kernel: what Muen's kernel does for one subject.
//!
//! - **Events.** The subject's `vmcall`s arrive as `Event(n)` on the control socket
//!   (`docs/hosted.md`). The kernel handles each as the policy links it: `exit` is
//!   recorded; an event with the name of one of the subject's own vectors (`timer`) is
//!   a self event and injects that vector; a writer channel's event wakes the peer that
//!   reads the channel. Other numbers are ignored, as Muen ignores unconfigured events.
//! - **Vectors.** [`Injector::inject`] sends `Vector(v)` without ever blocking a peer:
//!   if the socket is full the vector is kept in a pending set and sent when the
//!   socket drains (vectors coalesce, as pending interrupts do on Muen).
//! - **Minor frames.** The scheduling info page advances every frame:
//!   start = previous end, end = start + frame length (planned values, not readings).
//! - **Timed events.** At every frame boundary, on every `Halt`, and at the armed
//!   deadline itself, an expired trigger is disarmed (`u64::MAX`) and its event handled
//!   as if the subject had triggered it.
//! - **Time.** [`publish_time_info`] writes the time info page once at start, as Muen's
//!   time subject does.
//!
//! A QEMU guest ([`Kernel::run_qemu`], `docs/qemu.md`) talks through the doorbell instead
//! of the control socket (events, halts, its exit code, the boot stage's handshake),
//! gets no vectors but wake-ups (the [`Injector`] writes a byte to the guest's wake-up
//! UART when a vector is due and the guest may be halted), and its TSC is offset from
//! the host's ([`SubjectClock`]): every TSC value the kernel writes or compares is the
//! subject's.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use muen_testbed_abi::hosted::Message;

use crate::clock::{closest_reading, rdtsc, SubjectClock, TscRate};
use crate::memory::Memory;
use crate::os::{self, EventFd, Received, SignalFd};
use crate::qemu::doorbell::{Bell, Doorbell};
use crate::qemu::qmp::{GuestStop, Qmp};
use crate::subject::{Exit, Subject};
use muen_spec::SubjectView;

/// Sends vectors to the subject; shared by the kernel and the peers.
#[derive(Debug)]
pub struct Injector<'a> {
    /// The control socket; `None` in QEMU mode.
    socket: Option<BorrowedFd<'a>>,
    /// QEMU mode: the guest's wake-up UART.
    guest: Option<GuestWake<'a>>,
    pending: [AtomicU64; 4],
    wake: EventFd,
    sent: AtomicU64,
}

/// Wakes a QEMU guest through its wake-up UART (`docs/qemu.md`, "Vectors and idle").
///
/// Every byte written raises the UART's interrupt line once the guest has read the
/// previous one, which its halt stub does right before it reports the halt on the
/// doorbell and halts. So a byte is written when a vector is due and none is
/// outstanding (written, and no halt reported since); a vector due while one is
/// outstanding is remembered and gets its byte when the next halt is reported. Either
/// way the guest cannot sleep through it: a byte written before its halt stub read
/// the UART left the interrupt pending (the PIC latches the edge), one written after
/// wakes it.
#[derive(Debug)]
struct GuestWake<'a> {
    uart: BorrowedFd<'a>,
    state: Mutex<WakeState>,
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct WakeState {
    /// A byte was written and the guest has not reported a halt since.
    outstanding: bool,
    /// A vector came due while a byte was outstanding.
    wanted: bool,
}

impl GuestWake<'_> {
    /// Writes one byte (never blocks: at most a few are ever unread).
    fn write(&self, state: &mut WakeState) {
        state.outstanding = true;
        if let Ok(true) = os::send_nonblocking(self.uart.as_raw_fd(), &[0x57]) {
            self.bytes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn vector_due(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.outstanding {
            state.wanted = true;
        } else {
            self.write(&mut state);
        }
    }

    fn halted(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.outstanding = false;
        if std::mem::take(&mut state.wanted) {
            self.write(&mut state);
        }
    }
}

impl<'a> Injector<'a> {
    /// An injector sending on `socket` (the testbed's end of the control socket).
    pub fn new(socket: BorrowedFd<'a>) -> io::Result<Self> {
        Ok(Injector {
            socket: Some(socket),
            guest: None,
            pending: Default::default(),
            wake: EventFd::new()?,
            sent: AtomicU64::new(0),
        })
    }

    /// An injector for a QEMU guest, which gets no vectors on demand (QEMU offers no
    /// way to inject one that the runtime need not acknowledge) but wake-ups through
    /// its wake-up UART, whose character device is `uart` (the testbed's end of a
    /// socket pair); the runtime then looks at its channels and its clock. Vectors are
    /// counted.
    pub fn guest(uart: BorrowedFd<'a>) -> io::Result<Self> {
        Ok(Injector {
            socket: None,
            guest: Some(GuestWake {
                uart,
                state: Mutex::new(WakeState::default()),
                bytes: AtomicU64::new(0),
            }),
            pending: Default::default(),
            wake: EventFd::new()?,
            sent: AtomicU64::new(0),
        })
    }

    /// QEMU mode: the guest reported a halt (it read its wake-up UART before).
    pub fn guest_halted(&self) {
        if let Some(g) = &self.guest {
            g.halted();
        }
    }

    /// QEMU mode: how many wake-up bytes were written.
    pub fn guest_wakes(&self) -> Option<u64> {
        self.guest.as_ref().map(|g| g.bytes.load(Ordering::Relaxed))
    }

    /// Injects vector `v` into the subject. Never blocks.
    pub fn inject(&self, v: u8) {
        let Some(socket) = self.socket else {
            self.sent.fetch_add(1, Ordering::Relaxed);
            if let Some(g) = &self.guest {
                g.vector_due();
            }
            return;
        };
        match os::send_nonblocking(socket.as_raw_fd(), &Message::Vector(v).encode()) {
            Ok(true) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            // The socket is full: keep the vector pending and let the kernel send it.
            Ok(false) => {
                self.pending[usize::from(v / 64)].fetch_or(1 << (v % 64), Ordering::AcqRel);
                self.wake.notify();
            }
            // The subject is gone; its end is reported by the kernel loop.
            Err(_) => {}
        }
    }

    /// Sends pending vectors; returns whether all went out.
    fn flush(&self) -> bool {
        let Some(socket) = self.socket else {
            return true;
        };
        for (word, bits) in self.pending.iter().enumerate() {
            let mut set = bits.swap(0, Ordering::AcqRel);
            while set != 0 {
                let bit = set.trailing_zeros();
                // word < 4 and bit < 64, so this is a vector number.
                let v = (word * 64) as u8 + bit as u8;
                match os::send_nonblocking(socket.as_raw_fd(), &Message::Vector(v).encode()) {
                    Ok(false) => {
                        bits.fetch_or(set, Ordering::AcqRel);
                        return false;
                    }
                    Ok(true) => {
                        self.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {}
                }
                set &= set - 1;
            }
        }
        true
    }

    fn has_pending(&self) -> bool {
        self.pending.iter().any(|w| w.load(Ordering::Acquire) != 0)
    }

    /// How many vectors were delivered to the socket (QEMU mode: came due).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// What an event number does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Ignore,
    Exit,
    Inject(u8),
    Wake(usize),
}

/// How a run ended.
#[derive(Debug)]
pub enum End {
    /// The subject process (QEMU mode: QEMU) ended.
    Exited(Exit),
    /// The deadline passed.
    TimedOut,
    /// The testbed got this signal (SIGINT, SIGTERM, SIGHUP).
    Interrupted(libc::c_int),
    /// QEMU mode: QEMU stopped the guest (triple fault, emulation failure).
    GuestStopped(GuestStop),
}

/// What the guest told the testbed in QEMU mode, besides events.
#[derive(Debug, Default)]
pub struct QemuReport {
    /// The subject's exit code, from its exit stub.
    pub exit_code: Option<u8>,
    /// The guest TSC when the boot stage started the subject (`None`: it never did).
    pub started: Option<u64>,
    /// When the boot stage reported it (to measure QEMU's and the boot stage's start).
    pub started_at: Option<Instant>,
    /// QEMU's CPU time by then (its start-up and the boot stage).
    pub started_cpu: Option<Duration>,
    /// Lines from the boot stage (why it could not boot).
    pub boot_text: Vec<String>,
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelStats {
    /// Events the subject triggered (messages `Event`).
    pub events: u64,
    /// Times the subject halted.
    pub halts: u64,
    /// Timed events that fired.
    pub timed_events: u64,
    /// Malformed control messages (ignored).
    pub bad_messages: u64,
    /// Whether the subject triggered its `exit` event.
    pub exit_event: bool,
    /// Minor frames that passed.
    pub frames: u64,
}

/// When a QEMU guest starts, the boot stage's TSC word is read in bursts until it
/// changed in this many (a few milliseconds while the guest's vCPU runs) ...
const TSC_CHANGES: u32 = 16;
/// ... or for at most this long.
const TSC_LIMIT: Duration = Duration::from_millis(10);

/// Word offsets in the toolchain's pages (`muen_sinfo` layouts).
const SCHED_START: u64 =
    std::mem::offset_of!(muen_sinfo::SchedulingInfoRecord, tsc_schedule_start) as u64;
const SCHED_END: u64 =
    std::mem::offset_of!(muen_sinfo::SchedulingInfoRecord, tsc_schedule_end) as u64;
const TIMED_TRIGGER: u64 =
    std::mem::offset_of!(muen_sinfo::TimedEventRecord, tsc_trigger_value) as u64;
const TIMED_EVENT: u64 = std::mem::offset_of!(muen_sinfo::TimedEventRecord, event) as u64;

/// The emulated kernel of one subject.
pub struct Kernel<'a> {
    tsc: TscRate,
    clock: &'a SubjectClock,
    frame: u64,
    frame_start: u64,
    frame_end: u64,
    sched_start: &'a AtomicU64,
    sched_end: &'a AtomicU64,
    trigger: &'a AtomicU64,
    timed_event: &'a AtomicU64,
    actions: [Action; 64],
    wakers: Vec<&'a EventFd>,
    log: Option<&'a EventFd>,
    log_frame: Option<u64>,
    injector: &'a Injector<'a>,
    socket_open: bool,
    stats: KernelStats,
}

impl<'a> Kernel<'a> {
    /// A kernel for the subject of `view` in `memory`, with minor frames of `frame`
    /// length. Writes the first frame into the scheduling info page and disarms the
    /// timed event, as Muen's kernel does at subject start.
    pub fn new(
        view: &SubjectView,
        memory: &'a Memory,
        tsc: TscRate,
        clock: &'a SubjectClock,
        frame: Duration,
        injector: &'a Injector<'a>,
    ) -> Kernel<'a> {
        let sched = view.mapping_index(muen_abi::names::SCHEDULING_INFO);
        let timed = view.mapping_index(muen_abi::names::TIMED_EVENT);
        // The toolchain's pages are in every view (`muen_spec::view::toolchain_mappings`).
        let (sched, timed) = (sched.unwrap_or(0), timed.unwrap_or(0));
        let frame = tsc.ticks(frame).max(1);
        let start = clock.now();
        let mut actions = [Action::Ignore; 64];
        for e in &view.events {
            let slot = &mut actions[usize::from(e.number & 63)];
            if e.name == muen_abi::names::EXIT_EVENT {
                *slot = Action::Exit;
            } else if let Some(v) = view.vector(&e.name) {
                // A source and a target event of one name form a self event (`timer`).
                *slot = Action::Inject(v);
            }
        }
        let k = Kernel {
            tsc,
            clock,
            frame,
            frame_start: start,
            frame_end: start + frame,
            sched_start: memory.word(sched, SCHED_START),
            sched_end: memory.word(sched, SCHED_END),
            trigger: memory.word(timed, TIMED_TRIGGER),
            timed_event: memory.word(timed, TIMED_EVENT),
            actions,
            wakers: Vec::new(),
            log: None,
            log_frame: None,
            injector,
            socket_open: true,
            stats: KernelStats::default(),
        };
        k.trigger.store(u64::MAX, Ordering::Relaxed);
        k.timed_event.store(0, Ordering::Relaxed);
        k.publish_frame();
        k
    }

    /// Makes event `number` wake a peer through `waker`.
    pub fn link(&mut self, number: u8, waker: &'a EventFd) {
        self.wakers.push(waker);
        self.actions[usize::from(number & 63)] = Action::Wake(self.wakers.len() - 1);
    }

    /// Also wakes the log sink when the subject halts or exits, so that its last lines
    /// appear at once.
    pub fn set_log_waker(&mut self, waker: &'a EventFd) {
        self.log = Some(waker);
    }

    /// The counters so far.
    pub fn stats(&self) -> KernelStats {
        self.stats
    }

    fn publish_frame(&self) {
        self.sched_start.store(self.frame_start, Ordering::Relaxed);
        self.sched_end.store(self.frame_end, Ordering::Release);
    }

    /// Starts the schedule again at the subject's TSC now (after the clock changed).
    fn restart_frames(&mut self) {
        self.frame_start = self.clock.now();
        self.frame_end = self.frame_start + self.frame;
        self.publish_frame();
    }

    /// Advances the minor frames to `now` and fires an expired timed event; returns how
    /// long to sleep until the next frame boundary, timed event or `deadline`, or
    /// `None` if the deadline passed. Also returns the trigger it looked at.
    fn advance(&mut self, now: u64, deadline: Option<Instant>) -> Option<(Duration, u64)> {
        if now >= self.frame_end {
            // Skipped frames (a late wake-up) pass without the subject noticing,
            // as on a loaded Muen system the schedule goes on.
            let behind = (now - self.frame_end) / self.frame;
            self.stats.frames += behind + 1;
            self.frame_start = self.frame_end + behind * self.frame;
            self.frame_end = self.frame_start + self.frame;
            self.publish_frame();
            self.check_timed_event(now);
        }
        let mut next = self.frame_end;
        let trigger = self.trigger.load(Ordering::Acquire);
        if trigger > now && trigger < next {
            next = trigger;
        }
        let mut timeout = self.tsc.duration(next.saturating_sub(now));
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            timeout = timeout.min(left);
        }
        Some((timeout, trigger))
    }

    /// Runs the kernel until `subject` ends, a signal arrives or `deadline` passes.
    pub fn run(
        &mut self,
        socket: BorrowedFd<'_>,
        signals: &SignalFd,
        subject: &mut Subject,
        deadline: Option<Instant>,
    ) -> io::Result<End> {
        loop {
            let now = self.clock.now();
            let Some((timeout, trigger)) = self.advance(now, deadline) else {
                return Ok(End::TimedOut);
            };
            let mut socket_events = 0;
            if self.socket_open {
                socket_events = libc::POLLIN;
                if self.injector.has_pending() {
                    socket_events |= libc::POLLOUT;
                }
            }
            let mut fds = [
                os::pollfd(signals.fd(), libc::POLLIN),
                os::pollfd(self.injector.wake.fd(), libc::POLLIN),
                // A negative fd is skipped by poll: used once the subject closed its end.
                os::pollfd(
                    if self.socket_open {
                        socket.as_raw_fd()
                    } else {
                        -1
                    },
                    socket_events,
                ),
            ];
            os::poll(&mut fds, Some(timeout))?;
            if os::readable(&fds[0]) {
                while let Some(signo) = signals.next() {
                    if signo != libc::SIGCHLD {
                        return Ok(End::Interrupted(signo));
                    }
                }
                if let Some(exit) = subject.try_reap()? {
                    // What the subject sent before it ended still counts (its `exit`).
                    while self.socket_open && self.receive(socket)? {}
                    return Ok(End::Exited(exit));
                }
            }
            if os::readable(&fds[1]) {
                self.injector.wake.clear();
            }
            if fds[2].revents & libc::POLLOUT != 0 || os::readable(&fds[1]) {
                self.injector.flush();
            }
            if os::readable(&fds[2]) {
                self.receive(socket)?;
            }
            let now = self.clock.now();
            if trigger <= now {
                self.check_timed_event(now);
            }
        }
    }

    /// Runs the kernel for a QEMU guest until QEMU ends, stops the guest, a signal
    /// arrives or `deadline` passes. `doorbell` is the testbed's end of the doorbell
    /// socket; `guest_tsc` the word the boot stage writes its TSC into while it waits;
    /// `start` is called once, when the boot stage reported the guest's TSC and the
    /// clock is aligned: it publishes what depends on the clock and lets the boot stage
    /// go on. What the guest said is collected in `report`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_qemu(
        &mut self,
        doorbell: &mut UnixStream,
        qmp: &mut Qmp,
        signals: &SignalFd,
        subject: &mut Subject,
        deadline: Option<Instant>,
        report: &mut QemuReport,
        guest_tsc: &AtomicU64,
        start: &mut dyn FnMut(),
    ) -> io::Result<End> {
        let mut parser = Doorbell::new();
        let mut doorbell_open = true;
        let mut monitor_open = true;
        let mut buf = [0u8; 4096];
        loop {
            let now = self.clock.now();
            let Some((timeout, trigger)) = self.advance(now, deadline) else {
                return Ok(End::TimedOut);
            };
            let mut fds = [
                os::pollfd(signals.fd(), libc::POLLIN),
                os::pollfd(
                    if doorbell_open {
                        doorbell.as_raw_fd()
                    } else {
                        -1
                    },
                    libc::POLLIN,
                ),
                os::pollfd(if monitor_open { qmp.fd() } else { -1 }, libc::POLLIN),
            ];
            os::poll(&mut fds, Some(timeout))?;
            // The doorbell first: QEMU's exit comes right after the exit stub's bytes.
            if os::readable(&fds[1]) {
                match doorbell.read(&mut buf) {
                    Ok(0) => doorbell_open = false,
                    Ok(n) => {
                        for &b in &buf[..n] {
                            if let Some(bell) = parser.push(b) {
                                self.ring(bell, report, guest_tsc, start);
                            }
                        }
                        if report.started.is_some() && report.started_cpu.is_none() {
                            report.started_cpu = subject.cpu_time();
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if os::readable(&fds[0]) {
                while let Some(signo) = signals.next() {
                    if signo != libc::SIGCHLD {
                        return Ok(End::Interrupted(signo));
                    }
                }
                if let Some(exit) = subject.try_reap()? {
                    // What QEMU passed on before it ended still counts (the exit code).
                    if doorbell_open {
                        doorbell.set_nonblocking(true)?;
                        while let Ok(n @ 1..) = doorbell.read(&mut buf) {
                            for &b in &buf[..n] {
                                if let Some(bell) = parser.push(b) {
                                    self.ring(bell, report, guest_tsc, start);
                                }
                            }
                        }
                    }
                    if let Some(Bell::Text(t)) = parser.finish() {
                        report.boot_text.push(t);
                    }
                    return Ok(End::Exited(exit));
                }
            }
            if os::readable(&fds[2]) {
                match qmp.poll_events() {
                    Ok(Some(stop)) => return Ok(End::GuestStopped(stop)),
                    Ok(None) => {}
                    // QEMU is exiting; its end arrives as SIGCHLD.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => monitor_open = false,
                    Err(e) => return Err(e),
                }
            }
            let now = self.clock.now();
            if trigger <= now {
                self.check_timed_event(now);
            }
        }
    }

    /// Handles one doorbell message.
    fn ring(
        &mut self,
        bell: Bell,
        report: &mut QemuReport,
        guest_tsc: &AtomicU64,
        start: &mut dyn FnMut(),
    ) {
        match bell {
            Bell::Event(n) => {
                self.stats.events += 1;
                self.handle_event(n);
            }
            Bell::Exit(code) => report.exit_code = Some(code),
            Bell::Halt => {
                self.injector.guest_halted();
                self.halted();
            }
            Bell::Started(tsc) if report.started.is_none() => {
                // The message's TSC is read late by the doorbell's latency (and by any
                // time the testbed did not run); the word the boot stage keeps writing
                // is read within a few hundred nanoseconds.
                let (guest, host) =
                    closest_reading(guest_tsc, TSC_CHANGES, TSC_LIMIT).unwrap_or((tsc, rdtsc()));
                self.clock.align(guest, host);
                report.started = Some(tsc);
                report.started_at = Some(Instant::now());
                self.restart_frames();
                start();
            }
            Bell::Text(line) => report.boot_text.push(line),
            Bell::Started(_) | Bell::Malformed(_) => {
                if self.stats.bad_messages == 0 {
                    eprintln!(
                        "muen-testbed: warning: the guest wrote an unexpected doorbell \
                         message ({bell:?}); ignoring it (and any more)"
                    );
                }
                self.stats.bad_messages += 1;
            }
        }
    }

    /// Handles up to a batch of queued messages (a flooding subject cannot starve the
    /// frames and signals). Returns whether messages may be left.
    fn receive(&mut self, socket: BorrowedFd<'_>) -> io::Result<bool> {
        let mut buf = [0u8; 8];
        for _ in 0..256 {
            match os::recv_nonblocking(socket.as_raw_fd(), &mut buf)? {
                Received::Empty => return Ok(false),
                Received::Closed => {
                    self.socket_open = false;
                    return Ok(false);
                }
                Received::Datagram(n) => {
                    let message = buf.get(..n).and_then(Message::decode);
                    match message {
                        Some(Message::Event(number)) => {
                            self.stats.events += 1;
                            self.handle_event(number);
                        }
                        Some(Message::Halt) => self.halted(),
                        // `Vector` only goes the other way.
                        Some(Message::Vector(_)) | None => {
                            if self.stats.bad_messages == 0 {
                                eprintln!(
                                    "muen-testbed: warning: the subject sent a malformed \
                                     control message {:02x?}; ignoring it (and any more)",
                                    &buf[..n.min(buf.len())]
                                );
                            }
                            self.stats.bad_messages += 1;
                        }
                    }
                }
            }
        }
        Ok(true)
    }

    /// The subject halts: an expired timed event fires now (a trigger armed since
    /// the last look is seen by the next wait), and the log sink looks at the log.
    fn halted(&mut self) {
        self.stats.halts += 1;
        self.check_timed_event(self.clock.now());
        // At most once a frame: a subject halting for every block request must not
        // keep the log sink busy.
        if self.log_frame != Some(self.frame_start) {
            self.log_frame = Some(self.frame_start);
            if let Some(log) = self.log {
                log.notify();
            }
        }
    }

    fn handle_event(&mut self, number: u8) {
        // Muen masks the number to 6 bits and ignores it if that changed it.
        if number > 63 {
            return;
        }
        match self.actions[usize::from(number)] {
            Action::Ignore => {}
            Action::Exit => {
                self.stats.exit_event = true;
                if let Some(log) = self.log {
                    log.notify();
                }
            }
            Action::Inject(v) => self.injector.inject(v),
            Action::Wake(i) => self.wakers[i].notify(),
        }
    }

    /// Fires the timed event if its trigger is due. The trigger is disarmed with a
    /// compare-exchange: a subject re-arming at the same moment keeps its new value.
    fn check_timed_event(&mut self, now: u64) {
        let trigger = self.trigger.load(Ordering::Acquire);
        if trigger == u64::MAX || trigger > now {
            return;
        }
        if self
            .trigger
            .compare_exchange(trigger, u64::MAX, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let number = (self.timed_event.load(Ordering::Acquire) & 63) as u8;
            self.stats.timed_events += 1;
            self.handle_event(number);
        }
    }
}

/// Publishes the time info page (`time_info`, from `libmutime`) as Muen's time subject
/// does: rate and timezone first, then the TSC time base (microseconds since the Unix
/// epoch at the subject's TSC 0), which marks the record valid.
pub fn publish_time_info(memory: &Memory, index: usize, tsc: TscRate, clock: &SubjectClock) {
    let rate = tsc.hz();
    let now_tsc = clock.now();
    let now_us = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let since_boot_us = u128::from(now_tsc) * 1_000_000 / u128::from(rate);
    let base = u64::try_from(now_us.saturating_sub(since_boot_us))
        .unwrap_or(u64::MAX)
        .max(1);
    let off = |f| match f {
        0 => std::mem::offset_of!(muen_sinfo::TimeInfoRecord, tsc_time_base) as u64,
        1 => std::mem::offset_of!(muen_sinfo::TimeInfoRecord, tsc_tick_rate_hz) as u64,
        _ => std::mem::offset_of!(muen_sinfo::TimeInfoRecord, timezone_microsecs) as u64,
    };
    memory.word(index, off(0)).store(0, Ordering::Relaxed);
    memory.word(index, off(1)).store(rate, Ordering::Relaxed);
    memory.word(index, off(2)).store(0, Ordering::Relaxed);
    memory.word(index, off(0)).store(base, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::Path;

    fn echo() -> SubjectView {
        policy::parse(
            include_str!("../../policy-gen/tests/snapshots/2026-04/echo.xml"),
            Path::new("echo.xml"),
            policy::Image::Skip,
        )
        .unwrap()
        .view
    }

    fn received(fd: &OwnedFd) -> Vec<[u8; 2]> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2];
        while let Ok(Received::Datagram(2)) = os::recv_nonblocking(fd.as_raw_fd(), &mut buf) {
            out.push(buf);
        }
        out
    }

    #[test]
    fn a_guest_gets_one_wake_up_byte_until_it_reports_a_halt() {
        let (ours, uart) = std::os::unix::net::UnixStream::pair().unwrap();
        uart.set_nonblocking(true).unwrap();
        let bytes = || {
            let mut buf = [0u8; 16];
            match std::io::Read::read(&mut &uart, &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => panic!("{e}"),
            }
        };
        let injector = Injector::guest(ours.as_fd()).unwrap();
        // A vector while none is outstanding: a byte.
        injector.inject(33);
        assert_eq!(bytes(), 1);
        // More vectors before the guest read it and halted: no more bytes.
        injector.inject(33);
        injector.inject(32);
        assert_eq!(bytes(), 0);
        // The halt report (the guest read the UART first): the held-back vectors get
        // their byte now, one for all of them.
        injector.guest_halted();
        assert_eq!(bytes(), 1);
        // Another halt without a vector since: nothing; the next vector: a byte.
        injector.guest_halted();
        assert_eq!(bytes(), 0);
        injector.guest_halted();
        injector.inject(40);
        assert_eq!(bytes(), 1);
        assert_eq!(injector.sent(), 4);
        assert_eq!(injector.guest_wakes(), Some(3));
    }

    #[test]
    fn a_full_socket_keeps_vectors_pending_until_it_drains() {
        let (ours, theirs) = os::seqpacket_pair().unwrap();
        let injector = Injector::new(ours.as_fd()).unwrap();
        while os::send_nonblocking(ours.as_raw_fd(), &[0, 0]).unwrap() {}
        injector.inject(33);
        injector.inject(200);
        injector.inject(33);
        assert!(injector.has_pending());
        assert!(injector.wake.clear());
        assert!(!injector.flush(), "the socket is still full");
        let mut buf = [0u8; 2];
        while let Ok(Received::Datagram(_)) = os::recv_nonblocking(theirs.as_raw_fd(), &mut buf) {}
        assert!(injector.flush());
        assert!(!injector.has_pending());
        // Pending vectors coalesce: 33 once, then 200.
        assert_eq!(received(&theirs), [[3, 33], [3, 200]]);
        assert_eq!(injector.sent(), 2);
    }

    #[test]
    fn events_are_handled_as_the_policy_links_them() {
        let w = echo();
        let memory = Memory::new(&w).unwrap();
        let (ours, theirs) = os::seqpacket_pair().unwrap();
        let injector = Injector::new(ours.as_fd()).unwrap();
        let tsc = TscRate::from_khz(1_000_000).unwrap();
        let peer = EventFd::new().unwrap();
        let clock = SubjectClock::host();
        let mut k = Kernel::new(
            &w,
            &memory,
            tsc,
            &clock,
            Duration::from_millis(10),
            &injector,
        );
        k.link(2, &peer);
        // The kernel disarmed the timed event and published the first frame.
        let timed = w.mapping_index("timed_event").unwrap();
        assert_eq!(
            memory.word(timed, TIMED_TRIGGER).load(Ordering::Relaxed),
            u64::MAX
        );
        let sched = w.mapping_index("scheduling_info").unwrap();
        let start = memory.word(sched, SCHED_START).load(Ordering::Relaxed);
        let end = memory.word(sched, SCHED_END).load(Ordering::Relaxed);
        assert_eq!(end - start, 10_000_000);
        // `timer` (1) is a self event: it injects the `timer` vector (32).
        k.handle_event(1);
        assert_eq!(received(&theirs), [[3, 32]]);
        // `service0|out` (2) wakes the network bridge.
        k.handle_event(2);
        assert!(peer.clear());
        // `exit` (0) is recorded; unknown and out-of-range numbers are ignored.
        k.handle_event(0);
        k.handle_event(40);
        k.handle_event(200);
        assert!(k.stats().exit_event);
        assert!(received(&theirs).is_empty());
        // An expired timed event fires once and is disarmed; a future one waits.
        memory
            .word(timed, TIMED_EVENT)
            .store(64 + 1, Ordering::Relaxed);
        memory
            .word(timed, TIMED_TRIGGER)
            .store(5, Ordering::Relaxed);
        k.check_timed_event(rdtsc());
        assert_eq!(
            received(&theirs),
            [[3, 32]],
            "event number masked to 6 bits"
        );
        assert_eq!(
            memory.word(timed, TIMED_TRIGGER).load(Ordering::Relaxed),
            u64::MAX
        );
        k.check_timed_event(rdtsc());
        assert!(received(&theirs).is_empty());
        memory
            .word(timed, TIMED_TRIGGER)
            .store(rdtsc() + 1_000_000_000_000, Ordering::Relaxed);
        k.check_timed_event(rdtsc());
        assert!(received(&theirs).is_empty());
        assert_eq!(k.stats().timed_events, 1);
    }

    #[test]
    fn time_info_is_published_as_the_time_subject_does() {
        let w = echo();
        let memory = Memory::new(&w).unwrap();
        let i = w.mapping_index("time_info").unwrap();
        let tsc = TscRate::from_khz(2_000_000).unwrap();
        publish_time_info(&memory, i, tsc, &SubjectClock::host());
        let record = muen_sinfo::TimeInfoRecord {
            tsc_time_base: memory.word(i, 0).load(Ordering::Acquire),
            tsc_tick_rate_hz: memory.word(i, 8).load(Ordering::Relaxed),
            timezone_microsecs: memory.word(i, 16).load(Ordering::Relaxed) as i64,
        };
        let record = record.validate().unwrap();
        assert_eq!(record.tsc_tick_rate_hz, 2_000_000_000);
        let now_us = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        // Base and conversion use the same rate, so the TSC now converts to the wall
        // clock now, whatever the real rate is.
        let at = record.utc_micros(rdtsc());
        assert!(at.abs_diff(now_us) < 100_000, "{at} vs {now_us}");
    }
}
