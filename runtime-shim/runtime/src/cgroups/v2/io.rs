//! v2 `io` controller: proportional weights (`io.bfq.weight` where BFQ is built in,
//! else `io.weight`) and per-device limits in `io.max`; I/O statistics from `io.stat`.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::blkio::{device_numbers, throttles, wants_leaf_weight};
use crate::cgroups::stats::{BlkioEntry, BlkioStats};
use crate::cgroups::{fs, CgroupError, Controller};

const BFQ_WEIGHT: &str = "io.bfq.weight";
const WEIGHT: &str = "io.weight";
const MAX: &str = "io.max";
const STAT: &str = "io.stat";

/// Writes the weights and `io.max`. The OCI (v1) weight, 10–1000, goes to
/// `io.bfq.weight` as is, or to `io.weight` (1–10000) converted as runc converts it.
/// Leaf weights do not exist in v2 and are refused. Each device's four throttles go in
/// one `io.max` line; a rate of 0 means no limit (`max`), as in v1.
pub(crate) struct Io;

impl Controller for Io {
    const NAME: &'static str = "io";

    fn needed(resources: &LinuxResources) -> bool {
        crate::cgroups::blkio::needed(resources)
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(io) = resources.block_io() else {
            return Ok(());
        };
        let invalid = CgroupError::invalid(Self::NAME, dir);
        let refused = CgroupError::refused(Self::NAME, dir);
        if wants_leaf_weight(io) {
            return Err(invalid(
                "blockIO leaf weights do not exist in cgroup v2 (they were CFQ's, a v1 scheduler)"
                    .to_owned(),
            ));
        }
        // Check every device number before writing anything.
        let mut device_weights = Vec::new();
        for device in io.weight_device().as_deref().unwrap_or_default() {
            let numbers = device_numbers(device.major(), device.minor()).map_err(refused)?;
            if let Some(weight) = device.weight().filter(|w| *w != 0) {
                device_weights.push((numbers, weight));
            }
        }
        let mut limits: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let keys = ["rbps", "wbps", "riops", "wiops"];
        for (key, devices) in keys.into_iter().zip(throttles(io)) {
            for device in devices {
                let numbers = device_numbers(device.major(), device.minor()).map_err(refused)?;
                let rate = match device.rate() {
                    0 => "max".to_owned(),
                    rate => rate.to_string(),
                };
                limits
                    .entry(numbers)
                    .or_default()
                    .push(format!("{key}={rate}"));
            }
        }

        let bfq = fs::read_optional(dir, BFQ_WEIGHT)?;
        if let Some(weight) = io.weight().filter(|w| *w != 0) {
            match bfq {
                Some(_) => fs::write(dir, BFQ_WEIGHT, &weight.to_string())?,
                None => fs::write(dir, WEIGHT, &to_io_weight(weight).to_string())?,
            }
        }
        // Per-device BFQ weights need a kernel whose io.bfq.weight reads "default N".
        let bfq_per_device = bfq.as_deref().is_some_and(|b| b.starts_with("default"));
        for (numbers, weight) in device_weights {
            if bfq_per_device {
                fs::write(dir, BFQ_WEIGHT, &format!("{numbers} {weight}"))?;
            } else {
                fs::write(dir, WEIGHT, &format!("{numbers} {}", to_io_weight(weight)))?;
            }
        }
        for (numbers, settings) in limits {
            fs::write(dir, MAX, &format!("{numbers} {}", settings.join(" ")))?;
        }
        Ok(())
    }
}

/// v1's blkio weight [10, 1000] onto v2's io.weight [1, 10000] (runc's formula).
fn to_io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

/// `io.stat` (`MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` per device) as
/// runc reports it: bytes and operations per device with v1's op names.
pub(crate) fn stats(dir: &Path) -> Result<BlkioStats, CgroupError> {
    let mut stats = BlkioStats::default();
    let Some(text) = fs::read_optional(dir, STAT)? else {
        return Ok(stats);
    };
    let path = dir.join(STAT);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let malformed = || CgroupError::Parse {
            path: path.clone(),
            content: line.to_owned(),
        };
        let (major, minor) = fields
            .next()
            .and_then(|d| d.split_once(':'))
            .ok_or_else(malformed)?;
        let (major, minor) = (fs::parse_u64(&path, major)?, fs::parse_u64(&path, minor)?);
        for field in fields {
            let (key, value) = field.split_once('=').ok_or_else(malformed)?;
            let (list, op) = match key {
                "rbytes" => (&mut stats.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut stats.io_service_bytes_recursive, "Write"),
                "dbytes" => (&mut stats.io_service_bytes_recursive, "Discard"),
                "rios" => (&mut stats.io_serviced_recursive, "Read"),
                "wios" => (&mut stats.io_serviced_recursive, "Write"),
                "dios" => (&mut stats.io_serviced_recursive, "Discard"),
                _ => continue, // cost.*, latency etc. from other io policies
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value: fs::parse_u64(&path, value)?,
            });
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroupfs(bfq: Option<&str>) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(WEIGHT), "default 100").unwrap();
        std::fs::write(tmp.path().join(MAX), "").unwrap();
        if let Some(bfq) = bfq {
            std::fs::write(tmp.path().join(BFQ_WEIGHT), bfq).unwrap();
        }
        tmp
    }

    fn apply_json(tmp: &tempfile::TempDir, json: &str) -> Result<(), CgroupError> {
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Io::apply(tmp.path(), &resources)
    }

    fn value(tmp: &tempfile::TempDir, file: &str) -> String {
        fs::read(tmp.path(), file).unwrap()
    }

    #[test]
    fn weight_formula() {
        assert_eq!(to_io_weight(10), 1);
        assert_eq!(to_io_weight(500), 4950);
        assert_eq!(to_io_weight(1000), 10000);
        assert_eq!(to_io_weight(1), 1, "clamped");
    }

    #[test]
    fn weight_goes_to_io_weight_without_bfq() {
        let tmp = cgroupfs(None);
        apply_json(&tmp, r#"{"blockIO": {"weight": 500}}"#).unwrap();
        assert_eq!(value(&tmp, WEIGHT), "4950");
        apply_json(
            &tmp,
            r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 1000}]}}"#,
        )
        .unwrap();
        assert_eq!(value(&tmp, WEIGHT), "8:0 10000");
    }

    #[test]
    fn weight_goes_to_bfq_when_present() {
        let tmp = cgroupfs(Some("default 100\n"));
        apply_json(&tmp, r#"{"blockIO": {"weight": 500}}"#).unwrap();
        assert_eq!(value(&tmp, BFQ_WEIGHT), "500");
        assert_eq!(value(&tmp, WEIGHT), "default 100");
        std::fs::write(tmp.path().join(BFQ_WEIGHT), "default 500\n").unwrap();
        apply_json(
            &tmp,
            r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 300}]}}"#,
        )
        .unwrap();
        assert_eq!(value(&tmp, BFQ_WEIGHT), "8:0 300");
    }

    #[test]
    fn throttles_are_one_line_per_device() {
        let tmp = cgroupfs(None);
        apply_json(
            &tmp,
            r#"{"blockIO": {
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 50}]}}"#,
        )
        .unwrap();
        assert_eq!(
            value(&tmp, MAX),
            "8:0 rbps=1048576 wbps=max riops=100 wiops=50"
        );
    }

    #[test]
    fn leaf_weights_and_bad_devices_are_refused() {
        let tmp = cgroupfs(None);
        for json in [
            r#"{"blockIO": {"leafWeight": 100}}"#,
            r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 10}]}}"#,
            r#"{"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": -2, "rate": 1}]}}"#,
        ] {
            let err = apply_json(&tmp, json).unwrap_err();
            assert!(
                matches!(
                    err,
                    CgroupError::InvalidResource { .. } | CgroupError::Refused { .. }
                ),
                "{json}: {err}"
            );
        }
        assert_eq!(value(&tmp, MAX), "");
    }

    #[test]
    fn stats_from_io_stat() {
        let tmp = cgroupfs(None);
        std::fs::write(
            tmp.path().join(STAT),
            "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
             7:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.usage=3\n",
        )
        .unwrap();
        let stats = stats(tmp.path()).unwrap();
        assert_eq!(stats.io_service_bytes_recursive.len(), 6);
        assert_eq!(
            stats.io_serviced_recursive[1],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Write".into(),
                value: 2
            }
        );
        std::fs::write(tmp.path().join(STAT), "254:0 rbytes\n").unwrap();
        assert!(super::stats(tmp.path()).is_err());
    }
}
