//! What every container of the burst runs: a root filesystem made from the host's own
//! `sleep` and `sh` (no download, built by berth-host-rootfs), and the default spec `berth-runc spec` writes, made
//! to sleep in the background with a cgroup of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Host binaries copied into the root filesystem, with the libraries `ldd` names.
const HOST_BINARIES: [&str; 2] = ["sleep", "sh"];

/// Make `<dir>/rootfs` (by berth-host-rootfs, the one host root filesystem builder) and
/// return its path. It has the directories the spec mounts over: a read-only root cannot
/// grow them at start.
pub fn rootfs(dir: &Path) -> Result<PathBuf> {
    let root = dir.join("rootfs");
    berth_host_rootfs::build(&root, &HOST_BINARIES)?;
    Ok(root)
}

/// The default spec of `berth-runc spec` (pid, network, ipc, uts, mount and cgroup
/// namespaces, runc's default mounts, capabilities and masked paths), running
/// `sleep infinity` without a terminal, as OCI version 1.0.2.
pub fn default_spec(runc: &Path, dir: &Path) -> Result<Value> {
    let out = Command::new(runc)
        .arg("spec")
        .arg("--bundle")
        .arg(dir)
        .output()
        .map_err(|e| Error::Program {
            program: runc.display().to_string(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Program {
            program: format!("{} spec", runc.display()),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
    let mut spec: Value = serde_json::from_slice(&text).map_err(|e| Error::Program {
        program: "berth-runc spec".into(),
        message: format!("{}: {e}", path.display()),
    })?;
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["sleep", "infinity"]);
    // The spec uses nothing newer than 1.0, and --runtime compares runtimes on the same
    // spec: Debian's crun (1.8) refuses any version but 1.0.x.
    spec["ociVersion"] = json!("1.0.2");
    Ok(spec)
}

/// The body of `POST /v1/containers` for any container of the run, serialized once:
/// only the id and the cgroup path differ between containers.
/// `base` (runc's default spec running the burst's command) with what berthd gives a
/// container from an image instead: docker's capabilities, seccomp profile, mounts, masked
/// and read-only paths, sysctls, and the /etc files (written once to `etc`, bound into
/// every container). Made by the code berthd uses, from an image config that only names
/// the command.
pub fn docker_defaults_spec(base: &Value, rootfs: &Path, etc: &Path) -> Result<Value> {
    use berth_images::manifest::ImageConfig;
    use berth_images::runspec::{self, Overrides};

    let config = ImageConfig {
        os: "linux".into(),
        ..ImageConfig::default()
    };
    let args = base["process"]["args"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    });
    let overrides = Overrides {
        args,
        ..Overrides::default()
    };
    let mut spec = runspec::build("lt-docker-defaults", &config, rootfs, &overrides)?;
    runspec::write_etc_files(&mut spec, etc, "lt-docker-defaults", &[], &[])?;
    let mut spec = serde_json::to_value(&spec).map_err(|e| Error::Program {
        program: "berth-images runspec".into(),
        message: e.to_string(),
    })?;
    // The template sets the root and the cgroup; the hostname is each container's id.
    if let Some(obj) = spec.as_object_mut() {
        obj.remove("root");
        obj.remove("hostname");
        obj.remove("annotations");
    }
    Ok(spec)
}

#[derive(Debug, Clone)]
pub struct CreateTemplate {
    /// The JSON text before and after the cgroup path, and the tail after the id.
    head: String,
    middle: String,
    tail: String,
    /// Whether the cgroup path goes between `middle` and `tail` (an image's container
    /// gets the daemon's).
    cgroup: bool,
    /// Whether each body publishes a port (`--publish`).
    publish: bool,
}

/// Stands in for the cgroup path while the template is serialized.
const MARK: &str = "@@berth-loadtest-cgroup@@";

impl CreateTemplate {
    /// A template for `spec` in `rootfs`, with an optional per-container `runtime`.
    pub fn new(spec: &Value, rootfs: &Path, runtime: Option<&Path>) -> Self {
        let mut spec = spec.clone();
        spec["linux"]["cgroupsPath"] = json!(MARK);
        let mut body = json!({ "spec": spec, "rootfs": rootfs });
        if let Some(r) = runtime {
            body["runtime"] = json!(r);
        }
        let text = body.to_string();
        let (before, after) = text.split_once(MARK).unwrap_or((&text, ""));
        // `{"id":"<ID>",` then the rest of the object.
        CreateTemplate {
            head: "{\"id\":\"".into(),
            middle: format!("\",{}", &before[1..]),
            tail: after.to_owned(),
            cgroup: true,
            publish: false,
        }
    }

    /// A template running `args` from the image `reference` (already pulled: `pull`
    /// is `never`), with an optional per-container `runtime`.
    pub fn image(reference: &str, args: &Value, runtime: Option<&Path>) -> Self {
        let mut body = json!({ "image": reference, "args": args, "pull": "never" });
        if let Some(r) = runtime {
            body["runtime"] = json!(r);
        }
        let text = body.to_string();
        CreateTemplate {
            head: "{\"id\":\"".into(),
            middle: format!("\",{}", &text[1..]),
            tail: String::new(),
            cgroup: false,
            publish: false,
        }
    }

    /// The same bodies asking for `network` (`--network`), each publishing its port
    /// 8080/tcp on the host port [`body`](Self::body) is given when `publish`.
    pub fn on_network(mut self, network: &str, publish: bool) -> Self {
        // `middle` begins `",` and the request's other members: the network goes first.
        let network = serde_json::to_string(network).unwrap_or_default();
        self.middle = format!("\",\"network\":{network},{}", &self.middle[2..]);
        self.publish = publish;
        self
    }

    /// The body creating container `id` in cgroup `cgroup` (both plain ASCII names the
    /// harness made, so they need no JSON escaping), publishing on `host_port` if the
    /// template publishes.
    pub fn body(&self, id: &str, cgroup: &str, host_port: u16) -> String {
        let mut s = String::with_capacity(
            self.head.len() + self.middle.len() + self.tail.len() + id.len() + cgroup.len() + 80,
        );
        s.push_str(&self.head);
        s.push_str(id);
        s.push_str(&self.middle);
        if self.cgroup {
            s.push_str(cgroup);
        }
        s.push_str(&self.tail);
        if self.publish && s.ends_with('}') {
            s.pop();
            s.push_str(&format!(
                ",\"ports\":[{{\"host_port\":{host_port},\"container_port\":{},\"protocol\":\"tcp\"}}]}}",
                crate::cli::PUBLISHED_PORT
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_bodies_are_the_spec_with_id_and_cgroup() {
        let spec = json!({"process": {"args": ["sleep"]}, "linux": {"namespaces": []}});
        let t = CreateTemplate::new(&spec, Path::new("/r"), Some(Path::new("/usr/sbin/runc")));
        let body: Value = serde_json::from_str(&t.body("lt-a-1", "/berth-lt-a/lt-a-1", 0)).unwrap();
        assert_eq!(body["id"], "lt-a-1");
        assert_eq!(body["rootfs"], "/r");
        assert_eq!(body["runtime"], "/usr/sbin/runc");
        assert_eq!(body["spec"]["linux"]["cgroupsPath"], "/berth-lt-a/lt-a-1");
        assert_eq!(body["spec"]["process"]["args"][0], "sleep");
    }

    #[test]
    fn image_bodies_name_the_image_and_the_command() {
        let args = json!(["sleep", "infinity"]);
        let t = CreateTemplate::image("127.0.0.1:5000/test/busybox:latest", &args, None);
        let text = t.body("lt-a-1", "/berth-lt-a/lt-a-1", 0);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            body,
            json!({"id": "lt-a-1", "image": "127.0.0.1:5000/test/busybox:latest",
                   "args": ["sleep", "infinity"], "pull": "never"})
        );
        let t = CreateTemplate::image("busybox", &args, Some(Path::new("/usr/sbin/runc")));
        let body: Value = serde_json::from_str(&t.body("x", "/c", 0)).unwrap();
        assert_eq!(body["runtime"], "/usr/sbin/runc");
    }

    #[test]
    fn network_bodies_name_the_network_and_publish_one_port_each() {
        let spec = json!({"process": {"args": ["sleep"]}, "linux": {}});
        let t = CreateTemplate::new(&spec, Path::new("/r"), None).on_network("berth0", true);
        let body: Value = serde_json::from_str(&t.body("lt-a-7", "/c/lt-a-7", 20007)).unwrap();
        assert_eq!(body["id"], "lt-a-7");
        assert_eq!(body["network"], "berth0");
        assert_eq!(body["rootfs"], "/r");
        assert_eq!(body["spec"]["linux"]["cgroupsPath"], "/c/lt-a-7");
        assert_eq!(
            body["ports"],
            json!([{"host_port": 20007, "container_port": 8080, "protocol": "tcp"}])
        );
        let t = CreateTemplate::image("busybox", &json!(["sleep"]), None).on_network("n1", false);
        let body: Value = serde_json::from_str(&t.body("x", "/c", 20000)).unwrap();
        assert_eq!(
            body,
            json!({"id": "x", "network": "n1", "image": "busybox", "args": ["sleep"], "pull": "never"})
        );
    }

    #[test]
    fn docker_defaults_keep_the_command_and_add_the_image_spec() {
        let dir = tempfile::tempdir().unwrap();
        let base = json!({"process": {"args": ["sleep", "infinity"]}});
        let spec = docker_defaults_spec(&base, dir.path(), &dir.path().join("etc")).unwrap();
        assert_eq!(spec["process"]["args"], json!(["sleep", "infinity"]));
        assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(spec.get("root").is_none() && spec.get("hostname").is_none());
        let binds: Vec<&str> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["destination"].as_str())
            .filter(|d| d.starts_with("/etc/"))
            .collect();
        assert_eq!(binds, ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]);
        assert!(dir.path().join("etc/resolv.conf").is_file());
    }
}
