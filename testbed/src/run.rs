//! One run of a subject: build its memory from the world, start the peers and the
//! subject, run the kernel until the subject ends, then stop everything and report.
//!
//! The subject is a Linux process (hosted mode, `docs/hosted.md`) or its real image in a
//! QEMU guest (QEMU mode, `docs/qemu.md`); the world, the memory file, the kernel and
//! the peers are the same, only the layout of the memory file, the link between kernel
//! and subject (control socket or doorbell) and the process (the subject or QEMU)
//! differ.
//!
//! Nothing is left behind on any path out: the memory file is a `memfd`; TAP interfaces
//! the testbed created vanish with their descriptors; the subject (or QEMU) is killed
//! (and collected) if it is still running when this function returns, and dies with
//! the testbed if the testbed is killed.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use muen_channel::protocol::{muenblock, muennet};
use muen_channel::{epoch_from, Writer};

use muen_testbed_abi::qemu::{BOOT_CONFIG_ADDRESS, BOOT_CONFIG_GO_OFFSET};

use crate::clock::{rdtsc, SubjectClock, TscRate};
use crate::kernel::{self, End, Injector, Kernel, KernelStats, QemuReport};
use crate::memory::{Layout, Memory};
use crate::os::{self, EventFd, SignalFd};
use crate::pcap::Pcap;
use crate::peers::block::{BlockStats, Disk, Server};
use crate::peers::log::{Formatter, LogSink};
use crate::peers::net::{Bridge, NetStats};
use crate::peers::tap::Tap;
use crate::peers::Stop;
use crate::qemu::accel::Accel;
use crate::qemu::boot::{self, BootStage};
use crate::qemu::image::SubjectImage;
use crate::qemu::machine::Machine;
use crate::qemu::qmp::GuestStop;
use crate::subject::{self, Exit, Status, Subject};
use crate::world::World;
use muen_spec::Library;

/// Default length of a minor frame.
pub const DEFAULT_FRAME: Duration = Duration::from_millis(10);

/// How often the log sink looks at the debug log by itself. The kernel also wakes it
/// whenever the subject halts or exits, so lines of a subject that logs and then
/// sleeps appear at once; this only bounds the delay for one that never sleeps.
pub const LOG_PERIOD: Duration = Duration::from_millis(50);

/// How often the log sink looks in QEMU mode, where the kernel does not see the guest
/// halt: this bounds the delay of every line.
pub const QEMU_LOG_PERIOD: Duration = Duration::from_millis(10);

/// How many of the last log lines a failure report repeats.
pub const REPORT_LOG_LINES: usize = 8;

/// What runs the subject.
#[derive(Debug)]
pub enum Target {
    /// Hosted mode: a Linux process.
    Hosted {
        /// The subject executable (built for the host).
        executable: PathBuf,
        /// Arguments for the executable (the testbed's own test subject takes some).
        args: Vec<OsString>,
    },
    /// QEMU mode: the real image in a QEMU guest.
    Qemu(QemuTarget),
}

/// A QEMU run.
#[derive(Debug)]
pub struct QemuTarget {
    /// The subject's image (built for `x86_64-unknown-none`).
    pub image: PathBuf,
    /// The boot stage image (`qemu-boot/`).
    pub boot_stage: PathBuf,
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// The accelerator.
    pub accel: Accel,
    /// The tick's rate in Hz (0: none).
    pub tick_hz: u32,
}

/// What to run and how.
#[derive(Debug)]
pub struct Options {
    /// The subject's world (QEMU mode: with its image regions).
    pub world: World,
    /// What runs it.
    pub target: Target,
    /// `(device, interface)`: bridge a network device to a TAP interface.
    pub taps: Vec<(String, String)>,
    /// `(device, image)`: serve a block device from an image file.
    pub disks: Vec<(String, PathBuf)>,
    /// `(device, file)`: record a network device's frames.
    pub pcaps: Vec<(String, PathBuf)>,
    /// Stop the subject after this long.
    pub timeout: Option<Duration>,
    /// Minor frame length.
    pub frame: Duration,
    /// TSC rate to state in the sinfo page (the host's, normally).
    pub tsc: TscRate,
}

/// Why a run could not start.
#[derive(Debug)]
pub enum RunError {
    /// A command line value does not fit the world (unknown device, bad file ...).
    BadInput(String),
    /// The host refused something (memfd, thread, socket ...).
    Host(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::BadInput(m) | RunError::Host(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}

fn host(what: &str) -> impl Fn(io::Error) -> RunError + '_ {
    move |e| RunError::Host(format!("{what}: {e}"))
}

/// How the subject's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// This signal killed it.
    Killed(i32),
    /// It was stopped at the timeout.
    TimedOut(Duration),
    /// The testbed got this signal and stopped it.
    Interrupted(i32),
    /// QEMU mode: the boot stage could not start the subject.
    BootFailed,
    /// QEMU mode: the guest stopped without exiting (a triple fault, an emulation
    /// failure); how.
    Crashed(GuestStop),
    /// QEMU mode: QEMU ended without the subject exiting, with this status.
    QemuEnded(Status),
}

/// The status for [`Ending::BootFailed`]: as the hosted runtime's when it cannot set
/// its world up (`docs/hosted.md`).
pub const STATUS_BOOT_FAILED: u8 = 125;

/// The status for [`Ending::Crashed`]: as a hosted subject's killed by SIGSEGV.
pub const STATUS_CRASHED: u8 = 128 + libc::SIGSEGV as u8;

impl Ending {
    /// The testbed's exit status for this ending: the subject's code, 128 + signal, or
    /// 124 for a timeout (as `timeout(1)`); in QEMU mode [`STATUS_BOOT_FAILED`],
    /// [`STATUS_CRASHED`], or 1 when QEMU ended by itself.
    pub fn exit_status(self) -> u8 {
        match self {
            Ending::Exited(code) => (code & 0xff) as u8,
            Ending::Killed(s) | Ending::Interrupted(s) => 128u8.saturating_add(s as u8),
            Ending::TimedOut(_) => 124,
            Ending::BootFailed => STATUS_BOOT_FAILED,
            Ending::Crashed(_) => STATUS_CRASHED,
            Ending::QemuEnded(_) => 1,
        }
    }
}

/// What happened in a run.
#[derive(Debug)]
pub struct Report {
    /// How the subject ended.
    pub ending: Ending,
    /// Wall time from the subject's start to its end.
    pub wall: Duration,
    /// CPU time of the subject (user + system).
    pub subject_cpu: Duration,
    /// CPU time of the testbed during the run (all threads).
    pub testbed_cpu: Duration,
    /// The kernel's counters.
    pub kernel: KernelStats,
    /// Vectors injected.
    pub vectors: u64,
    /// Per network device.
    pub net: Vec<(String, NetStats)>,
    /// Per block device.
    pub block: Vec<(String, BlockStats)>,
    /// Log messages printed.
    pub log_messages: u64,
    /// The last log lines printed (for failure reports).
    pub last_log: Vec<String>,
    /// QEMU mode: the accelerator.
    pub accel: Option<Accel>,
    /// QEMU mode: lines from the boot stage.
    pub boot_text: Vec<String>,
    /// QEMU mode: the guest's registers when it crashed or hung (QEMU's dump).
    pub registers: Option<String>,
    /// QEMU mode: from QEMU's start to the boot stage's handshake (QEMU's start-up and
    /// the boot stage's work).
    pub boot_time: Option<Duration>,
}

impl Report {
    /// The summary `--stats` prints, as `key=value` lines.
    pub fn stats_lines(&self) -> Vec<String> {
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / self.wall.as_secs_f64().max(1e-9);
        let mut lines = vec![format!(
            "wall_s={:.3} subject_cpu_s={:.4} subject_cpu_pct={:.3} testbed_cpu_s={:.4} \
             testbed_cpu_pct={:.3}",
            self.wall.as_secs_f64(),
            self.subject_cpu.as_secs_f64(),
            pct(self.subject_cpu),
            self.testbed_cpu.as_secs_f64(),
            pct(self.testbed_cpu),
        )];
        if let Some(accel) = self.accel {
            lines.push(format!(
                "qemu_accel={accel} qemu_boot_ms={}",
                self.boot_time.map_or("none".to_string(), |t| format!(
                    "{:.1}",
                    t.as_secs_f64() * 1e3
                ))
            ));
        }
        let k = &self.kernel;
        lines.push(format!(
            "events={} halts={} timed_events={} vectors={} frames={} exit_event={} \
             bad_messages={} log_messages={}",
            k.events,
            k.halts,
            k.timed_events,
            self.vectors,
            k.frames,
            k.exit_event,
            k.bad_messages,
            self.log_messages
        ));
        for (name, s) in &self.net {
            lines.push(format!(
                "net={name} to_subject={} from_subject={} bad_frames={} oversized={} \
                 out_overruns={} tap_errors={}",
                s.to_subject,
                s.from_subject,
                s.bad_frames,
                s.oversized,
                s.out_overruns,
                s.tap_errors
            ));
        }
        for (name, s) in &self.block {
            lines.push(format!(
                "block={name} requests={} refused={} failed={} overruns={}",
                s.requests, s.refused, s.failed, s.overruns
            ));
        }
        lines
    }
}

fn lookup<T>(
    list: &[(String, T)],
    devices: impl Fn(&str) -> bool,
    option: &str,
    kind: &str,
) -> Result<(), RunError> {
    for (dev, _) in list {
        if !devices(dev) {
            return Err(RunError::BadInput(format!(
                "{option} {dev}=...: the subject has no {kind} device `{dev}`"
            )));
        }
    }
    for (i, (dev, _)) in list.iter().enumerate() {
        if list[..i].iter().any(|(d, _)| d == dev) {
            return Err(RunError::BadInput(format!(
                "{option}: device `{dev}` is given twice"
            )));
        }
    }
    Ok(())
}

fn find<'a, T>(list: &'a [(String, T)], dev: &str) -> Option<&'a T> {
    list.iter().find(|(d, _)| d == dev).map(|(_, t)| t)
}

/// Runs the subject. Call from the main thread (the subject's death signal is tied to
/// the thread that starts it) before any other thread is started (the testbed's
/// signals must be blocked in all threads).
pub fn run(options: Options) -> Result<Report, RunError> {
    let world = &options.world;
    lookup(
        &options.taps,
        |d| world.net_device(d).is_some(),
        "--tap",
        "network",
    )?;
    lookup(
        &options.pcaps,
        |d| world.net_device(d).is_some(),
        "--pcap",
        "network",
    )?;
    lookup(
        &options.disks,
        |d| world.block_device(d).is_some(),
        "--disk",
        "block",
    )?;

    // QEMU mode: the images first, so that a bad one fails before anything is made.
    let qemu = match &options.target {
        Target::Hosted { .. } => None,
        Target::Qemu(q) => Some((
            q,
            BootStage::load(&q.boot_stage)
                .map_err(|e| RunError::BadInput(format!("boot stage: {e}")))?,
            SubjectImage::load(&q.image).map_err(RunError::BadInput)?,
        )),
    };

    let signals = SignalFd::new().map_err(host("blocking signals"))?;
    let layout = match qemu {
        None => Layout::Hosted,
        Some(_) => Layout::Qemu,
    };
    let memory = Memory::with_layout(&world.view, layout).map_err(|e| match layout {
        // Too much guest RAM is the app's problem, not the host's.
        Layout::Qemu => RunError::BadInput(format!("the memory file: {e}")),
        Layout::Hosted => RunError::Host(format!("creating the memory file: {e}")),
    })?;
    let page = crate::sinfo::page(&world.view, options.tsc)
        .map_err(|e| RunError::BadInput(format!("building the sinfo page: {e}")))?;
    let sinfo = world
        .view
        .mapping_index(muen_abi::names::SINFO)
        .unwrap_or(0);
    memory
        .write_initial(sinfo, 0, &page)
        .map_err(host("writing the sinfo page"))?;
    if let Some((q, boot, image)) = &qemu {
        let config = boot::config(&world.view, &memory, q.tick_hz).map_err(RunError::Host)?;
        boot.install(&memory, &config)
            .map_err(host("writing the boot stage"))?;
        image
            .install(&world.view, &memory)
            .map_err(|e| RunError::BadInput(format!("{}: {e}", q.image.display())))?;
    }
    let clock = SubjectClock::host();
    let time_info = world
        .view
        .mapping_index(muen_abi::names::TIME_INFO)
        .filter(|_| world.view.has_library(Library::Time));
    // A QEMU guest's TSC is known only once the boot stage reports it.
    if let (Some(i), None) = (time_info, &qemu) {
        kernel::publish_time_info(&memory, i, options.tsc, &clock);
    }
    let origin = rdtsc();
    let epoch = epoch_from(origin);

    // Outside resources first, so that a bad --disk or --tap fails before anything
    // runs; pcap files last, so that a failure leaves none behind.
    let mut disks = Vec::new();
    for d in &world.block {
        disks.push(match find(&options.disks, &d.name) {
            Some(path) => Some(Disk::open(path).map_err(|e| {
                RunError::BadInput(format!("--disk {}={}: {e}", d.name, path.display()))
            })?),
            None => {
                eprintln!(
                    "muen-testbed: block device `{}` has no --disk; it has 0 blocks",
                    d.name
                );
                None
            }
        });
    }
    let mut taps = Vec::new();
    for d in &world.net {
        taps.push(match find(&options.taps, &d.name) {
            Some(ifname) => Some(
                Tap::open(ifname)
                    .map_err(|e| RunError::BadInput(format!("--tap {}={ifname}: {e}", d.name)))?,
            ),
            None => None,
        });
    }
    let mut pcaps = Vec::new();
    for d in &world.net {
        pcaps.push(match find(&options.pcaps, &d.name) {
            Some(path) => Some(Pcap::create(path).map_err(|e| {
                RunError::BadInput(format!("--pcap {}={}: {e}", d.name, path.display()))
            })?),
            None => None,
        });
    }

    let mut bridges = Vec::new();
    for ((d, tap), pcap) in world.net.iter().zip(taps).zip(pcaps) {
        let input = memory
            .channel_mut(d.input)
            .map_err(|e| RunError::Host(e.to_string()))?;
        let input = Writer::init(input, muennet::PROTOCOL, muennet::ELEMENT_SIZE, epoch)
            .map_err(|e| RunError::BadInput(format!("{}|in: {e}", d.name)))?;
        let output = memory
            .channel(d.output)
            .map_err(|e| RunError::Host(e.to_string()))?;
        let bridge = Bridge::new(&d.name, input, output, d.input_vector, tap, pcap)
            .map_err(|e| RunError::BadInput(e.to_string()))?;
        bridges.push(bridge);
    }
    let mut servers = Vec::new();
    for (d, disk) in world.block.iter().zip(disks) {
        let responses = memory
            .channel_mut(d.response)
            .map_err(|e| RunError::Host(e.to_string()))?;
        let responses = Writer::init(
            responses,
            muenblock::PROTOCOL,
            muenblock::RESPONSE_SIZE,
            epoch,
        )
        .map_err(|e| RunError::BadInput(format!("{}|resp: {e}", d.name)))?;
        let server = Server::new(
            &d.name,
            &memory,
            d.request,
            responses,
            d.data,
            d.response_vector,
            disk,
        )
        .map_err(|e| RunError::BadInput(e.to_string()))?;
        servers.push(server);
    }
    let log = match world.view.mapping_index(muen_abi::names::DEBUGLOG) {
        Some(i) if world.view.has_library(Library::Debuglog) => {
            let region = memory
                .channel(i)
                .map_err(|e| RunError::Host(e.to_string()))?;
            let format = Formatter::new(world.name(), options.tsc, origin);
            let sink = LogSink::new(region, format, io::stdout()).map_err(host("debuglog"))?;
            Some(sink.with_clock(&clock))
        }
        _ => None,
    };

    // Hosted: the control socket. QEMU: the doorbell (opened with QEMU, below).
    let (ours, theirs) = match &qemu {
        None => {
            let (ours, theirs) = os::seqpacket_pair().map_err(host("control socket"))?;
            (Some(ours), Some(theirs))
        }
        Some(_) => (None, None),
    };
    let injector = match &ours {
        Some(ours) => Injector::new(ours.as_fd()),
        None => Injector::counting(),
    }
    .map_err(host("eventfd"))?;
    let stop = Stop::new().map_err(host("eventfd"))?;
    let log_wake = EventFd::new().map_err(host("eventfd"))?;
    // One wake-up descriptor per peer, for the event of the channel it reads.
    let net_wakes = world
        .net
        .iter()
        .map(|_| EventFd::new())
        .collect::<io::Result<Vec<_>>>()
        .map_err(host("eventfd"))?;
    let block_wakes = world
        .block
        .iter()
        .map(|_| EventFd::new())
        .collect::<io::Result<Vec<_>>>()
        .map_err(host("eventfd"))?;
    let mut kernel = Kernel::new(
        &world.view,
        &memory,
        options.tsc,
        &clock,
        options.frame,
        &injector,
    );
    for (d, wake) in world.net.iter().zip(&net_wakes) {
        kernel.link(d.output_event, wake);
    }
    for (d, wake) in world.block.iter().zip(&block_wakes) {
        kernel.link(d.request_event, wake);
    }
    kernel.set_log_waker(&log_wake);
    let log_period = match &qemu {
        None => LOG_PERIOD,
        Some(_) => QEMU_LOG_PERIOD,
    };

    let cpu_before = subject::own_cpu_time();
    thread::scope(|scope| -> Result<Report, RunError> {
        let (injector, stop, log_wake) = (&injector, &stop, &log_wake);
        let log_thread = log.map(|mut sink| {
            scope.spawn(move || {
                let result = sink.run(stop, log_wake, log_period);
                if let Err(e) = &result {
                    eprintln!("muen-testbed: the log sink stopped: {e}");
                }
                (sink.messages, sink.last_lines(REPORT_LOG_LINES))
            })
        });
        let net_threads: Vec<_> = bridges
            .into_iter()
            .zip(&net_wakes)
            .map(|(mut bridge, wake)| {
                scope.spawn(move || {
                    let result = bridge.run(injector, wake, stop);
                    if let Err(e) = &result {
                        eprintln!(
                            "muen-testbed: the network bridge of `{}` stopped: {e}",
                            bridge.name()
                        );
                    }
                    (bridge.name().to_string(), bridge.stats)
                })
            })
            .collect();
        let block_threads: Vec<_> = servers
            .into_iter()
            .zip(&block_wakes)
            .map(|(mut server, wake)| {
                scope.spawn(move || {
                    let result = server.run(injector, wake, stop);
                    if let Err(e) = &result {
                        eprintln!(
                            "muen-testbed: the block server of `{}` stopped: {e}",
                            server.name()
                        );
                    }
                    (server.name().to_string(), server.stats)
                })
            })
            .collect();

        let started = Instant::now();
        let deadline = options.timeout.map(|t| started + t);
        let mut guest = GuestReport::default();
        let outcome = match (&options.target, &ours, theirs) {
            (Target::Hosted { executable, args }, Some(ours), Some(theirs)) => run_hosted(
                &mut kernel,
                executable,
                args,
                &memory,
                (ours.as_fd(), theirs),
                &signals,
                deadline,
            )
            .map(|(ending, exit)| (ending, exit, started.elapsed())),
            (Target::Qemu(q), _, _) => {
                let go = memory.word_at(BOOT_CONFIG_ADDRESS + BOOT_CONFIG_GO_OFFSET);
                let mut start = || {
                    if let Some(i) = time_info {
                        kernel::publish_time_info(&memory, i, options.tsc, &clock);
                    }
                    go.store(1, Ordering::Release);
                };
                let rom = qemu.as_ref().map(|(_, boot, _)| boot.rom()).unwrap_or(&[]);
                run_qemu(
                    &mut kernel,
                    q,
                    rom,
                    &memory,
                    &signals,
                    deadline,
                    &mut start,
                    &mut guest,
                )
                .map(|(ending, exit)| (ending, exit, started.elapsed()))
            }
            (Target::Hosted { .. }, _, _) => Err(RunError::Host("no control socket".into())),
        };
        let outcome = outcome.map(|(ending, exit, wall)| match ending {
            Ending::TimedOut(_) => (
                Ending::TimedOut(options.timeout.unwrap_or_default()),
                exit,
                wall,
            ),
            ending => (ending, exit, wall),
        });
        stop.stop();
        // A peer that failed said so when it stopped; a panic is reported here.
        let (mut log_messages, mut last_log) = (0, Vec::new());
        if let Some(t) = log_thread {
            match t.join() {
                Ok((n, lines)) => (log_messages, last_log) = (n, lines),
                Err(_) => eprintln!("muen-testbed: the log sink panicked"),
            }
        }
        let mut net = Vec::new();
        for t in net_threads {
            match t.join() {
                Ok(stats) => net.push(stats),
                Err(_) => eprintln!("muen-testbed: a network bridge panicked"),
            }
        }
        let mut block = Vec::new();
        for t in block_threads {
            match t.join() {
                Ok(stats) => block.push(stats),
                Err(_) => eprintln!("muen-testbed: a block server panicked"),
            }
        }
        let _ = io::stdout().flush();
        let (ending, exit, wall) = outcome?;
        Ok(Report {
            ending,
            wall,
            subject_cpu: exit.map_or(Duration::ZERO, |e| e.user + e.system),
            testbed_cpu: subject::own_cpu_time().saturating_sub(cpu_before),
            kernel: kernel.stats(),
            vectors: injector.sent(),
            net,
            block,
            log_messages,
            last_log,
            accel: match &options.target {
                Target::Qemu(q) => Some(q.accel),
                Target::Hosted { .. } => None,
            },
            boot_text: guest.boot_text,
            registers: guest.registers,
            boot_time: guest.boot_time,
        })
    })
}

/// What a QEMU run learnt besides its ending.
#[derive(Debug, Default)]
struct GuestReport {
    boot_text: Vec<String>,
    registers: Option<String>,
    boot_time: Option<Duration>,
}

/// Starts the hosted subject and runs the kernel until it ends.
fn run_hosted(
    kernel: &mut Kernel<'_>,
    executable: &std::path::Path,
    args: &[OsString],
    memory: &Memory,
    (ours, theirs): (BorrowedFd<'_>, OwnedFd),
    signals: &SignalFd,
    deadline: Option<Instant>,
) -> Result<(Ending, Option<Exit>), RunError> {
    let mut subject = Subject::spawn(executable, args, memory.fd(), theirs.as_fd())
        .map_err(|e| RunError::BadInput(format!("starting {}: {e}", executable.display())))?;
    drop(theirs);
    let end = kernel
        .run(ours, signals, &mut subject, deadline)
        .map_err(host("kernel"));
    let end = match end {
        Ok(end) => end,
        Err(e) => {
            let _ = subject.kill();
            return Err(e);
        }
    };
    Ok(match end {
        End::Exited(exit) => (
            match exit.status {
                Status::Code(c) => Ending::Exited(c),
                Status::Signal(s) => Ending::Killed(s),
            },
            Some(exit),
        ),
        End::TimedOut => (
            Ending::TimedOut(Duration::ZERO),
            subject.kill().ok().flatten(),
        ),
        End::Interrupted(s) => (Ending::Interrupted(s), subject.kill().ok().flatten()),
        End::GuestStopped(_) => unreachable!("the hosted kernel loop has no guest"),
    })
}

/// Starts QEMU and runs the kernel until it ends, or the guest stops or hangs (then
/// its registers are read before QEMU is stopped).
#[allow(clippy::too_many_arguments)]
fn run_qemu(
    kernel: &mut Kernel<'_>,
    q: &QemuTarget,
    rom: &[u8],
    memory: &Memory,
    signals: &SignalFd,
    deadline: Option<Instant>,
    start: &mut dyn FnMut(),
    guest: &mut GuestReport,
) -> Result<(Ending, Option<Exit>), RunError> {
    let launched = Instant::now();
    let mut machine = Machine::start(&q.qemu, q.accel, memory, rom)
        .map_err(|e| RunError::Host(format!("starting QEMU ({}): {e}", q.qemu.display())))?;
    let mut report = QemuReport::default();
    let end = kernel.run_qemu(
        &mut machine.doorbell,
        &mut machine.qmp,
        signals,
        &mut machine.process,
        deadline,
        &mut report,
        start,
    );
    let end = match end {
        Ok(end) => end,
        Err(e) => {
            let _ = machine.process.kill();
            return Err(RunError::Host(format!("kernel: {e}")));
        }
    };
    let registers = |machine: &mut Machine| match machine.qmp.registers() {
        Ok(r) => Some(r),
        Err(e) => Some(format!("(QEMU did not tell: {e})")),
    };
    let result = match end {
        End::Exited(exit) => {
            let ending = match (report.exit_code, exit.status) {
                (Some(code), _) => Ending::Exited(i32::from(code)),
                (None, _) if report.started.is_none() => Ending::BootFailed,
                (None, status) => Ending::QemuEnded(status),
            };
            (ending, Some(exit))
        }
        End::TimedOut => {
            guest.registers = registers(&mut machine);
            (
                Ending::TimedOut(Duration::ZERO),
                machine.process.kill().ok().flatten(),
            )
        }
        End::GuestStopped(how) => {
            guest.registers = registers(&mut machine);
            (Ending::Crashed(how), machine.process.kill().ok().flatten())
        }
        End::Interrupted(s) => (
            Ending::Interrupted(s),
            machine.process.kill().ok().flatten(),
        ),
    };
    machine.flush_stderr();
    guest.boot_text = report.boot_text;
    guest.boot_time = report.started_at.map(|t| t - launched);
    Ok(result)
}
