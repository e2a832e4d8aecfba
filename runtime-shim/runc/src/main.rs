//! `berth-runc`: a runc-compatible command line over the Berth runtime library.
//!
//! Names, flags and exit codes follow runc, so tools written for runc (containerd's shim
//! among them) can call `berth-runc` instead. Every failure is one line on stderr (and an
//! `error` entry in `--log`) and exit status 1.
//!
//! Depends on the runtime library only.

mod events;
mod exec;
mod foreground;
mod logging;
mod output;
mod run;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use berth_runtime::checkpoint::{self, CriuOptions};
use berth_runtime::container::{self, Container, CreateOptions};
use berth_runtime::{signal, Error, Status};
use clap::{Parser, Subcommand, ValueEnum};

/// `--version`, shaped like runc's so tools that parse it find the version and spec lines.
const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: berth-",
    env!("CARGO_PKG_VERSION"),
    "\nspec: 1.2.0"
);

/// Berth's OCI runtime, runc-compatible.
#[derive(Parser, Debug)]
#[command(name = "berth-runc", version = VERSION, about, long_about = None)]
struct Cli {
    /// Directory for the runtime's container state.
    #[arg(long, global = true, default_value = "/run/berth-runc")]
    root: PathBuf,
    /// Also write log entries to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of the --log file.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log debug messages too.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility; the systemd cgroup driver is not supported.
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// The criu binary, for checkpoint and restore (before the command, as runc).
    #[arg(long, default_value = "criu")]
    criu: PathBuf,
    /// Accepted for runc compatibility (true, false or auto) before the command;
    /// berth-runc runs as root.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Formats of the log file.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// logfmt-style lines, as runc's text logs.
    Text,
    /// One JSON object per line with `level`, `msg` and `time`, as runc's JSON logs.
    Json,
}

/// Output formats of `list` and `ps`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container: set it up and wait for `start`.
    Create {
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Run the user process of a created container.
    Start { id: String },
    /// Print the runtime-spec state of a container as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        /// Signal every process of the container, not only its init.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and everything it holds.
    Delete {
        /// Kill the container first if it still runs.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; in the foreground, wait for it and exit with its status.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container runs, instead of waiting for it.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits (foreground only).
        #[arg(long)]
        keep: bool,
    },
    /// Run a further process in a running container.
    Exec {
        #[command(flatten)]
        exec: exec::ExecArgs,
    },
    /// Dump a running container to an image directory with criu.
    Checkpoint {
        #[command(flatten)]
        criu: CriuArgs,
        #[command(flatten)]
        dump: DumpArgs,
        id: String,
    },
    /// Restore a container from a criu image (always detached).
    Restore {
        #[command(flatten)]
        criu: CriuArgs,
        /// The bundle directory (config.json and root filesystem).
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Write the restored init's host pid to this file.
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// Accepted for runc compatibility: restore always detaches.
        #[arg(short, long)]
        detach: bool,
        /// Accepted for runc compatibility: the restored init is never our child.
        #[arg(long)]
        no_subreaper: bool,
        /// Unix socket that receives the pty master of a restored terminal.
        #[arg(long)]
        console_socket: Option<PathBuf>,
        /// Use chroot instead of pivot_root.
        #[arg(long)]
        no_pivot: bool,
        /// Namespaces to create empty (e.g. network).
        #[arg(long)]
        empty_ns: Vec<String>,
        id: String,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change the resource limits of a container.
    Update {
        #[command(flatten)]
        update: update::UpdateArgs,
    },
    /// Print the container's statistics and OOM events as JSON lines.
    Events {
        #[command(flatten)]
        events: events::EventsArgs,
    },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Print ids only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show the processes of a container (table through ps(1), or host pids as JSON).
    Ps {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        id: String,
        /// Options passed to ps(1) (default -ef), after the id (with or without `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print the runtime-spec features document: what this runtime implements.
    Features,
    /// Write a default config.json.
    Spec {
        /// Directory to write config.json into.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A spec for an unprivileged user, with a user namespace.
        #[arg(long)]
        rootless: bool,
    },
}

/// Options shared by `checkpoint` and `restore`.
#[derive(clap::Args, Debug)]
struct CriuArgs {
    /// Directory of the criu image files.
    #[arg(long, default_value = "checkpoint")]
    image_path: PathBuf,
    /// Directory for criu's logs and work files (default: the image directory).
    #[arg(long)]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long)]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long)]
    ext_unix_sk: bool,
    /// Allow a process attached to a terminal.
    #[arg(long)]
    shell_job: bool,
    /// Handle file locks.
    #[arg(long)]
    file_locks: bool,
    /// criu's cgroup mode: soft, full, strict or ignore.
    #[arg(long)]
    manage_cgroups_mode: Option<String>,
}

/// The flags only `checkpoint` has.
#[derive(clap::Args, Debug)]
struct DumpArgs {
    /// Keep the container running after the dump.
    #[arg(long)]
    leave_running: bool,
    /// Images of a previous dump, for an incremental one.
    #[arg(long)]
    parent_path: Option<PathBuf>,
    /// Dump memory only, leaving the container running.
    #[arg(long)]
    pre_dump: bool,
    /// Send memory pages to a criu page server at ADDRESS:PORT.
    #[arg(long)]
    page_server: Option<String>,
    /// Namespaces to create empty on restore (given at checkpoint, as runc).
    #[arg(long)]
    empty_ns: Vec<String>,
}

impl CriuArgs {
    fn options(
        &self,
        criu: PathBuf,
        dump: Option<&DumpArgs>,
        empty_ns: Vec<String>,
    ) -> CriuOptions {
        CriuOptions {
            criu,
            image_path: self.image_path.clone(),
            work_path: self.work_path.clone(),
            leave_running: dump.is_some_and(|d| d.leave_running || d.pre_dump),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            empty_ns,
            parent_path: dump.and_then(|d| d.parent_path.clone()),
            pre_dump: dump.is_some_and(|d| d.pre_dump),
            page_server: dump.and_then(|d| d.page_server.clone()),
            manage_cgroups_mode: self.manage_cgroups_mode.clone(),
        }
    }
}

/// Options shared by `create` and `run`.
#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// The bundle directory (config.json and root filesystem).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the init's host pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when the process wants a terminal.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for root filesystems on ramfs).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility: berth-runc never creates a session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many file descriptors after stdio (3, 4, …) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// The container id.
    id: String,
}

impl CreateArgs {
    fn options(&self, root: PathBuf) -> CreateOptions {
        CreateOptions {
            root,
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
        }
    }
}

/// go-runc spells some long options with one dash (`-no-subreaper`); clap would read
/// those as bundles of short flags. Respell them before parsing.
fn normalized_args() -> Vec<std::ffi::OsString> {
    const SINGLE_DASH_LONG: &[&str] = &["-no-subreaper"];
    std::env::args_os()
        .map(|a| match a.to_str() {
            Some(s) if SINGLE_DASH_LONG.contains(&s) => format!("-{s}").into(),
            _ => a,
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalized_args());
    // Before we open anything ourselves (the log, the state directory): a descriptor
    // of ours landing in 3..3+N would be handed to the container.
    let preserve = match &cli.command {
        Command::Create { create } | Command::Run { create, .. } => create.preserve_fds,
        _ => 0,
    };
    if let Some(fd) = (3..3u32.saturating_add(preserve)).find(|&fd| !is_open(fd)) {
        eprintln!(
            "berth-runc: --preserve-fds {preserve}: descriptor {fd} is not open; only \
             descriptors the caller holds can be passed to the container"
        );
        return ExitCode::FAILURE;
    }
    logging::init(cli.log.as_deref(), cli.log_format, cli.debug);
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("berth-runc: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether descriptor `fd` is open in this process.
fn is_open(fd: u32) -> bool {
    let Ok(fd) = i32::try_from(fd) else {
        return false;
    };
    // SAFETY: F_GETFD reads a descriptor's flags and touches no memory.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Run one command; `Ok` carries the exit status (only `run` has another than 0).
fn execute(cli: Cli) -> Result<ExitCode, Error> {
    if cli.systemd_cgroup {
        return Err(Error::Unsupported(
            "the systemd cgroup driver (--systemd-cgroup)",
        ));
    }
    let root = cli.root;
    match cli.command {
        Command::Create { create } => {
            container::create(&create.options(root))?;
        }
        Command::Start { id } => Container::load(&root, &id)?.start()?,
        Command::State { id } => {
            let state = Container::load(&root, &id)?.state();
            output::print_json_pretty(&state);
        }
        Command::Kill { all, id, signal } => {
            let signal = signal::parse(&signal)?;
            Container::load(&root, &id)?.kill(signal, all)?;
        }
        Command::Delete { force, id } => match Container::load(&root, &id) {
            Ok(c) => c.delete(force)?,
            // runc: `delete --force` of a container that is not there succeeds.
            Err(Error::NotFound(_)) if force => {}
            // What a killed `create` left behind (no record yet) goes with --force.
            Err(Error::WrongState {
                status: Status::Creating,
                ..
            }) if force => {
                berth_runtime::state::ContainerDir::open(&root, &id)?.remove_abandoned()?
            }
            Err(e) => return Err(e),
        },
        Command::Run {
            create,
            detach,
            keep,
        } => return run::run(&create.options(root), detach, keep),
        Command::Exec { exec } => return exec::exec(&root, &exec),
        Command::Pause { id } => Container::load(&root, &id)?.pause()?,
        Command::Resume { id } => Container::load(&root, &id)?.resume()?,
        Command::Update { update } => update::update(&root, &update)?,
        Command::Events { events } => events::events(&root, &events)?,
        Command::Checkpoint { criu, dump, id } => {
            let opts = criu.options(cli.criu, Some(&dump), dump.empty_ns.clone());
            Container::load(&root, &id)?.checkpoint(&opts)?
        }
        Command::Restore {
            criu,
            bundle,
            pid_file,
            detach: _,
            no_subreaper: _,
            console_socket,
            no_pivot,
            empty_ns,
            id,
        } => {
            let opts = CreateOptions {
                root,
                id,
                bundle,
                pid_file,
                console_socket,
                no_pivot,
                preserve_fds: 0,
            };
            checkpoint::restore(&opts, &criu.options(cli.criu, None, empty_ns))?;
        }
        Command::List { format, quiet } => {
            output::list(&container::list(&root)?, format == Format::Json, quiet)
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => {
            let c = Container::load(&root, &id)?;
            output::ps(&c.pids()?, format == Format::Json, &ps_args)?;
        }
        Command::Spec { bundle, rootless } => output::write_spec(&bundle, rootless)?,
        Command::Features => output::print_json_pretty(&berth_runtime::features::features()),
    }
    Ok(ExitCode::SUCCESS)
}
