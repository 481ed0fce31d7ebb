//! The IndexedDB chunk store in a real browser (headless Chromium via wasm-bindgen-test-runner):
//! documents written through `IdbStore` come back, after the database is closed and reopened,
//! as the same automerge history, computed independently here.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ROOT, ReadDoc};
use chibo_app::storage::IdbStore;
use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, ChunkKey, ChunkKind, StoredChunks, WriteBatch, load_chunks};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A document id no other test (or earlier run in the same profile) uses.
fn fresh_doc(name: &str) -> DocumentId {
    DocumentId::from_canonical_path(&format!("test/app-storage/{name}/{}", js_sys::Math::random()))
}

fn actor(byte: u8) -> ActorId {
    ActorId::from([byte; 16].as_slice())
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

fn incremental(bytes: Vec<u8>) -> Chunk {
    Chunk { key: ChunkKey::incremental(&bytes), bytes }
}

fn puts(chunks: Vec<Chunk>) -> WriteBatch {
    WriteBatch { puts: chunks, deletes: Vec::new() }
}

fn text_of(doc: &automerge::Automerge) -> String {
    let (_, text) = doc.get(ROOT, "minutes").unwrap().expect("minutes exists");
    doc.text(&text).unwrap()
}

async fn reopen(store: IdbStore) -> IdbStore {
    store.close();
    IdbStore::open().await.unwrap()
}

#[wasm_bindgen_test]
async fn a_document_survives_closing_and_reopening_the_database() {
    let id = fresh_doc("reopen");
    let mut doc = AutoCommit::new().with_actor(actor(1));
    doc.put(ROOT, "title", "Nghị quyết chi bộ").unwrap();
    let minutes = doc.put_object(ROOT, "minutes", ObjType::Text).unwrap();
    doc.splice_text(&minutes, 0, 0, "Biên bản họp").unwrap();
    let snapshot_heads = doc.get_heads();
    let snapshot = Chunk { key: ChunkKey::snapshot(&snapshot_heads), bytes: doc.save() };
    let end = doc.length(&minutes);
    doc.splice_text(&minutes, end, 0, " tháng 5").unwrap();
    let later = incremental(doc.save_after(&snapshot_heads));
    let expected_heads = sorted(doc.get_heads());

    let store = IdbStore::open().await.unwrap();
    store.write(id, &puts(vec![snapshot])).await.unwrap();
    store.write(id, &puts(vec![later])).await.unwrap();
    let store = reopen(store).await;

    let chunks = store.load(id).await.unwrap();
    let kinds: Vec<_> = chunks.iter().map(|c| c.key.kind).collect();
    assert_eq!(kinds, [ChunkKind::Incremental, ChunkKind::Snapshot], "key order: kind, then name");
    let (loaded, bad) = load_chunks(&chunks);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(sorted(loaded.get_heads()), expected_heads);
    assert_eq!(text_of(&loaded), "Biên bản họp tháng 5");
    assert!(store.list_documents().await.unwrap().contains(&id));
    store.close();
}

#[wasm_bindgen_test]
async fn concurrent_edits_of_two_actors_are_stored_and_merge_after_reload() {
    let id = fresh_doc("concurrent");
    let mut alice = AutoCommit::new().with_actor(actor(0xa));
    let minutes = alice.put_object(ROOT, "minutes", ObjType::Text).unwrap();
    alice.splice_text(&minutes, 0, 0, "chung").unwrap();
    let base = alice.get_heads();
    let base_chunk = Chunk { key: ChunkKey::snapshot(&base), bytes: alice.save() };
    let mut bob = alice.fork().with_actor(actor(0xb));
    // Concurrent: neither has seen the other's change.
    alice.splice_text(&minutes, 0, 0, "A ").unwrap();
    let end = bob.length(&minutes);
    bob.splice_text(&minutes, end, 0, " B").unwrap();
    let from_alice = incremental(alice.save_after(&base));
    let from_bob = incremental(bob.save_after(&base));
    let mut expected = alice.fork();
    expected.merge(&mut bob).unwrap();

    let store = IdbStore::open().await.unwrap();
    store.write(id, &puts(vec![base_chunk])).await.unwrap();
    store.write(id, &puts(vec![from_alice])).await.unwrap();
    store.write(id, &puts(vec![from_bob])).await.unwrap();
    let store = reopen(store).await;

    let chunks = store.load(id).await.unwrap();
    assert_eq!(chunks.len(), 3);
    let (loaded, bad) = load_chunks(&chunks);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(loaded.get_heads().len(), 2, "two concurrent heads");
    assert_eq!(sorted(loaded.get_heads()), sorted(expected.get_heads()));
    assert_eq!(text_of(&loaded), "A chung B");
    store.close();
}

#[wasm_bindgen_test]
async fn a_compaction_batch_lands_whole_and_readers_never_see_half_of_it() {
    let id = fresh_doc("compaction");
    let neighbour = fresh_doc("compaction-neighbour");
    let mut doc = AutoCommit::new().with_actor(actor(3));
    let store = IdbStore::open().await.unwrap();
    store.write(neighbour, &puts(vec![incremental(doc.save())])).await.unwrap();
    for i in 0..5_i64 {
        let before = doc.get_heads();
        doc.put(ROOT, format!("item{i}"), i).unwrap();
        store.write(id, &puts(vec![incremental(doc.save_after(&before))])).await.unwrap();
    }
    let expected_heads = sorted(doc.get_heads());
    let expected_snapshot = ChunkKey::snapshot(&expected_heads);

    let before = store.load(id).await.unwrap();
    assert_eq!(before.len(), 5);
    let (full, _) = load_chunks(&before);
    let batch = StoredChunks::from_chunks(&before).compaction(&full);
    assert_eq!((batch.puts.len(), batch.deletes.len()), (1, 5));

    // Transactions run in the order they are created: a reader created before the batch sees
    // all five incrementals, one created after sees only the snapshot, never a mix.
    let (seen_before, written, seen_after) =
        futures::join!(store.load(id), store.write(id, &batch), store.load(id));
    written.unwrap();
    let keys = |chunks: Vec<Chunk>| chunks.into_iter().map(|c| c.key).collect::<Vec<_>>();
    let seen_before = keys(seen_before.unwrap());
    assert_eq!(seen_before.len(), 5);
    assert!(seen_before.iter().all(|k| k.kind == ChunkKind::Incremental));
    assert_eq!(keys(seen_after.unwrap()), std::slice::from_ref(&expected_snapshot));

    let store = reopen(store).await;
    let after = store.load(id).await.unwrap();
    assert_eq!(keys(after.clone()), [expected_snapshot]);
    let (loaded, bad) = load_chunks(&after);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(sorted(loaded.get_heads()), expected_heads);
    assert_eq!(loaded.get(ROOT, "item4").unwrap().map(|(v, _)| v.as_i64()), Some(Some(4)));
    assert_eq!(store.load(neighbour).await.unwrap().len(), 1, "other documents untouched");
    store.close();
}

#[wasm_bindgen_test]
async fn list_documents_names_each_stored_document_once() {
    let (a, b) = (fresh_doc("list-a"), fresh_doc("list-b"));
    let mut doc = AutoCommit::new().with_actor(actor(4));
    let store = IdbStore::open().await.unwrap();
    for i in 0..3_i64 {
        let before = doc.get_heads();
        doc.put(ROOT, "n", i).unwrap();
        store.write(a, &puts(vec![incremental(doc.save_after(&before))])).await.unwrap();
    }
    store.write(b, &puts(vec![incremental(doc.save())])).await.unwrap();

    let listed = store.list_documents().await.unwrap();
    assert_eq!(listed.iter().filter(|d| **d == a).count(), 1);
    assert_eq!(listed.iter().filter(|d| **d == b).count(), 1);
    let mut in_order = listed.clone();
    in_order.sort_by_key(ToString::to_string);
    assert_eq!(listed, in_order, "listed in key order");
    assert!(store.load(fresh_doc("never-written")).await.unwrap().is_empty());
    store.close();
}
