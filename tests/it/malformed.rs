//! Garbage on one connection closes that connection, is counted under the right reason, and
//! leaves the relay serving everyone else.

use anyhow::{Context as _, ensure};
use automerge::sync::SyncDoc as _;
use chibo_server::config::ServeConfig;
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::schema::{DocKind, ForumText, genesis, genesis_change_bytes};
use chibo_shared::wire::Message;
use ciborium::Value;
use futures::SinkExt as _;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::harness::{Device, Relay, TIMEOUT, append_text, binary, closed, raw_join};

/// The relay's limit in this test.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Every label of `chibo_frames_refused_total`.
const REASONS: [&str; 6] = ["text", "too_large", "malformed", "protocol", "forbidden", "forged_change"];
/// WebSocket close codes (RFC 6455).
const PROTOCOL_ERROR: u16 = 1002;
const UNSUPPORTED_DATA: u16 = 1003;
const MESSAGE_TOO_BIG: u16 = 1009;

/// A document no one has; bad frames address it.
const STRANGER: DocumentId = DocumentId::from_bytes([0x99; 16]);

/// One bad input: the frame to send (built from our peer id and the relay's, once joined).
struct Case {
    what: &'static str,
    join_first: bool,
    frame: fn(&PeerId, &PeerId) -> Frame,
    reason: &'static str,
    code: u16,
}

/// A CBOR map with text keys, as automerge-repo frames are.
fn cbor(entries: Vec<(&str, Value)>) -> Vec<u8> {
    let map = Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.to_owned()), v)).collect());
    let mut out = Vec::new();
    ciborium::ser::into_writer(&map, &mut out).expect("CBOR into memory");
    out
}

/// A well-formed automerge sync message (a first message about a forum).
fn sync_data() -> Vec<u8> {
    let doc = genesis(DocKind::Forum);
    doc.generate_sync_message(&mut automerge::sync::State::new()).expect("a first message").encode()
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

const CASES: [Case; 7] = [
    Case {
        what: "a binary frame that is not CBOR",
        join_first: false,
        frame: |_, _| binary(vec![0xff, 0x00, 0x01, 0x02]),
        reason: "malformed",
        code: PROTOCOL_ERROR,
    },
    Case {
        what: "a truncated automerge message in a valid sync",
        join_first: true,
        frame: |me, relay| {
            let data = sync_data();
            let truncated = data[..data.len() / 2].to_vec();
            let msg = Message::Sync {
                sender: me.clone(),
                target: relay.clone(),
                document: STRANGER,
                data: truncated,
            };
            binary(msg.encode())
        },
        reason: "malformed",
        code: PROTOCOL_ERROR,
    },
    Case {
        what: "an unknown message type",
        join_first: true,
        frame: |me, relay| {
            binary(cbor(vec![
                ("type", text("frobnicate")),
                ("senderId", text(me.as_str())),
                ("targetId", text(relay.as_str())),
            ]))
        },
        reason: "malformed",
        code: PROTOCOL_ERROR,
    },
    Case {
        what: "a text frame",
        join_first: false,
        frame: |_, _| Frame::text(r#"{"type":"join","senderId":"web"}"#),
        reason: "text",
        code: UNSUPPORTED_DATA,
    },
    Case {
        what: "a frame over the size limit",
        join_first: true,
        frame: |_, _| binary(vec![0u8; MAX_MESSAGE_BYTES + 32 * 1024]),
        reason: "too_large",
        code: MESSAGE_TOO_BIG,
    },
    Case {
        what: "a sync with a bad document id",
        join_first: true,
        frame: |me, relay| {
            binary(cbor(vec![
                ("type", text("sync")),
                ("senderId", text(me.as_str())),
                ("targetId", text(relay.as_str())),
                ("documentId", text("not-a-document-id")),
                ("data", Value::Bytes(sync_data())),
            ]))
        },
        reason: "malformed",
        code: PROTOCOL_ERROR,
    },
    Case {
        what: "a valid sync before the handshake",
        join_first: false,
        frame: |me, _| {
            let relay = PeerId::new("chibo-relay").expect("peer id");
            binary(
                Message::Sync { sender: me.clone(), target: relay, document: STRANGER, data: sync_data() }
                    .encode(),
            )
        },
        reason: "protocol",
        code: PROTOCOL_ERROR,
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_the_connection_and_the_relay_keeps_serving() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut config = ServeConfig::new(data.path());
    config.open_access = true;
    config.max_message_bytes = MAX_MESSAGE_BYTES;
    let relay = Relay::start(config).await?;

    // A well-behaved device, on its own connection throughout.
    let healthy = Device::new("secretary")?;
    let forum = DocumentId::from_bytes([0x42; 16]);
    healthy.client.open(forum, Some(genesis_change_bytes(DocKind::Forum))).await?;
    let conn = healthy.client.connect(&relay.url()).await?;
    healthy.client.wait_synced(forum, TIMEOUT).await?;

    let me = PeerId::new("rogue")?;
    for case in &CASES {
        let before = relay.metrics().await?;
        let (mut ws, _) = tokio_tungstenite::connect_async(relay.url()).await?;
        let relay_peer =
            if case.join_first { raw_join(&mut ws, &me).await? } else { PeerId::new("unknown")? };
        ws.send((case.frame)(&me, &relay_peer)).await?;
        let code = closed(&mut ws, false).await.with_context(|| case.what)?;
        match code {
            Some(code) => assert_eq!(code, case.code, "close code after {}", case.what),
            None => eprintln!("{}: the connection ended without a close frame", case.what),
        }

        let after = relay.metrics().await?;
        for reason in REASONS {
            let rose = after.refused(reason) - before.refused(reason);
            let want = if reason == case.reason { 1.0 } else { 0.0 };
            assert_eq!(rose, want, "chibo_frames_refused_total{{reason={reason:?}}} after {}", case.what);
        }

        // The healthy device still syncs, on the same connection.
        let note = format!("[sau: {}] ", case.what);
        healthy.client.change(forum, move |d| append_text(d, &ForumText::Minutes, &note)).await??;
        healthy.client.wait_synced(forum, TIMEOUT).await.with_context(|| format!("after {}", case.what))?;
        let same = healthy.client.with(|inner| inner.connection()).await?;
        ensure!(same == Some(conn), "the healthy device's connection was dropped after {}", case.what);
    }

    assert!(relay.is_serving(), "the relay task ended");
    let (status, body) = relay.get("/healthz").await?;
    assert_eq!((status, body.as_str()), (200, "ok"));
    relay.stop().await?;
    Ok(())
}
