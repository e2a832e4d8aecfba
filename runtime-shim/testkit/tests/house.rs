//! The crate graph is the architecture: every dependency between the workspace's crates
//! must be one the house allows (README, *Layout*). Read from `cargo metadata`, so a
//! crate that gains an edge running up (or sideways) fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each crate's floor, bottom first, and the workspace crates its normal and build
/// dependencies may name: exactly these, nothing else.
const HOUSE: &[(&str, u8, &[&str])] = &[
    ("berth-runtime-types", 0, &[]),
    ("berth-atomic-file", 0, &[]),
    ("berth-procfs", 0, &[]),
    ("berth-host-rootfs", 0, &[]),
    ("berth-overlay", 0, &[]),
    (
        "berth-runtime",
        1,
        &[
            "berth-runtime-types",
            "berth-atomic-file",
            "berth-procfs",
            "berth-overlay",
        ],
    ),
    ("berth-shim-protocol", 1, &["berth-runtime-types"]),
    ("berth-runc", 2, &["berth-runtime"]),
    (
        "berth-shim",
        2,
        &[
            "berth-runtime",
            "berth-shim-protocol",
            "berth-atomic-file",
            "berth-procfs",
        ],
    ),
    ("berth-shim-adapter", 2, &["berth-shim-protocol"]),
    ("berth-images", 2, &["berth-atomic-file", "berth-overlay"]),
    ("berth-network", 2, &["berth-atomic-file"]),
    (
        "berth-testkit",
        2,
        &["berth-runtime", "berth-procfs", "berth-host-rootfs"],
    ),
    (
        "berth-engine",
        3,
        &[
            "berth-shim-adapter",
            "berth-images",
            "berth-network",
            "berth-runtime-types",
            "berth-atomic-file",
        ],
    ),
    (
        "berthd",
        4,
        &[
            "berth-engine",
            "berth-images",
            "berth-network",
            "berth-runtime-types",
            "berth-procfs",
        ],
    ),
    ("berth-cli", 4, &["berth-runtime-types"]),
    (
        "berth-loadtest",
        5,
        &["berth-procfs", "berth-host-rootfs", "berth-images"],
    ),
    ("berth-benches", 6, &[]),
];

/// The workspace's crates and, per crate, its dependencies on other workspace crates:
/// (name, kind) with kind `normal`, `dev` or `build`.
fn graph() -> BTreeMap<String, BTreeSet<(String, String)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| names.contains(d["name"].as_str().unwrap()))
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                    (d["name"].as_str().unwrap().to_owned(), kind)
                })
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

/// Every edge the house does not allow, one line each.
fn violations(graph: &BTreeMap<String, BTreeSet<(String, String)>>) -> Vec<String> {
    let floor = |name: &str| HOUSE.iter().find(|h| h.0 == name).map(|h| h.1);
    let mut bad = Vec::new();
    for (name, deps) in graph {
        let Some((_, own, allowed)) = HOUSE.iter().find(|h| h.0 == name) else {
            bad.push(format!(
                "{name} is not in the house (add it to HOUSE and README)"
            ));
            continue;
        };
        for (dep, kind) in deps {
            let ok = match kind.as_str() {
                // Tests may use the test kit and anything on a lower floor.
                "dev" => dep == "berth-testkit" || floor(dep).is_some_and(|f| f < *own),
                _ => allowed.contains(&dep.as_str()),
            };
            if !ok {
                bad.push(format!("{name} -> {dep} ({kind})"));
            }
        }
    }
    bad
}

#[test]
fn every_dependency_is_one_the_house_allows() {
    let graph = graph();
    let bad = violations(&graph);
    assert!(bad.is_empty(), "edges the house does not allow: {bad:#?}");
    // Every crate of the house exists: a rename must update the table.
    for (name, _, _) in HOUSE {
        assert!(
            graph.contains_key(*name),
            "{name} is in HOUSE but not in the workspace"
        );
    }
}

#[test]
fn the_check_catches_an_edge_that_runs_up() {
    let mut graph = graph();
    graph
        .get_mut("berth-engine")
        .unwrap()
        .insert(("berth-runtime".into(), "normal".into()));
    graph
        .get_mut("berth-runtime")
        .unwrap()
        .insert(("berth-engine".into(), "dev".into()));
    let bad = violations(&graph);
    assert_eq!(
        bad,
        [
            "berth-engine -> berth-runtime (normal)",
            "berth-runtime -> berth-engine (dev)"
        ]
    );
}
