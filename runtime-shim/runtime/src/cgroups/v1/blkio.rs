//! v1 `blkio` controller: proportional weights (CFQ's or BFQ's files, whichever the
//! kernel has) and per-device throttles; I/O statistics.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use crate::cgroups::blkio::{device_numbers, wants_leaf_weight};
use crate::cgroups::stats::{BlkioEntry, BlkioStats};
use crate::cgroups::{fs, CgroupError, Controller};

const CFQ_WEIGHT: &str = "blkio.weight";
const CFQ_WEIGHT_DEVICE: &str = "blkio.weight_device";
const BFQ_WEIGHT: &str = "blkio.bfq.weight";
const BFQ_WEIGHT_DEVICE: &str = "blkio.bfq.weight_device";
const LEAF_WEIGHT: &str = "blkio.leaf_weight";
const LEAF_WEIGHT_DEVICE: &str = "blkio.leaf_weight_device";
const READ_BPS: &str = "blkio.throttle.read_bps_device";
const WRITE_BPS: &str = "blkio.throttle.write_bps_device";
const READ_IOPS: &str = "blkio.throttle.read_iops_device";
const WRITE_IOPS: &str = "blkio.throttle.write_iops_device";

/// Where the statistics come from, best first, as runc reads them: (operations, bytes)
/// per source. The first source with any entries wins.
const STAT_SOURCES: &[(&str, &str)] = &[
    (
        "blkio.bfq.io_serviced_recursive",
        "blkio.bfq.io_service_bytes_recursive",
    ),
    (
        "blkio.io_serviced_recursive",
        "blkio.io_service_bytes_recursive",
    ),
    (
        "blkio.throttle.io_serviced_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    ),
    (
        "blkio.throttle.io_serviced",
        "blkio.throttle.io_service_bytes",
    ),
];

/// Writes the weight files (`blkio.weight` with CFQ, `blkio.bfq.weight` otherwise), the
/// leaf weights (CFQ only: refused where the kernel has no CFQ) and
/// `blkio.throttle.{read,write}_{bps,iops}_device`. A weight of 0 means "leave alone"; a
/// throttle rate of 0 removes that device's limit.
pub(crate) struct Blkio;

impl Controller for Blkio {
    const NAME: &'static str = "blkio";

    fn needed(resources: &LinuxResources) -> bool {
        crate::cgroups::blkio::needed(resources)
    }

    fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), CgroupError> {
        let Some(io) = resources.block_io() else {
            return Ok(());
        };
        let invalid = CgroupError::invalid(Self::NAME, dir);
        let refused = CgroupError::refused(Self::NAME, dir);
        let weight_devices = io.weight_device().as_deref().unwrap_or_default();
        if wants_leaf_weight(io) && !fs::exists(dir, LEAF_WEIGHT) {
            return Err(invalid(format!(
                "blockIO leaf weights need {LEAF_WEIGHT} (the CFQ I/O scheduler, removed in Linux 5.0), \
                 which this kernel does not have"
            )));
        }
        let mut lines = Vec::new();
        for device in weight_devices {
            let numbers = device_numbers(device.major(), device.minor()).map_err(refused)?;
            if let Some(weight) = device.weight().filter(|w| *w != 0) {
                lines.push((Kind::Weight, format!("{numbers} {weight}")));
            }
            if let Some(leaf) = device.leaf_weight().filter(|w| *w != 0) {
                lines.push((Kind::Leaf, format!("{numbers} {leaf}")));
            }
        }
        let mut throttle_lines = Vec::new();
        for (file, devices) in throttles(io) {
            for device in devices {
                let numbers = device_numbers(device.major(), device.minor()).map_err(refused)?;
                throttle_lines.push((file, format!("{numbers} {}", device.rate())));
            }
        }

        let (weight_file, weight_device_file) = if fs::exists(dir, CFQ_WEIGHT) {
            (CFQ_WEIGHT, CFQ_WEIGHT_DEVICE)
        } else {
            (BFQ_WEIGHT, BFQ_WEIGHT_DEVICE)
        };
        let wants_weight = io.weight().is_some_and(|w| w != 0)
            || lines.iter().any(|(kind, _)| matches!(kind, Kind::Weight));
        if wants_weight && !fs::exists(dir, weight_file) {
            return Err(invalid(format!(
                "blockIO weights need {CFQ_WEIGHT} or {BFQ_WEIGHT} (the CFQ or BFQ I/O \
                 scheduler), which this host does not offer"
            )));
        }
        if let Some(weight) = io.weight().filter(|w| *w != 0) {
            fs::write(dir, weight_file, &weight.to_string())?;
        }
        if let Some(leaf) = io.leaf_weight().filter(|w| *w != 0) {
            fs::write(dir, LEAF_WEIGHT, &leaf.to_string())?;
        }
        for (kind, line) in lines {
            let file = match kind {
                Kind::Weight => weight_device_file,
                Kind::Leaf => LEAF_WEIGHT_DEVICE,
            };
            fs::write(dir, file, &line)?;
        }
        for (file, line) in throttle_lines {
            fs::write(dir, file, &line)?;
        }
        Ok(())
    }
}

enum Kind {
    Weight,
    Leaf,
}

/// Each throttle file with the spec's devices for it.
fn throttles(io: &LinuxBlockIo) -> impl Iterator<Item = (&'static str, &[LinuxThrottleDevice])> {
    [READ_BPS, WRITE_BPS, READ_IOPS, WRITE_IOPS]
        .into_iter()
        .zip(crate::cgroups::blkio::throttles(io))
}

/// Bytes and operations per device from the first source this kernel fills.
pub(crate) fn stats(dir: &Path) -> Result<BlkioStats, CgroupError> {
    for (serviced, bytes) in STAT_SOURCES {
        let operations = parse_entries(dir, serviced)?;
        if operations.is_empty() {
            continue;
        }
        return Ok(BlkioStats {
            io_service_bytes_recursive: parse_entries(dir, bytes)?,
            io_serviced_recursive: operations,
        });
    }
    Ok(BlkioStats::default())
}

/// `MAJ:MIN Op value` lines (the `Total` line skipped); empty if the file is missing.
fn parse_entries(dir: &Path, file: &str) -> Result<Vec<BlkioEntry>, CgroupError> {
    let Some(text) = fs::read_optional(dir, file)? else {
        return Ok(Vec::new());
    };
    let path = dir.join(file);
    let malformed = |line: &str| CgroupError::Parse {
        path: path.clone(),
        content: line.to_owned(),
    };
    let mut entries = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (device, op, value) = match fields[..] {
            ["Total", _] => continue,
            [device, value] => (device, "", value),
            [device, op, value] => (device, op, value),
            _ => return Err(malformed(line)),
        };
        let (major, minor) = device.split_once(':').ok_or_else(|| malformed(line))?;
        entries.push(BlkioEntry {
            major: fs::parse_u64(&path, major)?,
            minor: fs::parse_u64(&path, minor)?,
            op: op.to_owned(),
            value: fs::parse_u64(&path, value)?,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::ResourceError;

    fn cgroupfs(files: &[&str]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for file in files {
            std::fs::write(tmp.path().join(file), "").unwrap();
        }
        tmp
    }

    fn apply_json(tmp: &tempfile::TempDir, json: &str) -> Result<(), CgroupError> {
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        Blkio::apply(tmp.path(), &resources)
    }

    fn value(tmp: &tempfile::TempDir, file: &str) -> String {
        fs::read(tmp.path(), file).unwrap()
    }

    const BFQ_HOST: &[&str] = &[
        BFQ_WEIGHT,
        BFQ_WEIGHT_DEVICE,
        READ_BPS,
        WRITE_BPS,
        READ_IOPS,
        WRITE_IOPS,
    ];

    #[test]
    fn bfq_weights_and_throttles() {
        let tmp = cgroupfs(BFQ_HOST);
        let json = r#"{"blockIO": {"weight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]}}"#;
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        assert!(Blkio::needed(&resources));
        apply_json(&tmp, json).unwrap();
        assert_eq!(value(&tmp, BFQ_WEIGHT), "300");
        assert_eq!(value(&tmp, BFQ_WEIGHT_DEVICE), "8:0 500");
        assert_eq!(value(&tmp, READ_BPS), "8:0 1048576");
        assert_eq!(value(&tmp, WRITE_BPS), "8:16 2097152");
        assert_eq!(value(&tmp, READ_IOPS), "8:0 100");
        assert_eq!(value(&tmp, WRITE_IOPS), "8:0 0");
    }

    #[test]
    fn cfq_files_win_when_present() {
        let tmp = cgroupfs(&[
            CFQ_WEIGHT,
            CFQ_WEIGHT_DEVICE,
            BFQ_WEIGHT,
            LEAF_WEIGHT,
            LEAF_WEIGHT_DEVICE,
        ]);
        apply_json(
            &tmp,
            r#"{"blockIO": {"weight": 200, "leafWeight": 100,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 10, "leafWeight": 20}]}}"#,
        )
        .unwrap();
        assert_eq!(value(&tmp, CFQ_WEIGHT), "200");
        assert_eq!(value(&tmp, BFQ_WEIGHT), "");
        assert_eq!(value(&tmp, LEAF_WEIGHT), "100");
        assert_eq!(value(&tmp, CFQ_WEIGHT_DEVICE), "8:0 10");
        assert_eq!(value(&tmp, LEAF_WEIGHT_DEVICE), "8:0 20");
    }

    #[test]
    fn leaf_weight_without_cfq_is_refused_before_writing() {
        let tmp = cgroupfs(BFQ_HOST);
        let err =
            apply_json(&tmp, r#"{"blockIO": {"weight": 300, "leafWeight": 100}}"#).unwrap_err();
        assert!(err.to_string().contains("CFQ"), "{err}");
        assert_eq!(value(&tmp, BFQ_WEIGHT), "");
    }

    #[test]
    fn negative_device_numbers_are_refused() {
        let tmp = cgroupfs(BFQ_HOST);
        let err = apply_json(
            &tmp,
            r#"{"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::Refused {
                    reason: ResourceError::DeviceNumber {
                        major: -1,
                        minor: 0
                    },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_is_not_needed() {
        for json in [
            "{}",
            r#"{"blockIO": {}}"#,
            r#"{"blockIO": {"weight": 0, "throttleReadBpsDevice": []}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(!Blkio::needed(&resources), "{json}");
        }
    }

    #[test]
    fn stats_prefer_the_first_filled_source() {
        let tmp = tempfile::tempdir().unwrap();
        for (file, content) in [
            ("blkio.bfq.io_serviced_recursive", "Total 0\n"),
            (
                "blkio.throttle.io_serviced_recursive",
                "254:0 Read 10\n254:0 Write 2\nTotal 12\n",
            ),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "254:0 Read 40960\n254:0 Write 8192\nTotal 49152\n",
            ),
        ] {
            std::fs::write(tmp.path().join(file), content).unwrap();
        }
        let stats = stats(tmp.path()).unwrap();
        assert_eq!(stats.io_serviced_recursive.len(), 2);
        assert_eq!(
            stats.io_service_bytes_recursive[0],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Read".into(),
                value: 40960
            }
        );
        std::fs::write(
            tmp.path().join("blkio.throttle.io_serviced_recursive"),
            "garbage\n",
        )
        .unwrap();
        assert!(super::stats(tmp.path()).is_err());
    }
}
