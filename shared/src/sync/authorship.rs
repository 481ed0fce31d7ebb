//! Who authored the changes in a sync message, read before any of them touches a document.
//!
//! A sync message carries changes as automerge storage chunks: single changes (plain or
//! compressed), bundles of changes, or a whole document. [`incoming_changes`] splits the chunks
//! itself and refuses anything it does not understand (and bundles, which automerge's sync does
//! not send and which automerge 0.12 cannot parse safely), so no change can reach
//! `receive_sync_message` without having been listed here (the fuzz target `change_check`
//! compares this list with what automerge really applies).

use automerge::{ActorId, Automerge, Change, ChangeHash};

/// The first four bytes of every automerge storage chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;
const CHUNK_BUNDLE: u8 = 3;

/// One change a sync message brings: its hash and its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingChange {
    pub hash: ChangeHash,
    pub actor: ActorId,
}

/// Why the changes of a sync message cannot be listed. The message is then refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeListError {
    #[error("chunk {index} does not start with the automerge magic bytes")]
    Magic { index: usize },
    #[error("chunk {index} is cut short")]
    Truncated { index: usize },
    #[error("chunk {index} has unknown type {kind}")]
    UnknownType { index: usize, kind: u8 },
    #[error("chunk {index} is a bundle of changes, which this relay does not take")]
    Bundle { index: usize },
    #[error("chunk {index} does not decode: {error}")]
    Decode { index: usize, error: String },
}

/// Every change in `message`, in the order they appear (duplicates kept).
pub fn incoming_changes(message: &automerge::sync::Message) -> Result<Vec<IncomingChange>, ChangeListError> {
    let mut out = Vec::new();
    let mut index = 0;
    for entry in message.changes.iter() {
        let mut rest = entry;
        while !rest.is_empty() {
            let (kind, chunk, tail) = split_chunk(rest, index)?;
            list_chunk(kind, chunk, index, &mut out)?;
            rest = tail;
            index += 1;
        }
    }
    Ok(out)
}

/// Whether `message` carries a bundle chunk, from the chunk headers alone (nothing is decoded).
/// The relay refuses bundles from peers that may only send a document's genesis: automerge 0.12
/// can be made to allocate gigabytes parsing a crafted bundle (fuzz/README.md).
pub fn carries_bundle(message: &automerge::sync::Message) -> Result<bool, ChangeListError> {
    let mut index = 0;
    for entry in message.changes.iter() {
        let mut rest = entry;
        while !rest.is_empty() {
            let (kind, _, tail) = split_chunk(rest, index)?;
            if kind == CHUNK_BUNDLE {
                return Ok(true);
            }
            rest = tail;
            index += 1;
        }
    }
    Ok(false)
}

/// Splits the first chunk off `bytes`: its type, the whole chunk (header included), the rest.
fn split_chunk(bytes: &[u8], index: usize) -> Result<(u8, &[u8], &[u8]), ChangeListError> {
    let truncated = ChangeListError::Truncated { index };
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(if bytes.len() < MAGIC.len() { truncated } else { ChangeListError::Magic { index } });
    }
    // magic (4), checksum (4), type (1), then the data length as unsigned LEB128.
    let kind = *bytes.get(8).ok_or(truncated.clone())?;
    let (len, len_bytes) = uleb128(bytes.get(9..).unwrap_or_default()).ok_or(truncated.clone())?;
    let end = 9usize
        .checked_add(len_bytes)
        .and_then(|h| h.checked_add(usize::try_from(len).ok()?))
        .filter(|end| *end <= bytes.len())
        .ok_or(truncated)?;
    Ok((kind, &bytes[..end], &bytes[end..]))
}

/// An unsigned LEB128 number and how many bytes it took; `None` if cut short or over 64 bits.
fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        let shift = 7 * u32::try_from(i).ok()?;
        if shift == 63 && low > 1 {
            return None;
        }
        value |= low << shift;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn list_chunk(
    kind: u8,
    chunk: &[u8],
    index: usize,
    out: &mut Vec<IncomingChange>,
) -> Result<(), ChangeListError> {
    let decode = |error: String| ChangeListError::Decode { index, error };
    let push = |out: &mut Vec<IncomingChange>, c: &Change| {
        out.push(IncomingChange { hash: c.hash(), actor: c.actor_id().clone() });
    };
    match kind {
        CHUNK_CHANGE | CHUNK_COMPRESSED => {
            let change = Change::try_from(chunk).map_err(|e| decode(e.to_string()))?;
            push(out, &change);
        }
        // automerge's own sync never sends bundles (it sends changes or a whole document), and a
        // crafted bundle makes automerge 0.12 allocate 4 GiB and abort (fuzz/README.md): refused.
        CHUNK_BUNDLE => return Err(ChangeListError::Bundle { index }),
        CHUNK_DOCUMENT => {
            let doc = Automerge::load(chunk).map_err(|e| decode(e.to_string()))?;
            for change in doc.get_changes(&[]) {
                push(out, &change);
            }
        }
        other => return Err(ChangeListError::UnknownType { index, kind: other }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use automerge::sync::SyncDoc as _;
    use automerge::transaction::Transactable as _;
    use automerge::{ROOT, ReadDoc as _};

    use super::*;

    fn doc_with(actor: &[u8], edits: usize) -> Automerge {
        let mut am = Automerge::new().with_actor(ActorId::from(actor));
        for i in 0..edits {
            let mut tx = am.transaction();
            tx.put(ROOT, format!("k{i}"), i64::try_from(i).unwrap_or_default()).ok();
            tx.commit();
        }
        am
    }

    /// Runs the sync protocol from `from` to an empty peer and returns every message it sends.
    fn messages_to_empty_peer(from: &Automerge) -> Vec<automerge::sync::Message> {
        let mut to = Automerge::new();
        let (mut a, mut b) = (automerge::sync::State::new(), automerge::sync::State::new());
        let mut sent = Vec::new();
        for _ in 0..10 {
            let mut quiet = true;
            if let Some(m) = from.generate_sync_message(&mut a) {
                quiet = false;
                sent.push(m.clone());
                to.receive_sync_message(&mut b, m).ok();
            }
            if let Some(m) = to.generate_sync_message(&mut b) {
                quiet = false;
                let mut from = from.clone();
                from.receive_sync_message(&mut a, m).ok();
            }
            if quiet {
                break;
            }
        }
        sent
    }

    #[test]
    fn lists_the_author_of_every_change_a_peer_sends() {
        let am = doc_with(b"alice", 3);
        let expected: Vec<ChangeHash> = am.get_changes(&[]).iter().map(|c| c.hash()).collect();
        let mut listed = Vec::new();
        for m in messages_to_empty_peer(&am) {
            listed.extend(incoming_changes(&m).unwrap_or_default());
        }
        assert!(listed.iter().all(|c| c.actor == ActorId::from(b"alice".as_slice())));
        let mut hashes: Vec<ChangeHash> = listed.iter().map(|c| c.hash).collect();
        hashes.sort();
        hashes.dedup();
        let mut expected = expected;
        expected.sort();
        assert_eq!(hashes, expected);
    }

    #[test]
    fn lists_changes_inside_a_whole_document_chunk() {
        let mut am = doc_with(b"alice", 2);
        let mut other = doc_with(b"bob", 1);
        am.merge(&mut other).ok();
        let message = automerge::sync::Message {
            heads: am.get_heads(),
            need: vec![],
            have: vec![],
            changes: am.save().into(),
            flags: None,
            version: automerge::sync::MessageVersion::V2,
        };
        let listed = incoming_changes(&message).unwrap_or_default();
        let actors: std::collections::BTreeSet<ActorId> = listed.into_iter().map(|c| c.actor).collect();
        let want: std::collections::BTreeSet<ActorId> =
            [ActorId::from(b"alice".as_slice()), ActorId::from(b"bob".as_slice())].into();
        assert_eq!(actors, want);
        assert!(am.get(ROOT, "k0").ok().flatten().is_some());
    }

    #[test]
    fn refuses_bytes_it_does_not_understand() {
        let am = doc_with(b"alice", 1);
        let change = am.get_changes(&[])[0].raw_bytes().to_vec();
        let message = |changes: Vec<Vec<u8>>| automerge::sync::Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: changes.into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        let mut trailing = change.clone();
        trailing.push(0);
        assert!(matches!(
            incoming_changes(&message(vec![trailing])),
            Err(ChangeListError::Magic { .. }) | Err(ChangeListError::Truncated { .. })
        ));
        let mut unknown = change.clone();
        unknown[8] = 9;
        assert_eq!(
            incoming_changes(&message(vec![unknown])),
            Err(ChangeListError::UnknownType { index: 0, kind: 9 })
        );
        let mut corrupt = change.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert!(matches!(incoming_changes(&message(vec![corrupt])), Err(ChangeListError::Decode { .. })));
        let cut = change[..change.len() - 1].to_vec();
        assert_eq!(incoming_changes(&message(vec![cut])), Err(ChangeListError::Truncated { index: 0 }));
        let two = [change.clone(), change].concat();
        assert_eq!(incoming_changes(&message(vec![two])).map(|v| v.len()), Ok(2));
    }

    #[test]
    fn reads_leb128_lengths() {
        assert_eq!(uleb128(&[0x00]), Some((0, 1)));
        assert_eq!(uleb128(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        assert_eq!(uleb128(&[0x80]), None);
        assert_eq!(uleb128(&[0xff; 11]), None);
    }
}
