//! One run: build the memory from the [`Setup`], start the peers and the subjects, run
//! the kernel until the run ends (a subject ends for good, a kernel action, the
//! timeout, a signal), then stop everything and report.
//!
//! The subjects are Linux processes (hosted mode, `docs/hosted.md`, `run::hosted`) or
//! their real images in QEMU guests (QEMU mode, `docs/qemu.md`, `run::qemu`), all in
//! one mode. Each mode has its own path: the layout of the memory and what goes into
//! it, the link between kernel and subject (control socket or doorbell) and the process
//! (the subject or QEMU). What they share is here: the sinfo pages, the peers
//! (`Peers::open`) and serving them while the kernel runs the subjects (`serve`).
//!
//! Nothing is left behind on any path out: the memory files are `memfd`s; TAP
//! interfaces the testbed created vanish with their descriptors; the subjects (or
//! QEMU) are killed (and collected) if they are still running when this function
//! returns, and die with the testbed if the testbed is killed.

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
use muen_spec::model::SourceAction;

use crate::clock::{rdtsc, SubjectClock, TscRate};
use crate::kernel::{Kernel, KernelStats, SubjectLink};
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
use crate::qemu::solo5::Solo5Guest;
use crate::setup::{Page, Setup};
use crate::subject::{self, Exit, Status};

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

/// What runs the subjects: one entry per subject of the setup.
#[derive(Debug)]
pub enum Target {
    /// Hosted mode: Linux processes.
    Hosted(Vec<HostedTarget>),
    /// QEMU mode: the real images in QEMU guests.
    Qemu(QemuTarget),
}

/// A hosted subject's process.
#[derive(Debug)]
pub struct HostedTarget {
    /// The subject executable (built for the host).
    pub executable: PathBuf,
    /// Arguments for the executable (the testbed's own test subject takes some).
    pub args: Vec<OsString>,
}

/// A QEMU run.
#[derive(Debug)]
pub struct QemuTarget {
    /// The subjects' images (built for `x86_64-unknown-none`), one per subject.
    pub images: Vec<PathBuf>,
    /// The boot stage image (`qemu-boot/`).
    pub boot_stage: PathBuf,
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// The accelerator.
    pub accel: Accel,
    /// The tick's rate in Hz (0: none).
    pub tick_hz: u32,
    /// Per image, whether it is a Solo5 unikernel and what it needs besides
    /// (`crate::qemu::solo5`); empty: none is.
    pub solo5: Vec<Option<Solo5Guest>>,
}

impl QemuTarget {
    /// What image `i` needs as a Solo5 unikernel, if it is one.
    pub fn solo5_guest(&self, i: usize) -> Option<&Solo5Guest> {
        self.solo5.get(i).and_then(Option::as_ref)
    }
}

/// A device of a subject named on the command line: `DEV` or `SUBJECT/DEV`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceName {
    /// The subject, if named.
    pub subject: Option<String>,
    /// The device.
    pub device: String,
}

impl DeviceName {
    /// `DEV` or `SUBJECT/DEV`.
    pub fn parse(text: &str) -> DeviceName {
        match text.split_once('/') {
            Some((subject, device)) => DeviceName {
                subject: Some(subject.to_string()),
                device: device.to_string(),
            },
            None => DeviceName {
                subject: None,
                device: text.to_string(),
            },
        }
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(s) => write!(f, "{s}/{}", self.device),
            None => f.write_str(&self.device),
        }
    }
}

/// What to run and how.
#[derive(Debug)]
pub struct Options {
    /// The subjects, their worlds and their links (QEMU mode: with their image
    /// regions).
    pub setup: Setup,
    /// What runs them.
    pub target: Target,
    /// `(device, interface)`: bridge a network device to a TAP interface.
    pub taps: Vec<(DeviceName, String)>,
    /// `(device, image)`: serve a block device from an image file.
    pub disks: Vec<(DeviceName, PathBuf)>,
    /// `(device, file)`: record a network device's frames.
    pub pcaps: Vec<(DeviceName, PathBuf)>,
    /// Stop the subjects after this long.
    pub timeout: Option<Duration>,
    /// Minor frame length.
    pub frame: Duration,
    /// TSC rate to state in the sinfo pages the testbed builds and to run with (the
    /// host's, normally).
    pub tsc: TscRate,
    /// How often each subject may be started again after a reset (`None`: no limit).
    pub restarts: Option<u32>,
    /// The subject that SIGUSR1 resets (`None`: SIGUSR1 ends the run like SIGTERM).
    pub reset_on_sigusr1: Option<usize>,
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
    /// An event or `HLT` of the subject ran this kernel action of its policy.
    System(SourceAction),
}

/// The status for [`Ending::BootFailed`]: as the hosted runtime's when it cannot set
/// its world up (`docs/hosted.md`).
pub const STATUS_BOOT_FAILED: u8 = 125;

/// The status after `system_panic`: as a process that aborted (SIGABRT).
pub const STATUS_PANIC: u8 = 128 + libc::SIGABRT as u8;

/// The status for [`Ending::Crashed`]: as a hosted subject's killed by SIGSEGV.
pub const STATUS_CRASHED: u8 = 128 + libc::SIGSEGV as u8;

impl Ending {
    /// The testbed's exit status for this ending: the subject's code, 128 + signal, or
    /// 124 for a timeout (as `timeout(1)`); in QEMU mode [`STATUS_BOOT_FAILED`],
    /// [`STATUS_CRASHED`], or 1 when QEMU ended by itself; for a kernel action 0 after
    /// `system_poweroff` and `system_reboot` (the testbed stops instead of rebooting)
    /// and [`STATUS_PANIC`] after `system_panic`.
    pub fn exit_status(self) -> u8 {
        match self {
            Ending::Exited(code) => (code & 0xff) as u8,
            Ending::Killed(s) | Ending::Interrupted(s) => 128u8.saturating_add(s as u8),
            Ending::TimedOut(_) => 124,
            Ending::BootFailed => STATUS_BOOT_FAILED,
            Ending::Crashed(_) => STATUS_CRASHED,
            Ending::QemuEnded(_) => 1,
            Ending::System(SourceAction::SystemPanic) => STATUS_PANIC,
            Ending::System(_) => 0,
        }
    }
}

/// What happened in a run.
#[derive(Debug)]
pub struct Report {
    /// The subject whose end ended the run (the first one for a timeout or a signal).
    pub subject: String,
    /// How it ended.
    pub ending: Ending,
    /// Wall time from the subjects' start to the run's end.
    pub wall: Duration,
    /// CPU time of the subjects (user + system; their last start each).
    pub subject_cpu: Duration,
    /// CPU time of the testbed during the run (all threads).
    pub testbed_cpu: Duration,
    /// The kernel's counters.
    pub kernel: KernelStats,
    /// Vectors injected (QEMU mode: that came due).
    pub vectors: u64,
    /// QEMU mode: bytes written to the guests' wake-up UARTs.
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
            // the subject's share without QEMU's own start-up (with one subject).
            let running = match (self.boot_time, self.boot_cpu) {
                (Some(t), Some(c)) if self.wall > t => format!(
                    "{:.3}",
                    100.0 * self.subject_cpu.saturating_sub(c).as_secs_f64()
                        / (self.wall - t).as_secs_f64()
                ),
                _ => "none".to_string(),
            };
            lines.push(format!(
                "qemu_accel={accel} qemu_boot_ms={} qemu_boot_cpu_s={} \
                 qemu_running_cpu_pct={running} wakes={}",
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
             bad_messages={} log_messages={} restarts={}",
            k.events,
            k.halts,
            k.timed_events,
            self.vectors,
            k.frames,
            k.exit_event,
            k.bad_messages,
            self.log_messages,
            k.restarts
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

/// Where a device of the setup is: subject index and device index in its world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DeviceAt {
    subject: usize,
    device: usize,
}

/// The devices of `kind` named on the command line, resolved: `found(subject, name)`
/// gives the device's index in that subject's world. A name without a subject must be
/// unique among the subjects.
fn resolve<T: Clone>(
    setup: &Setup,
    list: &[(DeviceName, T)],
    found: impl Fn(usize, &str) -> Option<usize>,
    option: &str,
    kind: &str,
) -> Result<Vec<(DeviceAt, T)>, RunError> {
    let mut out: Vec<(DeviceAt, T)> = Vec::new();
    for (name, value) in list {
        let candidates: Vec<usize> = match &name.subject {
            Some(s) => match setup.subjects.iter().position(|x| x.name() == s) {
                Some(i) => vec![i],
                None => {
                    return Err(RunError::BadInput(format!(
                        "{option} {name}=...: the run has no subject `{s}`"
                    )))
                }
            },
            None => (0..setup.subjects.len()).collect(),
        };
        let hits: Vec<DeviceAt> = candidates
            .into_iter()
            .filter_map(|subject| {
                found(subject, &name.device).map(|device| DeviceAt { subject, device })
            })
            .collect();
        let at = match hits[..] {
            [at] => at,
            [] if setup.subjects.len() == 1 => {
                return Err(RunError::BadInput(format!(
                    "{option} {name}=...: the subject has no {kind} device `{}`",
                    name.device
                )))
            }
            [] => {
                return Err(RunError::BadInput(format!(
                    "{option} {name}=...: no subject of the run has a {kind} device `{}` \
                     served by the testbed",
                    name.device
                )))
            }
            _ => {
                let names: Vec<&str> = hits
                    .iter()
                    .map(|h| setup.subjects[h.subject].name())
                    .collect();
                return Err(RunError::BadInput(format!(
                    "{option} {name}=...: subjects {} all have a {kind} device `{}`; name \
                     one as SUBJECT/{}",
                    names.join(", "),
                    name.device,
                    name.device
                )));
            }
        };
        if out.iter().any(|(a, _)| *a == at) {
            return Err(RunError::BadInput(format!(
                "{option}: device `{name}` is given twice"
            )));
        }
        out.push((at, value.clone()));
    }
    Ok(out)
}

fn find<T>(list: &[(DeviceAt, T)], at: DeviceAt) -> Option<&T> {
    list.iter().find(|(a, _)| *a == at).map(|(_, t)| t)
}

/// The devices the command line names, resolved.
struct Devices {
    taps: Vec<(DeviceAt, String)>,
    disks: Vec<(DeviceAt, PathBuf)>,
    pcaps: Vec<(DeviceAt, PathBuf)>,
}

/// Runs the subjects. Call from the main thread (the subjects' death signal is tied to
/// the thread that starts them) before any other thread is started (the testbed's
/// signals must be blocked in all threads).
pub fn run(options: Options) -> Result<Report, RunError> {
    let setup = &options.setup;
    let net = |s: usize, d: &str| setup.subjects[s].world.net.iter().position(|n| n.name == d);
    let block = |s: usize, d: &str| {
        setup.subjects[s]
            .world
            .block
            .iter()
            .position(|n| n.name == d)
    };
    let devices = Devices {
        taps: resolve(setup, &options.taps, net, "--tap", "network")?,
        pcaps: resolve(setup, &options.pcaps, net, "--pcap", "network")?,
        disks: resolve(setup, &options.disks, block, "--disk", "block")?,
    };
    let count = match &options.target {
        Target::Hosted(t) => t.len(),
        Target::Qemu(q) => q.images.len(),
    };
    if count != setup.subjects.len() {
        return Err(RunError::BadInput(format!(
            "{count} executables for {} subjects",
            setup.subjects.len()
        )));
    }
    match &options.target {
        Target::Hosted(targets) => hosted::run(&options, &devices, targets),
        Target::Qemu(q) => qemu::run(&options, &devices, q),
    }
}

/// Writes every subject's sinfo page into `memory`.
fn write_sinfo(options: &Options, memory: &Memory) -> Result<(), RunError> {
    for s in &options.setup.subjects {
        let page = match &s.page {
            Page::Build(view, version) => {
                crate::sinfo::page(view, options.tsc, *version).map_err(|e| {
                    RunError::BadInput(format!(
                        "subject `{}`: building the sinfo page: {e}",
                        s.name()
                    ))
                })?
            }
            Page::Given(bytes) => bytes.clone(),
        };
        let Some(region) = s.region_of(muen_abi::names::SINFO) else {
            return Err(RunError::BadInput(format!(
                "subject `{}` maps no `sinfo` page",
                s.name()
            )));
        };
        memory.write_initial(region, 0, &page).map_err(|e| {
            RunError::BadInput(format!(
                "subject `{}`: writing the sinfo page: {e}",
                s.name()
            ))
        })?;
    }
    Ok(())
}

/// The time info regions subject `subject` maps.
fn time_info_of(setup: &Setup, subject: usize) -> Vec<usize> {
    setup
        .time_info
        .iter()
        .copied()
        .filter(|r| setup.subjects[subject].regions.contains(r))
        .collect()
}

/// A label for device `name` of subject `subject` in messages and statistics: the
/// device name, qualified by the subject's when the run has several.
fn device_label(setup: &Setup, subject: usize, name: &str) -> String {
    if setup.subjects.len() == 1 {
        name.to_string()
    } else {
        format!("{}/{name}", setup.subjects[subject].name())
    }
}

/// A network bridge with the subject it serves and the event that wakes it (`None`:
/// the subject never signals, the bridge polls).
struct NetPeer<'m> {
    subject: usize,
    event: Option<u8>,
    bridge: Bridge<'m>,
}

/// A block server with the subject it serves and the event that wakes it.
struct BlockPeer<'m> {
    subject: usize,
    event: u8,
    server: Server<'m>,
}

/// The testbed's peers of the subjects, ready to run: a network bridge per network
/// device, a block server per block device and a log sink per debug log.
struct Peers<'m> {
    bridges: Vec<NetPeer<'m>>,
    servers: Vec<BlockPeer<'m>>,
    logs: Vec<(usize, LogSink<'m, Stdout>)>,
}

impl<'m> Peers<'m> {
    /// Opens the outside resources (first, so that a bad `--disk` or `--tap` fails
    /// before anything runs; pcap files last, so that a failure leaves none behind) and
    /// sets the peers up on their channels in `memory`. `clocks[i]` is subject `i`'s.
    fn open(
        options: &Options,
        devices: &Devices,
        memory: &'m Memory,
        clocks: &'m [SubjectClock],
    ) -> Result<Self, RunError> {
        let setup = &options.setup;
        let origin = rdtsc();
        let epoch = epoch_from(origin);
        let each_device = |kind: fn(&crate::world::World) -> usize| {
            setup
                .subjects
                .iter()
                .enumerate()
                .flat_map(move |(subject, s)| {
                    (0..kind(&s.world)).map(move |device| DeviceAt { subject, device })
                })
        };
        let mut disks = Vec::new();
        for at in each_device(|w| w.block.len()) {
            let d = &setup.subjects[at.subject].world.block[at.device];
            let label = device_label(setup, at.subject, &d.name);
            disks.push(match find(&devices.disks, at) {
                Some(path) => Some(Disk::open(path).map_err(|e| {
                    RunError::BadInput(format!("--disk {label}={}: {e}", path.display()))
                })?),
                None => {
                    eprintln!(
                        "muen-testbed: block device `{label}` has no --disk; it has 0 blocks"
                    );
                    None
                }
            });
        }
        let mut taps = Vec::new();
        for at in each_device(|w| w.net.len()) {
            let d = &setup.subjects[at.subject].world.net[at.device];
            let label = device_label(setup, at.subject, &d.name);
            taps.push(match find(&devices.taps, at) {
                Some(ifname) => Some(
                    Tap::open(ifname)
                        .map_err(|e| RunError::BadInput(format!("--tap {label}={ifname}: {e}")))?,
                ),
                None => None,
            });
        }
        let mut pcaps = Vec::new();
        for at in each_device(|w| w.net.len()) {
            let d = &setup.subjects[at.subject].world.net[at.device];
            let label = device_label(setup, at.subject, &d.name);
            pcaps.push(match find(&devices.pcaps, at) {
                Some(path) => Some(Pcap::create(path).map_err(|e| {
                    RunError::BadInput(format!("--pcap {label}={}: {e}", path.display()))
                })?),
                None => None,
            });
        }

        let mut bridges = Vec::new();
        for ((at, tap), pcap) in each_device(|w| w.net.len()).zip(taps).zip(pcaps) {
            let s = &setup.subjects[at.subject];
            let d = &s.world.net[at.device];
            let label = device_label(setup, at.subject, &d.name);
            let input = memory
                .channel_mut(s.regions[d.input])
                .map_err(|e| RunError::Host(e.to_string()))?;
            let input = Writer::init(input, muennet::PROTOCOL, muennet::ELEMENT_SIZE, epoch)
                .map_err(|e| RunError::BadInput(format!("{label}|in: {e}")))?;
            let output = memory
                .channel(s.regions[d.output])
                .map_err(|e| RunError::Host(e.to_string()))?;
            let bridge = Bridge::new(&label, input, output, d.input_vector, tap, pcap)
                .map_err(|e| RunError::BadInput(e.to_string()))?;
            let bridge = match d.output_event {
                Some(_) => bridge,
                None => bridge.polling_output(crate::peers::net::OutputPolling::SOLO5),
            };
            bridges.push(NetPeer {
                subject: at.subject,
                event: d.output_event,
                bridge,
            });
        }
        let mut servers = Vec::new();
        for (at, disk) in each_device(|w| w.block.len()).zip(disks) {
            let s = &setup.subjects[at.subject];
            let d = &s.world.block[at.device];
            let label = device_label(setup, at.subject, &d.name);
            let responses = memory
                .channel_mut(s.regions[d.response])
                .map_err(|e| RunError::Host(e.to_string()))?;
            let responses = Writer::init(
                responses,
                muenblock::PROTOCOL,
                muenblock::RESPONSE_SIZE,
                epoch,
            )
            .map_err(|e| RunError::BadInput(format!("{label}|resp: {e}")))?;
            let server = Server::new(
                &label,
                memory,
                s.regions[d.request],
                responses,
                s.regions[d.data],
                d.response_vector,
                disk,
            )
            .map_err(|e| RunError::BadInput(e.to_string()))?;
            servers.push(BlockPeer {
                subject: at.subject,
                event: d.request_event,
                server,
            });
        }
        let mut logs = Vec::new();
        for link in &setup.logs {
            let region = memory
                .channel(link.region)
                .map_err(|e| RunError::Host(e.to_string()))?;
            let name = setup.subjects[link.subject].name();
            let format = Formatter::new(name, options.tsc, origin);
            let sink = LogSink::new(region, format, io::stdout()).map_err(host("debuglog"))?;
            logs.push((link.subject, sink.with_clock(&clocks[link.subject])));
        }
        Ok(Peers {
            bridges,
            servers,
            logs,
        })
    }
}

/// How the subjects of a mode ended.
struct Outcome {
    /// The subject whose end ended the run.
    subject: usize,
    ending: Ending,
    /// The ends of the subjects' processes (QEMU mode: QEMU's), with their CPU times.
    exits: Vec<Exit>,
    /// QEMU mode: what the guest of `subject` told besides its ending.
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

/// Runs the kernel for the subjects of `options` in `memory` with the peers, each peer
/// in a thread: `subjects` starts the subjects and runs `kernel` until the run ends (or
/// the deadline passes). Then stops the peers and reports. `links[i]` is subject `i`'s
/// clock and injector.
fn serve<'m>(
    options: &Options,
    memory: &'m Memory,
    links: &[SubjectLink<'m>],
    peers: Peers<'m>,
    log_period: Duration,
    subjects: impl FnOnce(&mut Kernel<'_>, Option<Instant>) -> Result<Outcome, RunError>,
) -> Result<Report, RunError> {
    let setup = &options.setup;
    let stop = Stop::new().map_err(host("eventfd"))?;
    let wakes = |n: usize| {
        (0..n)
            .map(|_| EventFd::new())
            .collect::<io::Result<Vec<_>>>()
            .map_err(host("eventfd"))
    };
    // One wake-up descriptor per peer, for the event of the channel it reads.
    let net_wakes = wakes(peers.bridges.len())?;
    let block_wakes = wakes(peers.servers.len())?;
    let log_wakes = wakes(peers.logs.len())?;
    let log_done = wakes(peers.logs.len())?;
    let mut kernel = Kernel::new(setup, memory, options.tsc, options.frame, links);
    kernel.reset_on_sigusr1(options.reset_on_sigusr1);
    for (p, wake) in peers.bridges.iter().zip(&net_wakes) {
        if let Some(event) = p.event {
            kernel.link(p.subject, event, wake);
        }
    }
    for (p, wake) in peers.servers.iter().zip(&block_wakes) {
        kernel.link(p.subject, p.event, wake);
    }
    for (((subject, _), wake), done) in peers.logs.iter().zip(&log_wakes).zip(&log_done) {
        kernel.set_log_waker(*subject, wake, done);
    }

    let cpu_before = subject::own_cpu_time();
    thread::scope(|scope| -> Result<Report, RunError> {
        let stop = &stop;
        let log_threads: Vec<_> = peers
            .logs
            .into_iter()
            .zip(log_wakes.iter().zip(&log_done))
            .map(|((_, mut sink), (wake, done))| {
                scope.spawn(move || {
                    let result = sink.run(stop, wake, done, log_period);
                    if let Err(e) = &result {
                        eprintln!("muen-testbed: the log sink stopped: {e}");
                    }
                    (sink.messages, sink.last_lines(REPORT_LOG_LINES))
                })
            })
            .collect();
        let net_threads: Vec<_> = peers
            .bridges
            .into_iter()
            .zip(&net_wakes)
            .map(|(mut peer, wake)| {
                let injector = links[peer.subject].injector;
                scope.spawn(move || {
                    let result = peer.bridge.run(injector, wake, stop);
                    if let Err(e) = &result {
                        eprintln!(
                            "muen-testbed: the network bridge of `{}` stopped: {e}",
                            peer.bridge.name()
                        );
                    }
                    (peer.bridge.name().to_string(), peer.bridge.stats)
                })
            })
            .collect();
        let block_threads: Vec<_> = peers
            .servers
            .into_iter()
            .zip(&block_wakes)
            .map(|(mut peer, wake)| {
                let injector = links[peer.subject].injector;
                scope.spawn(move || {
                    let result = peer.server.run(injector, wake, stop);
                    if let Err(e) = &result {
                        eprintln!(
                            "muen-testbed: the block server of `{}` stopped: {e}",
                            peer.server.name()
                        );
                    }
                    (peer.server.name().to_string(), peer.server.stats)
                })
            })
            .collect();

        let started = Instant::now();
        let deadline = options.timeout.map(|t| started + t);
        let outcome = subjects(&mut kernel, deadline).map(|mut outcome| {
            if let Ending::TimedOut(_) = outcome.ending {
                outcome.ending = Ending::TimedOut(options.timeout.unwrap_or_default());
            }
            (outcome, started.elapsed())
        });
        stop.stop();
        // A peer that failed said so when it stopped; a panic is reported here.
        let (mut log_messages, mut last_log) = (0, Vec::new());
        for t in log_threads {
            match t.join() {
                Ok((n, lines)) => {
                    log_messages += n;
                    last_log.extend(lines);
                }
                Err(_) => eprintln!("muen-testbed: a log sink panicked"),
            }
        }
        if last_log.len() > REPORT_LOG_LINES {
            last_log.drain(..last_log.len() - REPORT_LOG_LINES);
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
            subject: setup.subjects[outcome.subject].name().to_string(),
            ending: outcome.ending,
            wall,
            subject_cpu: outcome.exits.iter().map(|e| e.user + e.system).sum(),
            testbed_cpu: subject::own_cpu_time().saturating_sub(cpu_before),
            kernel: kernel.stats(),
            vectors: links.iter().map(|l| l.injector.sent()).sum(),
            guest_wakes: links
                .iter()
                .map(|l| l.injector.guest_wakes())
                .reduce(|a, b| Some(a? + b?))
                .flatten(),
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
