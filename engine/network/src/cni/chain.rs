//! ADD, CHECK and DEL over a network's list of plugins (spec section 3): ADD runs them
//! in order, each given the previous one's result as `prevResult`; a failed ADD is undone
//! by a DEL of the whole list; DEL runs them in reverse with the cached result; CHECK in
//! order with it. One operation at a time per (network, container).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::cache::{Cache, CachedAttachment, Entry};
use super::config::{ipam_type, plugin_type, valid_id};
use super::exec::{Invocation, Plugins};
use super::lock::KeyLocks;
use super::{CniArgs, CniError, CniResult, NetworkList, PluginCall};

/// The CNI driver: where plugins are, where results are cached, how long a plugin may run.
pub struct Cni {
    plugins: Plugins,
    cache: Cache,
    locks: KeyLocks,
}

/// One attachment's inputs, as each plugin of a run gets them.
struct Run<'a> {
    config: &'a NetworkList,
    container: &'a str,
    netns: Option<&'a Path>,
    ifname: &'a str,
    args: &'a CniArgs,
    cni_args: String,
}

impl Cni {
    /// A driver looking for plugins in `plugin_dirs` (in order; see
    /// [`super::DEFAULT_PLUGIN_DIRS`]), caching in `cache_dir`, giving each plugin
    /// `timeout`.
    pub fn new(plugin_dirs: Vec<PathBuf>, cache_dir: PathBuf, timeout: Duration) -> Cni {
        Cni {
            plugins: Plugins {
                dirs: plugin_dirs,
                timeout,
            },
            cache: Cache::new(cache_dir),
            locks: KeyLocks::default(),
        }
    }

    /// Check that every plugin (and IPAM plugin) the network names is installed.
    pub fn validate(&self, net: &NetworkList) -> Result<(), CniError> {
        for plugin in &net.plugins {
            self.plugins.find(plugin_type(plugin))?;
            if let Some(ipam) = ipam_type(plugin) {
                self.plugins.find(ipam)?;
            }
        }
        Ok(())
    }

    /// Attach the container (its network namespace `netns`, interface `ifname`): each
    /// plugin in order. The result is cached, with the configuration used, before it is
    /// returned; if a plugin fails, the whole list is DELeted (in reverse) and its error
    /// returned.
    pub fn add(
        &self,
        net: &NetworkList,
        container_id: &str,
        netns: &Path,
        ifname: &str,
        args: &CniArgs,
    ) -> Result<CniResult, CniError> {
        check_ids(container_id, ifname)?;
        let cni_args = cni_args(args)?;
        check_ports(args)?;
        self.validate(net)?;
        let held = self.lock(&net.name, container_id)?;
        if self.cache.load(&net.name, container_id, ifname)?.is_some() {
            return Err(CniError::AlreadyAttached {
                network: net.name.clone(),
                container: container_id.into(),
                ifname: ifname.into(),
            });
        }
        let attachment = CachedAttachment {
            network: net.name.clone(),
            container_id: container_id.into(),
            ifname: ifname.into(),
            netns: Some(netns.to_owned()),
        };
        // Cached before any plugin runs: a crash mid-ADD leaves an entry to DEL.
        let mut entry = Entry::new(attachment, net, args);
        self.cache.store(&entry)?;
        let run = Run {
            config: net,
            container: container_id,
            netns: Some(netns),
            ifname,
            args,
            cni_args,
        };
        let mut last = None;
        let outcome = self.add_all(&run, &mut last).and_then(|result| {
            entry.result = Some(result.raw.clone());
            self.cache.store(&entry).map(|()| result)
        });
        match outcome {
            Ok(result) => Ok(result),
            Err(add) => Err(self.undo(&run, last.as_ref(), add, &held)),
        }
    }

    /// Run ADD of every plugin in order; `last` keeps the latest result, for an undo.
    fn add_all(&self, run: &Run, last: &mut Option<Value>) -> Result<CniResult, CniError> {
        for index in 0..run.config.plugins.len() {
            let stdin = run.config.plugin_stdin(index, last.as_ref(), run.args);
            let inv = run.invocation(index, "ADD", &stdin);
            *last = Some(self.plugins.run_for_result(&inv)?);
        }
        let raw = last.clone().unwrap_or_default();
        let call = run.call(run.config.plugins.len() - 1, "ADD");
        CniResult::from_value(raw.clone()).map_err(|e| CniError::BadOutput {
            call: Box::new(call),
            reason: e.to_string(),
            head: raw.to_string().chars().take(256).collect(),
        })
    }

    /// After a failed ADD: DEL the whole list (with the last result any plugin gave), and
    /// forget the attachment if that worked; the error to return.
    fn undo(
        &self,
        run: &Run,
        last: Option<&Value>,
        add: CniError,
        held: &super::lock::Held,
    ) -> CniError {
        tracing::warn!(network = %run.config.name, container = run.container, error = %add, "CNI ADD failed, undoing it");
        match self.del_all(run, last) {
            Ok(()) => {
                if let Err(e) = self.forget(run, held) {
                    tracing::warn!(error = %e, "CNI cache entry of an undone ADD stays");
                }
                add
            }
            Err(del) => CniError::UndoFailed {
                add: Box::new(add),
                del: Box::new(del),
            },
        }
    }

    /// Detach the container: each plugin in reverse, given the cached result as
    /// `prevResult` and the cached arguments; the cached configuration is used rather
    /// than `net` when there is one (the file may have changed since the ADD). A `netns`
    /// that is missing or no longer a namespace is passed as an empty `CNI_NETNS`. The
    /// cache entry goes when all plugins succeeded; a DEL of what is not attached is fine.
    pub fn del(
        &self,
        net: &NetworkList,
        container_id: &str,
        netns: Option<&Path>,
        ifname: &str,
    ) -> Result<(), CniError> {
        check_ids(container_id, ifname)?;
        let held = self.lock(&net.name, container_id)?;
        let entry = self.cache.load(&net.name, container_id, ifname)?;
        self.del_locked(net, entry, container_id, netns, ifname, &held)
    }

    /// DEL an attachment from its cache entry alone (its configuration file may be gone).
    pub fn del_cached(&self, att: &CachedAttachment) -> Result<(), CniError> {
        check_ids(&att.container_id, &att.ifname)?;
        let held = self.lock(&att.network, &att.container_id)?;
        let Some(entry) = self
            .cache
            .load(&att.network, &att.container_id, &att.ifname)?
        else {
            return Ok(());
        };
        let config = entry.config.clone();
        let netns = att.netns.as_deref();
        self.del_locked(
            &config,
            Some(entry),
            &att.container_id,
            netns,
            &att.ifname,
            &held,
        )
    }

    fn del_locked(
        &self,
        net: &NetworkList,
        entry: Option<Entry>,
        container: &str,
        netns: Option<&Path>,
        ifname: &str,
        held: &super::lock::Held,
    ) -> Result<(), CniError> {
        let (config, args, prev) = match entry {
            Some(e) => (e.config, e.args, e.result),
            None => (net.clone(), CniArgs::default(), None),
        };
        let run = Run {
            config: &config,
            container,
            netns: netns.filter(|p| is_netns(p)),
            ifname,
            args: &args,
            cni_args: cni_args(&args)?,
        };
        self.del_all(&run, prev.as_ref())?;
        self.forget(&run, held)
    }

    /// Run DEL of every plugin in reverse; stop at the first that fails.
    fn del_all(&self, run: &Run, prev: Option<&Value>) -> Result<(), CniError> {
        // Versions before 0.4.0 get no prevResult on DEL (as libcni does).
        let prev = prev.filter(|_| run.config.has_check());
        for index in (0..run.config.plugins.len()).rev() {
            self.plugins.find(plugin_type(&run.config.plugins[index]))?;
            let stdin = run.config.plugin_stdin(index, prev, run.args);
            self.plugins.run(&run.invocation(index, "DEL", &stdin))?;
        }
        Ok(())
    }

    /// Drop the cache entry and the lock file of a run's attachment.
    fn forget(&self, run: &Run, held: &super::lock::Held) -> Result<(), CniError> {
        self.cache
            .remove(&run.config.name, run.container, run.ifname)?;
        held.remove_file();
        Ok(())
    }

    /// Ask each plugin in order whether the attachment is as its ADD made it (the
    /// cached result as `prevResult`). Skipped (Ok) when the network disables CHECK.
    pub fn check(
        &self,
        net: &NetworkList,
        container_id: &str,
        netns: &Path,
        ifname: &str,
    ) -> Result<(), CniError> {
        check_ids(container_id, ifname)?;
        if !net.has_check() {
            return Err(CniError::CheckUnsupported {
                network: net.name.clone(),
                version: net.cni_version.clone(),
            });
        }
        if net.disable_check {
            return Ok(());
        }
        let _held = self.lock(&net.name, container_id)?;
        let not_attached = || CniError::NotAttached {
            network: net.name.clone(),
            container: container_id.into(),
            ifname: ifname.into(),
        };
        let entry = self.cache.load(&net.name, container_id, ifname)?;
        let entry = entry.ok_or_else(not_attached)?;
        let prev = entry.result.ok_or_else(not_attached)?;
        let run = Run {
            config: net,
            container: container_id,
            netns: Some(netns),
            ifname,
            args: &entry.args,
            cni_args: cni_args(&entry.args)?,
        };
        for index in 0..net.plugins.len() {
            let stdin = net.plugin_stdin(index, Some(&prev), run.args);
            self.plugins.run(&run.invocation(index, "CHECK", &stdin))?;
        }
        Ok(())
    }

    /// Every attachment in the cache (also ADDs cut short or still running), for
    /// recovery; cache files that do not read are logged and left.
    pub fn cached(&self) -> Vec<CachedAttachment> {
        let (entries, errors) = self.cache.list();
        for e in errors {
            tracing::warn!(error = %e, "CNI cache entry skipped");
        }
        entries.into_iter().map(|e| e.attachment).collect()
    }

    /// The cached ADD result of an attachment, if it has one.
    pub fn cached_result(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<CniResult>, CniError> {
        let entry = self.cache.load(network, container_id, ifname)?;
        let Some(raw) = entry.and_then(|e| e.result) else {
            return Ok(None);
        };
        let path = self.cache.path(network, container_id, ifname);
        CniResult::from_value(raw)
            .map(Some)
            .map_err(|source| CniError::CacheParse { path, source })
    }

    /// Take the (network, container) lock.
    fn lock(&self, network: &str, container: &str) -> Result<super::lock::Held<'_>, CniError> {
        let dir = self.cache.lock_dir()?;
        self.locks.lock(&dir, network, container)
    }
}

impl Run<'_> {
    fn call(&self, index: usize, command: &'static str) -> PluginCall {
        PluginCall {
            plugin: plugin_type(&self.config.plugins[index]).to_owned(),
            command,
            network: self.config.name.clone(),
            container: self.container.to_owned(),
        }
    }

    fn invocation<'a>(
        &'a self,
        index: usize,
        command: &'static str,
        stdin: &'a [u8],
    ) -> Invocation<'a> {
        Invocation {
            call: self.call(index, command),
            netns: self.netns,
            ifname: self.ifname,
            cni_args: &self.cni_args,
            stdin,
        }
    }
}

/// The container id and interface name as the spec allows them.
fn check_ids(container: &str, ifname: &str) -> Result<(), CniError> {
    if !valid_id(container) {
        return Err(CniError::BadArgument {
            what: "container id",
            value: container.into(),
            reason: "not an alphanumeric followed by alphanumerics, '_', '.' or '-'",
        });
    }
    let bad_if = ifname.is_empty()
        || ifname.len() > 15
        || ifname == "."
        || ifname == ".."
        || ifname
            .chars()
            .any(|c| c == '/' || c == ':' || c == '@' || c.is_whitespace());
    if bad_if {
        return Err(CniError::BadArgument {
            what: "interface name",
            value: ifname.into(),
            reason: "not 1 to 15 bytes without '/', ':', '@' or spaces",
        });
    }
    Ok(())
}

/// Published ports must name their host port (the caller picks a free one for 0).
fn check_ports(args: &CniArgs) -> Result<(), CniError> {
    match args
        .port_mappings
        .iter()
        .find(|p| p.host_port == 0 || p.container_port == 0)
    {
        Some(p) => Err(CniError::BadArgument {
            what: "port mapping",
            value: format!("{}:{}", p.host_port, p.container_port),
            reason: "host and container port must be 1 to 65535",
        }),
        None => Ok(()),
    }
}

/// `CNI_ARGS`: `K=V` pairs joined by `;`, `IgnoreUnknown=1` first when there are any.
fn cni_args(args: &CniArgs) -> Result<String, CniError> {
    let mut parts = Vec::with_capacity(args.args.len() + 1);
    if !args.args.is_empty() && !args.args.iter().any(|(k, _)| k == "IgnoreUnknown") {
        parts.push("IgnoreUnknown=1".to_owned());
    }
    for (k, v) in &args.args {
        if k.is_empty() || k.contains(['=', ';']) || v.contains(';') {
            return Err(CniError::BadArgument {
                what: "CNI_ARGS pair",
                value: format!("{k}={v}"),
                reason: "a key without '=' or ';' and a value without ';'",
            });
        }
        parts.push(format!("{k}={v}"));
    }
    Ok(parts.join(";"))
}

/// Whether `path` is a network namespace (a bind mount of one: nsfs).
fn is_netns(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, NSFS_MAGIC};
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cni_args_are_joined_and_checked() {
        let mut args = CniArgs::default();
        assert_eq!(cni_args(&args).unwrap(), "");
        args.args = vec![
            ("K8S_POD_NAME".into(), "web".into()),
            ("X".into(), "1".into()),
        ];
        assert_eq!(
            cni_args(&args).unwrap(),
            "IgnoreUnknown=1;K8S_POD_NAME=web;X=1"
        );
        args.args = vec![("A".into(), "x;y".into())];
        assert!(cni_args(&args).is_err());
    }

    #[test]
    fn the_driver_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Cni>();
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_ids("abc", "eth0").is_ok());
        assert!(check_ids("../x", "eth0").is_err());
        assert!(check_ids("abc", "a-very-long-ifname").is_err());
        assert!(check_ids("abc", "a/b").is_err());
    }
}
