//! A native client on the shared engine: a file-backed store and a WebSocket to the relay
//! (tokio-tungstenite). Used by the integration tests and the load generator.
//!
//! One task owns the engine; the [`Client`] handle sends it closures and waits on a version
//! counter that moves after every event, so a test waits for a condition, never for a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use automerge::{Automerge, ChangeHash};
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::sync::{ConnId, Direction, Effect, Engine, EngineConfig, Input, OpenAccess, Role};
use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::engine_io::StoreIo;
use crate::store::Store;

/// What can go wrong for a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {url}: {source}")]
    Connect { url: String, source: tokio_tungstenite::tungstenite::Error },
    #[error("the relay closed the connection before the handshake finished")]
    HandshakeFailed,
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    #[error("document {0} is not open")]
    NotOpen(DocumentId),
    #[error("the client has stopped")]
    Stopped,
}

/// Frames and bytes this client put on and took off the wire.
#[derive(Debug, Default)]
pub struct WireStats {
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
}

impl WireStats {
    /// (frames out, bytes out, frames in, bytes in)
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (get(&self.frames_out), get(&self.bytes_out), get(&self.frames_in), get(&self.bytes_in))
    }
}

/// The engine's side of the client.
pub struct Inner {
    engine: Engine<OpenAccess>,
    io: StoreIo<()>,
    conns: HashMap<ConnId, mpsc::UnboundedSender<Message>>,
    /// The latest connection (a client talks to one relay at a time).
    current: Option<ConnId>,
    next_conn: u64,
    started: Instant,
    stats: Arc<WireStats>,
    /// Effects other than IO and frames, for tests to look at.
    pub events: Vec<Effect>,
    /// Commands the task has finished (the value the version channel carries).
    processed: u64,
}

type Job = Box<dyn FnOnce(&mut Inner) + Send>;

/// Messages to the client task.
pub enum Cmd {
    Input(Input<()>),
    Job(Job),
}

impl Inner {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn handle(&mut self, input: Input<()>) {
        if let Input::Disconnected { conn } = &input {
            self.conns.remove(conn);
        }
        let effects = self.engine.handle(self.now(), input);
        self.apply(effects);
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { conn, bytes } => {
                    if let Some(tx) = self.conns.get(&conn) {
                        self.stats.frames_out.fetch_add(1, Ordering::Relaxed);
                        self.stats.bytes_out.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        let _ = tx.send(Message::Binary(bytes.into()));
                    }
                }
                Effect::Close { conn, reason } => {
                    tracing::warn!(%conn, %reason, "client closing connection");
                    if let Some(tx) = self.conns.remove(&conn) {
                        let _ = tx.send(Message::Close(None));
                    }
                    self.events.push(Effect::Close { conn, reason });
                }
                io @ (Effect::Load { .. } | Effect::Write { .. }) => {
                    let _ = self.io.carry_out(io);
                }
                other => self.events.push(other),
            }
        }
    }

    /// The engine, to read documents and sync states.
    pub fn engine(&self) -> &Engine<OpenAccess> {
        &self.engine
    }

    /// The current connection, once its handshake is done.
    pub fn connection(&self) -> Option<ConnId> {
        self.current.filter(|c| self.engine.remote_peer(*c).is_some())
    }

    /// The heads the relay last told us it has for `doc` on the current connection.
    pub fn relay_heads(&self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        let conn = self.connection()?;
        self.engine.sync_state(conn, doc)?.their_heads.clone()
    }

    /// Our heads for `doc`, if open.
    pub fn heads(&self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        self.engine.doc(doc).map(Automerge::get_heads)
    }

    /// True when the relay has told us it holds exactly what we hold.
    pub fn in_sync(&self, doc: &DocumentId) -> bool {
        match (self.heads(doc), self.relay_heads(doc)) {
            (Some(mut ours), Some(mut theirs)) => {
                ours.sort();
                theirs.sort();
                ours == theirs
            }
            _ => false,
        }
    }
}

/// A handle to a running client.
#[derive(Clone)]
pub struct Client {
    cmds: mpsc::UnboundedSender<Cmd>,
    version: watch::Receiver<u64>,
    stats: Arc<WireStats>,
}

impl Client {
    /// Starts a client on `store` with its device actor.
    pub fn start(store: Arc<dyn Store>, peer_id: PeerId, actor: automerge::ActorId) -> Self {
        let (cmds, mut rx) = mpsc::unbounded_channel::<Cmd>();
        let report = cmds.clone();
        let (io, _writer) = StoreIo::start(store, move |input| {
            let _ = report.send(Cmd::Input(input));
        });
        let (version_tx, version) = watch::channel(0u64);
        let stats = Arc::new(WireStats::default());
        let mut config = EngineConfig::new(Role::Client, peer_id);
        config.actor = Some(actor);
        let mut inner = Inner {
            engine: Engine::new(config, OpenAccess),
            io,
            conns: HashMap::new(),
            current: None,
            next_conn: 0,
            started: Instant::now(),
            stats: stats.clone(),
            events: Vec::new(),
            processed: 0,
        };
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Cmd::Input(input) => inner.handle(input),
                    Cmd::Job(job) => job(&mut inner),
                }
                inner.processed += 1;
                version_tx.send_replace(inner.processed);
            }
        });
        Self { cmds, version, stats }
    }

    pub fn wire_stats(&self) -> &WireStats {
        &self.stats
    }

    /// Runs `f` on the client task and returns its result.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> R + Send + 'static,
    ) -> Result<R, ClientError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |inner| {
            let _ = tx.send(f(inner));
        });
        self.cmds.send(Cmd::Job(job)).map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)
    }

    /// Waits until `pred` holds, re-checking after every event.
    pub async fn wait_until(
        &self,
        what: &'static str,
        timeout: Duration,
        pred: impl Fn(&Inner) -> bool + Send + Sync + Clone + 'static,
    ) -> Result<(), ClientError> {
        let mut version = self.version.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let p = pred.clone();
            let (done, before) = self.with(move |inner| (p(inner), inner.processed)).await?;
            if done {
                return Ok(());
            }
            // Wake for anything after the check itself (the check is command `before + 1`): a
            // wake for the check's own job would make this loop spin without sleeping.
            match tokio::time::timeout_at(deadline, version.wait_for(|v| *v > before + 1)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(ClientError::Stopped),
                Err(_) => return Err(ClientError::Timeout(timeout, what)),
            }
        }
    }

    /// Dials the relay's `/sync` URL and waits for the handshake.
    pub async fn connect(&self, url: &str) -> Result<ConnId, ClientError> {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|source| ClientError::Connect { url: url.to_owned(), source })?;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let conn = self
            .with(move |inner| {
                let conn = ConnId(inner.next_conn);
                inner.next_conn += 1;
                inner.conns.insert(conn, out_tx);
                inner.current = Some(conn);
                inner.handle(Input::Connected { conn, direction: Direction::Outbound, principal: () });
                conn
            })
            .await?;
        tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                let close = matches!(msg, Message::Close(_));
                if sink.send(msg).await.is_err() || close {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (cmds, stats) = (self.cmds.clone(), self.stats.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Binary(bytes) => {
                        stats.frames_in.fetch_add(1, Ordering::Relaxed);
                        stats.bytes_in.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        let _ = cmds.send(Cmd::Input(Input::Frame { conn, bytes: bytes.to_vec() }));
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = cmds.send(Cmd::Input(Input::Disconnected { conn }));
        });
        let ready = self
            .wait_until("the handshake", Duration::from_secs(10), move |inner| {
                inner.engine.remote_peer(conn).is_some() || !inner.conns.contains_key(&conn)
            })
            .await;
        match ready {
            Ok(()) if self.with(move |inner| inner.engine.remote_peer(conn).is_some()).await? => Ok(conn),
            Ok(()) => Err(ClientError::HandshakeFailed),
            Err(e) => Err(e),
        }
    }

    /// Closes the current connection (the device goes offline).
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.with(|inner| {
            if let Some(conn) = inner.current.take() {
                if let Some(tx) = inner.conns.get(&conn) {
                    let _ = tx.send(Message::Close(None));
                }
                inner.handle(Input::Disconnected { conn });
            }
        })
        .await
    }

    /// Opens a document (loading it from the store) and waits until it is ready.
    pub async fn open(&self, doc: DocumentId, seed: Option<Vec<u8>>) -> Result<(), ClientError> {
        self.with(move |inner| inner.handle(Input::Open { doc, seed })).await?;
        self.wait_until("the document to load", Duration::from_secs(30), move |inner| {
            inner.engine.doc(&doc).is_some()
        })
        .await
    }

    /// Changes an open document; the change is stored, then synced.
    pub async fn change<R: Send + 'static>(
        &self,
        doc: DocumentId,
        f: impl FnOnce(&mut Automerge) -> R + Send + 'static,
    ) -> Result<R, ClientError> {
        self.with(move |inner| {
            let (r, effects) = inner.engine.change(doc, f).map_err(|_| ClientError::NotOpen(doc))?;
            inner.apply(effects);
            Ok(r)
        })
        .await?
    }

    /// Reads an open document.
    pub async fn read<R: Send + 'static>(
        &self,
        doc: DocumentId,
        f: impl FnOnce(&Automerge) -> R + Send + 'static,
    ) -> Result<R, ClientError> {
        self.with(move |inner| inner.engine.doc(&doc).map(f).ok_or(ClientError::NotOpen(doc))).await?
    }

    /// Waits until the relay has acknowledged exactly our state of `doc`.
    pub async fn wait_synced(&self, doc: DocumentId, timeout: Duration) -> Result<(), ClientError> {
        self.wait_until("the relay to acknowledge", timeout, move |inner| inner.in_sync(&doc)).await
    }
}
