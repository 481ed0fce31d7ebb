//! Figures for the closing notes, measured against the real relay binary on loopback:
//!
//! - `sync-1000`: time and bytes on the wire to sync 1,000 small changes from one client to
//!   another through the relay, once typed online (each change sent as made) and once typed
//!   offline and sent on reconnect;
//! - `rss-docs`: the relay's resident memory with N documents open;
//! - `rss-touched`: the relay's resident memory after 100, 1,000, … N documents touched (devices
//!   that each create, edit and sync a batch of documents, then go away), each figure taken once
//!   the relay holds no document any more;
//! - `idle-conns`: the relay's resident memory per idle WebSocket connection (handshake done,
//!   no document), with this program's open-file limit raised to its hard limit (the relay, a
//!   child, inherits it);
//! - `reconnect`: round trips, bytes and frames on the wire, both directions, when a device
//!   reconnects with N documents the relay already has (nothing changed on either side), once
//!   with the plain automerge-repo protocol and once with chibo's heads summary.
//!
//! Usage: `cargo run --release -p chibo-server --bin chibo-bench -- sync-1000 | rss-docs [N] |
//! rss-touched [N] | idle-conns [N] | reconnect [N…]`. See `bench/MEMORY.md`.
//! The relay is the `chibo-server` binary next to this one (build both with `--release`).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use automerge::transaction::Transactable as _;
use automerge::{ActorId, ObjType, ROOT, ReadDoc as _};
use chibo_server::client::Client;
use chibo_server::store::fs::FsStore;
use chibo_server::store::{Store, StoreError};
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::storage::{Chunk, WriteBatch};
use chibo_shared::sync::{ConnId, Direction, Effect, Engine, EngineConfig, Input, OpenAccess, Role};
use chibo_shared::wire::{Message, PROTOCOL_V1};

/// The first argument after the command, or `default`.
fn arg(args: &[String], default: usize) -> usize {
    args.get(1).and_then(|s| s.parse().ok()).unwrap_or(default)
}

struct Relay {
    child: Child,
    url: String,
    port: u16,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relay(data: &Path) -> anyhow::Result<Relay> {
    let exe = std::env::current_exe()?;
    let server: PathBuf = exe.with_file_name("chibo-server");
    // Find a free port, then hand it to the relay (it prints nothing machine-readable).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = Command::new(&server)
        .args(["--data", &data.display().to_string(), "serve", "--open-access"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "chibo_server=warn")
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", server.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("relay did not start listening on {port}");
        }
        if let Some(status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(e) = child.stderr.take() {
                for line in BufReader::new(e).lines().map_while(Result::ok) {
                    err.push_str(&line);
                    err.push('\n');
                }
            }
            bail!("relay exited with {status}: {err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Relay { child, url: format!("ws://127.0.0.1:{port}/sync"), port })
}

impl Relay {
    /// One gauge of the relay's `/metrics` (a plain HTTP/1.0 GET on loopback).
    fn gauge(&self, name: &str) -> anyhow::Result<f64> {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
            .with_context(|| format!("no {name} in /metrics"))
    }

    /// Waits until the relay has evicted every document (devices gone, writes done).
    async fn wait_all_evicted(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.gauge("chibo_documents_in_memory")? > 0.0 {
            if Instant::now() > deadline {
                bail!("the relay still holds documents after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.child.id())
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// `VmRSS` split as the kernel reports it: (anonymous, file-backed, shared memory) KiB, to tell
/// the heap from SQLite's mapped files.
fn rss_parts(pid: u32) -> anyhow::Result<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name}"))
    };
    Ok((field("RssAnon:")?, field("RssFile:")?, field("RssShmem:")?))
}

fn client(dir: &Path, name: &str) -> anyhow::Result<Client> {
    let store = Arc::new(FsStore::open(dir.join(name))?);
    Ok(Client::start(store, PeerId::new(name)?, ActorId::from(name.as_bytes().to_vec())))
}

fn seed() -> Vec<u8> {
    let mut doc = automerge::Automerge::new().with_actor(ActorId::from(b"bench-genesis".to_vec()));
    let mut tx = doc.transaction();
    let _ = tx.put_object(ROOT, "text", ObjType::Text);
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(0));
    doc.save()
}

fn type_one(doc: &mut automerge::Automerge, i: usize) {
    let Ok(Some((_, text))) = doc.get(ROOT, "text") else { return };
    let mut tx = doc.transaction();
    let len = tx.length(&text);
    let _ = tx.splice_text(&text, len, 0, &char::from(b'a' + (i % 26) as u8).to_string());
    tx.commit();
}

/// How the 1,000 changes are typed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As fast as possible while online: the engine batches what accumulates while a write is
    /// in flight.
    Online,
    /// Online, waiting for the relay's acknowledgement after each change: 1,000 round trips.
    OnlineEachAcked,
    /// Offline, then sent on reconnect.
    Offline,
}

async fn sync_1000(mode: Mode) -> anyhow::Result<()> {
    let online = mode != Mode::Offline;
    let dir = tempfile::tempdir()?;
    let relay = start_relay(&dir.path().join("relay"))?;
    let (a, b) = (client(dir.path(), "alice")?, client(dir.path(), "bob")?);
    let doc = DocumentId::from_canonical_path("bench/sync-1000");
    for c in [&a, &b] {
        c.open(doc, Some(seed())).await?;
        c.connect(&relay.url).await?;
        c.wait_synced(doc, Duration::from_secs(30)).await?;
    }
    if !online {
        a.disconnect().await?;
    }
    let before = (a.wire_stats().snapshot(), b.wire_stats().snapshot());
    let start = Instant::now();
    for i in 0..1000 {
        a.change(doc, move |d| type_one(d, i)).await?;
        if mode == Mode::OnlineEachAcked {
            a.wait_synced(doc, Duration::from_secs(30)).await?;
        }
    }
    if !online {
        a.connect(&relay.url).await?;
    }
    let want = a.read(doc, |d| d.get_heads()).await?;
    b.wait_until("bob to have all 1,000 changes", Duration::from_secs(120), move |inner| {
        inner.heads(&doc).is_some_and(|h| h == want)
    })
    .await?;
    let elapsed = start.elapsed();
    let (a1, b1) = (a.wire_stats().snapshot(), b.wire_stats().snapshot());
    let len = b.read(doc, |d| d.get(ROOT, "text").ok().flatten().map(|(_, t)| d.length(&t))).await?;
    println!(
        "sync-1000 ({}): {:.0} ms; alice sent {} frames / {} bytes; bob received {} frames / {} bytes; bob's text has {} chars",
        match mode {
            Mode::Online => "typed online, as fast as possible",
            Mode::OnlineEachAcked => "typed online, each change acknowledged before the next",
            Mode::Offline => "typed offline, sent on reconnect",
        },
        elapsed.as_secs_f64() * 1000.0,
        a1.0 - before.0.0,
        a1.1 - before.0.1,
        b1.2 - before.1.2,
        b1.3 - before.1.3,
        len.unwrap_or(0),
    );
    Ok(())
}

async fn rss_docs(n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = start_relay(&dir.path().join("relay"))?;
    let idle = rss_kib(relay.child.id())?;
    let c = client(dir.path(), "reader")?;
    c.connect(&relay.url).await?;
    let docs: Vec<DocumentId> =
        (0..n).map(|i| DocumentId::from_canonical_path(&format!("bench/rss/{i}"))).collect();
    for (i, &doc) in docs.iter().enumerate() {
        c.open(doc, Some(seed())).await?;
        c.change(doc, move |d| type_one(d, i)).await?;
    }
    for &doc in &docs {
        c.wait_synced(doc, Duration::from_secs(60)).await?;
    }
    let open = rss_kib(relay.child.id())?;
    c.disconnect().await?;
    println!(
        "rss-docs: relay RSS {idle} KiB idle, {open} KiB with {n} documents open ({:.1} KiB per document)",
        (open.saturating_sub(idle)) as f64 / n as f64
    );
    Ok(())
}

/// An in-memory store for bench devices: their disk is not what is measured.
#[derive(Default)]
struct MemStore {
    docs: std::sync::Mutex<std::collections::HashMap<DocumentId, Vec<Chunk>>>,
}

#[async_trait::async_trait]
impl Store for MemStore {
    async fn load(&self, doc: DocumentId) -> Result<Vec<Chunk>, StoreError> {
        Ok(self.docs.lock().map(|d| d.get(&doc).cloned().unwrap_or_default()).unwrap_or_default())
    }

    async fn write(&self, doc: DocumentId, batch: WriteBatch) -> Result<(), StoreError> {
        if let Ok(mut docs) = self.docs.lock() {
            let chunks = docs.entry(doc).or_default();
            chunks.retain(|c| !batch.deletes.contains(&c.key) && !batch.puts.iter().any(|p| p.key == c.key));
            chunks.extend(batch.puts);
        }
        Ok(())
    }

    async fn list_documents(&self) -> Result<Vec<DocumentId>, StoreError> {
        Ok(self.docs.lock().map(|d| d.keys().copied().collect()).unwrap_or_default())
    }

    async fn document_count(&self) -> Result<u64, StoreError> {
        Ok(self.docs.lock().map(|d| d.len() as u64).unwrap_or_default())
    }
}

fn mem_client(name: &str) -> anyhow::Result<Client> {
    let store = Arc::new(MemStore::default());
    Ok(Client::start(store, PeerId::new(name)?, ActorId::from(name.as_bytes().to_vec())))
}

/// One device touches `docs`: opens each (a new document), types into it, syncs all, leaves.
async fn touch(url: &str, device: &str, docs: &[DocumentId]) -> anyhow::Result<()> {
    let c = mem_client(device)?;
    c.connect(url).await?;
    for (i, &doc) in docs.iter().enumerate() {
        c.open(doc, Some(seed())).await?;
        c.change(doc, move |d| type_one(d, i)).await?;
    }
    for &doc in docs {
        c.wait_synced(doc, Duration::from_secs(120)).await?;
    }
    c.disconnect().await?;
    Ok(())
}

/// Relay RSS after 100, 1,000, … `n` documents touched by devices that each touch `BATCH`
/// documents and leave (`PARALLEL` devices at a time).
async fn rss_touched(n: usize) -> anyhow::Result<()> {
    const BATCH: usize = 100;
    const PARALLEL: usize = 4;
    let dir = tempfile::tempdir()?;
    let relay = start_relay(&dir.path().join("relay"))?;
    println!("rss-touched: relay RSS {} KiB at start", relay.rss_kib()?);
    let start = Instant::now();
    let (mut touched, mut checkpoint, mut device) = (0usize, 100usize, 0usize);
    while touched < n {
        let mut wave = Vec::new();
        for _ in 0..PARALLEL {
            let count = BATCH.min(n - touched).min(checkpoint - touched);
            if count == 0 {
                break;
            }
            let docs: Vec<DocumentId> = (touched..touched + count)
                .map(|i| DocumentId::from_canonical_path(&format!("bench/touched/{i}")))
                .collect();
            touched += count;
            device += 1;
            let (url, name) = (relay.url.clone(), format!("device-{device}"));
            wave.push(async move { touch(&url, &name, &docs).await });
        }
        futures::future::try_join_all(wave).await?;
        if touched == checkpoint || touched == n {
            relay.wait_all_evicted().await?;
            let (anon, file, shmem) = rss_parts(relay.child.id())?;
            println!(
                "rss-touched: relay RSS {} KiB (anonymous {anon}, file {file}, shmem {shmem}) after {touched} documents touched ({device} devices, {:.0} s)",
                relay.rss_kib()?,
                start.elapsed().as_secs_f64()
            );
            checkpoint = (checkpoint * 10).min(n);
        }
    }
    Ok(())
}

/// Raises this process's open-file limit to its hard limit (children inherit it).
fn raise_fd_limit() -> anyhow::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).context("raising RLIMIT_NOFILE")?;
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens one WebSocket and completes the join/peer handshake; the socket then stays idle.
async fn idle_socket(url: &str, i: usize) -> anyhow::Result<Socket> {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message as Ws;
    // A small read buffer: this side's memory is not measured, but 10,000 sockets at the
    // default 128 KiB each would not fit next to the relay.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    let join = Message::Join {
        sender: PeerId::new(format!("idle-{i}"))?,
        supported_versions: vec![PROTOCOL_V1.to_owned()],
        metadata: None,
    };
    ws.send(Ws::Binary(join.encode().into())).await?;
    loop {
        match ws.next().await {
            Some(Ok(Ws::Binary(b))) if matches!(Message::decode(&b), Ok(Message::Peer { .. })) => {
                return Ok(ws);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the relay closed connection {i} during the handshake"),
        }
    }
}

/// Opens `count` idle sockets, `step` at a time.
async fn idle_sockets(url: &str, from: usize, count: usize) -> anyhow::Result<Vec<Socket>> {
    const STEP: usize = 250;
    let mut sockets = Vec::with_capacity(count);
    let mut i = from;
    while i < from + count {
        let upto = (i + STEP).min(from + count);
        let wave = (i..upto).map(|k| idle_socket(url, k));
        sockets.extend(futures::future::try_join_all(wave).await?);
        i = upto;
    }
    Ok(sockets)
}

/// Relay RSS per idle connection.
async fn idle_conns(n: usize) -> anyhow::Result<()> {
    let limit = raise_fd_limit()?;
    if limit < n as u64 + 100 {
        bail!("open-file limit is {limit}, too low for {n} connections (raise the hard limit)");
    }
    let dir = tempfile::tempdir()?;
    let relay = start_relay(&dir.path().join("relay"))?;
    // Warm up: the runtime's worker threads, the first allocations of the WebSocket stack.
    drop(idle_sockets(&relay.url, 0, 200).await?);
    let deadline = Instant::now() + Duration::from_secs(30);
    while relay.gauge("chibo_connections_open")? > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = relay.rss_kib()?;
    let sockets = idle_sockets(&relay.url, 1000, n).await?;
    let open = relay.gauge("chibo_connections_open")?;
    let after = relay.rss_kib()?;
    println!(
        "idle-conns: open-file limit {limit}; relay RSS {before} KiB before, {after} KiB with {n} idle connections ({open} open per /metrics): {:.2} KiB per connection",
        after.saturating_sub(before) as f64 / n as f64
    );
    drop(sockets);
    Ok(())
}

/// A bench device: the shared engine (client role) with an in-memory disk, driven over one
/// WebSocket at a time, counting bytes and round trips itself.
struct Device {
    engine: Engine<OpenAccess>,
    disk: std::collections::HashMap<DocumentId, Vec<Chunk>>,
    now: u64,
    next_conn: u64,
}

/// What one connection cost the device until it knew every document was up to date.
#[derive(Debug, Default)]
struct Session {
    bytes_out: u64,
    bytes_in: u64,
    frames_out: u64,
    frames_in: u64,
    /// Times the device sent something and then had to wait for an answer: the join/peer
    /// handshake is the first.
    round_trips: u32,
    /// Bytes of `join` and `peer`, which every connection costs whatever it syncs.
    handshake_bytes: u64,
}

impl Device {
    fn new(name: &str, heads_summary: bool) -> anyhow::Result<Self> {
        let mut config = EngineConfig::new(Role::Client, PeerId::new(name)?);
        config.actor = Some(ActorId::from(name.as_bytes().to_vec()));
        config.heads_summary = heads_summary;
        Ok(Self { engine: Engine::new(config, OpenAccess), disk: Default::default(), now: 0, next_conn: 0 })
    }

    /// Feeds `input` in and carries out its IO at once; returns the frames to send.
    fn handle(&mut self, input: Input<()>) -> Vec<Vec<u8>> {
        self.now += 1;
        let effects = self.engine.handle(self.now, input);
        self.carry_out(effects)
    }

    fn carry_out(&mut self, effects: Vec<Effect>) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for effect in effects {
            match effect {
                Effect::Send { bytes, .. } => frames.push(bytes),
                Effect::Load { doc } => {
                    let chunks = self.disk.get(&doc).cloned().unwrap_or_default();
                    frames.extend(self.handle(Input::Loaded { doc, chunks }));
                }
                Effect::Write { doc, write, batch } => {
                    let chunks = self.disk.entry(doc).or_default();
                    chunks.retain(|c| !batch.deletes.contains(&c.key));
                    chunks.extend(batch.puts);
                    frames.extend(self.handle(Input::Written { doc, write }));
                }
                _ => {}
            }
        }
        frames
    }

    fn create(&mut self, doc: DocumentId, i: usize) -> anyhow::Result<()> {
        self.handle(Input::Open { doc, seed: Some(seed()) });
        let ((), effects) = self.engine.change(doc, |d| type_one(d, i))?;
        self.carry_out(effects);
        Ok(())
    }

    /// Whether the relay has told us, on `conn`, that it holds exactly our heads of every doc.
    fn up_to_date(&self, conn: ConnId, docs: &[DocumentId]) -> bool {
        docs.iter().all(|doc| {
            let ours = self.engine.doc(doc).map(automerge::Automerge::get_heads);
            let theirs = self.engine.sync_state(conn, doc).and_then(|s| s.their_heads.clone());
            match (ours, theirs) {
                (Some(mut o), Some(mut t)) => {
                    o.sort();
                    t.sort();
                    o == t
                }
                _ => false,
            }
        })
    }

    /// Connects, syncs until every document of `docs` is up to date, and disconnects.
    async fn session(&mut self, url: &str, docs: &[DocumentId]) -> anyhow::Result<Session> {
        use futures::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::Message as Ws;
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let mut cost = Session::default();
        let mut out = self.handle(Input::Connected { conn, direction: Direction::Outbound, principal: () });
        let mut answered = true; // the first send starts a round trip
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if !out.is_empty() {
                if answered {
                    cost.round_trips += 1;
                    answered = false;
                }
                for bytes in out.drain(..) {
                    if cost.frames_out == 0 {
                        cost.handshake_bytes += bytes.len() as u64; // join
                    }
                    cost.frames_out += 1;
                    cost.bytes_out += bytes.len() as u64;
                    ws.send(Ws::Binary(bytes.into())).await?;
                }
            }
            if self.engine.remote_peer(conn).is_some() && self.up_to_date(conn, docs) {
                break;
            }
            let frame = tokio::time::timeout_at(deadline.into(), ws.next())
                .await
                .context("no answer from the relay within 120 s")?;
            match frame {
                Some(Ok(Ws::Binary(bytes))) => {
                    if cost.frames_in == 0 {
                        cost.handshake_bytes += bytes.len() as u64; // peer
                    }
                    cost.frames_in += 1;
                    cost.bytes_in += bytes.len() as u64;
                    answered = true;
                    out = self.handle(Input::Frame { conn, bytes: bytes.to_vec() });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("the relay closed the connection"),
            }
        }
        self.handle(Input::Disconnected { conn });
        let _ = ws.close(None).await;
        Ok(cost)
    }
}

/// A device reconnects with `n` documents the relay already has, nothing changed on either side.
async fn reconnect(n: usize, heads_summary: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = start_relay(&dir.path().join("relay"))?;
    let mut device = Device::new("reconnecting-device", heads_summary)?;
    let docs: Vec<DocumentId> =
        (0..n).map(|i| DocumentId::from_canonical_path(&format!("bench/reconnect/{i}"))).collect();
    for (i, &doc) in docs.iter().enumerate() {
        device.create(doc, i)?;
    }
    device.session(&relay.url, &docs).await?;
    relay.wait_all_evicted().await?;
    let c = device.session(&relay.url, &docs).await?;
    let total = c.bytes_out + c.bytes_in;
    println!(
        "reconnect N={n} ({}): {} round trips after the handshake; device sent {} frames / {} bytes, received {} frames / {} bytes; per document, both directions: {:.1} bytes after the handshake ({:.1} with the {}-byte handshake)",
        if heads_summary { "heads summary" } else { "plain automerge-repo protocol" },
        c.round_trips - 1,
        c.frames_out,
        c.bytes_out,
        c.frames_in,
        c.bytes_in,
        (total - c.handshake_bytes) as f64 / n as f64,
        total as f64 / n as f64,
        c.handshake_bytes,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sync-1000") => {
            sync_1000(Mode::Online).await?;
            sync_1000(Mode::OnlineEachAcked).await?;
            sync_1000(Mode::Offline).await
        }
        Some("rss-docs") => rss_docs(arg(&args, 1000)).await,
        Some("rss-touched") => rss_touched(arg(&args, 100_000)).await,
        Some("idle-conns") => idle_conns(arg(&args, 10_000)).await,
        Some("reconnect") => {
            let ns: Vec<usize> = args.iter().skip(1).filter_map(|s| s.parse().ok()).collect();
            for n in if ns.is_empty() { vec![1, 100, 1000] } else { ns } {
                reconnect(n, false).await?;
                reconnect(n, true).await?;
            }
            Ok(())
        }
        _ => bail!(
            "usage: chibo-bench sync-1000 | rss-docs [N] | rss-touched [N] | idle-conns [N] | reconnect [N…]"
        ),
    }
}
