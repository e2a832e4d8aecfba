//! STUB
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::path::Path;
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("full {subnet}")]
    Full { subnet: Ipv4Net },
    #[error("x")]
    Other,
}
pub struct Ipam;
impl Ipam {
    pub fn open(_dir: &Path, _subnet: Ipv4Net, _gateway: Ipv4Addr) -> Result<Ipam, IpamError> {
        Ok(Ipam)
    }
    pub fn allocate(&self, _owner: &str, _want: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        Err(IpamError::Other)
    }
    pub fn release(&self, _owner: &str) -> Result<bool, IpamError> {
        Ok(false)
    }
    pub fn allocations(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        Ok(vec![])
    }
    pub fn lookup(&self, _owner: &str) -> Option<Ipv4Addr> {
        None
    }
}
pub fn overlaps(_a: &Ipv4Net, _b: &Ipv4Net) -> bool {
    false
}
pub fn validate_subnet(
    _subnet: &str,
    _gateway: Option<&str>,
) -> Result<(Ipv4Net, Ipv4Addr), IpamError> {
    Err(IpamError::Other)
}
pub fn pick_subnet(_taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    None
}
