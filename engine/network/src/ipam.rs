//! Subnets and addresses: validation, default subnets, and the allocations of one subnet.
//!
//! Allocations are persisted one file per address, named after it, holding its owner's
//! id. A file is made complete under a temporary name first and then hard-linked to its
//! address's name: `link(2)` fails if the name exists, so taking an address is atomic
//! and exclusive across threads and processes, and nobody ever reads a half-written
//! owner. An in-memory cursor (the address after the last one taken) makes the next
//! allocation O(1) instead of a rescan.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use ipnet::Ipv4Net;

/// The longest prefix a network may have (a /30 holds a gateway and one container).
pub const MAX_PREFIX: u8 = 30;

/// What failed validating a subnet or allocating an address.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Every address is taken.
    #[error("subnet {subnet} is full: no address left")]
    Full {
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// The address asked for is taken.
    #[error("address {addr} is already in use")]
    InUse {
        /// The address.
        addr: Ipv4Addr,
    },
    /// The address asked for is not in the subnet.
    #[error("address {addr} is outside subnet {subnet}")]
    OutsideSubnet {
        /// The address.
        addr: Ipv4Addr,
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// The address asked for is the subnet's network, broadcast or gateway address.
    #[error("address {addr} is reserved in {subnet} (network, broadcast or gateway address)")]
    Reserved {
        /// The address.
        addr: Ipv4Addr,
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// The owner holds another address already.
    #[error("{owner} holds {addr} in {subnet} already")]
    OwnerHasAddress {
        /// The owner.
        owner: String,
        /// What it holds.
        addr: Ipv4Addr,
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// An owner id that cannot be stored.
    #[error("invalid address owner {owner:?}: must be non-empty, one line")]
    InvalidOwner {
        /// The id given.
        owner: String,
    },
    /// A subnet that does not parse or cannot be used.
    #[error("invalid subnet {subnet:?}: {reason}")]
    InvalidSubnet {
        /// The subnet given.
        subnet: String,
        /// Why.
        reason: String,
    },
    /// A gateway that does not parse or does not fit the subnet.
    #[error("invalid gateway {gateway:?} for subnet {subnet}: {reason}")]
    InvalidGateway {
        /// The gateway given.
        gateway: String,
        /// The subnet.
        subnet: Ipv4Net,
        /// Why.
        reason: String,
    },
    /// The allocation directory or a file in it failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The addresses of one subnet, allocated from files in one directory.
pub struct Ipam {
    dir: PathBuf,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    /// The host offset (from the network address) to try first.
    cursor: AtomicU32,
    /// Owner → address: what was on disk at open plus what this value did since.
    owners: Mutex<HashMap<String, Ipv4Addr>>,
}

impl Ipam {
    /// The allocations of `subnet` (gateway `gateway`) kept in `dir` (made if missing).
    pub fn open(dir: &Path, subnet: Ipv4Net, gateway: Ipv4Addr) -> Result<Ipam, IpamError> {
        check_subnet(&subnet.to_string(), subnet)?;
        check_gateway(&gateway.to_string(), subnet, gateway)?;
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        let ipam = Ipam {
            dir: dir.to_owned(),
            subnet,
            gateway,
            cursor: AtomicU32::new(1),
            owners: Mutex::new(HashMap::new()),
        };
        ipam.remove_stale_temporaries()?;
        let found = ipam.allocations()?;
        let last = found.iter().map(|(addr, _)| ipam.offset(*addr)).max();
        if let Some(last) = last {
            ipam.cursor.store(ipam.after(last), Ordering::Relaxed);
        }
        *ipam.index() = found
            .into_iter()
            .map(|(addr, owner)| (owner, addr))
            .collect();
        Ok(ipam)
    }

    /// The subnet.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The gateway address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// An address for `owner`: `want`, or the next free one. An owner holding an
    /// address already gets it again (when `want` is none or that address). Distinct
    /// owners may allocate concurrently; one owner allocates from one thread at a time.
    pub fn allocate(&self, owner: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        check_owner(owner)?;
        if let Some(held) = self.lookup(owner) {
            return match want {
                None => Ok(held),
                Some(addr) if addr == held => Ok(held),
                Some(_) => Err(IpamError::OwnerHasAddress {
                    owner: owner.into(),
                    addr: held,
                    subnet: self.subnet,
                }),
            };
        }
        if let Some(addr) = want {
            self.check_wanted(addr)?;
        }
        let temp = Temporary::write(&self.dir, owner)?;
        let addr = match want {
            Some(addr) => self.take(&temp, addr)?.ok_or(IpamError::InUse { addr })?,
            None => self.take_next(&temp)?,
        };
        self.index().insert(owner.into(), addr);
        Ok(addr)
    }

    /// Release the address `owner` holds; false: it held none.
    pub fn release(&self, owner: &str) -> Result<bool, IpamError> {
        let known = self.index().remove(owner);
        let addr = match known {
            Some(addr) => Some(addr),
            // Allocated by another process since this one opened: look on disk.
            None => self
                .allocations()?
                .into_iter()
                .find(|(_, held_by)| held_by == owner)
                .map(|(addr, _)| addr),
        };
        let Some(addr) = addr else {
            return Ok(false);
        };
        let path = self.path(addr);
        match fs::read_to_string(&path) {
            Ok(held_by) if held_by == owner => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("reading", &path)(e)),
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("removing", &path)(e)),
        }
    }

    /// Every allocation on disk: address and owner, by address.
    pub fn allocations(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let entries = fs::read_dir(&self.dir).map_err(io_err("listing", &self.dir))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("listing", &self.dir))?;
            let Some(addr) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            match fs::read_to_string(entry.path()) {
                Ok(owner) => found.push((addr, owner)),
                // Released meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("reading", &entry.path())(e)),
            }
        }
        found.sort();
        Ok(found)
    }

    /// The address `owner` holds, as this value knows it.
    pub fn lookup(&self, owner: &str) -> Option<Ipv4Addr> {
        self.index().get(owner).copied()
    }

    fn check_wanted(&self, addr: Ipv4Addr) -> Result<(), IpamError> {
        if !self.subnet.contains(&addr) {
            return Err(IpamError::OutsideSubnet {
                addr,
                subnet: self.subnet,
            });
        }
        if addr == self.subnet.network() || addr == self.subnet.broadcast() || addr == self.gateway
        {
            return Err(IpamError::Reserved {
                addr,
                subnet: self.subnet,
            });
        }
        Ok(())
    }

    /// The first free address from the cursor on, wrapping around once.
    fn take_next(&self, temp: &Temporary) -> Result<Ipv4Addr, IpamError> {
        let hosts = self.host_count();
        let start = self.cursor.load(Ordering::Relaxed);
        for step in 0..hosts {
            let offset = 1 + (start - 1 + step) % hosts;
            let addr = self.at(offset);
            if addr == self.gateway {
                continue;
            }
            if self.take(temp, addr)?.is_some() {
                return Ok(addr);
            }
        }
        Err(IpamError::Full {
            subnet: self.subnet,
        })
    }

    /// Link the owner file to `addr`'s name; none: taken already.
    fn take(&self, temp: &Temporary, addr: Ipv4Addr) -> Result<Option<Ipv4Addr>, IpamError> {
        let path = self.path(addr);
        match fs::hard_link(&temp.0, &path) {
            Ok(()) => {
                let next = self.after(self.offset(addr));
                self.cursor.store(next, Ordering::Relaxed);
                Ok(Some(addr))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io_err("making", &path)(e)),
        }
    }

    /// Temporaries of processes that are gone (a crash between write and link).
    fn remove_stale_temporaries(&self) -> Result<(), IpamError> {
        let entries = fs::read_dir(&self.dir).map_err(io_err("listing", &self.dir))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(Temporary::pid_of) else {
                continue;
            };
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn index(&self) -> std::sync::MutexGuard<'_, HashMap<String, Ipv4Addr>> {
        // A panic elsewhere while holding it leaves the map itself consistent.
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, addr: Ipv4Addr) -> PathBuf {
        self.dir.join(addr.to_string())
    }

    /// Host addresses between the network and broadcast addresses.
    fn host_count(&self) -> u32 {
        u32::from(self.subnet.broadcast()) - u32::from(self.subnet.network()) - 1
    }

    fn offset(&self, addr: Ipv4Addr) -> u32 {
        u32::from(addr).wrapping_sub(u32::from(self.subnet.network()))
    }

    fn at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + offset)
    }

    /// The host offset after `offset`, wrapping to the first host.
    fn after(&self, offset: u32) -> u32 {
        if offset >= self.host_count() {
            1
        } else {
            offset + 1
        }
    }
}

/// A complete owner file under a name of this process, removed when dropped.
struct Temporary(PathBuf);

impl Temporary {
    fn write(dir: &Path, owner: &str) -> Result<Temporary, IpamError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{}-{n}.tmp", std::process::id()));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("making", &path))?;
        let temp = Temporary(path);
        file.write_all(owner.as_bytes())
            .map_err(io_err("writing", &temp.0))?;
        Ok(temp)
    }

    /// The process a temporary's name says made it.
    fn pid_of(name: &str) -> Option<u32> {
        let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
        rest.split('-').next()?.parse().ok()
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IpamError {
    let path = path.to_owned();
    move |source| IpamError::Io {
        action,
        path,
        source,
    }
}

fn check_owner(owner: &str) -> Result<(), IpamError> {
    if owner.is_empty() || owner.contains('\n') {
        return Err(IpamError::InvalidOwner {
            owner: owner.into(),
        });
    }
    Ok(())
}

/// Whether two subnets share an address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Parse a subnet and its gateway (default: the first host), refusing host bits set, a
/// prefix longer than /30, and a gateway outside it or on its network/broadcast address.
pub fn validate_subnet(
    subnet: &str,
    gateway: Option<&str>,
) -> Result<(Ipv4Net, Ipv4Addr), IpamError> {
    let net: Ipv4Net = subnet.parse().map_err(|_| IpamError::InvalidSubnet {
        subnet: subnet.into(),
        reason: "not an IPv4 subnet in CIDR form (a.b.c.d/n)".into(),
    })?;
    check_subnet(subnet, net)?;
    let gateway = match gateway {
        None => Ipv4Addr::from(u32::from(net.network()) + 1),
        Some(text) => {
            let addr = text.parse().map_err(|_| IpamError::InvalidGateway {
                gateway: text.into(),
                subnet: net,
                reason: "not an IPv4 address".into(),
            })?;
            check_gateway(text, net, addr)?;
            addr
        }
    };
    Ok((net, gateway))
}

fn check_subnet(text: &str, net: Ipv4Net) -> Result<(), IpamError> {
    let invalid = |reason: String| IpamError::InvalidSubnet {
        subnet: text.into(),
        reason,
    };
    if net.addr() != net.network() {
        return Err(invalid(format!(
            "host bits set (the network is {})",
            net.trunc()
        )));
    }
    if net.prefix_len() > MAX_PREFIX {
        return Err(invalid(format!(
            "too small: the prefix may be at most /{MAX_PREFIX}"
        )));
    }
    Ok(())
}

fn check_gateway(text: &str, net: Ipv4Net, addr: Ipv4Addr) -> Result<(), IpamError> {
    let reason = if !net.contains(&addr) {
        "outside the subnet"
    } else if addr == net.network() {
        "it is the network address"
    } else if addr == net.broadcast() {
        "it is the broadcast address"
    } else {
        return Ok(());
    };
    Err(IpamError::InvalidGateway {
        gateway: text.into(),
        subnet: net,
        reason: reason.into(),
    })
}

/// The default pools, in order: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20 …
/// 192.168.240.0/20.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let wide = (17..=31u8).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let narrow = (0..16u8).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    wide.chain(narrow).filter_map(Result::ok)
}

/// The first default pool overlapping none of `taken`.
pub fn pick_subnet(taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    default_pools().find(|pool| !taken.iter().any(|t| overlaps(pool, t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn open(dir: &Path, subnet: &str) -> Ipam {
        let (subnet, gateway) = validate_subnet(subnet, None).unwrap();
        Ipam::open(dir, subnet, gateway).unwrap()
    }

    #[test]
    fn allocates_in_order_skipping_the_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = open(dir.path(), "10.1.0.0/24");
        assert_eq!(ipam.allocate("a", None).unwrap(), ip("10.1.0.2"));
        assert_eq!(ipam.allocate("b", None).unwrap(), ip("10.1.0.3"));
        assert_eq!(ipam.lookup("a"), Some(ip("10.1.0.2")));
        // Asking again for the same owner is the same address.
        assert_eq!(ipam.allocate("a", None).unwrap(), ip("10.1.0.2"));
        assert_eq!(
            fs::read_to_string(dir.path().join("10.1.0.3")).unwrap(),
            "b"
        );
        assert_eq!(
            ipam.allocations().unwrap(),
            vec![(ip("10.1.0.2"), "a".into()), (ip("10.1.0.3"), "b".into())]
        );
        // Nothing but the allocations stays in the directory.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn wanted_addresses_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = open(dir.path(), "10.1.0.0/24");
        assert_eq!(
            ipam.allocate("a", Some(ip("10.1.0.9"))).unwrap(),
            ip("10.1.0.9")
        );
        let err = ipam.allocate("b", Some(ip("10.1.0.9"))).unwrap_err();
        assert!(matches!(err, IpamError::InUse { .. }), "{err}");
        for reserved in ["10.1.0.0", "10.1.0.1", "10.1.0.255"] {
            let err = ipam.allocate("b", Some(ip(reserved))).unwrap_err();
            assert!(matches!(err, IpamError::Reserved { .. }), "{err}");
        }
        let err = ipam.allocate("b", Some(ip("10.2.0.9"))).unwrap_err();
        assert!(matches!(err, IpamError::OutsideSubnet { .. }), "{err}");
        let err = ipam.allocate("a", Some(ip("10.1.0.10"))).unwrap_err();
        assert!(matches!(err, IpamError::OwnerHasAddress { .. }), "{err}");
        let err = ipam.allocate("", None).unwrap_err();
        assert!(matches!(err, IpamError::InvalidOwner { .. }), "{err}");
        // None of the refusals took an address or left a file.
        assert_eq!(ipam.allocations().unwrap().len(), 1);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_full_subnet_is_refused_and_a_released_address_reused() {
        let dir = tempfile::tempdir().unwrap();
        // A /29: .0 network, .1 gateway, .7 broadcast, .2-.6 for containers.
        let ipam = open(dir.path(), "10.9.0.0/29");
        let got: Vec<_> = (0..5)
            .map(|i| ipam.allocate(&format!("c{i}"), None).unwrap())
            .collect();
        assert_eq!(got.first(), Some(&ip("10.9.0.2")));
        assert_eq!(got.last(), Some(&ip("10.9.0.6")));
        let err = ipam.allocate("c5", None).unwrap_err();
        assert!(matches!(err, IpamError::Full { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "subnet 10.9.0.0/29 is full: no address left"
        );
        assert!(ipam.release("c2").unwrap());
        assert!(!ipam.release("c2").unwrap(), "release is idempotent");
        assert_eq!(ipam.lookup("c2"), None);
        assert_eq!(ipam.allocate("c5", None).unwrap(), ip("10.9.0.4"));
        assert!(matches!(
            ipam.allocate("c6", None),
            Err(IpamError::Full { .. })
        ));
    }

    #[test]
    fn a_slash_30_holds_one_container() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = open(dir.path(), "10.9.0.4/30");
        assert_eq!(ipam.allocate("a", None).unwrap(), ip("10.9.0.6"));
        assert!(matches!(
            ipam.allocate("b", None),
            Err(IpamError::Full { .. })
        ));
    }

    #[test]
    fn concurrent_allocations_never_share_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let (subnet, gateway) = validate_subnet("10.3.0.0/24", None).unwrap();
        // Two values on one directory: as two processes would be.
        let first = Arc::new(Ipam::open(dir.path(), subnet, gateway).unwrap());
        let second = Arc::new(Ipam::open(dir.path(), subnet, gateway).unwrap());
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let ipam = if t % 2 == 0 { &first } else { &second }.clone();
                std::thread::spawn(move || {
                    (0..60)
                        .map(|i| ipam.allocate(&format!("t{t}-{i}"), None))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut full = 0;
        for worker in workers {
            for got in worker.join().unwrap() {
                match got {
                    Ok(addr) => assert!(seen.insert(addr), "{addr} given twice"),
                    Err(IpamError::Full { .. }) => full += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        // 240 of the 253 addresses (254 hosts less the gateway).
        assert_eq!(seen.len(), 240);
        assert_eq!(full, 0);
        assert_eq!(first.allocations().unwrap().len(), 240);
    }

    #[test]
    fn allocations_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ipam = open(dir.path(), "10.4.0.0/24");
            ipam.allocate("a", None).unwrap();
            ipam.allocate("b", None).unwrap();
        }
        let ipam = open(dir.path(), "10.4.0.0/24");
        assert_eq!(ipam.lookup("b"), Some(ip("10.4.0.3")));
        // The cursor continues after the highest address.
        assert_eq!(ipam.allocate("c", None).unwrap(), ip("10.4.0.4"));
        assert!(ipam.release("a").unwrap());
        let again = open(dir.path(), "10.4.0.0/24");
        assert_eq!(
            again.allocations().unwrap(),
            vec![(ip("10.4.0.3"), "b".into()), (ip("10.4.0.4"), "c".into())]
        );
    }

    #[test]
    fn release_finds_what_another_value_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path(), "10.5.0.0/24");
        let second = open(dir.path(), "10.5.0.0/24");
        second.allocate("x", None).unwrap();
        assert!(first.release("x").unwrap());
        assert!(first.allocations().unwrap().is_empty());
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // No process has pid 0x7ffffffe.
        let stale = dir.path().join(".2147483646-0.tmp");
        fs::write(&stale, "x").unwrap();
        let ipam = open(dir.path(), "10.6.0.0/24");
        assert!(!stale.exists());
        assert!(ipam.allocations().unwrap().is_empty());
    }

    #[test]
    fn validate_subnet_refuses_bad_input() {
        assert_eq!(
            validate_subnet("10.7.0.0/16", None).unwrap(),
            (net("10.7.0.0/16"), ip("10.7.0.1"))
        );
        assert_eq!(
            validate_subnet("10.7.0.0/16", Some("10.7.3.4")).unwrap(),
            (net("10.7.0.0/16"), ip("10.7.3.4"))
        );
        for (subnet, gateway, expect) in [
            ("10.7.0.0", None, "not an IPv4 subnet"),
            ("10.7.0.0/33", None, "not an IPv4 subnet"),
            ("fd00::/64", None, "not an IPv4 subnet"),
            (
                "10.7.0.1/16",
                None,
                "host bits set (the network is 10.7.0.0/16)",
            ),
            ("10.7.0.0/31", None, "too small"),
            ("10.7.0.0/32", None, "too small"),
            ("10.7.0.0/24", Some("10.8.0.1"), "outside the subnet"),
            ("10.7.0.0/24", Some("10.7.0.0"), "network address"),
            ("10.7.0.0/24", Some("10.7.0.255"), "broadcast address"),
            ("10.7.0.0/24", Some("gateway"), "not an IPv4 address"),
        ] {
            let err = validate_subnet(subnet, gateway).unwrap_err().to_string();
            assert!(err.contains(expect), "{subnet} {gateway:?}: {err}");
        }
    }

    #[test]
    fn open_refuses_what_validate_refuses() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Ipam::open(dir.path(), net("10.7.0.0/31"), ip("10.7.0.1")).is_err());
        assert!(Ipam::open(dir.path(), net("10.7.0.0/24"), ip("10.7.0.255")).is_err());
    }

    #[test]
    fn overlap_is_symmetric() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
        assert!(overlaps(&net("10.1.0.0/16"), &net("10.0.0.0/8")));
        assert!(overlaps(&net("10.1.0.0/16"), &net("10.1.0.0/16")));
        assert!(!overlaps(&net("10.1.0.0/16"), &net("10.2.0.0/16")));
    }

    #[test]
    fn pick_subnet_skips_taken_and_overlapping_pools() {
        assert_eq!(pick_subnet(&[]), Some(net("172.17.0.0/16")));
        assert_eq!(
            pick_subnet(&[net("172.17.0.0/16"), net("172.18.5.0/24")]),
            Some(net("172.19.0.0/16"))
        );
        // A wide route over all of 172.16.0.0/12 leaves the 192.168 pools.
        assert_eq!(
            pick_subnet(&[net("172.16.0.0/12"), net("192.168.1.0/24")]),
            Some(net("192.168.16.0/20"))
        );
        assert_eq!(
            pick_subnet(&[net("172.16.0.0/12"), net("192.168.0.0/16")]),
            None
        );
        assert_eq!(default_pools().count(), 31);
    }
}
