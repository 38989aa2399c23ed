//! `policy-gen [--elf FILE] [--name NAME] [--muen-tools GEN] MANIFEST`: prints the Muen
//! component specification of an app, for the tools of generation GEN.
//!
//! `policy-gen --elf UNIKERNEL [--name NAME] [--ram SIZE] [--channel-size SIZE]
//! [--buffer-size SIZE] [--bootparams TEXT] [--muen-tools GEN]`: the same for a Solo5 unikernel, from its ELF
//! notes alone.
//!
//! `policy-gen --system-additions [--name NAME] [--muen-tools GEN] MANIFEST...`: prints
//! what a Muen system policy needs to run the apps as subjects.
//!
//! On any error it prints one message to stderr, exits with status 1 and prints nothing
//! to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser};
use muen_manifest::{NameKind, Problem, RawSize};
use muen_spec::Generation;
use policy_gen::solo5::{self, Solo5Options};

/// Writes the Muen component specification (XML) of a Muen app to stdout.
#[derive(Parser)]
#[command(version, about, long_about = None)]
#[command(group(ArgGroup::new("input").required(true).multiple(true).args(["elf", "manifest"])))]
struct Args {
    /// The app's ELF image (instead of the manifest's `elf`); without MANIFEST, a Solo5
    /// unikernel (built with `-t muen`), described by its ELF notes.
    #[arg(long, value_name = "FILE")]
    elf: Option<PathBuf>,
    /// The component name: required for a Solo5 manifest, replaces an app.toml's `name`;
    /// for a Solo5 unikernel the default is its file name without `.muen`.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Solo5 unikernel only: RAM size (bytes, or digits with K, M or G; default 512M).
    #[arg(long, value_name = "SIZE")]
    ram: Option<String>,
    /// Solo5 unikernel only: size of each network channel (default 1M).
    #[arg(long, value_name = "SIZE")]
    channel_size: Option<String>,
    /// Solo5 unikernel linked with solo5-muen only: size of each block device's data
    /// buffer (default 16M; Solo5's own Muen bindings have no block devices).
    #[arg(long, value_name = "SIZE")]
    buffer_size: Option<String>,
    /// Solo5 unikernel only: the command line (config string `bootparams`, which Muen
    /// makes the subject's boot parameters; default empty).
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    bootparams: Option<String>,
    /// The generation of Muen's tools the specification is for: 2026-04 (muen-tools
    /// main, `<vcpu><x86_64>`) or 2026-01 (muen-tools devel, `<vcpu>` without it).
    #[arg(long, value_name = "GEN", default_value_t = Generation::default().to_string())]
    muen_tools: String,
    /// The manifest: an app.toml, or a Solo5 manifest (*.json, from
    /// `solo5-elftool query-manifest`). Leave it out for a Solo5 unikernel (--elf).
    manifest: Option<PathBuf>,
    /// Print, instead of the specification, the system additions for the apps of all
    /// MANIFESTs: what a Muen system policy needs to run them as subjects (the same
    /// for both tool generations; docs/muen.md).
    #[arg(long, conflicts_with = "elf", requires = "manifest")]
    system_additions: bool,
    /// More manifests (only with --system-additions).
    #[arg(value_name = "MANIFEST", requires = "system_additions")]
    more_manifests: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let generation = match args.muen_tools.parse::<Generation>() {
        Ok(g) => g,
        Err(e) => return fail(format_args!("--muen-tools: {e}")),
    };
    let xml = match &args.manifest {
        Some(manifest) => {
            for (option, given) in [
                ("--ram", args.ram.is_some()),
                ("--channel-size", args.channel_size.is_some()),
                ("--buffer-size", args.buffer_size.is_some()),
                ("--bootparams", args.bootparams.is_some()),
            ] {
                if given {
                    return fail(format_args!(
                        "{option} is for a Solo5 unikernel given with --elf alone; with a \
                         manifest, set sizes in the manifest"
                    ));
                }
            }
            if let Some(name) = &args.name {
                if let Err(error) = muen_abi::names::check_component_name(name) {
                    let problem = Problem::Name {
                        name: name.clone(),
                        error,
                        kind: NameKind::Component,
                    };
                    return fail(format_args!("--name: {problem}"));
                }
            }
            if args.system_additions {
                let mut manifests = vec![manifest.clone()];
                manifests.extend(args.more_manifests.iter().cloned());
                if args.name.is_some() && manifests.len() > 1 {
                    return fail(format_args!(
                        "--name: names the component of one manifest; {} were given",
                        manifests.len()
                    ));
                }
                policy_gen::system_additions(&manifests, args.name.as_deref())
                    .map_err(|e| e.to_string())
            } else {
                policy_gen::generate(
                    manifest,
                    args.name.as_deref(),
                    args.elf.as_deref(),
                    generation,
                )
                .map_err(|e| e.to_string())
            }
        }
        None => {
            // clap requires --elf or MANIFEST.
            let Some(elf) = &args.elf else {
                return fail(format_args!(
                    "give a MANIFEST, or --elf with a Solo5 unikernel"
                ));
            };
            let size = |option: &str, text: &Option<String>, default: u64| match text {
                None => Ok(default),
                Some(text) => RawSize::Text(text.clone())
                    .bytes()
                    .map_err(|e| format!("{option}: {e}")),
            };
            let options = size("--ram", &args.ram, solo5::DEFAULT_RAM).and_then(|ram| {
                Ok(Solo5Options {
                    name: args.name.clone(),
                    ram,
                    channel_size: size(
                        "--channel-size",
                        &args.channel_size,
                        solo5::DEFAULT_CHANNEL_SIZE,
                    )?,
                    buffer_size: size(
                        "--buffer-size",
                        &args.buffer_size,
                        solo5::DEFAULT_BUFFER_SIZE,
                    )?,
                    bootparams: args.bootparams.clone().unwrap_or_default(),
                })
            });
            options.and_then(|options| {
                solo5::generate(elf, &options, generation).map_err(|e| format!("--elf: {e}"))
            })
        }
    };
    let xml = match xml {
        Ok(xml) => xml,
        Err(e) => return fail(format_args!("{e}")),
    };
    // The whole document at once: nothing reaches stdout unless all of it was made.
    let mut out = std::io::stdout().lock();
    match out.write_all(xml.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format_args!("cannot write to stdout: {e}")),
    }
}

fn fail(message: std::fmt::Arguments<'_>) -> ExitCode {
    eprintln!("policy-gen: error: {message}");
    ExitCode::FAILURE
}
