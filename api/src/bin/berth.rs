//! `berth`: the command-line client of berthd (see `berth --help`).

fn main() -> std::process::ExitCode {
    berth_api::cli::main()
}
