//! `--plot <dir>`: SVG plots of the results with plotters' SVG backend: the echo latency CDF of
//! every scenario that has one (one line per server) and, for fanout, the time from the send to
//! the LAST receiver per broadcast.

use crate::report::RunResult;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

type Err = Box<dyn std::error::Error>;

/// Writes the plots for every scenario group into `dir`; returns the files written.
pub fn write_all(dir: &Path, groups: &[Vec<RunResult>]) -> Result<Vec<PathBuf>, Err> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for g in groups {
        let Some(first) = g.first() else { continue };
        // the Node generator's groups get their own files
        let name = match first.generator.as_str() {
            "rust" => first.scenario.clone(),
            other => format!("{}-{other}", first.scenario),
        };
        if g.iter().any(|r| !r.plot.cdf.is_empty()) {
            let f = dir.join(format!("{name}-latency-cdf.svg"));
            cdf(&f, g)?;
            files.push(f);
        }
        if g.iter().any(|r| !r.plot.last_ms.is_empty()) {
            let f = dir.join(format!("{name}-last-receiver.svg"));
            last_receiver(&f, g)?;
            files.push(f);
        }
    }
    Ok(files)
}

fn cdf(path: &Path, runs: &[RunResult]) -> Result<(), Err> {
    let pts = runs.iter().flat_map(|r| r.plot.cdf.iter().map(|p| p.0));
    let (lo, hi) = pts.fold((f64::MAX, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let (lo, hi) = ((lo * 0.8).max(0.001), (hi * 1.2).max(lo * 2.0));
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{}: latency CDF ({})",
        runs[0].scenario, runs[0].description
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("fraction of requests <= x")
        .draw()?;
    for (k, r) in runs.iter().enumerate() {
        if r.plot.cdf.is_empty() {
            continue;
        }
        let c = COLORS[k % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                r.plot.cdf.iter().copied(),
                c.stroke_width(2),
            ))?
            .label(legend(r))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn last_receiver(path: &Path, runs: &[RunResult]) -> Result<(), Err> {
    let n = runs
        .iter()
        .map(|r| r.plot.last_ms.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let hi = runs
        .iter()
        .flat_map(|r| r.plot.last_ms.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{}: send -> LAST receiver per broadcast ({})",
        runs[0].scenario, runs[0].description
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(1usize..n, 0.0..hi.max(0.01))?;
    chart
        .configure_mesh()
        .x_desc("broadcast (in send order)")
        .y_desc("ms to the last receiver")
        .draw()?;
    for (k, r) in runs.iter().enumerate() {
        if r.plot.last_ms.is_empty() {
            continue;
        }
        let c = COLORS[k % COLORS.len()];
        let pts: Vec<(usize, f64)> = r
            .plot
            .last_ms
            .iter()
            .enumerate()
            .map(|(i, p)| (i + 1, p.1))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
            .label(legend(r))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn legend(r: &RunResult) -> String {
    if r.client_bound {
        format!("{} (client-bound)", r.server)
    } else {
        r.server.clone()
    }
}
