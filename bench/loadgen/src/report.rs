//! Results as CSV (one summary row per relay × load level; a time series beside it), the table
//! of ratios, and the PNG plot.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::load::LevelResult;

/// The summary CSV's header; [`summary_row`] writes the fields in this order.
pub const SUMMARY_HEADER: &str = "server,devices,group_size,docs,rate_per_device,duration_s,edits,\
expected_deliveries,deliveries,throughput_per_s,p50_ms,p99_ms,max_ms,bytes_out,bytes_in,frames_out,\
frames_in,bytes_per_delivery,server_cpu_pct,server_rss_peak_kib,loadgen_cpu_pct,offline_periods,\
reconnect_failures";

/// The time series CSV's header.
pub const SERIES_HEADER: &str =
    "server,devices,t_s,deliveries_per_s,server_cpu_pct,server_rss_kib,loadgen_cpu_pct";

/// One summary line (no newline).
pub fn summary_row(r: &LevelResult) -> String {
    let per_delivery = (r.bytes_out + r.bytes_in) as f64 / r.delivered.max(1) as f64;
    format!(
        "{},{},{},{},{},{:.2},{},{},{},{:.1},{:.2},{:.2},{:.2},{},{},{},{},{:.1},{:.1},{},{:.1},{},{}",
        r.server,
        r.devices,
        r.group_size,
        r.docs,
        r.rate,
        r.duration_s,
        r.edits,
        r.expected,
        r.delivered,
        r.throughput,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.bytes_out,
        r.bytes_in,
        r.frames_out,
        r.frames_in,
        per_delivery,
        r.server_cpu_pct,
        r.server_rss_peak_kib,
        r.loadgen_cpu_pct,
        r.offline_periods,
        r.reconnect_failures,
    )
}

/// Appends `line` to the CSV at `path`, writing `header` first if the file is new or empty.
pub fn append_csv(path: &Path, header: &str, lines: &[String]) -> Result<()> {
    let fresh = std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut out = String::new();
    if fresh {
        out.push_str(header);
        out.push('\n');
    }
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    file.write_all(out.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The series lines of one level.
pub fn series_rows(r: &LevelResult) -> Vec<String> {
    r.series
        .iter()
        .map(|s| {
            format!(
                "{},{},{:.2},{:.1},{:.1},{},{:.1}",
                r.server,
                r.devices,
                s.t_s,
                s.deliveries_per_s,
                s.server_cpu_pct,
                s.server_rss_kib,
                s.loadgen_cpu_pct
            )
        })
        .collect()
}

/// A summary row read back: the fields the table and the plot use.
#[derive(Debug, Clone)]
pub struct Row {
    pub server: String,
    pub devices: usize,
    pub edits: u64,
    pub expected: u64,
    pub delivered: u64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub bytes_per_delivery: f64,
    pub server_cpu_pct: f64,
    pub server_rss_kib: u64,
    pub loadgen_cpu_pct: f64,
}

/// Reads a summary CSV; checks the header and every row's field count.
pub fn read_summary(path: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header = lines.next().context("empty summary CSV")?;
    if header != SUMMARY_HEADER {
        bail!("{}: unexpected header {header:?}", path.display());
    }
    let names: Vec<&str> = SUMMARY_HEADER.split(',').collect();
    lines
        .enumerate()
        .map(|(i, line)| {
            parse_row(line, &names).with_context(|| format!("{} line {}", path.display(), i + 2))
        })
        .collect()
}

fn parse_row(line: &str, names: &[&str]) -> Result<Row> {
    let fields: Vec<&str> = line.split(',').collect();
    if fields.len() != names.len() {
        bail!("{} fields, expected {}", fields.len(), names.len());
    }
    let get = |name: &str| -> Result<&str> {
        let i = names.iter().position(|n| *n == name).with_context(|| format!("no column {name}"))?;
        Ok(fields[i])
    };
    let num = |name: &str| -> Result<f64> { get(name)?.parse().with_context(|| format!("column {name}")) };
    let int = |name: &str| -> Result<u64> { get(name)?.parse().with_context(|| format!("column {name}")) };
    Ok(Row {
        server: get("server")?.to_owned(),
        devices: usize::try_from(int("devices")?)?,
        edits: int("edits")?,
        expected: int("expected_deliveries")?,
        delivered: int("deliveries")?,
        throughput: num("throughput_per_s")?,
        p50_ms: num("p50_ms")?,
        p99_ms: num("p99_ms")?,
        bytes_per_delivery: num("bytes_per_delivery")?,
        server_cpu_pct: num("server_cpu_pct")?,
        server_rss_kib: int("server_rss_peak_kib")?,
        loadgen_cpu_pct: num("loadgen_cpu_pct")?,
    })
}

/// The table: every row, then for each load level `ours` vs `baseline` as ratios.
pub fn table(rows: &[Row], ours: &str, baseline: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>7} {:>9} {:>6} {:>10} {:>9} {:>9} {:>9} {:>7} {:>9} {:>7}",
        "server",
        "devices",
        "edits",
        "delivered",
        "lost",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "B/deliv",
        "CPU %",
        "RSS MiB",
        "gen %"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>7} {:>9} {:>6} {:>10.0} {:>9.1} {:>9.1} {:>9.0} {:>7.0} {:>9.1} {:>7.0}",
            r.server,
            r.devices,
            r.edits,
            r.delivered,
            r.expected - r.delivered.min(r.expected),
            r.throughput,
            r.p50_ms,
            r.p99_ms,
            r.bytes_per_delivery,
            r.server_cpu_pct,
            r.server_rss_kib as f64 / 1024.0,
            r.loadgen_cpu_pct
        );
    }
    let _ = writeln!(out, "\n{ours} vs {baseline} (goal: throughput >= 10x, p99 <= 1/10):");
    let _ = writeln!(
        out,
        "{:>7} {:>12} {:>10} {:>10} {:>12} {:>10} {:>10}",
        "devices", "throughput x", "p50 /", "p99 /", "bytes/deliv", "CPU", "RSS"
    );
    let mut levels: Vec<usize> = rows.iter().map(|r| r.devices).collect();
    levels.sort_unstable();
    levels.dedup();
    for n in levels {
        let find = |s: &str| rows.iter().find(|r| r.devices == n && r.server == s);
        let (Some(a), Some(b)) = (find(ours), find(baseline)) else { continue };
        let _ = writeln!(
            out,
            "{:>7} {:>11.2}x {:>9.2}x {:>9.2}x {:>11.2}x {:>9.2}x {:>9.2}x",
            n,
            a.throughput / b.throughput,
            b.p50_ms / a.p50_ms,
            b.p99_ms / a.p99_ms,
            a.bytes_per_delivery / b.bytes_per_delivery,
            a.server_cpu_pct / b.server_cpu_pct,
            a.server_rss_kib as f64 / b.server_rss_kib as f64,
        );
    }
    let _ = writeln!(
        out,
        "(throughput x = ours / baseline; p50 / and p99 / = baseline / ours, so higher is better for us; \
bytes, CPU, RSS = ours / baseline, lower is better for us)"
    );
    out
}
