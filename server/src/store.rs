//! Durable storage of document chunks: the [`Store`] trait and its backends.
//!
//! A store is a dumb key-value map from `(document, chunk key)` to bytes, in the chunk layout of
//! [`chibo_shared::storage`]; it knows nothing of automerge. Every decision (what to write, when to
//! compact) is made by the caller. **Only this module touches disk.**
//!
//! - [`sqlite::SqliteStore`]: the relay's embedded default (WAL, `synchronous=FULL`).
//! - [`postgres::PostgresStore`]: PostgreSQL, shared by several relay processes; each write
//!   notifies the others on commit ([`StoreEvent`]).
//! - [`fs::FsStore`]: one directory per document, for the native client.
//! - [`roster::RosterStore`]: the roster's tables, on SQLite or PostgreSQL (the same database as
//!   the documents).
//! - [`transfer`]: export/import of whole documents as `.automerge` files, used by the CLI.

use std::io;
use std::path::PathBuf;

use async_trait::async_trait;
use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, WriteBatch};

pub mod fs;
pub mod postgres;
pub mod roster;
pub mod sqlite;
pub mod transfer;

/// The storage backend behind the relay (and the native client).
///
/// Implementations must be cheap to share (`Arc<dyn Store>`) and must not block the async
/// runtime: blocking IO belongs on `spawn_blocking`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Every chunk stored for `doc`, in no particular order; empty if the document is unknown.
    async fn load(&self, doc: DocumentId) -> Result<Vec<Chunk>, StoreError>;

    /// Applies `batch` to `doc`: all puts and deletes land, or none do, and they are durable when
    /// this returns `Ok`. A put replaces a chunk stored under the same key.
    async fn write(&self, doc: DocumentId, batch: WriteBatch) -> Result<(), StoreError>;

    /// Applies several batches, in order (of one document or many), and reports each one's
    /// outcome in the same order. Each `Ok` is durable as for [`Store::write`]; each batch lands
    /// whole or not at all. A backend may commit them together, one fsync for the lot (group
    /// commit, see [`sqlite::SqliteStore`]), as long as one failing batch does not fail the
    /// others. The default writes them one at a time.
    async fn write_group(&self, batches: Vec<(DocumentId, WriteBatch)>) -> Vec<Result<(), StoreError>> {
        write_each(self, batches).await
    }

    /// True when [`Store::write_group`] commits a group at once (one transaction), so that
    /// handing it the writes queued up is faster than one by one. The relay's writer groups
    /// writes only then: with the default one-by-one `write_group`, a group would only hold back
    /// the reports of its first writes (and the sync messages that wait on them).
    fn commits_groups(&self) -> bool {
        false
    }

    /// Every document with at least one stored chunk.
    async fn list_documents(&self) -> Result<Vec<DocumentId>, StoreError>;

    /// How many documents [`Store::list_documents`] would return.
    async fn document_count(&self) -> Result<u64, StoreError>;
}

/// What another process did to a shared store (see [`postgres::PostgresStore::listen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEvent {
    /// Another process committed a write of this document.
    Changed(DocumentId),
    /// Notifications may have been missed (the listening connection was (re)established): treat
    /// every document held in memory as changed, and every live connection's access as stale.
    Resync,
    /// Another process changed the roster in a way that closes these connections (a device
    /// revoked, a member's role or clerkships changed).
    RosterChanged(crate::roster::Kick),
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk (or a configured size limit) is full; nothing of the failed write was kept.
    #[error("storage is full: free disk space (or raise the size limit) and retry")]
    Full,

    /// Stored data cannot be read back as written.
    #[error("stored data is corrupt: {detail}")]
    Corrupt { detail: String },

    /// Another process holds the database lock for longer than the busy timeout.
    #[error("storage is busy: another process holds the lock (is a second relay using the same data dir?)")]
    Busy,

    /// The location cannot be written (or opened): read-only file system or missing permission.
    #[error("storage at {path} is read-only or not permitted: {detail}")]
    ReadOnly { path: PathBuf, detail: String },

    /// A file-system operation failed for another reason.
    #[error("I/O error while trying to {op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: io::Error },

    /// A chunk key whose name cannot be stored safely (backends use it in file names).
    #[error("invalid chunk name {name:?}: expected 1 to 128 ASCII letters, digits or '_'")]
    InvalidChunkName { name: String },

    /// The database was written by a newer version of chibo.
    #[error("store schema version {found} is newer than this program supports ({supported}); upgrade chibo")]
    SchemaTooNew { found: i64, supported: i64 },

    /// SQLite failed in a way none of the variants above describes.
    #[error("SQLite error: {0}")]
    Sqlite(#[source] rusqlite::Error),

    /// The database server cannot be reached or refuses work for now (down, restarting, too many
    /// connections, a conflict with a concurrent transaction); retrying later may succeed.
    #[error("database unavailable: {detail}")]
    Unavailable { detail: String },

    /// PostgreSQL failed in a way none of the variants above describes.
    #[error("PostgreSQL error: {0}")]
    Postgres(#[source] tokio_postgres::Error),

    /// The blocking task doing the work panicked or was cancelled (a bug, not a storage state).
    #[error("store task did not complete: {0}")]
    TaskFailed(#[source] tokio::task::JoinError),

    /// Written in one transaction with other writes (group commit), which failed as a whole for
    /// a reason that is not this write's own: `detail` is that failure.
    #[error("{detail}")]
    GroupFailed { detail: String },
}

impl StoreError {
    /// Classifies an IO error from file `path` during `op`.
    pub fn from_io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::Full,
            io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => {
                StoreError::ReadOnly { path: path.into(), detail: source.to_string() }
            }
            _ => StoreError::Io { op, path: path.into(), source },
        }
    }

    /// True when retrying later may succeed without anyone fixing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy | StoreError::Unavailable { .. })
    }

    /// The same failure, for another write of the same group. Errors are not `Clone` (sources),
    /// so variants with a source become [`StoreError::GroupFailed`] with the message.
    pub fn again(&self) -> StoreError {
        match self {
            StoreError::Full => StoreError::Full,
            StoreError::Busy => StoreError::Busy,
            StoreError::Corrupt { detail } => StoreError::Corrupt { detail: detail.clone() },
            StoreError::ReadOnly { path, detail } => {
                StoreError::ReadOnly { path: path.clone(), detail: detail.clone() }
            }
            StoreError::InvalidChunkName { name } => StoreError::InvalidChunkName { name: name.clone() },
            StoreError::SchemaTooNew { found, supported } => {
                StoreError::SchemaTooNew { found: *found, supported: *supported }
            }
            StoreError::Unavailable { detail } => StoreError::Unavailable { detail: detail.clone() },
            other => StoreError::GroupFailed { detail: other.to_string() },
        }
    }
}

/// Chunk names become file names in [`fs::FsStore`], so they are restricted to a safe alphabet.
/// [`chibo_shared::storage::ChunkKey`]'s constructors only make lowercase hex.
pub(crate) fn check_chunk_name(name: &str) -> Result<(), StoreError> {
    let ok =
        !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok { Ok(()) } else { Err(StoreError::InvalidChunkName { name: name.to_owned() }) }
}

/// Checks every key of a batch before any of it is applied.
pub(crate) fn check_batch(batch: &WriteBatch) -> Result<(), StoreError> {
    batch.puts.iter().map(|c| &c.key).chain(&batch.deletes).try_for_each(|k| check_chunk_name(&k.name))
}

/// Writes `batches` one at a time, in order, each with its own outcome (the default
/// [`Store::write_group`], and a grouping backend's fallback).
pub(crate) async fn write_each<S: Store + ?Sized>(
    store: &S,
    batches: Vec<(DocumentId, WriteBatch)>,
) -> Vec<Result<(), StoreError>> {
    let mut outcomes = Vec::with_capacity(batches.len());
    for (doc, batch) in batches {
        outcomes.push(store.write(doc, batch).await);
    }
    outcomes
}

/// Runs blocking store work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(StoreError::TaskFailed)?
}

/// Shared helpers for the backend tests: real automerge documents cut into chunks.
#[cfg(test)]
pub(crate) mod testing {
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ReadDoc};
    use chibo_shared::ids::DocumentId;
    use chibo_shared::storage::{Chunk, ChunkKey, StoredChunks, WriteBatch, load_chunks};

    use super::Store;

    pub(crate) fn doc_id(n: u8) -> DocumentId {
        DocumentId::from_bytes([n; 16])
    }

    /// Adds one change to `doc` and returns it as an incremental chunk.
    pub(crate) fn edit(doc: &mut Automerge, key: &str, value: i64) -> Chunk {
        let before = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, key, value).expect("put");
        tx.commit();
        let bytes = doc.save_after(&before);
        Chunk { key: ChunkKey::incremental(&bytes), bytes }
    }

    pub(crate) fn value(doc: &Automerge, key: &str) -> Option<i64> {
        match doc.get(automerge::ROOT, key).expect("get")? {
            (automerge::Value::Scalar(s), _) => s.as_i64(),
            _ => None,
        }
    }

    /// Loads `doc` from `store` and checks that every chunk parsed.
    pub(crate) async fn load_doc(store: &dyn Store, doc: DocumentId) -> Automerge {
        let chunks = store.load(doc).await.expect("load");
        let (loaded, bad) = load_chunks(&chunks);
        assert!(bad.is_empty(), "bad chunks: {bad:?}");
        loaded
    }

    /// The contract every backend must meet; each backend's tests call this.
    pub(crate) async fn round_trip_and_compaction(store: &dyn Store) {
        let id = doc_id(1);
        let mut doc = Automerge::new();
        let mut stored = StoredChunks::default();
        for i in 0..10 {
            let chunk = edit(&mut doc, &format!("k{i}"), i);
            let batch = WriteBatch { puts: vec![chunk], deletes: vec![] };
            stored.apply(&batch);
            store.write(id, batch).await.expect("write");
        }
        let loaded = load_doc(store, id).await;
        assert_eq!(loaded.get_heads(), doc.get_heads());
        assert_eq!(value(&loaded, "k7"), Some(7));
        assert_eq!(store.load(id).await.expect("load").len(), 10);

        // Compaction: one snapshot in, ten incrementals out, in one batch.
        let batch = stored.compaction(&doc);
        assert_eq!((batch.puts.len(), batch.deletes.len()), (1, 10));
        store.write(id, batch.clone()).await.expect("compact");
        let chunks = store.load(id).await.expect("load");
        assert_eq!(chunks, batch.puts, "only the snapshot remains");
        assert_eq!(load_doc(store, id).await.get_heads(), doc.get_heads());

        // Writing the same put again is harmless (chunks are content-addressed).
        store.write(id, WriteBatch { puts: batch.puts.clone(), deletes: vec![] }).await.expect("rewrite");
        assert_eq!(store.load(id).await.expect("load").len(), 1);

        // Unknown documents load as nothing.
        assert!(store.load(doc_id(99)).await.expect("load unknown").is_empty());
    }

    pub(crate) async fn list_and_count(store: &dyn Store) {
        assert_eq!(store.document_count().await.expect("count"), 0);
        assert!(store.list_documents().await.expect("list").is_empty());
        let mut chunks = Vec::new();
        for n in [3u8, 1, 2] {
            let mut doc = Automerge::new();
            let chunk = edit(&mut doc, "x", i64::from(n));
            chunks.push((n, chunk.clone()));
            store.write(doc_id(n), WriteBatch { puts: vec![chunk], deletes: vec![] }).await.expect("write");
        }
        let mut listed = store.list_documents().await.expect("list");
        listed.sort();
        assert_eq!(listed, vec![doc_id(1), doc_id(2), doc_id(3)]);
        assert_eq!(store.document_count().await.expect("count"), 3);

        // A document whose last chunk is deleted is no longer listed.
        let (n, chunk) = &chunks[0];
        store
            .write(doc_id(*n), WriteBatch { puts: vec![], deletes: vec![chunk.key.clone()] })
            .await
            .expect("delete");
        assert_eq!(store.document_count().await.expect("count"), 2);
        assert!(!store.list_documents().await.expect("list").contains(&doc_id(*n)));
        // An empty batch does not create a document.
        store.write(doc_id(50), WriteBatch::default()).await.expect("empty batch");
        assert_eq!(store.document_count().await.expect("count"), 2);
    }

    pub(crate) async fn concurrent_writers(store: std::sync::Arc<dyn Store>) {
        let mut tasks = Vec::new();
        for n in 0..8u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut doc = Automerge::new();
                for i in 0..15 {
                    let chunk = edit(&mut doc, &format!("k{i}"), i64::from(n) * 100 + i);
                    store.write(doc_id(n + 10), WriteBatch { puts: vec![chunk], deletes: vec![] }).await?;
                }
                Ok::<_, super::StoreError>(doc.get_heads())
            }));
        }
        for (n, task) in (0..8u8).zip(tasks) {
            let heads = task.await.expect("join").expect("writes");
            let loaded = load_doc(&*store, doc_id(n + 10)).await;
            assert_eq!(loaded.get_heads(), heads);
            assert_eq!(value(&loaded, "k14"), Some(i64::from(n) * 100 + 14));
        }
        assert_eq!(store.document_count().await.expect("count"), 8);
    }

    pub(crate) async fn rejects_unsafe_chunk_names(store: &dyn Store) {
        let bad = Chunk {
            key: ChunkKey { kind: chibo_shared::storage::ChunkKind::Incremental, name: "../../etc".into() },
            bytes: vec![1],
        };
        let err = store.write(doc_id(7), WriteBatch { puts: vec![bad], deletes: vec![] }).await;
        assert!(matches!(err, Err(super::StoreError::InvalidChunkName { .. })), "{err:?}");
        assert!(store.load(doc_id(7)).await.expect("load").is_empty());
    }
}
