//! `muen-testbed run`: build an app for the host, generate its policy and run it in the
//! emulated Muen environment; or run subjects of a Muen system policy (`--system`) as
//! that policy configures them. The testbed's exit status is the subject's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use muen_sinfo::MemoryKind;
use muen_spec::system::System;
use muen_spec::{Content, Mapping, SubjectView};
use muen_testbed::qemu::accel::{self, Accel, AccelChoice};
use muen_testbed::qemu::machine::DEFAULT_QEMU;
use muen_testbed::qemu::qmp::{self, GuestStop};
use muen_testbed::qemu::solo5::{self, Solo5Guest};
use muen_testbed::run::{
    self, DeviceName, Ending, HostedTarget, Options, QemuTarget, RunError, Target, DEFAULT_FRAME,
};
use muen_testbed::setup::{self, Chosen, Setup};
use muen_testbed::subject::Status;
use muen_testbed::world::World;
use muen_testbed::{app, os, policy};
use policy_gen::solo5::{Solo5Image, Solo5Options};

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
The subjects' log lines go to stdout as Muen's debug server prints them; the testbed's \
own messages go to stderr. Exit status: the exit code of the subject whose end ended \
the run; 128 + N if signal N killed it (or stopped the testbed, which then stops the \
subjects); 124 if it was stopped at --timeout; 2 for bad input, 1 for other errors of \
the testbed. With --system a subject the policy resets on its exit is started again \
(see --restarts); the run ends when a subject ends for good.")]
pub struct RunArgs {
    /// The app: a directory with Cargo.toml and app.toml, or its app.toml; or a Solo5
    /// unikernel built for Muen (`*.muen`, QEMU mode only; recognised by its Solo5 notes).
    app: Option<PathBuf>,
    /// Run with this component specification instead of generating one from the app.
    #[arg(long, value_name = "FILE", conflicts_with = "system")]
    policy: Option<PathBuf>,
    /// Run subjects of this Muen system policy in format B (mucfgalloc's output, e.g.
    /// pipeline.sh's OUT/policy_b.xml) as it configures them; name them with --subject.
    #[arg(long, value_name = "SYSTEM_B.xml")]
    system: Option<PathBuf>,
    /// With --system: run subject NAME of the policy from APP (an app directory, its
    /// app.toml, or a prebuilt executable; QEMU mode: a prebuilt ELF image). Give it
    /// once per subject to run several together.
    #[arg(long, num_args = 2, value_names = ["NAME", "APP"], requires = "system")]
    subject: Vec<PathBuf>,
    /// With --system: give the subjects mugensinfo's pages instead of the testbed's:
    /// a directory holding the files the policy names for them (pipeline.sh's
    /// OUT/sinfo), or, for one subject, its page. The testbed checks that each page
    /// agrees with the policy.
    #[arg(long, value_name = "PATH", requires = "system")]
    sinfo: Option<PathBuf>,
    /// With --system: start a subject again at most N times after the policy reset it
    /// (default: as often as it says).
    #[arg(long, value_name = "N", requires = "system")]
    restarts: Option<u32>,
    /// With --system: when the testbed gets SIGUSR1, reset subject NAME (as a system's
    /// controller would, or its own exit event): it is started again within
    /// --restarts. Without it, SIGUSR1 stops the run like SIGTERM.
    #[arg(long, value_name = "NAME", requires = "system")]
    reset_on_sigusr1: Option<String>,
    /// Bridge network device DEV to TAP interface IFNAME (created, and removed again,
    /// if it does not exist). With several subjects, SUBJECT/DEV names one's device.
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
    /// With --system: an argument for subject NAME's executable (for the testbed's
    /// own tests, whose test subject takes some; in order, repeatable).
    #[arg(long, value_name = "NAME=ARG", value_parser = dev_arg, hide = true)]
    subject_arg: Vec<DevArg>,
    /// The subject info page's format: 4 (what Muen's mugensinfo writes, both tool
    /// generations; the default) or 5 (what Solo5's current Muen bindings read). For a
    /// Solo5 unikernel the default is the format its ABI version reads (5 for 4, 4 for 3).
    #[arg(long, value_name = "FORMAT")]
    sinfo_format: Option<super::SinfoFormat>,
    /// Arguments for the subject (the testbed's test subject takes some); a Solo5
    /// unikernel's command line (joined with spaces; default: its policy's `bootparams`).
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

/// The accelerator, QEMU binary and boot stage of a QEMU run.
fn qemu_machine(args: &RunArgs) -> Result<(Accel, PathBuf, PathBuf), Failure> {
    let accel = accel::select(args.accel.unwrap_or_default(), Path::new("/dev/kvm"))
        .map_err(|e| Failure::BadInput(format!("--accel kvm: KVM is not usable: {e}")))?;
    let qemu = std::env::var_os("MUEN_TESTBED_QEMU")
        .map_or_else(|| PathBuf::from(DEFAULT_QEMU), PathBuf::from);
    Ok((accel, qemu, boot_stage()?))
}

/// The QEMU target of a run: the image (`--exec` or APP built for Muen, or a Solo5
/// unikernel with what it needs), the boot stage, the accelerator.
fn qemu_target(
    args: &RunArgs,
    solo5: Option<(PathBuf, Solo5Guest)>,
) -> Result<QemuTarget, Failure> {
    let (unikernel, guest) = match solo5 {
        Some((path, guest)) => (Some(path), Some(guest)),
        None => (None, None),
    };
    let image = match (unikernel, &args.exec, &args.app) {
        (Some(unikernel), _, _) => unikernel,
        (None, Some(elf), _) => elf.clone(),
        (None, None, Some(app)) => {
            let paths = app::locate(app).map_err(|e| Failure::BadInput(e.to_string()))?;
            let name = app::name(&paths.manifest).map_err(|e| Failure::BadInput(e.to_string()))?;
            app::build(&paths.package, &name, args.release, Some(app::MUEN_TARGET))
                .map_err(|e| Failure::BadInput(e.to_string()))?
        }
        (None, None, None) => {
            return Err(Failure::BadInput(
                "--policy alone does not say what to run: give the APP to build".into(),
            ))
        }
    };
    let (accel, qemu, boot_stage) = qemu_machine(args)?;
    Ok(QemuTarget {
        images: vec![image],
        boot_stage,
        qemu,
        accel,
        tick_hz: args.tick.unwrap_or(0),
        solo5: vec![guest],
    })
}

/// The timeout of `args`.
fn timeout(args: &RunArgs) -> Result<Option<Duration>, Failure> {
    match args.timeout {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(Failure::BadInput(format!(
            "--timeout {s}: not a positive number of seconds"
        ))),
    }
}

/// The setup and targets of a run of one app (or `--policy`), or of a Solo5 unikernel
/// (APP or `--exec`, recognised by its notes).
fn single(args: &RunArgs) -> Result<(Setup, Target), Failure> {
    if !args.subject_arg.is_empty() {
        return Err(Failure::BadInput("--subject-arg needs --system".into()));
    }
    if let Some(path) = args.exec.as_ref().or(args.app.as_ref()) {
        if let Some(image) = solo5::detect(path).map_err(Failure::BadInput)? {
            if !args.qemu {
                return Err(Failure::BadInput(solo5::hosted_refusal(path)));
            }
            let (world, guest) = solo5_run(args, path, &image)?;
            let version = args
                .sinfo_format
                .map_or_else(|| guest.sinfo_version(), |f| f.version());
            let target = qemu_target(args, Some((path.clone(), guest)))?;
            return Ok((Setup::single(world, version), Target::Qemu(target)));
        }
    }
    // QEMU mode builds the image first: its policy comes from the ELF.
    let qemu = if args.qemu {
        Some(qemu_target(args, None)?)
    } else {
        None
    };
    let world = world(
        args.app.as_deref(),
        args.policy.as_deref(),
        qemu.as_ref().map(|q| q.images[0].as_path()),
    )?;
    let target = match qemu {
        Some(q) => Target::Qemu(q),
        None => Target::Hosted(vec![HostedTarget {
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
        }]),
    };
    Ok((
        Setup::single(world, args.sinfo_format.unwrap_or_default().version()),
        target,
    ))
}

/// A run of the Solo5 unikernel at `path` (`image`): its world (from `--policy`, else
/// made as `policy-gen --elf` makes it, with the command line as `bootparams`) and what
/// the guest needs besides. The command line is ARGS joined with spaces, else the
/// policy's `bootparams` (on Muen: the subject's `<bootparams>`).
fn solo5_run(
    args: &RunArgs,
    path: &Path,
    image: &Solo5Image,
) -> Result<(World, Solo5Guest), Failure> {
    let bad = |e: String| Failure::BadInput(e);
    // solo5-muen serves block devices (muenblock); Solo5's own bindings have none.
    let disk_refused = image.bindings == policy_gen::solo5::Bindings::Solo5;
    if let Some(disk) = args.disk.first().filter(|_| disk_refused) {
        let kind = match image.devices.iter().find(|d| d.name == disk.dev) {
            Some(d) => format!("its {} device", d.device_type.name()),
            None => "no such device".to_string(),
        };
        return Err(bad(format!(
            "--disk {}=...: {}: {kind}; Solo5's Muen bindings have no block devices (every \
             solo5_block_* call answers SOLO5_R_EUNSPEC), so its policy gives none",
            disk.dev,
            path.display()
        )));
    }
    let given = args
        .args
        .iter()
        .map(|a| {
            a.to_str().map(str::to_string).ok_or_else(|| {
                bad(format!(
                    "{}: the command line must be UTF-8 text, not {a:?}",
                    path.display()
                ))
            })
        })
        .collect::<Result<Vec<String>, Failure>>()?;
    let cmdline = (!given.is_empty()).then(|| given.join(" "));
    let (spec, places, source) = match &args.policy {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| bad(format!("{}: cannot read the policy: {e}", file.display())))?;
            let (spec, places) =
                muen_spec::parse_with_places(&text, file).map_err(|e| bad(e.to_string()))?;
            (spec, Some(places), file.clone())
        }
        None => {
            let options = Solo5Options {
                bootparams: cmdline.clone().unwrap_or_default(),
                ..Solo5Options::default()
            };
            let spec = policy_gen::solo5::component_spec(image, path, &options)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            let source = PathBuf::from(format!("{} (generated policy)", path.display()));
            (spec, None, source)
        }
    };
    let cmdline = cmdline.unwrap_or_else(|| {
        spec.config
            .strings
            .iter()
            .find(|c| c.name == policy_gen::solo5::CONFIG_BOOTPARAMS)
            .map(|c| c.value.clone())
            .unwrap_or_default()
    });
    let world = policy::world(&spec, places.as_ref(), &source, policy::Image::Include)
        .map_err(|e| bad(e.to_string()))?;
    Ok((
        world,
        Solo5Guest {
            abi: image.abi,
            bindings: image.bindings,
            cmdline,
        },
    ))
}

/// What runs one subject of a system: an app, or a prebuilt executable (image).
enum Program {
    App(app::AppPaths),
    Prebuilt(PathBuf),
}

/// The program `path` names: an app (a directory, or a manifest `*.toml`) or an
/// executable file.
fn program(path: &Path) -> Result<Program, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let manifest = path.extension().is_some_and(|e| e == "toml");
    if path.is_dir() || manifest {
        return app::locate(path)
            .map(Program::App)
            .map_err(|e| Failure::BadInput(e.to_string()));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            Ok(Program::Prebuilt(path.to_path_buf()))
        }
        Ok(_) => Err(Failure::BadInput(format!(
            "{}: neither an app (a directory with app.toml, or an app.toml) nor an \
             executable",
            path.display()
        ))),
        Err(e) => Err(Failure::BadInput(format!("{}: {e}", path.display()))),
    }
}

/// The page at `path` for subject `subject` of `system` (`--sinfo`): the file the
/// policy names for its `sinfo` region in a directory, or the file itself.
fn given_page(
    system: &System,
    file: &Path,
    subject: usize,
    path: &Path,
    several: bool,
) -> Result<Vec<u8>, Failure> {
    let s = &system.subjects[subject];
    let page_file = if path.is_dir() {
        let name = s
            .mappings
            .iter()
            .find(|m| m.logical == muen_abi::names::SINFO)
            .and_then(|m| match &system.regions[m.region].content {
                Content::File { filename, .. } => Some(filename.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                Failure::BadInput(format!(
                    "{}: subject `{}` maps no `sinfo` region with a file name",
                    file.display(),
                    s.name
                ))
            })?;
        path.join(name)
    } else if several {
        return Err(Failure::BadInput(format!(
            "--sinfo {}: a file is one subject's page; with several subjects give the \
             directory of the pages (pipeline.sh's OUT/sinfo)",
            path.display()
        )));
    } else {
        path.to_path_buf()
    };
    std::fs::read(&page_file)
        .map_err(|e| Failure::BadInput(format!("--sinfo: {}: {e}", page_file.display())))
}

/// The mappings of `view` without its image regions.
fn without_image(view: &SubjectView) -> SubjectView {
    let mut v = view.clone();
    v.mappings.retain(|m| m.kind != MemoryKind::SubjectBinary);
    v
}

/// The setup and targets of a run of subjects of a system (`--system`). Everything is
/// checked before anything is built or started: the policy, the subject names, the
/// apps' specifications against the policy, the pages of `--sinfo`.
fn system_run(args: &RunArgs, file: &Path) -> Result<(Setup, Target), Failure> {
    if args.app.is_some() {
        return Err(Failure::BadInput(
            "with --system, name each subject to run and its app: --subject NAME APP".into(),
        ));
    }
    if args.exec.is_some() || !args.args.is_empty() {
        return Err(Failure::BadInput(
            "with --system, give each subject's program in --subject NAME APP".into(),
        ));
    }
    if args.subject.is_empty() {
        return Err(Failure::BadInput(
            "--system needs at least one --subject NAME APP".into(),
        ));
    }
    let bad = |e: &dyn std::fmt::Display| Failure::BadInput(format!("{}: {e}", file.display()));
    let system = muen_spec::system::load(file).map_err(|e| Failure::BadInput(e.to_string()))?;
    let pairs: Vec<(String, &Path)> = args
        .subject
        .chunks(2)
        .map(|c| (c[0].to_string_lossy().into_owned(), c[1].as_path()))
        .collect();
    for (i, (name, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(Failure::BadInput(format!(
                "subject `{name}` is given twice"
            )));
        }
    }
    let mut subjects = Vec::new();
    for (name, path) in &pairs {
        let index = system.subject_index(name).map_err(|e| bad(&e))?;
        let view = system.view(index).map_err(|e| bad(&e))?;
        subjects.push((name.clone(), index, view, program(path)?));
    }
    for a in &args.subject_arg {
        if !pairs.iter().any(|(n, _)| *n == a.dev) {
            return Err(Failure::BadInput(format!(
                "--subject-arg {}=...: no --subject {}",
                a.dev, a.dev
            )));
        }
    }
    let several = subjects.len() > 1;
    let mut chosen = Vec::new();
    for (name, index, _, _) in &subjects {
        let page = match &args.sinfo {
            None => None,
            Some(path) => {
                let page = given_page(&system, file, *index, path, several)?;
                let view = system.view(*index).map_err(|e| bad(&e))?;
                let ours =
                    muen_testbed::sinfo::page(&view, system.tsc, system.generation.sinfo_version())
                        .map_err(|e| bad(&format!("subject `{name}`: {e}")))?;
                let differences = muen_testbed::sinfo::differences(&page, &ours);
                if !differences.is_empty() {
                    return Err(Failure::BadInput(format!(
                        "--sinfo: the page for subject `{name}` does not agree with {}:\n  {}",
                        file.display(),
                        differences.join("\n  ")
                    )));
                }
                let host = muen_testbed::clock::host_tsc_rate().khz();
                if u64::from(system.tsc.khz()).abs_diff(u64::from(host)) * 100 > u64::from(host) {
                    eprintln!(
                        "muen-testbed: warning: mugensinfo's page for `{name}` states a TSC of \
                         {} kHz (the policy's processor), this host's runs at {host} kHz: the \
                         subject's sense of durations is off by that ratio (the testbed's own \
                         page states the host's rate)",
                        system.tsc.khz()
                    );
                }
                Some(page)
            }
        };
        chosen.push(Chosen {
            name: name.clone(),
            image: None,
            page,
        });
    }
    // The apps: each built, its specification checked against the policy.
    let release = args.release;
    let mut hosted = Vec::new();
    let mut images = Vec::new();
    for ((name, _, policy_view, program), c) in subjects.iter().zip(&mut chosen) {
        let own_args: Vec<OsString> = args
            .subject_arg
            .iter()
            .filter(|a| a.dev == *name)
            .map(|a| OsString::from(&a.value))
            .collect();
        let (executable, app_view) = match program {
            Program::Prebuilt(path) => {
                if solo5::detect(path).map_err(Failure::BadInput)?.is_some() {
                    return Err(Failure::BadInput(format!(
                        "{}: a Solo5 unikernel runs on its own (muen-testbed run --qemu \
                         {}), not yet as a subject of --system",
                        path.display(),
                        path.display()
                    )));
                }
                (path.clone(), None)
            }
            Program::App(paths) => {
                let app_name =
                    app::name(&paths.manifest).map_err(|e| Failure::BadInput(e.to_string()))?;
                // The specification first: a mismatch is found before any build.
                let spec =
                    app::spec(&paths.manifest).map_err(|e| Failure::BadInput(e.to_string()))?;
                let view = muen_spec::expand(&spec)
                    .map_err(|e| Failure::BadInput(format!("{}: {e}", paths.manifest.display())))?;
                check_app(&paths.manifest, name, file, &view, policy_view)?;
                let target = args.qemu.then_some(app::MUEN_TARGET);
                let built = app::build(&paths.package, &app_name, release, target)
                    .map_err(|e| Failure::BadInput(e.to_string()))?;
                let view = if args.qemu {
                    let spec = app::spec_with_image(&paths.manifest, &built)
                        .map_err(|e| Failure::BadInput(e.to_string()))?;
                    let view = muen_spec::expand(&spec).map_err(|e| {
                        Failure::BadInput(format!("{}: {e}", paths.manifest.display()))
                    })?;
                    if policy_view
                        .mappings
                        .iter()
                        .any(|m| m.kind == MemoryKind::SubjectBinary)
                    {
                        check_image(&paths.manifest, name, file, &view, policy_view)?;
                    }
                    Some(view)
                } else {
                    None
                };
                (built, view)
            }
        };
        if args.qemu {
            let has_image = policy_view
                .mappings
                .iter()
                .any(|m| m.kind == MemoryKind::SubjectBinary);
            let image: Vec<Mapping> = app_view
                .as_ref()
                .map(|v| {
                    v.mappings
                        .iter()
                        .filter(|m| m.kind == MemoryKind::SubjectBinary)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if !has_image && image.is_empty() {
                return Err(Failure::BadInput(format!(
                    "{}: subject `{name}` maps no image regions and {} is a prebuilt image: \
                     give the app, whose ELF says where its image goes",
                    file.display(),
                    executable.display()
                )));
            }
            c.image = Some(image);
            images.push(executable);
        } else {
            hosted.push(HostedTarget {
                executable,
                args: own_args,
            });
        }
    }
    let setup = setup::from_system(
        &system,
        &chosen,
        args.sinfo_format.unwrap_or_default().version(),
    )
    .map_err(|e| bad(&e))?;
    let target = if args.qemu {
        let (accel, qemu, boot_stage) = qemu_machine(args)?;
        Target::Qemu(QemuTarget {
            images,
            boot_stage,
            qemu,
            accel,
            tick_hz: args.tick.unwrap_or(0),
            solo5: Vec::new(),
        })
    } else {
        Target::Hosted(hosted)
    };
    Ok((setup, target))
}

/// Checks that the app in `manifest` is what subject `name` of `file` runs: its view
/// (without an image) against the policy's.
fn check_app(
    manifest: &Path,
    name: &str,
    file: &Path,
    app: &SubjectView,
    policy: &SubjectView,
) -> Result<(), Failure> {
    match setup::first_mismatch(&without_image(app), &without_image(policy)) {
        None => Ok(()),
        Some(m) => Err(Failure::BadInput(format!(
            "{}: the app's component `{}` does not match subject `{name}` of {}: {m}",
            manifest.display(),
            app.name,
            file.display()
        ))),
    }
}

/// Checks the image regions of the app's ELF against the policy's.
fn check_image(
    manifest: &Path,
    name: &str,
    file: &Path,
    app: &SubjectView,
    policy: &SubjectView,
) -> Result<(), Failure> {
    match setup::first_mismatch(app, policy) {
        None => Ok(()),
        Some(m) => Err(Failure::BadInput(format!(
            "{}: the app's image does not match subject `{name}` of {}: {m}",
            manifest.display(),
            file.display()
        ))),
    }
}

/// Runs `run`; returns the exit status.
pub fn run(args: RunArgs) -> Result<u8, Failure> {
    let timeout = timeout(&args)?;
    let (setup, target) = match &args.system {
        Some(file) => system_run(&args, file)?,
        None => single(&args)?,
    };
    let devices = |v: &[DevArg]| -> Vec<(DeviceName, String)> {
        v.iter()
            .map(|a| (DeviceName::parse(&a.dev), a.value.clone()))
            .collect()
    };
    let paths = |v: &[DevArg]| -> Vec<(DeviceName, PathBuf)> {
        v.iter()
            .map(|a| (DeviceName::parse(&a.dev), PathBuf::from(&a.value)))
            .collect()
    };
    let reset_on_sigusr1 = match &args.reset_on_sigusr1 {
        None => None,
        Some(name) => Some(
            setup
                .subjects
                .iter()
                .position(|s| s.name() == name)
                .ok_or_else(|| {
                    Failure::BadInput(format!(
                        "--reset-on-sigusr1 {name}: no --subject {name} runs"
                    ))
                })?,
        ),
    };
    let options = Options {
        setup,
        target,
        taps: devices(&args.tap),
        disks: paths(&args.disk),
        pcaps: paths(&args.pcap),
        timeout,
        frame: DEFAULT_FRAME,
        tsc: muen_testbed::clock::host_tsc_rate(),
        restarts: args.restarts,
        reset_on_sigusr1,
    };
    let report = run::run(options).map_err(|e| match e {
        RunError::BadInput(m) => Failure::BadInput(m),
        RunError::Host(m) => Failure::Other(m),
    })?;
    let name = &report.subject;
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
        Ending::System(action) => eprintln!(
            "muen-testbed: subject `{name}` triggered `{}`, which its policy makes the kernel \
             handle; the testbed stops{}",
            action.policy_name(),
            match action {
                muen_spec::model::SourceAction::SystemReboot => " (it does not reboot)",
                _ => "",
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
