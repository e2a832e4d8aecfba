//! STUB
use crate::config::BridgeOptions;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
#[derive(Debug, thiserror::Error)]
#[error("bridge")]
pub struct BridgeError;
pub struct BridgeDriver;
pub struct AttachInfo {
    pub interface: String,
    pub host_interface: String,
    pub mac: String,
}
impl BridgeDriver {
    pub fn new() -> BridgeDriver {
        BridgeDriver
    }
    pub fn ensure_network(&self, _opts: &BridgeOptions) -> Result<(), BridgeError> {
        Ok(())
    }
    pub fn remove_network(&self, _opts: &BridgeOptions) -> Result<(), BridgeError> {
        Ok(())
    }
    pub fn attach(
        &self,
        _opts: &BridgeOptions,
        _netns: BorrowedFd<'_>,
        _host_ifname: &str,
        _address: Ipv4Addr,
    ) -> Result<AttachInfo, BridgeError> {
        Err(BridgeError)
    }
    pub fn detach(&self, _host_ifname: &str) -> Result<(), BridgeError> {
        Ok(())
    }
}
pub fn host_ifname(container_id: &str) -> String {
    format!("veth{}", &container_id[..container_id.len().min(11)])
}
