//! Engine tests on the in-memory network.

use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjType, ROOT, ReadDoc};
use proptest::prelude::*;

use super::memnet::{Network, NodeId};
use super::*;
use crate::storage::{Chunk, load_chunks};
use crate::wire;

const TEXT: &str = "text";
const MARKS: &str = "marks";

/// A deterministic genesis: fixed actor and time, so every device creates the same root objects.
fn genesis() -> Vec<u8> {
    let mut doc = Automerge::new().with_actor(automerge::ActorId::from(b"genesis".to_vec()));
    let mut tx = doc.transaction();
    tx.put_object(ROOT, TEXT, ObjType::Text).expect("text");
    tx.put_object(ROOT, MARKS, ObjType::Map).expect("marks");
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(0));
    doc.save()
}

fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_bytes([n; 16])
}

/// Inserts `s` at the start of the text and records a mark, so a lost edit is visible.
fn edit(net: &mut Network, node: NodeId, doc: DocumentId, s: &str) -> bool {
    let s = s.to_owned();
    net.change(node, doc, move |d| {
        let text = d.get(ROOT, TEXT).expect("get").expect("text exists").1;
        let marks = d.get(ROOT, MARKS).expect("get").expect("marks exist").1;
        let mut tx = d.transaction();
        tx.splice_text(&text, 0, 0, &s).expect("splice");
        tx.put(&marks, &s, true).expect("mark");
        tx.commit();
    })
}

fn marks(d: &Automerge) -> BTreeSet<String> {
    let Some((_, marks)) = d.get(ROOT, MARKS).expect("get") else { return BTreeSet::new() };
    d.keys(&marks).collect()
}

fn text(d: &Automerge) -> String {
    let text = d.get(ROOT, TEXT).expect("get").expect("text").1;
    d.text(&text).expect("text")
}

fn stored_doc(net: &Network, node: NodeId, doc: &DocumentId) -> Automerge {
    let chunks: Vec<Chunk> = net
        .node(node)
        .store
        .get(doc)
        .map(|m| m.iter().map(|(k, b)| Chunk { key: k.clone(), bytes: b.clone() }).collect())
        .unwrap_or_default();
    load_chunks(&chunks).0
}

/// Every head a client has heard from the relay is in the relay's durable store.
fn assert_acks_durable(net: &Network, relay: NodeId, clients: &[NodeId], docs: &[DocumentId]) {
    for &doc in docs {
        let stored = stored_doc(net, relay, &doc);
        for &c in clients {
            let engine = &net.node(c).engine;
            for conn in (0..200).map(ConnId) {
                let Some(state) = engine.sync_state(conn, &doc) else { continue };
                for h in state.their_heads.iter().flatten() {
                    assert!(
                        stored.get_change_by_hash(h).is_some(),
                        "client {c:?} heard head {h} of {doc} that the relay has not stored"
                    );
                }
            }
        }
    }
}

fn heads(net: &Network, node: NodeId, doc: &DocumentId) -> Vec<ChangeHash> {
    net.doc(node, doc).map(Automerge::get_heads).unwrap_or_default()
}

#[test]
fn two_clients_converge_through_the_relay_with_both_offline_edits() {
    let mut net = Network::new(1);
    let relay = net.add_node(Role::Relay);
    let (a, b) = (net.add_node(Role::Client), net.add_node(Role::Client));
    let doc = doc_id(1);
    for n in [a, b] {
        net.open(n, doc, Some(genesis()));
    }
    net.run_until_quiescent();
    assert!(edit(&mut net, a, doc, "alpha "));
    assert!(edit(&mut net, b, doc, "beta "));
    net.run_until_quiescent();
    net.connect(a, relay);
    net.connect(b, relay);
    net.run_until_quiescent();
    let (ha, hb, hr) =
        (heads(&net, a, &doc), heads(&net, b, &doc), stored_doc(&net, relay, &doc).get_heads());
    assert_eq!(ha, hb);
    assert_eq!(ha, hr);
    let t = text(net.doc(a, &doc).expect("loaded"));
    assert!(t.contains("alpha ") && t.contains("beta "), "{t:?}");
    assert_eq!(text(net.doc(b, &doc).expect("loaded")), t);
    // Both are still connected, so the relay keeps the document in memory.
    assert_eq!(net.node(relay).engine.documents_in_memory(), 1);
}

#[test]
fn relay_forgets_documents_nobody_uses() {
    let mut net = Network::new(2);
    let relay = net.add_node(Role::Relay);
    let a = net.add_node(Role::Client);
    let doc = doc_id(2);
    net.open(a, doc, Some(genesis()));
    let link = net.connect(a, relay);
    net.run_until_quiescent();
    assert_eq!(net.node(relay).engine.documents_in_memory(), 1);
    net.disconnect(link);
    net.run_until_quiescent();
    assert_eq!(net.node(relay).engine.documents_in_memory(), 0);
    assert!(!stored_doc(&net, relay, &doc).get_heads().is_empty());
}

#[test]
fn relay_acknowledges_nothing_before_it_is_durable() {
    let mut net = Network::new(3);
    let relay = net.add_node(Role::Relay);
    let a = net.add_node(Role::Client);
    let doc = doc_id(3);
    net.open(a, doc, Some(genesis()));
    net.connect(a, relay);
    net.run_until_quiescent();
    for i in 0..40 {
        assert!(edit(&mut net, a, doc, &format!("e{i} ")));
        for _ in 0..5 {
            net.step();
            assert_acks_durable(&net, relay, &[a], &[doc]);
        }
    }
    // Crash the relay with writes possibly in flight, restart, resync: nothing lost.
    net.crash(relay);
    net.connect(a, relay);
    net.run_until_quiescent();
    assert_eq!(stored_doc(&net, relay, &doc).get_heads(), heads(&net, a, &doc));
    assert_eq!(marks(&stored_doc(&net, relay, &doc)).len(), 40);
}

#[test]
fn request_for_an_unknown_document_is_unavailable_until_someone_brings_it() {
    let mut net = Network::new(4);
    let relay = net.add_node(Role::Relay);
    let (a, b) = (net.add_node(Role::Client), net.add_node(Role::Client));
    let doc = doc_id(4);
    net.open(b, doc, None); // b has nothing and asks
    net.connect(b, relay);
    net.run_until_quiescent();
    assert!(
        net.node(b).events.iter().any(|e| matches!(e, Effect::DocUnavailable { doc: d, .. } if *d == doc))
    );
    net.open(a, doc, Some(genesis()));
    net.connect(a, relay);
    net.run_until_quiescent();
    edit(&mut net, a, doc, "hello");
    net.run_until_quiescent();
    assert_eq!(text(net.doc(b, &doc).expect("b has it now")), "hello");
}

#[test]
fn a_device_that_crashes_before_its_write_lands_sends_nothing_it_could_reuse() {
    let mut net = Network::new(5);
    let relay = net.add_node(Role::Relay);
    let a = net.add_node(Role::Client);
    let doc = doc_id(5);
    net.open(a, doc, Some(genesis()));
    net.connect(a, relay);
    net.run_until_quiescent();
    edit(&mut net, a, doc, "lost ");
    // Deliver frames but never let a's write land, then crash a.
    for _ in 0..50 {
        net.step();
    }
    net.crash(a);
    net.open(a, doc, Some(genesis()));
    net.connect(a, relay);
    net.run_until_quiescent();
    assert!(edit(&mut net, a, doc, "kept "));
    net.run_until_quiescent();
    // No duplicate-sequence error closed the connection, and both sides agree.
    assert!(
        !net.node(relay).events.iter().any(|e| matches!(e, Effect::Close { .. })),
        "{:?}",
        net.node(relay).events
    );
    assert_eq!(heads(&net, a, &doc), stored_doc(&net, relay, &doc).get_heads());
}

#[test]
fn protocol_violations_close_only_the_offending_connection() {
    let peer = PeerId::new("relay").expect("id");
    let mut e = Engine::new(EngineConfig::new(Role::Relay, peer.clone()), OpenAccess);
    let (good, bad) = (ConnId(1), ConnId(2));
    let join = |s: &str| {
        wire::Message::Join {
            sender: PeerId::new(s).expect("id"),
            supported_versions: vec!["1".into()],
            metadata: None,
        }
        .encode()
    };
    for c in [good, bad] {
        e.handle(0, Input::Connected { conn: c, direction: Direction::Inbound, principal: () });
    }
    e.handle(0, Input::Frame { conn: good, bytes: join("good") });
    let closed = |fx: Vec<Effect>| {
        fx.into_iter().find_map(|f| match f {
            Effect::Close { conn, reason } => Some((conn, reason)),
            _ => None,
        })
    };
    // A sync before the handshake.
    let sync = wire::Message::Sync {
        sender: PeerId::new("bad").expect("id"),
        target: peer.clone(),
        document: doc_id(9),
        data: vec![0x42],
    };
    let r = closed(e.handle(0, Input::Frame { conn: bad, bytes: sync.encode() }));
    assert!(matches!(r, Some((c, CloseReason::NotJoined("sync"))) if c == bad), "{r:?}");
    // A truncated automerge message after a proper handshake.
    let bad2 = ConnId(3);
    e.handle(0, Input::Connected { conn: bad2, direction: Direction::Inbound, principal: () });
    e.handle(0, Input::Frame { conn: bad2, bytes: join("bad2") });
    let truncated = wire::Message::Sync {
        sender: PeerId::new("bad2").expect("id"),
        target: peer.clone(),
        document: doc_id(9),
        data: vec![0x42, 0x01],
    };
    let r = closed(e.handle(0, Input::Frame { conn: bad2, bytes: truncated.encode() }));
    assert!(matches!(r, Some((_, CloseReason::BadSyncMessage { .. }))), "{r:?}");
    // A spoofed sender.
    let bad3 = ConnId(4);
    e.handle(0, Input::Connected { conn: bad3, direction: Direction::Inbound, principal: () });
    e.handle(0, Input::Frame { conn: bad3, bytes: join("bad3") });
    let spoof = wire::Message::DocUnavailable {
        sender: PeerId::new("good").expect("id"),
        target: peer.clone(),
        document: doc_id(9),
    };
    let r = closed(e.handle(0, Input::Frame { conn: bad3, bytes: spoof.encode() }));
    assert!(matches!(r, Some((_, CloseReason::SenderMismatch { .. }))), "{r:?}");
    // Oversized and garbage frames.
    let bad4 = ConnId(5);
    e.handle(0, Input::Connected { conn: bad4, direction: Direction::Inbound, principal: () });
    let r = closed(e.handle(0, Input::Frame { conn: bad4, bytes: vec![0; (8 << 20) + 1] }));
    assert!(matches!(r, Some((_, CloseReason::Oversized { .. }))), "{r:?}");
    // The good connection is still there and ready.
    assert_eq!(e.remote_peer(good).map(PeerId::as_str), Some("good"));
    assert_eq!(e.connections(), 1);
    // A silent connection times out.
    let silent = ConnId(6);
    e.handle(0, Input::Connected { conn: silent, direction: Direction::Inbound, principal: () });
    let r = closed(e.handle(60_000, Input::Tick));
    assert!(matches!(r, Some((c, CloseReason::HandshakeTimeout(_))) if c == silent), "{r:?}");
}

#[test]
fn relay_passes_ephemeral_messages_on_under_their_sender_and_drops_echoes() {
    // automerge-repo keeps an ephemeral message's `senderId`, `sessionId` and `count` when it
    // forwards one (JS presence tells peers apart by `senderId`), and a JS client forwards what
    // the relay sends it back to the relay.
    let relay = PeerId::new("relay").expect("id");
    let mut e = Engine::new(EngineConfig::new(Role::Relay, relay.clone()), OpenAccess);
    let doc = doc_id(7);
    let peer = |s: &str| PeerId::new(s).expect("id");
    let mut empty_sync = automerge::sync::State::new();
    let hello = automerge::sync::SyncDoc::generate_sync_message(&Automerge::new(), &mut empty_sync)
        .expect("a first message")
        .encode();
    for (n, name) in ["a", "b", "c"].into_iter().enumerate() {
        let conn = ConnId(n as u64);
        e.handle(0, Input::Connected { conn, direction: Direction::Inbound, principal: () });
        let join =
            wire::Message::Join { sender: peer(name), supported_versions: vec!["1".into()], metadata: None };
        e.handle(0, Input::Frame { conn, bytes: join.encode() });
        let sync = wire::Message::Sync {
            sender: peer(name),
            target: relay.clone(),
            document: doc,
            data: hello.clone(),
        };
        for fx in e.handle(0, Input::Frame { conn, bytes: sync.encode() }) {
            if let Effect::Load { doc } = fx {
                e.handle(0, Input::Loaded { doc, chunks: vec![] });
            }
        }
    }
    let ephemeral = |from: ConnId, sender: &str, count: u64, data: u8| Input::Frame {
        conn: from,
        bytes: wire::Message::Ephemeral {
            sender: peer(sender),
            target: relay.clone(),
            count,
            session: format!("{sender}-session"),
            document: doc,
            data: vec![data],
        }
        .encode(),
    };
    let sent = |fx: Vec<Effect>| -> Vec<(ConnId, wire::Message)> {
        assert!(!fx.iter().any(|f| matches!(f, Effect::Close { .. })), "{fx:?}");
        fx.into_iter()
            .filter_map(|f| match f {
                Effect::Send { conn, bytes } => Some((conn, wire::Message::decode(&bytes).expect("decodes"))),
                _ => None,
            })
            .collect()
    };

    let out = sent(e.handle(0, ephemeral(ConnId(0), "a", 1, 42)));
    let mut got: Vec<_> = out
        .iter()
        .map(|(conn, m)| match m {
            wire::Message::Ephemeral { sender, target, count, session, document, data } => {
                assert_eq!((sender.as_str(), *count, session.as_str()), ("a", 1, "a-session"));
                assert_eq!((document, data.as_slice()), (&doc, [42].as_slice()));
                (*conn, target.as_str().to_owned())
            }
            other => panic!("not ephemeral: {other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(got, [(ConnId(1), "b".to_owned()), (ConnId(2), "c".to_owned())]);

    // b echoes a's message back: a repeat, dropped without closing b.
    assert!(sent(e.handle(0, ephemeral(ConnId(1), "a", 1, 42))).is_empty());
    // A forwarded message is never sent to the connection of its original sender either.
    let out = sent(e.handle(0, ephemeral(ConnId(2), "a", 2, 43)));
    assert_eq!(out.iter().map(|(c, _)| *c).collect::<Vec<_>>(), [ConnId(1)]);
    // Sync messages must still come from the connection's own peer.
    let spoof = wire::Message::Sync { sender: peer("a"), target: relay.clone(), document: doc, data: hello };
    let fx = e.handle(0, Input::Frame { conn: ConnId(1), bytes: spoof.encode() });
    assert!(fx.iter().any(|f| matches!(f, Effect::Close { reason: CloseReason::SenderMismatch { .. }, .. })));

    // Once a has no connection left, its session counters are forgotten (bounded memory)...
    assert_eq!(e.ephemeral_sessions_remembered(), 1);
    e.handle(0, Input::Disconnected { conn: ConnId(0) });
    assert_eq!(e.ephemeral_sessions_remembered(), 0);
    // ...and c's presence still goes through.
    let out = sent(e.handle(0, ephemeral(ConnId(2), "c", 1, 44)));
    assert_eq!(e.ephemeral_sessions_remembered(), 1);
    assert!(out.is_empty(), "b was closed above, a left: nobody to forward to: {out:?}");
}

#[test]
fn compaction_keeps_every_change_on_disk() {
    let mut net = Network::new(6);
    let relay = net.add_node(Role::Relay);
    let a = net.add_node(Role::Client);
    let doc = doc_id(6);
    net.open(a, doc, Some(genesis()));
    net.connect(a, relay);
    net.run_until_quiescent();
    for i in 0..200 {
        assert!(edit(&mut net, a, doc, &format!("{i},")));
        net.run_until_quiescent();
    }
    for node in [a, relay] {
        let chunks = net.node(node).store.get(&doc).map_or(0, |m| m.len());
        assert!(chunks < 70, "node {node:?} still has {chunks} chunks");
        assert_eq!(marks(&stored_doc(&net, node, &doc)).len(), 200);
    }
}

/// One step of a random scenario.
#[derive(Debug, Clone)]
enum Op {
    Edit { client: usize, doc: usize },
    Connect { client: usize },
    Isolate { client: usize },
    CrashRelay,
    CrashClient { client: usize },
    Run { steps: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..2usize).prop_map(|(client, doc)| Op::Edit { client, doc }),
        2 => (0..3usize).prop_map(|client| Op::Connect { client }),
        2 => (0..3usize).prop_map(|client| Op::Isolate { client }),
        1 => Just(Op::CrashRelay),
        1 => (0..3usize).prop_map(|client| Op::CrashClient { client }),
        4 => any::<u8>().prop_map(|steps| Op::Run { steps }),
    ]
}

/// How long [`check_interleaving`] waits for the network to fall quiet after each phase: runs
/// need a few thousand steps, and a livelock should fail in seconds, not after 15-30 minutes
/// of a debug build.
const QUIESCENCE_LIMIT: u64 = 100_000;

/// The body of `any_interleaving_converges`: runs `ops` on a relay and three clients, with frame
/// faults `(drop, duplicate, reorder)` until they are healed, and checks convergence.
fn check_interleaving(
    ops: Vec<Op>,
    seed: u64,
    (drop, duplicate, reorder): (u8, u8, u8),
    limit: u64,
) -> Result<(), TestCaseError> {
    let mut net = Network::new(seed);
    let relay = net.add_node(Role::Relay);
    let clients: Vec<NodeId> = (0..3).map(|_| net.add_node(Role::Client)).collect();
    let docs = [doc_id(10), doc_id(11)];
    for &c in &clients {
        for &d in &docs {
            net.open(c, d, Some(genesis()));
        }
    }
    prop_assert!(
        net.run_until_quiescent_within(limit).is_some(),
        "network did not quiesce after {limit} steps"
    );
    net.faults = super::memnet::Faults { drop, duplicate, reorder };
    // Edits that reached the device's disk must survive; others may die with a crash.
    let mut made: Vec<(usize, usize, String)> = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Edit { client, doc } => {
                let mark = format!("c{client}-{i} ");
                if edit(&mut net, clients[client], docs[doc], &mark) {
                    made.push((client, doc, mark));
                }
            }
            Op::Connect { client } => {
                net.connect(clients[client], relay);
            }
            Op::Isolate { client } => net.isolate(clients[client]),
            Op::CrashRelay => net.crash(relay),
            Op::CrashClient { client } => {
                // Edits not yet on this device's disk die with it, and must not have left it.
                let node = clients[client];
                let on_disk: Vec<BTreeSet<String>> =
                    docs.iter().map(|d| marks(&stored_doc(&net, node, d))).collect();
                let mut kept = Vec::new();
                for (c, d, mark) in made.drain(..) {
                    if c == client && !on_disk[d].contains(&mark) {
                        prop_assert!(
                            !marks(&stored_doc(&net, relay, &docs[d])).contains(&mark),
                            "{mark} reached the relay before its own device's disk"
                        );
                    } else {
                        kept.push((c, d, mark));
                    }
                }
                made = kept;
                net.crash(node);
                for &d in &docs {
                    net.open(clients[client], d, Some(genesis()));
                }
            }
            Op::Run { steps } => {
                for _ in 0..steps {
                    if !net.step() {
                        break;
                    }
                    if drop == 0 && duplicate == 0 && reorder == 0 {
                        assert_acks_durable(&net, relay, &clients, &docs);
                    }
                }
            }
        }
    }
    // Heal: no more faults, everyone reconnects.
    net.faults = super::memnet::Faults::default();
    prop_assert!(
        net.run_until_quiescent_within(limit).is_some(),
        "network did not quiesce after {limit} steps"
    );
    for link in net.links() {
        net.disconnect(link);
    }
    for &c in &clients {
        net.connect(c, relay);
    }
    prop_assert!(
        net.run_until_quiescent_within(limit).is_some(),
        "network did not quiesce after {limit} steps"
    );
    let relay_stored: Vec<Automerge> = docs.iter().map(|d| stored_doc(&net, relay, d)).collect();
    for (di, d) in docs.iter().enumerate() {
        let want = relay_stored[di].get_heads();
        for &c in &clients {
            prop_assert_eq!(heads(&net, c, d), want.clone());
            prop_assert_eq!(text(net.doc(c, d).expect("open")), text(&relay_stored[di]));
            prop_assert_eq!(stored_doc(&net, c, d).get_heads(), want.clone());
        }
    }
    // Every edit that was not lost with its device's crash is everywhere.
    for (_, doc, mark) in made {
        prop_assert!(marks(&relay_stored[doc]).contains(&mark), "{} lost", mark);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("CHIBO_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(48), .. ProptestConfig::default() })]

    /// Any interleaving of edits, partitions, crashes and frame faults ends, once everyone is
    /// reconnected, with identical heads and state everywhere and every durable edit present.
    #[test]
    fn any_interleaving_converges(ops in proptest::collection::vec(op(), 1..60), seed in any::<u64>(),
                                  (drop, duplicate, reorder) in prop_oneof![Just((0u8, 0u8, 0u8)), (0u8..5, 0u8..5, 0u8..5)]) {
        check_interleaving(ops, seed, (drop, duplicate, reorder), QUIESCENCE_LIMIT)?;
    }
}

/// Regression (proptest seed `d5339644…` in `proptest-regressions/sync/tests.txt`): a frame
/// carrying change 6effe3 from a device to the relay was lost, a later one with its child got
/// through, and once the links healed the relay asked for 6effe3 (`need`) while the device, which
/// had it in `sent_hashes`, answered without it: the same 207- and 167-byte sync messages for
/// ever. Deterministic since the engine shares documents in a fixed order.
#[test]
fn healed_links_fall_quiet_after_lost_and_reordered_sync_messages() {
    let ops = vec![
        Op::Connect { client: 2 },
        Op::Run { steps: 162 },
        Op::Edit { client: 1, doc: 1 },
        Op::Run { steps: 63 },
        Op::Edit { client: 1, doc: 0 },
        Op::Run { steps: 136 },
        Op::CrashRelay,
        Op::Edit { client: 1, doc: 1 },
        Op::Run { steps: 31 },
        Op::Run { steps: 89 },
        Op::Run { steps: 15 },
        Op::Edit { client: 2, doc: 1 },
        Op::Isolate { client: 0 },
        Op::Edit { client: 2, doc: 1 },
        Op::Edit { client: 1, doc: 1 },
        Op::Edit { client: 0, doc: 1 },
        Op::Connect { client: 2 },
        Op::Edit { client: 1, doc: 0 },
        Op::Edit { client: 2, doc: 1 },
        Op::Connect { client: 0 },
        Op::Run { steps: 117 },
        Op::Edit { client: 2, doc: 0 },
        Op::Connect { client: 1 },
        Op::Run { steps: 193 },
        Op::Edit { client: 2, doc: 0 },
        Op::Connect { client: 0 },
        Op::Edit { client: 2, doc: 1 },
        Op::Run { steps: 193 },
        Op::Isolate { client: 0 },
        Op::Isolate { client: 1 },
        Op::CrashClient { client: 1 },
        Op::Run { steps: 255 },
        Op::Run { steps: 116 },
        Op::Run { steps: 72 },
        Op::Edit { client: 0, doc: 1 },
        Op::Edit { client: 1, doc: 0 },
        Op::Edit { client: 2, doc: 1 },
        Op::Edit { client: 0, doc: 1 },
        Op::Connect { client: 1 },
        Op::Isolate { client: 0 },
    ];
    let outcome = check_interleaving(ops, 1_285_582_513_181_342_566, (4, 0, 3), 100_000);
    assert!(outcome.is_ok(), "{outcome:?}");
}

/// A device streams changes while the relay crashes and comes back. However frames and writes
/// interleave, the relay ends up storing everything and its last word to the device acknowledges
/// everything (regression: a reply held back for durability was never sent when the device
/// repeated its heads meanwhile, because automerge then counts our heads as told).
#[test]
fn a_stream_survives_a_relay_crash_and_ends_acknowledged() {
    for seed in 0..40u64 {
        let mut net = Network::new(seed);
        let relay = net.add_node(Role::Relay);
        let a = net.add_node(Role::Client);
        let doc = doc_id(8);
        net.open(a, doc, Some(genesis()));
        net.connect(a, relay);
        net.run_until_quiescent();
        let crash_at = 5 + seed % 30;
        for i in 0..40u64 {
            assert!(edit(&mut net, a, doc, &format!("{i} ")));
            net.run_steps(seed % 7 + i % 5);
            if i == crash_at {
                net.crash(relay);
                net.connect(a, relay);
            }
        }
        net.run_until_quiescent();
        let mut ours = heads(&net, a, &doc);
        ours.sort();
        let mut stored = stored_doc(&net, relay, &doc).get_heads();
        stored.sort();
        assert_eq!(stored, ours, "seed {seed}: the relay did not store everything");
        let states: Vec<_> = (0..20).filter_map(|c| net.node(a).engine.sync_state(ConnId(c), &doc)).collect();
        let mut theirs = states.last().and_then(|s| s.their_heads.clone()).expect("relay heads");
        theirs.sort();
        assert_eq!(theirs, ours, "seed {seed}: the relay's last word does not acknowledge everything");
    }
}

/// Allows every change but, unlike [`OpenAccess`], asks to see them: the relay's path.
struct CheckingAccess;

impl Access for CheckingAccess {
    type Principal = ();

    fn may_read(&self, _: &(), _: &DocumentId) -> bool {
        true
    }

    fn may_write(&self, _: &(), _: &DocumentId, _: &[IncomingChange]) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn messages_that_make_automerge_panic_close_their_sender_and_the_relay_keeps_serving() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("tests/fuzz_regressions")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "msg"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no fuzz regression inputs");
    let relay = PeerId::new("relay").expect("id");
    let mut e = Engine::new(EngineConfig::new(Role::Relay, relay.clone()), CheckingAccess);
    let join = |s: &str| {
        wire::Message::Join {
            sender: PeerId::new(s).expect("id"),
            supported_versions: vec!["1".into()],
            metadata: None,
        }
        .encode()
    };
    let mut closed = 0;
    for (n, data) in inputs.into_iter().enumerate() {
        let conn = ConnId(u64::try_from(n).unwrap_or(0) + 1);
        let name = format!("fuzzer-{n}");
        let doc = doc_id(u8::try_from(n % 200).unwrap_or(0));
        e.handle(0, Input::Connected { conn, direction: Direction::Inbound, principal: () });
        e.handle(0, Input::Frame { conn, bytes: join(&name) });
        let sync = wire::Message::Sync {
            sender: PeerId::new(name).expect("id"),
            target: relay.clone(),
            document: doc,
            data,
        };
        let mut fx = e.handle(0, Input::Frame { conn, bytes: sync.encode() });
        if fx.iter().any(|f| matches!(f, Effect::Load { doc: d } if *d == doc)) {
            fx.extend(e.handle(0, Input::Loaded { doc, chunks: vec![] }));
        }
        // Most are refused (automerge panicked or rejected them); a few are harmless on an empty
        // document. What matters: the engine is still here for the next one.
        closed += usize::from(fx.iter().any(|f| matches!(f, Effect::Close { conn: c, .. } if *c == conn)));
    }
    assert!(closed > 0, "no input was refused");
    // The engine still serves: a healthy peer syncs a document through it.
    let mut am = Automerge::new();
    am.transact(|tx| tx.put(ROOT, "k", 1)).ok();
    let mut state = automerge::sync::State::new();
    let first = automerge::sync::SyncDoc::generate_sync_message(&am, &mut state).expect("a message");
    let good = ConnId(10_000);
    e.handle(0, Input::Connected { conn: good, direction: Direction::Inbound, principal: () });
    e.handle(0, Input::Frame { conn: good, bytes: join("good") });
    let doc = doc_id(250);
    let msg = wire::Message::Sync {
        sender: PeerId::new("good").expect("id"),
        target: relay,
        document: doc,
        data: first.encode(),
    };
    let mut fx = e.handle(0, Input::Frame { conn: good, bytes: msg.encode() });
    fx.extend(e.handle(0, Input::Loaded { doc, chunks: vec![] }));
    assert!(
        fx.iter().any(|f| matches!(f, Effect::Send { conn, .. } if *conn == good)),
        "no answer to a healthy peer"
    );
    assert!(!fx.iter().any(|f| matches!(f, Effect::Close { .. })), "a healthy peer was closed");
}

/// A principal that may send only a document's genesis.
struct ReadOnly;

impl Access for ReadOnly {
    type Principal = ();

    fn may_read(&self, _: &(), _: &DocumentId) -> bool {
        true
    }

    fn write_scope(&self, _: &(), _: &DocumentId) -> WriteScope {
        WriteScope::GenesisOnly
    }

    fn may_write(&self, _: &(), _: &DocumentId, _: &[IncomingChange]) -> Result<(), String> {
        Err("read only".into())
    }
}

#[test]
fn a_bundle_from_a_peer_that_may_not_write_is_refused_without_decoding() {
    // The input that makes automerge 0.12 ask for 4 GiB parsing its bundle: refused by its header.
    let oom = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions/incoming_changes__automerge-0.12.0__storage-bundle-storage.rs_147.oom");
    let data = std::fs::read(oom).expect("the OOM input");
    let message = automerge::sync::Message::decode(&data).expect("a sync message");
    assert_eq!(authorship::carries_bundle(&message), Ok(true));
    let relay = PeerId::new("relay").expect("id");
    let mut e = Engine::new(EngineConfig::new(Role::Relay, relay.clone()), ReadOnly);
    let conn = ConnId(1);
    e.handle(0, Input::Connected { conn, direction: Direction::Inbound, principal: () });
    let join = wire::Message::Join {
        sender: PeerId::new("reader").expect("id"),
        supported_versions: vec!["1".into()],
        metadata: None,
    };
    e.handle(0, Input::Frame { conn, bytes: join.encode() });
    let doc = doc_id(7);
    let sync = wire::Message::Sync {
        sender: PeerId::new("reader").expect("id"),
        target: relay,
        document: doc,
        data,
    };
    let mut fx = e.handle(0, Input::Frame { conn, bytes: sync.encode() });
    fx.extend(e.handle(0, Input::Loaded { doc, chunks: vec![] }));
    let refused = fx
        .iter()
        .any(|f| matches!(f, Effect::Close { conn: c, reason: CloseReason::Refused { .. } } if *c == conn));
    assert!(refused, "{fx:?}");
}

// ----- several relays on one store -----

/// Two relays sharing one store (as two relay processes on one PostgreSQL database), a client
/// on each, and `doc` open with the genesis on both clients.
fn two_relays(seed: u64, doc: DocumentId) -> (Network, [NodeId; 2], [NodeId; 2]) {
    let mut net = Network::new(seed);
    let (r1, r2) = (net.add_node(Role::Relay), net.add_node(Role::Relay));
    net.share_store(r1, r2);
    let (a, b) = (net.add_node(Role::Client), net.add_node(Role::Client));
    for n in [a, b] {
        net.open(n, doc, Some(genesis()));
    }
    net.connect(a, r1);
    net.connect(b, r2);
    net.run_until_quiescent();
    (net, [r1, r2], [a, b])
}

#[test]
fn a_change_stored_by_one_relay_reaches_the_peers_of_another() {
    let doc = doc_id(20);
    let (mut net, [r1, r2], [a, b]) = two_relays(20, doc);
    assert!(edit(&mut net, a, doc, "from a "));
    net.run_until_quiescent();
    assert_eq!(text(net.doc(b, &doc).expect("loaded")), "from a ");
    // Concurrent edits on both sides converge everywhere, in memory and in the store.
    assert!(edit(&mut net, a, doc, "a2 "));
    assert!(edit(&mut net, b, doc, "b2 "));
    net.run_until_quiescent();
    let want = heads(&net, a, &doc);
    assert_eq!(heads(&net, b, &doc), want);
    assert_eq!(heads(&net, r1, &doc), want);
    assert_eq!(heads(&net, r2, &doc), want);
    assert_eq!(stored_doc(&net, r1, &doc).get_heads(), want);
    assert_eq!(marks(&stored_doc(&net, r2, &doc)).len(), 3);
    assert_eq!(text(net.doc(a, &doc).expect("a")), text(net.doc(b, &doc).expect("b")));
    assert_acks_durable(&net, r1, &[a, b], &[doc]);
}

/// Builds a relay engine with one joined peer that has sent a first sync message for `doc`, and
/// loads `doc` from `stored`.
fn relay_with_peer(doc: DocumentId, stored: Vec<Chunk>) -> (Engine, ConnId, PeerId) {
    let relay = PeerId::new("relay").expect("id");
    let peer = PeerId::new("peer").expect("id");
    let mut e = Engine::new(EngineConfig::new(Role::Relay, relay.clone()), OpenAccess);
    let conn = ConnId(1);
    e.handle(0, Input::Connected { conn, direction: Direction::Inbound, principal: () });
    let join =
        wire::Message::Join { sender: peer.clone(), supported_versions: vec!["1".into()], metadata: None };
    e.handle(0, Input::Frame { conn, bytes: join.encode() });
    let mut state = automerge::sync::State::new();
    let hello = automerge::sync::SyncDoc::generate_sync_message(&Automerge::new(), &mut state)
        .expect("a first message")
        .encode();
    let sync = wire::Message::Sync { sender: peer.clone(), target: relay, document: doc, data: hello };
    let fx = e.handle(0, Input::Frame { conn, bytes: sync.encode() });
    assert!(fx.contains(&Effect::Load { doc }), "{fx:?}");
    e.handle(0, Input::Loaded { doc, chunks: stored });
    (e, conn, peer)
}

/// A chunk holding the changes `doc` has after `before`.
fn chunk_after(doc: &Automerge, before: &[ChangeHash]) -> Chunk {
    let bytes = doc.save_after(before);
    Chunk { key: crate::storage::ChunkKey::incremental(&bytes), bytes }
}

#[test]
fn what_another_relay_stored_is_merged_and_synced_but_not_written_again() {
    let doc = doc_id(21);
    let mut source = Automerge::new();
    source.load_incremental(&genesis()).expect("genesis");
    let first = chunk_after(&source, &[]);
    let (mut e, conn, peer) = relay_with_peer(doc, vec![first.clone()]);

    // Unknown documents are ignored: the next load reads the store anyway.
    assert!(e.handle(1, Input::StorageChanged { doc: doc_id(99), chunks: vec![first.clone()] }).is_empty());
    assert!(!e.has_document(&doc_id(99)));

    // Another relay stores a change: it is merged, announced and sent, and nothing is written.
    let before = source.get_heads();
    let text_obj = source.get(ROOT, TEXT).expect("get").expect("text").1;
    let mut tx = source.transaction();
    tx.splice_text(&text_obj, 0, 0, "elsewhere").expect("splice");
    tx.commit();
    let second = chunk_after(&source, &before);
    let fx = e.handle(2, Input::StorageChanged { doc, chunks: vec![first.clone(), second.clone()] });
    assert!(fx.contains(&Effect::DocChanged { doc }), "{fx:?}");
    assert!(
        !fx.iter().any(|f| matches!(f, Effect::Write { .. })),
        "stored changes are not written again: {fx:?}"
    );
    assert!(fx.iter().any(|f| matches!(f, Effect::Send { conn: c, .. } if *c == conn)), "{fx:?}");
    assert_eq!(e.doc(&doc).expect("loaded").get_heads(), source.get_heads());

    // The same chunks again: nothing new, nothing to do.
    let fx = e.handle(3, Input::StorageChanged { doc, chunks: vec![first, second] });
    assert!(!fx.iter().any(|f| matches!(f, Effect::DocChanged { .. } | Effect::Write { .. })), "{fx:?}");

    // The peer's own next change is written alone: the stored change is not in that write.
    let mut theirs = source.fork().with_actor(automerge::ActorId::from(b"peer".to_vec()));
    let their_before = theirs.get_heads();
    let mut tx = theirs.transaction();
    tx.put(ROOT, "peer", 1).expect("put");
    tx.commit();
    let written = exchange(&mut e, conn, &peer, &mut theirs);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].bytes, theirs.save_after(&their_before), "only the peer's change is written");
    assert_eq!(e.doc(&doc).expect("loaded").get_heads(), theirs.get_heads());
}

/// Syncs `theirs` with the relay engine `e` over `conn` until neither has more to say, carrying
/// out the relay's writes at once; returns the chunks it wrote.
fn exchange(e: &mut Engine, conn: ConnId, peer: &PeerId, theirs: &mut Automerge) -> Vec<Chunk> {
    let relay = e.peer_id().clone();
    let doc = doc_id(21);
    let mut state = automerge::sync::State::new();
    let mut written = Vec::new();
    let mut inbox: Vec<Input<()>> = Vec::new();
    for _ in 0..20 {
        if let Some(m) = automerge::sync::SyncDoc::generate_sync_message(theirs, &mut state) {
            let sync = wire::Message::Sync {
                sender: peer.clone(),
                target: relay.clone(),
                document: doc,
                data: m.encode(),
            };
            inbox.push(Input::Frame { conn, bytes: sync.encode() });
        }
        if inbox.is_empty() {
            break;
        }
        for input in std::mem::take(&mut inbox) {
            for f in e.handle(5, input) {
                match f {
                    Effect::Write { doc, write, batch } => {
                        written.extend(batch.puts);
                        inbox.push(Input::Written { doc, write });
                    }
                    Effect::Send { bytes, .. } => {
                        if let wire::Message::Sync { data, .. } =
                            wire::Message::decode(&bytes).expect("decodes")
                        {
                            let m = automerge::sync::Message::decode(&data).expect("sync message");
                            automerge::sync::SyncDoc::receive_sync_message(theirs, &mut state, m)
                                .expect("receive");
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    written
}

#[test]
fn storage_changes_that_arrive_while_loading_apply_once_loaded() {
    let doc = doc_id(22);
    let relay = PeerId::new("relay").expect("id");
    let mut e = Engine::new(EngineConfig::new(Role::Relay, relay.clone()), OpenAccess);
    let conn = ConnId(1);
    e.handle(0, Input::Connected { conn, direction: Direction::Inbound, principal: () });
    let peer = PeerId::new("peer").expect("id");
    let join =
        wire::Message::Join { sender: peer.clone(), supported_versions: vec!["1".into()], metadata: None };
    e.handle(0, Input::Frame { conn, bytes: join.encode() });
    let mut state = automerge::sync::State::new();
    let hello = automerge::sync::SyncDoc::generate_sync_message(&Automerge::new(), &mut state)
        .expect("a first message")
        .encode();
    let sync = wire::Message::Sync { sender: peer, target: relay, document: doc, data: hello };
    e.handle(0, Input::Frame { conn, bytes: sync.encode() });
    assert!(e.has_document(&doc) && e.doc(&doc).is_none(), "loading");

    let mut source = Automerge::new();
    source.load_incremental(&genesis()).expect("genesis");
    let stored = chunk_after(&source, &[]);
    // The notification's reload lands before the (older) load does.
    assert!(e.handle(1, Input::StorageChanged { doc, chunks: vec![stored] }).is_empty());
    let fx = e.handle(2, Input::Loaded { doc, chunks: vec![] });
    assert!(!fx.iter().any(|f| matches!(f, Effect::Write { .. })), "{fx:?}");
    assert_eq!(e.doc(&doc).expect("loaded").get_heads(), source.get_heads());
}

#[test]
fn compaction_on_relays_sharing_a_store_keeps_every_change() {
    let doc = doc_id(23);
    let (mut net, [r1, r2], [a, b]) = two_relays(23, doc);
    for i in 0..150 {
        let (who, mark) = if i % 3 == 0 { (b, format!("b{i},")) } else { (a, format!("a{i},")) };
        assert!(edit(&mut net, who, doc, &mark));
        net.run_steps(i % 11);
        if i % 10 == 0 {
            net.run_until_quiescent();
        }
    }
    net.run_until_quiescent();
    let stored = stored_doc(&net, r1, &doc);
    assert_eq!(marks(&stored).len(), 150);
    assert_eq!(stored.get_heads(), heads(&net, a, &doc));
    assert_eq!(heads(&net, b, &doc), heads(&net, a, &doc));
    let chunks = net.node(r2).store.get(&doc).map_or(0, |m| m.len());
    assert!(chunks < 70, "the shared store still has {chunks} chunks");
}

/// Streams through two relays on one store, with one relay crashing (its device moves to the
/// other) and notifications lost for a while (the host then reloads everything it holds): every
/// edit ends everywhere, and nothing a device heard acknowledged is missing from the store.
#[test]
fn relays_sharing_a_store_converge_through_crashes_and_lost_notifications() {
    for seed in 0..12u64 {
        let doc = doc_id(24);
        let (mut net, [r1, r2], [a, b]) = two_relays(seed, doc);
        let c = net.add_node(Role::Client);
        net.open(c, doc, Some(genesis()));
        net.connect(c, r2);
        let mut marks_made = Vec::new();
        // Notifications are lost from edit 5 to 15 (then both hosts reload what they hold); r1
        // crashes somewhere in 20..35.
        let crash_at = 20 + seed % 15;
        for i in 0..40u64 {
            let who = [a, b, c][(i % 3) as usize];
            let mark = format!("{who:?}-{i} ");
            if edit(&mut net, who, doc, &mark) {
                marks_made.push(mark);
            }
            net.run_steps(seed % 5 + i % 7);
            assert_acks_durable(&net, r1, &[a, b, c], &[doc]);
            if i == crash_at {
                net.crash(r1);
                net.connect(a, r2);
            }
            if i == 5 {
                net.lose_notifications = true;
            }
            if i == 15 {
                net.lose_notifications = false;
                net.reload_all(r1);
                net.reload_all(r2);
            }
        }
        net.run_until_quiescent();
        let stored = stored_doc(&net, r2, &doc);
        let want = stored.get_heads();
        for n in [a, b, c] {
            assert_eq!(heads(&net, n, &doc), want, "seed {seed}: {n:?}");
        }
        let all = marks(&stored);
        for m in &marks_made {
            assert!(all.contains(m), "seed {seed}: {m} lost");
        }
        assert_eq!(all.len(), marks_made.len(), "seed {seed}");
    }
}

#[test]
fn after_lost_notifications_reloading_what_is_in_memory_catches_up() {
    let doc = doc_id(25);
    let (mut net, [_, r2], [a, b]) = two_relays(25, doc);
    net.lose_notifications = true;
    assert!(edit(&mut net, a, doc, "unheard "));
    net.run_until_quiescent();
    assert_eq!(text(net.doc(b, &doc).expect("b")), "", "the notification was lost");
    net.lose_notifications = false;
    net.reload_all(r2);
    net.run_until_quiescent();
    assert_eq!(text(net.doc(b, &doc).expect("b")), "unheard ");
    assert_eq!(heads(&net, b, &doc), heads(&net, a, &doc));
}

/// A device and a relay that have synced `n` documents; the device is offline again and the
/// relay has forgotten them. Returns the network, relay, device and documents.
fn synced_then_offline(
    client_plain: bool,
    relay_plain: bool,
    n: u8,
) -> (Network, NodeId, NodeId, Vec<DocumentId>) {
    let mut net = Network::new(u64::from(n) + 40);
    let relay = if relay_plain { net.add_plain_node(Role::Relay) } else { net.add_node(Role::Relay) };
    let a = if client_plain { net.add_plain_node(Role::Client) } else { net.add_node(Role::Client) };
    let docs: Vec<DocumentId> = (0..n).map(|i| doc_id(100 + i)).collect();
    for &doc in &docs {
        net.open(a, doc, Some(genesis()));
    }
    net.run_until_quiescent();
    for &doc in &docs {
        assert!(edit(&mut net, a, doc, "x"));
    }
    let link = net.connect(a, relay);
    net.run_until_quiescent();
    for doc in &docs {
        assert_eq!(heads(&net, a, doc), stored_doc(&net, relay, doc).get_heads());
    }
    net.disconnect(link);
    net.run_until_quiescent();
    assert_eq!(net.node(relay).engine.documents_in_memory(), 0);
    net.delivered.clear();
    (net, relay, a, docs)
}

/// Whether the client's sync state with the relay says it holds exactly `doc`'s heads.
fn acknowledged(net: &Network, client: NodeId, doc: &DocumentId) -> bool {
    let ours = heads(net, client, doc);
    (0..200).map(ConnId).any(|conn| {
        net.node(client).engine.sync_state(conn, doc).and_then(|s| s.their_heads.clone()).is_some_and(
            |mut t| {
                t.sort();
                let mut o = ours.clone();
                o.sort();
                t == o
            },
        )
    })
}

fn kinds(net: &Network) -> Vec<&'static str> {
    net.delivered.iter().map(|d| d.kind).collect()
}

#[test]
fn reconnecting_with_unchanged_documents_costs_one_summary_and_one_answer() {
    let (mut net, relay, a, docs) = synced_then_offline(false, false, 50);
    net.connect(a, relay);
    let hops = net.run_in_rounds();
    // join → peer, then summary → answer: two round trips, the handshake included.
    assert_eq!(kinds(&net), ["join", "peer", "chibo-heads-summary", "chibo-heads-differ"]);
    assert_eq!(hops, 4);
    let summary = net.delivered.iter().find(|d| d.kind == "chibo-heads-summary").map_or(0, |d| d.bytes);
    assert!(summary <= 64 * docs.len(), "{summary} bytes for {} documents", docs.len());
    for doc in &docs {
        assert!(acknowledged(&net, a, doc), "{doc} not acknowledged after the summary");
    }
    // The relay holds them for the connection (live updates), and nothing more is said.
    assert_eq!(net.node(relay).engine.documents_in_memory(), docs.len());
    assert_eq!(net.run_until_quiescent(), 0);
}

#[test]
fn documents_synced_by_summary_carry_live_changes_both_ways() {
    let (mut net, relay, a, docs) = synced_then_offline(false, false, 3);
    net.connect(a, relay);
    net.run_until_quiescent();
    let b = net.add_node(Role::Client);
    net.open(b, docs[1], Some(genesis()));
    net.connect(b, relay);
    net.run_until_quiescent();
    assert!(edit(&mut net, a, docs[1], "from-a "));
    net.run_until_quiescent();
    assert!(text(net.doc(b, &docs[1]).expect("loaded")).contains("from-a "));
    assert!(edit(&mut net, b, docs[1], "from-b "));
    net.run_until_quiescent();
    assert!(text(net.doc(a, &docs[1]).expect("loaded")).contains("from-b "));
    for doc in &docs {
        assert_eq!(heads(&net, a, doc), stored_doc(&net, relay, doc).get_heads());
        assert!(acknowledged(&net, a, doc));
    }
    assert_acks_durable(&net, relay, &[a, b], &docs);
}

#[test]
fn the_summary_answer_names_only_documents_that_differ_and_those_converge() {
    let (mut net, relay, a, docs) = synced_then_offline(false, false, 5);
    // While a is offline: a edits docs[0], another device edits docs[1] through the relay.
    assert!(edit(&mut net, a, docs[0], "offline "));
    let b = net.add_node(Role::Client);
    net.open(b, docs[1], Some(genesis()));
    let link = net.connect(b, relay);
    net.run_until_quiescent();
    assert!(edit(&mut net, b, docs[1], "meanwhile "));
    net.run_until_quiescent();
    net.disconnect(link);
    net.run_until_quiescent();
    net.delivered.clear();

    net.connect(a, relay);
    net.run_until_quiescent();
    let synced: BTreeSet<DocumentId> = net
        .delivered
        .iter()
        .filter(|d| d.kind == "sync" || d.kind == "request")
        .filter_map(|d| d.doc)
        .collect();
    assert_eq!(synced, BTreeSet::from([docs[0], docs[1]]));
    assert!(kinds(&net).contains(&"chibo-heads-differ"));
    for doc in &docs {
        assert_eq!(heads(&net, a, doc), stored_doc(&net, relay, doc).get_heads(), "{doc}");
        assert!(acknowledged(&net, a, doc), "{doc}");
    }
    assert!(text(net.doc(a, &docs[1]).expect("loaded")).contains("meanwhile "));
    assert!(text(&stored_doc(&net, relay, &docs[0])).contains("offline "));
    assert_acks_durable(&net, relay, &[a], &docs);
}

#[test]
fn a_plain_side_on_either_end_keeps_the_plain_protocol() {
    for (client_plain, relay_plain) in [(true, false), (false, true), (true, true)] {
        let (mut net, relay, a, docs) = synced_then_offline(client_plain, relay_plain, 4);
        assert!(edit(&mut net, a, docs[0], "offline "));
        net.connect(a, relay);
        net.run_until_quiescent();
        let ks = kinds(&net);
        assert!(!ks.iter().any(|k| k.starts_with("chibo-")), "{client_plain} {relay_plain}: {ks:?}");
        let to_relay = net.delivered.iter().filter(|d| d.to == relay && d.kind == "sync").count();
        assert!(to_relay >= docs.len(), "{client_plain} {relay_plain}: one sync message per document");
        for doc in &docs {
            assert_eq!(heads(&net, a, doc), stored_doc(&net, relay, doc).get_heads());
            assert!(acknowledged(&net, a, doc));
        }
    }
}

#[test]
fn plain_reconnect_costs_one_sync_message_each_way_per_document() {
    // The figure the summary improves on (bench/MEMORY.md): same round trips, bytes per document.
    let (mut net, relay, a, docs) = synced_then_offline(true, false, 50);
    net.connect(a, relay);
    let hops = net.run_in_rounds();
    assert_eq!(hops, 4);
    let sync_bytes: usize = net.delivered.iter().filter(|d| d.kind == "sync").map(|d| d.bytes).sum();
    assert!(
        sync_bytes > 64 * docs.len(),
        "{sync_bytes} bytes: the plain protocol would already meet the goal"
    );
}

#[test]
fn relay_gives_back_the_room_of_evicted_documents() {
    let mut net = Network::new(77);
    let relay = net.add_node(Role::Relay);
    let a = net.add_node(Role::Client);
    let docs: Vec<DocumentId> = (0..300u16)
        .map(|i| {
            let mut id = [9u8; 16];
            id[..2].copy_from_slice(&i.to_le_bytes());
            DocumentId::from_bytes(id)
        })
        .collect();
    for &doc in &docs {
        net.open(a, doc, Some(genesis()));
    }
    let link = net.connect(a, relay);
    net.run_until_quiescent();
    assert_eq!(net.node(relay).engine.documents_in_memory(), docs.len());
    net.disconnect(link);
    net.run_until_quiescent();
    assert_eq!(net.node(relay).engine.documents_in_memory(), 0);
    assert!(
        net.node(relay).engine.documents_capacity() <= 128,
        "{}",
        net.node(relay).engine.documents_capacity()
    );
}
