//! STUB
use crate::config::BridgeOptions;
use crate::ports::PortMapping;
use std::net::Ipv4Addr;
#[derive(Debug, thiserror::Error)]
#[error("firewall")]
pub struct FirewallError;
pub struct Firewall;
impl Firewall {
    pub fn new() -> Result<Firewall, FirewallError> {
        Err(FirewallError)
    }
    pub fn ensure_base(&self) -> Result<(), FirewallError> {
        Ok(())
    }
    pub fn add_network(&self, _opts: &BridgeOptions) -> Result<(), FirewallError> {
        Ok(())
    }
    pub fn remove_network(&self, _opts: &BridgeOptions) -> Result<(), FirewallError> {
        Ok(())
    }
    pub fn publish(
        &self,
        _container: &str,
        _opts: &BridgeOptions,
        _ip: Ipv4Addr,
        _ports: &[PortMapping],
    ) -> Result<(), FirewallError> {
        Ok(())
    }
    pub fn unpublish(&self, _container: &str) -> Result<(), FirewallError> {
        Ok(())
    }
    pub fn published(&self) -> Result<Vec<String>, FirewallError> {
        Ok(vec![])
    }
}
