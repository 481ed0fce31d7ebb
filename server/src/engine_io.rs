//! Store IO for an engine run on tokio, shared by the relay and the native client: loads run
//! concurrently, writes run one at a time in the order the engine asked for them, and each result
//! goes back to the engine as an [`Input`] through the host's `report` callback.

use std::sync::Arc;

use chibo_shared::ids::DocumentId;
use chibo_shared::storage::WriteBatch;
use chibo_shared::sync::{Effect, Input, WriteId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::{Store, StoreError};

/// How results reach the engine's task.
type Report<P> = Arc<dyn Fn(Input<P>) + Send + Sync>;

/// Carries out an engine's `Load` and `Write` effects against a [`Store`].
pub(crate) struct StoreIo<P> {
    store: Arc<dyn Store>,
    writes: mpsc::UnboundedSender<(DocumentId, WriteId, WriteBatch)>,
    report: Report<P>,
}

impl<P: Send + 'static> StoreIo<P> {
    /// Starts the writer task. It ends once the `StoreIo` is dropped and every queued write is
    /// done, so dropping it on shutdown still finishes what the engine asked for.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        report: impl Fn(Input<P>) + Send + Sync + 'static,
    ) -> (Self, JoinHandle<()>) {
        let report: Report<P> = Arc::new(report);
        let (writes, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(store.clone(), rx, report.clone()));
        (Self { store, writes, report }, writer)
    }

    /// Carries out `effect` if it is storage IO; hands any other effect back.
    pub(crate) fn carry_out(&self, effect: Effect) -> Option<Effect> {
        match effect {
            Effect::Load { doc } => {
                let (store, report) = (self.store.clone(), self.report.clone());
                tokio::spawn(async move {
                    let input = match store.load(doc).await {
                        Ok(chunks) => Input::Loaded { doc, chunks },
                        Err(e) => {
                            tracing::error!(%doc, error = %e, "loading a document failed");
                            Input::LoadFailed { doc, error: e.to_string() }
                        }
                    };
                    report(input);
                });
                None
            }
            Effect::Write { doc, write, batch } => {
                let _ = self.writes.send((doc, write, batch));
                None
            }
            other => Some(other),
        }
    }
}

/// At most this many queued writes go to the store as one group.
const MAX_GROUP: usize = 256;
/// …and at most about this many bytes of chunks (one larger write still goes alone).
const MAX_GROUP_BYTES: usize = 8 << 20;

/// Carries out writes in order until every sender is gone, reporting each once durable.
///
/// Group commit: the writes that queued up while the previous group was being written go to the
/// store together ([`Store::write_group`]: one transaction and one fsync on SQLite), still in the
/// order the engine asked for them, if the store commits groups at once
/// ([`Store::commits_groups`]); else one at a time. Under load the queue grows while the disk syncs, so groups
/// grow with the load; a lone write goes alone, at once.
async fn write_loop<P>(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<(DocumentId, WriteId, WriteBatch)>,
    report: Report<P>,
) {
    let max_group = if store.commits_groups() { MAX_GROUP } else { 1 };
    while let Some(first) = rx.recv().await {
        let mut bytes = batch_bytes(&first.2);
        let mut group = vec![first];
        while group.len() < max_group && bytes < MAX_GROUP_BYTES {
            let Ok(next) = rx.try_recv() else { break };
            bytes += batch_bytes(&next.2);
            group.push(next);
        }
        let mut ids = Vec::with_capacity(group.len());
        let mut batches = Vec::with_capacity(group.len());
        for (doc, write, batch) in group {
            ids.push((doc, write));
            batches.push((doc, batch));
        }
        let mut outcomes = store.write_group(batches).await.into_iter();
        for (doc, write) in ids {
            // A write the store gave no outcome for is not known to be durable: failed.
            let outcome = outcomes.next().unwrap_or_else(|| {
                Err(StoreError::Unavailable { detail: "the store reported no outcome for this write".into() })
            });
            report(match outcome {
                Ok(()) => Input::Written { doc, write },
                Err(e) => {
                    tracing::error!(%doc, error = %e, "write failed");
                    Input::WriteFailed { doc, write, error: e.to_string() }
                }
            });
        }
    }
}

fn batch_bytes(batch: &WriteBatch) -> usize {
    batch.puts.iter().map(|c| c.bytes.len()).sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use automerge::Automerge;
    use chibo_shared::storage::{Chunk, StoredChunks};

    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::testing::{doc_id, edit, load_doc};

    /// A real SQLite store that records the size of every group it is given.
    struct Recording {
        inner: SqliteStore,
        groups: Mutex<Vec<usize>>,
        /// What `commits_groups` says.
        grouping: bool,
    }

    #[async_trait]
    impl Store for Recording {
        async fn load(&self, doc: DocumentId) -> Result<Vec<Chunk>, StoreError> {
            self.inner.load(doc).await
        }
        async fn write(&self, doc: DocumentId, batch: WriteBatch) -> Result<(), StoreError> {
            self.inner.write(doc, batch).await
        }
        async fn write_group(&self, batches: Vec<(DocumentId, WriteBatch)>) -> Vec<Result<(), StoreError>> {
            self.groups.lock().expect("groups").push(batches.len());
            self.inner.write_group(batches).await
        }
        fn commits_groups(&self) -> bool {
            self.grouping
        }
        async fn list_documents(&self) -> Result<Vec<DocumentId>, StoreError> {
            self.inner.list_documents().await
        }
        async fn document_count(&self) -> Result<u64, StoreError> {
            self.inner.document_count().await
        }
    }

    #[tokio::test]
    async fn writes_queued_together_commit_as_one_group_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(dir.path().join("chibo.sqlite3")).expect("open");
        let store =
            Arc::new(Recording { inner: sqlite.clone(), groups: Mutex::new(Vec::new()), grouping: true });
        let (tx, mut rx) = mpsc::unbounded_channel::<Input<()>>();
        let (io, writer) = StoreIo::start(store.clone(), move |input| {
            let _ = tx.send(input);
        });

        // Document 1: an edit, then a compaction that deletes that edit's chunk (order matters).
        let mut one = Automerge::new();
        let mut stored = StoredChunks::default();
        let first = WriteBatch { puts: vec![edit(&mut one, "a", 1)], deletes: vec![] };
        stored.apply(&first);
        let compaction = stored.compaction(&one);
        assert!(!compaction.deletes.is_empty(), "the compaction must delete the edit's chunk");
        // Documents 2 and 3: one edit each.
        let mut others: Vec<Automerge> = (0..2).map(|_| Automerge::new()).collect();
        let mut writes = vec![(doc_id(1), first), (doc_id(1), compaction)];
        for (n, doc) in others.iter_mut().enumerate() {
            writes.push((doc_id(2 + n as u8), WriteBatch { puts: vec![edit(doc, "b", 2)], deletes: vec![] }));
        }
        // All four are queued before the writer task first runs (current-thread runtime).
        for (i, (doc, batch)) in writes.into_iter().enumerate() {
            assert!(io.carry_out(Effect::Write { doc, write: WriteId(i as u64), batch }).is_none());
        }
        let mut reported = Vec::new();
        while reported.len() < 4 {
            match rx.recv().await.expect("a report") {
                Input::Written { doc, write } => reported.push((doc, write)),
                other => panic!("unexpected {other:?}"),
            }
        }
        let order: Vec<u64> = reported.iter().map(|(_, w)| w.0).collect();
        assert_eq!(order, vec![0, 1, 2, 3], "reported in the order asked for");
        assert_eq!(*store.groups.lock().expect("groups"), vec![4], "one group, one commit");

        // Durable and applied in order: a fresh connection sees the compacted document only.
        let reopened = SqliteStore::open(dir.path().join("chibo.sqlite3")).expect("reopen");
        let chunks = reopened.load(doc_id(1)).await.expect("load");
        assert_eq!(chunks.len(), 1, "only the snapshot: the edit's chunk was deleted after it was put");
        assert_eq!(load_doc(&reopened, doc_id(1)).await.get_heads(), one.get_heads());
        for (n, doc) in others.iter().enumerate() {
            assert_eq!(load_doc(&reopened, doc_id(2 + n as u8)).await.get_heads(), doc.get_heads());
        }

        // A lone write later goes alone, at once.
        let mut one_more = Automerge::new();
        let batch = WriteBatch { puts: vec![edit(&mut one_more, "c", 3)], deletes: vec![] };
        assert!(io.carry_out(Effect::Write { doc: doc_id(9), write: WriteId(4), batch }).is_none());
        assert!(matches!(rx.recv().await, Some(Input::Written { write: WriteId(4), .. })));
        assert_eq!(*store.groups.lock().expect("groups"), vec![4, 1]);
        drop(io);
        writer.await.expect("writer ends once the StoreIo is gone");
    }

    #[tokio::test]
    async fn a_store_that_does_not_commit_groups_gets_writes_one_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(dir.path().join("chibo.sqlite3")).expect("open");
        let store = Arc::new(Recording { inner: sqlite, groups: Mutex::new(Vec::new()), grouping: false });
        let (tx, mut rx) = mpsc::unbounded_channel::<Input<()>>();
        let (io, writer) = StoreIo::start(store.clone(), move |input| {
            let _ = tx.send(input);
        });
        for n in 0..3u8 {
            let mut doc = Automerge::new();
            let batch = WriteBatch { puts: vec![edit(&mut doc, "n", 1)], deletes: vec![] };
            assert!(
                io.carry_out(Effect::Write { doc: doc_id(n), write: WriteId(u64::from(n)), batch }).is_none()
            );
        }
        for n in 0..3u64 {
            assert!(matches!(rx.recv().await, Some(Input::Written { write, .. }) if write == WriteId(n)));
        }
        assert_eq!(*store.groups.lock().expect("groups"), vec![1, 1, 1]);
        drop(io);
        writer.await.expect("writer ends");
    }
}
