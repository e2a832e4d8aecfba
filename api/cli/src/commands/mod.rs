//! The subcommands, one module per concept, and what they share: the client, the
//! `--json` switch, writing to stdout, going through several ids.

mod containers;
mod events;
mod exec;
mod images;
mod logs;
mod networks;
mod port;
mod ps;
mod pull;
mod spec;
mod stats;
mod system;

use std::io::Write;

use super::args::{Cli, Command};
use super::client::{encode, Client};
use super::error::{CliError, EXIT_REFUSED};

/// What every command can reach.
pub struct Ctx {
    /// The daemon.
    pub client: Client,
    /// Print the daemon's JSON as it is.
    pub json: bool,
}

impl Ctx {
    /// Write `bytes` to stdout now (a closed pipe surfaces as [`CliError::Output`]).
    pub fn out(&self, bytes: &[u8]) -> Result<(), CliError> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(bytes)?;
        stdout.flush()?;
        Ok(())
    }

    /// Write `text` and a newline to stdout.
    pub fn line(&self, text: &str) -> Result<(), CliError> {
        self.out(format!("{text}\n").as_bytes())
    }

    /// Write the daemon's JSON `raw` as it came, on one line.
    pub fn raw_json(&self, raw: &[u8]) -> Result<(), CliError> {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let mut line = raw.to_vec();
        line.push(b'\n');
        self.out(&line)
    }
}

/// The path of container `id`, plus `rest` (e.g. `/kill`).
pub fn container_path(id: &str, rest: &str) -> String {
    format!("/v1/containers/{}{rest}", encode(id))
}

/// Settle the outcome of one of several ids: an error for one is printed and sets the
/// exit status to 1 while the others go on; an unreachable daemon (or a closed stdout)
/// stops everything.
pub fn settle(result: Result<(), CliError>, status: &mut u8) -> Result<(), CliError> {
    match result {
        Ok(()) => Ok(()),
        Err(e @ (CliError::Unreachable(_) | CliError::Output(_))) => Err(e),
        Err(e) => {
            super::report(&e);
            *status = EXIT_REFUSED;
            Ok(())
        }
    }
}

/// `GET` each of `paths` (`request` names them in errors): with `--json` each answer is
/// printed as it came, one per line, and nothing is returned; otherwise the answers are
/// returned to be shown together. One refused is reported and makes the status 1.
pub async fn fetch_each(
    ctx: &Ctx,
    paths: impl Iterator<Item = String>,
) -> Result<(Vec<serde_json::Value>, u8), CliError> {
    let mut status = 0;
    let mut found = Vec::new();
    for path in paths {
        let result = match ctx.client.json(hyper::Method::GET, &path, None).await {
            Ok((raw, _)) if ctx.json => ctx.raw_json(&raw),
            Ok((_, value)) => {
                found.push(value);
                Ok(())
            }
            Err(e) => Err(e),
        };
        settle(result, &mut status)?;
    }
    Ok((found, status))
}

/// Print `value` as pretty JSON (`request`: what it answered, for the error).
pub fn print_pretty(ctx: &Ctx, value: &serde_json::Value, request: &str) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Protocol {
        request: request.into(),
        detail: e.to_string(),
    })?;
    ctx.line(&text)
}

/// Parse the daemon's JSON `value` as `T`, or say what `request` answered instead.
pub fn parse<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    request: &str,
) -> Result<T, CliError> {
    serde_json::from_value(value).map_err(|e| CliError::Protocol {
        request: request.to_owned(),
        detail: format!("not what the API documents: {e}"),
    })
}

/// Run the parsed command line; the exit status on success.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let ctx = Ctx {
        client: Client::new(cli.host, cli.token),
        json: cli.json,
    };
    match cli.command {
        Command::Run(a) => containers::run(&ctx, a).await,
        Command::Create(a) => containers::create(&ctx, a).await,
        Command::Start(a) => containers::action(&ctx, &a.ids, "start").await,
        Command::Pause(a) => containers::action(&ctx, &a.ids, "pause").await,
        Command::Resume(a) => containers::action(&ctx, &a.ids, "resume").await,
        Command::Ps(a) => ps::ps(&ctx, a).await,
        Command::Inspect(a) => containers::inspect(&ctx, &a.ids).await,
        Command::Kill(a) => containers::kill(&ctx, a).await,
        Command::Rm(a) => containers::rm(&ctx, a).await,
        Command::Logs(a) => logs::logs(&ctx, a).await,
        Command::Exec(a) => exec::exec(&ctx, a).await,
        Command::Events(a) => events::events(&ctx, a).await,
        Command::Stats(a) => stats::stats(&ctx, &a.ids).await,
        Command::System(a) => system::system(&ctx, a).await,
        Command::Pull(a) => pull::pull(&ctx, a).await,
        Command::Images(a) => images::list(&ctx, a).await,
        Command::Rmi(a) => images::remove(&ctx, a).await,
        Command::Image(a) => images::image(&ctx, a.action).await,
        Command::Network(a) => networks::network(&ctx, a.action).await,
        Command::Port(a) => port::port(&ctx, a).await,
    }
}
