//! NAT, forwarding and published ports as iptables rules.
//!
//! Every change is one `iptables-restore --noflush` run holding all of its rules, so it
//! applies whole or not at all. Berth touches only its own chains (`BERTH-*`) and the
//! jumps to them from the built-in chains; every rule it adds carries a comment naming
//! what it belongs to (`berth:base`, `berth:net:<bridge>`, `berth:ctr:<container>`), so
//! the current rules, read back with `iptables-save`, say what to remove and which
//! containers have published ports after a restart.
//!
//! The layout: nat `PREROUTING`/`OUTPUT` (destination a local address) jump to
//! `BERTH-PREROUTING`/`BERTH-OUTPUT`, which jump to one chain per publishing container
//! holding its DNAT rules; nat `POSTROUTING` jumps to `BERTH-POSTROUTING` (masquerade).
//! filter `FORWARD` jumps to `BERTH-FORWARD`: first `BERTH-PUBLISHED` (per container
//! chains accepting its published ports), then `BERTH-ISOLATION` (drops), then each
//! network's accepts.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::config::BridgeOptions;
use crate::ports::{PortMapping, Protocol};

/// nat chains of Berth's own.
const NAT_PREROUTING: &str = "BERTH-PREROUTING";
const NAT_OUTPUT: &str = "BERTH-OUTPUT";
const NAT_POSTROUTING: &str = "BERTH-POSTROUTING";
/// filter chains of Berth's own.
const FORWARD: &str = "BERTH-FORWARD";
const PUBLISHED: &str = "BERTH-PUBLISHED";
const ISOLATION: &str = "BERTH-ISOLATION";
/// The prefix of a container's chain (then 16 hex digits of a hash of its id).
const CONTAINER_PREFIX: &str = "BERTH-C-";
/// The comment of the base jumps.
const BASE_TAG: &str = "berth:base";
/// The longest container id a comment can carry (iptables comments: 255 bytes).
const MAX_ID: usize = 240;

/// The longest interface name (IFNAMSIZ less its NUL).
const MAX_IFNAME: usize = 15;

/// One change at a time per process: each reads the rules, then writes its change.
static LOCK: Mutex<()> = Mutex::new(());

/// Why a firewall change failed.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// An iptables binary is not installed.
    #[error("{program} not found (searched {searched}); install iptables")]
    Missing {
        /// The binary looked for.
        program: String,
        /// Where it was looked for.
        searched: String,
    },
    /// A binary could not be run.
    #[error("running {program}: {source}")]
    Spawn {
        /// The binary.
        program: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `iptables-restore` refused the transaction.
    #[error("{program} failed ({status}) at {line:?}: {stderr}")]
    Restore {
        /// The binary.
        program: PathBuf,
        /// Its exit status.
        status: String,
        /// The transaction line it names as failed (or the whole transaction).
        line: String,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// `iptables-save` failed.
    #[error("{program} failed ({status}): {stderr}")]
    Save {
        /// The binary.
        program: PathBuf,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// A container id or bridge name that cannot be written into a rule.
    #[error("{what} {name:?} cannot name firewall rules: {reason}")]
    BadName {
        /// "container" or "bridge".
        what: &'static str,
        /// The name.
        name: String,
        /// Why not.
        reason: String,
    },
    /// Ports published on an internal network.
    #[error(
        "network bridge {bridge} is internal: it cannot publish ports (container {container})"
    )]
    Internal {
        /// The bridge.
        bridge: String,
        /// The container.
        container: String,
    },
    /// A mapping the firewall cannot express.
    #[error("container {container}: cannot publish {mapping}: {reason}")]
    Port {
        /// The container.
        container: String,
        /// The mapping, in `-p` syntax.
        mapping: String,
        /// Why not.
        reason: String,
    },
}

/// The iptables binaries of one backend (nft or legacy), used for every change.
#[derive(Debug, Clone)]
pub struct Firewall {
    restore: PathBuf,
    save: PathBuf,
}

/// Where iptables binaries are looked for, after `$PATH`.
const SBIN_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

impl Firewall {
    /// Find `iptables-restore` and `iptables-save` of the backend `iptables-restore`
    /// resolves to (never a mix of nft and legacy).
    pub fn new() -> Result<Firewall, FirewallError> {
        let dirs = search_dirs();
        let restore = find(&dirs, "iptables-restore")?;
        // Resolve the alternatives symlinks to the backend's own names so that save
        // and restore cannot drift apart.
        let backend = match std::fs::canonicalize(&restore) {
            Ok(p) if p.ends_with("xtables-legacy-multi") => Some("legacy"),
            Ok(p) if p.ends_with("xtables-nft-multi") => Some("nft"),
            _ => None,
        };
        let (restore, save) = match backend {
            Some(b) => (
                find(&dirs, &format!("iptables-{b}-restore"))?,
                find(&dirs, &format!("iptables-{b}-save"))?,
            ),
            None => (restore, find(&dirs, "iptables-save")?),
        };
        Ok(Firewall { restore, save })
    }

    /// The `iptables-restore` binary in use.
    pub fn restore_program(&self) -> &Path {
        &self.restore
    }

    /// Berth's own chains and the jumps to them, made where missing (idempotent, one
    /// transaction; nothing else is touched).
    pub fn ensure_base(&self) -> Result<(), FirewallError> {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let rules = self.read()?;
        let mut tx = Tx::default();
        base(&rules, &mut tx);
        self.apply(&tx)
    }

    /// A network's rules (masquerade, forwarding, isolation), replacing any it has.
    pub fn add_network(&self, opts: &BridgeOptions) -> Result<(), FirewallError> {
        check_bridge(&opts.bridge)?;
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let rules = self.read()?;
        let mut tx = Tx::default();
        base(&rules, &mut tx);
        let tag = network_tag(&opts.bridge);
        delete_tagged(&rules, &tag, &mut tx);
        network_rules(opts, &tag, &mut tx);
        self.apply(&tx)
    }

    /// Remove a network's rules (idempotent).
    pub fn remove_network(&self, opts: &BridgeOptions) -> Result<(), FirewallError> {
        check_bridge(&opts.bridge)?;
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let rules = self.read()?;
        let mut tx = Tx::default();
        delete_tagged(&rules, &network_tag(&opts.bridge), &mut tx);
        self.apply(&tx)
    }

    /// Publish `ports` (host ports already resolved) of `container` at `container_ip`
    /// on the network of `opts`: its own chain in nat (DNAT) and filter (accept), and
    /// the jumps to them, replacing what it had. No ports: nothing is done.
    pub fn publish(
        &self,
        container: &str,
        opts: &BridgeOptions,
        container_ip: Ipv4Addr,
        ports: &[PortMapping],
    ) -> Result<(), FirewallError> {
        if ports.is_empty() {
            return Ok(());
        }
        check_publish(container, opts, ports)?;
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let chain = container_chain(container);
        // The usual case (first publish, base in place) takes one run and no read;
        // anything else fails that transaction whole, and the rules are read and
        // replaced (reading costs more than the change once many containers publish).
        let fresh = fresh_container(container, &chain, opts, container_ip, ports);
        if self.apply(&fresh).is_ok() {
            return Ok(());
        }
        let rules = self.read()?;
        let mut tx = Tx::default();
        base(&rules, &mut tx);
        remove_container(&rules, container, &chain, false, &mut tx);
        container_rules(container, &chain, opts, container_ip, ports, &mut tx);
        self.apply(&tx)
    }

    /// Remove a container's published ports (idempotent: nothing there is fine, but
    /// costs a failed transaction and a read: call it for containers that published).
    pub fn unpublish(&self, container: &str) -> Result<(), FirewallError> {
        check_name("container", container)?;
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let chain = container_chain(container);
        // As publish: everything there, one run; else read what is there and remove it.
        if self.apply(&known_container(container, &chain)).is_ok() {
            return Ok(());
        }
        let rules = self.read()?;
        let mut tx = Tx::default();
        remove_container(&rules, container, &chain, true, &mut tx);
        self.apply(&tx)
    }

    /// The containers that have published-port rules now (sorted), from the comments
    /// of the rules: after a restart, those whose container is gone are to be removed.
    pub fn published(&self) -> Result<Vec<String>, FirewallError> {
        let rules = self.read()?;
        let mut ids: Vec<String> = rules
            .iter()
            .filter_map(|r| r.comment.as_deref()?.strip_prefix("berth:ctr:"))
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The current rules of the nat and filter tables.
    fn read(&self) -> Result<Vec<Rule>, FirewallError> {
        // One run for every table (cheaper than one per table); the others are skipped.
        let out = Command::new(&self.save)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| FirewallError::Spawn {
                program: self.save.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(FirewallError::Save {
                program: self.save.clone(),
                status: out.status.to_string(),
                stderr: one_line(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(parse_save(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Run one transaction (nothing to do: no process at all).
    fn apply(&self, tx: &Tx) -> Result<(), FirewallError> {
        let Some(input) = tx.render() else {
            return Ok(());
        };
        tracing::debug!(transaction = %input, "iptables-restore");
        let spawn_err = |source| FirewallError::Spawn {
            program: self.restore.clone(),
            source,
        };
        let mut child = Command::new(&self.restore)
            .args(["--noflush", "--wait", "10"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().map_err(spawn_err)?;
        if out.status.success() {
            return written.unwrap_or(Ok(())).map_err(spawn_err);
        }
        let stderr = one_line(&String::from_utf8_lossy(&out.stderr));
        Err(FirewallError::Restore {
            program: self.restore.clone(),
            status: out.status.to_string(),
            line: failed_line(&stderr, &input),
            stderr,
        })
    }
}

/// `$PATH`, then the usual sbin directories.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(SBIN_DIRS.iter().map(PathBuf::from));
    dirs
}

/// The first `name` in `dirs`.
fn find(dirs: &[PathBuf], name: &str) -> Result<PathBuf, FirewallError> {
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| FirewallError::Missing {
            program: name.to_string(),
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        })
}

/// A tool's stderr on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The transaction line iptables-restore's "line N failed" names, else the whole input.
fn failed_line(stderr: &str, input: &str) -> String {
    stderr
        .split("line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| input.lines().nth(n.checked_sub(1)?))
        .unwrap_or(input)
        .to_string()
}

/// A name written into rules (comments, interface names): no quoting needed.
fn check_name(what: &'static str, name: &str) -> Result<(), FirewallError> {
    let bad = |reason: &str| FirewallError::BadName {
        what,
        name: name.chars().take(80).collect(),
        reason: reason.to_string(),
    };
    if name.is_empty() || name.len() > MAX_ID {
        return Err(bad(&format!("it must have 1 to {MAX_ID} bytes")));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b))
    {
        return Err(bad(
            "only letters, digits, '_', '.', '+' and '-' are allowed",
        ));
    }
    Ok(())
}

/// A bridge name: an interface name (at most 15 bytes) that needs no quoting.
fn check_bridge(bridge: &str) -> Result<(), FirewallError> {
    check_name("bridge", bridge)?;
    if bridge.len() > MAX_IFNAME {
        return Err(FirewallError::BadName {
            what: "bridge",
            name: bridge.to_string(),
            reason: format!("interface names have at most {MAX_IFNAME} bytes"),
        });
    }
    Ok(())
}

/// What `publish` refuses before it reads anything.
fn check_publish(
    container: &str,
    opts: &BridgeOptions,
    ports: &[PortMapping],
) -> Result<(), FirewallError> {
    check_name("container", container)?;
    check_bridge(&opts.bridge)?;
    if opts.internal {
        return Err(FirewallError::Internal {
            bridge: opts.bridge.clone(),
            container: container.to_string(),
        });
    }
    let refuse = |p: &PortMapping, reason: &str| FirewallError::Port {
        container: container.to_string(),
        mapping: p.to_string(),
        reason: reason.to_string(),
    };
    for p in ports {
        if p.host_port == 0 || p.container_port == 0 {
            return Err(refuse(p, "port 0 (reserve resolves host ports first)"));
        }
        if matches!(p.host_ip, Some(IpAddr::V6(ip)) if !ip.is_unspecified()) {
            return Err(refuse(p, "IPv6 host addresses are not supported"));
        }
    }
    Ok(())
}

/// The chain of a container: a hash of its id, so any id fits in 28 characters.
pub fn container_chain(container: &str) -> String {
    let digest = Sha256::digest(container.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{CONTAINER_PREFIX}{hex}")
}

fn network_tag(bridge: &str) -> String {
    format!("berth:net:{bridge}")
}

fn container_tag(container: &str) -> String {
    format!("berth:ctr:{container}")
}

/// The two tables Berth writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Nat,
    Filter,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Nat => "nat",
            Table::Filter => "filter",
        }
    }
}

/// One rule (or, with `spec` empty, a chain's declaration) as `iptables-save` wrote it.
#[derive(Debug, Clone)]
struct Rule {
    table: Table,
    chain: String,
    /// What follows `-A CHAIN `; empty for a chain declaration.
    spec: String,
    comment: Option<String>,
    target: Option<String>,
}

/// Read the nat and filter tables of `iptables-save` output.
fn parse_save(text: &str) -> Vec<Rule> {
    let mut out = Vec::new();
    let mut table = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = [Table::Nat, Table::Filter]
                .into_iter()
                .find(|t| t.name() == name);
            continue;
        }
        let Some(table) = table else { continue };
        if let Some(decl) = line.strip_prefix(':') {
            let chain = decl.split_whitespace().next().unwrap_or_default();
            out.push(Rule {
                table,
                chain: chain.to_string(),
                spec: String::new(),
                comment: None,
                target: None,
            });
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let (chain, spec) = rule.split_once(' ').unwrap_or((rule, ""));
            out.push(Rule {
                table,
                chain: chain.to_string(),
                spec: spec.to_string(),
                comment: option_value(spec, "--comment"),
                target: option_value(spec, "-j"),
            });
        }
    }
    out
}

/// The value of `option` in a rule spec, without quotes.
fn option_value(spec: &str, option: &str) -> Option<String> {
    let start = spec
        .find(&format!(" {option} "))
        .map(|i| i + 1)
        .or_else(|| spec.starts_with(&format!("{option} ")).then_some(0))?;
    let rest = &spec[start + option.len() + 1..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or_default(),
        None => rest.split_whitespace().next().unwrap_or_default(),
    };
    Some(value.to_string())
}

fn has_chain(rules: &[Rule], table: Table, chain: &str) -> bool {
    rules
        .iter()
        .any(|r| r.table == table && r.chain == chain && r.spec.is_empty())
}

/// One `iptables-restore` input: the lines of each table.
#[derive(Debug, Default)]
struct Tx {
    nat: Vec<String>,
    filter: Vec<String>,
}

impl Tx {
    fn push(&mut self, table: Table, line: String) {
        match table {
            Table::Nat => self.nat.push(line),
            Table::Filter => self.filter.push(line),
        }
    }

    /// The restore input; none when there is nothing to change.
    fn render(&self) -> Option<String> {
        let mut text = String::new();
        for (table, lines) in [("nat", &self.nat), ("filter", &self.filter)] {
            if !lines.is_empty() {
                text.push_str(&format!("*{table}\n{}\nCOMMIT\n", lines.join("\n")));
            }
        }
        (!text.is_empty()).then_some(text)
    }
}

/// Delete every rule carrying `tag` (by its spec, as `iptables-save` wrote it).
fn delete_tagged(rules: &[Rule], tag: &str, tx: &mut Tx) {
    for r in rules.iter().filter(|r| r.comment.as_deref() == Some(tag)) {
        tx.push(r.table, format!("-D {} {}", r.chain, r.spec));
    }
}

/// Berth's chains and the jumps to them, where missing; extra copies of a jump go.
fn base(rules: &[Rule], tx: &mut Tx) {
    for (table, chain) in [
        (Table::Nat, NAT_PREROUTING),
        (Table::Nat, NAT_OUTPUT),
        (Table::Nat, NAT_POSTROUTING),
        (Table::Filter, FORWARD),
        (Table::Filter, PUBLISHED),
        (Table::Filter, ISOLATION),
    ] {
        if !has_chain(rules, table, chain) {
            tx.push(table, format!("-N {chain}"));
        }
    }
    let local = "-m addrtype --dst-type LOCAL ";
    base_jump(rules, tx, Table::Nat, "PREROUTING", local, NAT_PREROUTING);
    base_jump(rules, tx, Table::Nat, "OUTPUT", local, NAT_OUTPUT);
    base_jump(rules, tx, Table::Nat, "POSTROUTING", "", NAT_POSTROUTING);
    base_jump(rules, tx, Table::Filter, "FORWARD", "", FORWARD);
    forward_order(rules, tx);
}

/// One jump from a built-in chain, inserted first; duplicates removed.
fn base_jump(rules: &[Rule], tx: &mut Tx, table: Table, from: &str, matches: &str, to: &str) {
    let found: Vec<&Rule> = base_jumps(rules, table, from, to).collect();
    for extra in found.iter().skip(1) {
        tx.push(table, format!("-D {from} {}", extra.spec));
    }
    if found.is_empty() {
        tx.push(
            table,
            format!("-I {from} 1 {matches}-m comment --comment {BASE_TAG} -j {to}"),
        );
    }
}

fn base_jumps<'a>(
    rules: &'a [Rule],
    table: Table,
    from: &'a str,
    to: &'a str,
) -> impl Iterator<Item = &'a Rule> {
    rules.iter().filter(move |r| {
        r.table == table
            && r.chain == from
            && r.comment.as_deref() == Some(BASE_TAG)
            && r.target.as_deref() == Some(to)
    })
}

/// `BERTH-FORWARD` starts with the jumps to `BERTH-PUBLISHED` then `BERTH-ISOLATION`
/// (the networks' accepts follow): anything else and both are made again in place.
fn forward_order(rules: &[Rule], tx: &mut Tx) {
    let first: Vec<Option<&str>> = rules
        .iter()
        .filter(|r| r.table == Table::Filter && r.chain == FORWARD && !r.spec.is_empty())
        .take(2)
        .map(|r| {
            r.comment
                .as_deref()
                .filter(|c| *c == BASE_TAG)
                .and(r.target.as_deref())
        })
        .collect();
    if first == [Some(PUBLISHED), Some(ISOLATION)] {
        // Extra copies further down are harmless but counted: drop them.
        for to in [PUBLISHED, ISOLATION] {
            for extra in base_jumps(rules, Table::Filter, FORWARD, to).skip(1) {
                tx.push(Table::Filter, format!("-D {FORWARD} {}", extra.spec));
            }
        }
        return;
    }
    for to in [PUBLISHED, ISOLATION] {
        for old in base_jumps(rules, Table::Filter, FORWARD, to) {
            tx.push(Table::Filter, format!("-D {FORWARD} {}", old.spec));
        }
    }
    for (pos, to) in [(1, PUBLISHED), (2, ISOLATION)] {
        tx.push(
            Table::Filter,
            format!("-I {FORWARD} {pos} -m comment --comment {BASE_TAG} -j {to}"),
        );
    }
}

/// A network's rules, each tagged `tag`.
fn network_rules(opts: &BridgeOptions, tag: &str, tx: &mut Tx) {
    let br = &opts.bridge;
    let net = opts.subnet.trunc();
    let c = format!("-m comment --comment {tag}");
    let mut nat = |rule: String| tx.nat.push(format!("-A {NAT_POSTROUTING} {rule}"));
    if !opts.internal {
        if opts.masquerade {
            nat(format!("-s {net} ! -o {br} {c} -j MASQUERADE"));
        }
        // The host's own connections to 127.0.0.1:PORT, DNATed out the bridge: the
        // container answers the bridge's address (route_localnet lets them out).
        nat(format!("-s 127.0.0.0/8 -o {br} {c} -j MASQUERADE"));
        // Hairpin: a container reaching a published port of its network.
        nat(format!(
            "-s {net} -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE"
        ));
    }
    let mut fwd = |chain: &str, rule: String| tx.filter.push(format!("-A {chain} {rule}"));
    fwd(FORWARD, format!("-i {br} -o {br} {c} -j ACCEPT"));
    if opts.internal {
        fwd(ISOLATION, format!("-i {br} ! -o {br} {c} -j DROP"));
        fwd(ISOLATION, format!("! -i {br} -o {br} {c} -j DROP"));
        return;
    }
    fwd(
        FORWARD,
        format!("-o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT"),
    );
    fwd(FORWARD, format!("-i {br} ! -o {br} {c} -j ACCEPT"));
    if opts.masquerade {
        // Behind NAT only published ports are reached from elsewhere (those are
        // accepted in BERTH-PUBLISHED, before this).
        fwd(
            ISOLATION,
            format!("! -i {br} -o {br} -m conntrack ! --ctstate RELATED,ESTABLISHED {c} -j DROP"),
        );
    } else {
        // Without NAT the subnet is routed: reachable from elsewhere.
        fwd(FORWARD, format!("! -i {br} -o {br} {c} -j ACCEPT"));
    }
}

/// Delete a container's jumps and chains. `delete` false: its chains are flushed and
/// kept (publish fills them again).
fn remove_container(rules: &[Rule], container: &str, chain: &str, delete: bool, tx: &mut Tx) {
    let tag = container_tag(container);
    let tagged = |r: &&Rule| r.comment.as_deref() == Some(tag.as_str());
    for r in rules.iter().filter(tagged).filter(|r| r.chain != chain) {
        tx.push(r.table, format!("-D {} {}", r.chain, r.spec));
    }
    for table in [Table::Nat, Table::Filter] {
        if has_chain(rules, table, chain) {
            tx.push(table, format!("-F {chain}"));
            if delete {
                tx.push(table, format!("-X {chain}"));
            }
        } else if !delete {
            tx.push(table, format!("-N {chain}"));
        }
    }
}

/// A container's DNAT and accept rules in its chains, and the jumps to them.
fn container_rules(
    container: &str,
    chain: &str,
    opts: &BridgeOptions,
    ip: Ipv4Addr,
    ports: &[PortMapping],
    tx: &mut Tx,
) {
    let c = format!("-m comment --comment {}", container_tag(container));
    let br = &opts.bridge;
    for p in ports {
        let proto = match p.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let dst = match p.host_ip {
            Some(host) if !host.is_unspecified() => format!("-d {host}/32 "),
            _ => String::new(),
        };
        let (hp, cp) = (p.host_port, p.container_port);
        tx.nat.push(format!(
            "-A {chain} {dst}-p {proto} -m {proto} --dport {hp} {c} -j DNAT --to-destination {ip}:{cp}"
        ));
        // Only what came through the DNAT: the container's address itself stays
        // unreachable from elsewhere behind NAT.
        tx.filter.push(format!(
            "-A {chain} -d {ip}/32 -o {br} -p {proto} -m {proto} --dport {cp} \
             -m conntrack --ctstate DNAT --ctorigdstport {hp} {c} -j ACCEPT"
        ));
    }
    for (table, jump) in container_jumps(container, chain) {
        tx.push(table, format!("-A {jump}"));
    }
}

/// The jumps to a container's chains (`CHAIN SPEC`), the same for every network so
/// that unpublish can name them without reading the rules.
fn container_jumps(container: &str, chain: &str) -> [(Table, String); 3] {
    let c = format!("-m comment --comment {}", container_tag(container));
    [
        (Table::Nat, format!("{NAT_PREROUTING} {c} -j {chain}")),
        (Table::Nat, format!("{NAT_OUTPUT} {c} -j {chain}")),
        (Table::Filter, format!("{PUBLISHED} {c} -j {chain}")),
    ]
}

/// Publish on a container with no chains yet: make them, with no read.
fn fresh_container(
    container: &str,
    chain: &str,
    opts: &BridgeOptions,
    ip: Ipv4Addr,
    ports: &[PortMapping],
) -> Tx {
    let mut tx = Tx::default();
    for table in [Table::Nat, Table::Filter] {
        tx.push(table, format!("-N {chain}"));
    }
    container_rules(container, chain, opts, ip, ports, &mut tx);
    tx
}

/// Unpublish a container whose jumps and chains are all there, with no read.
fn known_container(container: &str, chain: &str) -> Tx {
    let mut tx = Tx::default();
    for (table, jump) in container_jumps(container, chain) {
        tx.push(table, format!("-D {jump}"));
    }
    for table in [Table::Nat, Table::Filter] {
        tx.push(table, format!("-F {chain}"));
        tx.push(table, format!("-X {chain}"));
    }
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_fit_and_differ() {
        let a = container_chain("web");
        assert!(a.len() <= 28, "{a}");
        assert_ne!(a, container_chain("web2"));
        assert_eq!(a, container_chain("web"));
        assert!(container_chain(&"x".repeat(240)).len() <= 28);
    }

    #[test]
    fn comments_and_targets_are_read_back() {
        let save = "*nat\n:BERTH-OUTPUT - [0:0]\n\
            -A BERTH-OUTPUT -m comment --comment \"berth:ctr:a-1\" -j BERTH-C-0011\n\
            -A POSTROUTING -s 10.0.0.0/24 -m comment --comment berth:net:br0 -j MASQUERADE\nCOMMIT\n";
        let mangle =
            "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-mark 1\nCOMMIT\n";
        let rules = parse_save(&format!("{mangle}{save}"));
        assert_eq!(rules.len(), 3, "{rules:?}");
        assert!(rules.iter().all(|r| r.table == Table::Nat));
        assert!(has_chain(&rules, Table::Nat, "BERTH-OUTPUT"));
        assert_eq!(rules[1].comment.as_deref(), Some("berth:ctr:a-1"));
        assert_eq!(rules[1].target.as_deref(), Some("BERTH-C-0011"));
        assert_eq!(rules[2].comment.as_deref(), Some("berth:net:br0"));
        assert_eq!(rules[2].target.as_deref(), Some("MASQUERADE"));
    }

    #[test]
    fn names_that_need_quoting_are_refused() {
        assert!(check_name("container", "web-1.a_b").is_ok());
        for bad in ["", "a b", "a\"b", "a\nb", &"x".repeat(241)] {
            assert!(check_name("container", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_binary_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = find(&[dir.path().to_path_buf()], "iptables-restore").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("iptables-restore not found"), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }

    #[test]
    fn long_bridge_names_are_refused() {
        assert!(check_bridge("br-0123456789ab").is_ok());
        let err = check_bridge("br-0123456789abc").unwrap_err().to_string();
        assert!(err.contains("br-0123456789abc"), "{err}");
    }

    #[test]
    fn the_failed_line_is_named() {
        let input = "*nat\n-D X -j Y\nCOMMIT\n";
        let stderr = "iptables-restore: line 2 failed: Bad rule";
        assert_eq!(failed_line(stderr, input), "-D X -j Y");
        assert_eq!(failed_line("odd", input), input);
    }
}
