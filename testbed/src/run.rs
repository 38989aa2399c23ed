//! One run of a subject: build its memory from the world, start the peers and the
//! subject, run the kernel until the subject ends, then stop everything and report.
//!
//! The subject is a Linux process (hosted mode, `docs/hosted.md`, `run::hosted`) or its
//! real image in a QEMU guest (QEMU mode, `docs/qemu.md`, `run::qemu`). Each mode has its
//! own path: the layout of the memory file and what goes into it, the link between
//! kernel and subject (control socket or doorbell) and the process (the subject or
//! QEMU). What they share is here: the sinfo page, the peers (`Peers::open`) and
//! serving them while the kernel runs the subject (`serve`).
//!
//! Nothing is left behind on any path out: the memory file is a `memfd`; TAP interfaces
//! the testbed created vanish with their descriptors; the subject (or QEMU) is killed
//! (and collected) if it is still running when this function returns, and dies with
//! the testbed if the testbed is killed.

mod hosted;
mod qemu;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Stdout, Write};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use muen_channel::protocol::{muenblock, muennet};
use muen_channel::{epoch_from, Writer};
use muen_spec::Library;

use crate::clock::{rdtsc, SubjectClock, TscRate};
use crate::kernel::{Injector, Kernel, KernelStats};
use crate::memory::Memory;
use crate::os::EventFd;
use crate::pcap::Pcap;
use crate::peers::block::{BlockStats, Disk, Server};
use crate::peers::log::{Formatter, LogSink};
use crate::peers::net::{Bridge, NetStats};
use crate::peers::tap::Tap;
use crate::peers::Stop;
use crate::qemu::accel::Accel;
use crate::qemu::qmp::GuestStop;
use crate::subject::{self, Exit, Status};
use crate::world::World;

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
    /// Vectors injected (QEMU mode: that came due).
    pub vectors: u64,
    /// QEMU mode: bytes written to the guest's wake-up UART.
    pub guest_wakes: Option<u64>,
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
    /// QEMU mode: QEMU's CPU time until then.
    pub boot_cpu: Option<Duration>,
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
            // QEMU's CPU per wall second from the boot stage's handshake to the end:
            // the subject's share without QEMU's own start-up.
            let running = match (self.boot_time, self.boot_cpu) {
                (Some(t), Some(c)) if self.wall > t => format!(
                    "{:.3}",
                    100.0 * self.subject_cpu.saturating_sub(c).as_secs_f64()
                        / (self.wall - t).as_secs_f64()
                ),
                _ => "none".to_string(),
            };
            lines.push(format!(
                "qemu_accel={accel} qemu_boot_ms={} qemu_boot_cpu_s={} qemu_running_cpu_pct={running} \
                 wakes={}",
                self.boot_time.map_or("none".to_string(), |t| format!(
                    "{:.1}",
                    t.as_secs_f64() * 1e3
                )),
                self.boot_cpu
                    .map_or("none".to_string(), |c| format!("{:.4}", c.as_secs_f64())),
                self.guest_wakes.unwrap_or(0)
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
    match &options.target {
        Target::Hosted { executable, args } => hosted::run(&options, executable, args),
        Target::Qemu(q) => qemu::run(&options, q),
    }
}

/// Writes the sinfo page into `memory`.
fn write_sinfo(options: &Options, memory: &Memory) -> Result<(), RunError> {
    let view = &options.world.view;
    let page = crate::sinfo::page(view, options.tsc)
        .map_err(|e| RunError::BadInput(format!("building the sinfo page: {e}")))?;
    let sinfo = view.mapping_index(muen_abi::names::SINFO).unwrap_or(0);
    memory
        .write_initial(sinfo, 0, &page)
        .map_err(host("writing the sinfo page"))
}

/// The index of the time info page, if the subject maps libmutime's.
fn time_info(world: &World) -> Option<usize> {
    world
        .view
        .mapping_index(muen_abi::names::TIME_INFO)
        .filter(|_| world.view.has_library(Library::Time))
}

/// The testbed's peers of a subject, ready to run: a network bridge per network
/// device, a block server per block device and the log sink.
struct Peers<'m> {
    bridges: Vec<Bridge<'m>>,
    servers: Vec<Server<'m>>,
    log: Option<LogSink<'m, Stdout>>,
}

impl<'m> Peers<'m> {
    /// Opens the outside resources (first, so that a bad `--disk` or `--tap` fails
    /// before anything runs; pcap files last, so that a failure leaves none behind) and
    /// sets the peers up on their channels in `memory`.
    fn open(
        options: &Options,
        memory: &'m Memory,
        clock: &'m SubjectClock,
    ) -> Result<Self, RunError> {
        let world = &options.world;
        let origin = rdtsc();
        let epoch = epoch_from(origin);
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
                Some(ifname) => {
                    Some(Tap::open(ifname).map_err(|e| {
                        RunError::BadInput(format!("--tap {}={ifname}: {e}", d.name))
                    })?)
                }
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
                memory,
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
                Some(sink.with_clock(clock))
            }
            _ => None,
        };
        Ok(Peers {
            bridges,
            servers,
            log,
        })
    }
}

/// How a mode's subject ended.
struct Outcome {
    ending: Ending,
    /// The end of the subject's process (QEMU mode: QEMU's), with its CPU times.
    exit: Option<Exit>,
    /// QEMU mode: what the guest told besides its ending.
    guest: Option<GuestReport>,
}

/// What a QEMU run learnt besides its ending.
#[derive(Debug)]
struct GuestReport {
    accel: Accel,
    boot_text: Vec<String>,
    registers: Option<String>,
    boot_time: Option<Duration>,
    boot_cpu: Option<Duration>,
}

/// Runs the kernel for the subject of `options` in `memory` with the peers, each peer in
/// a thread: `subject` starts the subject and runs `kernel` until it ends (or the
/// deadline passes). Then stops the peers and reports.
fn serve<'m>(
    options: &Options,
    memory: &'m Memory,
    clock: &'m SubjectClock,
    injector: &Injector<'_>,
    peers: Peers<'m>,
    log_period: Duration,
    subject: impl FnOnce(&mut Kernel<'_>, Option<Instant>) -> Result<Outcome, RunError>,
) -> Result<Report, RunError> {
    let world = &options.world;
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
        memory,
        options.tsc,
        clock,
        options.frame,
        injector,
    );
    for (d, wake) in world.net.iter().zip(&net_wakes) {
        kernel.link(d.output_event, wake);
    }
    for (d, wake) in world.block.iter().zip(&block_wakes) {
        kernel.link(d.request_event, wake);
    }
    kernel.set_log_waker(&log_wake);

    let cpu_before = subject::own_cpu_time();
    thread::scope(|scope| -> Result<Report, RunError> {
        let (stop, log_wake) = (&stop, &log_wake);
        let log_thread = peers.log.map(|mut sink| {
            scope.spawn(move || {
                let result = sink.run(stop, log_wake, log_period);
                if let Err(e) = &result {
                    eprintln!("muen-testbed: the log sink stopped: {e}");
                }
                (sink.messages, sink.last_lines(REPORT_LOG_LINES))
            })
        });
        let net_threads: Vec<_> = peers
            .bridges
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
        let block_threads: Vec<_> = peers
            .servers
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
        let outcome = subject(&mut kernel, deadline).map(|mut outcome| {
            if let Ending::TimedOut(_) = outcome.ending {
                outcome.ending = Ending::TimedOut(options.timeout.unwrap_or_default());
            }
            (outcome, started.elapsed())
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
        let (outcome, wall) = outcome?;
        let (accel, boot_text, registers, boot_time, boot_cpu) = match outcome.guest {
            Some(g) => (
                Some(g.accel),
                g.boot_text,
                g.registers,
                g.boot_time,
                g.boot_cpu,
            ),
            None => (None, Vec::new(), None, None, None),
        };
        Ok(Report {
            ending: outcome.ending,
            wall,
            subject_cpu: outcome.exit.map_or(Duration::ZERO, |e| e.user + e.system),
            testbed_cpu: subject::own_cpu_time().saturating_sub(cpu_before),
            kernel: kernel.stats(),
            vectors: injector.sent(),
            guest_wakes: injector.guest_wakes(),
            net,
            block,
            log_messages,
            last_log,
            accel,
            boot_text,
            registers,
            boot_time,
            boot_cpu,
        })
    })
}
