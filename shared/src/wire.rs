//! The automerge-repo sync protocol v1 on the wire: CBOR maps in binary WebSocket frames.
//!
//! This module only encodes and decodes; what a message means is the engine's business. Decoding
//! is strict about what we act on (types, ids, byte strings) and tolerant of fields we do not
//! know, as the JS client adds fields between versions.

use std::collections::BTreeMap;

use ciborium::Value;

use crate::ids::{DocumentId, IdError, PeerId};

/// The only protocol version we speak.
pub const PROTOCOL_V1: &str = "1";

/// CBOR nesting deeper than this is refused (automerge-repo messages are two levels deep).
const RECURSION_LIMIT: usize = 16;

/// What a peer says about itself in `join` and `peer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    pub storage_id: Option<String>,
    pub is_ephemeral: bool,
    /// chibo's extension (`chiboHeadsSummary: true`): this peer understands
    /// [`Message::HeadsSummary`] and [`Message::HeadsDiffer`]. automerge-repo ignores the field
    /// and never sends either message, so it keeps to the plain protocol.
    pub heads_summary: bool,
}

/// Bytes of [`HeadsDigest`].
pub const HEADS_DIGEST_LEN: usize = 8;

/// A document's heads in 8 bytes: the start of SHA-256 over the sorted heads. Two peers with the
/// same digest hold the same heads (a collision, one in 2^64 per document, would leave that
/// document unsynced on that connection until its next change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeadsDigest(pub [u8; HEADS_DIGEST_LEN]);

impl HeadsDigest {
    pub fn of(heads: &[automerge::ChangeHash]) -> Self {
        use sha2::Digest as _;
        let mut sorted = heads.to_vec();
        sorted.sort();
        let mut h = sha2::Sha256::new_with_prefix(b"chibo/heads/v1\0");
        for head in &sorted {
            h.update(head.0);
        }
        let mut out = [0u8; HEADS_DIGEST_LEN];
        out.copy_from_slice(&h.finalize()[..HEADS_DIGEST_LEN]);
        Self(out)
    }
}

/// Bytes per document in a [`Message::HeadsSummary`]: the document id, then its heads digest.
const SUMMARY_ENTRY: usize = 16 + HEADS_DIGEST_LEN;

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Join {
        sender: PeerId,
        supported_versions: Vec<String>,
        metadata: Option<PeerMetadata>,
    },
    Peer {
        sender: PeerId,
        target: PeerId,
        selected_version: String,
        metadata: Option<PeerMetadata>,
    },
    Leave {
        sender: PeerId,
    },
    Error {
        sender: PeerId,
        message: String,
    },
    /// The first sync message for a document the sender does not have yet.
    Request {
        sender: PeerId,
        target: PeerId,
        document: DocumentId,
        data: Vec<u8>,
    },
    Sync {
        sender: PeerId,
        target: PeerId,
        document: DocumentId,
        data: Vec<u8>,
    },
    DocUnavailable {
        sender: PeerId,
        target: PeerId,
        document: DocumentId,
    },
    Ephemeral {
        sender: PeerId,
        target: PeerId,
        count: u64,
        session: String,
        document: DocumentId,
        data: Vec<u8>,
    },
    /// chibo extension, only to a peer that announced `heads_summary`: on (re)connecting, every
    /// document the sender wants to sync with its heads' digest, in one message instead of one
    /// sync message each.
    HeadsSummary {
        sender: PeerId,
        target: PeerId,
        documents: Vec<(DocumentId, HeadsDigest)>,
    },
    /// chibo extension, the answer to a [`Message::HeadsSummary`]: the documents of it that the
    /// plain protocol must sync. Every other document of the summary is known to be identical on
    /// both sides.
    HeadsDiffer {
        sender: PeerId,
        target: PeerId,
        documents: Vec<DocumentId>,
    },
    /// Known message types we accept and ignore (`remote-subscription-change`,
    /// `remote-heads-changed`): a relay without storage-id gossip has nothing to do with them.
    Ignored {
        kind: &'static str,
    },
}

/// Why a frame is not a protocol message. Each variant is a reason the relay logs when it
/// closes a connection.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("frame is not valid CBOR: {0}")]
    Cbor(String),
    #[error("frame has {0} trailing bytes after the CBOR message")]
    TrailingBytes(usize),
    #[error("message is not a CBOR map")]
    NotAMap,
    #[error("message has no `{0}` field or it has the wrong type")]
    Field(&'static str),
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("bad `{field}`: {source}")]
    Id { field: &'static str, source: IdError },
}

impl Message {
    /// The document a message is about, if any.
    pub fn document(&self) -> Option<DocumentId> {
        match self {
            Message::Request { document, .. }
            | Message::Sync { document, .. }
            | Message::DocUnavailable { document, .. }
            | Message::Ephemeral { document, .. } => Some(*document),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Leave { .. } => "leave",
            Message::Error { .. } => "error",
            Message::Request { .. } => "request",
            Message::Sync { .. } => "sync",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::HeadsSummary { .. } => "chibo-heads-summary",
            Message::HeadsDiffer { .. } => "chibo-heads-differ",
            Message::Ignored { kind } => kind,
        }
    }

    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let mut rest = frame;
        let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, RECURSION_LIMIT)
            .map_err(|e| DecodeError::Cbor(e.to_string()))?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        let Value::Map(entries) = value else {
            return Err(DecodeError::NotAMap);
        };
        let map =
            Fields(entries.into_iter().filter_map(|(k, v)| k.into_text().ok().map(|k| (k, v))).collect());
        let kind = map.text("type")?;
        let msg = match kind.as_str() {
            "join" => Message::Join {
                sender: map.peer("senderId")?,
                // Older clients omit the list; automerge-repo then assumes v1.
                supported_versions: match map.0.get("supportedProtocolVersions") {
                    None => vec![PROTOCOL_V1.to_owned()],
                    Some(Value::Array(vs)) => {
                        vs.iter().filter_map(|v| v.as_text().map(str::to_owned)).collect()
                    }
                    Some(_) => return Err(DecodeError::Field("supportedProtocolVersions")),
                },
                metadata: map.metadata(),
            },
            "peer" => Message::Peer {
                sender: map.peer("senderId")?,
                target: map.peer("targetId")?,
                selected_version: map.text("selectedProtocolVersion")?,
                metadata: map.metadata(),
            },
            "leave" => Message::Leave { sender: map.peer("senderId")? },
            "error" => Message::Error { sender: map.peer("senderId")?, message: map.text("message")? },
            "request" | "sync" => {
                let (sender, target, document) =
                    (map.peer("senderId")?, map.peer("targetId")?, map.document()?);
                let data = map.bytes("data")?;
                if kind == "request" {
                    Message::Request { sender, target, document, data }
                } else {
                    Message::Sync { sender, target, document, data }
                }
            }
            "doc-unavailable" => Message::DocUnavailable {
                sender: map.peer("senderId")?,
                target: map.peer("targetId")?,
                document: map.document()?,
            },
            "ephemeral" => Message::Ephemeral {
                sender: map.peer("senderId")?,
                target: map.peer("targetId")?,
                count: map.uint("count")?,
                session: map.text("sessionId")?,
                document: map.document()?,
                data: map.bytes("data")?,
            },
            "chibo-heads-summary" => Message::HeadsSummary {
                sender: map.peer("senderId")?,
                target: map.peer("targetId")?,
                documents: map
                    .packed("documents", SUMMARY_ENTRY)?
                    .map(|e| {
                        let (doc, digest) = e.split_at(16);
                        (DocumentId::from_bytes(to_array(doc)), HeadsDigest(to_array(digest)))
                    })
                    .collect(),
            },
            "chibo-heads-differ" => Message::HeadsDiffer {
                sender: map.peer("senderId")?,
                target: map.peer("targetId")?,
                documents: map
                    .packed("documents", 16)?
                    .map(|e| DocumentId::from_bytes(to_array(e)))
                    .collect(),
            },
            "remote-subscription-change" => Message::Ignored { kind: "remote-subscription-change" },
            "remote-heads-changed" => Message::Ignored { kind: "remote-heads-changed" },
            _ => return Err(DecodeError::UnknownType(kind)),
        };
        Ok(msg)
    }

    /// Encodes one frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut m: Vec<(Value, Value)> = Vec::with_capacity(7);
        let mut put = |k: &str, v: Value| m.push((Value::Text(k.to_owned()), v));
        put("type", Value::Text(self.type_name().to_owned()));
        match self {
            Message::Join { sender, supported_versions, metadata } => {
                put("senderId", peer(sender));
                put(
                    "supportedProtocolVersions",
                    Value::Array(supported_versions.iter().map(|v| Value::Text(v.clone())).collect()),
                );
                if let Some(md) = metadata {
                    put("peerMetadata", encode_metadata(md));
                }
            }
            Message::Peer { sender, target, selected_version, metadata } => {
                put("senderId", peer(sender));
                put("targetId", peer(target));
                put("selectedProtocolVersion", Value::Text(selected_version.clone()));
                if let Some(md) = metadata {
                    put("peerMetadata", encode_metadata(md));
                }
            }
            Message::Leave { sender } => put("senderId", peer(sender)),
            Message::Error { sender, message } => {
                put("senderId", peer(sender));
                put("message", Value::Text(message.clone()));
            }
            Message::Request { sender, target, document, data }
            | Message::Sync { sender, target, document, data } => {
                put("senderId", peer(sender));
                put("targetId", peer(target));
                put("documentId", Value::Text(document.to_string()));
                put("data", Value::Bytes(data.clone()));
            }
            Message::DocUnavailable { sender, target, document } => {
                put("senderId", peer(sender));
                put("targetId", peer(target));
                put("documentId", Value::Text(document.to_string()));
            }
            Message::Ephemeral { sender, target, count, session, document, data } => {
                put("senderId", peer(sender));
                put("targetId", peer(target));
                put("count", Value::Integer((*count).into()));
                put("sessionId", Value::Text(session.clone()));
                put("documentId", Value::Text(document.to_string()));
                put("data", Value::Bytes(data.clone()));
            }
            Message::HeadsSummary { sender, target, documents } => {
                put("senderId", peer(sender));
                put("targetId", peer(target));
                let mut packed = Vec::with_capacity(documents.len() * SUMMARY_ENTRY);
                for (doc, digest) in documents {
                    packed.extend_from_slice(doc.as_bytes());
                    packed.extend_from_slice(&digest.0);
                }
                put("documents", Value::Bytes(packed));
            }
            Message::HeadsDiffer { sender, target, documents } => {
                put("senderId", peer(sender));
                put("targetId", peer(target));
                put("documents", Value::Bytes(documents.iter().flat_map(|d| *d.as_bytes()).collect()));
            }
            Message::Ignored { .. } => {}
        }
        let mut out = Vec::new();
        // Writing a `Value` into a Vec cannot fail.
        if let Err(e) = ciborium::ser::into_writer(&Value::Map(m), &mut out) {
            unreachable!("CBOR encoding into memory failed: {e}");
        }
        out
    }
}

fn peer(p: &PeerId) -> Value {
    Value::Text(p.as_str().to_owned())
}

fn encode_metadata(md: &PeerMetadata) -> Value {
    let mut m = Vec::new();
    if let Some(s) = &md.storage_id {
        m.push((Value::Text("storageId".into()), Value::Text(s.clone())));
    }
    m.push((Value::Text("isEphemeral".into()), Value::Bool(md.is_ephemeral)));
    if md.heads_summary {
        m.push((Value::Text("chiboHeadsSummary".into()), Value::Bool(true)));
    }
    Value::Map(m)
}

/// The first `N` bytes of `s` (callers pass slices of exactly `N`).
fn to_array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&s[..N]);
    out
}

struct Fields(BTreeMap<String, Value>);

impl Fields {
    fn text(&self, f: &'static str) -> Result<String, DecodeError> {
        self.0.get(f).and_then(Value::as_text).map(str::to_owned).ok_or(DecodeError::Field(f))
    }

    fn peer(&self, f: &'static str) -> Result<PeerId, DecodeError> {
        PeerId::new(self.text(f)?).map_err(|source| DecodeError::Id { field: f, source })
    }

    fn document(&self) -> Result<DocumentId, DecodeError> {
        DocumentId::parse_url_or_id(&self.text("documentId")?)
            .map_err(|source| DecodeError::Id { field: "documentId", source })
    }

    fn bytes(&self, f: &'static str) -> Result<Vec<u8>, DecodeError> {
        match self.0.get(f) {
            Some(Value::Bytes(b)) => Ok(b.clone()),
            // cbor-x tags typed arrays (tag 64 = uint8 array) unless told not to.
            Some(Value::Tag(64, inner)) => inner.as_bytes().cloned().ok_or(DecodeError::Field(f)),
            _ => Err(DecodeError::Field(f)),
        }
    }

    /// A byte string of fixed-size entries.
    fn packed(&self, f: &'static str, entry: usize) -> Result<std::slice::ChunksExact<'_, u8>, DecodeError> {
        match self.0.get(f) {
            Some(Value::Bytes(b)) if b.len() % entry == 0 => Ok(b.chunks_exact(entry)),
            _ => Err(DecodeError::Field(f)),
        }
    }

    fn uint(&self, f: &'static str) -> Result<u64, DecodeError> {
        match self.0.get(f) {
            Some(Value::Integer(i)) => u64::try_from(*i).map_err(|_| DecodeError::Field(f)),
            // JS numbers may arrive as floats.
            Some(Value::Float(x)) if *x >= 0.0 && x.fract() == 0.0 && *x < 9.007_199_254_740_992e15 => {
                Ok(*x as u64)
            }
            _ => Err(DecodeError::Field(f)),
        }
    }

    fn metadata(&self) -> Option<PeerMetadata> {
        let Some(Value::Map(entries)) = self.0.get("peerMetadata") else {
            return None;
        };
        let mut md = PeerMetadata::default();
        for (k, v) in entries {
            match (k.as_text(), v) {
                (Some("storageId"), Value::Text(s)) => md.storage_id = Some(s.clone()),
                (Some("isEphemeral"), Value::Bool(b)) => md.is_ephemeral = *b,
                (Some("chiboHeadsSummary"), Value::Bool(b)) => md.heads_summary = *b,
                _ => {}
            }
        }
        Some(md)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PeerId {
        PeerId::new(s).expect("valid peer id")
    }

    #[test]
    fn every_message_round_trips() {
        let doc = DocumentId::from_bytes([9; 16]);
        let md =
            Some(PeerMetadata { storage_id: Some("s1".into()), is_ephemeral: false, heads_summary: true });
        let msgs = vec![
            Message::Join { sender: p("a"), supported_versions: vec!["1".into()], metadata: md.clone() },
            Message::Peer { sender: p("r"), target: p("a"), selected_version: "1".into(), metadata: md },
            Message::Leave { sender: p("a") },
            Message::Error { sender: p("r"), message: "no".into() },
            Message::Request { sender: p("a"), target: p("r"), document: doc, data: vec![0x42, 1] },
            Message::Sync { sender: p("a"), target: p("r"), document: doc, data: vec![0x42, 2] },
            Message::DocUnavailable { sender: p("r"), target: p("a"), document: doc },
            Message::Ephemeral {
                sender: p("a"),
                target: p("r"),
                count: 3,
                session: "x".into(),
                document: doc,
                data: vec![1],
            },
            Message::HeadsSummary {
                sender: p("a"),
                target: p("r"),
                documents: vec![
                    (doc, HeadsDigest([7; 8])),
                    (DocumentId::from_bytes([3; 16]), HeadsDigest::of(&[])),
                ],
            },
            Message::HeadsSummary { sender: p("a"), target: p("r"), documents: vec![] },
            Message::HeadsDiffer { sender: p("r"), target: p("a"), documents: vec![doc] },
        ];
        for m in msgs {
            assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }

    fn frame(entries: Vec<(&str, Value)>) -> Vec<u8> {
        let v = Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect());
        let mut out = Vec::new();
        ciborium::ser::into_writer(&v, &mut out).expect("encode");
        out
    }

    #[test]
    fn join_without_versions_means_v1_and_unknown_fields_are_ignored() {
        let f = frame(vec![
            ("type", Value::Text("join".into())),
            ("senderId", Value::Text("js-peer".into())),
            ("somethingNew", Value::Bool(true)),
        ]);
        assert_eq!(
            Message::decode(&f),
            Ok(Message::Join { sender: p("js-peer"), supported_versions: vec!["1".into()], metadata: None })
        );
    }

    #[test]
    fn tagged_uint8_arrays_are_accepted() {
        let doc = DocumentId::from_bytes([1; 16]);
        let f = frame(vec![
            ("type", Value::Text("sync".into())),
            ("senderId", Value::Text("a".into())),
            ("targetId", Value::Text("b".into())),
            ("documentId", Value::Text(doc.to_string())),
            ("data", Value::Tag(64, Box::new(Value::Bytes(vec![1, 2])))),
        ]);
        assert!(matches!(Message::decode(&f), Ok(Message::Sync { data, .. }) if data == vec![1, 2]));
    }

    #[test]
    fn bad_frames_get_precise_errors() {
        assert!(matches!(Message::decode(b"\xff\x00garbage"), Err(DecodeError::Cbor(_))));
        assert!(matches!(Message::decode(&[]), Err(DecodeError::Cbor(_))));
        let mut two = Message::Leave { sender: p("a") }.encode();
        two.push(0);
        assert_eq!(Message::decode(&two), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(Message::decode(&frame(vec![])), Err(DecodeError::Field("type")));
        let mut arr = Vec::new();
        ciborium::ser::into_writer(&Value::Array(vec![]), &mut arr).expect("encode");
        assert_eq!(Message::decode(&arr), Err(DecodeError::NotAMap));
        assert_eq!(
            Message::decode(&frame(vec![
                ("type", Value::Text("bogus".into())),
                ("senderId", Value::Text("a".into()))
            ])),
            Err(DecodeError::UnknownType("bogus".into()))
        );
        let bad_doc = frame(vec![
            ("type", Value::Text("sync".into())),
            ("senderId", Value::Text("a".into())),
            ("targetId", Value::Text("b".into())),
            ("documentId", Value::Text("not-a-doc-id".into())),
            ("data", Value::Bytes(vec![1])),
        ]);
        assert!(matches!(Message::decode(&bad_doc), Err(DecodeError::Id { field: "documentId", .. })));
    }

    #[test]
    fn a_summary_that_is_not_whole_entries_is_refused() {
        let f = frame(vec![
            ("type", Value::Text("chibo-heads-summary".into())),
            ("senderId", Value::Text("a".into())),
            ("targetId", Value::Text("b".into())),
            ("documents", Value::Bytes(vec![1; 25])),
        ]);
        assert_eq!(Message::decode(&f), Err(DecodeError::Field("documents")));
    }

    #[test]
    fn heads_digest_ignores_order() {
        let (a, b) = (automerge::ChangeHash([1; 32]), automerge::ChangeHash([2; 32]));
        assert_eq!(HeadsDigest::of(&[a, b]), HeadsDigest::of(&[b, a]));
        assert_ne!(HeadsDigest::of(&[a]), HeadsDigest::of(&[a, b]));
        assert_ne!(HeadsDigest::of(&[]), HeadsDigest::of(&[a]));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let mut f = vec![0x81u8; 100_000]; // 100k nested one-element arrays
        f.push(0x00);
        assert!(matches!(Message::decode(&f), Err(DecodeError::Cbor(_))));
    }
}
