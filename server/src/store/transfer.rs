//! Moving whole documents in and out of a [`Store`]: `<document-id>.automerge` files, each a full
//! automerge `save()`. Used by the `export`, `import` and `init --demo` commands.

use std::io::Write;
use std::path::{Path, PathBuf};

use automerge::Automerge;
use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, ChunkKey, StoredChunks, load_chunks};

use super::{Store, StoreError};

/// File extension of an exported document.
pub const EXTENSION: &str = "automerge";

/// Why an export or import stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("cannot {op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },

    #[error("{path} is not a valid automerge document: {source}")]
    InvalidDocument { path: PathBuf, source: Box<automerge::AutomergeError> },

    #[error("cannot merge document {document} into what is stored: {source}")]
    Merge { document: DocumentId, source: Box<automerge::AutomergeError> },

    #[error("stored document {document} has {count} chunk(s) that do not load (first: {first})")]
    DamagedDocument { document: DocumentId, count: usize, first: String },
}

/// What an export or import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TransferReport {
    /// Documents written (to files on export, to the store on import).
    pub documents: usize,
    /// Files skipped on import because their name is not `<document-id>.automerge`.
    pub skipped: Vec<PathBuf>,
}

/// Writes every stored document to `out` as `<document-id>.automerge`. A document with chunks
/// that do not load stops the export (exporting what loaded would silently drop data).
pub async fn export_all(store: &dyn Store, out: &Path) -> Result<TransferReport, TransferError> {
    std::fs::create_dir_all(out).map_err(|source| TransferError::Io {
        op: "create",
        path: out.into(),
        source,
    })?;
    let mut report = TransferReport::default();
    for document in store.list_documents().await? {
        let doc = load_whole(store, document).await?;
        let path = out.join(format!("{document}.{EXTENSION}"));
        write_file_atomically(&path, &doc.save())?;
        report.documents += 1;
    }
    tracing::info!(documents = report.documents, out = %out.display(), "exported documents");
    Ok(report)
}

/// Reads every `<document-id>.automerge` file in `dir` and merges it into the store. All files
/// are validated before anything is written.
pub async fn import_dir(store: &dyn Store, dir: &Path) -> Result<TransferReport, TransferError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TransferError::Io {
        op: "list",
        path: dir.into(),
        source,
    })?;
    let mut report = TransferReport::default();
    let mut documents = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| TransferError::Io { op: "list", path: dir.into(), source })?.path();
        let id = path
            .extension()
            .filter(|ext| *ext == EXTENSION)
            .and_then(|_| path.file_stem()?.to_str()?.parse::<DocumentId>().ok());
        let Some(id) = id else {
            tracing::warn!(path = %path.display(), "skipping: not named <document-id>.{EXTENSION}");
            report.skipped.push(path);
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|source| TransferError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?;
        let strict = automerge::LoadOptions::new().on_partial_load(automerge::OnPartialLoad::Error);
        let doc = Automerge::load_with_options(&bytes, strict).map_err(|source| {
            TransferError::InvalidDocument { path: path.clone(), source: Box::new(source) }
        })?;
        documents.push((id, doc));
    }
    report.documents = store_documents(store, documents).await?;
    tracing::info!(documents = report.documents, from = %dir.display(), "imported documents");
    Ok(report)
}

/// Merges each document into what the store holds for its id, leaving one snapshot per document.
/// Returns how many documents were written.
pub async fn store_documents(
    store: &dyn Store,
    documents: impl IntoIterator<Item = (DocumentId, Automerge)>,
) -> Result<usize, TransferError> {
    let mut written = 0;
    for (id, incoming) in documents {
        let chunks = store.load(id).await?;
        let (mut merged, bad) = load_chunks(&chunks);
        if let Some((key, e)) = bad.first() {
            return Err(TransferError::DamagedDocument {
                document: id,
                count: bad.len(),
                first: format!("{key}: {e}"),
            });
        }
        let mut incoming = incoming;
        merged
            .merge(&mut incoming)
            .map_err(|source| TransferError::Merge { document: id, source: Box::new(source) })?;
        // One snapshot replacing every chunk that was there, atomically.
        let batch = StoredChunks::from_chunks(&chunks).compaction(&merged);
        store.write(id, batch).await?;
        written += 1;
    }
    Ok(written)
}

async fn load_whole(store: &dyn Store, document: DocumentId) -> Result<Automerge, TransferError> {
    let chunks = store.load(document).await?;
    let (doc, bad) = load_chunks(&chunks);
    match bad.first() {
        None => Ok(doc),
        Some((key, e)) => {
            Err(TransferError::DamagedDocument { document, count: bad.len(), first: format!("{key}: {e}") })
        }
    }
}

fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), TransferError> {
    let io = |op, source| TransferError::Io { op, path: path.into(), source };
    let tmp = path.with_extension(format!("{EXTENSION}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(bytes).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("fsync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename", e))
}

/// A snapshot chunk holding all of `doc`.
pub fn snapshot_chunk(doc: &Automerge) -> Chunk {
    Chunk { key: ChunkKey::snapshot(&doc.get_heads()), bytes: doc.save() }
}

#[cfg(test)]
mod tests {
    use chibo_shared::storage::WriteBatch;

    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::testing::{doc_id, edit, load_doc, value};

    #[tokio::test]
    async fn export_then_import_into_an_empty_store_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = SqliteStore::open(dir.path().join("a.sqlite3")).expect("open");
        let mut docs = Vec::new();
        for n in 1..=3u8 {
            let mut doc = Automerge::new();
            for i in 0..3 {
                let chunk = edit(&mut doc, &format!("k{i}"), i64::from(n));
                source
                    .write(doc_id(n), WriteBatch { puts: vec![chunk], deletes: vec![] })
                    .await
                    .expect("write");
            }
            docs.push(doc);
        }
        let out = dir.path().join("export");
        assert_eq!(export_all(&source, &out).await.expect("export").documents, 3);
        std::fs::write(out.join("README.txt"), "not a document").expect("foreign file");

        let target = SqliteStore::open(dir.path().join("b.sqlite3")).expect("open");
        let report = import_dir(&target, &out).await.expect("import");
        assert_eq!(report.documents, 3);
        assert_eq!(report.skipped, vec![out.join("README.txt")]);
        for (n, doc) in (1..=3u8).zip(&docs) {
            let chunks = target.load(doc_id(n)).await.expect("load");
            assert_eq!(chunks.len(), 1, "stored as one snapshot");
            assert_eq!(load_doc(&target, doc_id(n)).await.get_heads(), doc.get_heads());
        }
    }

    #[tokio::test]
    async fn import_merges_with_what_is_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("s.sqlite3")).expect("open");
        let mut base = Automerge::new();
        edit(&mut base, "shared", 1);
        let mut theirs = base.fork();
        edit(&mut theirs, "theirs", 2);
        let mut ours = base;
        let chunk = edit(&mut ours, "ours", 3);
        store
            .write(doc_id(1), WriteBatch { puts: vec![snapshot_chunk(&ours), chunk], deletes: vec![] })
            .await
            .expect("write");

        let files = dir.path().join("in");
        std::fs::create_dir(&files).expect("mkdir");
        std::fs::write(files.join(format!("{}.automerge", doc_id(1))), theirs.save()).expect("file");
        import_dir(&store, &files).await.expect("import");

        let merged = load_doc(&store, doc_id(1)).await;
        assert_eq!((value(&merged, "ours"), value(&merged, "theirs")), (Some(3), Some(2)));
        assert_eq!(store.load(doc_id(1)).await.expect("load").len(), 1, "compacted to one snapshot");
    }

    #[tokio::test]
    async fn import_refuses_an_invalid_file_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("s.sqlite3")).expect("open");
        let files = dir.path().join("in");
        std::fs::create_dir(&files).expect("mkdir");
        let mut good = Automerge::new();
        edit(&mut good, "a", 1);
        std::fs::write(files.join(format!("{}.automerge", doc_id(1))), good.save()).expect("good");
        let mut bad = good.save();
        bad.truncate(bad.len() - 3);
        std::fs::write(files.join(format!("{}.automerge", doc_id(2))), bad).expect("bad");

        let err = import_dir(&store, &files).await.expect_err("invalid file");
        assert!(matches!(err, TransferError::InvalidDocument { .. }), "{err:?}");
        assert_eq!(store.document_count().await.expect("count"), 0);
    }

    #[tokio::test]
    async fn demo_branch_documents_store_and_export() {
        // What `init --demo` does, then `export`.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("s.sqlite3")).expect("open");
        let demo = chibo_shared::schema::demo::demo_branch().documents;
        let expected: Vec<_> = demo.iter().map(|(id, doc)| (*id, doc.get_heads())).collect();
        assert_eq!(store_documents(&store, demo).await.expect("store"), expected.len());
        assert_eq!(store.document_count().await.expect("count"), expected.len() as u64);
        for (id, heads) in &expected {
            assert_eq!(&load_doc(&store, *id).await.get_heads(), heads, "{id}");
        }
        let out = dir.path().join("out");
        assert_eq!(export_all(&store, &out).await.expect("export").documents, expected.len());
    }
}
