//! `muen-testbed`: runs Muen native subjects without Muen, and inspects what Muen gives
//! them.
//!
//! Each subcommand lives in its own module under [`cli`]. Commands print their whole
//! output only once it is complete; on bad input they print one line naming the file
//! and the problem on stderr and exit with status 2.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Command line of `muen-testbed`.
#[derive(Parser)]
#[command(name = "muen-testbed", version, about)]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("muen-testbed: {failure}");
            ExitCode::from(failure.status())
        }
    }
}
