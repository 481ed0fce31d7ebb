//! The chunk layout every store uses (relay SQLite/PostgreSQL, native files, browser IndexedDB).
//!
//! Like automerge-repo, a document is stored as chunks under `(document, kind, name)`:
//! snapshots (a full `save()`, named by the hash of its heads) and incrementals (new changes,
//! named by the hash of their bytes). Loading concatenates every chunk and hands it to automerge;
//! compaction writes one snapshot and deletes the chunks it covers, in one atomic batch. Backends
//! are plain key-value stores and know nothing of automerge: all decisions are made here.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ids::DocumentId;

/// The two kinds of chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChunkKind {
    Snapshot,
    Incremental,
}

impl ChunkKind {
    /// The name stored in a backend's `kind` column or key segment.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Snapshot => "snapshot",
            ChunkKind::Incremental => "incremental",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "snapshot" => Some(ChunkKind::Snapshot),
            "incremental" => Some(ChunkKind::Incremental),
            _ => None,
        }
    }
}

/// Where a chunk lives within its document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkKey {
    pub kind: ChunkKind,
    /// Lowercase hex SHA-256 (see the module docs for what is hashed).
    pub name: String,
}

impl ChunkKey {
    pub fn incremental(bytes: &[u8]) -> Self {
        Self { kind: ChunkKind::Incremental, name: hex::encode(Sha256::digest(bytes)) }
    }

    pub fn snapshot(heads: &[automerge::ChangeHash]) -> Self {
        let mut sorted: Vec<_> = heads.to_vec();
        sorted.sort();
        let mut h = Sha256::new();
        for head in &sorted {
            h.update(head.0);
        }
        Self { kind: ChunkKind::Snapshot, name: hex::encode(h.finalize()) }
    }
}

impl fmt::Display for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

/// One stored chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub key: ChunkKey,
    pub bytes: Vec<u8>,
}

/// An atomic write to one document: all puts and deletes land, or none do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub puts: Vec<Chunk>,
    pub deletes: Vec<ChunkKey>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty()
    }

    pub fn put_bytes(&self) -> usize {
        self.puts.iter().map(|c| c.bytes.len()).sum()
    }
}

/// A store operation as an effect of the engine, addressed to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocWrite {
    pub document: DocumentId,
    pub batch: WriteBatch,
}

/// Rebuilds a document from its chunks in any order. Chunks that fail to load are reported, not
/// silently dropped, so a caller can quarantine them rather than lose what else loaded.
pub fn load_chunks(chunks: &[Chunk]) -> (automerge::Automerge, Vec<(ChunkKey, automerge::AutomergeError)>) {
    let mut doc = automerge::Automerge::new();
    let mut bad = Vec::new();
    // Snapshots first: incrementals usually depend on them, and automerge queues changes whose
    // dependencies are missing anyway, so order only affects speed.
    let mut ordered: Vec<&Chunk> = chunks.iter().collect();
    ordered.sort_by_key(|c| c.key.kind);
    for c in ordered {
        if let Err(e) = load_chunk_into(&mut doc, c) {
            bad.push((c.key.clone(), e));
        }
    }
    (doc, bad)
}

/// Applies one chunk to `doc`, or nothing of it if it does not parse whole.
pub fn load_chunk_into(
    doc: &mut automerge::Automerge,
    chunk: &Chunk,
) -> Result<(), automerge::AutomergeError> {
    // `load_incremental` skips a damaged tail silently, so each chunk is parsed strictly first; a
    // chunk that does not parse whole is reported and left out.
    let strict = automerge::LoadOptions::new()
        .on_partial_load(automerge::OnPartialLoad::Error)
        .verification_mode(automerge::VerificationMode::DontCheck);
    match automerge::Automerge::load_with_options(&chunk.bytes, strict) {
        // Parsed whole; its dependencies are in other chunks.
        Err(automerge::AutomergeError::MissingDeps) | Ok(_) => {}
        Err(e) => return Err(e),
    }
    doc.load_incremental(&chunk.bytes).map(drop)
}

/// When to fold incrementals into a snapshot: once they outweigh the snapshot or number more
/// than [`COMPACT_AFTER_CHUNKS`].
pub const COMPACT_AFTER_CHUNKS: usize = 64;

/// What the engine knows about a document's stored chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredChunks {
    pub snapshots: Vec<(ChunkKey, usize)>,
    pub incrementals: Vec<(ChunkKey, usize)>,
}

impl StoredChunks {
    pub fn from_chunks(chunks: &[Chunk]) -> Self {
        let mut s = Self::default();
        for c in chunks {
            s.record(&c.key, c.bytes.len());
        }
        s
    }

    pub fn record(&mut self, key: &ChunkKey, len: usize) {
        let list = match key.kind {
            ChunkKind::Snapshot => &mut self.snapshots,
            ChunkKind::Incremental => &mut self.incrementals,
        };
        if !list.iter().any(|(k, _)| k == key) {
            list.push((key.clone(), len));
        }
    }

    /// Whether `key` is recorded here.
    pub fn knows(&self, key: &ChunkKey) -> bool {
        self.snapshots.iter().chain(&self.incrementals).any(|(k, _)| k == key)
    }

    pub fn forget(&mut self, keys: &[ChunkKey]) {
        self.snapshots.retain(|(k, _)| !keys.contains(k));
        self.incrementals.retain(|(k, _)| !keys.contains(k));
    }

    pub fn apply(&mut self, batch: &WriteBatch) {
        self.forget(&batch.deletes);
        for c in &batch.puts {
            self.record(&c.key, c.bytes.len());
        }
    }

    pub fn should_compact(&self) -> bool {
        let snap: usize = self.snapshots.iter().map(|(_, n)| n).sum();
        let inc: usize = self.incrementals.iter().map(|(_, n)| n).sum();
        self.snapshots.len() > 1
            || self.incrementals.len() > COMPACT_AFTER_CHUNKS
            || (inc > snap && inc > 1024)
    }

    /// A batch that writes `doc` as one snapshot and deletes every other chunk known here.
    pub fn compaction(&self, doc: &automerge::Automerge) -> WriteBatch {
        let key = ChunkKey::snapshot(&doc.get_heads());
        let deletes = self
            .snapshots
            .iter()
            .chain(&self.incrementals)
            .map(|(k, _)| k.clone())
            .filter(|k| *k != key)
            .collect();
        WriteBatch { puts: vec![Chunk { key, bytes: doc.save() }], deletes }
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;

    use super::*;

    #[test]
    fn chunks_reload_in_any_order_and_compaction_covers_them() {
        let mut doc = automerge::Automerge::new();
        let mut stored = StoredChunks::default();
        let mut all = Vec::new();
        for i in 0..70 {
            let before = doc.get_heads();
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, format!("k{i}"), i as i64).expect("put");
            tx.commit();
            let bytes = doc.save_after(&before);
            let c = Chunk { key: ChunkKey::incremental(&bytes), bytes };
            stored.record(&c.key, c.bytes.len());
            all.push(c);
        }
        all.reverse();
        let (loaded, bad) = load_chunks(&all);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(loaded.get_heads(), doc.get_heads());
        assert!(stored.should_compact());
        let batch = stored.compaction(&doc);
        assert_eq!(batch.deletes.len(), 70);
        stored.apply(&batch);
        assert_eq!((stored.snapshots.len(), stored.incrementals.len()), (1, 0));
        assert!(!stored.should_compact());
        let (reloaded, _) = load_chunks(&batch.puts);
        assert_eq!(reloaded.get_heads(), doc.get_heads());
    }

    #[test]
    fn a_corrupt_chunk_is_reported_and_the_rest_still_loads() {
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "a", 1).expect("put");
        tx.commit();
        let good = doc.save();
        let chunks = vec![
            Chunk { key: ChunkKey::snapshot(&doc.get_heads()), bytes: good },
            Chunk { key: ChunkKey::incremental(b"junk"), bytes: b"junk-not-automerge".to_vec() },
        ];
        let (loaded, bad) = load_chunks(&chunks);
        assert_eq!(loaded.get_heads(), doc.get_heads());
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0.kind, ChunkKind::Incremental);
    }
}
