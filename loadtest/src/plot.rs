//! `--plot FILE.svg`: running containers over time (above) and the distribution of
//! request→running latency (below), drawn with plotters' SVG backend.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::report::RunReport;

/// Histogram buckets.
const BUCKETS: usize = 40;

/// Draw `report`'s timeline and latency histogram to `path`.
pub fn draw(report: &RunReport, path: &Path) -> Result<()> {
    let fail = |e: String| Error::io("drawing", path, std::io::Error::other(e));
    let root = SVGBackend::new(path, (900, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let (top, bottom) = root.split_vertically(360);
    timeline(report, &top).map_err(fail)?;
    histogram(report, &bottom).map_err(fail)?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}

fn timeline(
    report: &RunReport,
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
) -> std::result::Result<(), String> {
    let t_max = report.running_at.last().copied().unwrap_or(1.0).max(1e-3) * 1.05;
    let n = report.containers.max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Running containers over time: {} in {:.2} s = {:.0} starts/s",
                report.running, report.seconds, report.starts_per_second
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..t_max, 0usize..n)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first request")
        .y_desc("running")
        .draw()
        .map_err(|e| e.to_string())?;
    let mut points = vec![(0.0, 0usize)];
    for (i, &t) in report.running_at.iter().enumerate() {
        points.push((t, i));
        points.push((t, i + 1));
    }
    chart
        .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn histogram(
    report: &RunReport,
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
) -> std::result::Result<(), String> {
    let lat = &report.latencies;
    let max = lat.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let width = max / BUCKETS as f64;
    let mut counts = vec![0usize; BUCKETS];
    for &l in lat {
        let b = ((l / width) as usize).min(BUCKETS - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let p = &report.latency_ms;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Request→running latency: p50 {:.0} ms, p90 {:.0}, p99 {:.0}, max {:.0}",
                p.p50, p.p90, p.p99, p.max
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max * 1.02, 0usize..top + top / 10 + 1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("milliseconds")
        .y_desc("containers")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x0 = i as f64 * width;
            Rectangle::new([(x0, 0), (x0 + width, c)], BLUE.mix(0.6).filled())
        }))
        .map_err(|e| e.to_string())?;
    for (value, color) in [(p.p50, GREEN), (p.p99, RED)] {
        chart
            .draw_series(LineSeries::new(
                vec![(value, 0), (value, top)],
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
