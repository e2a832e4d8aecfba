//! `berth-loadtest`: the burst harness. One command runs the whole experiment against a
//! private berthd (or `--host`): N container creates from C concurrent HTTP clients,
//! followed on the event stream until every container runs, measured, checked, and
//! taken down again.
//!
//! A user of the HTTP API: depends on no engine, API or runtime-library crate, only on the
//! floor-0 helpers berth-procfs and berth-host-rootfs.

mod api;
mod binaries;
mod bundle;
mod burst;
mod check;
mod cleanup;
mod cli;
mod client;
mod daemon;
mod error;
mod events;
mod experiment;
mod netns;
mod network;
mod plot;
mod procfs;
mod progress;
mod report;
mod shim_memory;
mod stats;

use std::time::{Duration, Instant};

use clap::Parser;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::experiment::Context;
use crate::report::RunReport;

fn main() {
    let args = cli::Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("berth-loadtest: {e}");
        std::process::exit(2);
    }
    // One thread: the harness's work is small, and the daemon gets the other cores.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth-loadtest: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        match main_async(args).await {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(e) => {
                eprintln!("berth-loadtest: {e}");
                match e {
                    Error::Usage(_) => 2,
                    Error::Interrupted(_) => 130,
                    _ => 1,
                }
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

/// SIGINT/SIGTERM set the cancel flag (the runs then clean up and stop).
fn watch_signals() -> Result<watch::Receiver<Option<&'static str>>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(None);
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::Usage(format!("cannot handle SIGINT: {e}")))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::Usage(format!("cannot handle SIGTERM: {e}")))?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            eprintln!("\nberth-loadtest: {name}: deleting this run's containers, then stopping");
            let _ = tx.send(Some(name));
        }
    });
    Ok(rx)
}

/// Run the experiment `--repeat` times; `Ok(true)` when every run was clean.
async fn main_async(args: cli::Args) -> Result<bool> {
    let cancel = watch_signals()?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let bins = match &args.host {
        Some(_) => None,
        None => Some(binaries::locate(args.bin_dir.as_deref())?),
    };
    let tmp = tempfile::Builder::new()
        .prefix("berth-loadtest.")
        .tempdir()
        .map_err(|e| Error::io("creating a temp dir in", std::env::temp_dir(), e))?;
    // Containers' users must traverse it to reach the root filesystem.
    let _ = std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    );
    let tmp_path = tmp.path().to_path_buf();
    let bins = match bins {
        Some(b) => Some(b.copy_to(&tmp_path.join("bin"))?),
        None => None,
    };
    let runc = match &bins {
        Some(b) => b.runc.clone(),
        None => binaries::locate(args.bin_dir.as_deref())?.runc,
    };
    let rootfs = bundle::rootfs(&tmp_path)?;
    let spec_dir = tmp_path.join("spec");
    std::fs::create_dir_all(&spec_dir).map_err(|e| Error::io("creating", &spec_dir, e))?;
    let mut spec = bundle::default_spec(&runc, &spec_dir)?;
    if args.docker_defaults {
        spec = bundle::docker_defaults_spec(&spec, &rootfs, &tmp_path.join("etc"))?;
    }
    let progress = progress::Mode::for_stderr(args.json);
    let ctx = Context {
        bins,
        tmp: tmp_path.clone(),
        rootfs,
        spec,
        host: args.host.clone(),
        args,
        cancel,
        progress,
        deadline,
    };

    let mut reports: Vec<RunReport> = Vec::new();
    let mut failure = None;
    for k in 0..ctx.args.repeat {
        if ctx.cancel.borrow().is_some() {
            break;
        }
        match experiment::run(&ctx, k).await {
            Ok(r) => {
                if !ctx.args.json {
                    if ctx.args.repeat > 1 {
                        println!("-- run {} of {}", k + 1, ctx.args.repeat);
                    }
                    print!("{}", r.summary());
                }
                reports.push(r);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if ctx.args.keep {
        let _ = tmp.keep();
    } else {
        drop(tmp);
        if tmp_path.exists() {
            eprintln!("berth-loadtest: could not remove {}", tmp_path.display());
            failure.get_or_insert(Error::Daemon(format!(
                "left behind: {}",
                tmp_path.display()
            )));
        }
    }
    let Some(median) = median_run(&reports) else {
        return Err(failure.unwrap_or(Error::Interrupted("?")));
    };
    if let Some(path) = &ctx.args.plot {
        plot::draw(median, path)?;
    }
    let ok = reports.iter().all(RunReport::ok) && failure.is_none();
    if ctx.args.json {
        let mut v = serde_json::to_value(median).unwrap_or_default();
        v["ok"] = ok.into();
        if reports.len() > 1 {
            v["runs"] = serde_json::to_value(&reports).unwrap_or_default();
            v["median_of"] = reports.len().into();
        }
        println!("{v}");
    } else if reports.len() > 1 {
        let rates: Vec<String> = reports
            .iter()
            .map(|r| format!("{:.1}", r.starts_per_second))
            .collect();
        println!(
            "median of {} runs: {:.1} starts/second (runs: {}); p99 latency {:.1} ms",
            reports.len(),
            median.starts_per_second,
            rates.join(", "),
            median.latency_ms.p99
        );
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(ok)
}

/// The run with the median rate (the lower middle for an even count).
fn median_run(reports: &[RunReport]) -> Option<&RunReport> {
    let mut by_rate: Vec<&RunReport> = reports.iter().collect();
    by_rate.sort_by(|a, b| a.starts_per_second.total_cmp(&b.starts_per_second));
    by_rate.get(by_rate.len().saturating_sub(1) / 2).copied()
}
