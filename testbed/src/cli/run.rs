//! `muen-testbed run`: build an app for the host, generate its policy and run it in the
//! emulated Muen environment; the testbed's exit status is the subject's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use muen_testbed::qemu::accel::{self, AccelChoice};
use muen_testbed::qemu::machine::DEFAULT_QEMU;
use muen_testbed::qemu::qmp::{self, GuestStop};
use muen_testbed::run::{self, Ending, Options, QemuTarget, RunError, Target, DEFAULT_FRAME};
use muen_testbed::subject::Status;
use muen_testbed::world::World;
use muen_testbed::{app, os, policy};

use super::Failure;

/// `DEV=VALUE` of `--tap`, `--disk`, `--pcap`.
#[derive(Clone, Debug)]
pub struct DevArg {
    dev: String,
    value: String,
}

fn dev_arg(s: &str) -> Result<DevArg, String> {
    match s.split_once('=') {
        Some((dev, value)) if !dev.is_empty() && !value.is_empty() => Ok(DevArg {
            dev: dev.to_string(),
            value: value.to_string(),
        }),
        _ => Err(format!("`{s}` is not DEV=VALUE")),
    }
}

/// Arguments of `run`.
#[derive(Args)]
#[command(after_help = "\
The subject's log lines go to stdout as Muen's debug server prints them; the testbed's \
own messages go to stderr. Exit status: the subject's exit code; 128 + N if signal N \
killed it (or stopped the testbed, which then stops the subject); 124 if it was stopped \
at --timeout; 2 for bad input, 1 for other errors of the testbed.")]
pub struct RunArgs {
    /// The app: a directory with Cargo.toml and app.toml, or its app.toml.
    app: Option<PathBuf>,
    /// Run with this component specification instead of generating one from the app.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Bridge network device DEV to TAP interface IFNAME (created, and removed again,
    /// if it does not exist).
    #[arg(long, value_name = "DEV=IFNAME", value_parser = dev_arg)]
    tap: Vec<DevArg>,
    /// Serve block device DEV from the image FILE (its size: a multiple of 512).
    #[arg(long, value_name = "DEV=FILE", value_parser = dev_arg)]
    disk: Vec<DevArg>,
    /// Record network device DEV's frames, both directions, as a pcap file.
    #[arg(long, value_name = "DEV=FILE", value_parser = dev_arg)]
    pcap: Vec<DevArg>,
    /// Stop the subject after SECS seconds (exit status 124).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Build the app in release mode.
    #[arg(long)]
    release: bool,
    /// Print CPU use and the peers' counters on stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Boot the app's real image (built for x86_64-unknown-none) in QEMU instead of
    /// running it as a Linux process (docs/qemu.md).
    #[arg(long)]
    qemu: bool,
    /// QEMU's accelerator: auto (KVM when /dev/kvm is usable, else TCG), kvm or tcg.
    #[arg(long, value_name = "ACCEL", requires = "qemu")]
    accel: Option<AccelChoice>,
    /// A periodic tick for the guest, Hz (QEMU mode; default 0: none, the testbed
    /// wakes the guest when a vector is due).
    #[arg(long, value_name = "HZ", requires = "qemu")]
    tick: Option<u32>,
    /// Run this executable instead of building the app (for the testbed's own tests:
    /// the policy still comes from APP or --policy). QEMU mode: the ELF image.
    #[arg(long, value_name = "PATH", hide = true)]
    exec: Option<PathBuf>,
    /// Arguments for the subject (the testbed's test subject takes some).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<OsString>,
}

/// The world of `app` (its generated policy) or of `--policy`; with `image` (QEMU
/// mode), generated from that ELF and with its regions.
pub fn world(
    app: Option<&Path>,
    policy_file: Option<&Path>,
    image: Option<&Path>,
) -> Result<World, Failure> {
    let include = match image {
        Some(_) => policy::Image::Include,
        None => policy::Image::Skip,
    };
    match (policy_file, app) {
        (Some(file), _) => {
            policy::load(file, include).map_err(|e| Failure::BadInput(e.to_string()))
        }
        (None, Some(app)) => {
            let paths = app::locate(app).map_err(|e| Failure::BadInput(e.to_string()))?;
            let spec = match image {
                None => app::spec(&paths.manifest),
                Some(elf) => app::spec_with_image(&paths.manifest, elf),
            }
            .map_err(|e| Failure::BadInput(e.to_string()))?;
            let name = PathBuf::from(format!("{} (generated policy)", paths.manifest.display()));
            policy::world(&spec, None, &name, include).map_err(|e| Failure::BadInput(e.to_string()))
        }
        (None, None) => Err(Failure::BadInput(
            "give an APP or --policy FILE to say what to run".into(),
        )),
    }
}

/// The boot stage ELF: `MUEN_TESTBED_BOOT_STAGE` if set, else built from the
/// repository's `qemu-boot/` with cargo.
fn boot_stage() -> Result<PathBuf, Failure> {
    if let Some(path) = std::env::var_os("MUEN_TESTBED_BOOT_STAGE") {
        return Ok(PathBuf::from(path));
    }
    let package = app::boot_stage_package();
    if !package.join("Cargo.toml").is_file() {
        return Err(Failure::Other(format!(
            "the boot stage's sources are not at {}; set MUEN_TESTBED_BOOT_STAGE to a \
             built boot stage (cargo build -p muen-qemu-boot --target {} --release)",
            package.display(),
            app::MUEN_TARGET
        )));
    }
    app::build(&package, "muen-qemu-boot", true, Some(app::MUEN_TARGET))
        .map_err(|e| Failure::Other(format!("building the boot stage: {e}")))
}

/// The QEMU target of a run: the image (`--exec` or APP built for Muen), the boot
/// stage, the accelerator.
fn qemu_target(args: &RunArgs) -> Result<QemuTarget, Failure> {
    let image = match (&args.exec, &args.app) {
        (Some(elf), _) => elf.clone(),
        (None, Some(app)) => {
            let paths = app::locate(app).map_err(|e| Failure::BadInput(e.to_string()))?;
            let name = app::name(&paths.manifest).map_err(|e| Failure::BadInput(e.to_string()))?;
            app::build(&paths.package, &name, args.release, Some(app::MUEN_TARGET))
                .map_err(|e| Failure::BadInput(e.to_string()))?
        }
        (None, None) => {
            return Err(Failure::BadInput(
                "--policy alone does not say what to run: give the APP to build".into(),
            ))
        }
    };
    let accel = accel::select(args.accel.unwrap_or_default(), Path::new("/dev/kvm"))
        .map_err(|e| Failure::BadInput(format!("--accel kvm: KVM is not usable: {e}")))?;
    let qemu = std::env::var_os("MUEN_TESTBED_QEMU")
        .map_or_else(|| PathBuf::from(DEFAULT_QEMU), PathBuf::from);
    Ok(QemuTarget {
        image,
        boot_stage: boot_stage()?,
        qemu,
        accel,
        tick_hz: args.tick.unwrap_or(0),
    })
}

/// Runs `run`; returns the exit status.
pub fn run(args: RunArgs) -> Result<u8, Failure> {
    // QEMU mode builds the image first: its policy comes from the ELF.
    let qemu = if args.qemu {
        Some(qemu_target(&args)?)
    } else {
        None
    };
    let world = world(
        args.app.as_deref(),
        args.policy.as_deref(),
        qemu.as_ref().map(|q| q.image.as_path()),
    )?;
    let timeout = match args.timeout {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(Failure::BadInput(format!(
                "--timeout {s}: not a positive number of seconds"
            )))
        }
    };
    let target = match qemu {
        Some(q) => Target::Qemu(q),
        None => Target::Hosted {
            executable: match (&args.exec, &args.app) {
                (Some(exe), _) => exe.clone(),
                (None, Some(app)) => {
                    let paths = app::locate(app).map_err(|e| Failure::BadInput(e.to_string()))?;
                    app::build(&paths.package, world.name(), args.release, None)
                        .map_err(|e| Failure::BadInput(e.to_string()))?
                }
                (None, None) => {
                    return Err(Failure::BadInput(
                        "--policy alone does not say what to run: give the APP to build".into(),
                    ))
                }
            },
            args: args.args.clone(),
        },
    };
    let name = world.name().to_string();
    let pairs = |v: &[DevArg]| -> Vec<(String, String)> {
        v.iter().map(|a| (a.dev.clone(), a.value.clone())).collect()
    };
    let paths = |v: &[DevArg]| -> Vec<(String, PathBuf)> {
        v.iter()
            .map(|a| (a.dev.clone(), PathBuf::from(&a.value)))
            .collect()
    };
    let options = Options {
        world,
        target,
        taps: pairs(&args.tap),
        disks: paths(&args.disk),
        pcaps: paths(&args.pcap),
        timeout,
        frame: DEFAULT_FRAME,
        tsc: muen_testbed::clock::host_tsc_rate(),
    };
    let report = run::run(options).map_err(|e| match e {
        RunError::BadInput(m) => Failure::BadInput(m),
        RunError::Host(m) => Failure::Other(m),
    })?;
    match &report.ending {
        Ending::Exited(0) => {}
        Ending::Exited(code) => {
            eprintln!("muen-testbed: subject `{name}` exited with status {code}")
        }
        Ending::Killed(s) => eprintln!(
            "muen-testbed: subject `{name}` was killed by {}",
            os::signal_name(*s)
        ),
        Ending::TimedOut(t) => eprintln!(
            "muen-testbed: subject `{name}` did not exit within {} s; stopped it",
            t.as_secs_f64()
        ),
        Ending::Interrupted(s) => eprintln!(
            "muen-testbed: interrupted by {}; stopped subject `{name}`",
            os::signal_name(*s)
        ),
        Ending::BootFailed => {
            eprintln!("muen-testbed: the boot stage could not start subject `{name}`:");
            for line in &report.boot_text {
                eprintln!("muen-testbed:   {line}");
            }
            if report.boot_text.is_empty() {
                eprintln!("muen-testbed:   (it gave no reason; QEMU's messages are above)");
            }
        }
        Ending::Crashed(how) => {
            let what = match how {
                GuestStop::Reset => "reset itself (a triple fault)".to_string(),
                GuestStop::Stopped(event) => format!("was stopped by QEMU ({event})"),
            };
            eprintln!("muen-testbed: the guest running subject `{name}` {what}");
        }
        Ending::QemuEnded(status) => eprintln!(
            "muen-testbed: QEMU ended ({}) before subject `{name}` exited",
            match status {
                Status::Code(c) => format!("status {c}"),
                Status::Signal(s) => format!("killed by {}", os::signal_name(*s)),
            }
        ),
    }
    if matches!(report.ending, Ending::Crashed(_) | Ending::TimedOut(_)) {
        if let Some(regs) = &report.registers {
            eprintln!("muen-testbed: the guest's registers:");
            for line in qmp::brief_registers(regs) {
                eprintln!("muen-testbed:   {line}");
            }
        }
        if report.accel.is_some() {
            eprintln!("muen-testbed: the last log lines:");
            for line in &report.last_log {
                eprintln!("muen-testbed:   {line}");
            }
            if report.last_log.is_empty() {
                eprintln!("muen-testbed:   (none)");
            }
        }
    }
    if args.stats {
        for line in report.stats_lines() {
            eprintln!("muen-testbed: stats: {line}");
        }
    }
    Ok(report.ending.clone().exit_status())
}
