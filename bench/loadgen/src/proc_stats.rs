//! CPU time and resident memory of a process, from `/proc` (Linux only).

use anyhow::{Context as _, Result};

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`. `USER_HZ` is 100 on every
/// Linux architecture the benchmark runs on (it is fixed by the kernel ABI, not by `CONFIG_HZ`).
const USER_HZ: f64 = 100.0;

/// User plus system CPU seconds the process has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces and parentheses: fields after it start past
    // the last ')'. utime and stime are fields 14 and 15, so 12th and 13th after the name.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("no ')' in /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64> {
        let v = fields.get(i).with_context(|| format!("{path}: too few fields"))?;
        let ticks: u64 = v.parse().with_context(|| format!("{path}: field {v:?}"))?;
        Ok(ticks as f64 / USER_HZ)
    };
    Ok(tick(11)? + tick(12)?)
}

/// Resident set size in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_ok_and(|s| s >= 0.0));
        assert!(rss_kib(pid).is_ok_and(|k| k > 0));
    }
}
