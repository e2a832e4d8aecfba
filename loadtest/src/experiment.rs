//! One run of the experiment, start to finish: a daemon (its own or `--host`), the
//! burst, the measurements, `--check`, and the cleanup — which happens whatever went
//! wrong before it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use crate::binaries::Binaries;
use crate::bundle::CreateTemplate;
use crate::burst::{self, Plan};
use crate::cleanup;
use crate::client::Conn;
use crate::daemon::{Daemon, DaemonConfig};
use crate::error::{Error, Result};
use crate::netns::RunNetns;
use crate::report::{Cpu, Memory, RunReport, Settings};
use crate::shim_memory;
use crate::{api, check, events, network, procfs};

/// Everything the runs share.
pub struct Context {
    /// The binaries (own daemon only).
    pub bins: Option<Binaries>,
    /// The scratch directory.
    pub tmp: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// The spec every container runs.
    pub spec: Value,
    /// `--host` socket.
    pub host: Option<PathBuf>,
    /// Options.
    pub args: crate::cli::Args,
    /// Set to the signal's name on SIGINT/SIGTERM.
    pub cancel: watch::Receiver<Option<&'static str>>,
    /// How to show the burst's progress.
    pub progress: crate::progress::Mode,
    /// The end of the time allowed for all runs.
    pub deadline: Instant,
}

/// A short random run id.
fn run_id() -> String {
    format!("{:06x}", fastrand::u32(..0x100_0000))
}

/// Run the burst once; the report holds its failures and what cleanup left.
pub async fn run(ctx: &Context, index: usize) -> Result<RunReport> {
    let run = run_id();
    let prefix = format!("lt-{run}-");
    let cgroup_parent = format!("/berth-lt-{run}");
    let args = &ctx.args;

    let run_dir = ctx.tmp.join(format!("run-{index}"));
    // --network: a namespace of the run's own, for its berthd and all it makes.
    let mut netns = match &args.network {
        Some(_) => {
            std::fs::create_dir_all(&run_dir).map_err(|e| Error::io("creating", &run_dir, e))?;
            Some(RunNetns::new(&run_dir.join("netns"))?)
        }
        None => None,
    };
    let mut daemon = match (&ctx.host, &ctx.bins) {
        (Some(_), _) => None,
        (None, Some(bins)) => {
            let cni_conf_dir = match &args.cni_conf_dir {
                Some(dir) => dir.clone(),
                None => run_dir.join("cni"),
            };
            let cfg = DaemonConfig {
                workers: args.workers,
                runtime: args.runtime.clone(),
                max_queued: args.containers.max(65_536),
                // A batch of inline specs is large; single creates fit the default.
                body_limit: (args.batch.unwrap_or(1) * (16 << 10)).max(1 << 20),
                // Shared by the runs: the image is downloaded by the first one only.
                images_root: Some(ctx.tmp.join("images")),
                network_root: run_dir.join("network"),
                cni_conf_dir,
                netns: netns.as_ref().map(|n| n.path().to_path_buf()),
            };
            Some(Daemon::start(bins, &run_dir.join("daemon"), &cfg)?)
        }
        (None, None) => return Err(Error::Binaries("no daemon to run against".into())),
    };
    let socket = match (&ctx.host, &daemon) {
        (Some(h), _) => h.clone(),
        (None, Some(d)) => d.socket.clone(),
        (None, None) => unreachable!("a daemon was started above"),
    };
    let per_request_runtime =
        (ctx.host.is_some() && args.runtime != "builtin").then(|| PathBuf::from(&args.runtime));
    let plan = Arc::new(Plan {
        socket: socket.clone(),
        prefix: prefix.clone(),
        cgroup_parent: cgroup_parent.clone(),
        containers: args.containers,
        concurrency: args.concurrency,
        batch: args.batch,
        template: match &args.image {
            Some(image) => CreateTemplate::image(
                image,
                &ctx.spec["process"]["args"],
                per_request_runtime.as_deref(),
            ),
            None => CreateTemplate::new(&ctx.spec, &ctx.rootfs, per_request_runtime.as_deref()),
        },
    });
    let plan = match &args.network {
        Some(network) => {
            let mut plan = Arc::into_inner(plan).expect("the plan is not shared yet");
            plan.template = plan.template.on_network(network, args.publish);
            Arc::new(plan)
        }
        None => plan,
    };
    let settings = Settings {
        concurrency: args.concurrency,
        workers: daemon.is_some().then_some(args.workers),
        runtime: args.runtime.clone(),
        batch: args.batch,
        daemon: match &ctx.host {
            Some(h) => h.display().to_string(),
            None => "own".into(),
        },
        image: args.image.clone(),
        network: args.network.clone(),
        published: args.network.is_some() && args.publish,
    };

    let result = match &args.network {
        Some(network) => network::prepare(&socket, network).await,
        None => Ok(()),
    };
    let result = match result {
        Ok(()) => measure(ctx, &plan, &mut daemon, settings).await,
        Err(e) => Err(e),
    };
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            // Nothing to report, but still everything to clean.
            let (cleaned, left) = take_down(ctx, &plan, &mut daemon, &mut netns, &run_dir).await;
            eprintln!(
                "berth-loadtest: run {} stopped: {e}; deleted {} container(s){}; {}",
                plan.run(),
                cleaned.deleted,
                if cleaned.errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", cleaned.errors.join("; "))
                },
                if left.is_empty() {
                    "nothing left behind".to_owned()
                } else {
                    format!("LEFT BEHIND: {}", left.join("; "))
                }
            );
            return Err(e);
        }
    };
    if args.keep {
        report.kept = true;
        print_keep(&plan, daemon.as_mut(), &ctx.tmp, netns.take());
        return Ok(report);
    }
    let (cleaned, left) = take_down(ctx, &plan, &mut daemon, &mut netns, &run_dir).await;
    report.cleanup = cleaned;
    report.left_behind = left;
    Ok(report)
}

/// The burst and everything measured about it.
async fn measure(
    ctx: &Context,
    plan: &Arc<Plan>,
    daemon: &mut Option<Daemon>,
    settings: Settings,
) -> Result<RunReport> {
    if let Some(image) = &ctx.args.image {
        // Up front, not timed: the burst measures starts from an image already here.
        let id = api::pull(&mut Conn::new(&plan.socket), image).await?;
        if !ctx.args.json {
            eprintln!("berth-loadtest: pulled {image} (id {id})");
        }
    }
    let follower = events::follow(&plan.socket, &plan.prefix).await?;
    let daemon_pid = daemon
        .as_ref()
        .and_then(Daemon::pid)
        .or(follower.daemon_pid);
    let cpu0 = (
        daemon_pid.and_then(procfs::cpu_time),
        procfs::machine_cpu(),
        procfs::own_cpu(),
    );
    let mut gone = || daemon.as_mut().and_then(Daemon::exited);
    let outcome = burst::run(
        Arc::clone(plan),
        follower,
        ctx.deadline,
        ctx.cancel.clone(),
        &mut gone,
        ctx.progress,
    )
    .await;
    let cpu1 = (
        daemon_pid.and_then(procfs::cpu_time),
        procfs::machine_cpu(),
        procfs::own_cpu(),
    );
    let shims = shim_memory::measure(&plan.prefix);
    let berthd_peak = daemon_pid.and_then(|p| procfs::status_kb(p, "VmHWM"));

    let mut outcome = outcome;
    if let Some(e @ (Error::Daemon(_) | Error::Interrupted(_))) = outcome.stopped_by.take() {
        // A dead daemon has no records to read; an interrupted run reports nothing.
        return Err(e);
    }
    let mut conn = Conn::new(&plan.socket);
    let records = api::records(&mut conn, &plan.prefix).await?;
    let mut report = RunReport::new(plan.run(), &outcome, &records, &plan.prefix, settings);
    report.memory = Memory {
        berthd_peak_bytes: berthd_peak,
        shims_peak_total_bytes: shims.rss,
        shims_peak_private_bytes: shims.private,
        shims_peak_count: shims.shims,
        per_shim_private_bytes: (shims.shims > 0).then(|| shims.private / shims.shims as u64),
    };
    let secs = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?).as_secs_f64());
    report.cpu = Cpu {
        berthd_seconds: secs(cpu0.0, cpu1.0),
        machine_busy_seconds: secs(cpu0.1.map(|c| c.0), cpu1.1.map(|c| c.0)).unwrap_or(0.0),
        machine_total_seconds: secs(cpu0.1.map(|c| c.1), cpu1.1.map(|c| c.1)).unwrap_or(0.0),
        harness_seconds: cpu1.2.saturating_sub(cpu0.2).as_secs_f64(),
    };
    if ctx.args.check > 0 {
        let mut running: Vec<(String, i32)> = outcome
            .tracks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((plan.id(i), t.pid.filter(|_| t.running.is_some())?)))
            .collect();
        fastrand::shuffle(&mut running);
        for (id, pid) in running.iter().take(ctx.args.check) {
            report.checked += 1;
            if let Err(e) = check::container(id, *pid) {
                report.check_errors.push(e);
            }
        }
        if report.checked < ctx.args.check {
            report.check_errors.push(format!(
                "asked to check {}, only {} running with a known pid",
                ctx.args.check, report.checked
            ));
        }
    }
    Ok(report)
}

/// Delete the run's containers (or kill them if the daemon is gone), stop the own
/// daemon, remove the cgroups and the run's network namespace; returns what was done
/// and what is left.
async fn take_down(
    ctx: &Context,
    plan: &Plan,
    daemon: &mut Option<Daemon>,
    netns: &mut Option<RunNetns>,
    run_dir: &Path,
) -> (cleanup::Cleaned, Vec<String>) {
    // Cleanup gets its own time, even after a timed-out run.
    let deadline = Instant::now() + Duration::from_secs(60 + plan.containers as u64 / 10);
    let alive = daemon.as_mut().is_none_or(|d| d.exited().is_none());
    let mut cleaned = if alive {
        cleanup::delete_all(&plan.socket, &plan.prefix, plan.concurrency, deadline).await
    } else {
        cleanup::Cleaned {
            errors: vec!["the daemon is gone: killing its containers instead".into()],
            ..Default::default()
        }
    };
    // Before the daemon stops: its state directory (a tmpfs of its own) goes with it.
    let mut left = daemon
        .as_ref()
        .map(|d| cleanup::network_state_leftovers(&d.state_dir))
        .unwrap_or_default();
    if let Some(d) = daemon.as_mut() {
        if let Some(how) = d.stop() {
            if !how.contains("exit status: 0") && alive {
                cleaned.errors.push(format!("berthd stopped: {how}"));
            }
        }
    }
    // Whatever the API could not remove.
    if !procfs::shims_of(&plan.prefix).is_empty() || !cleaned.errors.is_empty() {
        cleanup::kill_leftovers(&plan.prefix, &plan.cgroup_parent);
    }
    cleanup::remove_cgroups(&plan.cgroup_parent);
    if let Some(dir) = daemon_dir(daemon) {
        cleanup::unmount_under(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Some(ns) = netns.take() {
        left.extend(ns.leftovers(&plan.prefix));
        if let Err(e) = ns.remove() {
            left.push(format!("the run's network namespace: {e}"));
        }
    }
    if run_dir.exists() {
        cleanup::unmount_under(run_dir);
        let _ = std::fs::remove_dir_all(run_dir);
    }
    left.extend(cleanup::leftovers(
        &plan.prefix,
        &plan.cgroup_parent,
        Some(&ctx.tmp),
    ));
    (cleaned, left)
}

fn daemon_dir(daemon: &Option<Daemon>) -> Option<PathBuf> {
    daemon
        .as_ref()
        .and_then(|d| d.socket.parent().map(Path::to_path_buf))
}

/// `--keep`: leave everything running and say how to take it down.
fn print_keep(plan: &Plan, daemon: Option<&mut Daemon>, tmp: &Path, netns: Option<RunNetns>) {
    let sock = plan.socket.display();
    eprintln!(
        "berth-loadtest: --keep: containers {}0..{} left running",
        plan.prefix,
        plan.containers - 1
    );
    eprintln!("  list:     curl -s --unix-socket {sock} http://berth/v1/containers");
    eprintln!(
        "  delete:   curl -s --unix-socket {sock} http://berth/v1/containers | grep -o '\"id\":\"{}[0-9]*' | cut -d'\"' -f4 | sort -u \\\n            | xargs -P 20 -I{{}} curl -s -X DELETE --unix-socket {sock} 'http://berth/v1/containers/{{}}?force=true'",
        plan.prefix
    );
    if let Some(d) = daemon {
        if let Some(pid) = d.detach() {
            eprintln!("  then:     kill -TERM {pid}   # its berthd");
        }
        eprintln!(
            "  and:      sleep 1; for d in /sys/fs/cgroup/*{}; do rmdir $d; done; rm -rf {}",
            plan.cgroup_parent,
            tmp.display()
        );
    }
    if let Some(ns) = netns {
        let path = ns.path().display().to_string();
        // Kept mounted: the daemon and its containers' networks live in it.
        std::mem::forget(ns);
        eprintln!("  network:  nsenter --net={path} ip addr   # the run's namespace");
        eprintln!("  finally:  umount {path}   # before the rm -rf");
    }
}
