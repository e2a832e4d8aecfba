//! Per-container cgroup metrics, named as cAdvisor names them, for every running or
//! paused container: read straight from cgroupfs at scrape time.
//!
//! Where a container's cgroup lives is in its engine record (its shim reported the
//! directories when it created the container, whichever runtime made it), so a scrape
//! costs a handful of small reads per container and no lookup. Reading files is safe in
//! the multithreaded daemon; nothing here forks.

use std::io;
use std::path::{Path, PathBuf};

use berth_engine::CgroupDirs;
use berth_engine::{Engine, State};

use super::{Family, Kind};

/// Above this a memory limit means "none" (v1 writes its page-counter maximum, about
/// 2^63, for an unlimited cgroup).
const UNLIMITED: u64 = 1 << 62;

/// The cgroup files one container's metrics come from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Files {
    cpu: Option<Cpu>,
    memory: Option<Memory>,
    /// `pids.current`.
    pids: Option<PathBuf>,
}

/// Where the cumulative CPU time is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cpu {
    /// v1 `cpuacct.usage`: nanoseconds.
    Nanos(PathBuf),
    /// v2 `cpu.stat`: the `usage_usec` line.
    Stat(PathBuf),
}

/// The memory controller's files, v1 or v2.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Memory {
    /// `memory.usage_in_bytes` / `memory.current`.
    usage: PathBuf,
    /// `memory.max_usage_in_bytes` / `memory.peak` (kernel 5.19+).
    max_usage: PathBuf,
    /// `memory.limit_in_bytes` / `memory.max` (`max`: no limit).
    limit: PathBuf,
}

impl Files {
    /// The files of a container's cgroup directories: its v1 hierarchies, or on a host
    /// without them its cgroup2 directory.
    fn of(dirs: &CgroupDirs) -> Option<Self> {
        if dirs.v1.is_empty() {
            return dirs.v2.as_deref().map(Files::v2);
        }
        Some(Files::v1(|name| dirs.v1.get(name).map(PathBuf::as_path)))
    }

    /// cgroup v1: each controller's directory, as `dir` finds it.
    fn v1<'a>(dir: impl Fn(&str) -> Option<&'a Path>) -> Self {
        Files {
            cpu: dir("cpuacct").map(|d| Cpu::Nanos(d.join("cpuacct.usage"))),
            memory: dir("memory").map(|d| Memory {
                usage: d.join("memory.usage_in_bytes"),
                max_usage: d.join("memory.max_usage_in_bytes"),
                limit: d.join("memory.limit_in_bytes"),
            }),
            pids: dir("pids").map(|d| d.join("pids.current")),
        }
    }

    /// cgroup v2: one directory holds every controller's files.
    fn v2(d: &Path) -> Self {
        Files {
            cpu: Some(Cpu::Stat(d.join("cpu.stat"))),
            memory: Some(Memory {
                usage: d.join("memory.current"),
                max_usage: d.join("memory.peak"),
                limit: d.join("memory.max"),
            }),
            pids: Some(d.join("pids.current")),
        }
    }

    /// Read the usage now. A controller whose file is missing is left out; a cgroup
    /// that is gone altogether (the container just exited) is an error.
    fn read(&self) -> io::Result<Usage> {
        let mut usage = Usage::default();
        let mut found = false;
        if let Some(cpu) = &self.cpu {
            usage.cpu_seconds = match cpu {
                Cpu::Nanos(path) => optional(read_u64(path))?.map(|ns| ns as f64 / 1e9),
                Cpu::Stat(path) => optional(keyed(path, "usage_usec"))?.map(|us| us as f64 / 1e6),
            };
            found |= usage.cpu_seconds.is_some();
        }
        if let Some(memory) = &self.memory {
            usage.memory_bytes = optional(read_u64(&memory.usage))?;
            usage.memory_max_bytes = optional(read_u64(&memory.max_usage))?;
            usage.memory_limit_bytes = match optional(std::fs::read_to_string(&memory.limit))? {
                Some(text) if text.trim() == "max" => Some(0),
                Some(text) => Some(parse_u64(&memory.limit, &text)?).map(|limit| {
                    if limit >= UNLIMITED {
                        0
                    } else {
                        limit
                    }
                }),
                None => None,
            };
            found |= usage.memory_bytes.is_some();
        }
        if let Some(pids) = &self.pids {
            usage.pids = optional(read_u64(pids))?;
            found |= usage.pids.is_some();
        }
        if found {
            Ok(usage)
        } else {
            Err(io::ErrorKind::NotFound.into())
        }
    }
}

/// One container's usage; `None` where the controller is not there.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Usage {
    /// Cumulative CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Memory in use (cache included), in bytes.
    pub memory_bytes: Option<u64>,
    /// The most memory ever in use, in bytes.
    pub memory_max_bytes: Option<u64>,
    /// The memory limit in bytes; 0 for none.
    pub memory_limit_bytes: Option<u64>,
    /// Processes and threads in the cgroup.
    pub pids: Option<u64>,
}

/// The usage of every running or paused container of `engine` whose cgroup is known,
/// sorted by id. A deleted container is no longer listed, so its series go with it.
pub fn collect(engine: &Engine) -> Vec<(String, Usage)> {
    let mut live: Vec<(String, Files)> = engine
        .list()
        .into_iter()
        .filter(|r| matches!(r.state, State::Running | State::Paused))
        .filter_map(|r| Some((r.id, Files::of(r.cgroups.as_ref()?)?)))
        .collect();
    live.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(live.len());
    for (id, files) in live {
        match files.read() {
            Ok(usage) => out.push((id, usage)),
            // The container exited between the listing and the read.
            Err(e) => tracing::debug!(container = %id, "cgroup metrics: {e}"),
        }
    }
    out
}

/// How a family's value is taken from a container's usage.
type Value = fn(&Usage) -> Option<f64>;

/// Append the `container_*` families for `usage` to `out`. Families with no sample are
/// left out entirely.
pub fn render(usage: &[(String, Usage)], out: &mut String) {
    let families: [(&'static str, Kind, &str, Value); 5] = [
        (
            "container_cpu_usage_seconds_total",
            Kind::Counter,
            "Cumulative CPU time consumed by the container, in seconds.",
            |u| u.cpu_seconds,
        ),
        (
            "container_memory_usage_bytes",
            Kind::Gauge,
            "Memory in use by the container, page cache included, in bytes.",
            |u| u.memory_bytes.map(|v| v as f64),
        ),
        (
            "container_memory_max_usage_bytes",
            Kind::Gauge,
            "Most memory the container has used, in bytes.",
            |u| u.memory_max_bytes.map(|v| v as f64),
        ),
        (
            "container_spec_memory_limit_bytes",
            Kind::Gauge,
            "Memory limit of the container, in bytes (0: none).",
            |u| u.memory_limit_bytes.map(|v| v as f64),
        ),
        (
            "container_pids",
            Kind::Gauge,
            "Processes and threads in the container's cgroup.",
            |u| u.pids.map(|v| v as f64),
        ),
    ];
    for (name, kind, help, value) in families {
        if !usage.iter().any(|(_, u)| value(u).is_some()) {
            continue;
        }
        let mut family = Family::new(out, name, kind, help);
        for (id, u) in usage {
            if let Some(v) = value(u) {
                family.labelled(&[("id", id)], v);
            }
        }
    }
}

/// `Ok(None)` for a file that does not exist (a controller or kernel without it).
fn optional<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_u64(path: &Path) -> io::Result<u64> {
    parse_u64(path, &std::fs::read_to_string(path)?)
}

fn parse_u64(path: &Path, text: &str) -> io::Result<u64> {
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {:?}", path.display(), text.trim()),
        )
    })
}

/// The value of `key` in a flat-keyed file such as `cpu.stat`.
fn keyed(path: &Path, key: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: no {key} line", path.display()),
            )
        })?;
    parse_u64(path, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-scrape-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_v1_and_v2_files() {
        let dir = scratch("files");
        let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        w("cpuacct.usage", "1500000000\n");
        w("memory.usage_in_bytes", "4096\n");
        w("memory.limit_in_bytes", "9223372036854771712\n");
        w("pids.current", "2\n");
        let v1 = Files {
            cpu: Some(Cpu::Nanos(dir.join("cpuacct.usage"))),
            memory: Some(Memory {
                usage: dir.join("memory.usage_in_bytes"),
                max_usage: dir.join("memory.max_usage_in_bytes"),
                limit: dir.join("memory.limit_in_bytes"),
            }),
            pids: Some(dir.join("pids.current")),
        };
        let u = v1.read().unwrap();
        assert_eq!(u.cpu_seconds, Some(1.5));
        assert_eq!(u.memory_bytes, Some(4096));
        assert_eq!(u.memory_max_bytes, None);
        assert_eq!(u.memory_limit_bytes, Some(0));
        assert_eq!(u.pids, Some(2));

        w("cpu.stat", "usage_usec 2500000\nuser_usec 1\n");
        w("memory.max", "max\n");
        let v2 = Files {
            cpu: Some(Cpu::Stat(dir.join("cpu.stat"))),
            memory: Some(Memory {
                usage: dir.join("memory.usage_in_bytes"),
                max_usage: dir.join("memory.peak"),
                limit: dir.join("memory.max"),
            }),
            pids: None,
        };
        let u = v2.read().unwrap();
        assert_eq!(u.cpu_seconds, Some(2.5));
        assert_eq!(u.memory_limit_bytes, Some(0));

        std::fs::remove_dir_all(&dir).unwrap();
        assert!(v1.read().is_err(), "a cgroup that is gone is an error");
    }

    #[test]
    fn renders_only_families_with_samples() {
        let mut out = String::new();
        let usage = Usage {
            pids: Some(1),
            cpu_seconds: Some(0.25),
            ..Usage::default()
        };
        render(&[("c1".into(), usage)], &mut out);
        assert!(
            out.contains("container_cpu_usage_seconds_total{id=\"c1\"} 0.25\n"),
            "{out}"
        );
        assert!(out.contains("container_pids{id=\"c1\"} 1\n"), "{out}");
        assert!(!out.contains("memory"), "{out}");
        let mut empty = String::new();
        render(&[], &mut empty);
        assert!(empty.is_empty());
    }
}
