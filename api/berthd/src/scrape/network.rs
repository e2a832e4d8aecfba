//! Per-container network counters, named as cAdvisor names them, for every running or
//! paused container attached to a network: the interfaces of its namespace read from
//! `/proc/<pid>/net/dev` at scrape time (`lo` left out).

use berth_engine::{Engine, Networks, State};
use berth_network::stats::{self, InterfaceStats};

use super::{Family, Kind};

/// The interfaces of every attached live container, by container id (sorted).
pub fn collect(engine: &Engine, networks: &Networks) -> Vec<(String, Vec<InterfaceStats>)> {
    let mut out: Vec<(String, Vec<InterfaceStats>)> = engine
        .list()
        .into_iter()
        .filter(|r| matches!(r.state, State::Running | State::Paused))
        .filter(|r| networks.attachment(&r.id).is_some())
        .filter_map(|r| {
            let pid = r.pid.filter(|p| *p > 0)?;
            let interfaces: Vec<InterfaceStats> = stats::of_pid(pid)?
                .into_iter()
                .filter(|i| i.interface != "lo")
                .collect();
            Some((r.id, interfaces))
        })
        .collect();
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How a family's value is taken from an interface's counters.
type Value = fn(&InterfaceStats) -> u64;

/// Append the `container_network_*` families to `out` (none without samples).
pub fn render(all: &[(String, Vec<InterfaceStats>)], out: &mut String) {
    if all.iter().all(|(_, i)| i.is_empty()) {
        return;
    }
    let families: [(&'static str, &str, Value); 8] = [
        (
            "container_network_receive_bytes_total",
            "Bytes received.",
            |i| i.rx_bytes,
        ),
        (
            "container_network_receive_packets_total",
            "Packets received.",
            |i| i.rx_packets,
        ),
        (
            "container_network_receive_errors_total",
            "Errors while receiving.",
            |i| i.rx_errors,
        ),
        (
            "container_network_receive_packets_dropped_total",
            "Packets dropped while receiving.",
            |i| i.rx_dropped,
        ),
        (
            "container_network_transmit_bytes_total",
            "Bytes transmitted.",
            |i| i.tx_bytes,
        ),
        (
            "container_network_transmit_packets_total",
            "Packets transmitted.",
            |i| i.tx_packets,
        ),
        (
            "container_network_transmit_errors_total",
            "Errors while transmitting.",
            |i| i.tx_errors,
        ),
        (
            "container_network_transmit_packets_dropped_total",
            "Packets dropped while transmitting.",
            |i| i.tx_dropped,
        ),
    ];
    for (name, help, value) in families {
        let mut family = Family::new(out, name, Kind::Counter, help);
        for (id, interfaces) in all {
            for i in interfaces {
                family.labelled(&[("id", id), ("interface", &i.interface)], value(i) as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_container_and_interface() {
        let eth0 = InterfaceStats {
            interface: "eth0".into(),
            rx_bytes: 100,
            tx_bytes: 200,
            ..InterfaceStats::default()
        };
        let mut out = String::new();
        render(&[("c1".into(), vec![eth0])], &mut out);
        assert!(
            out.contains(
                "container_network_receive_bytes_total{id=\"c1\",interface=\"eth0\"} 100\n"
            ),
            "{out}"
        );
        assert!(out.contains(
            "container_network_transmit_bytes_total{id=\"c1\",interface=\"eth0\"} 200\n"
        ));
        assert!(out.contains("# TYPE container_network_receive_bytes_total counter"));
        let mut none = String::new();
        render(&[("c1".into(), vec![])], &mut none);
        assert!(none.is_empty());
    }
}
