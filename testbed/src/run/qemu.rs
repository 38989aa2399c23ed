//! QEMU mode's path: the memory file is the guest's RAM, holding the boot stage and the
//! subject's image; QEMU runs it and the kernel talks to the guest through the doorbell
//! (`docs/qemu.md`).

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use muen_testbed_abi::qemu::{
    BOOT_CONFIG_ADDRESS, BOOT_CONFIG_GO_OFFSET, BOOT_CONFIG_GUEST_TSC_OFFSET,
};

use super::{
    host, serve, time_info, write_sinfo, Ending, GuestReport, Options, Outcome, Peers, QemuTarget,
    Report, RunError,
};
use crate::clock::SubjectClock;
use crate::kernel::{self, End, Injector, Kernel, QemuReport};
use crate::memory::{Layout, Memory};
use crate::os::SignalFd;
use crate::qemu::boot::{self, BootStage};
use crate::qemu::image::SubjectImage;
use crate::qemu::machine::Machine;
use crate::run::QEMU_LOG_PERIOD;

/// Runs the subject of `options` in the QEMU guest of `q`.
pub(super) fn run(options: &Options, q: &QemuTarget) -> Result<Report, RunError> {
    let view = &options.world.view;
    // The images first, so that a bad one fails before anything is made.
    let boot = BootStage::load(&q.boot_stage)
        .map_err(|e| RunError::BadInput(format!("boot stage: {e}")))?;
    let image = SubjectImage::load(&q.image).map_err(RunError::BadInput)?;
    let signals = SignalFd::new().map_err(host("blocking signals"))?;
    // Too much guest RAM is the app's problem, not the host's.
    let memory = Memory::with_layout(view, Layout::Qemu)
        .map_err(|e| RunError::BadInput(format!("the memory file: {e}")))?;
    write_sinfo(options, &memory)?;
    let config = boot::config(view, &memory, q.tick_hz).map_err(RunError::Host)?;
    boot.install(&memory, &config)
        .map_err(host("writing the boot stage"))?;
    image
        .install(view, &memory)
        .map_err(|e| RunError::BadInput(format!("{}: {e}", q.image.display())))?;
    let clock = SubjectClock::host();
    let peers = Peers::open(options, &memory, &clock)?;
    // The guest gets no vectors but wake-ups through its UART (`Injector::guest`).
    let (wake, wake_qemu) = UnixStream::pair().map_err(host("socketpair"))?;
    let injector = Injector::guest(wake.as_fd()).map_err(host("eventfd"))?;
    serve(
        options,
        &memory,
        &clock,
        &injector,
        peers,
        QEMU_LOG_PERIOD,
        |kernel, deadline| {
            let go = memory.word_at(BOOT_CONFIG_ADDRESS + BOOT_CONFIG_GO_OFFSET);
            let time_info = time_info(&options.world);
            // A QEMU guest's TSC is known only once the boot stage reports it: the time
            // info page is published then, right before the guest may go on.
            let mut start = || {
                if let Some(i) = time_info {
                    kernel::publish_time_info(&memory, i, options.tsc, &clock);
                }
                go.store(1, Ordering::Release);
            };
            guest(
                kernel,
                q,
                Guest {
                    rom: boot.rom(),
                    memory: &memory,
                    wake: &wake_qemu,
                },
                &signals,
                deadline,
                &mut start,
            )
        },
    )
}

/// What QEMU is started with.
struct Guest<'a> {
    /// The boot stage's ROM.
    rom: &'a [u8],
    /// The guest's RAM.
    memory: &'a Memory,
    /// QEMU's end of the wake-up UART's socket.
    wake: &'a UnixStream,
}

/// Starts QEMU and runs the kernel until it ends, or the guest stops or hangs (then
/// its registers are read before QEMU is stopped).
fn guest(
    kernel: &mut Kernel<'_>,
    q: &QemuTarget,
    g: Guest<'_>,
    signals: &SignalFd,
    deadline: Option<Instant>,
    start: &mut dyn FnMut(),
) -> Result<Outcome, RunError> {
    let launched = Instant::now();
    let mut machine = Machine::start(&q.qemu, q.accel, q.tick_hz > 0, g.memory, g.rom, g.wake)
        .map_err(|e| RunError::Host(format!("starting QEMU ({}): {e}", q.qemu.display())))?;
    let mut report = QemuReport::default();
    let end = kernel.run_qemu(
        &mut machine.doorbell,
        &mut machine.qmp,
        signals,
        &mut machine.process,
        deadline,
        &mut report,
        g.memory
            .word_at(BOOT_CONFIG_ADDRESS + BOOT_CONFIG_GUEST_TSC_OFFSET),
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
    let mut guest_registers = None;
    let (ending, exit) = match end {
        End::Exited(exit) => {
            let ending = match (report.exit_code, exit.status) {
                (Some(code), _) => Ending::Exited(i32::from(code)),
                (None, _) if report.started.is_none() => Ending::BootFailed,
                (None, status) => Ending::QemuEnded(status),
            };
            (ending, Some(exit))
        }
        End::TimedOut => {
            guest_registers = registers(&mut machine);
            (
                Ending::TimedOut(Duration::ZERO),
                machine.process.kill().ok().flatten(),
            )
        }
        End::GuestStopped(how) => {
            guest_registers = registers(&mut machine);
            (Ending::Crashed(how), machine.process.kill().ok().flatten())
        }
        End::Interrupted(s) => (
            Ending::Interrupted(s),
            machine.process.kill().ok().flatten(),
        ),
    };
    machine.flush_stderr();
    Ok(Outcome {
        ending,
        exit,
        guest: Some(GuestReport {
            accel: q.accel,
            boot_text: report.boot_text,
            registers: guest_registers,
            boot_time: report.started_at.map(|t| t - launched),
            boot_cpu: report.started_cpu,
        }),
    })
}
