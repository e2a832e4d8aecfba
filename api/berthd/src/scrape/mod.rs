//! Metrics read at scrape time: berthd's own process (`process_*`) and the cgroups of
//! running and paused containers (`container_*`).
//!
//! These are values the kernel keeps, not events berthd counts, so they are read fresh
//! for every scrape and rendered with the Prometheus exporter's own formatting helpers
//! (not through the global recorder): CPU time is a float number of seconds, which the
//! `metrics` crate's u64 counters cannot hold, and a deleted container's series are
//! simply not written again — nothing to expire.

pub mod containers;
pub mod network;
pub mod process;

use metrics::{Key, Label};
use metrics_exporter_prometheus::formatting::{
    write_help_line, write_metric_line, write_type_line,
};
use metrics_exporter_prometheus::LabelSet;

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (its name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One metric family being written: its HELP and TYPE lines, then its samples.
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    /// Start the family `name` in `out`.
    pub fn new(out: &'a mut String, name: &'static str, kind: Kind, help: &str) -> Self {
        write_help_line(out, name, None, None, help);
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        write_type_line(out, name, None, None, kind);
        Family { out, name }
    }

    /// A sample without labels.
    pub fn sample(&mut self, value: f64) {
        self.labelled(&[], value);
    }

    /// A sample with `labels` (escaped by the exporter's helpers).
    pub fn labelled(&mut self, labels: &[(&'static str, &str)], value: f64) {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.to_string()))
            .collect();
        let key = Key::from_parts(self.name, labels);
        let set = LabelSet::from_key_and_global(&key, &indexmap::IndexMap::new());
        // Values are finite (read from counters and sizes); guard anyway, as Rust
        // spells infinity unlike Prometheus.
        let value = if value.is_finite() { value } else { 0.0 };
        write_metric_line::<&str, f64>(self.out, self.name, None, &set, None, value, None);
    }
}

/// End the text with the blank line that separates it from what follows.
pub(crate) fn finish(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_as_exposition_text() {
        let mut out = String::new();
        let mut f = Family::new(&mut out, "x_seconds_total", Kind::Counter, "Some time.");
        f.labelled(&[("id", "a\"b")], 1.25);
        f.sample(3.0);
        assert_eq!(
            out,
            "# HELP x_seconds_total Some time.\n# TYPE x_seconds_total counter\n\
             x_seconds_total{id=\"a\\\"b\"} 1.25\nx_seconds_total 3\n"
        );
    }
}
