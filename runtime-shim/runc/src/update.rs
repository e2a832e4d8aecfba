//! `update`: new resource limits for a live container, from a JSON file (`-r FILE`, `-`
//! for stdin, the runtime-spec `linux.resources` object) or from flags, as runc.

use std::io::Read;
use std::path::PathBuf;

use berth_runtime::{Container, Error};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

/// The flags of `update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// A JSON file of resources (linux.resources), `-` for stdin.
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long)]
    memory: Option<i64>,
    /// Memory soft limit in bytes.
    #[arg(long)]
    memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// CPU shares (relative weight); runc spells it --cpu-share.
    #[arg(long)]
    cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPUs to run on (cpuset).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use (cpuset).
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of pids (-1 or 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block IO weight (10 to 1000).
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// The container id.
    pub id: String,
}

impl UpdateArgs {
    /// The resources asked for: the file's, with any flags laid over it.
    fn resources(&self) -> Result<LinuxResources, Error> {
        let mut r = match &self.resources {
            Some(path) => {
                let mut text = Vec::new();
                let read = if path.as_os_str() == "-" {
                    std::io::stdin().read_to_end(&mut text)
                } else {
                    std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut text))
                };
                read.map_err(|e| Error::io("read resources", path, e))?;
                serde_json::from_slice(&text).map_err(|e| Error::Config {
                    path: path.clone(),
                    reason: format!("invalid resources JSON: {e}"),
                })?
            }
            None => LinuxResources::default(),
        };
        if self.memory.is_some() || self.memory_reservation.is_some() || self.memory_swap.is_some()
        {
            let mut m = r.memory().unwrap_or_else(LinuxMemory::default);
            if let Some(v) = self.memory {
                m.set_limit(Some(v));
            }
            if let Some(v) = self.memory_reservation {
                m.set_reservation(Some(v));
            }
            if let Some(v) = self.memory_swap {
                m.set_swap(Some(v));
            }
            r.set_memory(Some(m));
        }
        let cpu_flags = self.cpu_share.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_period.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some();
        if cpu_flags {
            let mut c = r.cpu().clone().unwrap_or_else(LinuxCpu::default);
            if let Some(v) = self.cpu_share {
                c.set_shares(Some(v));
            }
            if let Some(v) = self.cpu_quota {
                c.set_quota(Some(v));
            }
            if let Some(v) = self.cpu_period {
                c.set_period(Some(v));
            }
            if let Some(v) = &self.cpuset_cpus {
                c.set_cpus(Some(v.clone()));
            }
            if let Some(v) = &self.cpuset_mems {
                c.set_mems(Some(v.clone()));
            }
            r.set_cpu(Some(c));
        }
        if let Some(limit) = self.pids_limit {
            let mut p = LinuxPids::default();
            p.set_limit(limit);
            r.set_pids(Some(p));
        }
        if let Some(weight) = self.blkio_weight {
            let mut b = r.block_io().clone().unwrap_or_else(LinuxBlockIo::default);
            b.set_weight(Some(weight));
            r.set_block_io(Some(b));
        }
        Ok(r)
    }
}

/// Run `update`.
pub fn update(root: &std::path::Path, args: &UpdateArgs) -> Result<(), Error> {
    let resources = args.resources()?;
    Container::load(root, &args.id)?.update(&resources)
}
