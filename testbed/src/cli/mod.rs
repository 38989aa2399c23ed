//! The subcommands of `muen-testbed`, one module each.

pub mod run;
pub mod sinfo;
pub mod sinfo_build;

use std::fmt;
use std::io::Write;

use clap::Subcommand;

/// A subcommand.
#[derive(Subcommand)]
pub enum Command {
    /// Inspect and write subject info (sinfo) pages.
    #[command(subcommand)]
    Sinfo(SinfoCommand),
    /// Run a subject in the emulated Muen environment.
    Run(Box<run::RunArgs>),
}

/// `sinfo` subcommands: `dump` (module `sinfo`) and `build`.
#[derive(Subcommand)]
pub enum SinfoCommand {
    /// Reading pages.
    #[command(flatten)]
    Inspect(sinfo::Command),
    /// Write the sinfo page the testbed gives a subject (format 4, or 5 on request).
    Build(sinfo_build::BuildArgs),
}

impl Command {
    /// Runs the command; returns the process exit status.
    pub fn run(self) -> Result<u8, Failure> {
        match self {
            Command::Sinfo(SinfoCommand::Inspect(command)) => command.run().map(|()| 0),
            Command::Sinfo(SinfoCommand::Build(args)) => sinfo_build::build(&args).map(|()| 0),
            Command::Run(args) => run::run(*args),
        }
    }
}

/// `--sinfo-format`: the format of the subject info page the testbed writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinfoFormat(muen_sinfo::Version);

impl SinfoFormat {
    /// The formats the testbed writes.
    pub const KNOWN: [muen_sinfo::Version; 2] = [muen_sinfo::Version::V4, muen_sinfo::Version::V5];

    /// The page format.
    pub fn version(self) -> muen_sinfo::Version {
        self.0
    }
}

impl Default for SinfoFormat {
    /// The format Muen's `mugensinfo` of the default tool generation writes (4).
    fn default() -> Self {
        SinfoFormat(muen_spec::Generation::default().sinfo_version())
    }
}

impl fmt::Display for SinfoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.number())
    }
}

impl std::str::FromStr for SinfoFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        SinfoFormat::KNOWN
            .into_iter()
            .find(|v| v.number().to_string() == s)
            .map(SinfoFormat)
            .ok_or_else(|| format!("unknown sinfo format `{s}`; known: 4, 5"))
    }
}

/// Why a command failed, and the exit status that says so.
#[derive(Debug)]
pub enum Failure {
    /// The input is unusable (unreadable or malformed file): status 2.
    BadInput(String),
    /// Anything else, such as a closed stdout: status 1.
    Other(String),
}

impl Failure {
    /// The process exit status for this failure.
    pub fn status(&self) -> u8 {
        match self {
            Failure::BadInput(_) => 2,
            Failure::Other(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::BadInput(message) | Failure::Other(message) => f.write_str(message),
        }
    }
}

/// Writes a command's complete output to stdout in one go.
pub fn print(output: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Other(format!("writing to stdout: {e}")))
}
