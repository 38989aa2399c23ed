//! `muen-testbed sinfo build`: write the sinfo page the testbed would give a subject,
//! for users' own tests (`sinfo dump` reads it back).

use std::path::PathBuf;

use clap::Args;
use muen_testbed::clock::TscRate;

use super::Failure;

/// Arguments of `sinfo build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The app: a directory with app.toml, or its app.toml (its policy is generated;
    /// nothing is built).
    #[arg(required_unless_present = "policy", conflicts_with = "policy")]
    app: Option<PathBuf>,
    /// Use this component specification instead of an app's.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where to write the page (32720 bytes).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// The TSC rate to state, in kHz (default: this host's).
    #[arg(long, value_name = "KHZ")]
    tsc_khz: Option<u32>,
    /// The page's format: 4 (what Muen's mugensinfo writes, both tool generations) or 5
    /// (what Solo5's current Muen bindings read).
    #[arg(long, value_name = "FORMAT", default_value_t)]
    sinfo_format: super::SinfoFormat,
}

/// Runs `sinfo build`.
pub fn build(args: &BuildArgs) -> Result<(), Failure> {
    let world = super::run::world(args.app.as_deref(), args.policy.as_deref(), None)?;
    let tsc = match args.tsc_khz {
        None => muen_testbed::clock::host_tsc_rate(),
        Some(khz) => TscRate::from_khz(khz)
            .ok_or_else(|| Failure::BadInput("--tsc-khz must not be 0".into()))?,
    };
    let page = muen_testbed::sinfo::page(&world.view, tsc, args.sinfo_format.version())
        .map_err(|e| Failure::BadInput(format!("building the page: {e}")))?;
    // Written to a temporary file and renamed, so that a failure leaves no partial page.
    let out = &args.output;
    let tmp = out.with_file_name(format!(
        ".{}.tmp",
        out.file_name()
            .map_or("sinfo".into(), |n| n.to_string_lossy())
    ));
    std::fs::write(&tmp, &page)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::Other(format!("{}: {e}", out.display()))
        })
}
