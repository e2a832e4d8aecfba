//! A container's interface counters, from `/proc/<pid>/net/dev` (the view of the
//! network namespace the process is in).

use std::path::Path;

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// Its name inside the container (`eth0`, `lo`).
    pub interface: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Packets dropped on sending.
    pub tx_dropped: u64,
}

/// The interfaces of the network namespace `pid` is in; `None` when the process is gone.
pub fn of_pid(pid: i32) -> Option<Vec<InterfaceStats>> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("net/dev")).ok()?;
    Some(parse(&text))
}

/// Parse the text of a `net/dev` file (two header lines, then one line per interface).
pub fn parse(text: &str) -> Vec<InterfaceStats> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let n: Vec<u64> = rest
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            (n.len() >= 12).then(|| InterfaceStats {
                interface: name.trim().to_owned(),
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_lines_become_counters() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0: 5000 40 1 2 0 0 0 0 7000 50 3 4 0 0 0 0\n";
        let all = parse(text);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].interface, "eth0");
        assert_eq!(
            (
                all[1].rx_bytes,
                all[1].rx_packets,
                all[1].rx_errors,
                all[1].rx_dropped
            ),
            (5000, 40, 1, 2)
        );
        assert_eq!(
            (
                all[1].tx_bytes,
                all[1].tx_packets,
                all[1].tx_errors,
                all[1].tx_dropped
            ),
            (7000, 50, 3, 4)
        );
    }

    #[test]
    fn our_own_namespace_has_loopback() {
        let own = of_pid(std::process::id() as i32).unwrap();
        assert!(own.iter().any(|i| i.interface == "lo"));
        assert!(of_pid(i32::MAX).is_none());
    }
}
