//! The container's own /etc/hosts, /etc/hostname and /etc/resolv.conf: written into a
//! per-container directory and bind-mounted (read-write, as docker) over the image's.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};

use super::RunspecError;

/// The host's resolver configuration.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of the real upstream servers, behind its 127.0.0.53 stub.
const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";
/// The largest resolv.conf read.
const MAX_RESOLV_CONF: u64 = 64 << 10;

/// One extra /etc/hosts line: an address and its names (docker's `--add-host`; the
/// engine also passes the container's own address and hostname here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The address.
    pub address: IpAddr,
    /// Its names.
    pub names: Vec<String>,
}

/// Write `hosts`, `hostname` and `resolv.conf` into `dir` (made if missing) and add their
/// bind mounts to `spec`, unless the spec already mounts something there. `dns` replaces
/// the host's nameservers; without it the container gets the host's resolv.conf minus
/// loopback nameservers (unreachable from the container's network namespace) — and no
/// nameserver if none is left.
pub fn write_etc_files(
    spec: &mut Spec,
    dir: &Path,
    hostname: &str,
    extra_hosts: &[HostEntry],
    dns: &[IpAddr],
) -> Result<(), RunspecError> {
    let hosts = hosts_file(extra_hosts)?;
    let resolv = resolv_conf(&host_resolv_conf(), dns);
    fs::create_dir_all(dir).map_err(|source| RunspecError::EtcFile {
        path: dir.into(),
        source,
    })?;
    for (name, text) in [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv),
    ] {
        let path = dir.join(name);
        berth_atomic_file::write_with_mode(&path, text.as_bytes(), 0o644).map_err(|source| {
            RunspecError::EtcFile {
                path: path.clone(),
                source,
            }
        })?;
        add_bind(spec, &path, &format!("/etc/{name}"));
    }
    Ok(())
}

/// Add `address names…` to the hosts file in `dir` that [`write_etc_files`] wrote, in
/// place (appended to the same inode: the container has it bind-mounted), once the
/// container's address is known — after its network is attached, which is after the
/// container was created.
pub fn append_host(dir: &Path, address: IpAddr, names: &[&str]) -> Result<(), RunspecError> {
    use std::io::Write;
    let path = dir.join("hosts");
    let line = format!("{address}\t{}\n", names.join(" "));
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|source| RunspecError::EtcFile { path, source })
}

fn add_bind(spec: &mut Spec, source: &Path, destination: &str) {
    let mounts = spec.mounts_mut().get_or_insert_with(Vec::new);
    if mounts
        .iter()
        .any(|m| m.destination() == Path::new(destination))
    {
        return;
    }
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some("bind".into()));
    m.set_source(Some(source.to_path_buf()));
    m.set_options(Some(vec!["rbind".into(), "rprivate".into()]));
    mounts.push(m);
}

/// docker's /etc/hosts: loopback names, the IPv6 multicast names, then `extra`.
pub(crate) fn hosts_file(extra: &[HostEntry]) -> Result<String, RunspecError> {
    let mut text = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for entry in extra {
        for name in &entry.names {
            let bad = name.is_empty()
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '#');
            if bad {
                return Err(RunspecError::BadHost { name: name.clone() });
            }
        }
        if !entry.names.is_empty() {
            text.push_str(&format!("{}\t{}\n", entry.address, entry.names.join(" ")));
        }
    }
    Ok(text)
}

/// The host's resolv.conf (systemd-resolved's upstream list when the host only names its
/// stub); empty when there is none.
fn host_resolv_conf() -> String {
    let read = |path: &str| {
        use std::io::Read;
        let mut text = String::new();
        fs::File::open(path)
            .and_then(|f| f.take(MAX_RESOLV_CONF).read_to_string(&mut text))
            .map(|_| text)
            .unwrap_or_default()
    };
    let host = read(HOST_RESOLV_CONF);
    let servers = nameservers(&host);
    let stub_only = !servers.is_empty() && servers.iter().all(|s| *s == "127.0.0.53");
    if stub_only {
        let upstream = read(RESOLVED_UPSTREAM);
        if !nameservers(&upstream).is_empty() {
            return upstream;
        }
    }
    host
}

fn nameservers(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .collect()
}

/// `host` with its loopback nameservers removed, or with `dns` in place of all of them.
/// Search domains and options stay.
pub(crate) fn resolv_conf(host: &str, dns: &[IpAddr]) -> String {
    let mut out = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let keep = dns.is_empty() && words.next().is_some_and(|a| !is_loopback(a));
            if !keep {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    for server in dns {
        out.push_str(&format!("nameserver {server}\n"));
    }
    out
}

/// 127.0.0.0/8 and ::1 (an IPv6 address may carry a `%zone`).
fn is_loopback(addr: &str) -> bool {
    let bare = addr.split('%').next().unwrap_or(addr);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_go_the_rest_stays() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\n\
                    nameserver 127.1.2.3\nnameserver fe80::1%eth0\nsearch example.com\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &[]),
            "# generated\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch example.com\noptions edns0\n"
        );
        // Nothing left: no nameserver at all (no public fallback).
        assert_eq!(resolv_conf("nameserver 127.0.0.1\n", &[]), "");
        assert_eq!(resolv_conf("", &[]), "");
    }

    #[test]
    fn given_dns_replaces_every_nameserver() {
        let dns: Vec<IpAddr> = vec!["9.9.9.9".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(
            resolv_conf("nameserver 10.0.0.2\nsearch lan\n", &dns),
            "search lan\nnameserver 9.9.9.9\nnameserver 2001:db8::1\n"
        );
    }

    #[test]
    fn hosts_has_the_defaults_and_the_extras() {
        let extra = [HostEntry {
            address: "10.1.2.3".parse().unwrap(),
            names: vec!["db".into(), "db.local".into()],
        }];
        let text = hosts_file(&extra).unwrap();
        assert!(
            text.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost"),
            "{text}"
        );
        assert!(text.ends_with("10.1.2.3\tdb db.local\n"), "{text}");
        for bad in ["", "a b", "x#y", "a\nb"] {
            let e = hosts_file(&[HostEntry {
                address: "10.0.0.1".parse().unwrap(),
                names: vec![bad.into()],
            }]);
            assert!(matches!(e, Err(RunspecError::BadHost { .. })), "{bad:?}");
        }
    }

    #[test]
    fn the_files_are_written_and_bind_mounted_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = Spec::default();
        spec.set_mounts(Some(Vec::new()));
        let etc = dir.path().join("etc");
        write_etc_files(&mut spec, &etc, "box1", &[], &[]).unwrap();
        write_etc_files(&mut spec, &etc, "box1", &[], &[]).unwrap();
        assert_eq!(fs::read_to_string(etc.join("hostname")).unwrap(), "box1\n");
        assert!(fs::read_to_string(etc.join("hosts"))
            .unwrap()
            .contains("localhost"));
        let mounts = spec.mounts().as_ref().unwrap();
        assert_eq!(mounts.len(), 3, "{mounts:?}");
        let hosts = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/etc/hosts"))
            .unwrap();
        assert_eq!(hosts.source().as_deref(), Some(etc.join("hosts").as_path()));
        assert_eq!(hosts.typ().as_deref(), Some("bind"));
    }

    #[test]
    fn an_address_is_appended_to_the_same_hosts_file() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut spec = Spec::default();
        let etc = dir.path().join("etc");
        write_etc_files(&mut spec, &etc, "box1", &[], &[]).unwrap();
        let inode = fs::metadata(etc.join("hosts")).unwrap().ino();
        append_host(&etc, "10.1.0.2".parse().unwrap(), &["box1"]).unwrap();
        let text = fs::read_to_string(etc.join("hosts")).unwrap();
        assert!(text.ends_with("10.1.0.2\tbox1\n"), "{text}");
        assert_eq!(fs::metadata(etc.join("hosts")).unwrap().ino(), inode);
        assert!(append_host(
            &dir.path().join("none"),
            "10.1.0.2".parse().unwrap(),
            &["x"]
        )
        .is_err());
    }
}
