//! `muen-testbed`: runs Muen native subjects without Muen, and inspects what Muen gives
//! them.
//!
//! Each subcommand lives in its own module under [`cli`]; the emulated system itself is
//! the library `muen_testbed`. Commands print their whole output only once it is
//! complete (except `run`, which streams the subject's log); on bad input they print
//! one line naming the file and the problem on stderr and exit with status 2.

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
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            eprintln!("muen-testbed: {failure}");
            ExitCode::from(failure.status())
        }
    }
}
