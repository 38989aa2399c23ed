//! The subcommands of `muen-testbed`, one module each.

pub mod sinfo;

use std::fmt;
use std::io::Write;

use clap::Subcommand;

/// A subcommand.
#[derive(Subcommand)]
pub enum Command {
    /// Inspect subject info (sinfo) pages.
    #[command(subcommand)]
    Sinfo(sinfo::Command),
}

impl Command {
    /// Runs the command.
    pub fn run(self) -> Result<(), Failure> {
        match self {
            Command::Sinfo(command) => command.run(),
        }
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
