//! Deterministic genesis: the first change of every document of a kind.
//!
//! The genesis change is made by a fixed actor (the first 16 bytes of
//! SHA-256(`chibo/genesis/<kind>`)) at time 0, with no message and no dependencies. It writes the
//! `kind` and `schema_version` root keys and then the kind's [`Document::genesis_value`], which
//! creates every map, list and Text later edits write into. Two devices creating the same document
//! offline therefore start from byte-identical changes, share every object id, and after a merge
//! no edit sits in a losing copy of a root object.
//!
//! The relay accepts a change from any author when its hash equals [`genesis_change_hash`] (the
//! change hash covers the uncompressed change bytes, so this is a byte-for-byte comparison).
//! Anything that changes these bytes (a field added, renamed or reordered in a root struct, an
//! automerge or autosurgeon upgrade that encodes differently) forks every future document from the
//! existing ones: the golden test in `schema::tests` pins the hashes so that cannot happen by
//! accident. Adding a field means a new schema version, not a new genesis.

use automerge::transaction::CommitOptions;
use std::sync::OnceLock;

use automerge::{ActorId, Automerge, ChangeHash};
use sha2::{Digest, Sha256};

use super::{
    Ballot, BranchProfile, DocKind, Document, Forum, MonthlyMeeting, PersonalPlan, Resolution, SchemaError,
    SelfAssessment, put_meta,
};

/// The fixed actor of `kind`'s genesis change. No device may use it.
pub fn genesis_actor(kind: DocKind) -> ActorId {
    let digest = Sha256::new().chain_update(b"chibo/genesis/").chain_update(kind.as_str()).finalize();
    ActorId::from(&digest[..16])
}

fn build<T: Document>() -> Result<Automerge, SchemaError> {
    let mut doc = Automerge::new().with_actor(genesis_actor(T::KIND));
    let mut tx = doc.transaction();
    // Meta keys first: the root is then non-empty, so autosurgeon reconciles field by field in
    // declaration order instead of through its hash-map based bulk initialisation (whose op order
    // would vary from run to run).
    put_meta(&mut tx, T::KIND)?;
    autosurgeon::reconcile(&mut tx, T::genesis_value())?;
    tx.commit_with(CommitOptions::default().with_time(0));
    Ok(doc)
}

fn build_kind(kind: DocKind) -> Automerge {
    let built = match kind {
        DocKind::BranchProfile => build::<BranchProfile>(),
        DocKind::Forum => build::<Forum>(),
        DocKind::SelfAssessment => build::<SelfAssessment>(),
        DocKind::Resolution => build::<Resolution>(),
        DocKind::Ballot => build::<Ballot>(),
        DocKind::PersonalPlan => build::<PersonalPlan>(),
        DocKind::MonthlyMeeting => build::<MonthlyMeeting>(),
    };
    // Writing a fixed value into a new, empty document cannot fail; the genesis tests build every
    // kind.
    built.expect("genesis of a fixed value into an empty document")
}

/// A document holding only `kind`'s genesis change. Its current actor is a fresh random one, never
/// the genesis actor; use [`new_document`] to edit as a given device.
pub fn genesis(kind: DocKind) -> Automerge {
    let mut doc = build_kind(kind);
    doc.set_actor(ActorId::random());
    doc
}

/// A new document of `kind` (its genesis change) that edits as `actor` (the device's actor).
pub fn new_document(kind: DocKind, actor: ActorId) -> Automerge {
    build_kind(kind).with_actor(actor)
}

/// `kind`'s genesis change (raw bytes and hash), built once per process.
fn cached(kind: DocKind) -> &'static (Vec<u8>, ChangeHash) {
    static CACHE: OnceLock<Vec<(Vec<u8>, ChangeHash)>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        DocKind::ALL
            .iter()
            .map(|k| {
                let doc = build_kind(*k);
                // A freshly built genesis document holds exactly one change.
                let change = doc.get_changes(&[]).into_iter().next();
                change
                    .map(|c| (c.raw_bytes().to_vec(), c.hash()))
                    .unwrap_or((Vec::new(), ChangeHash([0; 32])))
            })
            .collect()
    });
    let index = DocKind::ALL.iter().position(|k| *k == kind).unwrap_or_default();
    &all[index]
}

/// The raw (uncompressed) bytes of `kind`'s genesis change, as sync messages carry changes.
pub fn genesis_change_bytes(kind: DocKind) -> Vec<u8> {
    cached(kind).0.clone()
}

/// The hash of `kind`'s genesis change.
pub fn genesis_change_hash(kind: DocKind) -> ChangeHash {
    cached(kind).1
}

/// The kind whose genesis change has this hash, if any: the relay's "genesis changes aside" check
/// (a change with this hash is byte-identical to that genesis, whoever sends it).
pub fn genesis_kind(hash: &ChangeHash) -> Option<DocKind> {
    DocKind::ALL.into_iter().find(|k| genesis_change_hash(*k) == *hash)
}
