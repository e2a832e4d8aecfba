//! `berth`, the command-line client of berthd (see `berth --help`): parse the command line ([`args`]), talk
//! to the daemon over HTTP ([`client`]), print tables or the daemon's JSON
//! ([`commands`]), and end with an exit status scripts can use ([`error`]).
//!
//! Depends on the runtime's plain types only (runc's default spec); everything else it
//! learns from the daemon over HTTP.

mod args;
mod client;
mod commands;
mod error;
mod host;
mod publish;
mod table;
mod time;
mod view;

use std::process::ExitCode;

use clap::Parser;

pub use error::CliError;

/// Run the CLI with the process's arguments; the exit status follows [`error`]'s codes.
fn main() -> ExitCode {
    // clap prints usage errors itself and exits with 2.
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return ExitCode::from(error::EXIT_REFUSED);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(status) => ExitCode::from(status),
        Err(e) => match e.exit_status() {
            Some(status) => {
                report(&e);
                ExitCode::from(status)
            }
            None => ExitCode::SUCCESS,
        },
    }
}

/// Print `e` as the one line on stderr.
pub fn report(e: &CliError) {
    eprintln!("berth: {}", error::one_line(&e.to_string()));
}
