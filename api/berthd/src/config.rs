//! berthd's configuration, read in one place: flags, then `BERTH_*` environment
//! variables, then a TOML file (`--config FILE`), then the defaults.
//!
//! The flags, their environment variables and their defaults are declared once, on
//! [`Args`] (clap), so `berthd --help` documents all three. A value counts as set by the
//! command line or the environment when clap says it did not come from the default; only
//! then does it beat the file. Everything is checked here, before the daemon creates
//! anything: a bad setting is a [`ConfigError`], one line naming the setting (and the
//! file), and exit status 2.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;

use crate::auth::Token;

/// Default unix socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/run/berth";

/// The Berth daemon: an HTTP/JSON API over the container engine.
///
/// Every setting can come from a flag, from its `BERTH_*` environment variable, or from
/// the TOML file given with `--config` (keys are the flag names with `_` for `-`, e.g.
/// `state_dir = "/run/berth"`); flags beat the environment, which beats the file, which
/// beats the defaults.
#[derive(Debug, Clone, Parser)]
#[command(name = "berthd", version)]
pub struct Args {
    /// TOML configuration file (unknown keys are refused).
    #[arg(long, env = "BERTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Unix socket to listen on (made with mode 0660; no token needed there).
    #[arg(long, env = "BERTH_SOCKET", default_value = DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,
    /// Also listen on TCP at this address, e.g. 127.0.0.1:2375. Needs a token, or for a
    /// loopback address --tcp-insecure.
    #[arg(long, env = "BERTH_TCP", value_name = "ADDR")]
    pub tcp: Option<SocketAddr>,
    /// Serve a loopback TCP address without a token. Any local user who can connect can
    /// then run containers as root: only for a machine with no other users.
    #[arg(long, env = "BERTH_TCP_INSECURE", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub tcp_insecure: bool,
    /// Bearer token every TCP request must carry (`Authorization: Bearer TOKEN`).
    /// Prefer --token-file: a flag is visible in `ps`.
    #[arg(
        long,
        env = "BERTH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// File holding the bearer token (a trailing newline is ignored).
    #[arg(long, env = "BERTH_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// State directory: container records, shim directories, runtime state.
    #[arg(long, env = "BERTH_STATE_DIR", default_value = DEFAULT_STATE_DIR, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Start workers (containers being started at once).
    #[arg(long, env = "BERTH_WORKERS", default_value_t = 10, value_name = "N")]
    pub workers: usize,
    /// OCI runtime: `builtin` (the runtime library inside each shim) or the absolute
    /// path of a runc-compatible binary.
    #[arg(
        long,
        env = "BERTH_RUNTIME",
        default_value = "builtin",
        value_name = "RUNTIME"
    )]
    pub runtime: String,
    /// The `berth-shim` binary (default: `berth-shim` beside this executable).
    #[arg(long, env = "BERTH_SHIM", value_name = "PATH")]
    pub shim: Option<PathBuf>,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive
    /// such as `berth_engine=debug`); `RUST_LOG` overrides it.
    #[arg(
        long,
        env = "BERTH_LOG_LEVEL",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub log_level: String,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "BERTH_BODY_LIMIT", default_value_t = 1 << 20, value_name = "BYTES")]
    pub body_limit: usize,
    /// Most start jobs waiting at once; more get 429.
    #[arg(long, env = "BERTH_MAX_QUEUED",
          default_value_t = crate::engine::queue::DEFAULT_MAX_QUEUED, value_name = "N")]
    pub max_queued: usize,
    /// How long a client may take to send its request headers, in seconds.
    #[arg(
        long,
        env = "BERTH_HEADER_TIMEOUT",
        default_value_t = crate::server::HEADER_TIMEOUT.as_secs(),
        value_name = "SECS"
    )]
    pub header_timeout: u64,
    /// How long a client may take to send a request body, in seconds.
    #[arg(long, env = "BERTH_BODY_TIMEOUT",
          default_value_t = crate::routes::BODY_TIMEOUT.as_secs(), value_name = "SECS")]
    pub body_timeout: u64,
    /// How long a container's start may take before it is failed, in seconds.
    #[arg(
        long,
        env = "BERTH_START_TIMEOUT",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub start_timeout: u64,
    /// Where images live: the content store, image records and layer snapshots
    /// (persistent, unlike the state directory).
    #[arg(long, env = "BERTH_IMAGES_ROOT", default_value = DEFAULT_IMAGES_ROOT, value_name = "DIR")]
    pub images_root: PathBuf,
    /// A registry (`host` or `host:port`) reached over plain HTTP. Loopback registries
    /// always may be; repeat the flag, or separate with commas in the environment.
    #[arg(
        long = "insecure-registry",
        env = "BERTH_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST[:PORT]"
    )]
    pub insecure_registries: Vec<String>,
    /// How long a registry may take to accept a connection, and then to send each
    /// part of an answer, in seconds (a registry silent longer fails the pull: 504).
    #[arg(long, env = "BERTH_REGISTRY_TIMEOUT",
          default_value_t = DEFAULT_REGISTRY_TIMEOUT, value_name = "SECS")]
    pub registry_timeout: u64,
    /// Where network definitions live (persistent; attachments and address allocations
    /// are kept with the containers in the state directory).
    #[arg(long, env = "BERTH_NETWORK_ROOT", default_value = DEFAULT_NETWORK_ROOT, value_name = "DIR")]
    pub network_root: PathBuf,
    /// The network of a container from an image whose request names none: a network's
    /// name (the default bridge network `berth0`), or `none`, `host`.
    #[arg(
        long,
        env = "BERTH_DEFAULT_NETWORK",
        default_value = "berth0",
        value_name = "MODE"
    )]
    pub default_network: String,
    /// The subnet of the default bridge network when it is first defined (default: the
    /// first free one of 172.17.0.0/16 … 172.31.0.0/16, 192.168.0.0/20 …).
    #[arg(long, env = "BERTH_DEFAULT_SUBNET", value_name = "CIDR")]
    pub default_subnet: Option<String>,
    /// Where CNI network configurations (`.conflist`, `.conf`) are read from.
    #[arg(
        long,
        env = "BERTH_CNI_CONF_DIR",
        default_value = "/etc/cni/net.d",
        value_name = "DIR"
    )]
    pub cni_conf_dir: PathBuf,
    /// Where CNI plugins are looked for, in order; repeat the flag, or separate with
    /// commas in the environment.
    #[arg(
        long = "cni-plugin-dir",
        env = "BERTH_CNI_PLUGIN_DIRS",
        value_delimiter = ',',
        default_value = "/usr/lib/cni,/opt/cni/bin",
        value_name = "DIR"
    )]
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// How long one CNI plugin may run before it is killed, in seconds.
    #[arg(
        long,
        env = "BERTH_CNI_TIMEOUT",
        default_value_t = 30,
        value_name = "SECS"
    )]
    pub cni_timeout: u64,
}

/// Default network root.
pub const DEFAULT_NETWORK_ROOT: &str = "/var/lib/berth/network";

/// Default registry timeout, in seconds.
pub const DEFAULT_REGISTRY_TIMEOUT: u64 = 30;

/// Default images root.
pub const DEFAULT_IMAGES_ROOT: &str = "/var/lib/berth";

/// Credentials for one registry in the configuration file
/// (`[registries."host:port"]`, `username` and `password_file`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryAuth {
    username: String,
    /// A file holding the password or token (kept out of the config file, which is
    /// often world-readable).
    password_file: PathBuf,
}

/// The configuration file: every key optional, unknown keys refused. The bearer token
/// itself is not a key (a config file is often world-readable); `token_file` is.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    socket: Option<PathBuf>,
    tcp: Option<SocketAddr>,
    tcp_insecure: Option<bool>,
    token_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    workers: Option<usize>,
    runtime: Option<String>,
    shim: Option<PathBuf>,
    log_level: Option<String>,
    body_limit: Option<usize>,
    max_queued: Option<usize>,
    header_timeout: Option<u64>,
    body_timeout: Option<u64>,
    start_timeout: Option<u64>,
    images_root: Option<PathBuf>,
    insecure_registries: Option<Vec<String>>,
    registry_timeout: Option<u64>,
    network_root: Option<PathBuf>,
    default_network: Option<String>,
    default_subnet: Option<String>,
    cni_conf_dir: Option<PathBuf>,
    cni_plugin_dirs: Option<Vec<PathBuf>>,
    cni_timeout: Option<u64>,
    #[serde(default)]
    registries: std::collections::BTreeMap<String, RegistryAuth>,
}

/// A setting that cannot be used. Its message is one line that names the setting (and
/// the configuration file, where the value came from there).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML, has an unknown key or a value of the
    /// wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and the key.
        message: String,
    },
    /// A value is out of range or names something that is not there.
    #[error("{setting}: {message}")]
    Invalid {
        /// The setting, as a flag (`--workers`).
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    fn invalid(setting: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            setting,
            message: message.into(),
        }
    }
}

/// The daemon's settings, merged and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Unix socket path.
    pub socket: PathBuf,
    /// TCP address, if any.
    pub tcp: Option<SocketAddr>,
    /// The bearer token TCP requests must carry, if any.
    pub token: Option<Token>,
    /// The operator allowed loopback TCP without a token.
    pub tcp_insecure: bool,
    /// State directory (not created yet).
    pub state_dir: PathBuf,
    /// Start workers.
    pub workers: usize,
    /// External runtime binary (`None`: built in).
    pub runtime: Option<PathBuf>,
    /// The shim binary (checked to exist).
    pub shim: PathBuf,
    /// Log filter.
    pub log_level: String,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Most queued start jobs.
    pub max_queued: usize,
    /// Time allowed for request headers.
    pub header_timeout: Duration,
    /// Time allowed for a request body.
    pub body_timeout: Duration,
    /// Time allowed for a container's start.
    pub start_timeout: Duration,
    /// Where images live.
    pub images_root: PathBuf,
    /// Registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Credentials by registry (`host[:port]`): user name and password.
    pub registry_auth: std::collections::BTreeMap<String, (String, String)>,
    /// Time allowed for a registry to connect, and to send each part of an answer.
    pub registry_timeout: Duration,
    /// Network definitions.
    pub network_root: PathBuf,
    /// The network of an image's container that names none.
    pub default_network: berth_network::NetworkMode,
    /// The default bridge network's subnet, when it is first defined.
    pub default_subnet: Option<ipnet::Ipv4Net>,
    /// CNI configurations.
    pub cni_conf_dir: PathBuf,
    /// CNI plugins.
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// Time allowed for one CNI plugin.
    pub cni_timeout: Duration,
}

/// Where a value came from; a higher source wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl Config {
    /// Parse this process's command line and environment (clap exits with status 2 on
    /// a malformed command line, or prints `--help`), then read the file and check.
    pub fn from_env() -> Result<Self, ConfigError> {
        let matches = Args::command().get_matches();
        let args = Args::from_arg_matches(&matches).map_err(|e| e.exit())?;
        Self::resolve(&args, &matches)
    }

    /// Like [`Config::from_env`] for an explicit command line (the environment is still
    /// read); clap's errors are returned as [`ConfigError::Invalid`].
    pub fn from_args<I, T>(argv: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli_error = |e: clap::Error| ConfigError::invalid("command line", e.kind().to_string());
        let matches = Args::command()
            .try_get_matches_from(argv)
            .map_err(cli_error)?;
        let args = Args::from_arg_matches(&matches).map_err(cli_error)?;
        Self::resolve(&args, &matches)
    }

    /// Merge `args` (flags and env, with clap's defaults) with the file they name.
    fn resolve(args: &Args, matches: &ArgMatches) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => File::default(),
        };
        let source = |id: &str| match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => Source::Env,
            _ => Source::Default,
        };
        let set = |id: &str| source(id) > Source::Default;
        let socket = layered(set("socket"), args.socket.clone(), file.socket);
        let state_dir = layered(set("state_dir"), args.state_dir.clone(), file.state_dir);
        let tcp = layered_opt(set("tcp"), args.tcp, file.tcp);
        let tcp_insecure = layered(set("tcp_insecure"), args.tcp_insecure, file.tcp_insecure);
        let workers = layered(set("workers"), args.workers, file.workers);
        let runtime = layered(set("runtime"), args.runtime.clone(), file.runtime);
        let shim = layered_opt(set("shim"), args.shim.clone(), file.shim);
        let log_level = layered(set("log_level"), args.log_level.clone(), file.log_level);
        let body_limit = layered(set("body_limit"), args.body_limit, file.body_limit);
        let max_queued = layered(set("max_queued"), args.max_queued, file.max_queued);
        let header_timeout = layered(
            set("header_timeout"),
            args.header_timeout,
            file.header_timeout,
        );
        let body_timeout = layered(set("body_timeout"), args.body_timeout, file.body_timeout);
        let start_timeout = layered(set("start_timeout"), args.start_timeout, file.start_timeout);
        let images_root = layered(
            set("images_root"),
            args.images_root.clone(),
            file.images_root,
        );
        let insecure_registries = layered(
            set("insecure_registries"),
            args.insecure_registries.clone(),
            file.insecure_registries,
        );
        let registry_auth = read_registry_auth(&file.registries)?;
        let network_root = layered(
            set("network_root"),
            args.network_root.clone(),
            file.network_root,
        );
        let default_network = layered(
            set("default_network"),
            args.default_network.clone(),
            file.default_network,
        );
        let default_subnet = layered_opt(
            set("default_subnet"),
            args.default_subnet.clone(),
            file.default_subnet,
        );
        let cni_conf_dir = layered(
            set("cni_conf_dir"),
            args.cni_conf_dir.clone(),
            file.cni_conf_dir,
        );
        let cni_plugin_dirs = layered(
            set("cni_plugin_dirs"),
            args.cni_plugin_dirs.clone(),
            file.cni_plugin_dirs,
        );
        let cni_timeout = layered(set("cni_timeout"), args.cni_timeout, file.cni_timeout);
        let registry_timeout = layered(
            set("registry_timeout"),
            args.registry_timeout,
            file.registry_timeout,
        );

        // The token: from --token/BERTH_TOKEN, or read from a token file named by a
        // flag, the environment or the config file; the higher source wins.
        let token_source = args.token.as_ref().map(|_| source("token"));
        let file_source = match (&args.token_file, &file.token_file) {
            (Some(p), _) => Some((source("token_file"), p.clone())),
            (None, Some(p)) => Some((Source::File, p.clone())),
            (None, None) => None,
        };
        let token = match (token_source, file_source) {
            (Some(a), Some((b, _))) if a == b => {
                return Err(ConfigError::invalid(
                    "--token",
                    "give the token or a token file, not both",
                ))
            }
            (Some(a), Some((b, path))) if b > a => Some(read_token(&path)?),
            (Some(_), _) => Some(
                Token::new(args.token.as_deref().unwrap_or_default())
                    .map_err(|m| ConfigError::invalid("--token", m.to_string()))?,
            ),
            (None, Some((_, path))) => Some(read_token(&path)?),
            (None, None) => None,
        };

        check_range("--workers", workers, 1, 4096)?;
        check_range("--body-limit", body_limit, 1, 1 << 30)?;
        check_range("--max-queued", max_queued, 1, 1 << 24)?;
        let seconds = |setting, secs: u64| {
            check_range(setting, secs as usize, 1, 86_400).map(|()| Duration::from_secs(secs))
        };
        let header_timeout = seconds("--header-timeout", header_timeout)?;
        let body_timeout = seconds("--body-timeout", body_timeout)?;
        let start_timeout = seconds("--start-timeout", start_timeout)?;
        let registry_timeout = seconds("--registry-timeout", registry_timeout)?;
        let cni_timeout = seconds("--cni-timeout", cni_timeout)?;
        let default_network: berth_network::NetworkMode = default_network
            .parse()
            .map_err(|e: String| ConfigError::invalid("--default-network", e))?;
        if matches!(default_network, berth_network::NetworkMode::Container(_)) {
            return Err(ConfigError::invalid(
                "--default-network",
                "a network's name, none or host (not container:)",
            ));
        }
        let default_subnet =
            match default_subnet {
                None => None,
                Some(text) => Some(text.parse::<ipnet::Ipv4Net>().map_err(|e| {
                    ConfigError::invalid("--default-subnet", format!("{text:?}: {e}"))
                })?),
            };
        if let (Some(addr), None) = (tcp, &token) {
            check_unauthenticated_tcp(addr, tcp_insecure)?;
        }
        let runtime = match runtime.as_str() {
            "builtin" => None,
            path => {
                let p = PathBuf::from(path);
                if !p.is_absolute() || !p.is_file() {
                    return Err(ConfigError::invalid(
                        "--runtime",
                        format!(
                            "{path}: expected `builtin` or the absolute path of a runtime binary"
                        ),
                    ));
                }
                Some(p)
            }
        };
        let shim = match shim {
            Some(p) => p,
            None => std::env::current_exe()
                .map_err(|e| ConfigError::invalid("--shim", format!("cannot find berthd: {e}")))?
                .with_file_name("berth-shim"),
        };
        if !shim.is_file() {
            return Err(ConfigError::invalid(
                "--shim",
                format!(
                    "{} not found (build berth-shim or pass --shim PATH)",
                    shim.display()
                ),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            return Err(ConfigError::invalid(
                "--log-level",
                format!("{log_level:?}: {e}"),
            ));
        }
        Ok(Config {
            socket,
            tcp,
            token,
            tcp_insecure,
            state_dir,
            workers,
            runtime,
            shim,
            log_level,
            body_limit,
            max_queued,
            header_timeout,
            body_timeout,
            start_timeout,
            images_root,
            insecure_registries,
            registry_auth,
            registry_timeout,
            network_root,
            default_network,
            default_subnet,
            cni_conf_dir,
            cni_plugin_dirs,
            cni_timeout,
        })
    }
}

/// The registry credentials of the configuration file, passwords read from their files.
fn read_registry_auth(
    auths: &std::collections::BTreeMap<String, RegistryAuth>,
) -> Result<std::collections::BTreeMap<String, (String, String)>, ConfigError> {
    auths
        .iter()
        .map(|(host, auth)| {
            let password = std::fs::read_to_string(&auth.password_file).map_err(|e| {
                ConfigError::invalid(
                    "registries",
                    format!(
                        "{host}: password_file {}: {e}",
                        auth.password_file.display()
                    ),
                )
            })?;
            let password = password.trim_end_matches(['\n', '\r']).to_owned();
            Ok((host.clone(), (auth.username.clone(), password)))
        })
        .collect()
}

/// The flag's or environment's value when one was given (`explicit`), else the file's,
/// else clap's default (which `cli` then holds).
fn layered<T>(explicit: bool, cli: T, file: Option<T>) -> T {
    match file {
        Some(value) if !explicit => value,
        _ => cli,
    }
}

/// [`layered`] for a setting without a default.
fn layered_opt<T>(explicit: bool, cli: Option<T>, file: Option<T>) -> Option<T> {
    if explicit {
        cli
    } else {
        file.or(cli)
    }
}

/// Read and decode the configuration file.
fn read_file(path: &Path) -> Result<File, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: one_line(&text, &e),
    })
}

/// A TOML error as one line: `line N: message` (toml's own rendering spans lines).
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let key = key_at(text, span.start);
            match key {
                Some(key) if !message.contains(&key) => format!("line {line}: {key}: {message}"),
                _ => format!("line {line}: {message}"),
            }
        }
        None => message,
    }
}

/// The key of the `key = value` line around byte `at`, if it is one.
fn key_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#') && !key.starts_with('[')).then(|| key.to_owned())
}

/// A TCP listener without a token: refused unless the address is loopback and the
/// operator said, with --tcp-insecure, that every local user may use it.
fn check_unauthenticated_tcp(addr: SocketAddr, insecure: bool) -> Result<(), ConfigError> {
    let message = if !addr.ip().is_loopback() {
        format!("{addr} is not a loopback address: configure a token (--token-file, BERTH_TOKEN_FILE or token_file) to listen there")
    } else if !insecure {
        format!("{addr} without a token lets every local user run containers as root: configure a token (--token-file, BERTH_TOKEN_FILE or token_file), or accept that with --tcp-insecure")
    } else {
        return Ok(());
    };
    Err(ConfigError::invalid("--tcp", message))
}

/// Read the token file: its content without surrounding whitespace (a trailing newline).
fn read_token(path: &Path) -> Result<Token, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid("--token-file", format!("{}: {e}", path.display())))?;
    Token::new(text.trim())
        .map_err(|m| ConfigError::invalid("--token-file", format!("{}: {m}", path.display())))
}

/// `value` must lie in `min..=max`.
fn check_range(
    setting: &'static str,
    value: usize,
    min: usize,
    max: usize,
) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            setting,
            format!("{value} is out of range {min}–{max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<File, String> {
        toml::from_str::<File>(text).map_err(|e| one_line(text, &e))
    }

    #[test]
    fn file_errors_name_line_and_key() {
        let e = parse("workers = 3\nwokers = 4\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("wokers"), "{e}");
        let e = parse("workers = \"ten\"\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("workers"), "{e}");
        let e = parse("tcp = \"localhost\"\n").unwrap_err();
        assert!(e.contains("tcp"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(parse("workers = 3\ntcp = \"127.0.0.1:2375\"\ntcp_insecure = true\n").is_ok());
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../berthd.example.toml");
        let file = parse(text).unwrap();
        assert!(file.socket.is_some() && file.workers.is_some());
    }

    #[test]
    fn ranges() {
        assert!(check_range("--workers", 0, 1, 10).is_err());
        assert!(check_range("--workers", 10, 1, 10).is_ok());
    }
}
