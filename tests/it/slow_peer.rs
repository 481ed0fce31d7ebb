//! A peer that stops reading is cut off (its socket closed, so it can reconnect) rather than
//! left open and silently ignored, and the relay's memory does not grow for it.

use anyhow::{Context as _, bail};
use automerge::sync::SyncDoc as _;
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::schema::{DocKind, ForumText, genesis_change_bytes};
use chibo_shared::wire::Message;
use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::harness::{Device, Relay, TIMEOUT, append_text, binary, closed, raw_join};

/// Presence data of one ephemeral message (cursor, selection, ...), generously sized so the
/// socket buffers fill quickly.
const PRESENCE_BYTES: usize = 4 * 1024;
/// Ephemeral messages sent between looks at `/metrics`.
const ROUND: u64 = 500;
/// The relay's outbox holds 4,096 frames; past the socket buffers the slow peer must be cut off
/// long before this many rounds.
const MAX_ROUNDS: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_cut_off_and_the_others_keep_syncing() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start_in(data.path()).await?;
    let healthy = Device::new("secretary")?;
    let minutes = DocumentId::from_bytes([0x51; 16]);
    healthy.client.open(minutes, Some(genesis_change_bytes(DocKind::Forum))).await?;
    healthy.client.connect(&relay.url()).await?;
    healthy.client.wait_synced(minutes, TIMEOUT).await?;

    // The slow peer asks for a document, reads the answer, then never reads again.
    let shared = DocumentId::from_bytes([0x52; 16]);
    let slow_id = PeerId::new("slow-phone")?;
    let (mut slow, _) = tokio_tungstenite::connect_async(relay.url()).await?;
    let relay_peer = raw_join(&mut slow, &slow_id).await?;
    let first = automerge::Automerge::new()
        .generate_sync_message(&mut automerge::sync::State::new())
        .context("a first sync message")?;
    let request = Message::Request {
        sender: slow_id,
        target: relay_peer.clone(),
        document: shared,
        data: first.encode(),
    };
    slow.send(binary(request.encode())).await?;
    match tokio::time::timeout(TIMEOUT, slow.next()).await?.context("no answer")?? {
        Frame::Binary(bytes) if matches!(Message::decode(&bytes)?, Message::DocUnavailable { .. }) => {}
        other => bail!("expected doc-unavailable, got {other:?}"),
    }

    // Another peer floods presence for that document; the relay forwards it to the slow peer.
    let producer_id = PeerId::new("busy-laptop")?;
    let (mut producer, _) = tokio_tungstenite::connect_async(relay.url()).await?;
    raw_join(&mut producer, &producer_id).await?;
    let mut count = 0;
    let mut rounds = 0;
    loop {
        for _ in 0..ROUND {
            count += 1;
            let presence = Message::Ephemeral {
                sender: producer_id.clone(),
                target: relay_peer.clone(),
                count,
                session: "presence".into(),
                document: shared,
                data: vec![b'x'; PRESENCE_BYTES],
            };
            producer.feed(binary(presence.encode())).await?;
        }
        producer.flush().await?;
        rounds += 1;
        // Open: the healthy device, the producer, and the slow peer until it is cut off.
        let m = relay.metrics().await?;
        if m.get("chibo_connections_open") == 2.0 {
            break;
        }
        assert!(
            rounds < MAX_ROUNDS,
            "the slow peer's socket is still open after {count} presence messages \
             ({} documents in the relay's memory)",
            m.get("chibo_documents_in_memory")
        );
    }
    eprintln!("slow peer cut off after {count} presence messages");

    // Its socket is closed: once it reads again it gets what was buffered, then the end.
    closed(&mut slow, true).await.context("the slow peer's socket")?;
    // Everyone else is unaffected.
    healthy.client.change(minutes, |d| append_text(d, &ForumText::Minutes, "vẫn đồng bộ")).await??;
    healthy.client.wait_synced(minutes, TIMEOUT).await?;
    relay.stop().await?;
    Ok(())
}
