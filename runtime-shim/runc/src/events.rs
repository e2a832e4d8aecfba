//! `events`: the container's statistics (`--stats`: once) and OOM kills as JSON lines,
//! one object per line shaped as runc's: `{"type": "stats"|"oom", "id": …, "data": …}`.

use std::time::{Duration, Instant};

use berth_runtime::{Container, Error, Status};
use serde_json::json;

/// How often OOM kills are looked for between stats.
const OOM_CHECK: Duration = Duration::from_millis(250);

/// The flags of `events`.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Print the statistics once and exit.
    #[arg(long)]
    stats: bool,
    /// Time between stats events (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// The container id.
    pub id: String,
}

/// Run `events`; returns when the container stops (or at once with `--stats`).
pub fn events(root: &std::path::Path, args: &EventsArgs) -> Result<(), Error> {
    let c = Container::load(root, &args.id)?;
    let stats_event = |c: &Container| -> Result<String, Error> {
        Ok(json!({ "type": "stats", "id": c.id(), "data": c.stats()? }).to_string())
    };
    if args.stats {
        println!("{}", stats_event(&c)?);
        return Ok(());
    }
    let mut ooms = c.record().cgroup.oom_kill_count().unwrap_or(0);
    let mut next_stats = Instant::now();
    while c.status() != Status::Stopped {
        if Instant::now() >= next_stats {
            println!("{}", stats_event(&c)?);
            next_stats += args.interval;
        }
        let now = c.record().cgroup.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            println!("{}", json!({ "type": "oom", "id": c.id() }));
            ooms = now;
        }
        std::thread::sleep(OOM_CHECK.min(args.interval));
    }
    Ok(())
}
