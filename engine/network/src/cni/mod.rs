//! STUB
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;
#[derive(Debug, thiserror::Error)]
#[error("cni")]
pub struct CniError;
#[derive(Debug, Clone)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    pub file: PathBuf,
    pub plugins: Vec<serde_json::Value>,
}
pub fn load_file(_path: &Path) -> Result<NetworkList, CniError> {
    Err(CniError)
}
pub fn load_dir(_dir: &Path) -> (Vec<NetworkList>, Vec<CniError>) {
    (vec![], vec![])
}
#[derive(Default)]
pub struct CniArgs {
    pub args: Vec<(String, String)>,
    pub port_mappings: Vec<crate::ports::PortMapping>,
}
pub struct CachedAttachment {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    pub netns: Option<PathBuf>,
}
pub struct CniResult;
impl CniResult {
    pub fn first_ipv4(&self) -> Option<(Ipv4Net, Option<Ipv4Addr>)> {
        None
    }
}
pub struct Cni;
impl Cni {
    pub fn new(_plugin_dirs: Vec<PathBuf>, _cache_dir: PathBuf, _timeout: Duration) -> Cni {
        Cni
    }
    pub fn add(
        &self,
        _net: &NetworkList,
        _c: &str,
        _netns: &Path,
        _ifname: &str,
        _args: &CniArgs,
    ) -> Result<CniResult, CniError> {
        Err(CniError)
    }
    pub fn del(
        &self,
        _net: &NetworkList,
        _c: &str,
        _netns: Option<&Path>,
        _ifname: &str,
    ) -> Result<(), CniError> {
        Ok(())
    }
    pub fn cached(&self) -> Vec<CachedAttachment> {
        vec![]
    }
    pub fn del_cached(&self, _e: &CachedAttachment) -> Result<(), CniError> {
        Ok(())
    }
}
