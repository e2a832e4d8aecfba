//! The result cache: one file per attachment (network, container, interface) with the
//! exact configuration and arguments its ADD ran with and the result, so a DEL — also
//! after a restart, also when the configuration file changed or is gone — runs the same
//! plugins with the right `prevResult` and `runtimeConfig`. Written before the first
//! plugin runs (no result yet), so an ADD cut short by a crash is found and undone.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CniArgs, CniError, NetworkList};

/// The kind stamp of a cache file, for the format to evolve.
const KIND: &str = "berth-cni-attachment-v1";

/// An attachment the cache knows of (for recovery: DEL those whose container is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedAttachment {
    /// The network's name.
    pub network: String,
    /// The container.
    pub container_id: String,
    /// The interface name in the container.
    pub ifname: String,
    /// The container's network namespace as given at ADD.
    pub netns: Option<PathBuf>,
}

/// One cache file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub kind: String,
    #[serde(flatten)]
    pub attachment: CachedAttachment,
    /// The configuration the ADD ran with.
    pub config: NetworkList,
    /// The arguments it ran with.
    pub args: CniArgs,
    /// The ADD's result; none while the ADD runs (or if it was cut short).
    pub result: Option<Value>,
}

impl Entry {
    /// A new entry for an ADD about to run.
    pub fn new(attachment: CachedAttachment, config: &NetworkList, args: &CniArgs) -> Entry {
        Entry {
            kind: KIND.into(),
            attachment,
            config: config.clone(),
            args: args.clone(),
            result: None,
        }
    }
}

/// The cache directory: `results/` for entries, `locks/` for lock files.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (made when first written).
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    /// Where lock files go (made if missing).
    pub fn lock_dir(&self) -> Result<PathBuf, CniError> {
        self.make_dir("locks")
    }

    fn make_dir(&self, name: &str) -> Result<PathBuf, CniError> {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir).map_err(|source| CniError::Cache {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// The file of an attachment: ids contain no `@`, so the name is unambiguous.
    pub fn path(&self, network: &str, container: &str, ifname: &str) -> PathBuf {
        self.dir
            .join("results")
            .join(format!("{network}@{container}@{ifname}.json"))
    }

    /// The entry of an attachment, if cached.
    pub fn load(
        &self,
        network: &str,
        container: &str,
        ifname: &str,
    ) -> Result<Option<Entry>, CniError> {
        read_entry(&self.path(network, container, ifname))
    }

    /// Write (or replace) an entry, atomically.
    pub fn store(&self, entry: &Entry) -> Result<(), CniError> {
        self.make_dir("results")?;
        let a = &entry.attachment;
        let path = self.path(&a.network, &a.container_id, &a.ifname);
        let bytes = serde_json::to_vec_pretty(entry).unwrap_or_default();
        berth_atomic_file::write(&path, &bytes).map_err(|source| CniError::Cache { path, source })
    }

    /// Remove an attachment's entry (gone already is fine).
    pub fn remove(&self, network: &str, container: &str, ifname: &str) -> Result<(), CniError> {
        let path = self.path(network, container, ifname);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(CniError::Cache { path, source: e }),
            _ => Ok(()),
        }
    }

    /// Every entry, sorted by file name; files that do not read or parse are reported.
    pub fn list(&self) -> (Vec<Entry>, Vec<CniError>) {
        let dir = self.dir.join("results");
        let mut paths: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_entry_name(p))
                .collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(source) => return (Vec::new(), vec![CniError::Cache { path: dir, source }]),
        };
        paths.sort();
        let (mut entries, mut errors) = (Vec::new(), Vec::new());
        for path in paths {
            match read_entry(&path) {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        (entries, errors)
    }
}

/// A cache file's name (not an atomic write's temporary file, which starts with a dot).
fn is_entry_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".json") && !name.starts_with('.')
}

/// The entry in `path`; none if the file is not there.
fn read_entry(path: &Path) -> Result<Option<Entry>, CniError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CniError::Cache {
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| CniError::CacheParse {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stores_loads_lists_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned());
        let config = NetworkList {
            name: "n-1".into(),
            cni_version: "1.0.0".into(),
            file: "/etc/cni/net.d/n.conflist".into(),
            plugins: vec![json!({"type": "bridge"})],
            disable_check: false,
        };
        let attachment = CachedAttachment {
            network: "n-1".into(),
            container_id: "c-2".into(),
            ifname: "eth0".into(),
            netns: Some("/run/netns/x".into()),
        };
        let mut entry = Entry::new(attachment.clone(), &config, &CniArgs::default());
        cache.store(&entry).unwrap();
        entry.result = Some(json!({"cniVersion": "1.0.0"}));
        cache.store(&entry).unwrap();
        let back = cache.load("n-1", "c-2", "eth0").unwrap().unwrap();
        assert_eq!(back.config, config);
        assert_eq!(back.result, entry.result);
        assert!(cache.load("n", "1-c-2", "eth0").unwrap().is_none());
        let (all, errors) = cache.list();
        assert!(errors.is_empty());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].attachment, attachment);
        cache.remove("n-1", "c-2", "eth0").unwrap();
        cache.remove("n-1", "c-2", "eth0").unwrap();
        assert!(cache.list().0.is_empty());
    }
}
