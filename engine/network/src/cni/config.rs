//! CNI configuration files: a `.conflist` (a named list of plugins), or a single plugin's
//! `.conf`/`.json` taken as a list of one; validated when loaded, and the configuration
//! each plugin gets on stdin derived from them (spec section 3).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{CniArgs, CniError};

/// The CNI versions this driver speaks: 1.0.0, and the older ones Debian's plugins
/// (containernetworking-plugins 1.1.x) also accept.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["1.0.0", "0.4.0", "0.3.1"];

/// File name extensions read from a configuration directory (as libcni reads them).
const EXTENSIONS: [&str; 3] = ["conflist", "conf", "json"];

/// One network: a list of plugins run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkList {
    /// The network's name.
    pub name: String,
    /// The CNI version of the list and of every plugin's configuration.
    pub cni_version: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// Each plugin's configuration object (each has a string `type`).
    pub plugins: Vec<Value>,
    /// CHECK is not to be run on this network.
    pub disable_check: bool,
}

impl NetworkList {
    /// The plugins' types, in order.
    pub fn plugin_types(&self) -> impl Iterator<Item = &str> {
        self.plugins.iter().map(plugin_type)
    }

    /// Whether the list's version has CHECK and passes `prevResult` to DEL (0.4.0 on).
    pub fn has_check(&self) -> bool {
        self.cni_version != "0.3.1"
    }

    /// The configuration plugin `index` gets on stdin: its own object with the list's
    /// `name` and `cniVersion`, `prevResult` when given, and the runtime's capability
    /// arguments it declares in `capabilities`, under `runtimeConfig`.
    pub(crate) fn plugin_stdin(
        &self,
        index: usize,
        prev_result: Option<&Value>,
        args: &CniArgs,
    ) -> Vec<u8> {
        let mut conf = self.plugins[index].as_object().cloned().unwrap_or_default();
        conf.insert("name".into(), Value::String(self.name.clone()));
        conf.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        match prev_result {
            Some(prev) => conf.insert("prevResult".into(), prev.clone()),
            None => conf.remove("prevResult"),
        };
        inject_runtime_config(&mut conf, args);
        serde_json::to_vec(&Value::Object(conf)).unwrap_or_default()
    }
}

/// The `type` of a plugin object (validated at load to be a non-empty string).
pub(crate) fn plugin_type(plugin: &Value) -> &str {
    plugin
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The `ipam.type` of a plugin object, if it has one.
pub(crate) fn ipam_type(plugin: &Value) -> Option<&str> {
    plugin
        .get("ipam")
        .and_then(|ipam| ipam.get("type"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
}

/// Add the capability arguments the plugin declares to its `runtimeConfig` (keeping any
/// it has): only `portMappings` is known here.
fn inject_runtime_config(conf: &mut Map<String, Value>, args: &CniArgs) {
    let wants = |cap: &str| {
        conf.get("capabilities")
            .and_then(|c| c.get(cap))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    if !wants("portMappings") || args.port_mappings.is_empty() {
        return;
    }
    let mappings: Vec<Value> = args.port_mappings.iter().map(port_mapping_json).collect();
    let runtime = conf
        .entry("runtimeConfig")
        .or_insert_with(|| Value::Object(Map::new()));
    if !runtime.is_object() {
        *runtime = Value::Object(Map::new());
    }
    if let Some(runtime) = runtime.as_object_mut() {
        runtime.insert("portMappings".into(), Value::Array(mappings));
    }
}

/// One port mapping as the `portMappings` convention spells it.
fn port_mapping_json(p: &crate::ports::PortMapping) -> Value {
    let mut m = Map::new();
    m.insert("hostPort".into(), p.host_port.into());
    m.insert("containerPort".into(), p.container_port.into());
    let protocol = match p.protocol {
        crate::ports::Protocol::Tcp => "tcp",
        crate::ports::Protocol::Udp => "udp",
    };
    m.insert("protocol".into(), protocol.into());
    if let Some(ip) = p.host_ip {
        m.insert("hostIP".into(), ip.to_string().into());
    }
    Value::Object(m)
}

/// Load one configuration file: a `.conflist`, or (any other extension) a single
/// plugin's configuration, wrapped as a list of one.
pub fn load_file(path: &Path) -> Result<NetworkList, CniError> {
    let bytes = fs::read(path).map_err(|source| CniError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parse the contents of configuration file `path` (its extension says which kind).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<NetworkList, CniError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|source| CniError::Parse {
        file: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| CniError::Invalid {
        file: path.to_owned(),
        reason,
    };
    let Value::Object(obj) = value else {
        return Err(invalid("not a JSON object".into()));
    };
    let is_list = path.extension().is_some_and(|e| e == "conflist");
    let list = if is_list {
        from_list(path, obj)
    } else {
        from_single(path, obj)
    }
    .map_err(invalid)?;
    Ok(list)
}

/// A `.conflist` object as a list.
fn from_list(path: &Path, obj: Map<String, Value>) -> Result<NetworkList, String> {
    let name = check_name(&obj)?;
    let cni_version = check_version(&obj)?;
    let disable_check = match obj.get("disableCheck") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("\"disableCheck\" is not a boolean".into()),
    };
    let plugins = match obj.get("plugins") {
        Some(Value::Array(p)) if !p.is_empty() => p.clone(),
        Some(Value::Array(_)) => return Err("\"plugins\" is empty".into()),
        Some(_) => return Err("\"plugins\" is not an array".into()),
        None => return Err("no \"plugins\"".into()),
    };
    for (i, plugin) in plugins.iter().enumerate() {
        check_plugin(plugin).map_err(|e| format!("plugin {i}: {e}"))?;
    }
    Ok(NetworkList {
        name,
        cni_version,
        file: path.to_owned(),
        plugins,
        disable_check,
    })
}

/// A single plugin's configuration object as a list of one.
fn from_single(path: &Path, obj: Map<String, Value>) -> Result<NetworkList, String> {
    if obj.contains_key("plugins") {
        return Err("has \"plugins\": a list must be named *.conflist".into());
    }
    let name = check_name(&obj)?;
    let cni_version = check_version(&obj)?;
    let plugin = Value::Object(obj);
    check_plugin(&plugin)?;
    Ok(NetworkList {
        name,
        cni_version,
        file: path.to_owned(),
        plugins: vec![plugin],
        disable_check: false,
    })
}

/// The network name: an alphanumeric, then alphanumerics, `_`, `.` or `-` (spec 1.0).
fn check_name(obj: &Map<String, Value>) -> Result<String, String> {
    let name = match obj.get("name") {
        Some(Value::String(n)) => n,
        Some(_) => return Err("\"name\" is not a string".into()),
        None => return Err("no \"name\"".into()),
    };
    if !valid_id(name) {
        return Err(format!(
            "network name {name:?} is not an alphanumeric followed by alphanumerics, '_', '.' or '-'"
        ));
    }
    Ok(name.clone())
}

/// The `cniVersion`, which must be one this driver speaks.
fn check_version(obj: &Map<String, Value>) -> Result<String, String> {
    match obj.get("cniVersion") {
        Some(Value::String(v)) if SUPPORTED_VERSIONS.contains(&v.as_str()) => Ok(v.clone()),
        Some(Value::String(v)) => Err(format!(
            "cniVersion {v:?} is not supported (supported: {})",
            SUPPORTED_VERSIONS.join(", ")
        )),
        Some(_) => Err("\"cniVersion\" is not a string".into()),
        None => Err("no \"cniVersion\"".into()),
    }
}

/// A plugin object: a JSON object with a `type` that names a binary (no path).
fn check_plugin(plugin: &Value) -> Result<(), String> {
    let Some(obj) = plugin.as_object() else {
        return Err("not a JSON object".into());
    };
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t,
        Some(_) => return Err("\"type\" is not a string".into()),
        None => return Err("no \"type\"".into()),
    };
    if !valid_plugin_name(ty) {
        return Err(format!("plugin type {ty:?} is not a binary's name"));
    }
    match obj.get("ipam").map(|ipam| ipam.get("type")) {
        Some(Some(Value::String(t))) if !valid_plugin_name(t) => {
            Err(format!("ipam type {t:?} is not a binary's name"))
        }
        _ => Ok(()),
    }
}

/// A plugin type names a file in a plugin directory: not empty, no `/`, not `.`/`..`.
pub(crate) fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

/// A network name or container id as the spec allows: an ASCII alphanumeric, then
/// alphanumerics, `_`, `.` or `-`.
pub(crate) fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Every network in `dir` (files ending `.conflist`, `.conf` or `.json`), sorted by file
/// name as libcni sorts them; a file that does not load, or that names a network an
/// earlier file already defines, is reported and skipped. A missing directory has none.
pub fn load_dir(dir: &Path) -> (Vec<NetworkList>, Vec<CniError>) {
    let mut errors = Vec::new();
    let files = match config_files(dir) {
        Ok(files) => files,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), errors),
        Err(source) => {
            errors.push(CniError::ReadDir {
                dir: dir.to_owned(),
                source,
            });
            return (Vec::new(), errors);
        }
    };
    let mut lists: Vec<NetworkList> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match load_file(&file) {
            Ok(list) => match seen.get(&list.name) {
                Some(first) => errors.push(CniError::Duplicate {
                    file,
                    name: list.name,
                    first: first.clone(),
                }),
                None => {
                    seen.insert(list.name.clone(), file);
                    lists.push(list);
                }
            },
            Err(e) => errors.push(e),
        }
    }
    (lists, errors)
}

/// The configuration files of `dir`, sorted by name.
fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if wanted && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{PortMapping, Protocol};
    use serde_json::json;

    fn list(json: Value) -> Result<NetworkList, CniError> {
        parse(Path::new("/x/net.conflist"), json.to_string().as_bytes())
    }

    #[test]
    fn a_conflist_loads() {
        let l = list(
            json!({"cniVersion": "1.0.0", "name": "n1", "disableCheck": true,
            "plugins": [{"type": "bridge"}, {"type": "portmap"}]}),
        )
        .unwrap();
        assert_eq!(l.name, "n1");
        assert!(l.disable_check);
        assert_eq!(l.plugin_types().collect::<Vec<_>>(), ["bridge", "portmap"]);
    }

    #[test]
    fn a_single_conf_is_a_list_of_one() {
        let l = parse(
            Path::new("/x/10-a.conf"),
            br#"{"cniVersion": "0.4.0", "name": "a", "type": "bridge"}"#,
        )
        .unwrap();
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.cni_version, "0.4.0");
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        let cases = [
            (
                json!({"name": "n", "plugins": [{"type": "b"}]}),
                "no \"cniVersion\"",
            ),
            (
                json!({"cniVersion": "9.9.9", "name": "n", "plugins": [{"type": "b"}]}),
                "not supported",
            ),
            (
                json!({"cniVersion": "1.0.0", "name": "n"}),
                "no \"plugins\"",
            ),
            (
                json!({"cniVersion": "1.0.0", "name": "n", "plugins": []}),
                "\"plugins\" is empty",
            ),
            (
                json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"x": 1}]}),
                "plugin 0: no \"type\"",
            ),
            (
                json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../sh"}]}),
                "not a binary's name",
            ),
            (
                json!({"cniVersion": "1.0.0", "name": "a/b", "plugins": [{"type": "b"}]}),
                "network name",
            ),
        ];
        for (json, want) in cases {
            let err = list(json.clone()).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
            assert!(err.contains("/x/net.conflist"), "{err}");
        }
    }

    #[test]
    fn stdin_has_name_version_prev_result_and_declared_capabilities_only() {
        let l = list(json!({"cniVersion": "1.0.0", "name": "n",
            "plugins": [{"type": "bridge"},
                        {"type": "portmap", "capabilities": {"portMappings": true}}]}))
        .unwrap();
        let args = CniArgs {
            args: vec![],
            port_mappings: vec![PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        };
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        let first: Value = serde_json::from_slice(&l.plugin_stdin(0, None, &args)).unwrap();
        assert_eq!(
            first,
            json!({"type": "bridge", "name": "n", "cniVersion": "1.0.0"})
        );
        let second: Value = serde_json::from_slice(&l.plugin_stdin(1, Some(&prev), &args)).unwrap();
        assert_eq!(second["prevResult"], prev);
        assert_eq!(
            second["runtimeConfig"]["portMappings"],
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
        );
    }

    #[test]
    fn ids_follow_the_spec() {
        assert!(valid_id("abc-1_2.3"));
        for bad in ["", "-a", "a/b", "a b", "é"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
