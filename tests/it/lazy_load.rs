//! A relay with many stored documents starts without loading any, and loads one when asked.

use std::time::Instant;

use chibo_server::config::DataDir;
use chibo_server::store::sqlite::SqliteStore;
use chibo_shared::ids::DocumentId;
use chibo_shared::schema::{DocKind, Forum, genesis, genesis_change_bytes, hydrate};
use chibo_shared::storage::{Chunk, ChunkKey, WriteBatch};

use crate::harness::{Device, Relay, TIMEOUT, edit};

const DOCUMENTS: u64 = 10_000;
const TITLE: &str = "Diễn đàn số 4242";

fn id(n: u64) -> DocumentId {
    let mut bytes = [0u8; 16];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    DocumentId::from_bytes(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restarted_with_10000_stored_documents_starts_without_loading_them() -> anyhow::Result<()> {
    // Seed: every document holds a forum's genesis; the one we will open also has a title.
    let data = tempfile::tempdir()?;
    let seeding = Instant::now();
    let target = id(4242);
    let mut forum = genesis(DocKind::Forum);
    edit::<Forum>(&mut forum, |f| f.title = TITLE.to_owned())?;
    let genesis_bytes = genesis_change_bytes(DocKind::Forum);
    let batches = (0..DOCUMENTS)
        .map(|n| {
            let chunk = if id(n) == target {
                Chunk { key: ChunkKey::snapshot(&forum.get_heads()), bytes: forum.save() }
            } else {
                Chunk { key: ChunkKey::incremental(&genesis_bytes), bytes: genesis_bytes.clone() }
            };
            (id(n), WriteBatch { puts: vec![chunk], deletes: vec![] })
        })
        .collect();
    let path = DataDir::new(data.path()).sqlite_path();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(path)).await??;
    store.write_many(batches).await?;
    drop(store);
    eprintln!("seeded {DOCUMENTS} documents in {:?}", seeding.elapsed());

    let starting = Instant::now();
    let relay = Relay::start_in(data.path()).await?;
    let (status, body) = relay.get("/healthz").await?;
    eprintln!("relay with {DOCUMENTS} stored documents answered /healthz after {:?}", starting.elapsed());
    assert_eq!((status, body.as_str()), (200, "ok"));
    let m = relay.metrics().await?;
    assert_eq!(m.get("chibo_documents_stored"), DOCUMENTS as f64);
    assert_eq!(m.get("chibo_documents_in_memory"), 0.0);
    assert_eq!(m.get("chibo_store_load_seconds_count"), 0.0, "the relay loaded documents at start-up");

    // A device that has never seen the forum asks for it and gets its content from the relay.
    let device = Device::new("member-1")?;
    device.client.open(target, None).await?;
    device.client.connect(&relay.url()).await?;
    device
        .client
        .wait_until("the forum's content from the relay", TIMEOUT, move |inner| {
            let title = inner.engine().doc(&target).and_then(|d| hydrate::<Forum>(d).ok()).map(|f| f.title);
            title.as_deref() == Some(TITLE) && inner.in_sync(&target)
        })
        .await?;
    let m = relay.metrics().await?;
    assert_eq!(m.get("chibo_documents_in_memory"), 1.0);
    assert_eq!(m.get("chibo_store_load_seconds_count"), 1.0);
    relay.stop().await?;
    Ok(())
}
