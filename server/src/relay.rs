//! The sync relay: runs the shared sans-IO [`Engine`] on tokio, wiring its effects to WebSocket
//! connections and the [`Store`].
//!
//! One task owns the engine and handles every event in order; loads run concurrently on the
//! store's reader pool; writes run one at a time, in the order the engine asked for them, on a
//! writer task. A write is reported back to the engine only once the store says it is durable,
//! and the engine sends nothing about a document while its changes are not (see
//! `chibo_shared::sync`).
//!
//! Several relays may share one database ([`crate::store::postgres`]): [`Relay::follow`] feeds
//! the store's notifications in, and each document another relay wrote is reloaded (if this relay
//! holds it) and handed to the engine as `Input::StorageChanged`, which syncs it to the peers here.
//!
//! **Architecture Invariant:** this module holds no document logic; everything about the
//! protocol is in `chibo_shared::sync`. It only moves bytes and results.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, close_code};
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::sync::{
    Access, CloseReason, ConnId, Direction, Effect, Engine, EngineConfig, IncomingChange, Input, Role,
    WriteScope,
};
use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};

use chibo_shared::access;
use chibo_shared::ids::{DeviceId, MemberId};
use chibo_shared::schema::{DocPath, genesis_kind};

use crate::engine_io::StoreIo;
use crate::metrics::{Metrics, RefusedReason};
use crate::roster::DevicePrincipal;
pub use crate::roster::Kick;
use crate::store::StoreError;
use crate::store::roster::RosterStore;
use crate::store::{Store, StoreEvent};
use chibo_shared::storage::Chunk;
use chibo_shared::wire::Message;

/// The WebSocket read buffer of each `/sync` connection. tungstenite's default, 128 KiB, is
/// zero-filled on the first read, so every idle connection cost 135 KiB of resident memory
/// (`chibo-bench idle-conns`); sync frames are mostly under 1 KiB, and a larger frame grows the
/// buffer for as long as it takes to read it.
pub const WS_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Frames queued for one connection before it counts as too slow and is closed.
const OUTBOX_FRAMES: usize = 4096;
/// How often handshake timeouts are checked.
const TICK: Duration = Duration::from_secs(1);
/// How long after a failed reload (of a document another relay wrote) it is tried again.
const RELOAD_RETRY: Duration = Duration::from_secs(1);

/// Who is on the other end of a connection, as the transport authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An enrolled device, authenticated by a session token.
    Device(Arc<DevicePrincipal>),
    /// Development and sync-only tests (`--open-access`): anyone who can reach the socket reads
    /// and writes every document. Never the default.
    Dev,
}

impl Principal {
    fn device(&self) -> Option<&DevicePrincipal> {
        match self {
            Principal::Device(d) => Some(d),
            Principal::Dev => None,
        }
    }
}

/// Which document is which: document ids are hashes of canonical paths, so the relay keeps the
/// paths it has been told (in the roster's `doc_index` table, mirrored here for the engine's
/// synchronous checks). A document missing here is readable and writable by nobody but `Dev`.
///
/// Several relays on one database each hold their own copy: a document named through another
/// relay is learnt here when a device first mentions it ([`DocIndex::learn`], before the frame
/// reaches the engine), and kept.
#[derive(Debug)]
pub struct DocIndex {
    paths: std::sync::RwLock<HashMap<DocumentId, DocPath>>,
    /// Documents looked up and not found, and when: not looked up again for [`MISS_TTL`], so a
    /// device repeating frames about unknown documents costs one query per document per TTL,
    /// not one per frame. Bounded: cleared when it reaches [`MAX_MISSES`].
    misses: std::sync::Mutex<HashMap<DocumentId, Instant>>,
    /// Lookups in the database at once: they share the store's connection pool with document
    /// loads and writes, which must not wait behind them.
    lookups: tokio::sync::Semaphore,
}

impl Default for DocIndex {
    fn default() -> Self {
        Self {
            paths: std::sync::RwLock::default(),
            misses: std::sync::Mutex::default(),
            lookups: tokio::sync::Semaphore::new(MAX_LOOKUPS_AT_ONCE),
        }
    }
}

/// How long a document not found in the database is taken as unknown without asking again.
/// Devices name their documents before they connect, so a miss is a device ahead of its own
/// naming (it retries) or a device asking about documents that do not exist.
const MISS_TTL: Duration = Duration::from_secs(10);
/// At most this many misses are remembered (a few hundred KiB).
const MAX_MISSES: usize = 10_000;
/// Database lookups of unknown documents running at once, across all connections.
const MAX_LOOKUPS_AT_ONCE: usize = 2;

/// At most this many unknown documents of one frame are looked up (a heads summary may list
/// thousands); the rest stay unknown, and are refused, for that frame.
const MAX_LOOKUPS_PER_FRAME: usize = 1000;

impl DocIndex {
    /// Loads the whole index (one small row per document) from the roster.
    pub async fn load(db: &dyn RosterStore) -> Result<Self, StoreError> {
        let index = Self::default();
        index.insert_rows(db.document_index().await?);
        Ok(index)
    }

    pub fn path(&self, doc: &DocumentId) -> Option<DocPath> {
        self.paths.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(doc).copied()
    }

    /// Records `paths` durably, then here.
    pub async fn register(&self, db: &dyn RosterStore, paths: &[DocPath]) -> Result<(), StoreError> {
        let rows = paths.iter().map(|p| (p.document_id(), p.to_canonical_string(), p.branch())).collect();
        db.index_documents(rows).await?;
        let mut map = self.paths.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for p in paths {
            map.insert(p.document_id(), *p);
        }
        Ok(())
    }

    /// Looks those of `docs` that are unknown here up in the roster (another relay on the same
    /// database may have named them) and keeps what it finds. A document still unknown afterwards
    /// is not asked about again for [`MISS_TTL`] (it may be named later).
    pub async fn learn(&self, db: &dyn RosterStore, docs: &[DocumentId]) -> Result<(), StoreError> {
        let now = Instant::now();
        let missing: Vec<DocumentId> = {
            let map = self.paths.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let misses = self.misses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let recently_missed =
                |d: &DocumentId| misses.get(d).is_some_and(|t| now.duration_since(*t) < MISS_TTL);
            docs.iter()
                .filter(|d| !map.contains_key(d) && !recently_missed(d))
                .take(MAX_LOOKUPS_PER_FRAME)
                .copied()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let _turn = self
            .lookups
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable { detail: "document lookups closed".into() })?;
        let found = db.document_paths(missing.clone()).await?;
        let found_ids: std::collections::HashSet<DocumentId> = found.iter().map(|(d, _)| *d).collect();
        self.insert_rows(found);
        let mut misses = self.misses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if misses.len() + missing.len() > MAX_MISSES {
            misses.clear();
        }
        misses.extend(missing.into_iter().filter(|d| !found_ids.contains(d)).map(|d| (d, now)));
        Ok(())
    }

    fn insert_rows(&self, rows: Vec<(DocumentId, String)>) {
        let mut map = self.paths.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (doc, path) in rows {
            match path.parse::<DocPath>() {
                Ok(p) if p.document_id() == doc => {
                    map.insert(doc, p);
                }
                _ => tracing::error!(%doc, path, "document index row does not match its id; ignored"),
            }
        }
    }
}

/// The relay's access policy: the roster's subject of each device against
/// [`chibo_shared::access`], for documents named in the [`DocIndex`]; every change must carry
/// the actor bound to the connection's own device (a byte-identical genesis change of the
/// document's kind aside).
#[derive(Debug, Clone)]
pub struct RelayAccess {
    index: Arc<DocIndex>,
    /// Where documents unknown to `index` are looked up (see [`DocIndex::learn`]).
    roster: Option<Arc<dyn RosterStore>>,
}

impl RelayAccess {
    /// Documents named in `index` only (tests, and relays without a roster).
    pub fn new(index: Arc<DocIndex>) -> Self {
        Self { index, roster: None }
    }

    /// Documents named in `index`, or else in `roster`'s document index (kept in `index` once
    /// found): for relays sharing one database, where another relay may have named them.
    pub fn with_roster(index: Arc<DocIndex>, roster: Arc<dyn RosterStore>) -> Self {
        Self { index, roster: Some(roster) }
    }

    /// Makes sure the documents a device's frame is about are in the index if the roster knows
    /// them, before the engine checks the frame against it. Dev connections need no index.
    async fn learn_documents_of(&self, principal: &Principal, frame: &[u8]) {
        let (Some(roster), Principal::Device(d)) = (&self.roster, principal) else { return };
        // A frame that does not decode is the engine's to refuse.
        let docs = match Message::decode(frame) {
            Ok(Message::HeadsSummary { documents, .. }) => {
                documents.into_iter().map(|(doc, _)| doc).collect()
            }
            Ok(m) => m.document().into_iter().collect::<Vec<_>>(),
            Err(_) => return,
        };
        if let Err(e) = self.index.learn(roster.as_ref(), &docs).await {
            tracing::warn!(device = %d.device, error = %e, "cannot look documents up in the index; refusing them");
        }
    }
}

impl Access for RelayAccess {
    type Principal = Principal;

    fn may_read(&self, who: &Principal, doc: &DocumentId) -> bool {
        match who {
            Principal::Dev => true,
            Principal::Device(d) => self.index.path(doc).is_some_and(|p| access::may_read(&d.subject, &p)),
        }
    }

    fn write_scope(&self, who: &Principal, doc: &DocumentId) -> WriteScope {
        let Some(d) = who.device() else { return WriteScope::Checked };
        match self.index.path(doc) {
            None => WriteScope::Nothing,
            Some(path) if access::may_write(&d.subject, &path) => WriteScope::Checked,
            Some(_) => WriteScope::GenesisOnly,
        }
    }

    fn may_write(&self, who: &Principal, doc: &DocumentId, changes: &[IncomingChange]) -> Result<(), String> {
        let Some(d) = who.device() else { return Ok(()) };
        let path =
            self.index.path(doc).ok_or_else(|| format!("device {} wrote unindexed {doc}", d.device))?;
        let allowed = access::may_write(&d.subject, &path);
        for change in changes {
            if genesis_kind(&change.hash) == Some(path.kind()) {
                continue; // the same bytes every device makes; authored by no one
            }
            if change.actor.to_bytes() != d.actor.as_slice() {
                return Err(format!(
                    "device {} (member {}) sent change {} by actor {} to {doc}: not its own actor",
                    d.device, d.subject.member, change.hash, change.actor
                ));
            }
            if !allowed {
                return Err(format!(
                    "device {} (member {}, {}) may not write {doc} ({})",
                    d.device,
                    d.subject.member,
                    d.subject.role,
                    path.kind()
                ));
            }
        }
        Ok(())
    }
}

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub peer_id: PeerId,
    pub max_message_bytes: usize,
}

impl RelayOptions {
    pub fn new(max_message_bytes: usize) -> Self {
        let peer_id = PeerId::new("chibo-relay").unwrap_or_else(|_| unreachable!("a valid literal peer id"));
        Self { peer_id, max_message_bytes }
    }
}

/// What the engine task is told.
enum Cmd {
    Connected {
        conn: ConnId,
        principal: Principal,
        outbox: Outbox,
    },
    Input(Input<Principal>),
    /// Close every connection of these devices or members (revoked, role changed).
    Kick(Kick),
    /// Another relay on the same database wrote something.
    Store(StoreEvent),
    /// A reload asked for by [`Cmd::Store`] finished.
    Reloaded {
        doc: DocumentId,
        chunks: Result<Vec<Chunk>, StoreError>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// The engine task's way to one connection's writer.
struct Outbox {
    frames: mpsc::Sender<Out>,
    /// Cuts the connection off when `frames` is full: the writer is then stuck on a socket the
    /// peer does not read, so a close queued behind it would never be sent.
    writer: AbortHandle,
}

/// What a connection's writer is told.
enum Out {
    Frame(Vec<u8>),
    Close(CloseReason),
    /// Closed by the socket reader (text frame, oversized frame).
    CloseWith(u16, &'static str),
}

/// A running relay. Cheap to share behind an `Arc`.
pub struct Relay {
    cmds: mpsc::UnboundedSender<Cmd>,
    access: RelayAccess,
    next_conn: AtomicU64,
    metrics: Arc<Metrics>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Relay {
    /// Starts the engine and writer tasks. Stored documents are loaded only when asked for.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        options: RelayOptions,
        access: RelayAccess,
    ) -> Arc<Self> {
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let mut config = EngineConfig::new(Role::Relay, options.peer_id);
        config.max_message_bytes = options.max_message_bytes;
        let engine = Engine::new(config, access.clone());
        let report = cmds.clone();
        let (io, writer) = StoreIo::start(store.clone(), move |input| {
            let _ = report.send(Cmd::Input(input));
        });
        let runner = Runner {
            engine,
            io,
            metrics: metrics.clone(),
            cmds: cmds.clone(),
            conns: HashMap::new(),
            owners: HashMap::new(),
            started: Instant::now(),
            store,
            reloads: HashMap::new(),
            kicks: std::collections::VecDeque::new(),
        };
        let engine_task = tokio::spawn(runner.run(cmd_rx));
        let ticker = {
            let cmds = cmds.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(TICK);
                loop {
                    every.tick().await;
                    if cmds.send(Cmd::Input(Input::Tick)).is_err() {
                        break;
                    }
                }
            })
        };
        Arc::new(Self {
            cmds,
            access,
            next_conn: AtomicU64::new(1),
            metrics,
            tasks: std::sync::Mutex::new(vec![engine_task, writer, ticker]),
        })
    }

    /// Closes the live connections of a revoked device (or of a member whose role changed) at
    /// once; a reconnect is authenticated afresh. Local to this relay: relays sharing a
    /// PostgreSQL database hear of each other's roster changes through [`Relay::follow`]
    /// ([`StoreEvent::RosterChanged`]).
    pub fn kick(&self, whom: Kick) {
        let _ = self.cmds.send(Cmd::Kick(whom));
    }

    /// Follows what other relays write to a shared store (see [`StoreEvent`]) until the relay
    /// shuts down.
    pub fn follow(&self, mut events: mpsc::UnboundedReceiver<StoreEvent>) {
        let cmds = self.cmds.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = events.recv() => {
                        let Some(event) = event else { break };
                        if cmds.send(Cmd::Store(event)).is_err() {
                            break;
                        }
                    }
                    // The engine task has stopped: nothing to follow for.
                    () = cmds.closed() => break,
                }
            }
        });
        match self.tasks.lock() {
            Ok(mut t) => t.push(task),
            Err(poisoned) => poisoned.into_inner().push(task),
        }
    }

    /// Closes every connection, finishes the writes already asked for, and stops.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        let tasks = match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    /// Runs one `/sync` connection until either side closes it.
    #[tracing::instrument(name = "sync", skip_all, fields(conn))]
    pub async fn handle_socket(&self, socket: WebSocket, principal: Principal) {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        tracing::Span::current().record("conn", conn.0);
        let _open = self.metrics.connection_opened();
        let (outbox, mut outbox_rx) = mpsc::channel(OUTBOX_FRAMES);
        let reader_outbox = outbox.clone();
        let (mut sink, mut stream) = socket.split();
        let metrics = self.metrics.clone();
        let mut writer = tokio::spawn(async move {
            while let Some(out) = outbox_rx.recv().await {
                let msg = match out {
                    Out::Frame(bytes) => {
                        metrics.message_out(bytes.len());
                        WsMessage::Binary(bytes.into())
                    }
                    Out::Close(reason) => {
                        let frame = CloseFrame {
                            code: close_code_for(&reason),
                            reason: short_reason(&reason).into(),
                        };
                        let _ = sink.send(WsMessage::Close(Some(frame))).await;
                        break;
                    }
                    Out::CloseWith(code, reason) => {
                        let _ = sink
                            .send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() })))
                            .await;
                        break;
                    }
                };
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let outbox = Outbox { frames: outbox, writer: writer.abort_handle() };
        if self.cmds.send(Cmd::Connected { conn, principal: principal.clone(), outbox }).is_err() {
            writer.abort();
            return; // shutting down
        }
        let mut writer_done = false;
        loop {
            let frame = tokio::select! {
                frame = stream.next() => frame,
                ended = &mut writer, if !writer_done => {
                    writer_done = true;
                    // Aborted by the engine task: stop reading too, so the socket closes and the
                    // peer notices (and reconnects) instead of being left open and ignored.
                    if ended.is_err_and(|e| e.is_cancelled()) {
                        break;
                    }
                    continue;
                }
            };
            let Some(frame) = frame else { break };
            match frame {
                Ok(WsMessage::Binary(bytes)) => {
                    self.metrics.message_in(bytes.len());
                    // Awaited here, on this connection's task: its frames stay in order, and the
                    // engine task never waits for the database.
                    self.access.learn_documents_of(&principal, &bytes).await;
                    let input = Input::Frame { conn, bytes: bytes.to_vec() };
                    if self.cmds.send(Cmd::Input(input)).is_err() {
                        break;
                    }
                }
                Ok(WsMessage::Text(_)) => {
                    tracing::warn!("closing: text frame (the protocol is binary CBOR)");
                    self.metrics.frame_refused(RefusedReason::Text);
                    self.close_from_reader(
                        conn,
                        &reader_outbox,
                        close_code::UNSUPPORTED,
                        "binary frames only",
                    );
                    break;
                }
                Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => {}
                Ok(WsMessage::Close(_)) => break,
                Err(e) => {
                    // tungstenite refuses frames over the configured size before we see them.
                    let oversized = e.to_string().contains("too long") || e.to_string().contains("too big");
                    if oversized {
                        tracing::warn!(error = %e, "closing: oversized frame");
                        self.metrics.frame_refused(RefusedReason::TooLarge);
                        self.close_from_reader(conn, &reader_outbox, close_code::SIZE, "message too big");
                    } else {
                        tracing::debug!(error = %e, "socket error");
                    }
                    break;
                }
            }
        }
        let _ = self.cmds.send(Cmd::Input(Input::Disconnected { conn }));
        // The writer ends once the engine task drops its sender too.
        drop(reader_outbox);
        if !writer_done {
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        }
    }

    /// Closes a connection for a reason found by the socket reader rather than the engine.
    fn close_from_reader(&self, conn: ConnId, outbox: &mpsc::Sender<Out>, code: u16, reason: &'static str) {
        let _ = self.cmds.send(Cmd::Input(Input::Disconnected { conn }));
        let _ = outbox.try_send(Out::CloseWith(code, reason));
    }
}

fn close_code_for(reason: &CloseReason) -> u16 {
    match reason {
        CloseReason::Oversized { .. } => close_code::SIZE,
        CloseReason::Refused { .. } => close_code::POLICY,
        CloseReason::StorageFailure(_) => close_code::AGAIN,
        CloseReason::Left => close_code::NORMAL,
        _ => close_code::PROTOCOL,
    }
}

/// What the peer is told: a category, never the details we log.
fn short_reason(reason: &CloseReason) -> &'static str {
    match reason {
        CloseReason::Malformed(_) => "malformed frame",
        CloseReason::Oversized { .. } => "message too big",
        CloseReason::NotJoined(_) | CloseReason::RepeatedHandshake => "handshake required",
        CloseReason::UnsupportedVersion(_) => "unsupported protocol version",
        CloseReason::SenderMismatch { .. } | CloseReason::WrongTarget(_) => "bad peer id",
        CloseReason::BadSyncMessage { .. } => "bad sync message",
        CloseReason::Refused { .. } => "refused",
        CloseReason::PeerError(_) | CloseReason::Left => "bye",
        CloseReason::HandshakeTimeout(_) => "handshake timeout",
        CloseReason::StorageFailure(_) => "storage failure, retry",
    }
}

fn refused_reason(reason: &CloseReason) -> Option<RefusedReason> {
    match reason {
        CloseReason::Malformed(_) | CloseReason::BadSyncMessage { .. } => Some(RefusedReason::Malformed),
        CloseReason::Oversized { .. } => Some(RefusedReason::TooLarge),
        CloseReason::NotJoined(_)
        | CloseReason::RepeatedHandshake
        | CloseReason::UnsupportedVersion(_)
        | CloseReason::SenderMismatch { .. }
        | CloseReason::WrongTarget(_)
        | CloseReason::HandshakeTimeout(_) => Some(RefusedReason::Protocol),
        CloseReason::Refused { .. } => Some(RefusedReason::Forbidden),
        CloseReason::PeerError(_) | CloseReason::Left | CloseReason::StorageFailure(_) => None,
    }
}

/// The engine task's state.
struct Runner {
    engine: Engine<RelayAccess>,
    io: StoreIo<Principal>,
    metrics: Arc<Metrics>,
    cmds: mpsc::UnboundedSender<Cmd>,
    conns: HashMap<ConnId, Outbox>,
    /// The device and member behind each authenticated connection.
    owners: HashMap<ConnId, (DeviceId, MemberId)>,
    started: Instant,
    store: Arc<dyn Store>,
    /// Reloads in flight (documents another relay wrote); `true`: another notification came
    /// meanwhile, so reload once more when this one lands (it may have read before that commit).
    reloads: HashMap<DocumentId, bool>,
    /// Roster changes heard in the last [`KICK_MEMORY`] (`None`: all devices, after a `Resync`).
    /// A device authenticated before one of them whose connection reaches the engine after it
    /// (authentication and the upgrade run before `Cmd::Connected`) is closed at once.
    kicks: std::collections::VecDeque<(Instant, Option<Kick>)>,
}

/// How long roster changes are remembered for connections still on their way to the engine; a
/// principal checked longer ago than this is not let in (it re-authenticates).
const KICK_MEMORY: Duration = Duration::from_secs(60);

/// Whether the roster changed for `d` after its rights were read (`kicks` as in `Runner`).
fn rights_stale(kicks: &std::collections::VecDeque<(Instant, Option<Kick>)>, d: &DevicePrincipal) -> bool {
    d.checked_at.elapsed() > KICK_MEMORY
        || kicks.iter().any(|(t, whom)| {
            *t >= d.checked_at
                && match whom {
                    None => true,
                    Some(Kick::Device(x)) => *x == d.device,
                    Some(Kick::Member(x)) => *x == d.subject.member,
                }
        })
}

impl Runner {
    fn remember_kick(&mut self, whom: Option<Kick>) {
        let now = Instant::now();
        while self.kicks.front().is_some_and(|(t, _)| now.duration_since(*t) > KICK_MEMORY) {
            self.kicks.pop_front();
        }
        self.kicks.push_back((now, whom));
    }

    fn stale(&self, d: &DevicePrincipal) -> bool {
        rights_stale(&self.kicks, d)
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Cmd::Connected { conn, principal, outbox } => {
                    self.conns.insert(conn, outbox);
                    let mut stale = false;
                    if let Some(d) = principal.device() {
                        tracing::info!(%conn, device = %d.device, member = %d.subject.member, "device connected");
                        self.owners.insert(conn, (d.device, d.subject.member));
                        stale = self.stale(d);
                    }
                    let input = Input::Connected { conn, direction: Direction::Inbound, principal };
                    self.handle(input);
                    if stale {
                        self.close_owned(|_, _| true, Some(conn));
                    }
                }
                Cmd::Input(input) => {
                    if let Input::Disconnected { conn } = &input {
                        self.conns.remove(conn);
                        self.owners.remove(conn);
                    }
                    self.handle(input);
                }
                Cmd::Kick(whom) | Cmd::Store(StoreEvent::RosterChanged(whom)) => {
                    self.remember_kick(Some(whom));
                    self.close_owned(
                        |device, member| match whom {
                            Kick::Device(x) => device == x,
                            Kick::Member(x) => member == x,
                        },
                        None,
                    );
                }
                Cmd::Store(StoreEvent::Changed(doc)) => self.reload(doc),
                Cmd::Store(StoreEvent::Resync) => {
                    // A roster change another relay made meanwhile went unheard too: every device
                    // connects again and is authenticated afresh.
                    if !self.owners.is_empty() {
                        tracing::info!(
                            connections = self.owners.len(),
                            "roster notifications may have been missed; closing device connections"
                        );
                    }
                    self.remember_kick(None);
                    self.close_owned(|_, _| true, None);
                    let docs = self.engine.documents();
                    if !docs.is_empty() {
                        tracing::info!(
                            documents = docs.len(),
                            "store notifications may have been missed; reloading"
                        );
                    }
                    for doc in docs {
                        self.reload(doc);
                    }
                }
                Cmd::Reloaded { doc, chunks } => {
                    let again = self.reloads.remove(&doc).unwrap_or(false);
                    match chunks {
                        Ok(chunks) => self.handle(Input::StorageChanged { doc, chunks }),
                        Err(e) => {
                            tracing::error!(%doc, error = %e, "reloading a document another relay wrote failed; retrying");
                            let cmds = self.cmds.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(RELOAD_RETRY).await;
                                let _ = cmds.send(Cmd::Store(StoreEvent::Changed(doc)));
                            });
                        }
                    }
                    if again {
                        self.reload(doc);
                    }
                }
                Cmd::Shutdown(done) => {
                    for (_, outbox) in self.conns.drain() {
                        if outbox.frames.try_send(Out::Close(CloseReason::Left)).is_err() {
                            outbox.writer.abort();
                        }
                    }
                    // Dropping `self` closes the write queue; the writer finishes what is queued.
                    drop(self);
                    let _ = done.send(());
                    return;
                }
            }
        }
    }

    /// Closes the authenticated connections whose device and member `hit` picks (only `only`,
    /// if given).
    fn close_owned(&mut self, hit: impl Fn(DeviceId, MemberId) -> bool, only: Option<ConnId>) {
        let conns: Vec<ConnId> = self
            .owners
            .iter()
            .filter(|(c, (d, m))| only.is_none_or(|o| o == **c) && hit(*d, *m))
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            let whom = self.owners.remove(&conn);
            tracing::warn!(%conn, ?whom, "closing: access changed");
            if let Some(outbox) = self.conns.remove(&conn)
                && outbox.frames.try_send(Out::CloseWith(close_code::POLICY, "access changed")).is_err()
            {
                outbox.writer.abort();
            }
            self.handle(Input::Disconnected { conn });
        }
    }

    /// Reads every chunk of `doc` (if the engine holds it) for `Input::StorageChanged`; at most
    /// one read per document at a time.
    fn reload(&mut self, doc: DocumentId) {
        if !self.engine.has_document(&doc) {
            return; // whoever asks for it next loads it from the store, changes included
        }
        if let Some(again) = self.reloads.get_mut(&doc) {
            *again = true;
            return;
        }
        self.reloads.insert(doc, false);
        let (store, cmds) = (self.store.clone(), self.cmds.clone());
        tokio::spawn(async move {
            let chunks = store.load(doc).await;
            let _ = cmds.send(Cmd::Reloaded { doc, chunks });
        });
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn handle(&mut self, input: Input<Principal>) {
        let effects = self.engine.handle(self.now(), input);
        self.apply(effects);
        self.metrics.set_documents_in_memory(self.engine.documents_in_memory());
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { conn, bytes } => {
                    let Some(outbox) = self.conns.get(&conn) else { continue };
                    if outbox.frames.try_send(Out::Frame(bytes)).is_err() {
                        // A peer that does not read its frames is cut off rather than let the
                        // relay's memory grow; it resyncs when it reconnects.
                        tracing::warn!(%conn, "closing: peer too slow to read");
                        if let Some(outbox) = self.conns.remove(&conn) {
                            outbox.writer.abort();
                        }
                        let _ = self.cmds.send(Cmd::Input(Input::Disconnected { conn }));
                    }
                }
                Effect::Close { conn, reason } => {
                    tracing::warn!(%conn, %reason, "closing connection");
                    if let Some(r) = refused_reason(&reason) {
                        self.metrics.frame_refused(r);
                    }
                    if let Some(outbox) = self.conns.remove(&conn) {
                        let _ = outbox.frames.try_send(Out::Close(reason));
                    }
                }
                io @ (Effect::Load { .. } | Effect::Write { .. }) => {
                    let _ = self.io.carry_out(io);
                }
                Effect::PeerReady { conn, peer } => tracing::info!(%conn, %peer, "peer joined"),
                Effect::StorageFailed { doc, error } => tracing::error!(%doc, %error, "storage failed"),
                Effect::CorruptChunks { doc, keys } => {
                    tracing::error!(%doc, ?keys, "stored chunks do not load; left in place");
                }
                Effect::DocReady { .. }
                | Effect::DocChanged { .. }
                | Effect::Persisted { .. }
                | Effect::DocUnavailable { .. }
                | Effect::Ephemeral { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chibo_shared::access::{Role, Subject};
    use chibo_shared::ids::BranchId;

    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn profile(n: u8) -> DocPath {
        DocPath::BranchProfile { branch: BranchId::from_bytes([n; 16]) }
    }

    fn row(p: DocPath) -> (DocumentId, String, BranchId) {
        (p.document_id(), p.to_canonical_string(), p.branch())
    }

    #[tokio::test]
    async fn documents_named_through_another_relay_are_learnt_and_misses_are_not_asked_again_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("chibo.sqlite3")).expect("open");
        let db = store.shared_roster();
        let index = DocIndex::default();
        let (named, unknown) = (profile(1), profile(2));
        // Another relay on the same database names `named`.
        db.index_documents(vec![row(named)]).await.expect("index");
        index.learn(db.as_ref(), &[named.document_id(), unknown.document_id()]).await.expect("learn");
        assert_eq!(index.path(&named.document_id()), Some(named));
        assert_eq!(index.path(&unknown.document_id()), None);

        // `unknown` is named now, but it was just looked up and missed: a device repeating frames
        // about it does not cost a query each (for `MISS_TTL`).
        db.index_documents(vec![row(unknown)]).await.expect("index");
        index.learn(db.as_ref(), &[unknown.document_id()]).await.expect("learn");
        assert_eq!(index.path(&unknown.document_id()), None, "looked up again within the miss TTL");

        // Naming through this relay is known at once, miss or not.
        index.register(db.as_ref(), &[unknown]).await.expect("register");
        assert_eq!(index.path(&unknown.document_id()), Some(unknown));
    }

    #[test]
    fn rights_read_before_a_roster_change_about_them_are_stale() {
        let member = MemberId::from_bytes([1; 16]);
        let device = DeviceId::from_bytes([2; 16]);
        let before = Instant::now();
        let d = DevicePrincipal {
            device,
            actor: vec![2],
            subject: Subject::in_branch(member, Role::Member, BranchId::from_bytes([3; 16])),
            checked_at: before,
        };
        let later = before + Duration::from_millis(1);
        let earlier = before.checked_sub(Duration::from_millis(1)).expect("an instant before");
        let kicks = |list: Vec<(Instant, Option<Kick>)>| list.into_iter().collect();
        assert!(!rights_stale(&kicks(vec![]), &d));
        assert!(rights_stale(&kicks(vec![(later, Some(Kick::Device(device)))]), &d));
        assert!(rights_stale(&kicks(vec![(later, Some(Kick::Member(member)))]), &d));
        assert!(rights_stale(&kicks(vec![(later, None)]), &d), "a resync covers everyone");
        let other = Kick::Device(DeviceId::from_bytes([9; 16]));
        assert!(!rights_stale(&kicks(vec![(later, Some(other))]), &d), "someone else's change");
        assert!(!rights_stale(&kicks(vec![(earlier, Some(Kick::Device(device)))]), &d), "read after it");
        if let Some(long_ago) = before.checked_sub(KICK_MEMORY + Duration::from_secs(1)) {
            let old = DevicePrincipal { checked_at: long_ago, ..d.clone() };
            assert!(rights_stale(&kicks(vec![]), &old), "older than the memory of changes");
        }
    }
}
