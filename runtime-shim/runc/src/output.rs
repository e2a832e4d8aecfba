//! What `state`, `list`, `ps` and `spec` print or write.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use berth_runtime::default_spec::default_spec;
use berth_runtime::error::IoContext;
use berth_runtime::{Container, Error};

/// Pretty JSON on stdout, as runc prints `state`.
pub fn print_json_pretty<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// `list`: a table like runc's, JSON, or ids only.
pub fn list(containers: &[Container], json: bool, quiet: bool) {
    let states: Vec<_> = containers.iter().map(Container::state).collect();
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return;
    }
    if json {
        println!("{}", serde_json::to_string(&states).unwrap_or_default());
        return;
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in &states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            if s.owner.is_empty() {
                "root".into()
            } else {
                s.owner.clone()
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("   ").trim_end());
    }
}

/// `ps`: host pids as a JSON array, or ps(1)'s table filtered to the container's pids.
pub fn ps(pids: &[i32], json: bool, ps_args: &[String]) -> Result<(), Error> {
    if json {
        println!("{}", serde_json::to_string(pids).unwrap_or_default());
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = Command::new("ps").args(&args).output().io("run", "ps")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or(Error::Unsupported(
            "ps options whose output has no PID column",
        ))?;
    let wanted: HashSet<String> = pids.iter().map(i32::to_string).collect();
    println!("{header}");
    for line in lines {
        if line
            .split_whitespace()
            .nth(column)
            .is_some_and(|p| wanted.contains(p))
        {
            println!("{line}");
        }
    }
    Ok(())
}

/// `spec`: write the default config.json into `bundle`, refusing to overwrite one.
pub fn write_spec(bundle: &Path, rootless: bool) -> Result<(), Error> {
    let path = bundle.join(berth_runtime::bundle::CONFIG_FILE);
    if path.exists() {
        return Err(Error::Config {
            path,
            reason: "file exists; remove it first".into(),
        });
    }
    let spec = default_spec(
        rootless,
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let text = serde_json::to_string_pretty(&spec).unwrap_or_default();
    std::fs::write(&path, text + "\n").io("write", &path)
}
