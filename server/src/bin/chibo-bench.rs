//! Figures for the closing notes, measured against the real relay binary on loopback:
//!
//! - `sync-1000`: time and bytes on the wire to sync 1,000 small changes from one client to
//!   another through the relay, once typed online (each change sent as made) and once typed
//!   offline and sent on reconnect;
//! - `rss-docs`: the relay's resident memory with N documents open.
//!
//! Usage: `cargo run --release -p chibo-server --bin chibo-bench -- sync-1000|rss-docs [N]`.
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
use chibo_shared::ids::{DocumentId, PeerId};

struct Relay {
    child: Child,
    url: String,
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
        .args(["--data", &data.display().to_string(), "serve", "--listen", &format!("127.0.0.1:{port}")])
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
    Ok(Relay { child, url: format!("ws://127.0.0.1:{port}/sync") })
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sync-1000") => {
            sync_1000(Mode::Online).await?;
            sync_1000(Mode::OnlineEachAcked).await?;
            sync_1000(Mode::Offline).await
        }
        Some("rss-docs") => rss_docs(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000)).await,
        _ => bail!("usage: chibo-bench sync-1000 | rss-docs [N]"),
    }
}
