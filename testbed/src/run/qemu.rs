//! QEMU mode's path: each subject's real image runs in a QEMU guest of its own. A
//! guest's RAM is its low memory (memory map, boot stage), the run's memory file (every
//! region of the run, shared by all guests) and its page table pool
//! (`crate::memory::GuestMemory`); QEMU runs it and the kernel talks to the guest
//! through the doorbell (`docs/qemu.md`).

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use muen_sinfo::MemoryKind;
use muen_spec::Content;
use muen_testbed_abi::qemu::{BOOT_CONFIG_ADDRESS, BOOT_CONFIG_GO_OFFSET};

use super::{
    host, serve, time_info_of, write_sinfo, Devices, Ending, GuestReport, Options, Outcome, Peers,
    QemuTarget, Report, RunError,
};
use crate::clock::SubjectClock;
use crate::kernel::{self, End, Guest, GuestHost, Injector, Kernel, SubjectLink};
use crate::memory::{Backing, GuestMemory, Layout, Memory};
use crate::os::SignalFd;
use crate::qemu::boot::{self, BootStage};
use crate::qemu::image::SubjectImage;
use crate::qemu::machine::Machine;
use crate::qemu::solo5;
use crate::run::QEMU_LOG_PERIOD;
use policy_gen::solo5::Bindings;

/// Runs the subjects of `options` in the QEMU guests of `q`.
pub(super) fn run(
    options: &Options,
    devices: &Devices,
    q: &QemuTarget,
) -> Result<Report, RunError> {
    let setup = &options.setup;
    // The images first, so that a bad one fails before anything is made.
    let boot = BootStage::load(&q.boot_stage)
        .map_err(|e| RunError::BadInput(format!("boot stage: {e}")))?;
    let images = q
        .images
        .iter()
        .enumerate()
        // Solo5's C bindings exit through `platform_exit`; solo5-muen uses the
        // runtime's stubs, as the project's own images do.
        .map(|(i, path)| match q.solo5_guest(i).map(|g| g.bindings) {
            None | Some(Bindings::MuenSubject) => SubjectImage::load(path),
            Some(Bindings::Solo5) => SubjectImage::load_solo5(path),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunError::BadInput)?;
    for (i, s) in setup.subjects.iter().enumerate() {
        boot::check_registers(&s.world.view)
            .map_err(|e| RunError::BadInput(format!("subject `{}`: {e}", s.name())))?;
        // A Solo5 unikernel's boot info, checked before anything is made.
        if let Some(guest) = q.solo5_guest(i) {
            solo5::boot_info(&s.world.view, &guest.cmdline)
                .map_err(|e| RunError::BadInput(format!("Solo5 boot info: {e}")))?;
        }
    }
    let signals = SignalFd::new().map_err(host("blocking signals"))?;
    let backings: Vec<Backing> = setup.regions.iter().map(|r| r.backing.clone()).collect();
    // Too much guest RAM is the app's problem, not the host's.
    let memory = Memory::with_regions(&backings, Layout::Guest)
        .map_err(|e| RunError::BadInput(format!("the memory file: {e}")))?;
    write_sinfo(options, &memory)?;
    let clocks: Vec<SubjectClock> = setup
        .subjects
        .iter()
        .map(|_| SubjectClock::host())
        .collect();
    let peers = Peers::open(options, devices, &memory, &clocks)?;
    // The guests get no vectors: their tick wakes them (`Injector::counting`).
    let injectors = setup
        .subjects
        .iter()
        .map(|_| Injector::counting())
        .collect::<io::Result<Vec<_>>>()
        .map_err(host("eventfd"))?;
    let links: Vec<SubjectLink> = clocks
        .iter()
        .zip(&injectors)
        .map(|(clock, injector)| SubjectLink { clock, injector })
        .collect();
    let mut machines = Machines {
        options,
        q,
        boot: &boot,
        images: &images,
        memory: &memory,
        clocks: &clocks,
        guests: Vec::new(),
    };
    for i in 0..setup.subjects.len() {
        let guest = machines.prepare(i).map_err(RunError::BadInput)?;
        machines.guests.push(guest);
    }
    serve(
        options,
        &memory,
        &links,
        peers,
        QEMU_LOG_PERIOD,
        |kernel, deadline| guests(kernel, options, q, &mut machines, &signals, deadline),
    )
}

/// What runs the guests: their memories and what goes into them.
struct Machines<'r> {
    options: &'r Options,
    q: &'r QemuTarget,
    boot: &'r BootStage,
    images: &'r [SubjectImage],
    memory: &'r Memory,
    clocks: &'r [SubjectClock],
    /// Each guest's own memory (replaced when it starts again).
    guests: Vec<GuestMemory>,
}

impl Machines<'_> {
    /// Makes guest `i`'s own memory with the boot stage and (re)loads its image into
    /// its regions: what the guest needs to boot.
    fn prepare(&self, i: usize) -> Result<GuestMemory, String> {
        let s = &self.options.setup.subjects[i];
        let view = &s.world.view;
        for (&region, m) in s.regions.iter().zip(&view.mappings) {
            if let (MemoryKind::SubjectBinary, Content::Fill(byte)) = (m.kind, &m.content) {
                self.memory
                    .fill(region, *byte)
                    .map_err(|e| format!("filling `{}`: {e}", m.name))?;
            }
        }
        self.images[i]
            .install(view, &s.regions, self.memory)
            .map_err(|e| format!("{}: {e}", self.q.images[i].display()))?;
        if let Some(guest) = self.q.solo5_guest(i) {
            let (mapping, bytes) = solo5::boot_info(view, &guest.cmdline)?;
            self.memory
                .write_initial(s.regions[mapping], 0, &bytes)
                .map_err(|e| format!("writing the Solo5 boot info: {e}"))?;
        }
        let offsets: Vec<u64> = s
            .regions
            .iter()
            .map(|&r| self.memory.placement(r).offset)
            .collect();
        let guest = GuestMemory::new(view, &offsets, self.memory)
            .map_err(|e| format!("subject `{}`: {e}", s.name()))?;
        let config = boot::config(view, &guest, self.q.tick_hz);
        self.boot
            .install(&guest.low, &config)
            .map_err(|e| format!("writing the boot stage: {e}"))?;
        Ok(guest)
    }

    /// Starts QEMU for guest `i`.
    fn start_machine(&self, i: usize) -> io::Result<Machine> {
        Machine::start(
            &self.q.qemu,
            self.q.accel,
            &self.guests[i],
            self.memory,
            self.boot.rom(),
        )
        .map_err(|e| io::Error::other(format!("starting QEMU ({}): {e}", self.q.qemu.display())))
    }
}

impl GuestHost for Machines<'_> {
    fn start(&mut self, subject: usize) -> io::Result<Machine> {
        self.guests[subject] = self.prepare(subject).map_err(io::Error::other)?;
        self.start_machine(subject)
    }

    fn started(&mut self, subject: usize) {
        // A QEMU guest's TSC is known only once the boot stage reports it: the time
        // info page is published then, right before the guest may go on.
        for region in time_info_of(&self.options.setup, subject) {
            kernel::publish_time_info(self.memory, region, self.options.tsc, &self.clocks[subject]);
        }
        let go = self.guests[subject]
            .low
            .word_at(BOOT_CONFIG_ADDRESS + BOOT_CONFIG_GO_OFFSET);
        go.store(1, Ordering::Release);
    }
}

/// Starts QEMU for every subject and runs the kernel until the run ends, or a guest
/// stops or hangs (then its registers are read before QEMU is stopped).
fn guests(
    kernel: &mut Kernel<'_>,
    options: &Options,
    q: &QemuTarget,
    machines: &mut Machines<'_>,
    signals: &SignalFd,
    deadline: Option<Instant>,
) -> Result<Outcome, RunError> {
    let launched = Instant::now();
    let mut guests = Vec::new();
    for i in 0..options.setup.subjects.len() {
        let machine = machines
            .start_machine(i)
            .map_err(|e| RunError::Host(e.to_string()))?;
        guests.push(Guest::new(machine));
    }
    let end = kernel.run_qemu(&mut guests, signals, deadline, options.restarts, machines);
    let end = match end {
        Ok(end) => end,
        Err(e) => {
            for g in &mut guests {
                let _ = g.machine.process.kill();
            }
            return Err(RunError::Host(format!("kernel: {e}")));
        }
    };
    let registers = |machine: &mut Machine| match machine.qmp.registers() {
        Ok(r) => Some(r),
        Err(e) => Some(format!("(QEMU did not tell: {e})")),
    };
    let mut guest_registers = None;
    let mut exits = vec![None; guests.len()];
    let (subject, ending) = match end {
        End::Exited(i, exit) => {
            exits[i] = Some(exit);
            let r = &guests[i].report;
            let ending = match (r.exit_code, exit.status) {
                (Some(code), _) => Ending::Exited(i32::from(code)),
                (None, _) if r.started.is_none() => Ending::BootFailed,
                (None, status) => Ending::QemuEnded(status),
            };
            (i, ending)
        }
        End::TimedOut => {
            guest_registers = registers(&mut guests[0].machine);
            (0, Ending::TimedOut(Duration::ZERO))
        }
        End::GuestStopped(i, how) => {
            guest_registers = registers(&mut guests[i].machine);
            (i, Ending::Crashed(how))
        }
        End::Interrupted(s) => (0, Ending::Interrupted(s)),
        End::System(i, action) => (i, Ending::System(action)),
    };
    for (g, exit) in guests.iter_mut().zip(exits.iter_mut()) {
        if exit.is_none() {
            *exit = g.machine.process.kill().ok().flatten();
        }
        g.machine.flush_stderr();
    }
    let g = &mut guests[subject];
    Ok(Outcome {
        subject,
        ending,
        exits: exits.into_iter().flatten().collect(),
        guest: Some(GuestReport {
            accel: q.accel,
            boot_text: std::mem::take(&mut g.report.boot_text),
            registers: guest_registers,
            boot_time: g.report.started_at.map(|t| t - launched),
        }),
    })
}
