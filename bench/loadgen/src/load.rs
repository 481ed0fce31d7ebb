//! One load level against one relay: N devices in groups (a branch's members), each group
//! sharing M documents; every device types into its group's documents at a set rate, pauses to
//! think, and (optionally) goes offline now and then, keeps typing, and comes back.
//!
//! Every device is a [`Client`] on the shared sync engine with its own file store (on tmpfs when
//! there is one, so the generator's own fsyncs cost nothing). Each edit appends one character
//! and is registered, under its change hash and the instant it was made, in a per-document log
//! as it is committed (before the engine can send it). Each device watches its documents: after
//! remote changes were applied it looks up, by hash, the edits of other devices it has not seen
//! yet; each one found is one delivery, with its latency.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use automerge::transaction::{CommitOptions, Transactable as _};
use automerge::{ActorId, Automerge, ChangeHash, ObjType, ROOT, ReadDoc as _};
use chibo_server::client::{Client, Inner};
use chibo_server::store::fs::FsStore;
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::sync::Effect;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::Notify;

use crate::proc_stats;

/// What one load level does.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The relay's WebSocket URL.
    pub url: String,
    /// A name for the relay in the results.
    pub server: String,
    /// The relay's process id, for CPU and RSS (none: not sampled).
    pub server_pid: Option<u32>,
    pub devices: usize,
    /// Devices per group; a group shares its documents.
    pub group_size: usize,
    /// Documents per group.
    pub docs_per_group: usize,
    /// Edits per second per device while typing.
    pub rate: f64,
    /// Edits typed in one go before a pause.
    pub burst: u32,
    /// The pause after a burst.
    pub think: Duration,
    /// How long devices type.
    pub duration: Duration,
    /// Each device goes offline about this often (none: never).
    pub churn_every: Option<Duration>,
    /// How long a device stays offline.
    pub offline_for: Duration,
    /// How long to wait, after typing stopped, for the last edits to arrive.
    pub drain: Duration,
    /// Where device stores go (a fresh temporary directory inside it).
    pub store_root: PathBuf,
    /// Distinguishes this run's documents and actors from any earlier run on the same relay.
    pub run_id: String,
    pub seed: u64,
}

/// One edit as made.
#[derive(Debug, Clone, Copy)]
struct Sent {
    hash: ChangeHash,
    at: Instant,
    origin: usize,
    online: bool,
}

/// Edits per document, in the order they were made.
struct Registry {
    docs: Vec<Mutex<Vec<Sent>>>,
    /// Per device: when it went offline, each time.
    went_offline: Vec<Mutex<Vec<Instant>>>,
}

impl Registry {
    /// Whether `device` went offline between `from` and `to` (then what it had not sent yet
    /// waited for it to come back: not latency).
    fn offline_between(&self, device: usize, from: Instant, to: Instant) -> bool {
        lock(&self.went_offline[device]).iter().any(|&t| t >= from && t <= to)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counters every task adds to.
#[derive(Default)]
struct Counters {
    edits: AtomicU64,
    deliveries: AtomicU64,
    /// Deliveries still expected: each edit adds its group's size minus one.
    outstanding: AtomicU64,
    reconnect_failures: AtomicU64,
    offline_periods: AtomicU64,
    arrived: Notify,
}

/// One device: its client, its index and its documents (global indices).
struct Device {
    index: usize,
    client: Client,
    docs: Vec<(usize, DocumentId)>,
}

/// What a device's watcher has seen.
#[derive(Default)]
struct Watch {
    /// Per document of the device: how far into the registry's log it has looked.
    cursors: Vec<usize>,
    /// Per document of the device: edits of others not yet seen here.
    pending: Vec<Vec<Sent>>,
    /// Latencies of delivered edits, in microseconds: only edits made while their author was
    /// online and after this device last came back online (catching up after an offline period
    /// is not latency).
    latencies_us: Vec<u64>,
    /// When this device last reconnected after an offline period.
    back_online_at: Option<Instant>,
}

/// The result of one load level.
#[derive(Debug, Clone)]
pub struct LevelResult {
    pub server: String,
    pub devices: usize,
    pub group_size: usize,
    pub docs: usize,
    pub rate: f64,
    pub duration_s: f64,
    pub edits: u64,
    /// (edit, other device of its group) pairs.
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries that happened while devices were typing, per second of typing.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub frames_out: u64,
    pub frames_in: u64,
    pub server_cpu_pct: f64,
    pub server_rss_peak_kib: u64,
    pub loadgen_cpu_pct: f64,
    pub offline_periods: u64,
    pub reconnect_failures: u64,
    pub series: Vec<Sample>,
}

/// One point of the time series, sampled every [`SAMPLE_EVERY`].
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t_s: f64,
    pub deliveries_per_s: f64,
    pub server_cpu_pct: f64,
    pub server_rss_kib: u64,
    pub loadgen_cpu_pct: f64,
}

const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// The genesis every device opens its documents with (fixed actor, time 0, so identical).
fn genesis() -> Vec<u8> {
    let mut doc = Automerge::new().with_actor(ActorId::from(b"chibo-loadgen-genesis".to_vec()));
    let mut tx = doc.transaction();
    let _ = tx.put_object(ROOT, "text", ObjType::Text);
    tx.commit_with(CommitOptions::default().with_time(0));
    doc.save()
}

/// Appends one character; returns the change's hash.
fn type_one(doc: &mut Automerge, c: char) -> Option<ChangeHash> {
    let Ok(Some((_, text))) = doc.get(ROOT, "text") else { return None };
    let mut tx = doc.transaction();
    let len = tx.length(&text);
    tx.splice_text(&text, len, 0, &c.to_string()).ok()?;
    tx.commit().0
}

/// Runs the level and returns its figures.
pub async fn run(config: &LoadConfig) -> Result<LevelResult> {
    anyhow::ensure!(config.devices >= 2 && config.group_size >= 2, "need at least two devices per group");
    anyhow::ensure!(config.rate > 0.0 && config.burst > 0, "the edit rate and burst must be positive");
    let stores = tempfile::tempdir_in(&config.store_root)
        .with_context(|| format!("creating a temporary directory in {}", config.store_root.display()))?;
    let groups = config.devices.div_ceil(config.group_size);
    let doc_ids: Vec<DocumentId> = (0..groups * config.docs_per_group)
        .map(|i| DocumentId::from_canonical_path(&format!("loadgen/{}/doc/{i}", config.run_id)))
        .collect();
    let group_of_doc: Vec<usize> = (0..doc_ids.len()).map(|i| i / config.docs_per_group).collect();
    let group_len = |g: usize| config.group_size.min(config.devices - g * config.group_size);
    let devices = start_devices(config, stores.path(), &doc_ids).await?;
    let registry = Arc::new(Registry {
        docs: doc_ids.iter().map(|_| Mutex::new(Vec::new())).collect(),
        went_offline: devices.iter().map(|_| Mutex::new(Vec::new())).collect(),
    });
    let counters = Arc::new(Counters::default());
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watches: Vec<Arc<Mutex<Watch>>> = devices
        .iter()
        .map(|d| {
            Arc::new(Mutex::new(Watch {
                cursors: vec![0; d.docs.len()],
                pending: vec![Vec::new(); d.docs.len()],
                latencies_us: Vec::new(),
                back_online_at: None,
            }))
        })
        .collect();
    let mut watchers = Vec::new();
    for (device, watch) in devices.iter().zip(&watches) {
        watchers.push(tokio::spawn(watch_device(
            device.client.clone(),
            device.index,
            device.docs.clone(),
            watch.clone(),
            registry.clone(),
            counters.clone(),
            stop_watching.clone(),
        )));
    }

    let wire_before = wire_totals(&devices);
    let server_cpu_before = config.server_pid.map(proc_stats::cpu_seconds).transpose()?;
    let own_cpu_before = proc_stats::cpu_seconds(std::process::id())?;
    let start = Instant::now();
    let typing_until = start + config.duration;
    let sampler = tokio::spawn(sample(config.server_pid, counters.clone(), start, typing_until));
    let mut editors = Vec::new();
    for (device, watch) in devices.iter().zip(&watches) {
        let fanout = (group_len(group_of_doc[device.docs[0].0]) - 1) as u64;
        editors.push(tokio::spawn(type_on(
            config.clone(),
            Editor {
                index: device.index,
                client: device.client.clone(),
                docs: device.docs.clone(),
                fanout,
                watch: watch.clone(),
            },
            registry.clone(),
            counters.clone(),
            typing_until,
        )));
    }
    for editor in editors {
        editor.await.context("an editor task panicked")??;
    }
    let typed = start.elapsed();
    let delivered_while_typing = counters.deliveries.load(Ordering::Relaxed);
    let server_cpu_after = config.server_pid.map(proc_stats::cpu_seconds).transpose()?;
    let own_cpu_after = proc_stats::cpu_seconds(std::process::id())?;

    // Devices still offline come back; then wait for the stragglers.
    for (device, watch) in devices.iter().zip(&watches) {
        if device.client.with(|inner| inner.connection().is_none()).await? {
            match device.client.connect(&config.url).await {
                Ok(_) => lock(watch).back_online_at = Some(Instant::now()),
                // An overloaded relay may refuse; what this device misses counts as lost.
                Err(e) => {
                    eprintln!("loadgen: device {} could not reconnect for the drain: {e}", device.index);
                    counters.reconnect_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    drain(&counters, config.drain).await;
    stop_watching.store(true, Ordering::Relaxed);
    counters.arrived.notify_waiters();
    let series = sampler.await.context("the sampler panicked")??;
    let wire_after = wire_totals(&devices);
    for device in &devices {
        let _ = device.client.disconnect().await;
    }
    for watcher in watchers {
        watcher.abort();
    }

    let mut latencies: Vec<u64> = watches.iter().flat_map(|w| lock(w).latencies_us.clone()).collect();
    latencies.sort_unstable();
    let secs = typed.as_secs_f64();
    let edits = counters.edits.load(Ordering::Relaxed);
    let delivered = counters.deliveries.load(Ordering::Relaxed);
    let outstanding = counters.outstanding.load(Ordering::Relaxed);
    Ok(LevelResult {
        server: config.server.clone(),
        devices: config.devices,
        group_size: config.group_size,
        docs: doc_ids.len(),
        rate: config.rate,
        duration_s: secs,
        edits,
        expected: delivered + outstanding,
        delivered,
        throughput: delivered_while_typing as f64 / secs,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        max_ms: latencies.last().map_or(f64::NAN, |&us| us as f64 / 1000.0),
        frames_out: wire_after.0 - wire_before.0,
        bytes_out: wire_after.1 - wire_before.1,
        frames_in: wire_after.2 - wire_before.2,
        bytes_in: wire_after.3 - wire_before.3,
        server_cpu_pct: match (server_cpu_before, server_cpu_after) {
            (Some(a), Some(b)) => 100.0 * (b - a) / secs,
            _ => f64::NAN,
        },
        server_rss_peak_kib: series.iter().map(|s| s.server_rss_kib).max().unwrap_or(0),
        loadgen_cpu_pct: 100.0 * (own_cpu_after - own_cpu_before) / secs,
        offline_periods: counters.offline_periods.load(Ordering::Relaxed),
        reconnect_failures: counters.reconnect_failures.load(Ordering::Relaxed),
        series,
    })
}

/// Starts every device, opens its group's documents, connects, and waits until the relay holds
/// each document as the device does.
async fn start_devices(config: &LoadConfig, stores: &Path, doc_ids: &[DocumentId]) -> Result<Vec<Device>> {
    let seed = genesis();
    let mut devices = Vec::with_capacity(config.devices);
    for index in 0..config.devices {
        let name = format!("loadgen-{}-{index}", config.run_id);
        let store = Arc::new(FsStore::open(stores.join(index.to_string()))?);
        let client = Client::start(store, PeerId::new(&name)?, ActorId::from(name.as_bytes().to_vec()));
        let group = index / config.group_size;
        let docs: Vec<(usize, DocumentId)> = (group * config.docs_per_group
            ..(group + 1) * config.docs_per_group)
            .map(|i| (i, doc_ids[i]))
            .collect();
        for &(_, doc) in &docs {
            client
                .open(doc, Some(seed.clone()))
                .await
                .with_context(|| format!("device {index}: opening {doc}"))?;
        }
        client
            .connect(&config.url)
            .await
            .with_context(|| format!("device {index}: connecting to {}", config.url))?;
        devices.push(Device { index, client, docs });
    }
    for device in &devices {
        for &(_, doc) in &device.docs {
            device
                .client
                .wait_synced(doc, Duration::from_secs(60))
                .await
                .with_context(|| format!("device {}: first sync of {doc}", device.index))?;
        }
    }
    Ok(devices)
}

/// (frames out, bytes out, frames in, bytes in) over all devices.
fn wire_totals(devices: &[Device]) -> (u64, u64, u64, u64) {
    devices
        .iter()
        .map(|d| d.client.wire_stats().snapshot())
        .fold((0, 0, 0, 0), |a, s| (a.0 + s.0, a.1 + s.1, a.2 + s.2, a.3 + s.3))
}

fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

/// A device as its editor task sees it.
struct Editor {
    index: usize,
    client: Client,
    docs: Vec<(usize, DocumentId)>,
    /// Other devices that share its documents.
    fanout: u64,
    /// Its watcher's state (to note when it comes back online).
    watch: Arc<Mutex<Watch>>,
}

/// Types bursts at the configured rate, thinks between them, goes offline now and then.
async fn type_on(
    config: LoadConfig,
    editor: Editor,
    registry: Arc<Registry>,
    counters: Arc<Counters>,
    until: Instant,
) -> Result<()> {
    let mut rng =
        StdRng::seed_from_u64(config.seed ^ (editor.index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let period = Duration::from_secs_f64(1.0 / config.rate);
    let mut churn = Churn::new(&config, &mut rng);
    // Devices start out of step with each other.
    let mut next = Instant::now() + period.mul_f64(rng.random::<f64>());
    let mut typed = 0u64;
    while Instant::now() < until {
        for _ in 0..config.burst {
            tokio::time::sleep_until(next.into()).await;
            next += period;
            if Instant::now() >= until {
                break;
            }
            churn.step(&config, &editor, &counters, &registry, &mut rng).await;
            let (slot, doc) = editor.docs[rng.random_range(0..editor.docs.len())];
            let c = char::from(b'a' + (typed % 26) as u8);
            typed += 1;
            let (reg, online, origin) = (registry.clone(), churn.online, editor.index);
            let made = editor
                .client
                .change(doc, move |d| {
                    let hash = type_one(d, c)?;
                    lock(&reg.docs[slot]).push(Sent { hash, at: Instant::now(), origin, online });
                    Some(hash)
                })
                .await
                .with_context(|| format!("device {}: editing {doc}", editor.index))?;
            if made.is_some() {
                counters.edits.fetch_add(1, Ordering::Relaxed);
                counters.outstanding.fetch_add(editor.fanout, Ordering::Relaxed);
            }
        }
        next = Instant::now() + config.think + period;
    }
    Ok(())
}

/// A device's offline/online schedule.
struct Churn {
    online: bool,
    /// When the state changes next (never, without churn).
    switch_at: Option<Instant>,
}

impl Churn {
    fn new(config: &LoadConfig, rng: &mut StdRng) -> Self {
        let switch_at = config.churn_every.map(|every| Instant::now() + every.mul_f64(rng.random::<f64>()));
        Self { online: true, switch_at }
    }

    async fn step(
        &mut self,
        config: &LoadConfig,
        editor: &Editor,
        counters: &Counters,
        registry: &Registry,
        rng: &mut StdRng,
    ) {
        let (Some(at), Some(every)) = (self.switch_at, config.churn_every) else { return };
        if Instant::now() < at {
            return;
        }
        if self.online {
            lock(&registry.went_offline[editor.index]).push(Instant::now());
            let _ = editor.client.disconnect().await;
            counters.offline_periods.fetch_add(1, Ordering::Relaxed);
            self.online = false;
            self.switch_at = Some(Instant::now() + config.offline_for);
        } else {
            match editor.client.connect(&config.url).await {
                Ok(_) => {
                    lock(&editor.watch).back_online_at = Some(Instant::now());
                    self.online = true;
                    self.switch_at = Some(Instant::now() + every.mul_f64(0.5 + rng.random::<f64>()));
                }
                Err(e) => {
                    eprintln!("loadgen: device {} could not reconnect (retrying): {e}", editor.index);
                    counters.reconnect_failures.fetch_add(1, Ordering::Relaxed);
                    self.switch_at = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
    }
}

/// How often a device's watcher looks for remote changes the device applied. Polling, because
/// `Client::wait_until` spins: every check it makes is a job on the client task, and every job
/// moves the version counter it then waits on, so it never sleeps (see bench/README.md). The
/// interval adds at most this much (half on average) to every measured latency, against the
/// relay under test, never in its favour.
pub const POLL_EVERY: Duration = Duration::from_millis(5);

/// Every [`POLL_EVERY`], takes the device's `DocChanged` effects and finds the edits of others it
/// now has.
async fn watch_device(
    client: Client,
    index: usize,
    docs: Vec<(usize, DocumentId)>,
    watch: Arc<Mutex<Watch>>,
    registry: Arc<Registry>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let docs = Arc::new(docs);
    let mut ticker = tokio::time::interval(POLL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let (docs, watch, registry, counters) =
            (docs.clone(), watch.clone(), registry.clone(), counters.clone());
        let found = client
            .with(move |inner| {
                let changed: HashSet<DocumentId> = inner
                    .events
                    .drain(..)
                    .filter_map(|e| match e {
                        Effect::DocChanged { doc } => Some(doc),
                        _ => None,
                    })
                    .collect();
                if changed.is_empty() {
                    return 0;
                }
                let mut watch = lock(&watch);
                let mut found = 0;
                for (slot, &(global, doc)) in docs.iter().enumerate() {
                    if changed.contains(&doc) {
                        found += look_for_edits(inner, index, slot, global, doc, &mut watch, &registry);
                    }
                }
                found
            })
            .await;
        match found {
            Ok(0) => {}
            Ok(n) => {
                counters.deliveries.fetch_add(n, Ordering::Relaxed);
                counters.outstanding.fetch_sub(n, Ordering::Relaxed);
                counters.arrived.notify_waiters();
            }
            Err(_) => return,
        }
    }
}

/// Moves newly made edits of others into the pending list and takes out those the document now
/// holds. Returns how many arrived.
fn look_for_edits(
    inner: &Inner,
    me: usize,
    slot: usize,
    global: usize,
    doc: DocumentId,
    watch: &mut Watch,
    registry: &Registry,
) -> u64 {
    let Some(am) = inner.engine().doc(&doc) else { return 0 };
    {
        let log = lock(&registry.docs[global]);
        let from = watch.cursors[slot];
        let others = log[from..].iter().filter(|s| s.origin != me).copied();
        watch.pending[slot].extend(others);
        watch.cursors[slot] = log.len();
    }
    let now = Instant::now();
    let mut arrived = Vec::new();
    watch.pending[slot].retain(|sent| {
        let here = am.get_missing_deps(&[sent.hash]).is_empty();
        if here {
            arrived.push(*sent);
        }
        !here
    });
    let back = watch.back_online_at;
    for sent in &arrived {
        let author_stayed = !registry.offline_between(sent.origin, sent.at, now);
        if sent.online && author_stayed && back.is_none_or(|b| sent.at >= b) {
            let us = now.saturating_duration_since(sent.at).as_micros();
            watch.latencies_us.push(u64::try_from(us).unwrap_or(u64::MAX));
        }
    }
    arrived.len() as u64
}

/// Waits until every expected delivery happened or `limit` passed.
async fn drain(counters: &Counters, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let notified = counters.arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if counters.outstanding.load(Ordering::Relaxed) == 0 {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return;
        }
    }
}

/// Samples deliveries, the relay's CPU and RSS, and our own CPU until `until` (plus nothing
/// after typing stops: the drain is not part of the series).
async fn sample(
    server_pid: Option<u32>,
    counters: Arc<Counters>,
    start: Instant,
    until: Instant,
) -> Result<Vec<Sample>> {
    let own = std::process::id();
    let mut series = Vec::new();
    let mut last = (
        Instant::now(),
        0u64,
        server_pid.map(proc_stats::cpu_seconds).transpose()?,
        proc_stats::cpu_seconds(own)?,
    );
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.tick().await;
    while Instant::now() < until {
        ticker.tick().await;
        let now = Instant::now();
        let delivered = counters.deliveries.load(Ordering::Relaxed);
        let server_cpu = server_pid.map(proc_stats::cpu_seconds).transpose()?;
        let own_cpu = proc_stats::cpu_seconds(own)?;
        let dt = now.duration_since(last.0).as_secs_f64();
        series.push(Sample {
            t_s: now.duration_since(start).as_secs_f64(),
            deliveries_per_s: (delivered - last.1) as f64 / dt,
            server_cpu_pct: match (last.2, server_cpu) {
                (Some(a), Some(b)) => 100.0 * (b - a) / dt,
                _ => f64::NAN,
            },
            server_rss_kib: server_pid.map(proc_stats::rss_kib).transpose()?.unwrap_or(0),
            loadgen_cpu_pct: 100.0 * (own_cpu - last.3) / dt,
        });
        last = (now, delivered, server_cpu, own_cpu);
    }
    if series.is_empty() && until > start + SAMPLE_EVERY {
        bail!("no samples taken");
    }
    Ok(series)
}
