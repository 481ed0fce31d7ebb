//! A directory-backed store for the native client: `<root>/<document-id>/<kind>-<name>`.
//!
//! A chunk file is written to a temporary name, fsynced, renamed into place, and the directory
//! fsynced, so a chunk is either absent or whole. A batch's deletes run only after all its puts
//! are durable. A crash mid-batch can therefore leave extra chunks (a superset), never fewer:
//! chunks are content-addressed and loading merges them all, so a superset loads to the same
//! document. Leftover temporary files are ignored.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, ChunkKey, ChunkKind, WriteBatch};

use super::{Store, StoreError, blocking, check_batch};

/// Prefix of in-flight files; never a chunk (chunk kinds are letters).
const TEMP_PREFIX: &str = ".tmp-";

/// Distinguishes temporary files written concurrently by this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A [`Store`] in a directory tree.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Opens (creating if needed) the store rooted at `root`. Blocking. Reads no document.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| StoreError::from_io("create", &root, e))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn doc_dir(&self, doc: DocumentId) -> PathBuf {
        self.root.join(doc.to_string())
    }
}

fn file_name(key: &ChunkKey) -> String {
    format!("{}-{}", key.kind.as_str(), key.name)
}

/// The chunk key a file name stands for; `None` for temporary and foreign files.
fn parse_file_name(name: &OsStr) -> Option<ChunkKey> {
    let name = name.to_str()?;
    let (kind, rest) = name.split_once('-')?;
    let kind = ChunkKind::parse(kind)?;
    super::check_chunk_name(rest).ok()?;
    Some(ChunkKey { kind, name: rest.to_owned() })
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::from_io("fsync directory", dir, e))
}

/// Writes `bytes` to `dir/name` atomically and durably (except the final directory fsync, which
/// the caller does once per batch).
fn put_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{TEMP_PREFIX}{name}.{}.{n}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| StoreError::from_io("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| StoreError::from_io("write", &tmp, e))?;
        f.sync_all().map_err(|e| StoreError::from_io("fsync", &tmp, e))?;
        let dest = dir.join(name);
        fs::rename(&tmp, &dest).map_err(|e| StoreError::from_io("rename into", &dest, e))
    })();
    if result.is_err() {
        // Best effort: a leftover is ignored on load anyway.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_batch(root: &Path, dir: &Path, batch: &WriteBatch) -> Result<(), StoreError> {
    if !batch.puts.is_empty() {
        match fs::create_dir(dir) {
            Ok(()) => sync_dir(root)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::from_io("create", dir, e)),
        }
        for c in &batch.puts {
            put_file(dir, &file_name(&c.key), &c.bytes)?;
        }
        sync_dir(dir)?;
    }
    if !batch.deletes.is_empty() {
        for k in &batch.deletes {
            let path = dir.join(file_name(k));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::from_io("delete", &path, e)),
            }
        }
        match File::open(dir).and_then(|d| d.sync_all()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::from_io("fsync directory", dir, e)),
        }
    }
    Ok(())
}

/// Chunk files in `dir`; empty if the directory does not exist.
fn chunk_files(dir: &Path) -> Result<Vec<(ChunkKey, PathBuf)>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::from_io("list", dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::from_io("list", dir, e))?;
        let name = entry.file_name();
        match parse_file_name(&name) {
            Some(key) => files.push((key, entry.path())),
            None if name.to_string_lossy().starts_with(TEMP_PREFIX) => {}
            None => tracing::warn!(path = %entry.path().display(), "ignoring a file that is not a chunk"),
        }
    }
    Ok(files)
}

fn load(dir: &Path) -> Result<Vec<Chunk>, StoreError> {
    let mut chunks = Vec::new();
    for (key, path) in chunk_files(dir)? {
        match fs::read(&path) {
            Ok(bytes) => chunks.push(Chunk { key, bytes }),
            // Deleted by a concurrent compaction, whose snapshot was durable first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::from_io("read", &path, e)),
        }
    }
    Ok(chunks)
}

fn list(root: &Path) -> Result<Vec<DocumentId>, StoreError> {
    let entries = fs::read_dir(root).map_err(|e| StoreError::from_io("list", root, e))?;
    let mut docs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::from_io("list", root, e))?;
        let Some(doc) = entry.file_name().to_str().and_then(|s| s.parse::<DocumentId>().ok()) else {
            continue;
        };
        if !chunk_files(&entry.path())?.is_empty() {
            docs.push(doc);
        }
    }
    docs.sort();
    Ok(docs)
}

#[async_trait]
impl Store for FsStore {
    async fn load(&self, doc: DocumentId) -> Result<Vec<Chunk>, StoreError> {
        let dir = self.doc_dir(doc);
        blocking(move || load(&dir)).await
    }

    async fn write(&self, doc: DocumentId, batch: WriteBatch) -> Result<(), StoreError> {
        check_batch(&batch)?;
        let (root, dir) = (self.root.clone(), self.doc_dir(doc));
        blocking(move || write_batch(&root, &dir, &batch)).await
    }

    async fn list_documents(&self) -> Result<Vec<DocumentId>, StoreError> {
        let root = self.root.clone();
        blocking(move || list(&root)).await
    }

    async fn document_count(&self) -> Result<u64, StoreError> {
        Ok(self.list_documents().await?.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use automerge::Automerge;

    use super::*;
    use crate::store::testing::{self, doc_id, edit};

    #[tokio::test]
    async fn fs_round_trip_and_atomic_compaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::round_trip_and_compaction(&FsStore::open(dir.path()).expect("open")).await;
    }

    #[tokio::test]
    async fn fs_lists_and_counts_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::list_and_count(&FsStore::open(dir.path()).expect("open")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fs_concurrent_writers_to_different_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::concurrent_writers(Arc::new(FsStore::open(dir.path()).expect("open"))).await;
    }

    #[tokio::test]
    async fn fs_rejects_unsafe_chunk_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::rejects_unsafe_chunk_names(&FsStore::open(dir.path()).expect("open")).await;
    }

    #[tokio::test]
    async fn fs_reopen_keeps_data_and_ignores_leftover_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut doc = Automerge::new();
        let chunk = edit(&mut doc, "kept", 42);
        {
            let store = FsStore::open(dir.path()).expect("open");
            store.write(doc_id(5), WriteBatch { puts: vec![chunk], deletes: vec![] }).await.expect("write");
        }
        // A crash mid-write leaves a temporary file behind.
        let doc_dir = dir.path().join(doc_id(5).to_string());
        fs::write(doc_dir.join(format!("{TEMP_PREFIX}incremental-abcd.1.1")), b"half a chunk")
            .expect("leftover");

        let store = FsStore::open(dir.path()).expect("reopen");
        assert_eq!(store.load(doc_id(5)).await.expect("load").len(), 1);
        let loaded = testing::load_doc(&store, doc_id(5)).await;
        assert_eq!(testing::value(&loaded, "kept"), Some(42));
        assert_eq!(store.list_documents().await.expect("list"), vec![doc_id(5)]);
    }

    #[tokio::test]
    async fn fs_write_to_an_unwritable_location_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsStore::open(dir.path()).expect("open");
        // The document's directory is taken by a regular file: nothing can be written there.
        // (Permission bits would not stop a root test runner; this does.)
        fs::write(dir.path().join(doc_id(1).to_string()), b"not a directory").expect("blocker");
        let mut doc = Automerge::new();
        let chunk = edit(&mut doc, "a", 1);
        let err = store
            .write(doc_id(1), WriteBatch { puts: vec![chunk], deletes: vec![] })
            .await
            .expect_err("cannot write under a file");
        assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(&doc_id(1).to_string()), "names the path: {err}");
    }

    #[test]
    fn enospc_and_erofs_map_to_full_and_read_only() {
        let full = StoreError::from_io("write", "/x", io::Error::from(io::ErrorKind::StorageFull));
        assert!(matches!(full, StoreError::Full));
        let ro = StoreError::from_io("write", "/x", io::Error::from(io::ErrorKind::ReadOnlyFilesystem));
        assert!(matches!(ro, StoreError::ReadOnly { .. }));
    }

    #[test]
    fn file_names_round_trip_and_foreign_names_are_not_chunks() {
        let key = ChunkKey::incremental(b"x");
        assert_eq!(parse_file_name(OsStr::new(&file_name(&key))), Some(key));
        for foreign in [".tmp-snapshot-ab.1.2", "snapshot", "other-ab", "snapshot-a/b", ".DS_Store"] {
            assert_eq!(parse_file_name(OsStr::new(foreign)), None, "{foreign}");
        }
    }
}
