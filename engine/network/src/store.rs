//! Networks and attachments on disk.
//!
//! Networks are definitions and outlive a reboot: one JSON file each under the
//! persistent root (`<root>/networks/<name>.json`). Attachments, address allocations and
//! CNI results belong to running containers, whose state is on the daemon's state
//! directory (a tmpfs, gone at a reboot as the containers are): they live there too
//! (`<state>/attachments/<container>.json`, `<state>/ipam/<network id>/`,
//! `<state>/cni/`), so a reboot cannot leave an address allocated to a container that
//! no longer exists.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;
use crate::ports::PortMapping;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The container's id.
    pub container: String,
    /// The network's name.
    pub network: String,
    /// The network's id.
    pub network_id: String,
    /// The interface inside the container.
    pub interface: String,
    /// The host end of its veth pair (bridge driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_interface: Option<String>,
    /// Its address and prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Net>,
    /// Its default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// Its interface's MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The published ports, host ports resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// The namespace it was attached in (`/proc/<pid>/ns/net`), for CNI's DEL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// Attached completely; `false`: recorded before the work began (a daemon killed
    /// midway leaves this, and a restart undoes whatever part was made).
    #[serde(default)]
    pub complete: bool,
}

/// The files of networks and attachments.
#[derive(Debug)]
pub struct Store {
    networks: PathBuf,
    attachments: PathBuf,
    state: PathBuf,
}

impl Store {
    /// Open (making the directories) the store with definitions under `root` and
    /// attachments under `state`.
    pub fn open(root: &Path, state: &Path) -> Result<Store, StoreError> {
        let store = Store {
            networks: root.join("networks"),
            attachments: state.join("attachments"),
            state: state.to_owned(),
        };
        for dir in [&store.networks, &store.attachments] {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        }
        Ok(store)
    }

    /// Every network on disk; a file that does not parse is logged and skipped.
    pub fn networks(&self) -> Result<Vec<NetworkConfig>, StoreError> {
        let mut all: Vec<NetworkConfig> = read_all(&self.networks)?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Write (or replace) a network's definition.
    pub fn put_network(&self, network: &NetworkConfig) -> Result<(), StoreError> {
        write_json(
            &self.networks.join(format!("{}.json", network.name)),
            network,
        )
    }

    /// Remove a network's definition (nothing if absent).
    pub fn remove_network(&self, name: &str) -> Result<(), StoreError> {
        remove_file(&self.networks.join(format!("{name}.json")))
    }

    /// Write (or replace) an attachment.
    pub fn put_attachment(&self, attachment: &Attachment) -> Result<(), StoreError> {
        write_json(
            &self
                .attachments
                .join(format!("{}.json", attachment.container)),
            attachment,
        )
    }

    /// Every attachment on disk.
    pub fn attachments(&self) -> Result<Vec<Attachment>, StoreError> {
        read_all(&self.attachments)
    }

    /// Forget a container's attachment (nothing if absent).
    pub fn remove_attachment(&self, container: &str) -> Result<(), StoreError> {
        remove_file(&self.attachments.join(format!("{container}.json")))
    }

    /// Where the address allocations of network `id` live.
    pub fn ipam_dir(&self, network_id: &str) -> PathBuf {
        self.state.join("ipam").join(network_id)
    }

    /// Where CNI results are cached.
    pub fn cni_cache_dir(&self) -> PathBuf {
        self.state.join("cni")
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Io {
        what: "encoding",
        path: path.to_owned(),
        source: io::Error::other(e),
    })?;
    berth_atomic_file::write(path, &bytes).map_err(io_err("writing", path))
}

fn remove_file(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("removing", path)(e)),
        _ => Ok(()),
    }
}

fn read_all<T: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("reading", dir))? {
        let path = entry.map_err(io_err("reading", dir))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        match fs::read(&path).map(|b| serde_json::from_slice::<T>(&b)) {
            Ok(Ok(value)) => out.push(value),
            Ok(Err(e)) => {
                tracing::warn!(path = %path.display(), "skipping a file that does not parse: {e}")
            }
            Err(e) => tracing::warn!(path = %path.display(), "skipping an unreadable file: {e}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BridgeOptions, Driver};

    fn network(name: &str) -> NetworkConfig {
        NetworkConfig {
            name: name.into(),
            id: "ab".repeat(32),
            driver: Driver::Bridge(BridgeOptions {
                bridge: "br-test".into(),
                subnet: "10.1.0.0/24".parse().unwrap(),
                gateway: "10.1.0.1".parse().unwrap(),
                masquerade: true,
                internal: false,
                mtu: None,
            }),
            created: "2026-12-06T00:00:00Z".into(),
            labels: Default::default(),
        }
    }

    #[test]
    fn networks_and_attachments_round_trip_and_bad_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (root, state) = (dir.path().join("root"), dir.path().join("state"));
        let store = Store::open(&root, &state).unwrap();
        store.put_network(&network("b")).unwrap();
        store.put_network(&network("a")).unwrap();
        fs::write(root.join("networks/broken.json"), "{").unwrap();
        let again = Store::open(&root, &state).unwrap();
        let names: Vec<String> = again
            .networks()
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        again.remove_network("a").unwrap();
        again.remove_network("a").unwrap();
        assert_eq!(again.networks().unwrap().len(), 1);

        let att = Attachment {
            container: "c1".into(),
            network: "b".into(),
            network_id: "ab".repeat(32),
            interface: "eth0".into(),
            host_interface: Some("veth0123".into()),
            address: Some("10.1.0.2/24".parse().unwrap()),
            gateway: Some("10.1.0.1".parse().unwrap()),
            mac: None,
            ports: vec![],
            netns: None,
            complete: true,
        };
        again.put_attachment(&att).unwrap();
        assert_eq!(again.attachments().unwrap(), [att]);
        again.remove_attachment("c1").unwrap();
        assert!(again.attachments().unwrap().is_empty());
    }
}
