//! `stats`: containers' cgroup usage, summed up (CPU time, memory against its limit,
//! pids against theirs).

use hyper::Method;
use serde_json::Value;

use super::{container_path, settle, Ctx};
use crate::error::CliError;
use crate::table::Table;

/// Limits at or above this are "no limit" (cgroup v1 shows unlimited as about 2^63).
const UNLIMITED: u64 = 1 << 60;

/// A byte count for humans (`12.3MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// `used / limit`, or just `used` without a limit.
fn against(used: String, limit: u64, show: impl Fn(u64) -> String) -> String {
    if limit == 0 || limit >= UNLIMITED {
        used
    } else {
        format!("{used} / {}", show(limit))
    }
}

/// The table row of one container's stats (runc's `events --stats` shape).
fn row(id: &str, s: &Value) -> Vec<String> {
    let n = |ptr: &str| s.pointer(ptr).and_then(Value::as_u64).unwrap_or(0);
    let cpu = n("/cpu/usage/total") as f64 / 1e9;
    vec![
        id.to_owned(),
        format!("{cpu:.3}s"),
        against(
            bytes(n("/memory/usage/usage")),
            n("/memory/usage/limit"),
            bytes,
        ),
        against(n("/pids/current").to_string(), n("/pids/limit"), |l| {
            l.to_string()
        }),
    ]
}

/// `stats ID…`: one table row per container (`--json`: each answer as it came).
pub async fn stats(ctx: &Ctx, ids: &[String]) -> Result<u8, CliError> {
    let mut status = 0;
    let mut table = Table::new(&["ID", "CPU", "MEMORY", "PIDS"]);
    for id in ids {
        let result = match ctx
            .client
            .json(Method::GET, &container_path(id, "/stats"), None)
            .await
        {
            Ok((raw, _)) if ctx.json => ctx.raw_json(&raw),
            Ok((_, value)) => {
                table.row(row(id, &value));
                Ok(())
            }
            Err(e) => Err(e),
        };
        settle(result, &mut status)?;
    }
    if !ctx.json {
        ctx.out(table.render().as_bytes())?;
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_for_humans() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(1536), "1.5KiB");
        assert_eq!(bytes(3 << 20), "3.0MiB");
        let s = serde_json::json!({
            "cpu": {"usage": {"total": 1_500_000_000u64}},
            "memory": {"usage": {"usage": 2u64 << 20, "limit": 9223372036854771712u64}},
            "pids": {"current": 2, "limit": 100}
        });
        assert_eq!(row("c", &s), ["c", "1.500s", "2.0MiB", "2 / 100"]);
    }
}
