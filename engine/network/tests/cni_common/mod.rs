//! What the CNI driver's tests share: a private "host" network namespace and a
//! container's, temporary directories for the cache, host-local's allocations and
//! script plugins, and read-only looks at links, allocations and firewall rules.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use berth_network::cni::{self, Cni, NetworkList};
use berth_testkit::netns::TestNetns;
use serde_json::{json, Value};

/// Where Debian's containernetworking-plugins are.
pub const PLUGIN_DIR: &str = "/usr/lib/cni";

/// A test's world: `host` (where plugins run), `ctr` (the container's namespace) and a
/// temporary directory; dropping it removes all (links and rules go with the namespaces).
pub struct Env {
    pub host: TestNetns,
    pub ctr: TestNetns,
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new(tag: &str) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        for dir in ["ipam", "cache", "plugins", "conf", "out"] {
            fs::create_dir(tmp.path().join(dir)).unwrap();
        }
        Env {
            host: TestNetns::new(&format!("{tag}-h")),
            ctr: TestNetns::new(&format!("{tag}-c")),
            tmp,
        }
    }

    /// host-local's `dataDir`.
    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("ipam")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    /// Where script plugins go (searched before the real plugins).
    pub fn plugin_dir(&self) -> PathBuf {
        self.tmp.path().join("plugins")
    }

    /// Where script plugins write what they saw.
    pub fn out_dir(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    /// A driver over the script plugins and the real ones.
    pub fn cni(&self, timeout: Duration) -> Cni {
        Cni::new(
            vec![self.plugin_dir(), PathBuf::from(PLUGIN_DIR)],
            self.cache_dir(),
            timeout,
        )
    }

    /// Write `list` as `conf/<file>` and load it.
    pub fn write_list(&self, file: &str, list: &Value) -> NetworkList {
        let path = self.tmp.path().join("conf").join(file);
        fs::write(&path, serde_json::to_vec_pretty(list).unwrap()).unwrap();
        cni::load_file(&path).unwrap()
    }

    /// The fixture bridge + host-local + portmap + firewall + loopback list.
    pub fn full_list(&self) -> NetworkList {
        let text = fs::read_to_string(fixture("full.conflist")).unwrap();
        let text = text.replace("@DATA_DIR@", self.data_dir().to_str().unwrap());
        self.write_list("full.conflist", &serde_json::from_str(&text).unwrap())
    }

    /// A list named `name`: bridge + host-local, then `more` plugins.
    pub fn bridge_list(&self, name: &str, more: &[Value]) -> NetworkList {
        let mut plugins = vec![bridge_plugin(&self.data_dir(), "10.88.8.0/24")];
        plugins.extend_from_slice(more);
        let list = json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
        self.write_list(&format!("{name}.conflist"), &list)
    }

    /// Install an executable `/bin/sh` script plugin. Copied into place by install(1),
    /// so no descriptor open for writing it is ever in this process (a fork of another
    /// test's thread would inherit it, and exec would fail with ETXTBSY).
    pub fn script(&self, name: &str, body: &str) {
        let src = self.tmp.path().join(format!("{name}.src"));
        fs::write(&src, format!("#!/bin/sh\n{body}\n")).unwrap();
        let dst = self.plugin_dir().join(name);
        let st = Command::new("install")
            .args(["-m", "0755"])
            .arg(&src)
            .arg(&dst)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Links of the host namespace that are veths.
    pub fn host_veths(&self) -> Vec<String> {
        link_names(&self.host.ip(&["-o", "link", "show", "type", "veth"]))
    }

    /// Links of the container namespace.
    pub fn ctr_links(&self) -> Vec<String> {
        link_names(&self.ctr.ip(&["-o", "link", "show"]))
    }

    /// host-local's allocation files of network `net` (addresses).
    pub fn allocations(&self, net: &str) -> Vec<String> {
        let Ok(dir) = fs::read_dir(self.data_dir().join(net)) else {
            return Vec::new();
        };
        dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
            .collect()
    }

    /// The host namespace's iptables rules.
    pub fn iptables(&self) -> String {
        let out = self.host.command("iptables-save").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A fixture file's path.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cni")
        .join(name)
}

/// A bridge plugin with host-local IPAM in `data_dir`.
pub fn bridge_plugin(data_dir: &Path, subnet: &str) -> Value {
    json!({
        "type": "bridge", "bridge": "cnitest0", "isGateway": true,
        "ipam": {"type": "host-local", "dataDir": data_dir, "ranges": [[{"subnet": subnet}]],
                 "routes": [{"dst": "0.0.0.0/0"}]}
    })
}

/// Names in `ip -o link` output ("2: name@peer: <...").
fn link_names(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// The links of the machine's own network namespace (read-only), to show a test left
/// it as it was.
pub struct RootLinks(BTreeSet<String>);

impl RootLinks {
    pub fn snapshot() -> RootLinks {
        let out = Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap();
        RootLinks(
            link_names(&String::from_utf8_lossy(&out.stdout))
                .into_iter()
                .collect(),
        )
    }

    /// No link appeared in the machine's namespace since the snapshot.
    pub fn assert_unchanged(&self) {
        let now = RootLinks::snapshot();
        let new: Vec<_> = now.0.difference(&self.0).collect();
        assert!(
            new.is_empty(),
            "new links in the machine's namespace: {new:?}"
        );
    }
}

/// A process a test started, killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
