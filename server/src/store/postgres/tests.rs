//! The store contract on a real PostgreSQL (`CHIBO_TEST_PG`; see [`super::testdb`]), and what
//! only a shared database has: notifications between nodes and concurrent migrations.

use std::sync::Arc;
use std::time::Duration;

use automerge::Automerge;

use super::testdb::TestDatabase;
use super::*;
use crate::store::testing::{self, doc_id, edit};

/// A fresh database for this test, or return (skipped) when PostgreSQL is not configured.
macro_rules! database {
    ($test:literal) => {
        match TestDatabase::create($test).await.expect("creating the test database") {
            Some(db) => db,
            None => return,
        }
    };
}

async fn open(db: &TestDatabase) -> PostgresStore {
    PostgresStore::connect(db.url()).await.expect("connect")
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<StoreEvent>) -> StoreEvent {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("an event within 30 s")
        .expect("the listener is running")
}

#[tokio::test]
async fn postgres_round_trip_and_atomic_compaction() {
    let db = database!("postgres_round_trip_and_atomic_compaction");
    testing::round_trip_and_compaction(&open(&db).await).await;
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_lists_and_counts_documents() {
    let db = database!("postgres_lists_and_counts_documents");
    testing::list_and_count(&open(&db).await).await;
    db.drop_database().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_writers_to_different_documents() {
    let db = database!("postgres_concurrent_writers_to_different_documents");
    testing::concurrent_writers(Arc::new(open(&db).await)).await;
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_rejects_unsafe_chunk_names() {
    let db = database!("postgres_rejects_unsafe_chunk_names");
    testing::rejects_unsafe_chunk_names(&open(&db).await).await;
    db.drop_database().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_migrate_at_once_and_share_their_writes() {
    let db = database!("postgres_two_nodes_migrate_at_once_and_share_their_writes");
    let (a, b) = tokio::join!(open(&db), open(&db));
    assert_ne!(a.node_id(), b.node_id());
    let mut doc = Automerge::new();
    let chunk = edit(&mut doc, "kept", 42);
    a.write(doc_id(5), WriteBatch { puts: vec![chunk], deletes: vec![] }).await.expect("write");
    let loaded = testing::load_doc(&b, doc_id(5)).await;
    assert_eq!(testing::value(&loaded, "kept"), Some(42));
    assert_eq!(b.document_count().await.expect("count"), 1);
    drop((a, b));
    // A third process later finds the schema current and the data in place.
    let c = open(&db).await;
    assert_eq!(c.list_documents().await.expect("list"), vec![doc_id(5)]);
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_a_write_notifies_the_other_nodes_on_commit_but_not_its_own() {
    let db = database!("postgres_a_write_notifies_the_other_nodes_on_commit_but_not_its_own");
    let (a, b) = (open(&db).await, open(&db).await);
    let (mut a_events, mut b_events) = (a.listen(), b.listen());
    assert_eq!(next_event(&mut a_events).await, StoreEvent::Resync, "listening starts with a resync");
    assert_eq!(next_event(&mut b_events).await, StoreEvent::Resync);

    let mut doc = Automerge::new();
    let first = edit(&mut doc, "x", 1);
    a.write(doc_id(1), WriteBatch { puts: vec![first.clone()], deletes: vec![] }).await.expect("write");
    assert_eq!(next_event(&mut b_events).await, StoreEvent::Changed(doc_id(1)));
    // By the time the notification arrives the write is visible.
    assert_eq!(b.load(doc_id(1)).await.expect("load"), vec![first.clone()]);

    // A failed write notifies nobody: its transaction rolled back.
    let bad = Chunk { key: ChunkKey::incremental(b"x"), bytes: vec![1] };
    let huge_doc = DocumentId::from_bytes([0xff; 16]);
    db.execute("ALTER TABLE chunks ADD CONSTRAINT small CHECK (length(data) < 1000)")
        .await
        .expect("constrain");
    let too_big = Chunk { key: ChunkKey::incremental(b"big"), bytes: vec![0; 2000] };
    assert!(a.write(huge_doc, WriteBatch { puts: vec![bad, too_big], deletes: vec![] }).await.is_err());
    assert!(b.load(huge_doc).await.expect("load").is_empty());

    // b writes; a hears it, b does not hear itself.
    let second = edit(&mut doc, "y", 2);
    b.write(doc_id(2), WriteBatch { puts: vec![second], deletes: vec![] }).await.expect("write");
    assert_eq!(next_event(&mut a_events).await, StoreEvent::Changed(doc_id(2)));
    // The next thing a hears is a's own… nothing; and b's queue holds nothing from its own write.
    a.write(doc_id(3), WriteBatch { puts: vec![edit(&mut doc, "z", 3)], deletes: vec![] })
        .await
        .expect("write");
    assert_eq!(next_event(&mut b_events).await, StoreEvent::Changed(doc_id(3)), "not doc 2 (its own)");
    assert!(a_events.try_recv().is_err(), "a heard nothing of its own write");
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_a_listener_whose_connection_dies_reconnects_and_asks_for_a_resync() {
    let db = database!("postgres_a_listener_whose_connection_dies_reconnects_and_asks_for_a_resync");
    let (a, b) = (open(&db).await, open(&db).await);
    let mut events = b.listen();
    assert_eq!(next_event(&mut events).await, StoreEvent::Resync);
    // Kill the listening backend, as a database restart or a network cut would.
    db.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = '{}'",
        listener_name(b.node_id())
    ))
    .await
    .expect("terminate");
    // Written while nobody listened (or just before): only the resync covers it.
    let mut doc = Automerge::new();
    a.write(doc_id(4), WriteBatch { puts: vec![edit(&mut doc, "x", 1)], deletes: vec![] })
        .await
        .expect("write");
    loop {
        match next_event(&mut events).await {
            StoreEvent::Resync => break,
            // The notification may have beaten the kill; the resync must still follow.
            StoreEvent::Changed(d) => assert_eq!(d, doc_id(4)),
            other @ StoreEvent::RosterChanged(_) => panic!("no roster change was made: {other:?}"),
        }
    }
    // And it listens again.
    a.write(doc_id(5), WriteBatch { puts: vec![edit(&mut doc, "y", 2)], deletes: vec![] })
        .await
        .expect("write");
    assert_eq!(next_event(&mut events).await, StoreEvent::Changed(doc_id(5)));
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_pool_replaces_connections_the_server_closed() {
    let db = database!("postgres_pool_replaces_connections_the_server_closed");
    let store = open(&db).await;
    assert_eq!(store.document_count().await.expect("count"), 0);
    // Kill the pooled connection (and wait until it is gone), as a database restart would.
    db.execute(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'chibo-relay' AND pid <> pg_backend_pid()",
    )
    .await
    .expect("terminate");
    // The dead idle connection is noticed and replaced: no call fails.
    assert_eq!(store.document_count().await.expect("count after reconnecting"), 0);
    let mut doc = Automerge::new();
    store
        .write(doc_id(1), WriteBatch { puts: vec![edit(&mut doc, "x", 1)], deletes: vec![] })
        .await
        .expect("write");
    assert_eq!(store.document_count().await.expect("count"), 1);
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_newer_schema_is_refused() {
    let db = database!("postgres_newer_schema_is_refused");
    db.execute("CREATE TABLE chibo_schema (version bigint NOT NULL); INSERT INTO chibo_schema VALUES (99)")
        .await
        .expect("set version");
    let err = PostgresStore::connect(db.url()).await.expect_err("too new");
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, supported: SCHEMA_VERSION }), "{err:?}");
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_a_v1_database_with_documents_upgrades_and_keeps_them() {
    let db = database!("postgres_a_v1_database_with_documents_upgrades_and_keeps_them");
    // A database as the first multi-node release left it: chunks only, schema version 1.
    db.execute(MIGRATIONS[0]).await.expect("v1 tables");
    db.execute("CREATE TABLE chibo_schema (version bigint NOT NULL); INSERT INTO chibo_schema VALUES (1)")
        .await
        .expect("v1 version");
    let mut doc = Automerge::new();
    let chunk = edit(&mut doc, "kept", 1);
    let hex_doc = hex::encode(doc_id(7).as_bytes());
    db.execute(&format!(
        "INSERT INTO chunks (doc, kind, name, data) VALUES ('\\x{hex_doc}', 'incremental', '{}', '\\x{}');
         INSERT INTO documents (doc) VALUES ('\\x{hex_doc}')",
        chunk.key.name,
        hex::encode(&chunk.bytes),
    ))
    .await
    .expect("a v1 document");

    let store = open(&db).await; // migrates to the current version
    let loaded = testing::load_doc(&store, doc_id(7)).await;
    assert_eq!(loaded.get_heads(), doc.get_heads(), "the v1 document survives the upgrade");
    assert_eq!(store.list_documents().await.expect("list"), vec![doc_id(7)]);
    // The roster's tables exist and work.
    let roster = store.shared_roster();
    assert!(roster.units().await.expect("units").is_empty());
    drop(store);
    // And opening again does not migrate again.
    let again = open(&db).await;
    assert_eq!(again.document_count().await.expect("count"), 1);
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_a_bad_row_surfaces_as_corrupt_on_load() {
    let db = database!("postgres_a_bad_row_surfaces_as_corrupt_on_load");
    let store = open(&db).await;
    let hex = hex::encode(doc_id(2).as_bytes());
    db.execute(&format!(
        "INSERT INTO chunks (doc, kind, name, data) VALUES ('\\x{hex}', 'bogus', 'ab', '\\x00')"
    ))
    .await
    .expect("insert bad row");
    let err = store.load(doc_id(2)).await.expect_err("bad row");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn postgres_unreachable_server_is_unavailable() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let err =
        PostgresStore::connect(&format!("postgres://chibo@127.0.0.1:{port}/chibo")).await.expect_err("down");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    let err = PostgresStore::connect("postgres://[bad").await.expect_err("bad url");
    assert!(err.to_string().contains("database URL"), "{err}");
}

#[tokio::test]
async fn postgres_roster_changes_notify_the_other_nodes_on_commit_but_not_their_own() {
    use crate::roster::{Kick, MemberRecord, UnitKind, UnitRecord};
    use crate::store::roster::RosterStore as _;
    use chibo_shared::access::Role;
    use chibo_shared::ids::{DeviceId, ForumId, MemberId, UnitId};

    let db = database!("postgres_roster_changes_notify_the_other_nodes_on_commit_but_not_their_own");
    let (a, b) = (open(&db).await, open(&db).await);
    let (mut a_events, mut b_events) = (a.listen(), b.listen());
    assert_eq!(next_event(&mut a_events).await, StoreEvent::Resync);
    assert_eq!(next_event(&mut b_events).await, StoreEvent::Resync);
    let roster = a.roster();
    let unit = UnitId::from_bytes([1; 16]);
    roster
        .insert_unit(UnitRecord { id: unit, parent: None, kind: UnitKind::Branch, name: "Chi bộ".into() }, 1)
        .await
        .expect("unit");
    let member = MemberId::from_bytes([2; 16]);
    roster
        .insert_member(MemberRecord { id: member, unit, name: "An".into(), role: Role::Member }, 1)
        .await
        .expect("member");

    roster.set_role(member, Role::Committee).await.expect("role");
    assert_eq!(next_event(&mut b_events).await, StoreEvent::RosterChanged(Kick::Member(member)));
    roster.set_clerk(ForumId::from_bytes([3; 16]), member, true).await.expect("clerk");
    assert_eq!(next_event(&mut b_events).await, StoreEvent::RosterChanged(Kick::Member(member)));
    let device = DeviceId::from_bytes([4; 16]);
    assert!(!roster.revoke_device(device, 2).await.expect("revoke"), "unknown device");
    assert_eq!(next_event(&mut b_events).await, StoreEvent::RosterChanged(Kick::Device(device)));
    // b's change reaches a, and it is the first thing a hears: none of a's own changes above
    // came back to a (notifications reach a listener in commit order).
    let other = DeviceId::from_bytes([9; 16]);
    assert!(!b.roster().revoke_device(other, 3).await.expect("revoke"), "unknown device");
    assert_eq!(next_event(&mut a_events).await, StoreEvent::RosterChanged(Kick::Device(other)));
    // A rolled-back change notifies nobody: a role for a member that does not exist still
    // commits (an UPDATE of no row), so fail the transaction instead.
    db.execute("ALTER TABLE members ADD CONSTRAINT short_roles CHECK (length(role) < 10)")
        .await
        .expect("constrain");
    assert!(roster.set_role(member, Role::DeputySecretary).await.is_err(), "refused by the constraint");
    a.write(doc_id(1), WriteBatch { puts: vec![edit(&mut Automerge::new(), "x", 1)], deletes: vec![] })
        .await
        .expect("write");
    assert_eq!(
        next_event(&mut b_events).await,
        StoreEvent::Changed(doc_id(1)),
        "nothing of the failed change"
    );
    // Nor did a's own write come back to a: the next thing a hears is b's later write.
    b.write(doc_id(2), WriteBatch { puts: vec![edit(&mut Automerge::new(), "y", 2)], deletes: vec![] })
        .await
        .expect("write");
    assert_eq!(next_event(&mut a_events).await, StoreEvent::Changed(doc_id(2)), "a heard its own write");
    db.drop_database().await.expect("drop");
}
