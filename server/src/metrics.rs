//! The relay's counters, gauges and histograms, rendered as Prometheus text exposition.
//!
//! Plain atomics, no metrics crate: the set is small and fixed. [`InstrumentedStore`] times every
//! store call into the `store_*_seconds` histograms.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, WriteBatch};

use crate::store::{Store, StoreError};

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a frame from a peer was refused (the `reason` label of `chibo_frames_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReason {
    /// A text frame; the protocol is binary CBOR only.
    Text,
    /// Larger than `--max-message-bytes`.
    TooLarge,
    /// Not a well-formed protocol message.
    Malformed,
    /// Well-formed but not allowed at this point of the protocol (e.g. before `join`).
    Protocol,
    /// The peer may not read or write the document it addressed.
    Forbidden,
    /// A change whose actor is not a device allowed to write the document.
    ForgedChange,
}

impl RefusedReason {
    pub const ALL: [RefusedReason; 6] = [
        RefusedReason::Text,
        RefusedReason::TooLarge,
        RefusedReason::Malformed,
        RefusedReason::Protocol,
        RefusedReason::Forbidden,
        RefusedReason::ForgedChange,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            RefusedReason::Text => "text",
            RefusedReason::TooLarge => "too_large",
            RefusedReason::Malformed => "malformed",
            RefusedReason::Protocol => "protocol",
            RefusedReason::Forbidden => "forbidden",
            RefusedReason::ForgedChange => "forged_change",
        }
    }
}

/// Upper bounds (seconds) of the store latency histogram buckets; `+Inf` is implicit.
pub const STORE_SECONDS_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A Prometheus histogram over [`STORE_SECONDS_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    buckets: [AtomicU64; STORE_SECONDS_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i =
            STORE_SECONDS_BUCKETS.iter().position(|le| secs <= *le).unwrap_or(STORE_SECONDS_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (i, le) in STORE_SECONDS_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.buckets[STORE_SECONDS_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        // The count is the +Inf bucket by definition, even if an observation lands between reads.
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Every metric the relay exports. Share as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    documents_in_memory: AtomicI64,
    sync_messages_in: AtomicU64,
    sync_messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    frames_refused: [AtomicU64; RefusedReason::ALL.len()],
    store_errors: [AtomicU64; StoreOp::ALL.len()],
    pub store_write_seconds: Histogram,
    pub store_load_seconds: Histogram,
}

/// Keeps `chibo_connections_open` raised while alive; see [`Metrics::connection_opened`].
#[must_use = "the connection counts as open only while the guard lives"]
#[derive(Debug)]
pub struct ConnectionGuard {
    metrics: Arc<Metrics>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Which store call failed (the `op` label of `chibo_store_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Load,
    Write,
    List,
    Count,
}

impl StoreOp {
    const ALL: [StoreOp; 4] = [StoreOp::Load, StoreOp::Write, StoreOp::List, StoreOp::Count];

    const fn label(self) -> &'static str {
        match self {
            StoreOp::Load => "load",
            StoreOp::Write => "write",
            StoreOp::List => "list",
            StoreOp::Count => "count",
        }
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts a new connection; it counts as open until the guard is dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard { metrics: self.clone() }
    }

    pub fn connections_open(&self) -> i64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Sets the number of documents currently held in memory by the relay.
    pub fn set_documents_in_memory(&self, n: usize) {
        self.documents_in_memory.store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// One protocol message of `bytes` received from a peer.
    pub fn message_in(&self, bytes: usize) {
        self.sync_messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// One protocol message of `bytes` sent to a peer.
    pub fn message_out(&self, bytes: usize) {
        self.sync_messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn frame_refused(&self, reason: RefusedReason) {
        self.frames_refused[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn frames_refused(&self, reason: RefusedReason) -> u64 {
        self.frames_refused[reason as usize].load(Ordering::Relaxed)
    }

    fn store_error(&self, op: StoreOp) {
        self.store_errors[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric. `documents_stored` is read from the store
    /// by the caller (it is the store's number, not a counter of ours); `None` omits it.
    pub fn render(&self, documents_stored: Option<u64>) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            header(out, name, help, "gauge");
            let _ = writeln!(out, "{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            header(out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        };
        let load = |v: &AtomicI64| v.load(Ordering::Relaxed);

        gauge(
            &mut out,
            "chibo_connections_open",
            "WebSocket connections currently open.",
            load(&self.connections_open),
        );
        counter(
            &mut out,
            "chibo_connections_total",
            "WebSocket connections accepted.",
            &self.connections_total,
        );
        gauge(
            &mut out,
            "chibo_documents_in_memory",
            "Documents currently loaded in the relay's memory.",
            load(&self.documents_in_memory),
        );
        if let Some(n) = documents_stored {
            gauge(
                &mut out,
                "chibo_documents_stored",
                "Documents in the store.",
                i64::try_from(n).unwrap_or(i64::MAX),
            );
        }
        counter(
            &mut out,
            "chibo_sync_messages_in_total",
            "Protocol messages received.",
            &self.sync_messages_in,
        );
        counter(
            &mut out,
            "chibo_sync_messages_out_total",
            "Protocol messages sent.",
            &self.sync_messages_out,
        );
        counter(&mut out, "chibo_bytes_in_total", "Bytes of protocol messages received.", &self.bytes_in);
        counter(&mut out, "chibo_bytes_out_total", "Bytes of protocol messages sent.", &self.bytes_out);

        header(&mut out, "chibo_frames_refused_total", "Frames refused from peers, by reason.", "counter");
        for reason in RefusedReason::ALL {
            let v = self.frames_refused(reason);
            let _ = writeln!(out, "chibo_frames_refused_total{{reason=\"{}\"}} {v}", reason.label());
        }
        header(&mut out, "chibo_store_errors_total", "Store calls that failed, by operation.", "counter");
        for op in StoreOp::ALL {
            let v = self.store_errors[op as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "chibo_store_errors_total{{op=\"{}\"}} {v}", op.label());
        }
        self.store_write_seconds.render(
            &mut out,
            "chibo_store_write_seconds",
            "Time to durably write one batch.",
        );
        self.store_load_seconds.render(
            &mut out,
            "chibo_store_load_seconds",
            "Time to load one document's chunks.",
        );
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A [`Store`] that records the latency of loads and writes, and failures of every call.
#[derive(Debug)]
pub struct InstrumentedStore<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S: Store> InstrumentedStore<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn count_error<T>(&self, op: StoreOp, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_err() {
            self.metrics.store_error(op);
        }
        r
    }
}

#[async_trait]
impl<S: Store> Store for InstrumentedStore<S> {
    async fn load(&self, doc: DocumentId) -> Result<Vec<Chunk>, StoreError> {
        let start = Instant::now();
        let r = self.inner.load(doc).await;
        self.metrics.store_load_seconds.observe(start.elapsed());
        self.count_error(StoreOp::Load, r)
    }

    async fn write(&self, doc: DocumentId, batch: WriteBatch) -> Result<(), StoreError> {
        let start = Instant::now();
        let r = self.inner.write(doc, batch).await;
        self.metrics.store_write_seconds.observe(start.elapsed());
        self.count_error(StoreOp::Write, r)
    }

    async fn write_group(&self, batches: Vec<(DocumentId, WriteBatch)>) -> Vec<Result<(), StoreError>> {
        // Forwarded as a group (the default would split it into single writes). Every batch of
        // the group waited for the same commit, so each observes its duration.
        let start = Instant::now();
        let outcomes = self.inner.write_group(batches).await;
        let took = start.elapsed();
        for outcome in &outcomes {
            self.metrics.store_write_seconds.observe(took);
            if outcome.is_err() {
                self.metrics.store_error(StoreOp::Write);
            }
        }
        outcomes
    }

    fn commits_groups(&self) -> bool {
        self.inner.commits_groups()
    }

    async fn list_documents(&self) -> Result<Vec<DocumentId>, StoreError> {
        let r = self.inner.list_documents().await;
        self.count_error(StoreOp::List, r)
    }

    async fn document_count(&self) -> Result<u64, StoreError> {
        let r = self.inner.document_count().await;
        self.count_error(StoreOp::Count, r)
    }
}

/// Test helper: checks that `text` is well-formed Prometheus text exposition and returns its
/// samples as `(name{labels}, value)`. Strict about what we emit, not a full parser.
#[cfg(test)]
pub fn parse_exposition(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut typed = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').ok_or_else(|| bad("HELP without text"))?;
            if !valid_name(name) || help.is_empty() {
                return Err(bad("bad HELP"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| bad("TYPE without kind"))?;
            if !valid_name(name) || !["counter", "gauge", "histogram"].contains(&kind) {
                return Err(bad("bad TYPE"));
            }
            if typed.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(bad("TYPE repeated"));
            }
        } else if line.starts_with('#') || line.is_empty() {
            return Err(bad("unexpected comment or blank line"));
        } else {
            let (series, value) = line.rsplit_once(' ').ok_or_else(|| bad("no value"))?;
            let value: f64 = value.parse().map_err(|_| bad("value is not a number"))?;
            let name = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').ok_or_else(|| bad("unclosed labels"))?;
                    for pair in labels.split(',') {
                        let (k, v) = pair.split_once('=').ok_or_else(|| bad("label without ="))?;
                        if !(valid_name(k) && v.len() >= 2 && v.starts_with('"') && v.ends_with('"')) {
                            return Err(bad("bad label"));
                        }
                    }
                    name
                }
                None => series,
            };
            if !valid_name(name) {
                return Err(bad("bad metric name"));
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s).filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            if !typed.contains_key(family) {
                return Err(bad("sample before its TYPE"));
            }
            samples.push((series.to_owned(), value));
        }
    }
    Ok(samples)
}

#[cfg(test)]
fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::testing::{doc_id, edit};

    fn sample(samples: &[(String, f64)], series: &str) -> f64 {
        samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {series}"))
    }

    #[test]
    fn render_is_well_formed_and_reflects_updates() {
        let m = Metrics::new();
        let guard = m.connection_opened();
        let _second = m.connection_opened();
        drop(guard);
        m.message_in(100);
        m.message_out(40);
        m.message_out(2);
        m.frame_refused(RefusedReason::Text);
        m.set_documents_in_memory(7);
        m.store_write_seconds.observe(Duration::from_micros(300));
        m.store_write_seconds.observe(Duration::from_millis(30));
        m.store_write_seconds.observe(Duration::from_secs(60));

        let text = m.render(Some(12));
        let samples = parse_exposition(&text).expect("well-formed");
        assert_eq!(sample(&samples, "chibo_connections_open"), 1.0);
        assert_eq!(sample(&samples, "chibo_connections_total"), 2.0);
        assert_eq!(sample(&samples, "chibo_documents_in_memory"), 7.0);
        assert_eq!(sample(&samples, "chibo_documents_stored"), 12.0);
        assert_eq!(sample(&samples, "chibo_bytes_out_total"), 42.0);
        assert_eq!(sample(&samples, "chibo_sync_messages_out_total"), 2.0);
        assert_eq!(sample(&samples, "chibo_frames_refused_total{reason=\"text\"}"), 1.0);
        assert_eq!(sample(&samples, "chibo_frames_refused_total{reason=\"forged_change\"}"), 0.0);
        assert_eq!(sample(&samples, "chibo_store_write_seconds_bucket{le=\"0.0005\"}"), 1.0);
        assert_eq!(sample(&samples, "chibo_store_write_seconds_bucket{le=\"0.025\"}"), 1.0);
        assert_eq!(sample(&samples, "chibo_store_write_seconds_bucket{le=\"0.05\"}"), 2.0);
        assert_eq!(sample(&samples, "chibo_store_write_seconds_bucket{le=\"10\"}"), 2.0);
        assert_eq!(sample(&samples, "chibo_store_write_seconds_bucket{le=\"+Inf\"}"), 3.0);
        assert_eq!(sample(&samples, "chibo_store_write_seconds_count"), 3.0);
        assert!((sample(&samples, "chibo_store_write_seconds_sum") - 60.0303).abs() < 1e-6);
        assert!(!m.render(None).contains("chibo_documents_stored"));
    }

    #[test]
    fn the_checker_rejects_malformed_text() {
        for bad in ["# TYPE x counter\nx", "x 1", "# TYPE x counter\nx{a=b} 1", "# TYPE x summary\nx 1"] {
            assert!(parse_exposition(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn instrumented_store_times_calls_and_counts_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let metrics = Metrics::new();
        let store = InstrumentedStore::new(
            SqliteStore::open(dir.path().join("s.sqlite3")).expect("open"),
            metrics.clone(),
        );
        let mut doc = automerge::Automerge::new();
        let chunk = edit(&mut doc, "a", 1);
        store.write(doc_id(1), WriteBatch { puts: vec![chunk], deletes: vec![] }).await.expect("write");
        store.load(doc_id(1)).await.expect("load");
        store.load(doc_id(2)).await.expect("load");
        let bad = chibo_shared::storage::ChunkKey {
            kind: chibo_shared::storage::ChunkKind::Snapshot,
            name: "a/b".into(),
        };
        store.write(doc_id(1), WriteBatch { puts: vec![], deletes: vec![bad] }).await.expect_err("bad name");
        assert_eq!(metrics.store_write_seconds.count(), 2);
        assert_eq!(metrics.store_load_seconds.count(), 2);
        let samples = parse_exposition(&metrics.render(None)).expect("well-formed");
        assert_eq!(sample(&samples, "chibo_store_errors_total{op=\"write\"}"), 1.0);
        assert_eq!(sample(&samples, "chibo_store_errors_total{op=\"load\"}"), 0.0);
    }
}
