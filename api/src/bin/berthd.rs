//! `berthd`: the Berth daemon. Hosts the engine behind the HTTP/JSON API on a unix
//! socket; the engine spawns one `berth-shim` per container, and containers keep
//! running under their shims when the daemon stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api::engine::monitor::Monitor;
use berth_api::engine::shim_launcher::{follow, reattach, ShimConfig, ShimLauncher};
use berth_api::engine::{Config, Engine};
use berth_api::routes::App;
use clap::Parser;

/// The Berth daemon: an HTTP/JSON API over the container engine.
#[derive(Debug, Parser)]
#[command(name = "berthd", version)]
struct Args {
    /// Unix socket to listen on (made with mode 0660).
    #[arg(long, default_value = "/run/berth/berth.sock")]
    socket: PathBuf,
    /// State directory: container records, shim directories, runtime state.
    #[arg(long, default_value = "/run/berth")]
    state_dir: PathBuf,
    /// Start workers (containers being started at once).
    #[arg(long, default_value_t = 10)]
    workers: usize,
    /// OCI runtime: `builtin` (the runtime library inside each shim) or the absolute
    /// path of a runc-compatible binary.
    #[arg(long, default_value = "builtin")]
    runtime: String,
    /// The `berth-shim` binary (default: `berth-shim` beside this executable).
    #[arg(long)]
    shim: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    body_limit: usize,
    /// Most start jobs waiting at once; more get 429.
    #[arg(long, default_value_t = berth_api::engine::queue::DEFAULT_MAX_QUEUED)]
    max_queued: usize,
    /// How long a client may take to send a request body, in seconds.
    #[arg(long, default_value_t = berth_api::routes::BODY_TIMEOUT.as_secs())]
    body_timeout: u64,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive
    /// such as `berth_engine=debug`); `RUST_LOG` overrides it.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// How long a container's start may take before it is failed, in seconds.
    #[arg(long, default_value_t = 60)]
    start_timeout: u64,
}

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log_level));
    match filter {
        Ok(filter) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        Err(e) => {
            eprintln!("berthd: --log-level {}: {e}", args.log_level);
            std::process::exit(2);
        }
    }
    if let Err(e) = run(args) {
        eprintln!("berthd: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let runtime = match args.runtime.as_str() {
        "builtin" => None,
        path => {
            let p = PathBuf::from(path);
            if !p.is_absolute() || !p.is_file() {
                return Err(format!(
                    "--runtime {path}: expected `builtin` or the absolute path of a runtime binary"
                ));
            }
            Some(p)
        }
    };
    let shim_binary = match args.shim {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this executable: {e}"))?
            .with_file_name("berth-shim"),
    };
    if !shim_binary.is_file() {
        return Err(format!(
            "shim binary {} not found (build berth-shim or pass --shim PATH)",
            shim_binary.display()
        ));
    }
    if args.body_limit == 0 {
        return Err("--body-limit must be at least 1 byte".into());
    }
    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| format!("state directory {}: {e}", args.state_dir.display()))?;
    let state_dir = std::fs::canonicalize(&args.state_dir)
        .map_err(|e| format!("state directory {}: {e}", args.state_dir.display()))?;

    let metrics = berth_api::routes::metrics::install()?;
    let monitor = Monitor::start().map_err(|e| format!("starting the shim monitor: {e}"))?;
    let shim = ShimConfig {
        shim_binary,
        state_dir: state_dir.clone(),
        runtime: runtime.clone(),
        log_max: 8 << 20,
        start_timeout: Duration::from_secs(args.start_timeout.max(1)),
    };
    let launcher = ShimLauncher::new(shim.clone(), Arc::clone(&monitor));
    let config = Config {
        workers: args.workers,
        max_queued: args.max_queued,
        state_dir: Some(state_dir.join("records")),
        ..Config::default()
    };
    let engine = Arc::new(
        Engine::new(config, Arc::new(launcher)).map_err(|e| format!("starting the engine: {e}"))?,
    );
    follow(&engine, &monitor);
    let found = reattach(&engine, &monitor, &shim);
    if found > 0 {
        eprintln!("berthd: found {found} running shim(s) again");
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let app = Arc::new(App {
        engine: Arc::clone(&engine),
        body_limit: args.body_limit,
        runtime,
        body_timeout: Duration::from_secs(args.body_timeout.max(1)),
        metrics: Some(metrics),
        shim: Some(shim.clone()),
    });
    let socket = args.socket.clone();
    rt.block_on(async move {
        let listener = berth_api::server::bind(&socket, 0o660)
            .map_err(|e| format!("socket {}: {e}", socket.display()))?;
        eprintln!("berthd: listening on {}", socket.display());
        berth_api::server::serve(listener, app, shutdown_signal()).await;
        let _ = std::fs::remove_file(&socket);
        Ok::<(), String>(())
    })?;
    // Stop the workers; jobs still queued stay recorded for the next daemon.
    let left = engine.shutdown();
    if !left.is_empty() {
        eprintln!(
            "berthd: {} queued start(s) left for the next start",
            left.len()
        );
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    eprintln!("berthd: stopped; containers keep running under their shims");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
