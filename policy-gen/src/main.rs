//! `policy-gen [--elf FILE] [--name NAME] [--muen-tools GEN] MANIFEST`: prints the Muen
//! component specification of an app, for the tools of generation GEN.
//! `policy-gen --system-additions [--name NAME] [--muen-tools GEN] MANIFEST...`: prints
//! what a Muen system policy needs to run the apps as subjects. On any error it prints
//! one message to stderr, exits with status 1 and prints nothing to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use muen_manifest::{NameKind, Problem};
use muen_spec::Generation;

/// Writes the Muen component specification (XML) of a Muen app to stdout.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The app's ELF image (instead of the manifest's `elf`).
    #[arg(long, value_name = "FILE")]
    elf: Option<PathBuf>,
    /// The component name: required for a Solo5 manifest, replaces an app.toml's `name`.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The generation of Muen's tools the specification is for: 2026-04 (muen-tools
    /// main, `<vcpu><x86_64>`) or 2026-01 (muen-tools devel, `<vcpu>` without it).
    #[arg(long, value_name = "GEN", default_value_t = Generation::default().to_string())]
    muen_tools: String,
    /// The manifest: an app.toml, or a Solo5 manifest (*.json, from
    /// `solo5-elftool query-manifest`).
    manifest: PathBuf,
    /// Print, instead of the specification, the system additions for the apps of all
    /// MANIFESTs: what a Muen system policy needs to run them as subjects (the same
    /// for both tool generations; docs/muen.md).
    #[arg(long, conflicts_with = "elf")]
    system_additions: bool,
    /// More manifests (only with --system-additions).
    #[arg(value_name = "MANIFEST", requires = "system_additions")]
    more_manifests: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
    let generation = match args.muen_tools.parse::<Generation>() {
        Ok(g) => g,
        Err(e) => return fail(format_args!("--muen-tools: {e}")),
    };
    let xml = match if args.system_additions {
        let mut manifests = vec![args.manifest.clone()];
        manifests.extend(args.more_manifests.iter().cloned());
        if args.name.is_some() && manifests.len() > 1 {
            return fail(format_args!(
                "--name: names the component of one manifest; {} were given",
                manifests.len()
            ));
        }
        policy_gen::system_additions(&manifests, args.name.as_deref())
    } else {
        policy_gen::generate(
            &args.manifest,
            args.name.as_deref(),
            args.elf.as_deref(),
            generation,
        )
    } {
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
