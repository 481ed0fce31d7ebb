//! The relay's shared store: PostgreSQL, for several relay processes on one database.
//!
//! The same chunk layout as [`super::sqlite`] (tables `chunks` and `documents`), a schema-version
//! table with migrations, and a small pool of connections (`tokio-postgres`, pure Rust). A write is
//! one transaction, durable when its commit returns (PostgreSQL's default `synchronous_commit`).
//!
//! Every write also notifies the channel [`CHANNEL`] with `<document id> <node id>` inside its
//! transaction, so the notification is delivered exactly when (and only if) the write commits.
//! [`PostgresStore::listen`] keeps one `LISTEN` connection per process and reports what the
//! *other* nodes wrote as [`StoreEvent`]s; after (re)connecting it reports
//! [`StoreEvent::Resync`], because notifications sent while it was not listening are lost.
//!
//! The roster's tables live in the same database ([`roster::PgRoster`]); its changes that close
//! connections notify a second channel, [`roster::ROSTER_CHANNEL`], reported as
//! [`StoreEvent::RosterChanged`].
//!
//! Connections are plain TCP or Unix sockets without TLS: run the database on the relay's host
//! or a private network.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, ChunkKey, ChunkKind, WriteBatch};
use futures::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::{Store, StoreError, StoreEvent, check_batch};

pub mod testdb;

/// The notification channel every write notifies on commit.
pub const CHANNEL: &str = "chibo_doc";

/// The schema version this code writes (the row of `chibo_schema`).
const SCHEMA_VERSION: i64 = 2;

/// Migrations, in order: `MIGRATIONS[i]` takes a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: chunks, plus the set of documents that have any (as in SQLite's v1).
    "CREATE TABLE chunks (
         doc  bytea NOT NULL CHECK (length(doc) = 16),
         kind text  NOT NULL,
         name text  NOT NULL,
         data bytea NOT NULL,
         PRIMARY KEY (doc, kind, name)
     );
     CREATE TABLE documents (
         doc bytea NOT NULL PRIMARY KEY CHECK (length(doc) = 16)
     );",
    // v2: the roster (units, members, devices, invites, sessions), the document index, the audit log.
    roster::MIGRATION_V2,
];

/// First key of chibo's advisory locks (the second is the document's, or 0 for migrations).
const LOCK_SPACE_DOCS: i32 = 0x6368_6962; // "chib"
const LOCK_SPACE_MIGRATIONS: i32 = 0x6368_696d; // "chim"

/// Tuning knobs; [`PostgresOptions::default`] is what the relay uses.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections open at once for loads and writes (the listener has its own).
    pub max_connections: usize,
    /// How long connecting may take before [`StoreError::Unavailable`].
    pub connect_timeout: Duration,
    /// How often the listening connection is checked; a dead one is replaced (and everything
    /// in memory reloaded, see [`StoreEvent::Resync`]).
    pub listen_check_every: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            listen_check_every: Duration::from_secs(15),
        }
    }
}

/// A [`Store`] in a PostgreSQL database, shared by any number of relay processes.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: tokio_postgres::Config,
    options: PostgresOptions,
    /// This process's name in notifications, so it can skip its own.
    node: String,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("PostgresStore")
            .field("dbname", &self.inner.config.get_dbname())
            .field("node", &self.inner.node)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`, or the
    /// `key=value` form) and migrates its schema to the current version.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let mut config = parse_url(url)?;
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("chibo-relay");
        }
        let node = format!("{:016x}", rand::random::<u64>());
        let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
        let store =
            Self { inner: Arc::new(Inner { config, options, node, idle: Mutex::new(Vec::new()), permits }) };
        store.migrate().await?;
        tracing::debug!(?store, "opened PostgreSQL store");
        Ok(store)
    }

    /// This process's node id (random per process), as written in notifications.
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.inner.get(false).await?;
        let tx = conn.client().transaction().await.map_err(classify)?;
        // Two relays starting at once: one migrates, the other waits and then finds it done.
        tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_SPACE_MIGRATIONS])
            .await
            .map_err(classify)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS chibo_schema (version bigint NOT NULL)")
            .await
            .map_err(classify)?;
        let found: i64 =
            match tx.query_opt("SELECT max(version) FROM chibo_schema", &[]).await.map_err(classify)? {
                Some(row) => row.try_get::<_, Option<i64>>(0).map_err(classify)?.unwrap_or(0),
                None => 0,
            };
        let supported = SCHEMA_VERSION;
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        for version in found..supported {
            let step = usize::try_from(version)
                .map_err(|_| StoreError::Corrupt { detail: format!("negative schema version {version}") })?;
            tx.batch_execute(MIGRATIONS[step]).await.map_err(classify)?;
            tracing::info!(from = version, to = version + 1, "migrated PostgreSQL store schema");
        }
        if found < supported {
            tx.execute("DELETE FROM chibo_schema", &[]).await.map_err(classify)?;
            tx.execute("INSERT INTO chibo_schema (version) VALUES ($1)", &[&supported])
                .await
                .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)
    }

    /// Starts following what other nodes write: one `LISTEN` connection, re-established (with
    /// [`StoreEvent::Resync`]) whenever it breaks. Ends when the receiver is dropped.
    pub fn listen(&self) -> mpsc::UnboundedReceiver<StoreEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(listen_loop(self.inner.clone(), tx));
        rx
    }
}

fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Unavailable { detail: format!("bad database URL: {e}") })
}

/// Checks a database URL without connecting (for the command line).
pub fn check_url(url: &str) -> Result<(), String> {
    parse_url(url).map(drop).map_err(|e| e.to_string())
}

/// A pooled connection; goes back to the pool on drop unless it broke.
struct Pooled {
    client: Option<Client>,
    /// Taken from the idle pool rather than just connected.
    reused: bool,
    inner: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Pooled {
    fn client(&mut self) -> &mut Client {
        // Only `Drop` takes the client out.
        self.client.get_or_insert_with(|| unreachable!("a pooled connection holds its client until dropped"))
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|c| !c.is_closed()) {
            self.inner.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(client);
        }
    }
}

impl Inner {
    /// A connection: an idle one unless `fresh`, else a new one.
    async fn get(self: &Arc<Self>, fresh: bool) -> Result<Pooled, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable { detail: "connection pool closed".into() })?;
        let idle = if fresh {
            None
        } else {
            loop {
                let next = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
                match next {
                    Some(c) if c.is_closed() => continue,
                    other => break other,
                }
            }
        };
        let (client, reused) = match idle {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        Ok(Pooled { client: Some(client), reused, inner: self.clone(), _permit: permit })
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(classify)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }
}

/// Maps PostgreSQL's errors onto [`StoreError`]'s variants.
fn classify(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed or closed (server down, network, authentication
        // without a code). Retrying later may succeed.
        return if e.is_closed() || e.to_string().contains("connect") || e.to_string().contains("timed out") {
            StoreError::Unavailable { detail: e.to_string() }
        } else {
            StoreError::Postgres(e)
        };
    };
    match code {
        c if *c == SqlState::DISK_FULL => StoreError::Full,
        c if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt { detail: e.to_string() }
        }
        c if *c == SqlState::READ_ONLY_SQL_TRANSACTION || *c == SqlState::INSUFFICIENT_PRIVILEGE => {
            StoreError::ReadOnly { path: "the PostgreSQL database".into(), detail: e.to_string() }
        }
        c if *c == SqlState::TOO_MANY_CONNECTIONS
            || *c == SqlState::CANNOT_CONNECT_NOW
            || *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::LOCK_NOT_AVAILABLE =>
        {
            StoreError::Unavailable { detail: e.to_string() }
        }
        _ => StoreError::Postgres(e),
    }
}

/// The second key of a document's advisory lock: its first four bytes.
fn doc_lock_key(doc: &DocumentId) -> i32 {
    let b = doc.as_bytes();
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn doc_from_row(bytes: Vec<u8>) -> Result<DocumentId, StoreError> {
    let got = bytes.len();
    <[u8; 16]>::try_from(bytes)
        .map(DocumentId::from_bytes)
        .map_err(|_| StoreError::Corrupt { detail: format!("document id of {got} bytes in the database") })
}

/// Runs `$body` with `$client` bound to a pooled connection. A connection that waited in the pool
/// may have died meanwhile (the server restarted, a network cut), so when `$body` fails as
/// [`StoreError::Unavailable`] on one, it runs once more on a new connection. Every operation
/// here may run twice: reads read, and a write's batch is idempotent (puts of content-addressed
/// chunks, deletes of keys; a second notification is harmless).
macro_rules! with_connection {
    ($inner:expr, $client:ident => $body:expr) => {{
        let mut conn = $inner.get(false).await?;
        let reused = conn.reused;
        let first = {
            let $client = conn.client();
            $body
        };
        match first {
            Err(StoreError::Unavailable { detail }) if reused => {
                tracing::debug!(detail, "a pooled PostgreSQL connection failed; retrying on a new one");
                drop(conn);
                let mut conn = $inner.get(true).await?;
                let $client = conn.client();
                $body
            }
            other => other,
        }
    }};
}

// After `with_connection!`, which it uses.
pub mod roster;

#[async_trait]
impl Store for PostgresStore {
    async fn load(&self, doc: DocumentId) -> Result<Vec<Chunk>, StoreError> {
        with_connection!(self.inner, client => load_chunks(client, doc).await)
    }

    async fn write(&self, doc: DocumentId, batch: WriteBatch) -> Result<(), StoreError> {
        check_batch(&batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let payload = format!("{doc} {}", self.inner.node);
        with_connection!(self.inner, client => write_batch(client, doc, &batch, &payload).await)
    }

    async fn list_documents(&self) -> Result<Vec<DocumentId>, StoreError> {
        let rows = with_connection!(self.inner, client => {
            client.query("SELECT doc FROM documents ORDER BY doc", &[]).await.map_err(classify)
        })?;
        rows.into_iter()
            .map(|r| r.try_get::<_, Vec<u8>>(0).map_err(classify).and_then(doc_from_row))
            .collect()
    }

    async fn document_count(&self) -> Result<u64, StoreError> {
        let row = with_connection!(self.inner, client => {
            client.query_one("SELECT count(*) FROM documents", &[]).await.map_err(classify)
        })?;
        let n: i64 = row.try_get(0).map_err(classify)?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt { detail: format!("document count {n}") })
    }
}

async fn load_chunks(client: &mut Client, doc: DocumentId) -> Result<Vec<Chunk>, StoreError> {
    let id: &[u8] = doc.as_bytes();
    // One statement: one consistent snapshot, so a compaction committed meanwhile is seen whole
    // (its snapshot and its deletions) or not at all.
    let rows = client
        .query_typed("SELECT kind, name, data FROM chunks WHERE doc = $1", &[(&id, Type::BYTEA)])
        .await
        .map_err(classify)?;
    let mut chunks = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get(0).map_err(classify)?;
        let name: String = row.try_get(1).map_err(classify)?;
        let bytes: Vec<u8> = row.try_get(2).map_err(classify)?;
        let kind = ChunkKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            detail: format!("unknown chunk kind {kind:?} for document {doc}"),
        })?;
        chunks.push(Chunk { key: ChunkKey { kind, name }, bytes });
    }
    Ok(chunks)
}

/// Applies `batch` to `doc` in one transaction that notifies [`CHANNEL`] with `payload`.
async fn write_batch(
    client: &mut Client,
    doc: DocumentId,
    batch: &WriteBatch,
    payload: &str,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(classify)?;
    let id: &[u8] = doc.as_bytes();
    // Writes of one document from several nodes take turns, which keeps `documents` exact.
    let key = doc_lock_key(&doc);
    tx.execute_typed(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[(&LOCK_SPACE_DOCS, Type::INT4), (&key, Type::INT4)],
    )
    .await
    .map_err(classify)?;
    if !batch.puts.is_empty() {
        // Later puts of a key replace earlier ones within a batch, as in SQLite.
        let mut puts: HashMap<(&str, &str), &[u8]> = HashMap::new();
        for c in &batch.puts {
            puts.insert((c.key.kind.as_str(), c.key.name.as_str()), &c.bytes);
        }
        let kinds: Vec<&str> = puts.keys().map(|(k, _)| *k).collect();
        let names: Vec<&str> = puts.keys().map(|(_, n)| *n).collect();
        let data: Vec<&[u8]> = puts.values().copied().collect();
        let params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&id, Type::BYTEA),
            (&kinds, Type::TEXT_ARRAY),
            (&names, Type::TEXT_ARRAY),
            (&data, Type::BYTEA_ARRAY),
        ];
        tx.execute_typed(
            "INSERT INTO chunks (doc, kind, name, data)
             SELECT $1, k, n, d FROM unnest($2::text[], $3::text[], $4::bytea[]) AS t(k, n, d)
             ON CONFLICT (doc, kind, name) DO UPDATE SET data = EXCLUDED.data",
            &params,
        )
        .await
        .map_err(classify)?;
        tx.execute_typed(
            "INSERT INTO documents (doc) VALUES ($1) ON CONFLICT (doc) DO NOTHING",
            &[(&id, Type::BYTEA)],
        )
        .await
        .map_err(classify)?;
    }
    if !batch.deletes.is_empty() {
        let kinds: Vec<&str> = batch.deletes.iter().map(|k| k.kind.as_str()).collect();
        let names: Vec<&str> = batch.deletes.iter().map(|k| k.name.as_str()).collect();
        tx.execute_typed(
            "DELETE FROM chunks WHERE doc = $1
               AND (kind, name) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
            &[(&id, Type::BYTEA), (&kinds, Type::TEXT_ARRAY), (&names, Type::TEXT_ARRAY)],
        )
        .await
        .map_err(classify)?;
        tx.execute_typed(
            "DELETE FROM documents WHERE doc = $1 AND NOT EXISTS (SELECT 1 FROM chunks WHERE doc = $1)",
            &[(&id, Type::BYTEA)],
        )
        .await
        .map_err(classify)?;
    }
    // Delivered to every listener when (and only if) this transaction commits.
    tx.execute_typed("SELECT pg_notify($1, $2)", &[(&CHANNEL, Type::TEXT), (&payload, Type::TEXT)])
        .await
        .map_err(classify)?;
    // Dropping `tx` on an error above rolls the whole batch back.
    tx.commit().await.map_err(classify)
}

/// The `application_name` of a node's listening connection (to find it in `pg_stat_activity`).
pub fn listener_name(node: &str) -> String {
    format!("chibo-listen-{node}")
}

/// Keeps one `LISTEN` connection up until `events` is dropped.
async fn listen_loop(inner: Arc<Inner>, events: mpsc::UnboundedSender<StoreEvent>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&inner, &events).await {
            Ok(()) => return, // nobody follows any more
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "PostgreSQL listener lost; reconnecting");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = events.closed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One listening session: returns `Ok` when the follower is gone, `Err` when the connection broke.
async fn listen_once(inner: &Inner, events: &mpsc::UnboundedSender<StoreEvent>) -> Result<(), StoreError> {
    let mut config = inner.config.clone();
    config.application_name(listener_name(&inner.node));
    let (client, mut connection) = config.connect(NoTls).await.map_err(classify)?;
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if notes_tx.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL listening connection failed");
                    break;
                }
            }
        }
    });
    let _abort = AbortOnDrop(driver.abort_handle());
    client
        .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {}", roster::ROSTER_CHANNEL))
        .await
        .map_err(classify)?;
    tracing::info!(node = %inner.node, "listening for other relays' writes");
    // Anything committed while nobody listened was not heard: the follower reloads what it holds.
    if events.send(StoreEvent::Resync).is_err() {
        return Ok(());
    }
    let mut check = tokio::time::interval(inner.options.listen_check_every);
    check.tick().await;
    loop {
        tokio::select! {
            note = notes.recv() => {
                let Some(note) = note else {
                    return Err(StoreError::Unavailable { detail: "the listening connection closed".into() });
                };
                if note.channel() == roster::ROSTER_CHANNEL {
                    match roster::parse_kick(note.payload()) {
                        Some((_, node)) if node == inner.node => {} // closed here already
                        Some((kick, _)) => {
                            if events.send(StoreEvent::RosterChanged(kick)).is_err() {
                                return Ok(());
                            }
                        }
                        None => tracing::warn!(payload = note.payload(), "unexpected roster notification"),
                    }
                    continue;
                }
                let Some((doc, node)) = note.payload().split_once(' ') else { continue };
                if node == inner.node {
                    continue; // our own write
                }
                match doc.parse::<DocumentId>() {
                    Ok(doc) => {
                        if events.send(StoreEvent::Changed(doc)).is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) => tracing::warn!(payload = note.payload(), error = %e, "unexpected notification"),
                }
            }
            _ = check.tick() => {
                let alive = tokio::time::timeout(inner.options.connect_timeout, client.check_connection()).await;
                match alive {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(classify(e)),
                    Err(_) => return Err(StoreError::Unavailable { detail: "the listening connection stopped answering".into() }),
                }
            }
            () = events.closed() => return Ok(()),
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
