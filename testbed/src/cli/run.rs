//! `muen-testbed run`: build an app for the host, generate its policy and run it in the
//! emulated Muen environment; the testbed's exit status is the subject's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use muen_testbed::clock::TscRate;
use muen_testbed::run::{self, Ending, Options, RunError, DEFAULT_FRAME};
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
    /// Run this executable instead of building the app (for the testbed's own tests:
    /// the policy still comes from APP or --policy).
    #[arg(long, value_name = "PATH", hide = true)]
    exec: Option<PathBuf>,
    /// Arguments for the subject (the testbed's test subject takes some).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<OsString>,
}

/// The world of `app` (its generated policy) or of `--policy`.
pub fn world(app: Option<&Path>, policy_file: Option<&Path>) -> Result<World, Failure> {
    match (policy_file, app) {
        (Some(file), _) => policy::load(file).map_err(|e| Failure::BadInput(e.to_string())),
        (None, Some(app)) => {
            let paths = app::locate(app).map_err(|e| Failure::BadInput(e.to_string()))?;
            let xml = app::policy(&paths.manifest).map_err(|e| Failure::BadInput(e.to_string()))?;
            let name = PathBuf::from(format!("{} (generated policy)", paths.manifest.display()));
            policy::parse(&xml, &name).map_err(|e| Failure::BadInput(e.to_string()))
        }
        (None, None) => Err(Failure::BadInput(
            "give an APP or --policy FILE to say what to run".into(),
        )),
    }
}

/// Runs `run`; returns the exit status.
pub fn run(args: RunArgs) -> Result<u8, Failure> {
    let world = world(args.app.as_deref(), args.policy.as_deref())?;
    let timeout = match args.timeout {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(Failure::BadInput(format!(
                "--timeout {s}: not a positive number of seconds"
            )))
        }
    };
    let executable = match (&args.exec, &args.app) {
        (Some(exe), _) => exe.clone(),
        (None, Some(app)) => {
            let paths = app::locate(app).map_err(|e| Failure::BadInput(e.to_string()))?;
            app::build(&paths.package, &world.name, args.release)
                .map_err(|e| Failure::BadInput(e.to_string()))?
        }
        (None, None) => {
            return Err(Failure::BadInput(
                "--policy alone does not say what to run: give the APP to build".into(),
            ))
        }
    };
    let name = world.name.clone();
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
        executable,
        args: args.args,
        taps: pairs(&args.tap),
        disks: paths(&args.disk),
        pcaps: paths(&args.pcap),
        timeout,
        frame: DEFAULT_FRAME,
        tsc: TscRate::host(),
    };
    let report = run::run(options).map_err(|e| match e {
        RunError::BadInput(m) => Failure::BadInput(m),
        RunError::Host(m) => Failure::Other(m),
    })?;
    match report.ending {
        Ending::Exited(0) => {}
        Ending::Exited(code) => {
            eprintln!("muen-testbed: subject `{name}` exited with status {code}")
        }
        Ending::Killed(s) => eprintln!(
            "muen-testbed: subject `{name}` was killed by {}",
            os::signal_name(s)
        ),
        Ending::TimedOut(t) => eprintln!(
            "muen-testbed: subject `{name}` did not exit within {} s; stopped it",
            t.as_secs_f64()
        ),
        Ending::Interrupted(s) => eprintln!(
            "muen-testbed: interrupted by {}; stopped subject `{name}`",
            os::signal_name(s)
        ),
    }
    if args.stats {
        for line in report.stats_lines() {
            eprintln!("muen-testbed: stats: {line}");
        }
    }
    Ok(report.ending.exit_status())
}
