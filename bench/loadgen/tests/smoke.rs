//! A tiny load against the real relay (in this process, on 127.0.0.1:0, open access, a temp
//! data dir): every edit must reach every other device of its group, also across offline
//! periods, and the summary row must read back as a well-formed CSV row.

use std::time::Duration;

use anyhow::Context as _;
use chibo_loadgen::load::{self, LoadConfig};
use chibo_loadgen::report;
use chibo_server::config::ServeConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edit_reaches_every_other_device() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("bind")?;
    let addr = listener.local_addr()?;
    let mut serve = ServeConfig::new(data.path());
    serve.listen = addr;
    serve.open_access = true;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(chibo_server::http::run(listener, serve, async move {
        let _ = stopped.await;
    }));

    let config = LoadConfig {
        url: format!("ws://{addr}/sync"),
        server: "chibo".into(),
        server_pid: Some(std::process::id()),
        devices: 3,
        group_size: 3,
        docs_per_group: 2,
        rate: 20.0,
        burst: 5,
        think: Duration::from_millis(100),
        duration: Duration::from_secs(2),
        churn_every: Some(Duration::from_millis(500)),
        offline_for: Duration::from_millis(200),
        // Not a timing assertion: the limit after which missing edits count as lost.
        drain: Duration::from_secs(20),
        store_root: std::env::temp_dir(),
        run_id: format!("smoke-{}", std::process::id()),
        seed: 7,
    };
    let result = load::run(&config).await?;
    assert!(result.edits > 0, "no edits were made");
    assert_eq!(result.expected, result.edits * 2, "each edit is expected at the two other devices");
    assert_eq!(result.delivered, result.expected, "edits lost: {result:?}");
    assert!(result.bytes_out > 0 && result.bytes_in > 0);
    assert!(result.offline_periods > 0, "no device went offline");

    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("summary.csv");
    report::append_csv(&csv, report::SUMMARY_HEADER, &[report::summary_row(&result)])?;
    let rows = report::read_summary(&csv)?;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].server.as_str(), rows[0].devices), ("chibo", 3));
    assert_eq!((rows[0].edits, rows[0].delivered), (result.edits, result.delivered));
    // With this much churn every delivery may be catch-up, leaving no latency sample (NaN).
    let (p50, p99) = (rows[0].p50_ms, rows[0].p99_ms);
    assert!(p50.is_nan() == p99.is_nan() && (p50.is_nan() || p99 >= p50), "p50 {p50}, p99 {p99}");

    let _ = stop.send(());
    relay.await??;
    Ok(())
}
