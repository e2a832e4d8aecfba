//! The inline spec of `run/create --rootfs … CMD`: the runtime's default spec with the
//! command, environment, working directory and hostname filled in.

use serde_json::{json, Value};

use crate::args::CreateArgs;

/// The OCI spec for `args` (which has `--rootfs` and a command).
pub fn inline_spec(args: &CreateArgs) -> Value {
    let mut spec = berth_runtime_types::default_spec::default_spec(false, 0, 0);
    // No terminal: the daemon keeps the output in the container's log.
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = json!(args.command());
    let mut env: Vec<String> = spec["process"]["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for pair in &args.env {
        let name = pair.split_once('=').map_or(pair.as_str(), |(k, _)| k);
        // A variable given again replaces the default's.
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != name);
        env.push(pair.clone());
    }
    spec["process"]["env"] = json!(env);
    if let Some(cwd) = &args.cwd {
        spec["process"]["cwd"] = json!(cwd);
    }
    if let Some(hostname) = &args.hostname {
        spec["hostname"] = json!(hostname);
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn flags_fill_the_default_spec() {
        let cli = crate::args::Cli::try_parse_from([
            "berth",
            "create",
            "--rootfs",
            "/r",
            "-e",
            "PATH=/x",
            "-e",
            "A=b=c",
            "--cwd",
            "/tmp",
            "--hostname",
            "h",
            "--",
            "sleep",
            "9",
        ])
        .unwrap();
        let crate::args::Command::Create(a) = cli.command else {
            panic!("not create")
        };
        let spec = inline_spec(&a);
        assert_eq!(spec["process"]["args"], json!(["sleep", "9"]));
        assert_eq!(spec["process"]["terminal"], json!(false));
        assert_eq!(spec["process"]["cwd"], json!("/tmp"));
        assert_eq!(spec["hostname"], json!("h"));
        let env = spec["process"]["env"].as_array().unwrap();
        assert!(env.contains(&json!("PATH=/x")) && env.contains(&json!("A=b=c")));
        assert_eq!(
            env.iter()
                .filter(|e| e.as_str().unwrap().starts_with("PATH="))
                .count(),
            1
        );
    }
}
