//! The networks service: what the scheduler and the front ends call.
//!
//! A container's way through it: [`Networks::admit`] when the request comes in (the
//! network must exist, published ports are checked and their host ports reserved: a
//! port in use is refused before anything is made), [`Networks::attach`] between the
//! runtime's create and start (the namespace exists, the program has not run yet), and
//! [`Networks::detach`] when it is deleted (also for a failed start). After a restart
//! [`Networks::recover`] keeps the attachments of live containers and undoes the rest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::bridge::{self, BridgeDriver, BridgeError, CONTAINER_IFNAME};
use crate::cni::{self, CachedAttachment, Cni, CniArgs, CniError, NetworkList};
use crate::config::{
    BridgeOptions, CniOptions, Driver, NetworkConfig, DEFAULT_NETWORK, RESERVED_NAMES,
};
use crate::firewall::{Firewall, FirewallError};
use crate::ipam::{self, Ipam, IpamError};
use crate::netns::{self, NetnsError};
use crate::ports::{self, PortError, PortMapping, Reservation};
use crate::request::NetworkRequest;
use crate::store::{Attachment, Store, StoreError};

/// Where the service keeps things and finds CNI networks.
#[derive(Debug, Clone)]
pub struct NetworksConfig {
    /// Network definitions (persistent), e.g. `/var/lib/berth/network`.
    pub root: PathBuf,
    /// Attachments, allocations and CNI results (on the state tmpfs).
    pub state: PathBuf,
    /// The default bridge network's subnet; `None`: the first free default pool.
    pub default_subnet: Option<Ipv4Net>,
    /// Where CNI network configurations are read from.
    pub cni_conf_dir: PathBuf,
    /// Where CNI plugins are looked for.
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// How long one CNI plugin may run.
    pub cni_timeout: Duration,
}

impl NetworksConfig {
    /// The defaults beside the given roots: `/etc/cni/net.d`, plugins in `/usr/lib/cni`
    /// and `/opt/cni/bin`, 30 s per plugin.
    pub fn new(root: PathBuf, state: PathBuf) -> Self {
        NetworksConfig {
            root,
            state,
            default_subnet: None,
            cni_conf_dir: PathBuf::from("/etc/cni/net.d"),
            cni_plugin_dirs: vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")],
            cni_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a network operation failed. [`NetworkError::code`] is the API's error code.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No network has that name.
    #[error("no network named {0:?}")]
    NotFound(String),
    /// The name is taken.
    #[error("a network named {0:?} exists")]
    Exists(String),
    /// The network has containers attached.
    #[error("network {network:?} has containers attached: {}", containers.join(", "))]
    InUse {
        /// The network.
        network: String,
        /// Some of them.
        containers: Vec<String>,
    },
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The network cannot be removed (the default network, or one from a CNI file).
    #[error("network {0:?} cannot be removed: {1}")]
    Predefined(String, &'static str),
    /// The subnet overlaps another network or a route of the host.
    #[error("subnet {subnet} overlaps {with}")]
    Overlap {
        /// The subnet asked for.
        subnet: Ipv4Net,
        /// What it overlaps.
        with: String,
    },
    /// No free subnet is left in the default pools.
    #[error("no free subnet is left in the default pools; give one")]
    NoSubnet,
    /// A port problem (in use, malformed).
    #[error(transparent)]
    Port(#[from] PortError),
    /// An address problem (the subnet is full, an address is taken).
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// The native driver failed.
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    /// The firewall could not be changed.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// The firewall cannot be used at all (iptables missing).
    #[error("the firewall is unusable: {0}")]
    FirewallUnusable(String),
    /// A CNI plugin failed.
    #[error(transparent)]
    Cni(#[from] CniError),
    /// The container's network namespace could not be opened.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// Files of the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NetworkError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            NetworkError::NotFound(_) => "network_not_found",
            NetworkError::Exists(_) => "conflict",
            NetworkError::InUse { .. } => "network_in_use",
            NetworkError::Invalid(_) => "invalid_network",
            NetworkError::Predefined(..) => "predefined_network",
            NetworkError::Overlap { .. } => "subnet_overlap",
            NetworkError::NoSubnet => "no_subnet",
            NetworkError::Port(PortError::InUse { .. }) => "port_in_use",
            NetworkError::Port(_) => "invalid_port",
            NetworkError::Ipam(IpamError::Full { .. }) => "network_full",
            NetworkError::Ipam(IpamError::Io { .. }) => "network_failed",
            NetworkError::Ipam(_) => "invalid_network",
            NetworkError::Bridge(_)
            | NetworkError::Firewall(_)
            | NetworkError::FirewallUnusable(_)
            | NetworkError::Netns(_)
            | NetworkError::Store(_) => "network_failed",
            NetworkError::Cni(_) => "cni_failed",
        }
    }
}

/// What `POST /v1/networks` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNetwork {
    /// The name.
    pub name: String,
    /// `bridge` (the default; CNI networks come from files, not from requests).
    #[serde(default)]
    pub driver: Option<String>,
    /// e.g. `10.5.0.0/24`; none: a free one from the default pools.
    #[serde(default)]
    pub subnet: Option<String>,
    /// An address in the subnet; none: its first host address.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Masquerade traffic leaving the host (default true).
    #[serde(default)]
    pub masquerade: Option<bool>,
    /// No route out of the network.
    #[serde(default)]
    pub internal: bool,
    /// The MTU of the bridge and the containers' interfaces.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A network and who is on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetworkInfo {
    /// The definition.
    #[serde(flatten)]
    pub config: NetworkConfig,
    /// The containers attached, by id.
    pub containers: BTreeMap<String, ContainerOnNetwork>,
}

/// A container as a network's inspect shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerOnNetwork {
    /// Its address and prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Net>,
    /// Its MAC address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Its published ports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
}

/// The service.
pub struct Networks {
    config: NetworksConfig,
    store: Store,
    bridge: BridgeDriver,
    cni: Cni,
    /// Made at first need: a daemon whose containers publish nothing and use no bridge
    /// never runs iptables.
    firewall: OnceLock<Result<Arc<Firewall>, String>>,
    inner: Mutex<Inner>,
    /// Held while a network is defined (its subnet picked), or its bridge and rules
    /// made: the first containers of a network arrive together, and one makes them.
    making: Mutex<()>,
}

#[derive(Default)]
struct Inner {
    /// Bridge networks by name (CNI ones are read from their directory when asked).
    networks: BTreeMap<String, NetworkConfig>,
    /// Allocators by network id.
    ipams: HashMap<String, Arc<Ipam>>,
    /// Host ports held for containers, by container id (from admit to detach).
    reserved: HashMap<String, (Vec<PortMapping>, Reservation)>,
    /// Attachments by container id.
    attachments: HashMap<String, Attachment>,
    /// Bridge networks whose bridge and rules were made by this process.
    ready: HashSet<String>,
    /// The network namespaces of CNI attachments, held open until their DEL: plugins
    /// undo part of their work (the bridge plugin's masquerade rules) only inside it, and
    /// a container's `/proc/<pid>` path may name another process by then.
    pinned: HashMap<String, OwnedFd>,
}

impl Networks {
    /// Open the service: the definitions on disk, and the default bridge network
    /// ([`DEFAULT_NETWORK`]) defined if it is not (nothing is made in the kernel until a
    /// container joins a network).
    pub fn open(config: NetworksConfig) -> Result<Networks, NetworkError> {
        let store = Store::open(&config.root, &config.state)?;
        let cni = Cni::new(
            config.cni_plugin_dirs.clone(),
            store.cni_cache_dir(),
            config.cni_timeout,
        );
        let networks = store
            .networks()?
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        let service = Networks {
            config,
            store,
            bridge: BridgeDriver::new(),
            cni,
            firewall: OnceLock::new(),
            inner: Mutex::new(Inner {
                networks,
                ..Inner::default()
            }),
            making: Mutex::new(()),
        };
        service.define_default()?;
        Ok(service)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn define_default(&self) -> Result<(), NetworkError> {
        if self.lock().networks.contains_key(DEFAULT_NETWORK) {
            return Ok(());
        }
        let subnet = self.config.default_subnet.map(|s| s.to_string());
        self.define(CreateNetwork {
            name: DEFAULT_NETWORK.into(),
            subnet,
            ..CreateNetwork::default()
        })
        .map(drop)
    }

    /// Create a bridge network (the kernel's part is made when a container first joins).
    pub fn create(&self, req: CreateNetwork) -> Result<NetworkConfig, NetworkError> {
        if RESERVED_NAMES.contains(&req.name.as_str()) || req.name == DEFAULT_NETWORK {
            return Err(NetworkError::Invalid(format!(
                "{:?} is a reserved network name",
                req.name
            )));
        }
        self.define(req)
    }

    fn define(&self, req: CreateNetwork) -> Result<NetworkConfig, NetworkError> {
        check_name(&req.name)?;
        match req.driver.as_deref() {
            None | Some("bridge") => {}
            Some(other) => {
                return Err(NetworkError::Invalid(format!(
                    "driver {other:?}: only bridge networks are created by request (CNI networks are read from {})",
                    self.config.cni_conf_dir.display()
                )))
            }
        }
        if req.mtu.is_some_and(|m| !(68..=65535).contains(&m)) {
            return Err(NetworkError::Invalid(
                "mtu must be between 68 and 65535".into(),
            ));
        }
        if self.cni_network(&req.name).is_some() {
            return Err(NetworkError::Exists(req.name));
        }
        // One definition at a time: two picks of a free subnet must not meet.
        let _defining = self.making.lock().unwrap_or_else(|p| p.into_inner());
        let taken = self.taken_subnets();
        let mut inner = self.lock();
        if inner.networks.contains_key(&req.name) {
            return Err(NetworkError::Exists(req.name));
        }
        let (subnet, gateway) = match &req.subnet {
            Some(text) => {
                let (subnet, gateway) = ipam::validate_subnet(text, req.gateway.as_deref())?;
                if let Some((_, with)) = taken.iter().find(|(t, _)| ipam::overlaps(t, &subnet)) {
                    return Err(NetworkError::Overlap {
                        subnet,
                        with: with.clone(),
                    });
                }
                (subnet, gateway)
            }
            None => {
                if req.gateway.is_some() {
                    return Err(NetworkError::Invalid("a gateway needs a subnet".into()));
                }
                let all: Vec<Ipv4Net> = taken.iter().map(|(t, _)| *t).collect();
                let subnet = ipam::pick_subnet(&all).ok_or(NetworkError::NoSubnet)?;
                ipam::validate_subnet(&subnet.to_string(), None)?
            }
        };
        let id = new_id();
        let bridge = if req.name == DEFAULT_NETWORK {
            DEFAULT_NETWORK.to_owned()
        } else {
            format!("br-{}", &id[..12])
        };
        let network = NetworkConfig {
            name: req.name.clone(),
            id,
            driver: Driver::Bridge(BridgeOptions {
                bridge,
                subnet,
                gateway,
                masquerade: req.masquerade.unwrap_or(true) && !req.internal,
                internal: req.internal,
                mtu: req.mtu,
            }),
            created: now_rfc3339(),
            labels: req.labels,
        };
        self.store.put_network(&network)?;
        inner.networks.insert(network.name.clone(), network.clone());
        Ok(network)
    }

    /// Subnets a new network must not overlap: the other networks' and the host's
    /// routes (except those of Berth's own bridges), each with what it is.
    fn taken_subnets(&self) -> Vec<(Ipv4Net, String)> {
        let inner = self.lock();
        let mut taken: Vec<(Ipv4Net, String)> = inner
            .networks
            .values()
            .filter_map(|n| match &n.driver {
                Driver::Bridge(b) => Some((b.subnet, format!("network {:?}", n.name))),
                Driver::Cni(_) => None,
            })
            .collect();
        let ours: Vec<Ipv4Net> = taken.iter().map(|(s, _)| *s).collect();
        drop(inner);
        match crate::netlink::Netlink::open().and_then(|mut nl| nl.routes_v4()) {
            Ok(routes) => taken.extend(
                routes
                    .into_iter()
                    .filter(|r| r.prefix_len() > 0 && !ours.contains(r))
                    .map(|r| (r, format!("the host's route to {r}"))),
            ),
            Err(e) => tracing::warn!("reading the host's routes: {e}"),
        }
        taken
    }

    /// Every network: bridge networks and those of the CNI directory.
    pub fn list(&self) -> Vec<NetworkInfo> {
        let inner = self.lock();
        let mut all: Vec<NetworkConfig> = inner.networks.values().cloned().collect();
        drop(inner);
        all.extend(
            self.cni_networks()
                .into_iter()
                .filter(|c| !all.iter().any(|n| n.name == c.name))
                .collect::<Vec<_>>(),
        );
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.into_iter().map(|n| self.info(n)).collect()
    }

    /// One network by name (or id, or a unique id prefix of at least 12 characters).
    pub fn get(&self, name: &str) -> Result<NetworkInfo, NetworkError> {
        self.find(name).map(|n| self.info(n))
    }

    fn find(&self, name: &str) -> Result<NetworkConfig, NetworkError> {
        let inner = self.lock();
        if let Some(n) = inner.networks.get(name) {
            return Ok(n.clone());
        }
        if name.len() >= 12 {
            if let Some(n) = inner.networks.values().find(|n| n.id.starts_with(name)) {
                return Ok(n.clone());
            }
        }
        drop(inner);
        self.cni_network(name)
            .ok_or_else(|| NetworkError::NotFound(name.to_owned()))
    }

    fn info(&self, config: NetworkConfig) -> NetworkInfo {
        let containers = self
            .lock()
            .attachments
            .values()
            .filter(|a| a.network == config.name)
            .map(|a| {
                (
                    a.container.clone(),
                    ContainerOnNetwork {
                        address: a.address,
                        mac: a.mac.clone(),
                        ports: a.ports.clone(),
                    },
                )
            })
            .collect();
        NetworkInfo { config, containers }
    }

    /// Remove a bridge network without live containers (`live(id)`: also one being
    /// created, which may be attaching now): its bridge, rules and definition. Stopped containers still on it are detached first, as docker
    /// does (their namespace is gone; they keep their records).
    pub fn remove(
        &self,
        name: &str,
        live: &dyn Fn(&str) -> bool,
    ) -> Result<NetworkConfig, NetworkError> {
        let network = self.find(name)?;
        let Driver::Bridge(opts) = &network.driver else {
            return Err(NetworkError::Predefined(
                network.name,
                "it is defined by a CNI configuration file",
            ));
        };
        if network.name == DEFAULT_NETWORK {
            return Err(NetworkError::Predefined(
                network.name,
                "it is the default network",
            ));
        }
        let on_it = |inner: &Inner| -> Vec<String> {
            inner
                .attachments
                .values()
                .filter(|a| a.network == network.name)
                .map(|a| a.container.clone())
                .collect()
        };
        // Listed first, asked after: `live` takes the engine's record locks, which must
        // never wait behind ours.
        let ids = on_it(&self.lock());
        let (users, stopped): (Vec<String>, Vec<String>) = ids.into_iter().partition(|id| live(id));
        if users.is_empty() {
            for id in stopped {
                self.detach(&id)?;
            }
        }
        let mut inner = self.lock();
        let users = on_it(&inner);
        if !users.is_empty() {
            return Err(NetworkError::InUse {
                network: network.name,
                containers: users,
            });
        }
        // Held while the kernel's part goes: no attach can begin meanwhile.
        if let Some(Ok(fw)) = self.firewall.get() {
            fw.remove_network(opts)?;
        }
        self.bridge.remove_network(opts)?;
        inner.ready.remove(&network.id);
        inner.ipams.remove(&network.id);
        let dir = self.store.ipam_dir(&network.id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), "removing allocations: {e}");
            }
        }
        self.store.remove_network(&network.name)?;
        inner.networks.remove(&network.name);
        Ok(network)
    }

    /// Check a container's request as it comes in: the network exists, ports are well
    /// formed, allowed on it and free (their host ports are then held for the
    /// container until [`Networks::detach`]).
    pub fn admit(&self, container: &str, req: &NetworkRequest) -> Result<(), NetworkError> {
        let Some(name) = req.mode.network() else {
            if !req.ports.is_empty() {
                return Err(NetworkError::Invalid(format!(
                    "published ports need a network, not network mode {}",
                    req.mode
                )));
            }
            return Ok(());
        };
        let network = self.find(name)?;
        if req.ports.is_empty() {
            return Ok(());
        }
        match &network.driver {
            Driver::Bridge(b) if b.internal => {
                return Err(NetworkError::Invalid(format!(
                    "network {:?} is internal: nothing can be published on it",
                    network.name
                )));
            }
            Driver::Cni(c) if !publishes(&cni::load_file(&c.file)?) => {
                return Err(NetworkError::Invalid(format!(
                    "CNI network {:?}: no plugin of {} takes portMappings (add portmap)",
                    network.name,
                    c.file.display()
                )));
            }
            _ => {}
        }
        ports::validate(&req.ports)?;
        let (resolved, reservation) = ports::reserve(&req.ports)?;
        self.lock()
            .reserved
            .insert(container.to_owned(), (resolved, reservation));
        Ok(())
    }

    /// Give container `container`, whose init is `pid` (created, not started), its place
    /// on the network `req` names. Nothing for the other modes. On failure nothing of
    /// it is left.
    pub fn attach(
        &self,
        container: &str,
        req: &NetworkRequest,
        pid: i32,
    ) -> Result<Option<Attachment>, NetworkError> {
        let Some(name) = req.mode.network() else {
            return Ok(None);
        };
        let network = self.find(name)?;
        let ports = self.held_ports(container, req)?;
        let netns_path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let mut attachment = Attachment {
            container: container.to_owned(),
            network: network.name.clone(),
            network_id: network.id.clone(),
            interface: CONTAINER_IFNAME.to_owned(),
            host_interface: None,
            address: None,
            gateway: None,
            mac: None,
            ports,
            netns: Some(netns_path.clone()),
            complete: false,
        };
        if let Driver::Bridge(_) = network.driver {
            attachment.host_interface = Some(bridge::host_ifname(container));
        }
        // Recorded before anything is made: a daemon killed midway finds it at restart.
        self.store.put_attachment(&attachment)?;
        self.lock()
            .attachments
            .insert(container.to_owned(), attachment.clone());
        let made = match &network.driver {
            Driver::Bridge(opts) => self.attach_bridge(&network, opts, &mut attachment, pid),
            Driver::Cni(opts) => self.attach_cni(opts, &mut attachment, pid),
        };
        if let Err(e) = made {
            if let Err(undo) = self.detach(container) {
                tracing::warn!(%container, "undoing a failed attach: {undo}");
            }
            return Err(e);
        }
        attachment.complete = true;
        self.store.put_attachment(&attachment)?;
        self.lock()
            .attachments
            .insert(container.to_owned(), attachment.clone());
        Ok(Some(attachment))
    }

    /// The ports admit held for the container; held now if admit did not run in this
    /// process (a job queued before a restart), refused if taken meanwhile.
    fn held_ports(
        &self,
        container: &str,
        req: &NetworkRequest,
    ) -> Result<Vec<PortMapping>, NetworkError> {
        if let Some((ports, _)) = self.lock().reserved.get(container) {
            return Ok(ports.clone());
        }
        if req.ports.is_empty() {
            return Ok(Vec::new());
        }
        ports::validate(&req.ports)?;
        let (ports, reservation) = ports::reserve(&req.ports)?;
        self.lock()
            .reserved
            .insert(container.to_owned(), (ports.clone(), reservation));
        Ok(ports)
    }

    fn attach_bridge(
        &self,
        network: &NetworkConfig,
        opts: &BridgeOptions,
        attachment: &mut Attachment,
        pid: i32,
    ) -> Result<(), NetworkError> {
        self.ensure_ready(network, opts)?;
        let ipam = self.ipam(network, opts)?;
        let address = ipam.allocate(&attachment.container, None)?;
        attachment.address = Some(
            Ipv4Net::new(address, opts.subnet.prefix_len())
                .map_err(|e| NetworkError::Invalid(e.to_string()))?,
        );
        attachment.gateway = Some(opts.gateway);
        let ns = netns::open(pid)?;
        let host_ifname = attachment
            .host_interface
            .clone()
            .unwrap_or_else(|| bridge::host_ifname(&attachment.container));
        let info = self
            .bridge
            .attach(opts, ns.as_fd(), &host_ifname, address)?;
        attachment.mac = Some(info.mac);
        if !attachment.ports.is_empty() {
            self.firewall()?
                .publish(&attachment.container, opts, address, &attachment.ports)?;
        }
        Ok(())
    }

    fn attach_cni(
        &self,
        opts: &CniOptions,
        attachment: &mut Attachment,
        pid: i32,
    ) -> Result<(), NetworkError> {
        let list = cni::load_file(&opts.file)?;
        let ns = netns::open(pid)?;
        let netns_path = pinned_path(&ns);
        // Pinned first: a failed ADD's own DEL, and every later one, find it.
        self.lock().pinned.insert(attachment.container.clone(), ns);
        let args = CniArgs {
            args: vec![("IgnoreUnknown".into(), "1".into())],
            port_mappings: attachment.ports.clone(),
        };
        let result = self.cni.add(
            &list,
            &attachment.container,
            &netns_path,
            CONTAINER_IFNAME,
            &args,
        )?;
        if let Some((address, gateway)) = result.first_ipv4() {
            attachment.address = Some(address);
            attachment.gateway = gateway;
        }
        Ok(())
    }

    /// The bridge and its rules, made once per network by this process (idempotent in
    /// the kernel: a restart finds them there).
    fn ensure_ready(
        &self,
        network: &NetworkConfig,
        opts: &BridgeOptions,
    ) -> Result<(), NetworkError> {
        if self.lock().ready.contains(&network.id) {
            return Ok(());
        }
        let _making = self.making.lock().unwrap_or_else(|p| p.into_inner());
        if self.lock().ready.contains(&network.id) {
            return Ok(());
        }
        self.bridge.ensure_network(opts)?;
        let firewall = self.firewall()?;
        firewall.ensure_base()?;
        firewall.add_network(opts)?;
        self.lock().ready.insert(network.id.clone());
        Ok(())
    }

    fn firewall(&self) -> Result<Arc<Firewall>, NetworkError> {
        match self
            .firewall
            .get_or_init(|| Firewall::new().map(Arc::new).map_err(|e| e.to_string()))
        {
            Ok(fw) => Ok(Arc::clone(fw)),
            Err(e) => Err(NetworkError::FirewallUnusable(e.clone())),
        }
    }

    fn ipam(
        &self,
        network: &NetworkConfig,
        opts: &BridgeOptions,
    ) -> Result<Arc<Ipam>, NetworkError> {
        let mut inner = self.lock();
        if let Some(ipam) = inner.ipams.get(&network.id) {
            return Ok(Arc::clone(ipam));
        }
        let ipam = Arc::new(Ipam::open(
            &self.store.ipam_dir(&network.id),
            opts.subnet,
            opts.gateway,
        )?);
        inner.ipams.insert(network.id.clone(), Arc::clone(&ipam));
        Ok(ipam)
    }

    /// Undo everything [`Networks::admit`] and [`Networks::attach`] did for the
    /// container (idempotent; each part is undone even when another fails — the first
    /// failure is returned).
    pub fn detach(&self, container: &str) -> Result<(), NetworkError> {
        let mut inner = self.lock();
        inner.reserved.remove(container);
        let attachment = inner.attachments.remove(container);
        // The namespace held since a CNI ADD goes with its DEL, whichever way it runs.
        let pinned = inner.pinned.remove(container);
        drop(inner);
        let Some(attachment) = attachment else {
            return Ok(());
        };
        let mut first: Option<NetworkError> = None;
        let mut keep = |r: Result<(), NetworkError>| {
            if let Err(e) = r {
                tracing::warn!(%container, "detaching: {e}");
                first.get_or_insert(e);
            }
        };
        // By id: a network removed and made again under the same name is another one.
        match self.find_id(&attachment.network_id) {
            Some(network) => match &network.driver {
                Driver::Bridge(opts) => {
                    self.detach_kernel(&attachment, &mut keep);
                    keep(
                        self.ipam(&network, opts)
                            .and_then(|ipam| Ok(ipam.release(container).map(drop)?)),
                    );
                }
                Driver::Cni(opts) => keep(self.detach_cni(opts, &attachment, pinned.as_ref())),
            },
            // The network went: what the attachment names is undone all the same (its
            // veth and port rules; a CNI file's results from the cache).
            None => {
                self.detach_kernel(&attachment, &mut keep);
                keep(self.detach_cached(container, pinned.as_ref()));
            }
        }
        drop(pinned);
        match first {
            None => Ok(self.store.remove_attachment(container)?),
            Some(e) => {
                // Kept, so a later delete (or a restart) tries again.
                self.lock()
                    .attachments
                    .insert(container.to_owned(), attachment);
                Err(e)
            }
        }
    }

    /// A bridge attachment's port rules and veth.
    fn detach_kernel(
        &self,
        attachment: &Attachment,
        keep: &mut impl FnMut(Result<(), NetworkError>),
    ) {
        if !attachment.ports.is_empty() {
            keep(
                self.firewall()
                    .and_then(|fw| Ok(fw.unpublish(&attachment.container)?)),
            );
        }
        if let Some(host) = &attachment.host_interface {
            keep(self.bridge.detach(host).map_err(Into::into));
        }
    }

    /// The network with this id (bridge or CNI).
    fn find_id(&self, id: &str) -> Option<NetworkConfig> {
        let inner = self.lock();
        if let Some(n) = inner.networks.values().find(|n| n.id == id) {
            return Some(n.clone());
        }
        drop(inner);
        self.cni_networks().into_iter().find(|n| n.id == id)
    }

    fn detach_cni(
        &self,
        opts: &CniOptions,
        attachment: &Attachment,
        pinned: Option<&OwnedFd>,
    ) -> Result<(), NetworkError> {
        // Only the namespace held since the ADD: a path kept on disk may name another
        // process's by now (a reused pid), where DEL would remove an `eth0` not ours.
        let netns = pinned.map(pinned_path);
        match cni::load_file(&opts.file) {
            Ok(list) => Ok(self.cni.del(
                &list,
                &attachment.container,
                netns.as_deref(),
                &attachment.interface,
            )?),
            Err(_) => self.detach_cached(&attachment.container, pinned),
        }
    }

    /// CNI DEL from the cache alone, in the namespace held since the ADD if there is
    /// one, else without a namespace (see [`Networks::detach_cni`]).
    fn detach_cached(&self, container: &str, pinned: Option<&OwnedFd>) -> Result<(), NetworkError> {
        for entry in self.cni.cached() {
            if entry.container_id == container {
                self.cni.del_cached(&CachedAttachment {
                    netns: pinned.map(pinned_path),
                    ..entry
                })?;
            }
        }
        Ok(())
    }

    /// After a restart: keep what live containers have (their host ports held again),
    /// undo the rest — attachments of containers that are gone, half-made ones, CNI
    /// results and port rules nothing owns. `alive(id)` gives the init's pid of a
    /// container that still runs, 0 for one not yet made (queued, being created: the
    /// start workers run already), `None` for one that is gone.
    pub fn recover(&self, alive: &dyn Fn(&str) -> Option<i32>) {
        let stored = match self.store.attachments() {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!("reading attachments: {e}");
                Vec::new()
            }
        };
        for attachment in stored {
            let id = attachment.container.clone();
            // A container still on its way (pid 0: queued or being created by a worker
            // now) keeps whatever it has; a running one only a complete attachment.
            let pid = alive(&id).filter(|p| *p == 0 || attachment.complete);
            let live = pid.is_some();
            if let (Some(pid @ 1..), true) = (pid, self.is_cni(&attachment.network)) {
                match netns::open(pid) {
                    Ok(ns) => {
                        self.lock().pinned.insert(id.clone(), ns);
                    }
                    Err(e) => tracing::warn!(container = %id, "holding its namespace again: {e}"),
                }
            }
            if live && !attachment.ports.is_empty() {
                match ports::reserve(&attachment.ports) {
                    Ok((ports, reservation)) => {
                        self.lock()
                            .reserved
                            .insert(id.clone(), (ports, reservation));
                    }
                    Err(e) => {
                        tracing::warn!(container = %id, "holding its published ports again: {e}")
                    }
                }
            }
            self.lock().attachments.insert(id.clone(), attachment);
            if !live {
                if let Err(e) = self.detach(&id) {
                    tracing::warn!(container = %id, "releasing the network of a container that is gone: {e}");
                }
            }
        }
        for entry in self.cni.cached() {
            if alive(&entry.container_id).is_none()
                && !self.lock().attachments.contains_key(&entry.container_id)
            {
                let entry = CachedAttachment {
                    netns: None,
                    ..entry
                };
                if let Err(e) = self.cni.del_cached(&entry) {
                    tracing::warn!(container = %entry.container_id, "CNI DEL from the cache: {e}");
                }
            }
        }
        self.release_unowned(alive);
    }

    /// Port rules and addresses whose container is gone and which no attachment names.
    fn release_unowned(&self, alive: &dyn Fn(&str) -> Option<i32>) {
        let known = |id: &str| alive(id).is_some();
        if let Ok(fw) = self.firewall() {
            match fw.published() {
                Ok(ids) => {
                    for id in ids.into_iter().filter(|id| !known(id)) {
                        if let Err(e) = fw.unpublish(&id) {
                            tracing::warn!(container = %id, "removing port rules: {e}");
                        }
                    }
                }
                Err(e) => tracing::warn!("reading the port rules: {e}"),
            }
        }
        let networks: Vec<NetworkConfig> = self.lock().networks.values().cloned().collect();
        for network in networks {
            let Driver::Bridge(opts) = &network.driver else {
                continue;
            };
            if !self.store.ipam_dir(&network.id).exists() {
                continue;
            }
            let Ok(ipam) = self.ipam(&network, opts) else {
                continue;
            };
            for (address, owner) in ipam.allocations().unwrap_or_default() {
                if !known(&owner) {
                    tracing::info!(container = %owner, %address, "releasing an address nothing owns");
                    let _ = ipam.release(&owner);
                }
            }
        }
    }

    /// The attachment of a container, if it has one.
    pub fn attachment(&self, container: &str) -> Option<Attachment> {
        self.lock().attachments.get(container).cloned()
    }

    fn is_cni(&self, network: &str) -> bool {
        self.find(network)
            .is_ok_and(|n| matches!(n.driver, Driver::Cni(_)))
    }

    fn cni_networks(&self) -> Vec<NetworkConfig> {
        let (lists, errors) = cni::load_dir(&self.config.cni_conf_dir);
        for e in errors {
            tracing::debug!("CNI configuration skipped: {e}");
        }
        lists.into_iter().map(cni_config).collect()
    }

    fn cni_network(&self, name: &str) -> Option<NetworkConfig> {
        self.cni_networks().into_iter().find(|n| n.name == name)
    }
}

/// A stable id for the network of a CNI file: the same file, the same id.
fn cni_id(file: &Path) -> String {
    use std::hash::{Hash, Hasher};
    (0u8..4)
        .map(|round| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (file, round).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// Whether a plugin of the list publishes ports (declares the `portMappings` capability).
fn publishes(list: &NetworkList) -> bool {
    list.plugins
        .iter()
        .any(|p| p["capabilities"]["portMappings"] == serde_json::Value::Bool(true))
}

/// The path CNI plugins reach a namespace held by this process at.
fn pinned_path(ns: &OwnedFd) -> PathBuf {
    PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        ns.as_raw_fd()
    ))
}

/// A CNI list as a network.
fn cni_config(list: NetworkList) -> NetworkConfig {
    NetworkConfig {
        id: cni_id(&list.file),
        name: list.name.clone(),
        driver: Driver::Cni(CniOptions {
            file: list.file,
            cni_name: list.name,
        }),
        created: String::new(),
        labels: BTreeMap::new(),
    }
}

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64 characters.
fn check_name(name: &str) -> Result<(), NetworkError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::Invalid(format!(
            "network name {:?}: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// 64 random hex characters.
fn new_id() -> String {
    (0..4)
        .map(|_| format!("{:016x}", fastrand::u64(..)))
        .collect()
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        assert!(check_name("front-end_1.a").is_ok());
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
    }
}
