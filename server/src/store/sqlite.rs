//! The relay's embedded store: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! One writer connection behind a mutex (SQLite allows one writer at a time anyway) and a small
//! pool of read-only connections, so loads never wait behind a write's fsync. All SQLite calls
//! run on `spawn_blocking`. Opening a database reads its schema version and nothing else: a relay
//! with many stored documents starts without loading any of them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, ChunkKey, ChunkKind, WriteBatch};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::{Store, StoreError, blocking, check_batch, write_each};

pub mod roster;

/// The schema version this code writes; `PRAGMA user_version` of a current database.
const SCHEMA_VERSION: i64 = 2;

/// Migrations, in order: `MIGRATIONS[i]` takes a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: chunks, plus the set of documents that have any (so listing and counting documents
    // reads a small table instead of every chunk).
    "CREATE TABLE chunks (
         doc  BLOB NOT NULL CHECK (length(doc) = 16),
         kind TEXT NOT NULL,
         name TEXT NOT NULL,
         data BLOB NOT NULL,
         PRIMARY KEY (doc, kind, name)
     ) WITHOUT ROWID;
     CREATE TABLE documents (
         doc BLOB NOT NULL PRIMARY KEY CHECK (length(doc) = 16)
     ) WITHOUT ROWID;",
    // v2: the roster (units, members, devices, invites, sessions), the document index, the audit log.
    roster::MIGRATION_V2,
];

/// Tuning knobs; [`SqliteOptions::default`] is what the relay uses.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a connection waits for a lock held by another process before [`StoreError::Busy`].
    pub busy_timeout: Duration,
    /// Read connections kept open between loads; also how many document reads run at once.
    /// More would only queue on the disk, and each would hold a blocking thread (with its stack
    /// and allocator cache) for tokio's keep-alive time after a burst of loads.
    pub max_idle_readers: usize,
    /// Caps the database size in pages (`PRAGMA max_page_count`); writes past it fail with
    /// [`StoreError::Full`]. `None` leaves SQLite's default (effectively unlimited).
    pub max_page_count: Option<u32>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5), max_idle_readers: 4, max_page_count: None }
    }
}

/// A [`Store`] in one SQLite database file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Connection>,
    idle_readers: Mutex<Vec<Connection>>,
    /// Permits for document reads at once (`options.max_idle_readers`).
    reads: tokio::sync::Semaphore,
    /// Open sign-in challenges, shared by every roster handle on this store (see `roster`).
    challenges: roster::OpenChallenges,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options. Blocking: call it
    /// at start-up or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the database at `path`, migrating its schema to the current
    /// version. Blocking.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let err = classify(&path);
        let mut writer = Connection::open(&path).map_err(&err)?;
        configure(&writer, &options, &path)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(&err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // WAL is what lets reads proceed during a write; refuse to run silently without it.
            return Err(StoreError::Corrupt {
                detail: format!("{}: cannot enable WAL (mode is {mode})", path.display()),
            });
        }
        migrate(&mut writer, &path)?;
        if let Some(pages) = options.max_page_count {
            writer.pragma_update(None, "max_page_count", pages).map_err(&err)?;
        }
        drop(err);
        tracing::debug!(path = %path.display(), "opened SQLite store");
        let reads = tokio::sync::Semaphore::new(options.max_idle_readers.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                options,
                writer: Mutex::new(writer),
                idle_readers: Mutex::new(Vec::new()),
                reads,
                challenges: roster::OpenChallenges::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Applies many documents' batches in one transaction: all land or none do, with one commit
    /// (one fsync) for the lot. For seeding a store fast (imports, tests) and for
    /// [`Store::write_group`].
    pub async fn write_many(&self, batches: Vec<(DocumentId, WriteBatch)>) -> Result<(), StoreError> {
        self.write_together(batches).await.1
    }

    /// [`SqliteStore::write_many`] that hands the batches back (to retry them one by one).
    async fn write_together(
        &self,
        batches: Vec<(DocumentId, WriteBatch)>,
    ) -> (Vec<(DocumentId, WriteBatch)>, Result<(), StoreError>) {
        if let Err(e) = batches.iter().try_for_each(|(_, batch)| check_batch(batch)) {
            return (batches, Err(e));
        }
        let inner = self.inner.clone();
        let done = blocking(move || {
            let err = classify(&inner.path);
            let mut conn = inner.writer();
            let outcome =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).and_then(|tx| {
                    for (doc, batch) in batches.iter().filter(|(_, b)| !b.is_empty()) {
                        apply_batch(&tx, *doc, batch)?;
                    }
                    // Dropping `tx` on an error above rolls every batch back.
                    tx.commit()
                });
            Ok((batches, outcome.map_err(&err)))
        })
        .await;
        match done {
            Ok((batches, outcome)) => (batches, outcome),
            // The blocking task panicked or was cancelled: the batches went with it.
            Err(e) => (Vec::new(), Err(e)),
        }
    }
}

impl Inner {
    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock left no transaction open (rusqlite rolls back on drop),
        // so the connection is still usable.
        self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a turn to read (see [`SqliteOptions::max_idle_readers`]).
    async fn read_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, StoreError> {
        self.reads
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable { detail: "the store is closed".into() })
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.idle_readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let err = classify(&self.path);
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(&self.path, flags).map_err(&err)?;
                configure(&conn, &self.options, &self.path)?;
                conn
            }
        };
        let out = f(&conn);
        let mut idle = self.idle_readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.options.max_idle_readers {
            idle.push(conn);
        }
        out
    }
}

fn configure(conn: &Connection, options: &SqliteOptions, path: &Path) -> Result<(), StoreError> {
    let err = classify(path);
    conn.busy_timeout(options.busy_timeout).map_err(&err)?;
    // FULL: a commit is on disk (WAL fsynced) when it returns, which `Store::write` promises.
    conn.pragma_update(None, "synchronous", "FULL").map_err(&err)?;
    // A 256 KiB page cache per connection (SQLite's default is 2 MiB): the kernel caches the
    // file anyway, and five connections' full default caches were most of a relay's memory
    // after many documents had been loaded once (bench/MEMORY.md).
    conn.pragma_update(None, "cache_size", -256).map_err(&err)?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = classify(path);
    let supported = SCHEMA_VERSION;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(&err)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for version in found..supported {
        let tx = conn.transaction().map_err(&err)?;
        let step = usize::try_from(version)
            .map_err(|_| StoreError::Corrupt { detail: format!("negative schema version {version}") })?;
        tx.execute_batch(MIGRATIONS[step]).map_err(&err)?;
        tx.pragma_update(None, "user_version", version + 1).map_err(&err)?;
        tx.commit().map_err(&err)?;
        tracing::info!(from = version, to = version + 1, "migrated SQLite store schema");
    }
    Ok(())
}

/// Maps SQLite's result codes onto [`StoreError`]'s variants, for the database at `path`.
fn classify(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| classify_error(path, e)
}

fn classify_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => f.code,
        _ => return StoreError::Sqlite(e),
    };
    match code {
        ErrorCode::DiskFull => StoreError::Full,
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy,
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt { detail: e.to_string() },
        ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen => {
            StoreError::ReadOnly { path: path.to_path_buf(), detail: e.to_string() }
        }
        _ => StoreError::Sqlite(e),
    }
}

/// Applies one document's batch inside `tx` (the caller commits, or drops `tx` to roll back).
fn apply_batch(tx: &rusqlite::Transaction<'_>, doc: DocumentId, batch: &WriteBatch) -> rusqlite::Result<()> {
    let mut put =
        tx.prepare_cached("INSERT OR REPLACE INTO chunks (doc, kind, name, data) VALUES (?1, ?2, ?3, ?4)")?;
    for c in &batch.puts {
        put.execute(params![doc.as_bytes(), c.key.kind.as_str(), c.key.name, c.bytes])?;
    }
    let mut delete = tx.prepare_cached("DELETE FROM chunks WHERE doc = ?1 AND kind = ?2 AND name = ?3")?;
    for k in &batch.deletes {
        delete.execute(params![doc.as_bytes(), k.kind.as_str(), k.name])?;
    }
    let any_left: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM chunks WHERE doc = ?1)")?
        .query_row(params![doc.as_bytes()], |r| r.get(0))?;
    let sql = if any_left {
        "INSERT OR IGNORE INTO documents (doc) VALUES (?1)"
    } else {
        "DELETE FROM documents WHERE doc = ?1"
    };
    tx.prepare_cached(sql)?.execute(params![doc.as_bytes()])?;
    Ok(())
}

fn doc_from_row(bytes: Vec<u8>) -> Result<DocumentId, StoreError> {
    let got = bytes.len();
    <[u8; 16]>::try_from(bytes)
        .map(DocumentId::from_bytes)
        .map_err(|_| StoreError::Corrupt { detail: format!("document id of {got} bytes in the database") })
}

#[async_trait]
impl Store for SqliteStore {
    async fn load(&self, doc: DocumentId) -> Result<Vec<Chunk>, StoreError> {
        let _permit = self.inner.read_permit().await?;
        let inner = self.inner.clone();
        blocking(move || {
            inner.with_reader(|conn| {
                let err = classify(&inner.path);
                let mut stmt = conn
                    .prepare_cached("SELECT kind, name, data FROM chunks WHERE doc = ?1")
                    .map_err(&err)?;
                let rows = stmt
                    .query_map(params![doc.as_bytes()], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
                    })
                    .map_err(&err)?;
                let mut chunks = Vec::new();
                for row in rows {
                    let (kind, name, bytes) = row.map_err(&err)?;
                    let kind = ChunkKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                        detail: format!("unknown chunk kind {kind:?} for document {doc}"),
                    })?;
                    chunks.push(Chunk { key: ChunkKey { kind, name }, bytes });
                }
                Ok(chunks)
            })
        })
        .await
    }

    async fn write(&self, doc: DocumentId, batch: WriteBatch) -> Result<(), StoreError> {
        check_batch(&batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let inner = self.inner.clone();
        blocking(move || {
            let err = classify(&inner.path);
            let mut conn = inner.writer();
            // IMMEDIATE takes the write lock up front, so a busy database fails before any work.
            let tx =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(&err)?;
            apply_batch(&tx, doc, &batch).map_err(&err)?;
            // Dropping `tx` on an error above rolls the whole batch back.
            tx.commit().map_err(&err)
        })
        .await
    }

    /// Group commit: the batches the relay's writer found queued go in one transaction, so one
    /// fsync makes all of them durable. When that transaction fails because of a batch (one that
    /// does not fit, a bad chunk name), nothing of it landed and every batch is written again on
    /// its own, so only the failing ones fail. Writing again is safe: a batch's puts are
    /// content-addressed chunks and its deletes name keys. Any other failure fails them all.
    async fn write_group(&self, batches: Vec<(DocumentId, WriteBatch)>) -> Vec<Result<(), StoreError>> {
        let count = batches.len();
        let batches = if count > 1 {
            match self.write_together(batches).await {
                (_, Ok(())) => return (0..count).map(|_| Ok(())).collect(),
                // A batch that does not fit, or names a chunk badly: the others may well land.
                (back, Err(e @ (StoreError::Full | StoreError::InvalidChunkName { .. })))
                    if back.len() == count =>
                {
                    tracing::debug!(error = %e, batches = count, "group write failed; writing one by one");
                    back
                }
                // Anything else (busy, read-only, I/O, a lost task) is the store's, not a batch's:
                // retrying each would only wait that long again, once per batch.
                (_, Err(e)) => {
                    tracing::error!(error = %e, batches = count, "group write failed");
                    let mut outcomes: Vec<Result<(), StoreError>> =
                        (1..count).map(|_| Err(e.again())).collect();
                    outcomes.insert(0, Err(e));
                    return outcomes;
                }
            }
        } else {
            batches
        };
        write_each(self, batches).await
    }

    fn commits_groups(&self) -> bool {
        true
    }

    async fn list_documents(&self) -> Result<Vec<DocumentId>, StoreError> {
        let _permit = self.inner.read_permit().await?;
        let inner = self.inner.clone();
        blocking(move || {
            inner.with_reader(|conn| {
                let err = classify(&inner.path);
                let mut stmt = conn.prepare_cached("SELECT doc FROM documents ORDER BY doc").map_err(&err)?;
                let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(&err)?;
                rows.map(|row| row.map_err(&err).and_then(doc_from_row)).collect()
            })
        })
        .await
    }

    async fn document_count(&self) -> Result<u64, StoreError> {
        // No read permit: `/healthz` counts, and must answer while loads are queued.
        let inner = self.inner.clone();
        blocking(move || {
            inner.with_reader(|conn| {
                let err = classify(&inner.path);
                let n: i64 = conn
                    .prepare_cached("SELECT COUNT(*) FROM documents")
                    .and_then(|mut s| s.query_row([], |r| r.get(0)))
                    .map_err(&err)?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt { detail: format!("document count {n}") })
            })
        })
        .await
    }
}

/// Whether the database file at `path` exists and holds a chibo schema (for `init`).
pub fn schema_version(path: &Path) -> Result<Option<i64>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let err = classify(path);
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(&err)?;
    let v: Option<i64> = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).optional().map_err(&err)?;
    Ok(v.filter(|v| *v > 0))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use automerge::Automerge;

    use super::*;
    use crate::store::testing::{self, doc_id, edit};

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(dir.path().join("chibo.sqlite3")).expect("open")
    }

    #[tokio::test]
    async fn sqlite_round_trip_and_atomic_compaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::round_trip_and_compaction(&open(&dir)).await;
    }

    #[tokio::test]
    async fn sqlite_lists_and_counts_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::list_and_count(&open(&dir)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_concurrent_writers_to_different_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::concurrent_writers(Arc::new(open(&dir))).await;
    }

    #[tokio::test]
    async fn sqlite_rejects_unsafe_chunk_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::rejects_unsafe_chunk_names(&open(&dir)).await;
    }

    #[tokio::test]
    async fn sqlite_reopen_after_drop_keeps_data_and_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut doc = Automerge::new();
        let chunk = edit(&mut doc, "kept", 42);
        {
            let store = open(&dir);
            store.write(doc_id(5), WriteBatch { puts: vec![chunk], deletes: vec![] }).await.expect("write");
        }
        let path = dir.path().join("chibo.sqlite3");
        assert_eq!(schema_version(&path).expect("version"), Some(SCHEMA_VERSION));
        let store = open(&dir);
        let loaded = testing::load_doc(&store, doc_id(5)).await;
        assert_eq!(testing::value(&loaded, "kept"), Some(42));
        assert_eq!(store.document_count().await.expect("count"), 1);
    }

    #[tokio::test]
    async fn sqlite_full_database_is_a_clear_error_and_keeps_nothing_of_the_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chibo.sqlite3");
        // Create the schema, then reopen capped just above its current size.
        let pages: u32 = {
            let store = SqliteStore::open(&path).expect("open");
            let conn = store.inner.writer();
            conn.pragma_query_value(None, "page_count", |r| r.get(0)).expect("page_count")
        };
        let options = SqliteOptions { max_page_count: Some(pages + 2), ..SqliteOptions::default() };
        let store = SqliteStore::open_with(&path, options).expect("open capped");

        let mut doc = Automerge::new();
        let small = edit(&mut doc, "small", 1);
        store
            .write(doc_id(1), WriteBatch { puts: vec![small.clone()], deletes: vec![] })
            .await
            .expect("small write");

        // A batch whose first put fits and whose second does not.
        let next = edit(&mut doc, "next", 2);
        let big = Chunk { key: ChunkKey::incremental(b"big"), bytes: vec![7u8; 64 * 1024] };
        let err = store
            .write(doc_id(1), WriteBatch { puts: vec![next, big], deletes: vec![small.key.clone()] })
            .await
            .expect_err("must not fit");
        assert!(matches!(err, StoreError::Full), "{err:?}");
        assert!(err.to_string().contains("storage is full"), "{err}");
        // Nothing of the failed batch landed: not the put that fitted, not the delete.
        assert_eq!(store.load(doc_id(1)).await.expect("load"), vec![small]);
    }

    #[tokio::test]
    async fn sqlite_write_many_lands_every_document_in_one_transaction_or_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let batches: Vec<(DocumentId, WriteBatch, Automerge)> = (1..=3u8)
            .map(|n| {
                let mut doc = Automerge::new();
                let chunk = edit(&mut doc, "n", i64::from(n));
                (doc_id(n), WriteBatch { puts: vec![chunk], deletes: vec![] }, doc)
            })
            .collect();
        let empty = (doc_id(9), WriteBatch::default());
        store
            .write_many(batches.iter().map(|(id, b, _)| (*id, b.clone())).chain([empty]).collect())
            .await
            .expect("write_many");
        // Read back through a separate connection (a fresh store on the same file).
        let reopened = open(&dir);
        for (id, _, doc) in &batches {
            let loaded = testing::load_doc(&reopened, *id).await;
            assert_eq!(loaded.get_heads(), doc.get_heads(), "{id}");
        }
        assert_eq!(reopened.list_documents().await.expect("list"), vec![doc_id(1), doc_id(2), doc_id(3)]);

        // A batch that does not fit rolls back the whole call, batches before it included.
        let pages: u32 =
            store.inner.writer().pragma_query_value(None, "page_count", |r| r.get(0)).expect("pages");
        store.inner.writer().pragma_update(None, "max_page_count", pages + 2).expect("cap");
        let mut doc = Automerge::new();
        let fits = WriteBatch { puts: vec![edit(&mut doc, "x", 1)], deletes: vec![] };
        let big = Chunk { key: ChunkKey::incremental(b"big"), bytes: vec![7u8; 64 * 1024] };
        let err = store
            .write_many(vec![(doc_id(4), fits), (doc_id(5), WriteBatch { puts: vec![big], deletes: vec![] })])
            .await
            .expect_err("must not fit");
        assert!(matches!(err, StoreError::Full), "{err:?}");
        assert!(store.load(doc_id(4)).await.expect("load").is_empty());
        assert_eq!(store.document_count().await.expect("count"), 3);
    }

    #[tokio::test]
    async fn sqlite_group_write_fails_only_the_batch_that_does_not_fit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let mut docs: Vec<Automerge> = (0..3).map(|_| Automerge::new()).collect();
        let mut batch = |n: usize| WriteBatch { puts: vec![edit(&mut docs[n], "n", 1)], deletes: vec![] };
        let (first, last) = (batch(0), batch(2));
        let pages: u32 =
            store.inner.writer().pragma_query_value(None, "page_count", |r| r.get(0)).expect("pages");
        store.inner.writer().pragma_update(None, "max_page_count", pages + 2).expect("cap");
        let big = Chunk { key: ChunkKey::incremental(b"big"), bytes: vec![7u8; 64 * 1024] };
        let outcomes = store
            .write_group(vec![
                (doc_id(1), first),
                (doc_id(2), WriteBatch { puts: vec![big], deletes: vec![] }),
                (doc_id(3), last),
            ])
            .await;
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
        assert!(matches!(outcomes[1], Err(StoreError::Full)), "{outcomes:?}");
        // What was reported written is there for a fresh connection; the failed batch is not.
        let reopened = open(&dir);
        assert_eq!(testing::load_doc(&reopened, doc_id(1)).await.get_heads(), docs[0].get_heads());
        assert_eq!(testing::load_doc(&reopened, doc_id(3)).await.get_heads(), docs[2].get_heads());
        assert!(reopened.load(doc_id(2)).await.expect("load").is_empty());
    }

    #[tokio::test]
    async fn sqlite_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chibo.sqlite3");
        {
            let conn = Connection::open(&path).expect("open raw");
            conn.pragma_update(None, "user_version", 99).expect("set version");
        }
        let err = SqliteStore::open(&path).expect_err("too new");
        assert!(matches!(err, StoreError::SchemaTooNew { found: 99, supported: SCHEMA_VERSION }), "{err:?}");
    }

    #[tokio::test]
    async fn sqlite_not_a_database_is_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chibo.sqlite3");
        std::fs::write(&path, vec![0x42u8; 8192]).expect("write junk");
        let err = SqliteStore::open(&path).expect_err("junk");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn sqlite_reads_proceed_while_the_writer_is_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let mut doc = Automerge::new();
        let chunk = edit(&mut doc, "a", 1);
        store.write(doc_id(1), WriteBatch { puts: vec![chunk], deletes: vec![] }).await.expect("write");

        // Hold the writer mutex inside an open write transaction, as a slow write would.
        let held = store.clone();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            let mut conn = held.inner.writer();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
            locked_tx.send(()).expect("signal");
            release_rx.recv().expect("release");
            drop(tx);
        });
        locked_rx.recv().expect("locked");
        let chunks = tokio::time::timeout(Duration::from_secs(5), store.load(doc_id(1)))
            .await
            .expect("load must not wait for the writer")
            .expect("load");
        assert_eq!(chunks.len(), 1);
        assert_eq!(store.document_count().await.expect("count"), 1);
        release_tx.send(()).expect("release");
        writer.join().expect("writer thread");
    }

    #[tokio::test]
    async fn sqlite_open_reads_no_chunks_and_a_bad_row_surfaces_on_load() {
        // Opening touches only the schema: a damaged chunk row does not stop the relay from
        // starting, and is reported for its own document when that document is loaded.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chibo.sqlite3");
        {
            let store = SqliteStore::open(&path).expect("open");
            let mut doc = Automerge::new();
            let chunk = edit(&mut doc, "x", 1);
            store.write(doc_id(1), WriteBatch { puts: vec![chunk], deletes: vec![] }).await.expect("write");
            let conn = store.inner.writer();
            conn.execute(
                "INSERT INTO chunks (doc, kind, name, data) VALUES (?1, 'bogus', 'ab', x'00')",
                params![doc_id(2).as_bytes()],
            )
            .expect("insert bad row");
        }
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.load(doc_id(1)).await.expect("good doc").len(), 1);
        let err = store.load(doc_id(2)).await.expect_err("bad row");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }
}
