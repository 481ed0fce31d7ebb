//! The engine's hot paths, each on its own:
//!
//! - `wire`: encoding and decoding one automerge-repo `sync` frame (CBOR envelope around a sync
//!   message carrying one keystroke, and one carrying 1,000 changes);
//! - `apply`: a sync message applied to a loaded document (`receive_sync_message` as the engine
//!   calls it, then `generate_sync_message` for the answer), on a small document and on one of
//!   1,000 changes;
//! - `compaction`: a document's incremental chunks folded into one snapshot
//!   (`StoredChunks::compaction`, what the engine writes after 64 incrementals), and loading the
//!   chunks it replaces.
//!
//! `cargo bench -p chibo-shared --bench sync_paths -- --warm-up-time 1 --measurement-time 3`

use automerge::sync::{Message as SyncMessage, State, SyncDoc as _};
use automerge::transaction::Transactable as _;
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc as _};
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::storage::{Chunk, ChunkKey, StoredChunks, load_chunks};
use chibo_shared::wire::Message;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// A text document typed one character per change, by one actor.
fn typed(n: usize, actor: &[u8]) -> Automerge {
    let mut am = Automerge::new().with_actor(ActorId::from(actor));
    let mut tx = am.transaction();
    tx.put_object(ROOT, "text", ObjType::Text).ok();
    tx.commit();
    let text = am.get(ROOT, "text").ok().flatten().map(|(_, id)| id).unwrap_or(ROOT);
    for i in 0..n {
        let mut tx = am.transaction();
        let len = tx.length(&text);
        tx.splice_text(&text, len, 0, &char::from(b'a' + (i % 26) as u8).to_string()).ok();
        tx.commit();
    }
    am
}

/// The sync message a peer holding `from` sends to a peer holding `to` once they have talked
/// (the second message of a sync: it carries the changes `to` lacks).
fn message_between(from: &Automerge, to: &Automerge) -> SyncMessage {
    let (mut from, to) = (from.clone(), to.clone());
    let (mut s_from, mut s_to) = (State::new(), State::new());
    let first = to.generate_sync_message(&mut s_to);
    if let Some(m) = first {
        from.receive_sync_message(&mut s_from, m).ok();
    }
    from.generate_sync_message(&mut s_from).unwrap_or_else(|| SyncMessage {
        heads: from.get_heads(),
        need: vec![],
        have: vec![],
        changes: Vec::<Vec<u8>>::new().into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    })
}

fn frame(data: Vec<u8>) -> Message {
    Message::Sync {
        sender: PeerId::new("phone-of-a-member").unwrap_or_else(|_| unreachable!()),
        target: PeerId::new("chibo-relay").unwrap_or_else(|_| unreachable!()),
        document: DocumentId::from_canonical_path("bench/sync-paths"),
        data,
    }
}

fn wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    let doc = typed(1000, b"phone");
    let one = message_between(&doc, &doc.fork_at(doc.get_changes(&[])[999].deps()).unwrap_or_default());
    let all = message_between(&doc, &Automerge::new());
    for (name, m) in [("1_change", one), ("1000_changes", all)] {
        let msg = frame(m.encode());
        let bytes = msg.encode();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("encode_{name}"), |b| b.iter(|| msg.encode()));
        g.bench_function(format!("decode_{name}"), |b| b.iter(|| Message::decode(&bytes)));
    }
    g.finish();
}

fn apply(c: &mut Criterion) {
    let mut g = c.benchmark_group("apply");
    for n in [10, 1000] {
        let doc = typed(n, b"phone");
        let changes = doc.get_changes(&[]);
        let before = doc.fork_at(changes[changes.len() - 1].deps()).unwrap_or_default();
        let keystroke = message_between(&doc, &before);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("1_change_onto_{n}_change_doc"), |b| {
            b.iter_batched(
                || (before.clone(), State::new(), keystroke.clone()),
                |(mut am, mut state, m)| {
                    am.receive_sync_message(&mut state, m).ok();
                    am.generate_sync_message(&mut state)
                },
                BatchSize::SmallInput,
            )
        });
    }
    let doc = typed(1000, b"phone");
    let everything = message_between(&doc, &Automerge::new());
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_changes_onto_empty_doc", |b| {
        b.iter_batched(
            || (Automerge::new(), State::new(), everything.clone()),
            |(mut am, mut state, m)| {
                am.receive_sync_message(&mut state, m).ok();
                am.generate_sync_message(&mut state)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// A 1,000-change document stored as 65 incrementals (what triggers compaction).
fn stored_incrementals() -> (Automerge, Vec<Chunk>) {
    let doc = typed(1000, b"phone");
    let changes = doc.get_changes(&[]);
    let per_chunk = changes.len().div_ceil(65);
    let mut chunks = Vec::new();
    let mut heads: Vec<automerge::ChangeHash> = Vec::new();
    for group in changes.chunks(per_chunk) {
        let last = group[group.len() - 1].hash();
        let upto = doc.fork_at(&[last]).unwrap_or_default();
        let bytes = upto.save_after(&heads);
        chunks.push(Chunk { key: ChunkKey::incremental(&bytes), bytes });
        heads = vec![last];
    }
    (doc, chunks)
}

fn compaction(c: &mut Criterion) {
    let mut g = c.benchmark_group("compaction");
    let (doc, chunks) = stored_incrementals();
    let stored = StoredChunks::from_chunks(&chunks);
    assert!(stored.should_compact(), "the fixture must be one the engine compacts");
    g.throughput(Throughput::Elements(chunks.len() as u64));
    g.bench_function("snapshot_of_65_incrementals_1000_changes", |b| b.iter(|| stored.compaction(&doc)));
    g.bench_function("load_65_incrementals_1000_changes", |b| b.iter(|| load_chunks(&chunks)));
    let snapshot = stored.compaction(&doc).puts;
    g.throughput(Throughput::Elements(1));
    g.bench_function("load_snapshot_1000_changes", |b| b.iter(|| load_chunks(&snapshot)));
    g.finish();
}

criterion_group!(benches, wire, apply, compaction);
criterion_main!(benches);
