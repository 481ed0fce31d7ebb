//! The only module that touches the WebSocket: it runs the shared sync engine in the page.
//!
//! One `Driver` per page owns the [`Engine`] and is its host, like `server::client` is natively:
//! it feeds in [`Input`]s (the socket opened or closed, a frame arrived, chunks loaded, a write
//! completed) one at a time, and carries out the [`Effect`]s: frames go to the socket (binary
//! only), loads go to [`crate::storage`], writes go to a [`WriteQueue`] that runs them one at a
//! time in order and reports each only after its transaction has completed. Document events bump
//! a per-document trigger that pages track. The socket reconnects with jittered exponential
//! backoff, and at once when the browser comes back online or the tab becomes visible.
//!
//! Pages see a [`SyncHandle`]: the reactive [`Connection`], the number of documents with changes
//! the relay has not acknowledged, the last time everything was in sync, and per document
//! `track`/`read`/`change`/`doc_sync`. Pages never see the socket or the engine.
//!
//! Single-threaded by design (wasm32): the driver is an `Rc` with `RefCell`s inside; no borrow is
//! held across an `await` or a call out of the driver.

mod local;
mod writes;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use automerge::{Automerge, ChangeHash};
use chibo_shared::ids::DocumentId;
use chibo_shared::sync::{
    ConnId, Direction, Effect, Engine, EngineConfig, EngineError, Input, OpenAccess, Role,
};
use leptos::logging::{error, warn};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, MessageEvent, WebSocket};

pub use local::DeviceIdentity;
pub use writes::{ChunkWriter, Write, WriteQueue};

use crate::storage::{IdbStore, StorageError};

/// The relay's sync endpoint on the host that served the page.
const SYNC_PATH: &str = "/sync";
/// Reconnect delays double from this ...
const RETRY_FIRST_MS: u32 = 1_000;
/// ... up to this.
const RETRY_MAX_MS: u32 = 30_000;
/// A socket whose handshake has not finished this long after opening is closed and retried.
const HANDSHAKE_TIMEOUT_MS: i32 = 15_000;

/// The wait before reconnect attempt `attempt` (0 is the first after losing the relay): 1 s, 2 s,
/// 4 s, ... capped at 30 s, each scaled by a factor in (0.5, 1] drawn from `random` in [0, 1), so
/// devices that lost the relay together do not all come back at the same moment.
pub fn reconnect_delay(attempt: u32, random: f64) -> u32 {
    let base = RETRY_FIRST_MS.saturating_mul(1 << attempt.min(15)).min(RETRY_MAX_MS);
    let factor = 1.0 - 0.5 * random.clamp(0.0, 1.0);
    // Exact: `base` is at most 30,000 and `factor` at most 1.
    (f64::from(base) * factor).round() as u32
}

/// Prepares a connection: resolves to the `/sync` query string, or why not now.
pub type Prepare =
    Rc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>>>>>;

/// Whether the page is talking to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// No socket, or one that is not open; a reconnect is scheduled.
    Offline,
    /// A socket is open or opening, the handshake has not finished.
    Connecting,
    /// The relay answered the handshake; documents sync.
    Online,
}

/// How one document stands on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSync {
    /// Opened and loaded in this page (readable and editable).
    pub loaded: bool,
    /// Every local change is on this device's disk (no write queued or in flight).
    pub saved: bool,
    /// The relay has acknowledged every change we hold (as of the last answer we heard).
    pub acknowledged: bool,
    /// The last storage failure, until a write succeeds again.
    pub storage_error: Option<String>,
}

/// A handle on the page's sync driver; `Copy`, for context and closures.
#[derive(Clone, Copy)]
pub struct SyncHandle {
    driver: StoredValue<Rc<Driver>, LocalStorage>,
}

impl SyncHandle {
    /// Starts syncing: opens local storage, opens `documents` (each with its genesis seed, so an
    /// offline first start still has the document's structure) and every document already stored
    /// on this device, and connects to the relay. Call once, inside the app's reactive owner.
    ///
    /// `identity` is the enrolled device's (its registered actor); `None` uses a random local
    /// stand-in, for a relay in open access. `prepare` runs before every connection attempt and
    /// returns the `/sync` query string (the session token); an error waits for the next attempt.
    pub fn start(
        identity: Option<DeviceIdentity>,
        documents: Vec<(DocumentId, Option<Vec<u8>>)>,
        prepare: Option<Prepare>,
    ) -> Self {
        let driver = Driver::new(identity.unwrap_or_else(local::device_identity));
        *driver.prepare.borrow_mut() = prepare;
        driver.listen_to_browser();
        // Opened from now on (pages asking `is_open` meanwhile need not open them again).
        for (doc, _) in &documents {
            driver.docs.borrow_mut().entry(*doc).or_insert_with(|| DocInfo::new(*doc)).opened = true;
        }
        let d = driver.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let disk = IdbStore::open().await;
            let stored = match &disk {
                Ok(store) => store.list_documents().await.unwrap_or_else(|e| {
                    error!("sync: listing stored documents failed: {e}");
                    Vec::new()
                }),
                Err(e) => {
                    error!("sync: local storage unavailable, working in memory: {e}");
                    Vec::new()
                }
            };
            d.attach_disk(disk);
            let seeded: Vec<DocumentId> = documents.iter().map(|(doc, _)| *doc).collect();
            let early = std::mem::take(&mut *d.early_opens.borrow_mut());
            for (doc, seed) in documents.into_iter().chain(early) {
                d.open(doc, seed);
            }
            for doc in stored.into_iter().filter(|doc| !seeded.contains(doc)) {
                d.open(doc, None);
            }
            d.connect();
        });
        Self { driver: StoredValue::new_local(driver) }
    }

    fn with<R>(&self, f: impl FnOnce(&Rc<Driver>) -> R) -> R {
        self.driver.with_value(f)
    }

    /// The connection to the relay (tracked).
    pub fn connection(&self) -> Connection {
        self.with(|d| d.status.connection.get())
    }

    /// Open documents with changes the relay has not acknowledged (tracked).
    pub fn unsynced(&self) -> usize {
        self.with(|d| d.status.unsynced.get())
    }

    /// When every open document was last acknowledged by the relay, ms since the epoch (tracked).
    pub fn last_sync(&self) -> Option<f64> {
        self.with(|d| d.status.last_sync.get())
    }

    /// Subscribes the current reactive scope to `doc`: it reruns when the document is loaded,
    /// changes remotely, is saved, or its sync state changes.
    pub fn track(&self, doc: DocumentId) {
        self.with(|d| d.trigger(doc)).track();
    }

    /// Reads `doc` if it is loaded (untracked; call [`track`](Self::track) to rerun on changes).
    pub fn read<R>(&self, doc: DocumentId, f: impl FnOnce(&Automerge) -> R) -> Option<R> {
        self.with(|d| d.engine.borrow().doc(&doc).map(f))
    }

    /// Changes `doc` locally; the change is written to this device, then synced.
    pub fn change<R>(&self, doc: DocumentId, f: impl FnOnce(&mut Automerge) -> R) -> Result<R, EngineError> {
        self.with(|d| d.change(doc, f))
    }

    /// How `doc` stands (untracked).
    pub fn doc_sync(&self, doc: DocumentId) -> DocSync {
        self.with(|d| d.doc_sync(doc))
    }

    /// Why the last connection attempt could not start (tracked), e.g. the device was revoked.
    pub fn last_error(&self) -> Option<String> {
        self.with(|d| d.status.last_error.get())
    }

    /// Opens another document (with its genesis seed) and syncs it from now on.
    pub fn open(&self, doc: DocumentId, seed: Option<Vec<u8>>) {
        self.with(|d| d.open(doc, seed));
    }

    /// Whether `doc` has been opened (and so syncs).
    pub fn is_open(&self, doc: DocumentId) -> bool {
        self.with(|d| d.docs.borrow().get(&doc).is_some_and(|i| i.opened))
    }

    /// Reconnects now instead of waiting for the backoff.
    pub fn reconnect_now(&self) {
        self.with(|d| d.connect_now());
    }
}

#[derive(Clone)]
struct Status {
    connection: ArcRwSignal<Connection>,
    last_error: ArcRwSignal<Option<String>>,
    unsynced: ArcRwSignal<usize>,
    last_sync: ArcRwSignal<Option<f64>>,
}

/// What the driver knows about a document besides the engine.
struct DocInfo {
    trigger: ArcTrigger,
    /// Opened through the engine (a document a page only tracked is not).
    opened: bool,
    writes_pending: usize,
    storage_error: Option<String>,
    /// The heads the relay last told us it has, kept across reloads.
    relay_heads: Option<Vec<ChangeHash>>,
    acknowledged: bool,
}

impl DocInfo {
    fn new(doc: DocumentId) -> Self {
        Self {
            trigger: ArcTrigger::new(),
            opened: false,
            writes_pending: 0,
            storage_error: None,
            relay_heads: local::relay_heads(doc),
            acknowledged: false,
        }
    }
}

type Disk = Rc<Result<IdbStore, StorageError>>;

/// The open socket (at most one: a page talks to one relay).
struct Socket {
    conn: ConnId,
    ws: WebSocket,
    /// The handshake finished.
    ready: bool,
    handshake_timer: Option<i32>,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut()>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        if self.ws.ready_state() <= WebSocket::OPEN {
            let _ = self.ws.close();
        }
        if let Some(timer) = self.handshake_timer {
            clear_timeout(timer);
        }
    }
}

struct Driver {
    me: Weak<Driver>,
    engine: RefCell<Engine<OpenAccess>>,
    disk: OnceCell<Disk>,
    writes: OnceCell<WriteQueue<Disk>>,
    /// Inputs waiting for the engine; drained by [`Driver::input`], one at a time.
    inputs: RefCell<VecDeque<Input<()>>>,
    pumping: Cell<bool>,
    socket: RefCell<Option<Socket>>,
    next_conn: Cell<u64>,
    /// Failed connection attempts since the relay last answered.
    attempt: Cell<u32>,
    retry_timer: Cell<Option<i32>>,
    docs: RefCell<HashMap<DocumentId, DocInfo>>,
    /// A frame arrived since the status was last refreshed.
    heard_relay: Cell<bool>,
    status: Status,
    listeners: RefCell<Vec<Closure<dyn FnMut()>>>,
    prepare: RefCell<Option<Prepare>>,
    /// A connection is being prepared (token, document names): no second attempt meanwhile.
    preparing: Cell<bool>,
    /// Documents asked for before local storage was open: opened once it is (a load before
    /// then would find no storage and the document's writes nowhere to go).
    early_opens: RefCell<Vec<(DocumentId, Option<Vec<u8>>)>>,
}

impl Driver {
    fn new(identity: DeviceIdentity) -> Rc<Self> {
        let mut config = EngineConfig::new(Role::Client, identity.peer_id);
        config.actor = Some(identity.actor);
        Rc::new_cyclic(|me| Driver {
            me: me.clone(),
            engine: RefCell::new(Engine::new(config, OpenAccess)),
            disk: OnceCell::new(),
            writes: OnceCell::new(),
            inputs: RefCell::new(VecDeque::new()),
            pumping: Cell::new(false),
            socket: RefCell::new(None),
            next_conn: Cell::new(0),
            attempt: Cell::new(0),
            retry_timer: Cell::new(None),
            docs: RefCell::new(HashMap::new()),
            heard_relay: Cell::new(false),
            status: Status {
                connection: ArcRwSignal::new(Connection::Offline),
                last_error: ArcRwSignal::new(None),
                unsynced: ArcRwSignal::new(0),
                last_sync: ArcRwSignal::new(local::last_sync()),
            },
            listeners: RefCell::new(Vec::new()),
            prepare: RefCell::new(None),
            preparing: Cell::new(false),
            early_opens: RefCell::new(Vec::new()),
        })
    }

    fn trigger(&self, doc: DocumentId) -> ArcTrigger {
        self.docs.borrow_mut().entry(doc).or_insert_with(|| DocInfo::new(doc)).trigger.clone()
    }

    fn notify(&self, doc: DocumentId) {
        self.trigger(doc).notify();
    }

    // ----- the engine -----

    /// Feeds `input` to the engine and carries out what it returns. Inputs that arrive while
    /// effects are being carried out wait their turn, so the engine sees one event at a time.
    fn input(&self, input: Input<()>) {
        self.inputs.borrow_mut().push_back(input);
        if self.pumping.replace(true) {
            return;
        }
        loop {
            let next = self.inputs.borrow_mut().pop_front();
            let Some(input) = next else { break };
            let effects = self.engine.borrow_mut().handle(now(), input);
            self.apply(effects);
        }
        self.pumping.set(false);
        self.refresh_status();
    }

    fn change<R>(&self, doc: DocumentId, f: impl FnOnce(&mut Automerge) -> R) -> Result<R, EngineError> {
        let (r, effects) = self.engine.borrow_mut().change(doc, f)?;
        self.apply(effects);
        self.refresh_status();
        Ok(r)
    }

    fn open(&self, doc: DocumentId, seed: Option<Vec<u8>>) {
        self.docs.borrow_mut().entry(doc).or_insert_with(|| DocInfo::new(doc)).opened = true;
        if self.disk.get().is_none() {
            self.early_opens.borrow_mut().push((doc, seed));
            return;
        }
        self.input(Input::Open { doc, seed });
    }

    fn apply(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { conn, bytes } => {
                    let socket = self.socket.borrow();
                    // A failed send shows up as the socket closing.
                    if let Some(s) =
                        socket.as_ref().filter(|s| s.conn == conn && s.ws.ready_state() == WebSocket::OPEN)
                    {
                        let _ = s.ws.send_with_u8_array(&bytes);
                    }
                }
                Effect::Close { conn, reason } => {
                    warn!("sync: closing {conn}: {reason}");
                    if let Some(socket) = self.socket.borrow().as_ref().filter(|s| s.conn == conn) {
                        let _ = socket.ws.close();
                    }
                }
                Effect::Load { doc } => self.load(doc),
                Effect::Write { doc, write, batch } => {
                    self.docs.borrow_mut().entry(doc).or_insert_with(|| DocInfo::new(doc)).writes_pending +=
                        1;
                    match self.writes.get() {
                        Some(queue) => queue.push(Write { doc, write, batch }),
                        // Documents open only once the disk is attached; this is a safety net.
                        None => self.inputs.borrow_mut().push_back(Input::WriteFailed {
                            doc,
                            write,
                            error: "local storage is not open".to_owned(),
                        }),
                    }
                    self.notify(doc);
                }
                Effect::PeerReady { conn, peer } => {
                    let current = match self.socket.borrow_mut().as_mut().filter(|s| s.conn == conn) {
                        Some(socket) => {
                            socket.ready = true;
                            if let Some(timer) = socket.handshake_timer.take() {
                                clear_timeout(timer);
                            }
                            true
                        }
                        None => false,
                    };
                    if current {
                        self.attempt.set(0);
                        self.status.connection.set(Connection::Online);
                        leptos::logging::log!("sync: connected to relay {peer}");
                    }
                }
                Effect::DocReady { doc } | Effect::DocChanged { doc } | Effect::Persisted { doc, .. } => {
                    self.notify(doc);
                }
                Effect::StorageFailed { doc, error } => {
                    error!("sync: storage failed for {doc}: {error}");
                    if let Some(info) = self.docs.borrow_mut().get_mut(&doc) {
                        info.storage_error = Some(error);
                    }
                    self.notify(doc);
                }
                Effect::CorruptChunks { doc, keys } => {
                    error!("sync: stored chunks of {doc} did not load (left in place): {keys:?}");
                }
                Effect::DocUnavailable { .. } | Effect::Ephemeral { .. } => {}
            }
        }
    }

    fn load(&self, doc: DocumentId) {
        let disk = self.disk.get().cloned();
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = match disk.as_deref() {
                Some(Ok(store)) => store.load(doc).await,
                Some(Err(e)) => Err(e.clone()),
                None => Err(StorageError::Unavailable),
            };
            let input = match result {
                Ok(chunks) => Input::Loaded { doc, chunks },
                Err(e) => Input::LoadFailed { doc, error: e.to_string() },
            };
            if let Some(d) = me.upgrade() {
                d.input(input);
            }
        });
    }

    fn attach_disk(&self, disk: Result<IdbStore, StorageError>) {
        let disk: Disk = Rc::new(disk);
        let me = self.me.clone();
        let queue = WriteQueue::new(disk.clone(), move |input| {
            if let Some(d) = me.upgrade() {
                d.write_done(&input);
                d.input(input);
            }
        });
        // Called once, from `start`.
        let _ = self.disk.set(disk);
        let _ = self.writes.set(queue);
    }

    fn write_done(&self, input: &Input<()>) {
        let (doc, failed) = match input {
            Input::Written { doc, .. } => (*doc, false),
            Input::WriteFailed { doc, .. } => (*doc, true),
            _ => return,
        };
        if let Some(info) = self.docs.borrow_mut().get_mut(&doc) {
            info.writes_pending = info.writes_pending.saturating_sub(1);
            if !failed {
                info.storage_error = None;
            }
        }
        self.notify(doc);
    }

    fn doc_sync(&self, doc: DocumentId) -> DocSync {
        let loaded = self.engine.borrow().doc(&doc).is_some();
        match self.docs.borrow().get(&doc) {
            Some(info) => DocSync {
                loaded,
                saved: loaded && info.writes_pending == 0 && info.storage_error.is_none(),
                acknowledged: info.acknowledged,
                storage_error: info.storage_error.clone(),
            },
            None => DocSync { loaded, saved: false, acknowledged: false, storage_error: None },
        }
    }

    /// Recomputes what the status bar shows from the engine's sync states. A document counts as
    /// acknowledged when the relay's last heads include all of ours.
    fn refresh_status(&self) {
        let conn = self.socket.borrow().as_ref().filter(|s| s.ready).map(|s| s.conn);
        let mut unsynced = 0;
        let mut any_open = false;
        let mut flipped = Vec::new();
        {
            let engine = self.engine.borrow();
            let mut docs = self.docs.borrow_mut();
            for (doc, info) in docs.iter_mut().filter(|(_, info)| info.opened) {
                // Still loading: nothing to say yet.
                let Some(am) = engine.doc(doc) else { continue };
                any_open = true;
                let theirs = conn.and_then(|c| engine.sync_state(c, doc)).and_then(|s| s.their_heads.clone());
                if let Some(theirs) = theirs.filter(|t| info.relay_heads.as_ref() != Some(t)) {
                    local::set_relay_heads(*doc, &theirs);
                    info.relay_heads = Some(theirs);
                }
                let ours = am.get_heads();
                let acknowledged =
                    info.relay_heads.as_ref().is_some_and(|theirs| ours.iter().all(|h| theirs.contains(h)));
                if acknowledged != info.acknowledged {
                    info.acknowledged = acknowledged;
                    flipped.push(info.trigger.clone());
                }
                unsynced += usize::from(!acknowledged);
            }
        }
        if self.status.unsynced.get_untracked() != unsynced {
            self.status.unsynced.set(unsynced);
        }
        if self.heard_relay.replace(false) && conn.is_some() && any_open && unsynced == 0 {
            let at = js_sys::Date::now();
            local::set_last_sync(at);
            self.status.last_sync.set(Some(at));
        }
        for trigger in flipped {
            trigger.notify();
        }
    }

    // ----- the socket -----

    fn connect_now(&self) {
        if let Some(timer) = self.retry_timer.take() {
            clear_timeout(timer);
        }
        self.attempt.set(0);
        self.connect();
    }

    fn connect(&self) {
        if self.socket.borrow().is_some() || self.preparing.get() {
            return;
        }
        let Some(url) = sync_url() else { return };
        let prepare = self.prepare.borrow().clone();
        let Some(prepare) = prepare else { return self.open_socket(&url) };
        self.preparing.set(true);
        self.status.connection.set(Connection::Connecting);
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let query = prepare().await;
            let Some(d) = me.upgrade() else { return };
            d.preparing.set(false);
            match query {
                Ok(query) => {
                    d.status.last_error.set(None);
                    d.open_socket(&format!("{url}?{query}"));
                }
                Err(why) => {
                    warn!("sync: cannot connect yet: {why}");
                    d.status.last_error.set(Some(why));
                    d.status.connection.set(Connection::Offline);
                    d.schedule_retry();
                }
            }
        });
    }

    fn open_socket(&self, url: &str) {
        if self.socket.borrow().is_some() {
            return;
        }
        let url = url.to_owned();
        let ws = match WebSocket::new(&url) {
            Ok(ws) => ws,
            Err(e) => {
                error!("sync: cannot open {url}: {e:?}");
                return self.schedule_retry();
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        let conn = ConnId(self.next_conn.get());
        self.next_conn.set(conn.0 + 1);

        let me = self.me.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            if let Some(d) = me.upgrade() {
                d.on_open(conn);
            }
        });
        let me = self.me.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(d) = me.upgrade() {
                d.on_message(conn, &event);
            }
        });
        let me = self.me.clone();
        let on_close = Closure::<dyn FnMut()>::new(move || {
            if let Some(d) = me.upgrade() {
                d.on_close(conn);
            }
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        *self.socket.borrow_mut() = Some(Socket {
            conn,
            ws,
            ready: false,
            handshake_timer: None,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
        self.status.connection.set(Connection::Connecting);
    }

    fn on_open(&self, conn: ConnId) {
        let me = self.me.clone();
        let timer = set_timeout(HANDSHAKE_TIMEOUT_MS, move || {
            if let Some(d) = me.upgrade() {
                d.handshake_overdue(conn);
            }
        });
        match self.socket.borrow_mut().as_mut().filter(|s| s.conn == conn) {
            Some(socket) => socket.handshake_timer = timer,
            None => return,
        }
        self.input(Input::Connected { conn, direction: Direction::Outbound, principal: () });
    }

    fn handshake_overdue(&self, conn: ConnId) {
        if let Some(socket) = self.socket.borrow_mut().as_mut().filter(|s| s.conn == conn && !s.ready) {
            warn!("sync: no handshake from the relay within {HANDSHAKE_TIMEOUT_MS} ms; reconnecting");
            socket.handshake_timer = None;
            let _ = socket.ws.close();
        }
    }

    fn on_message(&self, conn: ConnId, event: &MessageEvent) {
        match event.data().dyn_into::<js_sys::ArrayBuffer>() {
            Ok(buffer) => {
                self.heard_relay.set(true);
                let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                self.input(Input::Frame { conn, bytes });
            }
            // The protocol is binary frames only.
            Err(_) => warn!("sync: ignoring a non-binary frame from the relay"),
        }
    }

    fn on_close(&self, conn: ConnId) {
        let closed = {
            let mut socket = self.socket.borrow_mut();
            match socket.as_ref() {
                Some(s) if s.conn == conn => socket.take(),
                _ => None,
            }
        };
        let Some(closed) = closed else { return };
        // Dropped later: this runs inside one of the socket's own handlers.
        wasm_bindgen_futures::spawn_local(async move { drop(closed) });
        self.status.connection.set(Connection::Offline);
        self.input(Input::Disconnected { conn });
        self.schedule_retry();
    }

    fn schedule_retry(&self) {
        if self.retry_timer.get().is_some() || self.socket.borrow().is_some() || self.preparing.get() {
            return;
        }
        let attempt = self.attempt.get();
        self.attempt.set(attempt.saturating_add(1));
        let delay = reconnect_delay(attempt, js_sys::Math::random());
        let me = self.me.clone();
        let timer = set_timeout(i32::try_from(delay).unwrap_or(i32::MAX), move || {
            if let Some(d) = me.upgrade() {
                d.retry_timer.set(None);
                d.connect();
            }
        });
        self.retry_timer.set(timer);
    }

    /// Reconnects at once when the browser says it is back online or the tab becomes visible
    /// (phones throttle background tabs and drop their sockets); closes the socket when the
    /// browser says it is offline, rather than waiting for TCP to notice.
    fn listen_to_browser(&self) {
        let Some(window) = web_sys::window() else { return };
        let mut listeners = self.listeners.borrow_mut();
        let me = self.me.clone();
        let online = Closure::<dyn FnMut()>::new(move || {
            if let Some(d) = me.upgrade() {
                d.connect_now();
            }
        });
        let me = self.me.clone();
        let offline = Closure::<dyn FnMut()>::new(move || {
            if let Some(d) = me.upgrade()
                && let Some(socket) = d.socket.borrow().as_ref()
            {
                let _ = socket.ws.close();
            }
        });
        let me = self.me.clone();
        let visibility = Closure::<dyn FnMut()>::new(move || {
            let visible = web_sys::window()
                .and_then(|w| w.document())
                .is_some_and(|doc| doc.visibility_state() == web_sys::VisibilityState::Visible);
            if let Some(d) = me.upgrade().filter(|_| visible) {
                d.connect_now();
            }
        });
        let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        let _ = window.add_event_listener_with_callback("offline", offline.as_ref().unchecked_ref());
        if let Some(document) = window.document() {
            let _ = document
                .add_event_listener_with_callback("visibilitychange", visibility.as_ref().unchecked_ref());
        }
        listeners.extend([online, offline, visibility]);
    }
}

/// `ws://` or `wss://` (matching the page) on the page's host, at [`SYNC_PATH`].
fn sync_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" { "wss" } else { "ws" };
    Some(format!("{scheme}://{}{SYNC_PATH}", location.host().ok()?))
}

/// The engine's clock: only differences matter.
fn now() -> u64 {
    // Milliseconds since the epoch fit a u64 exactly until the year 285,000.
    js_sys::Date::now() as u64
}

fn set_timeout(ms: i32, f: impl FnOnce() + 'static) -> Option<i32> {
    let f = Closure::once_into_js(f);
    web_sys::window()?.set_timeout_with_callback_and_timeout_and_arguments_0(f.unchecked_ref(), ms).ok()
}

fn clear_timeout(handle: i32) {
    if let Some(window) = web_sys::window() {
        window.clear_timeout_with_handle(handle);
    }
}
