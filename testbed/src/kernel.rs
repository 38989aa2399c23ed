//! The emulated kernel: what Muen's kernel does for the subjects of a run.
//!
//! - **Events.** A subject's `vmcall`s arrive as `Event(n)` on its control socket
//!   (`docs/hosted.md`; a QEMU guest rings its doorbell). The kernel does what the
//!   run's [`Setup`] says event `n` of that subject does: inject a vector into a
//!   subject, wake the testbed peer that plays the other end of a channel, reset a
//!   subject, or a kernel action (power off, reboot, panic). Other numbers are ignored,
//!   as Muen ignores unconfigured events. The subject's `exit` event is counted.
//! - **Vectors.** [`Injector::inject`] sends `Vector(v)` without ever blocking a peer:
//!   if the socket is full the vector is kept in a pending set and sent when the
//!   socket drains (vectors coalesce, as pending interrupts do on Muen).
//! - **Minor frames.** All subjects share one frame length; every frame the kernel
//!   writes the frame's planned start and end into each subject's scheduling info
//!   page (in that subject's TSC): start = previous end, end = start + frame length.
//! - **Timed events.** At every frame boundary, on every `Halt`, and at the armed
//!   deadline itself, an expired trigger is disarmed (`u64::MAX`) and its event handled
//!   as if the subject had triggered it.
//! - **Starts and ends.** A subject is (re)started with its timed event disarmed. When
//!   its process ends, it is started again if an event reset it (its own `exit`, as a
//!   system policy wires it, or another subject's) and the run's restart limit allows;
//!   otherwise the run ends with it ([`End::Exited`]). A reset from another subject
//!   stops it at once, as does SIGUSR1 for the subject [`Kernel::reset_on_sigusr1`]
//!   names.
//! - **Time.** [`publish_time_info`] writes a time info page as Muen's time subject
//!   does.
//!
//! A QEMU guest ([`Kernel::run_qemu`], `docs/qemu.md`) talks through the doorbell instead
//! of the control socket (events, halts, its exit code, the boot stage's handshake),
//! gets no vectors but wake-ups (its [`Injector`] writes a byte to the guest's wake-up
//! UART when a vector is due and the guest may be halted), and its TSC is offset from
//! the host's ([`SubjectClock`]): every TSC value the kernel writes for or compares with
//! a subject is that subject's.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use muen_spec::model::SourceAction;
use muen_testbed_abi::hosted::Message;

use crate::clock::{closest_reading, rdtsc, SubjectClock, TscRate};
use crate::memory::Memory;
use crate::os::{self, EventFd, Received, SignalFd};
use crate::qemu::doorbell::{Bell, Doorbell};
use crate::qemu::machine::Machine;
use crate::qemu::qmp::GuestStop;
use crate::setup::{Delivery, Setup};
use crate::subject::{Exit, Subject};

/// Sends vectors to a subject; shared by the kernel and the peers.
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
    fn state(&self) -> std::sync::MutexGuard<'_, WakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one byte (never blocks: at most a few are ever unread).
    fn write(&self, state: &mut WakeState) {
        state.outstanding = true;
        if let Ok(true) = os::send_nonblocking(self.uart.as_raw_fd(), &[0x57]) {
            self.bytes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn vector_due(&self) {
        let mut state = self.state();
        if state.outstanding {
            state.wanted = true;
        } else {
            self.write(&mut state);
        }
    }

    fn halted(&self) {
        let mut state = self.state();
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
    /// socket pair, the same for every start of the guest); the runtime then looks at
    /// its channels and its clock. Vectors are counted.
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

    /// Forgets pending vectors (the subject is reset: Muen clears its pending
    /// interrupts); a guest's wake-up state starts afresh.
    fn clear_pending(&self) {
        for bits in &self.pending {
            bits.store(0, Ordering::Release);
        }
        if let Some(g) = &self.guest {
            *g.state() = WakeState::default();
        }
    }

    fn has_pending(&self) -> bool {
        self.pending.iter().any(|w| w.load(Ordering::Acquire) != 0)
    }

    /// How many vectors were delivered to the socket (QEMU mode: that came due).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// What an event number does, resolved for the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Inject { subject: usize, vector: u8 },
    Reset { subject: usize },
    Kernel(SourceAction),
    Wake(usize),
}

/// How a run ended.
#[derive(Debug)]
pub enum End {
    /// A subject's process (QEMU mode: its QEMU) ended and was not restarted.
    Exited(usize, Exit),
    /// The deadline passed.
    TimedOut,
    /// The testbed got this signal (SIGINT, SIGTERM, SIGHUP).
    Interrupted(libc::c_int),
    /// QEMU mode: QEMU stopped this subject's guest (triple fault, emulation failure).
    GuestStopped(usize, GuestStop),
    /// A subject's event or `HLT` ran this kernel action: `system_poweroff`,
    /// `system_reboot` or `system_panic`.
    System(usize, SourceAction),
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

/// Counters of a run (all subjects).
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelStats {
    /// Events the subjects triggered (messages `Event`).
    pub events: u64,
    /// Times a subject halted.
    pub halts: u64,
    /// Timed events that fired.
    pub timed_events: u64,
    /// Malformed control messages (ignored).
    pub bad_messages: u64,
    /// Whether a subject triggered its `exit` event.
    pub exit_event: bool,
    /// Minor frames that passed.
    pub frames: u64,
    /// Subjects started again after a reset.
    pub restarts: u64,
}

/// Word offsets in the toolchain's pages (`muen_sinfo` layouts).
const SCHED_START: u64 =
    std::mem::offset_of!(muen_sinfo::SchedulingInfoRecord, tsc_schedule_start) as u64;
const SCHED_END: u64 =
    std::mem::offset_of!(muen_sinfo::SchedulingInfoRecord, tsc_schedule_end) as u64;
const TIMED_TRIGGER: u64 =
    std::mem::offset_of!(muen_sinfo::TimedEventRecord, tsc_trigger_value) as u64;
const TIMED_EVENT: u64 = std::mem::offset_of!(muen_sinfo::TimedEventRecord, event) as u64;

/// When a QEMU guest starts, the boot stage's TSC word is read in bursts until it
/// changed in this many (a few milliseconds while the guest's vCPU runs) ...
const TSC_CHANGES: u32 = 16;
/// ... or for at most this long.
const TSC_LIMIT: Duration = Duration::from_millis(10);

/// How long the kernel waits for a log sink to read a subject's lines before it starts
/// the subject again.
pub const LOG_READ_WAIT: Duration = Duration::from_millis(500);

/// What the kernel links to each subject: its clock and its vector injector.
#[derive(Clone, Copy, Debug)]
pub struct SubjectLink<'a> {
    /// The subject's TSC.
    pub clock: &'a SubjectClock,
    /// Where its vectors go.
    pub injector: &'a Injector<'a>,
}

/// The kernel's state of one subject.
struct KernelSubject<'a> {
    clock: &'a SubjectClock,
    injector: &'a Injector<'a>,
    sched: Option<(&'a AtomicU64, &'a AtomicU64)>,
    timed: Option<(&'a AtomicU64, &'a AtomicU64)>,
    actions: Vec<Vec<Action>>,
    exit_event: Option<u8>,
    hlt: Option<SourceAction>,
    log: Vec<(&'a EventFd, &'a EventFd)>,
    log_frame: Option<u64>,
    reset_pending: bool,
    restarts: u32,
    socket_open: bool,
}

/// The emulated kernel of a run.
pub struct Kernel<'a> {
    tsc: TscRate,
    /// Frame length in host TSC ticks.
    frame: u64,
    /// The current frame, in host TSC.
    frame_start: u64,
    frame_end: u64,
    subjects: Vec<KernelSubject<'a>>,
    wakers: Vec<&'a EventFd>,
    /// Resets and kernel actions raised by events, for the run loop.
    requests: Vec<(usize, Action)>,
    /// The subject SIGUSR1 resets.
    reset_on_sigusr1: Option<usize>,
    stats: KernelStats,
}

impl<'a> Kernel<'a> {
    /// A kernel for the subjects of `setup` in `memory` (with `links[i]` for subject
    /// `i`), with minor frames of `frame` length. Writes the first frame into every
    /// scheduling info page and disarms every timed event, as Muen's kernel does at
    /// subject start.
    pub fn new(
        setup: &Setup,
        memory: &'a Memory,
        tsc: TscRate,
        frame: Duration,
        links: &[SubjectLink<'a>],
    ) -> Kernel<'a> {
        let frame = tsc.ticks(frame).max(1);
        let start = rdtsc();
        let subjects = setup
            .subjects
            .iter()
            .zip(links)
            .map(|(s, link)| {
                let words = |name: &str, a, b| {
                    s.region_of(name)
                        .filter(|&r| memory.placement(r).size >= 16)
                        .map(|r| (memory.word(r, a), memory.word(r, b)))
                };
                let actions = s
                    .deliveries
                    .iter()
                    .map(|list| {
                        list.iter()
                            .map(|d| match *d {
                                Delivery::Inject { subject, vector } => {
                                    Action::Inject { subject, vector }
                                }
                                Delivery::Reset { subject } => Action::Reset { subject },
                                Delivery::Kernel(a) => Action::Kernel(a),
                            })
                            .collect()
                    })
                    .collect();
                KernelSubject {
                    clock: link.clock,
                    injector: link.injector,
                    sched: words(muen_abi::names::SCHEDULING_INFO, SCHED_START, SCHED_END),
                    timed: words(muen_abi::names::TIMED_EVENT, TIMED_TRIGGER, TIMED_EVENT),
                    actions,
                    exit_event: s.exit_event,
                    hlt: s.hlt,
                    log: Vec::new(),
                    log_frame: None,
                    reset_pending: false,
                    restarts: 0,
                    socket_open: true,
                }
            })
            .collect();
        let mut k = Kernel {
            tsc,
            frame,
            frame_start: start,
            frame_end: start + frame,
            subjects,
            wakers: Vec::new(),
            requests: Vec::new(),
            reset_on_sigusr1: None,
            stats: KernelStats::default(),
        };
        for i in 0..k.subjects.len() {
            k.prepare(i);
        }
        k
    }

    /// Makes event `number` of subject `subject` wake a peer through `waker` (the peer
    /// plays the other end of the channel the event signals).
    pub fn link(&mut self, subject: usize, number: u8, waker: &'a EventFd) {
        self.wakers.push(waker);
        let action = Action::Wake(self.wakers.len() - 1);
        self.subjects[subject].actions[usize::from(number & 63)].push(action);
    }

    /// Also wakes a log sink through `waker` when subject `subject` halts or exits, so
    /// that its last lines appear at once; before the subject starts again, the kernel
    /// waits (briefly) for the sink to say through `done` that it read them.
    pub fn set_log_waker(&mut self, subject: usize, waker: &'a EventFd, done: &'a EventFd) {
        self.subjects[subject].log.push((waker, done));
    }

    /// Makes SIGUSR1 reset subject `subject`, as an event with a `<reset/>` target
    /// would (an operator's reset; a system's controller subject has such events).
    /// `None`: SIGUSR1 ends the run like SIGTERM.
    pub fn reset_on_sigusr1(&mut self, subject: Option<usize>) {
        self.reset_on_sigusr1 = subject;
    }

    /// The counters so far.
    pub fn stats(&self) -> KernelStats {
        self.stats
    }

    /// How often subject `subject` was started again.
    pub fn restarts(&self, subject: usize) -> u32 {
        self.subjects[subject].restarts
    }

    /// Disarms subject `subject`'s timed event and publishes the current frame to it:
    /// what Muen's kernel does when a subject starts or is reset.
    fn prepare(&mut self, subject: usize) {
        let s = &mut self.subjects[subject];
        if let Some((trigger, event)) = s.timed {
            trigger.store(u64::MAX, Ordering::Relaxed);
            event.store(0, Ordering::Relaxed);
        }
        s.reset_pending = false;
        s.log_frame = None;
        s.injector.clear_pending();
        self.publish_frame(subject);
    }

    fn publish_frame(&self, subject: usize) {
        let s = &self.subjects[subject];
        if let Some((start, end)) = s.sched {
            let to_subject = |host: u64| host.wrapping_sub(s.clock.to_host(0));
            start.store(to_subject(self.frame_start), Ordering::Relaxed);
            end.store(to_subject(self.frame_end), Ordering::Release);
        }
    }

    /// Starts the schedule again at the host TSC now and republishes it to `subject`
    /// (after its clock changed).
    fn restart_frames(&mut self, subject: usize) {
        self.frame_start = rdtsc();
        self.frame_end = self.frame_start + self.frame;
        for i in 0..self.subjects.len() {
            if i == subject || self.subjects[i].sched.is_some() {
                self.publish_frame(i);
            }
        }
    }

    /// Advances the minor frames to host TSC `now` and fires expired timed events;
    /// returns how long to sleep until the next frame boundary, timed event or
    /// `deadline`, or `None` if the deadline passed.
    fn advance(&mut self, now: u64, deadline: Option<Instant>) -> Option<Duration> {
        if now >= self.frame_end {
            // Skipped frames (a late wake-up) pass without the subjects noticing,
            // as on a loaded Muen system the schedule goes on.
            let behind = (now - self.frame_end) / self.frame;
            self.stats.frames += behind + 1;
            self.frame_start = self.frame_end + behind * self.frame;
            self.frame_end = self.frame_start + self.frame;
            for i in 0..self.subjects.len() {
                self.publish_frame(i);
            }
        }
        self.check_timed_events();
        let mut next = self.frame_end;
        for s in &self.subjects {
            if let Some((trigger, _)) = s.timed {
                let t = trigger.load(Ordering::Acquire);
                if t != u64::MAX {
                    let host = s.clock.to_host(t);
                    if host > now && host < next {
                        next = host;
                    }
                }
            }
        }
        let mut timeout = self.tsc.duration(next.saturating_sub(now));
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            timeout = timeout.min(left);
        }
        Some(timeout)
    }

    /// Handles up to a batch of queued messages of subject `subject` (a flooding
    /// subject cannot starve the frames and signals). Returns whether messages may be
    /// left.
    fn receive(&mut self, subject: usize, socket: BorrowedFd<'_>) -> io::Result<bool> {
        let mut buf = [0u8; 8];
        for _ in 0..256 {
            match os::recv_nonblocking(socket.as_raw_fd(), &mut buf)? {
                Received::Empty => return Ok(false),
                Received::Closed => {
                    self.subjects[subject].socket_open = false;
                    return Ok(false);
                }
                Received::Datagram(n) => {
                    let message = buf.get(..n).and_then(Message::decode);
                    match message {
                        Some(Message::Event(number)) => {
                            self.stats.events += 1;
                            self.handle_event(subject, number);
                        }
                        Some(Message::Halt) => self.halt(subject),
                        // `Vector` only goes the other way.
                        Some(Message::Vector(_)) | None => {
                            if self.stats.bad_messages == 0 {
                                eprintln!(
                                    "muen-testbed: warning: subject `{subject}` sent a \
                                     malformed control message {:02x?}; ignoring it (and any \
                                     more)",
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

    /// Subject `subject` executed `HLT`.
    fn halt(&mut self, subject: usize) {
        self.stats.halts += 1;
        if let Some(action) = self.subjects[subject].hlt {
            self.requests.push((subject, Action::Kernel(action)));
            return;
        }
        self.check_timed_events();
        // At most once a frame: a subject halting for every block request must not
        // keep the log sink busy.
        let frame = self.frame_start;
        let s = &mut self.subjects[subject];
        if s.log_frame != Some(frame) {
            s.log_frame = Some(frame);
            for (log, _) in &s.log {
                log.notify();
            }
        }
    }

    fn handle_event(&mut self, subject: usize, number: u8) {
        // Muen masks the number to 6 bits and ignores it if that changed it.
        if number > 63 {
            return;
        }
        if self.subjects[subject].exit_event == Some(number) {
            self.stats.exit_event = true;
            for (log, _) in &self.subjects[subject].log {
                log.notify();
            }
        }
        for i in 0..self.subjects[subject].actions[usize::from(number)].len() {
            match self.subjects[subject].actions[usize::from(number)][i] {
                Action::Inject {
                    subject: to,
                    vector,
                } => self.subjects[to].injector.inject(vector),
                Action::Wake(w) => self.wakers[w].notify(),
                Action::Reset { subject: to } if to == subject => {
                    // The subject's own reset (its `exit`): it ends right after, and is
                    // started again then.
                    self.subjects[to].reset_pending = true;
                }
                action @ (Action::Reset { .. } | Action::Kernel(_)) => {
                    self.requests.push((subject, action));
                }
            }
        }
    }

    /// Fires every timed event that is due. A trigger is disarmed with a
    /// compare-exchange: a subject re-arming at the same moment keeps its new value.
    fn check_timed_events(&mut self) {
        for i in 0..self.subjects.len() {
            let s = &self.subjects[i];
            let Some((trigger, event)) = s.timed else {
                continue;
            };
            let now = s.clock.now();
            let t = trigger.load(Ordering::Acquire);
            if t == u64::MAX || t > now {
                continue;
            }
            if trigger
                .compare_exchange(t, u64::MAX, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let number = (event.load(Ordering::Acquire) & 63) as u8;
                self.stats.timed_events += 1;
                self.handle_event(i, number);
            }
        }
    }

    /// Whether subject `subject` may be started again after its reset, counting it if
    /// so.
    fn may_restart(&mut self, subject: usize, limit: Option<u32>) -> bool {
        let s = &mut self.subjects[subject];
        if limit.is_some_and(|l| s.restarts >= l) {
            return false;
        }
        s.restarts += 1;
        self.stats.restarts += 1;
        true
    }

    /// Runs the kernel for hosted subjects until one ends for good, a kernel action
    /// ends the run, a signal arrives or `deadline` passes. `sockets[i]` is the
    /// testbed's end of subject `i`'s control socket; `processes[i]` its process (all
    /// started); `start(i)` starts subject `i` again (after a reset), at most `limit`
    /// times per subject.
    pub fn run(
        &mut self,
        sockets: &[BorrowedFd<'_>],
        processes: &mut [Subject],
        signals: &SignalFd,
        deadline: Option<Instant>,
        limit: Option<u32>,
        start: &mut dyn FnMut(usize) -> io::Result<Subject>,
    ) -> io::Result<End> {
        let n = self.subjects.len();
        loop {
            let Some(timeout) = self.advance(rdtsc(), deadline) else {
                return Ok(End::TimedOut);
            };
            let mut fds = vec![os::pollfd(signals.fd(), libc::POLLIN)];
            for s in &self.subjects {
                fds.push(os::pollfd(s.injector.wake.fd(), libc::POLLIN));
            }
            for (s, socket) in self.subjects.iter().zip(sockets) {
                let mut events = 0;
                if s.socket_open {
                    events = libc::POLLIN;
                    if s.injector.has_pending() {
                        events |= libc::POLLOUT;
                    }
                }
                // A negative fd is skipped by poll: used once the subject closed its end.
                let fd = if s.socket_open {
                    socket.as_raw_fd()
                } else {
                    -1
                };
                fds.push(os::pollfd(fd, events));
            }
            os::poll(&mut fds, Some(timeout))?;
            if os::readable(&fds[0]) {
                while let Some(signo) = signals.next() {
                    match (signo, self.reset_on_sigusr1) {
                        (libc::SIGCHLD, _) => {}
                        (libc::SIGUSR1, Some(subject)) => {
                            self.requests.push((subject, Action::Reset { subject }))
                        }
                        _ => return Ok(End::Interrupted(signo)),
                    }
                }
                for i in 0..n {
                    if let Some(exit) = processes[i].try_reap()? {
                        // What the subject sent before it ended still counts (its `exit`).
                        while self.subjects[i].socket_open && self.receive(i, sockets[i])? {}
                        if let Some(end) = self.ended(i, exit, limit) {
                            return Ok(end);
                        }
                        self.prepare(i);
                        processes[i] = start(i)?;
                    }
                }
            }
            for i in 0..n {
                let wake = &fds[1 + i];
                if os::readable(wake) {
                    self.subjects[i].injector.wake.clear();
                }
                if fds[1 + n + i].revents & libc::POLLOUT != 0 || os::readable(wake) {
                    self.subjects[i].injector.flush();
                }
                if os::readable(&fds[1 + n + i]) {
                    self.receive(i, sockets[i])?;
                }
            }
            self.check_timed_events();
            for (source, action) in std::mem::take(&mut self.requests) {
                match action {
                    Action::Kernel(a) => return Ok(End::System(source, a)),
                    Action::Reset { subject } => {
                        let exit = processes[subject].kill()?;
                        let exit = exit.unwrap_or(Exit {
                            status: crate::subject::Status::Signal(libc::SIGKILL),
                            user: Duration::ZERO,
                            system: Duration::ZERO,
                        });
                        self.subjects[subject].reset_pending = true;
                        if let Some(end) = self.ended(subject, exit, limit) {
                            return Ok(end);
                        }
                        self.prepare(subject);
                        processes[subject] = start(subject)?;
                    }
                    Action::Inject { .. } | Action::Wake(_) => {}
                }
            }
        }
    }

    /// Subject `subject` ended with `exit`: `None` if it is to be started again (its
    /// reset is pending and the limit allows), else how the run ends.
    fn ended(&mut self, subject: usize, exit: Exit, limit: Option<u32>) -> Option<End> {
        if self.subjects[subject].reset_pending && self.may_restart(subject, limit) {
            self.read_logs(subject);
            return None;
        }
        for (log, _) in &self.subjects[subject].log {
            log.notify();
        }
        Some(End::Exited(subject, exit))
    }

    /// Has the log sinks of `subject` read what it logged, waiting for each at most
    /// [`LOG_READ_WAIT`].
    fn read_logs(&self, subject: usize) {
        for (log, done) in &self.subjects[subject].log {
            done.clear();
            log.notify();
            let mut fds = [os::pollfd(done.fd(), libc::POLLIN)];
            let _ = os::poll(&mut fds, Some(LOG_READ_WAIT));
            done.clear();
        }
    }

    /// Runs the kernel for QEMU guests until one ends for good, stops, a kernel action
    /// ends the run, a signal arrives or `deadline` passes. `guests[i]` runs subject
    /// `i`; `host` starts a guest again (after a reset, at most `limit` times per
    /// subject) and lets a guest go on once its boot stage reported its TSC and the
    /// clock is aligned (it publishes what depends on the clock).
    pub fn run_qemu(
        &mut self,
        guests: &mut [Guest],
        signals: &SignalFd,
        deadline: Option<Instant>,
        limit: Option<u32>,
        host: &mut dyn GuestHost,
    ) -> io::Result<End> {
        let n = self.subjects.len();
        let mut buf = [0u8; 4096];
        loop {
            let Some(timeout) = self.advance(rdtsc(), deadline) else {
                return Ok(End::TimedOut);
            };
            let mut fds = vec![os::pollfd(signals.fd(), libc::POLLIN)];
            for g in guests.iter() {
                let doorbell = if g.doorbell_open {
                    g.machine.doorbell.as_raw_fd()
                } else {
                    -1
                };
                fds.push(os::pollfd(doorbell, libc::POLLIN));
                let monitor = if g.monitor_open {
                    g.machine.qmp.fd()
                } else {
                    -1
                };
                fds.push(os::pollfd(monitor, libc::POLLIN));
            }
            os::poll(&mut fds, Some(timeout))?;
            // The doorbells first: QEMU's exit comes right after the exit stub's bytes.
            for i in 0..n {
                if os::readable(&fds[1 + 2 * i]) {
                    let g = &mut guests[i];
                    match g.machine.doorbell.read(&mut buf) {
                        Ok(0) => g.doorbell_open = false,
                        Ok(count) => {
                            for &b in &buf[..count] {
                                if let Some(bell) = guests[i].parser.push(b) {
                                    self.ring(i, bell, &mut guests[i].report, host);
                                }
                            }
                            let g = &mut guests[i];
                            if g.report.started.is_some() && g.report.started_cpu.is_none() {
                                g.report.started_cpu = g.machine.process.cpu_time();
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            let mut restarted = false;
            if os::readable(&fds[0]) {
                while let Some(signo) = signals.next() {
                    match (signo, self.reset_on_sigusr1) {
                        (libc::SIGCHLD, _) => {}
                        (libc::SIGUSR1, Some(subject)) => {
                            self.requests.push((subject, Action::Reset { subject }))
                        }
                        _ => return Ok(End::Interrupted(signo)),
                    }
                }
                for (i, g) in guests.iter_mut().enumerate() {
                    let Some(exit) = g.machine.process.try_reap()? else {
                        continue;
                    };
                    // What QEMU passed on before it ended still counts (the exit code).
                    if g.doorbell_open {
                        g.machine.doorbell.set_nonblocking(true)?;
                        while let Ok(count @ 1..) = g.machine.doorbell.read(&mut buf) {
                            for &b in &buf[..count] {
                                if let Some(bell) = g.parser.push(b) {
                                    self.ring(i, bell, &mut g.report, host);
                                }
                            }
                        }
                    }
                    if let Some(Bell::Text(t)) = g.parser.finish() {
                        g.report.boot_text.push(t);
                    }
                    g.machine.flush_stderr();
                    // A guest that never started or ended without its exit stub does not
                    // come back: Muen's subject would not have reached its reset.
                    if g.report.exit_code.is_none() {
                        self.subjects[i].reset_pending = false;
                    }
                    if let Some(end) = self.ended(i, exit, limit) {
                        return Ok(end);
                    }
                    self.prepare(i);
                    *g = Guest::new(host.start(i)?);
                    restarted = true;
                }
            }
            // A restarted guest has new descriptors: poll them afresh.
            if restarted {
                continue;
            }
            for i in 0..n {
                if os::readable(&fds[2 + 2 * i]) {
                    match guests[i].machine.qmp.poll_events() {
                        Ok(Some(stop)) => return Ok(End::GuestStopped(i, stop)),
                        Ok(None) => {}
                        // QEMU is exiting; its end arrives as SIGCHLD.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            guests[i].monitor_open = false
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            self.check_timed_events();
            for (source, action) in std::mem::take(&mut self.requests) {
                match action {
                    Action::Kernel(a) => return Ok(End::System(source, a)),
                    Action::Reset { subject } => {
                        let exit = guests[subject].machine.process.kill()?;
                        guests[subject].machine.flush_stderr();
                        let exit = exit.unwrap_or(Exit {
                            status: crate::subject::Status::Signal(libc::SIGKILL),
                            user: Duration::ZERO,
                            system: Duration::ZERO,
                        });
                        self.subjects[subject].reset_pending = true;
                        if let Some(end) = self.ended(subject, exit, limit) {
                            return Ok(end);
                        }
                        self.prepare(subject);
                        guests[subject] = Guest::new(host.start(subject)?);
                    }
                    Action::Inject { .. } | Action::Wake(_) => {}
                }
            }
        }
    }

    /// Handles one doorbell message of guest `subject`.
    fn ring(
        &mut self,
        subject: usize,
        bell: Bell,
        report: &mut QemuReport,
        host: &mut dyn GuestHost,
    ) {
        match bell {
            Bell::Event(n) => {
                self.stats.events += 1;
                self.handle_event(subject, n);
            }
            Bell::Exit(code) => report.exit_code = Some(code),
            Bell::Halt => {
                self.subjects[subject].injector.guest_halted();
                self.halt(subject);
            }
            Bell::Started(tsc) if report.started.is_none() => {
                // The message's TSC is read late by the doorbell's latency (and by any
                // time the testbed did not run); the word the boot stage keeps writing
                // is read within a few hundred nanoseconds.
                let (guest, host_tsc) =
                    closest_reading(host.tsc_word(subject), TSC_CHANGES, TSC_LIMIT)
                        .unwrap_or((tsc, rdtsc()));
                self.subjects[subject].clock.align(guest, host_tsc);
                report.started = Some(tsc);
                report.started_at = Some(Instant::now());
                self.restart_frames(subject);
                host.started(subject);
            }
            Bell::Text(line) => report.boot_text.push(line),
            Bell::Started(_) | Bell::Malformed(_) => {
                if self.stats.bad_messages == 0 {
                    eprintln!(
                        "muen-testbed: warning: a guest wrote an unexpected doorbell \
                         message ({bell:?}); ignoring it (and any more)"
                    );
                }
                self.stats.bad_messages += 1;
            }
        }
    }
}

/// A QEMU guest the kernel runs: the machine, its doorbell parser and what it said.
#[derive(Debug)]
pub struct Guest {
    /// The QEMU process with its doorbell and monitor.
    pub machine: Machine,
    /// What the guest told.
    pub report: QemuReport,
    parser: Doorbell,
    doorbell_open: bool,
    monitor_open: bool,
}

impl Guest {
    /// A guest on `machine`, just started.
    pub fn new(machine: Machine) -> Guest {
        Guest {
            machine,
            report: QemuReport::default(),
            parser: Doorbell::new(),
            doorbell_open: true,
            monitor_open: true,
        }
    }
}

/// What the QEMU loop asks of the run: to start a guest again, and to let a guest go on.
pub trait GuestHost {
    /// Starts subject `subject`'s guest again (after a reset).
    fn start(&mut self, subject: usize) -> io::Result<Machine>;
    /// The word subject `subject`'s boot stage writes its TSC into while it waits.
    fn tsc_word(&self, subject: usize) -> &AtomicU64;
    /// Subject `subject`'s boot stage reported the guest's TSC and the clock is
    /// aligned: publish what depends on it and let the guest go on.
    fn started(&mut self, subject: usize);
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
    use crate::setup::Setup;
    use crate::world::World;
    use muen_sinfo::Version;
    use muen_spec::SubjectView;
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
        // A reset forgets the outstanding byte: the next vector gets one at once.
        injector.clear_pending();
        injector.inject(40);
        assert_eq!(bytes(), 1);
        assert_eq!(injector.sent(), 5);
        assert_eq!(injector.guest_wakes(), Some(4));
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
        let setup = Setup::single(World::new(w.clone()).unwrap(), Version::V5);
        let memory = Memory::new(&w).unwrap();
        let (ours, theirs) = os::seqpacket_pair().unwrap();
        let injector = Injector::new(ours.as_fd()).unwrap();
        let tsc = TscRate::from_khz(1_000_000).unwrap();
        let peer = EventFd::new().unwrap();
        let clock = SubjectClock::host();
        let links = [SubjectLink {
            clock: &clock,
            injector: &injector,
        }];
        let mut k = Kernel::new(&setup, &memory, tsc, Duration::from_millis(10), &links);
        k.link(0, 2, &peer);
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
        k.handle_event(0, 1);
        assert_eq!(received(&theirs), [[3, 32]]);
        // `service0|out` (2) wakes the network bridge.
        k.handle_event(0, 2);
        assert!(peer.clear());
        // `exit` (0) is recorded; unknown and out-of-range numbers are ignored.
        k.handle_event(0, 0);
        k.handle_event(0, 40);
        k.handle_event(0, 200);
        assert!(k.stats().exit_event);
        assert!(received(&theirs).is_empty());
        assert!(k.requests.is_empty());
        // An expired timed event fires once and is disarmed; a future one waits.
        memory
            .word(timed, TIMED_EVENT)
            .store(64 + 1, Ordering::Relaxed);
        memory
            .word(timed, TIMED_TRIGGER)
            .store(5, Ordering::Relaxed);
        k.check_timed_events();
        assert_eq!(
            received(&theirs),
            [[3, 32]],
            "event number masked to 6 bits"
        );
        assert_eq!(
            memory.word(timed, TIMED_TRIGGER).load(Ordering::Relaxed),
            u64::MAX
        );
        k.check_timed_events();
        assert!(received(&theirs).is_empty());
        memory
            .word(timed, TIMED_TRIGGER)
            .store(rdtsc() + 1_000_000_000_000, Ordering::Relaxed);
        k.check_timed_events();
        assert!(received(&theirs).is_empty());
        assert_eq!(k.stats().timed_events, 1);
    }

    #[test]
    fn events_reach_other_subjects_and_resets_are_requested() {
        use crate::setup::Delivery;
        let w = echo();
        let mut setup = Setup::single(World::new(w.clone()).unwrap(), Version::V5);
        // A second subject in the same regions (as if it mapped the same pages).
        setup.subjects.push(setup.subjects[0].clone());
        setup.subjects[0].deliveries[2] = vec![Delivery::Inject {
            subject: 1,
            vector: 40,
        }];
        setup.subjects[0].deliveries[0] = vec![Delivery::Reset { subject: 0 }];
        setup.subjects[0].deliveries[5] = vec![
            Delivery::Reset { subject: 1 },
            Delivery::Kernel(SourceAction::SystemPoweroff),
        ];
        let memory = Memory::new(&w).unwrap();
        let pairs = [os::seqpacket_pair().unwrap(), os::seqpacket_pair().unwrap()];
        let injectors = [
            Injector::new(pairs[0].0.as_fd()).unwrap(),
            Injector::new(pairs[1].0.as_fd()).unwrap(),
        ];
        let clock = SubjectClock::host();
        let links: Vec<SubjectLink> = injectors
            .iter()
            .map(|injector| SubjectLink {
                clock: &clock,
                injector,
            })
            .collect();
        let tsc = TscRate::from_khz(1_000_000).unwrap();
        let mut k = Kernel::new(&setup, &memory, tsc, Duration::from_millis(10), &links);
        k.handle_event(0, 2);
        assert!(received(&pairs[0].1).is_empty());
        assert_eq!(received(&pairs[1].1), [[3, 40]]);
        // The subject's own reset waits for its end; another's is a request.
        k.handle_event(0, 0);
        assert!(k.subjects[0].reset_pending && k.requests.is_empty());
        k.handle_event(0, 5);
        assert_eq!(
            k.requests,
            [
                (0, Action::Reset { subject: 1 }),
                (0, Action::Kernel(SourceAction::SystemPoweroff))
            ]
        );
        // A pending reset restarts within the limit, then ends the run.
        let exit = Exit {
            status: crate::subject::Status::Code(3),
            user: Duration::ZERO,
            system: Duration::ZERO,
        };
        assert!(k.ended(0, exit, Some(1)).is_none());
        k.prepare(0);
        assert!(!k.subjects[0].reset_pending);
        k.handle_event(0, 0);
        assert!(matches!(k.ended(0, exit, Some(1)), Some(End::Exited(0, _))));
        assert_eq!((k.restarts(0), k.stats().restarts), (1, 1));
        // Without a reset the subject's end is the run's.
        assert!(matches!(k.ended(1, exit, None), Some(End::Exited(1, _))));
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
