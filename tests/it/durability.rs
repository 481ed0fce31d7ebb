//! The relay acknowledges only what is on its disk: killing it mid-stream loses nothing it
//! acknowledged, and the client finishes against a restarted relay.

use std::collections::BTreeSet;

use anyhow::Context as _;
use automerge::{ActorId, Automerge, ChangeHash};
use chibo_server::client::Inner;
use chibo_shared::ids::{BranchId, DocumentId, ForumId};
use chibo_shared::schema::{DocKind, DocPath, ForumText, genesis_change_bytes};
use chibo_shared::sync::Effect;

use crate::harness::{Device, RelayProcess, TIMEOUT, append_text, change_hashes, sorted, stored_doc};

const CHANGES: u64 = 1_000;
/// The relay is killed once it has acknowledged at least this many of the stream's changes.
const KILL_AFTER: u64 = 200;
/// The stream holds here until the relay has been killed, so the kill always falls mid-stream,
/// however slowly the relay's acknowledgements arrive on a loaded machine.
const HOLD_AT: u64 = 400;

/// How many of `actor`'s changes `heads` cover. The writer's changes form one chain (each
/// depends on the one before), so that is the highest sequence number among the heads.
pub(crate) fn covered(doc: &Automerge, heads: &[ChangeHash], actor: &ActorId) -> u64 {
    heads
        .iter()
        .filter_map(|h| doc.get_change_meta_by_hash(h))
        .filter(|meta| meta.actor.as_ref() == actor)
        .map(|meta| meta.seq)
        .max()
        .unwrap_or(0)
}

/// How many of the writer's changes the relay has acknowledged on the current connection.
pub(crate) fn acknowledged(inner: &Inner, doc: DocumentId, actor: &ActorId) -> u64 {
    match (inner.engine().doc(&doc), inner.relay_heads(&doc)) {
        (Some(d), Some(heads)) => covered(d, &heads, actor),
        _ => 0,
    }
}

/// How many of the writer's changes are on the device's own disk.
pub(crate) fn saved(inner: &Inner, doc: DocumentId, actor: &ActorId) -> u64 {
    let last = inner.events.iter().rev().find_map(|e| match e {
        Effect::Persisted { doc: d, heads } if *d == doc => Some(heads),
        _ => None,
    });
    match (inner.engine().doc(&doc), last) {
        (Some(d), Some(heads)) => covered(d, heads, actor),
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_stream_keeps_every_acknowledged_change() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = RelayProcess::spawn(data.path()).await?;
    let doc = DocPath::Forum { branch: BranchId::from_bytes([5; 16]), forum: ForumId::from_bytes([6; 16]) }
        .document_id();
    let writer = Device::new("clerk")?;
    writer.client.open(doc, Some(genesis_change_bytes(DocKind::Forum))).await?;
    writer.client.connect(&relay.url()).await?;

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
                // Like an editor showing "saved": each change waits for the device's disk. Without
                // this the client coalesces the whole stream into a few writes and sends it at the
                // end (it sends nothing while a write is in flight), leaving no middle to kill in.
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
        .wait_until("the relay to acknowledge enough", TIMEOUT, move |inner| {
            acknowledged(inner, doc, &actor) >= KILL_AFTER
        })
        .await?;
    // Read what the relay has acknowledged and kill it in one step on the client's task, so no
    // acknowledgement can arrive in between: everything in `acked` was told to us before death.
    let (acked_heads, killed) =
        writer.client.with(move |inner| (inner.relay_heads(&doc), relay.kill())).await?;
    killed?;
    let _ = killed_tx.send(());
    let acked_heads = acked_heads.context("the relay's heads were gone before the kill")?;
    let acked: BTreeSet<ChangeHash> =
        writer.client.read(doc, move |d| d.fork_at(&acked_heads).map(|f| change_hashes(&f))).await??;
    // Genesis plus at least KILL_AFTER of ours, and not the whole stream: the kill was mid-stream.
    assert!(acked.len() as u64 > KILL_AFTER, "only {} acknowledged", acked.len());
    assert!((acked.len() as u64) <= CHANGES, "the whole stream was acknowledged before the kill");

    let stored = change_hashes(&stored_doc(data.path(), doc).await?);
    let lost: Vec<&ChangeHash> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged changes are not in the relay's store: {lost:?}", lost.len());
    eprintln!(
        "killed with {} changes acknowledged and {} stored (of {} streamed)",
        acked.len() - 1,
        stored.len() - 1,
        CHANGES
    );

    // Restart on the same data (a new port), reconnect, and let the stream finish.
    let relay = RelayProcess::spawn(data.path()).await?;
    writer.client.connect(&relay.url()).await?;
    streamer.await??;
    writer.client.wait_synced(doc, TIMEOUT).await?;
    let ours = writer.snapshot(doc).await?;
    // Everything is acknowledged, so a kill now must lose nothing either.
    relay.kill()?;
    let stored = stored_doc(data.path(), doc).await?;
    assert_eq!(change_hashes(&ours).len() as u64, CHANGES + 1, "genesis and every streamed change");
    assert_eq!(change_hashes(&stored), change_hashes(&ours));
    assert_eq!(sorted(stored.get_heads()), sorted(ours.get_heads()));
    Ok(())
}
