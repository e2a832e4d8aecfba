//! `berthd`: the Berth daemon. Hosts the engine behind the HTTP/JSON API on a unix
//! socket (and, when configured, on TCP); the engine spawns one `berth-shim` per
//! container, and containers keep running under their shims when the daemon stops.
//!
//! Exit status: 0 after SIGTERM/SIGINT, 2 for a bad configuration (nothing is created
//! then), 1 when starting fails otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berthd::config::Config;
use berthd::engine::{statefs, Engine, ShimConfig};
use berthd::routes::metrics::{Exporter, MetricsError};
use berthd::routes::App;
use berthd::server::{self, Listener, Options};

fn main() {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("berthd: {e}");
            std::process::exit(2);
        }
    };
    // The filter was checked with the configuration; RUST_LOG still overrides it.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour for a terminal only: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if config.token.is_some() && config.tcp.is_none() {
        tracing::warn!("a token is configured but no --tcp address: the unix socket needs none");
    }
    if config.tcp_insecure && (config.tcp.is_none() || config.token.is_some()) {
        tracing::warn!("--tcp-insecure has no effect: it only opens a TCP address without a token");
    }
    if let Err(e) = run(config) {
        eprintln!("berthd: {e}");
        std::process::exit(1);
    }
}

/// Why the daemon could not start (or serve).
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The tokio runtime could not be built.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
    /// The state directory's tmpfs could not be made sure of.
    #[error("state directory: {0}")]
    StateFs(statefs::StateFsError),
    /// The state directory could not be resolved.
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TCP address could not be bound.
    #[error("--tcp {addr}: {source}")]
    Tcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The unix socket could not be bound.
    #[error("socket {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The metrics recorder could not be installed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] berthd::engine::StartError),
    /// The images root could not be opened.
    #[error("images root: {0}")]
    Images(#[from] berthd::engine::ImagesError),
    /// The networks could not be opened.
    #[error("networks: {0}")]
    Networks(#[from] berth_network::NetworkError),
}

/// The images service under the configured root, with the configured registries.
/// The networks service: definitions under --network-root, attachments with the
/// containers' state.
fn open_networks(
    config: &Config,
    state_dir: &std::path::Path,
) -> Result<berthd::engine::Networks, RunError> {
    let mut networks =
        berthd::engine::NetworksConfig::new(config.network_root.clone(), state_dir.join("network"));
    networks.default_subnet = config.default_subnet;
    networks.cni_conf_dir = config.cni_conf_dir.clone();
    networks.cni_plugin_dirs = config.cni_plugin_dirs.clone();
    networks.cni_timeout = config.cni_timeout;
    Ok(berthd::engine::Networks::open(networks)?)
}

fn open_images(
    config: &Config,
    state_dir: &std::path::Path,
) -> Result<berthd::engine::Images, RunError> {
    let mut images = berthd::engine::ImagesConfig {
        root: config.images_root.clone(),
        // Containers' writable layers churn with every start: on the state directory's
        // tmpfs, beside the rest of the containers' state (gone at a reboot, as they are).
        containers: Some(state_dir.join("rootfs")),
        ..Default::default()
    };
    images.registry.connect_timeout = config.registry_timeout;
    images.registry.read_timeout = config.registry_timeout;
    images
        .registry
        .insecure
        .extend(config.insecure_registries.iter().cloned());
    for (host, (username, password)) in &config.registry_auth {
        images.registry.credentials.insert(
            host.clone(),
            berthd::engine::Credentials {
                username: username.clone(),
                password: password.clone(),
            },
        );
    }
    Ok(berthd::engine::Images::open(images)?)
}

fn run(config: Config) -> Result<(), RunError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    // The state directory's tmpfs first (the socket may live in it), then listen: an
    // address in use fails the start, and a tmpfs mounted only now is taken back.
    // Connections made before the engine is up wait in the backlog.
    let statefs = statefs::ensure_tmpfs(&config.state_dir).map_err(RunError::StateFs)?;
    let listeners = listen(&rt, &config).inspect_err(|_| {
        if statefs == statefs::StateFs::Mounted && !holds_state(&config.state_dir) {
            let _ = statefs::release(&config.state_dir, statefs, false);
        }
    })?;
    let socket = config.socket.clone();
    let result = start_and_serve(&rt, &config, statefs, listeners);
    let _ = std::fs::remove_file(&socket);
    rt.shutdown_timeout(Duration::from_secs(1));
    result?;
    eprintln!("berthd: stopped; containers keep running under their shims");
    Ok(())
}

/// Whether `dir` holds anything but the tmpfs marker and sockets.
fn holds_state(dir: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name() != statefs::MARKER && !e.file_type().is_ok_and(|t| t.is_socket()))
}

/// Bind the TCP listener (if any) and the unix socket.
fn listen(rt: &tokio::runtime::Runtime, config: &Config) -> Result<Vec<Listener>, RunError> {
    let mut listeners = Vec::new();
    if let Some(addr) = config.tcp {
        let listener = rt
            .block_on(server::bind_tcp(addr))
            .map_err(|source| RunError::Tcp { addr, source })?;
        let token = config.token.clone().map(Arc::new);
        listeners.push(Listener::Tcp(listener, token));
    }
    let socket = &config.socket;
    let unix = rt
        .block_on(async { server::bind(socket, 0o660) })
        .map_err(|source| RunError::Socket {
            path: socket.clone(),
            source,
        })?;
    listeners.push(Listener::Unix(unix));
    Ok(listeners)
}

/// Start the engine, serve until SIGTERM/SIGINT, then stop the engine.
fn start_and_serve(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    statefs: statefs::StateFs,
    listeners: Vec<Listener>,
) -> Result<(), RunError> {
    let state_dir =
        std::fs::canonicalize(&config.state_dir).map_err(|source| RunError::StateDir {
            path: config.state_dir.clone(),
            source,
        })?;
    match statefs {
        statefs::StateFs::Mounted => {
            tracing::info!(dir = %state_dir.display(), "state directory on a tmpfs mounted now")
        }
        statefs::StateFs::AlreadyTmpfs => {
            tracing::info!(dir = %state_dir.display(), "state directory on a tmpfs")
        }
        statefs::StateFs::KeptNonEmpty => tracing::warn!(
            dir = %state_dir.display(),
            "state directory is on a disk and not empty: kept there (starts are slower than on tmpfs)"
        ),
    }

    let shim = ShimConfig {
        shim_binary: config.shim.clone(),
        state_dir: state_dir.clone(),
        runtime: config.runtime.clone(),
        log_max: 8 << 20,
        start_timeout: config.start_timeout,
    };
    let metrics = Exporter::install()?;
    let engine_config = berthd::engine::Config {
        workers: config.workers,
        max_queued: config.max_queued,
        state_dir: Some(state_dir.join("records")),
        ..berthd::engine::Config::default()
    };
    let images = Arc::new(open_images(config, &state_dir)?);
    let networks = Arc::new(open_networks(config, &state_dir)?);
    let services = berthd::engine::Services {
        images: Some(Arc::clone(&images)),
        networks: Some(Arc::clone(&networks)),
        default_network: config.default_network.clone(),
    };
    let (engine, found) = Engine::with_shims(engine_config, shim.clone(), services)?;
    if found > 0 {
        eprintln!("berthd: found {found} running shim(s) again");
    }

    let app = Arc::new(App {
        engine: Arc::clone(&engine),
        body_limit: config.body_limit,
        runtime: config.runtime.clone(),
        body_timeout: config.body_timeout,
        metrics: Some(metrics),
        shim: Some(shim),
        images: Some(images),
        networks: Some(networks),
    });
    eprintln!("berthd: listening on {}", config.socket.display());
    if let Some(addr) = config.tcp {
        let guard = if config.token.is_some() {
            "bearer token required"
        } else {
            "no token: --tcp-insecure, open to every local user"
        };
        eprintln!("berthd: listening on tcp {addr} ({guard})");
    }
    let options = Options {
        header_timeout: config.header_timeout,
    };
    rt.block_on(server::serve_all(
        listeners,
        app,
        options,
        shutdown_signal(),
    ));
    // Stop the workers; jobs still queued stay recorded for the next daemon.
    let left = engine.shutdown();
    if !left.is_empty() {
        eprintln!(
            "berthd: {} queued start(s) left for the next start",
            left.len()
        );
    }
    // A tmpfs mounted here goes once no container is left in it; otherwise it keeps
    // their state for the next daemon.
    let containers_left = !engine.list().is_empty();
    if let Err(e) = statefs::release(&state_dir, statefs, containers_left) {
        tracing::warn!("releasing the state directory: {e}");
    }
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
