//! The PNG: throughput, p50/p99 latency, relay CPU and relay RSS against the number of devices,
//! one line per relay.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::Row;

/// Where Debian (fonts-dejavu-core) and other distributions keep a sans-serif TTF.
const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers the first font found as "sans-serif" (the plot has no text without one).
fn register_font() -> Result<PathBuf> {
    let path = FONT_CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists()).with_context(|| {
        format!(
            "no TTF font found (looked for {FONT_CANDIDATES:?}; Debian: apt-get install fonts-dejavu-core)"
        )
    })?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Vec::leak(bytes))
        .map_err(|_| anyhow!("{} is not a usable TTF", path.display()))?;
    Ok(path)
}

type Metric = (&'static str, fn(&Row) -> f64, bool);

const METRICS: [Metric; 4] = [
    ("deliveries/s (edit reached another device)", |r| r.throughput, false),
    ("p99 latency, ms (log)", |r| r.p99_ms, true),
    ("relay CPU, % of one core", |r| r.server_cpu_pct, false),
    ("relay peak RSS, MiB", |r| r.server_rss_kib as f64 / 1024.0, false),
];

const COLORS: [RGBColor; 4] =
    [RGBColor(200, 30, 30), RGBColor(30, 80, 200), RGBColor(30, 150, 60), RGBColor(120, 60, 160)];

/// Writes the plot of `rows` to `png`.
pub fn plot(rows: &[Row], png: &Path) -> Result<()> {
    register_font()?;
    let mut servers: Vec<&str> = Vec::new();
    for r in rows {
        if !servers.contains(&r.server.as_str()) {
            servers.push(&r.server);
        }
    }
    let root = BitMapBackend::new(png, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("drawing: {e}"))?;
    let root = root
        .titled("chibo relay vs automerge-repo sync server: same load, same machine", ("sans-serif", 26))
        .map_err(|e| anyhow!("drawing: {e}"))?;
    let panels = root.split_evenly((2, 2));
    let max_devices = rows.iter().map(|r| r.devices).max().unwrap_or(1) as f64;
    for (panel, (title, value, log)) in panels.iter().zip(METRICS) {
        draw_panel(panel, title, value, log, rows, &servers, max_devices)?;
    }
    root.present().with_context(|| format!("writing {}", png.display()))?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    value: fn(&Row) -> f64,
    log: bool,
    rows: &[Row],
    servers: &[&str],
    max_devices: f64,
) -> Result<()> {
    let finite: Vec<f64> = rows.iter().map(value).filter(|v| v.is_finite() && *v > 0.0).collect();
    let top = finite.iter().copied().fold(1.0, f64::max) * 1.15;
    // At least a decade, so the log axis has labelled ticks.
    let bottom = (finite.iter().copied().fold(top, f64::min) / 2.0).min(top / 10.0);
    let err = |e| anyhow!("drawing {title}: {e:?}");
    let mut builder = ChartBuilder::on(area);
    builder.caption(title, ("sans-serif", 20)).margin(15).x_label_area_size(40).y_label_area_size(70);
    let series = |server: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.server == server)
            .map(|r| (r.devices as f64, value(r)))
            .filter(|(_, v)| v.is_finite() && *v > 0.0)
            .collect()
    };
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart.configure_mesh().x_desc("devices").label_style(("sans-serif", 14)).draw().map_err(err)?;
            for (i, server) in servers.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let points = series(server);
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(err)?
                    .label(*server)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(err)?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(err)?;
        }};
    }
    let x = 0.0..max_devices * 1.05;
    if log {
        draw!(builder.build_cartesian_2d(x, (bottom..top).log_scale()).map_err(err)?);
    } else {
        draw!(builder.build_cartesian_2d(x, 0.0..top).map_err(err)?);
    }
    Ok(())
}
