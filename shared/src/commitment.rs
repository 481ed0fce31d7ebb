//! The signed commitment of a personal plan.
//!
//! A member commits to their plan by signing the plan document's current heads with the Ed25519
//! key of the device they sign on ([`sign`], [`commit`]). The key, the signature, the heads and the
//! signing time are stored in the plan as one [`Commitment`] object. Anyone holding the document
//! can check it offline ([`verify`]): the caller says which keys belong to the member's devices
//! (from the roster), and the document itself holds everything else.
//!
//! # What the signature covers
//! The signature covers the heads, so it pins the whole document as it was at signing. The plan
//! keeps changing during the year, though: monthly progress, the committee's review notes and the
//! year-end section are written after signing and are not part of the commitment. [`verify`]
//! therefore compares only the **signed items** at the signed heads with the signed items now: the
//! set of plan items (by `id`, in any order) and, for each item, its `kind`, `content`, `measure`,
//! `deadline`, and the sets of `manifestation_codes` and `resolution_task_ids` (not `progress`).
//! An edit to any of these after signing makes the commitment [`CommitmentStatus::ChangedSinceSigning`]
//! until the member signs again. (An edit that is later undone exactly leaves the commitment valid:
//! what is compared is the content, not the history.)
//!
//! # The signed payload (part of the storage format)
//! The bytes signed are, in UTF-8, with `\n` as the only separator and no trailing spaces:
//!
//! ```text
//! chibo/commitment/v1
//! <document id, bs58check, as DocumentId's Display>
//! <member id, bs58check, as MemberId's Display>
//! <signed_at, unix seconds, decimal i64 with a leading '-' if negative>
//! <head 1, 64 lowercase hex digits>
//! ...
//! <head n, 64 lowercase hex digits>
//! ```
//!
//! Every line, the last head included, ends with `\n`. The heads are sorted (byte order, which is
//! also the order of their hex strings) and deduplicated, so the payload does not depend on the
//! order the heads are stored or listed in. The document and member ids bind the signature to one
//! member's plan (it cannot be replayed onto another document or attributed to another member),
//! and `signed_at` is covered so the date shown with the commitment is the signer's. Changing any
//! of this format invalidates every stored commitment: a new format needs a new `v` line.
//!
//! No IO, no clock and no randomness: the signing key comes from the caller (made from a stored
//! 32-byte seed with [`SigningKey::from_bytes`]) and so does the time.

use std::collections::BTreeSet;

use automerge::{Automerge, AutomergeError, ChangeHash};
use ed25519_dalek::{Signature, Signer, VerifyingKey};

pub use ed25519_dalek::SigningKey;

use crate::ids::{DocumentId, MemberId};
use crate::schema::{Commitment, PersonalPlan, PlanItem, PlanItemKind, SchemaError, hydrate, update_in};

/// The first line of the signed payload (its version).
pub const PAYLOAD_DOMAIN: &str = "chibo/commitment/v1";

/// What [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitmentStatus {
    /// The plan holds no commitment.
    Unsigned,
    /// Signed by a device of the member, and the signed items are as they were at signing.
    Valid { signed_at: i64 },
    /// Signed by a device of the member, but the signed items have changed since (an item added,
    /// removed or edited). Needs signing again.
    ChangedSinceSigning { signed_at: i64 },
    /// The public key is not one of the member's devices in the roster (as far as this device's
    /// roster knows).
    UnknownKey,
    /// The signature does not match the key, document, member, heads and time stored with it
    /// (tampered with, or not made by that key).
    BadSignature,
    /// The signature is good but this copy of the document lacks some of the signed changes (not
    /// synced yet); it can be checked again once they arrive.
    MissingHeads { signed_at: i64 },
    /// The stored commitment is not well formed: a key that is not 32 bytes or not an Ed25519
    /// point, a signature that is not 64 bytes, a head that is not a change hash, or no heads.
    Malformed,
}

/// The bytes a commitment signs (see the [module documentation](self) for the format).
pub fn signing_payload(doc: &DocumentId, member: &MemberId, signed_at: i64, heads: &[ChangeHash]) -> Vec<u8> {
    let heads: BTreeSet<&ChangeHash> = heads.iter().collect();
    let mut payload = format!("{PAYLOAD_DOMAIN}\n{doc}\n{member}\n{signed_at}\n");
    for head in heads {
        payload.push_str(&head.to_string());
        payload.push('\n');
    }
    payload.into_bytes()
}

/// Signs `am`'s current heads as `member`'s commitment to the plan `doc`, with the device key
/// `key`, at `signed_at` (unix seconds). Does not write anything: see [`write()`] or [`commit`].
pub fn sign(
    am: &Automerge,
    doc: &DocumentId,
    member: &MemberId,
    key: &SigningKey,
    signed_at: i64,
) -> Commitment {
    let mut heads = am.get_heads();
    heads.sort();
    heads.dedup();
    let signature = key.sign(&signing_payload(doc, member, signed_at, &heads));
    Commitment {
        public_key: key.verifying_key().to_bytes().to_vec().into(),
        signature: signature.to_bytes().to_vec().into(),
        signed_heads: heads.iter().map(ChangeHash::to_string).collect(),
        signed_at,
    }
}

/// Writes `commitment` into the plan `am` in one change committed at `time` (unix seconds) by the
/// document's current actor, replacing any earlier commitment.
///
/// The commitment is always written as a new object (never field by field into the old one), so
/// two devices signing concurrently leave two whole commitments of which the merge keeps one,
/// never a key from one and a signature or heads from the other.
pub fn write(
    am: &mut Automerge,
    commitment: &Commitment,
    time: i64,
) -> Result<Option<ChangeHash>, SchemaError> {
    let mut tx = am.transaction();
    match write_in(&mut tx, commitment) {
        Ok(()) => Ok(tx.commit_with(automerge::transaction::CommitOptions::default().with_time(time)).0),
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}

/// [`write()`] inside a transaction the caller commits.
pub fn write_in<D: autosurgeon::Doc>(tx: &mut D, commitment: &Commitment) -> Result<(), SchemaError> {
    let plan: PersonalPlan = hydrate(tx)?;
    if plan.commitment.is_some() {
        // Replace the old object by a null first: reconciling `Some` onto an existing map would
        // update its fields in place (and concurrent re-signings would then mix field by field).
        update_in(tx, |p: &mut PersonalPlan| p.commitment = None)?;
    }
    update_in(tx, |p: &mut PersonalPlan| p.commitment = Some(commitment.clone()))
}

/// Signs `am`'s current heads ([`sign`]) and writes the commitment into it ([`write()`]) in a change
/// committed at `signed_at`. Returns the commitment written.
pub fn commit(
    am: &mut Automerge,
    doc: &DocumentId,
    member: &MemberId,
    key: &SigningKey,
    signed_at: i64,
) -> Result<Commitment, SchemaError> {
    let commitment = sign(am, doc, member, key, signed_at);
    write(am, &commitment, signed_at)?;
    Ok(commitment)
}

/// Checks the commitment of `member`'s plan `doc` held in `am`, offline.
///
/// `known_key` answers whether a public key belongs to one of `member`'s devices in the roster.
/// The checks run in this order: a commitment is present, well formed, made with a known key,
/// with a good signature, over heads this copy holds, and the signed items are unchanged since
/// (see the [module documentation](self)).
///
/// Errors only if `am` is not a readable personal plan (wrong kind, newer schema, or not matching
/// the schema, now or at the signed heads).
pub fn verify(
    am: &Automerge,
    doc: &DocumentId,
    member: &MemberId,
    known_key: impl Fn(&[u8; 32]) -> bool,
) -> Result<CommitmentStatus, SchemaError> {
    let plan: PersonalPlan = hydrate(am)?;
    let Some(commitment) = &plan.commitment else {
        return Ok(CommitmentStatus::Unsigned);
    };
    let Some((key, signature, heads)) = parse(commitment) else {
        return Ok(CommitmentStatus::Malformed);
    };
    if !known_key(&key) {
        return Ok(CommitmentStatus::UnknownKey);
    }
    let Ok(verifying_key) = VerifyingKey::from_bytes(&key) else {
        return Ok(CommitmentStatus::Malformed);
    };
    let signed_at = commitment.signed_at;
    let payload = signing_payload(doc, member, signed_at, &heads);
    if verifying_key.verify_strict(&payload, &signature).is_err() {
        return Ok(CommitmentStatus::BadSignature);
    }
    let at_signing = match am.fork_at(&heads) {
        Ok(at_signing) => at_signing,
        Err(AutomergeError::InvalidHash(_)) => return Ok(CommitmentStatus::MissingHeads { signed_at }),
        Err(e) => return Err(e.into()),
    };
    let signed_plan: PersonalPlan = hydrate(&at_signing)?;
    if signed_items(&signed_plan) == signed_items(&plan) {
        Ok(CommitmentStatus::Valid { signed_at })
    } else {
        Ok(CommitmentStatus::ChangedSinceSigning { signed_at })
    }
}

/// The key, signature and heads of a stored commitment, if they are well formed.
fn parse(commitment: &Commitment) -> Option<([u8; 32], Signature, Vec<ChangeHash>)> {
    let key = <[u8; 32]>::try_from(commitment.public_key.as_slice()).ok()?;
    let signature = Signature::from_slice(commitment.signature.as_slice()).ok()?;
    let heads =
        commitment.signed_heads.iter().map(|h| h.parse::<ChangeHash>().ok()).collect::<Option<Vec<_>>>()?;
    if heads.is_empty() {
        return None;
    }
    Some((key, signature, heads))
}

/// The part of one plan item the commitment covers.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SignedItem {
    id: String,
    kind: PlanItemKind,
    content: String,
    measure: String,
    deadline: String,
    manifestation_codes: BTreeSet<String>,
    resolution_task_ids: BTreeSet<String>,
}

impl SignedItem {
    fn of(item: &PlanItem) -> Self {
        SignedItem {
            id: item.id.clone(),
            kind: item.kind,
            content: item.content.as_str().to_owned(),
            measure: item.measure.as_str().to_owned(),
            deadline: item.deadline.clone(),
            manifestation_codes: item.manifestation_codes.iter().cloned().collect(),
            resolution_task_ids: item.resolution_task_ids.iter().cloned().collect(),
        }
    }
}

/// The signed items of a plan, sorted (so item order does not matter, but a duplicated item does).
fn signed_items(plan: &PersonalPlan) -> Vec<SignedItem> {
    let mut items: Vec<SignedItem> = plan.items.iter().map(SignedItem::of).collect();
    items.sort();
    items
}

#[cfg(test)]
mod tests;
