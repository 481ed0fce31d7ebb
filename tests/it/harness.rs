//! What every scenario needs: a relay (in-process on `127.0.0.1:0`, or the `chibo-test-relay`
//! child process; on SQLite, or on a PostgreSQL database several relays share), devices (native
//! clients on their own temporary file stores), `/metrics`, and independent reads of the relay's
//! SQLite file or PostgreSQL database.
//!
//! Nothing here sleeps: waits are on client conditions ([`Client::wait_until`]) or on IO.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use automerge::{ActorId, Automerge, ChangeHash};
use chibo_server::client::Client;
use chibo_server::config::{DataDir, DatabaseUrl, ServeConfig};
use chibo_server::store::Store;
use chibo_server::store::fs::FsStore;
use chibo_server::store::postgres::PostgresStore;
use chibo_server::store::sqlite::SqliteStore;
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::schema::{Document, TextField, read_text, splice_text, update};
use chibo_shared::storage::load_chunks;
use chibo_shared::wire::{Message, PROTOCOL_V1};
use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

/// How long any one wait may take before the test fails. Generous: debug builds on 2 cores.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

/// The WebSocket URL of a relay's `/sync`.
pub(crate) fn sync_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/sync")
}

/// A relay running in this process (`chibo_server::http::run`), stopped gracefully by [`Relay::stop`].
pub(crate) struct Relay {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Relay {
    /// Starts the relay with `config` (its data dir and limits) on a fresh `127.0.0.1:0` port.
    pub(crate) async fn start(mut config: ServeConfig) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("bind")?;
        let addr = listener.local_addr()?;
        config.listen = addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chibo_server::http::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop: Some(stop), task })
    }

    /// Starts the relay with default settings on the data directory `data`, in open access
    /// (these scenarios test sync, not the roster; `access` tests start it closed).
    pub(crate) async fn start_in(data: &Path) -> anyhow::Result<Self> {
        let mut config = ServeConfig::new(data);
        config.open_access = true;
        Self::start(config).await
    }

    /// Starts a relay node on the PostgreSQL database at `database_url`, in open access.
    pub(crate) async fn start_on_postgres(database_url: &str) -> anyhow::Result<Self> {
        // The data directory is not used when documents live in PostgreSQL.
        let mut config = ServeConfig::new(std::env::temp_dir().join("chibo-unused-data-dir"));
        config.open_access = true;
        config.database = Some(DatabaseUrl::new(database_url).map_err(anyhow::Error::msg)?);
        Self::start(config).await
    }

    /// Starts a relay node on the PostgreSQL database at `database_url`, closed: only devices
    /// enrolled in the database's roster connect.
    pub(crate) async fn start_on_postgres_enrolled(database_url: &str) -> anyhow::Result<Self> {
        let mut config = ServeConfig::new(std::env::temp_dir().join("chibo-unused-data-dir"));
        config.database = Some(DatabaseUrl::new(database_url).map_err(anyhow::Error::msg)?);
        Self::start(config).await
    }

    pub(crate) fn url(&self) -> String {
        sync_url(self.addr)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// True while the server task has neither returned nor panicked.
    pub(crate) fn is_serving(&self) -> bool {
        !self.task.is_finished()
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        http_get(self.addr, path).await
    }

    pub(crate) async fn metrics(&self) -> anyhow::Result<Metrics> {
        metrics(self.addr).await
    }

    /// Graceful shutdown: closes connections, finishes writes, and checks `run` returned `Ok`.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(TIMEOUT, &mut self.task).await.context("relay did not stop")??
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // A failed test must not leave a server task behind on the shared runtime.
        self.task.abort();
    }
}

/// The relay as a child process (`chibo-test-relay`), for tests that kill it with `SIGKILL`.
pub(crate) struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    // Held so the child never writes into a closed pipe.
    _stdout: std::io::BufReader<ChildStdout>,
}

impl RelayProcess {
    /// Starts `chibo-test-relay` on `data` and waits for its `listening <addr>` line.
    pub(crate) async fn spawn(data: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(data, &[], None).await
    }

    /// Starts `chibo-test-relay` as a node on the PostgreSQL database at `database_url`.
    pub(crate) async fn spawn_on_postgres(database_url: &str) -> anyhow::Result<Self> {
        let unused = std::env::temp_dir().join("chibo-unused-data-dir");
        Self::spawn_with(&unused, &[], Some(database_url)).await
    }

    /// Starts `chibo-test-relay` on `data` listening on `listen` (`127.0.0.1:0` for any free
    /// port), serving the built app from `app_dir`.
    pub(crate) async fn serve_app(data: &Path, listen: SocketAddr, app_dir: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(data, &[listen.to_string().into(), app_dir.into()], None).await
    }

    async fn spawn_with(
        data: &Path,
        args: &[std::ffi::OsString],
        database_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        let data = data.to_path_buf();
        let args = args.to_vec();
        let database_url = database_url.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_chibo-test-relay"));
            if let Some(url) = &database_url {
                command.env("CHIBO_TEST_RELAY_DATABASE_URL", url);
            }
            let mut child = command
                .arg(&data)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("spawning chibo-test-relay")?;
            let Some(stdout) = child.stdout.take() else { bail!("no stdout pipe") };
            let mut stdout = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let read = stdout.read_line(&mut line);
            let addr = read
                .context("reading the relay's address")
                .and_then(|_| {
                    let addr = line.trim().strip_prefix("listening ").context("no `listening` line")?;
                    addr.parse::<SocketAddr>().context("parsing the address")
                })
                .inspect_err(|_| {
                    let _ = child.kill();
                    let _ = child.wait();
                })
                .with_context(|| format!("relay printed {line:?}"))?;
            Ok(Self { child, addr, _stdout: stdout })
        })
        .await?
    }

    pub(crate) fn url(&self) -> String {
        sync_url(self.addr)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `SIGKILL`s the relay (no shutdown, no flush) and reaps it.
    pub(crate) fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().context("SIGKILL")?;
        let status = self.child.wait().context("reaping the relay")?;
        ensure!(!status.success(), "relay exited by itself ({status}) instead of being killed");
        Ok(())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        // After `kill` these fail harmlessly; after a failed test they stop an orphan.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A device: a native client on its own temporary file store, with its own actor.
pub(crate) struct Device {
    pub(crate) client: Client,
    pub(crate) actor: ActorId,
    _dir: tempfile::TempDir,
}

impl Device {
    /// A new device named `name` (its peer id; its actor is derived from the name).
    pub(crate) fn new(name: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(FsStore::open(dir.path())?);
        let actor = ActorId::from(format!("device/{name}").as_bytes());
        let client = Client::start(store, PeerId::new(name)?, actor.clone());
        Ok(Self { client, actor, _dir: dir })
    }

    /// A copy of the device's current `doc`.
    pub(crate) async fn snapshot(&self, doc: DocumentId) -> anyhow::Result<Automerge> {
        let bytes = self.client.read(doc, |d| d.save()).await?;
        Ok(Automerge::load(&bytes)?)
    }

    pub(crate) async fn heads(&self, doc: DocumentId) -> anyhow::Result<Vec<ChangeHash>> {
        Ok(sorted(self.client.read(doc, Automerge::get_heads).await?))
    }

    /// Waits until the device holds exactly `heads` of `doc` and the relay has acknowledged them.
    pub(crate) async fn wait_for_heads(&self, doc: DocumentId, heads: &[ChangeHash]) -> anyhow::Result<()> {
        let want = sorted(heads.to_vec());
        self.client
            .wait_until("the expected heads, acknowledged by the relay", TIMEOUT, move |inner| {
                inner.heads(&doc).map(sorted).as_ref() == Some(&want) && inner.in_sync(&doc)
            })
            .await?;
        Ok(())
    }
}

pub(crate) fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// Every change hash in `doc`.
pub(crate) fn change_hashes(doc: &Automerge) -> BTreeSet<ChangeHash> {
    doc.get_changes(&[]).iter().map(automerge::Change::hash).collect()
}

/// The merge of `docs`: what every replica must converge to.
pub(crate) fn merged(docs: &[&Automerge]) -> anyhow::Result<Automerge> {
    let mut all = Automerge::new();
    for d in docs {
        all.merge(&mut (*d).clone())?;
    }
    Ok(all)
}

/// Reads `doc` straight from the relay's SQLite file in `data` (not through any relay), checking
/// that every stored chunk loads.
pub(crate) async fn stored_doc(data: &Path, doc: DocumentId) -> anyhow::Result<Automerge> {
    let path = DataDir::new(data).sqlite_path();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(path)).await??;
    let chunks = store.load(doc).await?;
    let (loaded, bad) = load_chunks(&chunks);
    ensure!(bad.is_empty(), "chunks of {doc} that do not load: {bad:?}");
    Ok(loaded)
}

/// Reads `doc` straight from the PostgreSQL database at `database_url` (not through any relay),
/// checking that every stored chunk loads.
pub(crate) async fn stored_doc_pg(database_url: &str, doc: DocumentId) -> anyhow::Result<Automerge> {
    let store = PostgresStore::connect(database_url).await?;
    let chunks = store.load(doc).await?;
    let (loaded, bad) = load_chunks(&chunks);
    ensure!(bad.is_empty(), "chunks of {doc} that do not load: {bad:?}");
    Ok(loaded)
}

/// `/metrics` as `series -> value` (series with labels, e.g. `x_total{reason="text"}`).
#[derive(Debug, Clone)]
pub(crate) struct Metrics(HashMap<String, f64>);

impl Metrics {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let mut samples = HashMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (series, value) = line.rsplit_once(' ').with_context(|| format!("no value: {line:?}"))?;
            samples.insert(series.to_owned(), value.parse().with_context(|| format!("value: {line:?}"))?);
        }
        Ok(Self(samples))
    }

    /// The value of `series`; panics (failing the test) if the relay does not export it.
    pub(crate) fn get(&self, series: &str) -> f64 {
        match self.0.get(series) {
            Some(v) => *v,
            None => panic!("/metrics has no {series}"),
        }
    }

    pub(crate) fn refused(&self, reason: &str) -> f64 {
        self.get(&format!("chibo_frames_refused_total{{reason=\"{reason}\"}}"))
    }
}

pub(crate) async fn metrics(addr: SocketAddr) -> anyhow::Result<Metrics> {
    let (status, body) = http_get(addr, "/metrics").await?;
    ensure!(status == 200, "/metrics answered {status}: {body}");
    Metrics::parse(&body)
}

/// A minimal HTTP/1.1 GET (one request per connection): `(status, body)`.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    http_request(addr, "GET", path, None, None).await
}

/// One HTTP/1.1 request with an optional bearer token and JSON body: the status and the body.
pub(crate) async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.context("connect")?;
    let body = json.map(ToString::to_string).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if json.is_some() {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw)).await.context("response timed out")??;
    let text = String::from_utf8(raw).context("response is not UTF-8")?;
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line in {head:?}"))?;
    let chunked = lines.any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked { dechunk(body)? } else { body.to_owned() };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size, tail) = rest.split_once("\r\n").context("chunk size line")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(tail.get(..size).context("short chunk")?);
        rest = tail.get(size + 2..).context("chunk without CRLF")?;
    }
}

/// Types `text` at the end of the text `field` as one change (commit time is advisory).
///
/// The schema helpers below return `anyhow` errors: `SchemaError` is large, and these run inside
/// the closures the client takes.
pub(crate) fn append_text<F: TextField>(
    doc: &mut Automerge,
    field: &F,
    text: &str,
) -> anyhow::Result<Option<ChangeHash>> {
    let end = read_text(doc, field)?.chars().count();
    Ok(splice_text(doc, field, end, 0, text, EDIT_TIME)?)
}

/// The current value of the text `field`.
pub(crate) fn text_of<F: TextField>(doc: &Automerge, field: &F) -> anyhow::Result<String> {
    Ok(read_text(doc, field)?)
}

/// Edits a `T` document's scalars and lists in one change.
pub(crate) fn edit<T: Document>(
    doc: &mut Automerge,
    f: impl FnOnce(&mut T),
) -> anyhow::Result<Option<ChangeHash>> {
    Ok(update(doc, EDIT_TIME, f)?)
}

/// Commit time of test edits (2026-03-15 08:00 +07:00), unix seconds.
pub(crate) const EDIT_TIME: i64 = 1_773_536_400;

/// A raw WebSocket to `/sync`, for speaking the protocol (or not) by hand.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) fn binary(bytes: Vec<u8>) -> Frame {
    Frame::Binary(bytes.into())
}

/// Sends `join` on a raw socket and returns the relay's peer id from its `peer` answer.
pub(crate) async fn raw_join(ws: &mut Socket, me: &PeerId) -> anyhow::Result<PeerId> {
    let join = Message::Join {
        sender: me.clone(),
        supported_versions: vec![PROTOCOL_V1.to_owned()],
        metadata: None,
    };
    ws.send(binary(join.encode())).await?;
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next()).await.context("no answer to join")? {
            Some(Ok(Frame::Binary(bytes))) => match Message::decode(&bytes)? {
                Message::Peer { sender, .. } => return Ok(sender),
                other => bail!("expected `peer`, got {other:?}"),
            },
            Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
            other => bail!("expected `peer`, got {other:?}"),
        }
    }
}

/// Reads until the relay closes `ws`: its close code, or `None` if the stream just ended. Binary
/// frames on the way are an error unless `skip_binary`.
pub(crate) async fn closed(ws: &mut Socket, skip_binary: bool) -> anyhow::Result<Option<u16>> {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next()).await.context("the relay kept the connection open")? {
            Some(Ok(Frame::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
            None => return Ok(None),
            // The relay may drop the socket with bytes from us still unread, which resets the
            // connection: closed all the same.
            Some(Err(tungstenite::Error::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(None);
            }
            Some(Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ))) => return Ok(None),
            Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
            Some(Ok(Frame::Binary(_))) if skip_binary => {}
            other => bail!("expected the relay to close the connection, got {other:?}"),
        }
    }
}

/// Enrols a native device with an invite `code` through the relay's API, as the app does: its
/// key from `seed`, its actor `device/<name>` (what [`Device::new`] uses). The status and body.
pub(crate) async fn enrol(
    addr: SocketAddr,
    code: &str,
    name: &str,
    key: &ed25519_dalek::SigningKey,
) -> anyhow::Result<(u16, String)> {
    let actor = ActorId::from(format!("device/{name}").as_bytes());
    let body = serde_json::json!({
        "code": code,
        "public_key": hex::encode(key.verifying_key().to_bytes()),
        "actor": hex::encode(actor.to_bytes()),
        "label": name,
    });
    http_request(addr, "POST", "/api/v1/enrol", None, Some(&body)).await
}

/// Signs a fresh challenge with `key`: the status and body of `POST /api/v1/session`.
pub(crate) async fn sign_in(
    addr: SocketAddr,
    device: chibo_shared::ids::DeviceId,
    key: &ed25519_dalek::SigningKey,
) -> anyhow::Result<(u16, String)> {
    use ed25519_dalek::Signer as _;
    let body = serde_json::json!({ "device": device.to_string() });
    let (status, text) = http_request(addr, "POST", "/api/v1/session/challenge", None, Some(&body)).await?;
    ensure!(status == 200, "challenge: {status} {text}");
    let nonce: [u8; 32] = hex::decode(json_field(&text, "nonce")?)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a nonce of another length"))?;
    let signature = key.sign(&chibo_shared::access::session_payload(&device, &nonce));
    let body = serde_json::json!({
        "device": device.to_string(),
        "nonce": hex::encode(nonce),
        "signature": hex::encode(signature.to_bytes()),
    });
    http_request(addr, "POST", "/api/v1/session", None, Some(&body)).await
}

/// A string field of a JSON answer.
pub(crate) fn json_field(json_text: &str, name: &str) -> anyhow::Result<String> {
    let v: serde_json::Value =
        serde_json::from_str(json_text).with_context(|| format!("not JSON: {json_text}"))?;
    v.get(name)
        .and_then(|f| f.as_str())
        .map(str::to_owned)
        .with_context(|| format!("no {name} in {json_text}"))
}

/// A native device enrolled with `code` and signed in: the device and its `/sync` URL.
pub(crate) async fn enrolled_device(
    addr: SocketAddr,
    code: &str,
    name: &str,
    seed: u8,
) -> anyhow::Result<(Device, String)> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let (status, text) = enrol(addr, code, name, &key).await?;
    ensure!(status == 201, "enrol {name}: {status} {text}");
    let device = json_field(&text, "device")?.parse()?;
    let (status, text) = sign_in(addr, device, &key).await?;
    ensure!(status == 200, "sign in {name}: {status} {text}");
    let token = json_field(&text, "token")?;
    Ok((Device::new(name)?, format!("{}?token={token}", sync_url(addr))))
}
