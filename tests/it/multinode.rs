//! Several relay nodes on one PostgreSQL database: a change received by one node reaches the
//! devices of the others (each write notifies on commit; each node reloads what it holds), edits
//! made on different nodes at once converge, and a node killed mid-stream loses nothing it
//! acknowledged: its device moves to another node and finishes there. With the roster in the same
//! database, a device enrolled through one node signs in and writes through another, and a
//! revocation through one closes its connections on all.
//!
//! Needs PostgreSQL: `CHIBO_TEST_PG` (set by `cargo xtask test`, which starts a private cluster).
//! Without it these tests are skipped, or fail if `CHIBO_REQUIRE_PG=1`. Each test has a fresh
//! database.

use std::collections::BTreeSet;

use anyhow::{Context as _, ensure};
use automerge::ChangeHash;
use chibo_server::roster::{InviteSpec, Limits, Roster, UnitKind, unix_now};
use chibo_server::store::postgres::PostgresStore;
use chibo_server::store::postgres::testdb::TestDatabase;
use chibo_shared::access::Role;
use chibo_shared::ids::{BranchId, DeviceId, DocumentId, ForumId, PeerId};
use chibo_shared::schema::{DocKind, DocPath, ForumText, genesis_change_bytes};
use ed25519_dalek::{Signer as _, SigningKey};

use crate::durability::{acknowledged, saved};
use crate::harness::{
    Device, Relay, RelayProcess, TIMEOUT, append_text, change_hashes, closed, enrol, http_request,
    json_field, merged, raw_join, sign_in, sorted, stored_doc_pg, text_of,
};

/// A fresh database for this test, or return `Ok(())` (skipped) when PostgreSQL is not configured.
macro_rules! database {
    ($test:literal) => {
        match TestDatabase::create($test).await? {
            Some(db) => db,
            None => return Ok(()),
        }
    };
}

fn minutes(n: u8) -> DocumentId {
    DocPath::Forum { branch: BranchId::from_bytes([0x51; 16]), forum: ForumId::from_bytes([n; 16]) }
        .document_id()
}

/// A device with the forum minutes `doc` open, connected to `url`.
async fn device_on(name: &str, doc: DocumentId, url: &str) -> anyhow::Result<Device> {
    let device = Device::new(name)?;
    device.client.open(doc, Some(genesis_change_bytes(DocKind::Forum))).await?;
    device.client.connect(url).await?;
    Ok(device)
}

/// Waits until `device`'s minutes contain `words`.
async fn wait_for_text(device: &Device, doc: DocumentId, words: &'static str) -> anyhow::Result<()> {
    device
        .client
        .wait_until("the other node's words", TIMEOUT, move |inner| {
            inner
                .engine()
                .doc(&doc)
                .and_then(|d| text_of(d, &ForumText::Minutes).ok())
                .is_some_and(|t| t.contains(words))
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_on_one_node_reaches_a_device_on_the_other() -> anyhow::Result<()> {
    let db = database!("a_change_made_on_one_node_reaches_a_device_on_the_other");
    let (node_a, node_b) =
        (Relay::start_on_postgres(db.url()).await?, Relay::start_on_postgres(db.url()).await?);
    let doc = minutes(1);
    let clerk = device_on("clerk", doc, &node_a.url()).await?;
    let secretary = device_on("secretary", doc, &node_b.url()).await?;
    clerk.client.wait_synced(doc, TIMEOUT).await?;
    secretary.client.wait_synced(doc, TIMEOUT).await?;

    clerk.client.change(doc, |d| append_text(d, &ForumText::Minutes, "Khai mạc lúc 8 giờ. ")).await??;
    wait_for_text(&secretary, doc, "Khai mạc lúc 8 giờ.").await?;
    // Both converge: the same heads, acknowledged by each one's node, and the same text.
    let heads = clerk.heads(doc).await?;
    clerk.wait_for_heads(doc, &heads).await?;
    secretary.wait_for_heads(doc, &heads).await?;
    let (ours, theirs) = (clerk.snapshot(doc).await?, secretary.snapshot(doc).await?);
    assert_eq!(text_of(&ours, &ForumText::Minutes)?, text_of(&theirs, &ForumText::Minutes)?);
    // And back the other way.
    secretary.client.change(doc, |d| append_text(d, &ForumText::Minutes, "Nhất trí.")).await??;
    wait_for_text(&clerk, doc, "Nhất trí.").await?;
    let heads = secretary.heads(doc).await?;
    clerk.wait_for_heads(doc, &heads).await?;
    secretary.wait_for_heads(doc, &heads).await?;
    assert_eq!(sorted(stored_doc_pg(db.url(), doc).await?.get_heads()), heads);

    node_a.stop().await?;
    node_b.stop().await?;
    db.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_on_both_nodes_converge_everywhere() -> anyhow::Result<()> {
    let db = database!("concurrent_edits_on_both_nodes_converge_everywhere");
    let (node_a, node_b) =
        (Relay::start_on_postgres(db.url()).await?, Relay::start_on_postgres(db.url()).await?);
    let doc = minutes(2);
    // Two devices on node A, one on node B.
    let a1 = device_on("a1", doc, &node_a.url()).await?;
    let a2 = device_on("a2", doc, &node_a.url()).await?;
    let b1 = device_on("b1", doc, &node_b.url()).await?;
    for d in [&a1, &a2, &b1] {
        d.client.wait_synced(doc, TIMEOUT).await?;
    }

    // Everyone types at once, without waiting for anything.
    const WORDS: usize = 30;
    let typing = [("a1", &a1), ("a2", &a2), ("b1", &b1)].map(|(name, d)| {
        let client = d.client.clone();
        tokio::spawn(async move {
            for i in 0..WORDS {
                let word = format!("{name}-{i} ");
                client.change(doc, move |d| append_text(d, &ForumText::Minutes, &word)).await??;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(())
        })
    });
    for t in typing {
        t.await??;
    }
    // Each device holds all of its own changes, so their merge is what everyone must reach.
    let (s1, s2, s3) = (a1.snapshot(doc).await?, a2.snapshot(doc).await?, b1.snapshot(doc).await?);
    let all = merged(&[&s1, &s2, &s3])?;
    let heads = sorted(all.get_heads());
    assert_eq!(change_hashes(&all).len(), 1 + 3 * WORDS, "the genesis and every word");
    for d in [&a1, &a2, &b1] {
        d.wait_for_heads(doc, &heads).await?;
    }
    let text = text_of(&all, &ForumText::Minutes)?;
    for d in [&a1, &a2, &b1] {
        assert_eq!(text_of(&d.snapshot(doc).await?, &ForumText::Minutes)?, text);
    }
    let stored = stored_doc_pg(db.url(), doc).await?;
    assert_eq!(sorted(stored.get_heads()), heads);
    assert_eq!(change_hashes(&stored), change_hashes(&all));

    node_a.stop().await?;
    node_b.stop().await?;
    db.drop_database().await
}

/// The stream's length, when node A is killed (once it has acknowledged this many), and where the
/// stream waits for the kill, so it always falls mid-stream however slowly a loaded machine runs.
const CHANGES: u64 = 400;
const KILL_AFTER: u64 = 100;
const HOLD_AT: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_nothing_and_its_device_finishes_on_the_other() -> anyhow::Result<()> {
    let db = database!("a_node_killed_mid_stream_loses_nothing_and_its_device_finishes_on_the_other");
    let node_a = RelayProcess::spawn_on_postgres(db.url()).await?;
    let node_b = Relay::start_on_postgres(db.url()).await?;
    let doc = minutes(3);
    let writer = device_on("writer", doc, &node_a.url()).await?;
    let reader = device_on("reader", doc, &node_b.url()).await?;
    writer.client.wait_synced(doc, TIMEOUT).await?;
    reader.client.wait_synced(doc, TIMEOUT).await?;
    // The reader on B says something too, so both directions must survive the kill.
    reader.client.change(doc, |d| append_text(d, &ForumText::Minutes, "Thư ký: ")).await??;
    let reader_heads = reader.heads(doc).await?;
    reader.wait_for_heads(doc, &reader_heads).await?;

    let (killed_tx, killed_rx) = tokio::sync::oneshot::channel::<()>();
    let streamer = {
        let (client, actor) = (writer.client.clone(), writer.actor.clone());
        let mut killed_rx = Some(killed_rx);
        tokio::spawn(async move {
            for i in 1..=CHANGES {
                if let Some(rx) = killed_rx.take_if(|_| i == HOLD_AT) {
                    rx.await.context("the test ended before the kill")?;
                }
                client.change(doc, move |d| append_text(d, &ForumText::Minutes, &format!("{i} "))).await??;
                // Each change waits for the device's disk, as an editor showing "saved" does, so
                // the stream is many small writes with a middle to kill in.
                let actor = actor.clone();
                client
                    .wait_until("the change to be saved", TIMEOUT, move |inner| {
                        saved(inner, doc, &actor) >= i
                    })
                    .await?;
            }
            anyhow::Ok(())
        })
    };

    let actor = writer.actor.clone();
    writer
        .client
        .wait_until("node A to acknowledge enough", TIMEOUT, move |inner| {
            acknowledged(inner, doc, &actor) >= KILL_AFTER
        })
        .await?;
    // Read what node A has acknowledged and SIGKILL it in one step on the client's task, so no
    // acknowledgement can arrive in between.
    let (acked_heads, killed) =
        writer.client.with(move |inner| (inner.relay_heads(&doc), node_a.kill())).await?;
    killed?;
    let _ = killed_tx.send(());
    let acked_heads = acked_heads.context("node A's heads were gone before the kill")?;
    let acked: BTreeSet<ChangeHash> =
        writer.client.read(doc, move |d| d.fork_at(&acked_heads).map(|f| change_hashes(&f))).await??;
    assert!(acked.len() as u64 > KILL_AFTER, "only {} acknowledged", acked.len());
    assert!((acked.len() as u64) < CHANGES, "the whole stream was acknowledged before the kill");
    let stored = change_hashes(&stored_doc_pg(db.url(), doc).await?);
    let lost: Vec<&ChangeHash> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged changes are not in the database: {lost:?}", lost.len());
    eprintln!("node A killed with {} changes acknowledged, {} stored", acked.len(), stored.len());

    // The writer moves to node B, where the reader is, and the stream finishes there.
    writer.client.connect(&node_b.url()).await?;
    streamer.await??;
    let (w, r) = (writer.snapshot(doc).await?, reader.snapshot(doc).await?);
    let all = merged(&[&w, &r])?;
    let heads = sorted(all.get_heads());
    writer.wait_for_heads(doc, &heads).await?;
    reader.wait_for_heads(doc, &heads).await?;
    let text = text_of(&reader.snapshot(doc).await?, &ForumText::Minutes)?;
    // Every streamed number once, in order, and the reader's words (wherever they merged in).
    let numbers: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(numbers, (1..=CHANGES).collect::<Vec<_>>(), "{text:?}");
    assert!(text.contains("Thư ký: "), "{text:?}");
    // Genesis, the reader's change, and every streamed change: in both devices and the database.
    assert_eq!(change_hashes(&all).len() as u64, CHANGES + 2);
    assert_eq!(change_hashes(&writer.snapshot(doc).await?), change_hashes(&all));
    let stored = stored_doc_pg(db.url(), doc).await?;
    assert_eq!(change_hashes(&stored), change_hashes(&all));
    assert_eq!(sorted(stored.get_heads()), heads);

    node_b.stop().await?;
    db.drop_database().await
}

/// Waits until `nodes` relays listen on the database at `url` (their `LISTEN` has run), so what
/// follows reaches them as notifications rather than as the resync of a late listener.
async fn wait_for_listeners(url: &str, nodes: i64) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND application_name LIKE 'chibo-listen-%' AND state = 'idle' AND query LIKE 'LISTEN%'",
                &[],
            )
            .await?;
        if row.get::<_, i64>(0) >= nodes {
            return Ok(());
        }
        ensure!(tokio::time::Instant::now() < deadline, "the relays did not start listening");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_device_moves_between_nodes_and_a_revocation_through_one_closes_it_on_the_other()
-> anyhow::Result<()> {
    let db = database!("an_enrolled_device_moves_between_nodes_and_a_revocation_through_one");
    // Both nodes closed: only devices enrolled in the database's roster connect.
    let (node_a, node_b) = (
        Relay::start_on_postgres_enrolled(db.url()).await?,
        Relay::start_on_postgres_enrolled(db.url()).await?,
    );
    wait_for_listeners(db.url(), 2).await?;
    // The admin's own connection to the database: a branch and an invite for its secretary.
    let admin = Roster::new(PostgresStore::connect(db.url()).await?.shared_roster(), Limits::default());
    let now = unix_now();
    let top = admin.create_unit(UnitKind::Committee, "Đảng ủy phường", None, now).await?;
    let unit = admin.create_unit(UnitKind::Branch, "Chi bộ 5", Some(top), now).await?;
    let branch = BranchId::from_bytes(*unit.as_bytes());
    let hour = std::time::Duration::from_secs(3600);
    let code = admin.create_invite(InviteSpec::new(unit, Role::Secretary, "Bí thư", hour), now).await?.code;

    // Enrolled through A; a session opened through B.
    let key = SigningKey::from_bytes(&[0x5E; 32]);
    let (status, text) = enrol(node_a.addr(), &code, "bi-thu", &key).await?;
    ensure!(status == 201, "enrol through A: {status} {text}");
    let device: DeviceId = json_field(&text, "device")?.parse()?;
    let (status, text) = sign_in(node_b.addr(), device, &key).await?;
    ensure!(status == 200, "a session through B for a device enrolled through A: {status} {text}");
    let token = json_field(&text, "token")?;
    // And a challenge from A answered on B (as behind a load balancer that spreads requests).
    let body = serde_json::json!({ "device": device.to_string() });
    let (status, text) =
        http_request(node_a.addr(), "POST", "/api/v1/session/challenge", None, Some(&body)).await?;
    ensure!(status == 200, "a challenge from A: {status} {text}");
    let nonce: [u8; 32] =
        hex::decode(json_field(&text, "nonce")?)?.try_into().map_err(|_| anyhow::anyhow!("nonce length"))?;
    let signed = serde_json::json!({
        "device": device.to_string(),
        "nonce": hex::encode(nonce),
        "signature": hex::encode(key.sign(&chibo_shared::access::session_payload(&device, &nonce)).to_bytes()),
    });
    let (status, text) = http_request(node_b.addr(), "POST", "/api/v1/session", None, Some(&signed)).await?;
    ensure!(status == 200, "A's challenge answered on B: {status} {text}");
    let (status, _) = http_request(node_a.addr(), "POST", "/api/v1/session", None, Some(&signed)).await?;
    ensure!(status == 401, "the same answer opened a second session on A: {status}");

    // The minutes are named through A (with the session B opened), then written through B, which
    // has never been told of them.
    let path = DocPath::Forum { branch, forum: ForumId::from_bytes([0x61; 16]) };
    let body = serde_json::json!({ "paths": [path.to_canonical_string()] });
    let (status, text) =
        http_request(node_a.addr(), "POST", "/api/v1/documents", Some(&token), Some(&body)).await?;
    ensure!(status == 200, "naming the minutes through A: {status} {text}");
    let doc = path.document_id();
    let secretary = Device::new("bi-thu")?;
    secretary.client.open(doc, Some(genesis_change_bytes(DocKind::Forum))).await?;
    secretary.client.change(doc, |d| append_text(d, &ForumText::Minutes, "Khai mạc. ")).await??;
    secretary.client.connect(&format!("{}?token={token}", node_b.url())).await?;
    let heads = secretary.heads(doc).await?;
    secretary.wait_for_heads(doc, &heads).await?;
    assert_eq!(sorted(stored_doc_pg(db.url(), doc).await?.get_heads()), heads, "B stored the change");

    // A live connection on B; the device is revoked through A (by its owner).
    let mut live = match tokio_tungstenite::connect_async(format!("{}?token={token}", node_b.url())).await {
        Ok((ws, _)) => ws,
        Err(e) => anyhow::bail!("the session does not connect to B: {e}"),
    };
    raw_join(&mut live, &PeerId::new("bi-thu-raw")?).await?;
    let revoke = format!("/api/v1/devices/{device}/revoke");
    let (status, text) =
        http_request(node_a.addr(), "POST", &revoke, Some(&token), Some(&serde_json::json!({}))).await?;
    ensure!(status == 204, "revoke through A: {status} {text}");
    ensure!(closed(&mut live, true).await? == Some(1008), "B kept the revoked device's connection open");
    match tokio_tungstenite::connect_async(format!("{}?token={token}", node_b.url())).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            ensure!(r.status().as_u16() == 401, "B answered {}", r.status());
        }
        other => anyhow::bail!("B accepted the revoked device's session: {other:?}"),
    }
    let (status, _) = sign_in(node_b.addr(), device, &key).await?;
    ensure!(status == 401, "B opened a new session for the revoked device: {status}");

    node_a.stop().await?;
    node_b.stop().await?;
    db.drop_database().await
}
