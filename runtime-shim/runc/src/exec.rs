//! `exec`: run one more process in a container. The process is the container's own
//! (env, user, cwd, capabilities …) with the command line and flags laid over it, or a
//! complete process JSON given with `--process`, as in runc.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use berth_runtime::exec::ExecOptions;
use berth_runtime::{Container, Error};
use oci_spec::runtime::{Capability, Process};

use crate::foreground::{self, Foreground};

/// The flags of `exec`.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// A process.json describing the whole process (overrides the command line).
    #[arg(long)]
    process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    tty: bool,
    /// Unix socket that receives the pty master.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Return at once instead of waiting for the process.
    #[arg(short, long)]
    detach: bool,
    /// Write the process's host pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE), repeatable.
    #[arg(short, long)]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// User as UID[:GID].
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group ids, repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability (CAP_…), repeatable.
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privileges for the process.
    #[arg(long)]
    no_new_privs: bool,
    /// The container id.
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Build the process from the container's own and the flags.
fn process_of(args: &ExecArgs, c: &Container) -> Result<Process, Error> {
    if let Some(path) = &args.process {
        let text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        return serde_json::from_slice(&text).map_err(|e| Error::Config {
            path: path.clone(),
            reason: format!("invalid process JSON: {e}"),
        });
    }
    if args.command.is_empty() {
        return Err(Error::Unsupported(
            "exec without a command (give one, or --process)",
        ));
    }
    let bundle = c.spec_bundle()?;
    let mut p = bundle.spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &args.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Error::Unsupported("--user other than numeric UID[:GID]"))
        };
        p.user_mut().set_uid(parse(uid)?);
        if let Some(g) = gid {
            p.user_mut().set_gid(parse(g)?);
        }
    }
    if !args.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(args.additional_gids.clone()));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let cap = Capability::from_str(name).map_err(|_| Error::Config {
                path: PathBuf::from("--cap"),
                reason: format!("unknown capability {name:?}"),
            })?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                set
            };
            caps.set_bounding(Some(add(caps.bounding())));
            caps.set_effective(Some(add(caps.effective())));
            caps.set_permitted(Some(add(caps.permitted())));
        }
        p.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// Run `exec`; in the foreground, exit with the process's status.
pub fn exec(root: &std::path::Path, args: &ExecArgs) -> Result<ExitCode, Error> {
    let c = Container::load(root, &args.id)?;
    let process = process_of(args, &c)?;
    let terminal = process.terminal() == Some(true);
    let opts = ExecOptions {
        process,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
    };
    if args.detach {
        c.exec(&opts, None)?;
        return Ok(ExitCode::SUCCESS);
    }
    let fg = Foreground::take_signals()?;
    let (pid, master) = if terminal && args.console_socket.is_none() {
        let (ours, theirs) = foreground::console_pair()?;
        let pid = c.exec(&opts, Some(theirs))?;
        (pid, Some(foreground::receive_master(&ours)?))
    } else {
        (c.exec(&opts, None)?, None)
    };
    let code = fg.wait(pid, master.as_ref())?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
