//! Commitment tests: every status is reached through `verify` on a real plan document.

use automerge::{ActorId, Automerge, ChangeHash};

use super::*;
use crate::schema::{
    DocKind, PlanText, ProgressStatus, Ranking, ReviewNote, Step, genesis_change_hash, new_document,
    splice_text, update,
};

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16])
}

fn member() -> MemberId {
    MemberId::from_bytes([7; 16])
}

fn plan_id() -> DocumentId {
    DocumentId::from_canonical_path("branch/b/plan/m/2026")
}

/// The key of the member's phone.
fn phone_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

/// The key of the member's laptop.
fn laptop_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

/// The member's devices in the roster: the phone and the laptop.
fn roster(key: &[u8; 32]) -> bool {
    [phone_key(), laptop_key()].iter().any(|k| k.verifying_key().as_bytes() == key)
}

fn edit(am: &mut Automerge, f: impl FnOnce(&mut PersonalPlan)) {
    update(am, 2_000, f).expect("update");
}

fn splice(am: &mut Automerge, field: &PlanText, insert: &str) {
    splice_text(am, field, 0, 0, insert, 2_000).expect("splice");
}

fn check(am: &Automerge) -> CommitmentStatus {
    verify(am, &plan_id(), &member(), roster).expect("verify")
}

/// A plan with two items, as the member writes it before signing.
fn drafted_plan() -> Automerge {
    let mut am = new_document(DocKind::PersonalPlan, actor(1));
    edit(&mut am, |p| {
        let mut first = PlanItem::new("item-1", PlanItemKind::Resolution4, "Không nói không đi đôi với làm.");
        first.deadline = "2026-06-30".into();
        first.manifestation_codes = vec!["1.1".into(), "2.3".into()];
        p.items.push(first);
        let mut second = PlanItem::new("item-2", PlanItemKind::FollowUncleHo, "Đọc sách về Bác mỗi tháng.");
        second.resolution_task_ids = vec!["task-1".into()];
        p.items.push(second);
    });
    splice(&mut am, &PlanText::ItemMeasure { id: "item-1".into() }, "Báo cáo hằng tháng.");
    am
}

/// [`drafted_plan`] signed on the phone at time 1 000.
fn signed_plan() -> Automerge {
    let mut am = drafted_plan();
    commit(&mut am, &plan_id(), &member(), &phone_key(), 1_000).expect("commit");
    am
}

const VALID: CommitmentStatus = CommitmentStatus::Valid { signed_at: 1_000 };
const CHANGED: CommitmentStatus = CommitmentStatus::ChangedSinceSigning { signed_at: 1_000 };

/// Rewrites the stored commitment with `f` applied (what a tampering writer could do).
fn tamper(am: &mut Automerge, f: impl FnOnce(&mut Commitment)) {
    let mut commitment = hydrate::<PersonalPlan>(am).expect("hydrate").commitment.expect("signed");
    f(&mut commitment);
    write(am, &commitment, 3_000).expect("write");
}

// ─── payload ───

#[test]
fn payload_format_is_pinned() {
    let heads = [ChangeHash([0xbb; 32]), ChangeHash([0x0a; 32])];
    let doc = DocumentId::from_bytes(core::array::from_fn(|i| i as u8));
    let expected = format!(
        "chibo/commitment/v1\n1Bhh3pU9gLXZiNDL6PEa1Gs9fh\n{}\n-5\n{}\n{}\n",
        member(),
        "0a".repeat(32),
        "bb".repeat(32),
    );
    assert_eq!(String::from_utf8(signing_payload(&doc, &member(), -5, &heads)).expect("utf-8"), expected);
}

#[test]
fn payload_ignores_head_order_and_duplicates_but_binds_everything_else() {
    let (a, b) = (ChangeHash([1; 32]), ChangeHash([2; 32]));
    let base = signing_payload(&plan_id(), &member(), 10, &[a, b]);
    assert_eq!(signing_payload(&plan_id(), &member(), 10, &[b, a, b]), base);
    let other_doc = DocumentId::from_canonical_path("branch/b/plan/m/2027");
    assert_ne!(signing_payload(&other_doc, &member(), 10, &[a, b]), base);
    assert_ne!(signing_payload(&plan_id(), &MemberId::from_bytes([8; 16]), 10, &[a, b]), base);
    assert_ne!(signing_payload(&plan_id(), &member(), 11, &[a, b]), base);
    assert_ne!(signing_payload(&plan_id(), &member(), 10, &[a]), base);
}

// ─── valid and unsigned ───

#[test]
fn unsigned_plan_is_unsigned() {
    assert_eq!(check(&drafted_plan()), CommitmentStatus::Unsigned);
}

#[test]
fn sign_then_verify_is_valid() {
    let am = signed_plan();
    assert_eq!(check(&am), VALID);
}

#[test]
fn sign_covers_the_current_heads_and_writes_nothing() {
    let am = drafted_plan();
    let heads = am.get_heads();
    let commitment = sign(&am, &plan_id(), &member(), &phone_key(), 1_000);
    assert_eq!(am.get_heads(), heads, "sign must not change the document");
    let signed: Vec<ChangeHash> =
        commitment.signed_heads.iter().map(|h| h.parse().expect("hex head")).collect();
    assert_eq!(signed, heads);
    assert_eq!(check(&am), CommitmentStatus::Unsigned);
}

#[test]
fn commitment_is_written_in_one_change_at_signing_time() {
    let mut am = drafted_plan();
    let before = am.get_heads();
    commit(&mut am, &plan_id(), &member(), &laptop_key(), 1_234).expect("commit");
    let changes = am.get_changes(&before);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].timestamp(), 1_234);
    assert_eq!(check(&am), CommitmentStatus::Valid { signed_at: 1_234 });
}

// ─── changes to the signed items ───

#[test]
fn editing_an_items_content_after_signing_shows_changed() {
    let mut am = signed_plan();
    splice(&mut am, &PlanText::ItemContent { id: "item-2".into() }, "Không ");
    assert_eq!(check(&am), CHANGED);
}

#[test]
fn every_signed_field_of_an_item_counts_as_a_change() {
    type Edit = fn(&mut Automerge);
    let edits: [(&str, Edit); 6] = [
        ("kind", |am| edit(am, |p| p.items[0].kind = PlanItemKind::FollowUncleHo)),
        ("measure", |am| splice(am, &PlanText::ItemMeasure { id: "item-1".into() }, "x")),
        ("deadline", |am| edit(am, |p| p.items[0].deadline = "2026-07-31".into())),
        ("manifestation code added", |am| edit(am, |p| p.items[1].manifestation_codes.push("3.1".into()))),
        ("manifestation code removed", |am| edit(am, |p| p.items[0].manifestation_codes.truncate(1))),
        ("resolution task", |am| edit(am, |p| p.items[1].resolution_task_ids.clear())),
    ];
    for (what, change) in edits {
        let mut am = signed_plan();
        change(&mut am);
        assert_eq!(check(&am), CHANGED, "{what}");
    }
}

#[test]
fn adding_an_item_after_signing_shows_changed() {
    let mut am = signed_plan();
    edit(&mut am, |p| p.items.push(PlanItem::new("item-3", PlanItemKind::Resolution4, "Mới.")));
    assert_eq!(check(&am), CHANGED);
}

#[test]
fn removing_an_item_after_signing_shows_changed() {
    let mut am = signed_plan();
    edit(&mut am, |p| {
        p.items.retain(|i| i.id != "item-1");
    });
    assert_eq!(check(&am), CHANGED);
}

#[test]
fn signing_again_after_a_change_is_valid_again() {
    let mut am = signed_plan();
    splice(&mut am, &PlanText::ItemContent { id: "item-1".into() }, "Sửa: ");
    assert_eq!(check(&am), CHANGED);
    commit(&mut am, &plan_id(), &member(), &laptop_key(), 5_000).expect("commit");
    assert_eq!(check(&am), CommitmentStatus::Valid { signed_at: 5_000 });
}

// ─── what is written during the year ───

#[test]
fn progress_reviews_and_year_end_after_signing_stay_valid() {
    let mut am = signed_plan();
    splice(&mut am, &PlanText::Progress { item: "item-1".into(), month: 3 }, "Đã làm.");
    edit(&mut am, |p| {
        if let Some(march) = p.items[0].progress.get_mut("03") {
            march.status = Some(ProgressStatus::Done);
        }
        p.reviews.push(ReviewNote {
            id: "review-1".into(),
            month: 3,
            reviewer: MemberId::from_bytes([9; 16]),
            written_at: 2_000,
            text: crate::schema::LongText::new("Tốt."),
        });
        p.year_end.self_ranking = Some(Ranking::Good);
        p.year_end.committee_ranking = Some(Ranking::Excellent);
    });
    splice(&mut am, &PlanText::Review { id: "review-1".into() }, "Cần cố gắng. ");
    splice(&mut am, &PlanText::SelfComment, "Tự nhận xét.");
    splice(&mut am, &PlanText::CommitteeComment, "Chi ủy nhận xét.");
    // The edits did land (so the test would see them if they counted).
    let plan: PersonalPlan = hydrate(&am).expect("hydrate");
    assert_eq!(plan.reviews.len(), 1);
    assert_eq!(plan.items[0].progress_in(3).and_then(|m| m.status), Some(ProgressStatus::Done));
    assert_eq!(check(&am), VALID);
}

#[test]
fn reordering_items_is_not_a_change() {
    let mut am = signed_plan();
    // Move the first item to the end through the list itself (as a drag would).
    let mut tx = am.transaction();
    let list = crate::schema::resolve(&tx, &[Step::Field("items")], automerge::ObjType::List).expect("items");
    let old: PlanItem = autosurgeon::hydrate_prop(&tx, &list, 0usize).expect("item");
    let mut moved = PlanItem::new(old.id, old.kind, old.content.as_str());
    moved.measure = crate::schema::LongText::new(old.measure.as_str());
    moved.deadline = old.deadline;
    moved.manifestation_codes = old.manifestation_codes;
    moved.resolution_task_ids = old.resolution_task_ids;
    automerge::transaction::Transactable::delete(&mut tx, &list, 0).expect("delete");
    autosurgeon::reconcile_insert(&mut tx, list, 1, &moved).expect("insert");
    tx.commit();
    let plan: PersonalPlan = hydrate(&am).expect("hydrate");
    assert_eq!(plan.items[1].id, "item-1", "the item moved");
    assert_eq!(check(&am), VALID);
}

// ─── keys and signatures ───

#[test]
fn key_not_in_the_roster_is_unknown() {
    let mut am = drafted_plan();
    commit(&mut am, &plan_id(), &member(), &SigningKey::from_bytes(&[3; 32]), 1_000).expect("commit");
    assert_eq!(check(&am), CommitmentStatus::UnknownKey);
    // The same commitment checked against a roster that does list that key is fine.
    let key3 = SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
    assert_eq!(verify(&am, &plan_id(), &member(), |k| *k == key3).expect("verify"), VALID);
}

#[test]
fn tampered_signature_is_bad() {
    let mut am = signed_plan();
    tamper(&mut am, |c| {
        let mut signature: Vec<u8> = c.signature.clone().into();
        signature[10] ^= 1;
        c.signature = signature.into();
    });
    assert_eq!(check(&am), CommitmentStatus::BadSignature);
}

#[test]
fn another_known_key_with_the_phones_signature_is_bad() {
    let mut am = signed_plan();
    tamper(&mut am, |c| c.public_key = laptop_key().verifying_key().to_bytes().to_vec().into());
    assert_eq!(check(&am), CommitmentStatus::BadSignature);
}

#[test]
fn tampered_signing_time_is_bad() {
    let mut am = signed_plan();
    tamper(&mut am, |c| c.signed_at += 1);
    assert_eq!(check(&am), CommitmentStatus::BadSignature);
}

#[test]
fn signature_moved_to_other_heads_is_bad() {
    // Point the signature at the genesis (an empty plan) so "nothing changed since" would hold
    // for a plan signed empty.
    let mut am = signed_plan();
    tamper(&mut am, |c| c.signed_heads = vec![genesis_change_hash(DocKind::PersonalPlan).to_string()]);
    assert_eq!(check(&am), CommitmentStatus::BadSignature);
}

#[test]
fn signature_for_another_member_or_document_is_bad() {
    let am = signed_plan();
    let other_member = MemberId::from_bytes([8; 16]);
    assert_eq!(
        verify(&am, &plan_id(), &other_member, roster).expect("verify"),
        CommitmentStatus::BadSignature
    );
    let other_doc = DocumentId::from_canonical_path("branch/b/plan/m/2027");
    assert_eq!(verify(&am, &other_doc, &member(), roster).expect("verify"), CommitmentStatus::BadSignature);
}

#[test]
fn malformed_commitments_are_reported() {
    type Damage = fn(&mut Commitment);
    let damages: [(&str, Damage); 4] = [
        ("short key", |c| c.public_key = vec![1; 31].into()),
        ("short signature", |c| c.signature = vec![1; 63].into()),
        ("bad head", |c| c.signed_heads[0] = "not hex".into()),
        ("no heads", |c| c.signed_heads.clear()),
    ];
    for (what, damage) in damages {
        let mut am = signed_plan();
        tamper(&mut am, damage);
        assert_eq!(
            verify(&am, &plan_id(), &member(), |_| true).expect("verify"),
            CommitmentStatus::Malformed,
            "{what}"
        );
    }
}

// ─── heads and sync ───

#[test]
fn unknown_heads_are_missing_until_synced() {
    // The laptop has only the genesis; the phone drafts and signs. The commitment alone is copied
    // onto the laptop (without the changes it signed).
    let mut laptop = new_document(DocKind::PersonalPlan, actor(2));
    let phone = drafted_plan();
    let commitment = sign(&phone, &plan_id(), &member(), &phone_key(), 1_000);
    write(&mut laptop, &commitment, 1_000).expect("write");
    assert_eq!(check(&laptop), CommitmentStatus::MissingHeads { signed_at: 1_000 });

    laptop.merge(&mut phone.clone()).expect("merge");
    assert_eq!(check(&laptop), VALID);
}

#[test]
fn commitment_verifies_on_another_device_after_save_and_load() {
    let phone = signed_plan();
    let laptop = Automerge::load(&phone.save()).expect("load").with_actor(actor(2));
    assert_eq!(check(&laptop), VALID);
}

#[test]
fn commitment_verifies_after_merging_with_concurrent_progress() {
    let base = drafted_plan();
    let mut phone = base.clone();
    let mut laptop = base.fork().with_actor(actor(2));
    commit(&mut phone, &plan_id(), &member(), &phone_key(), 1_000).expect("commit");
    splice(&mut laptop, &PlanText::Progress { item: "item-2".into(), month: 1 }, "Tháng 1.");

    laptop.merge(&mut phone.clone()).expect("merge");
    phone.merge(&mut laptop.clone()).expect("merge");
    assert_eq!(check(&laptop), VALID);
    assert_eq!(check(&phone), VALID);
}

#[test]
fn concurrent_item_edit_merged_after_signing_shows_changed() {
    let base = drafted_plan();
    let mut phone = base.clone();
    let mut laptop = base.fork().with_actor(actor(2));
    commit(&mut phone, &plan_id(), &member(), &phone_key(), 1_000).expect("commit");
    // Edited on the laptop before it saw the signature: not what was signed.
    splice(&mut laptop, &PlanText::ItemContent { id: "item-1".into() }, "Thêm: ");

    phone.merge(&mut laptop).expect("merge");
    assert_eq!(check(&phone), CHANGED);
}

#[test]
fn concurrent_signings_merge_to_one_whole_commitment() {
    // Both devices signed before, then each adds a different item and signs again offline. The
    // merge must keep one commitment whole, never one device's key with the other's heads.
    let base = signed_plan();
    let mut phone = base.clone();
    let mut laptop = base.fork().with_actor(actor(2));
    edit(&mut phone, |p| p.items.push(PlanItem::new("item-p", PlanItemKind::Resolution4, "P.")));
    edit(&mut laptop, |p| p.items.push(PlanItem::new("item-l", PlanItemKind::Resolution4, "L.")));
    splice(&mut laptop, &PlanText::ItemContent { id: "item-l".into() }, "Dài hơn. ");
    commit(&mut phone, &plan_id(), &member(), &phone_key(), 4_000).expect("commit");
    commit(&mut laptop, &plan_id(), &member(), &laptop_key(), 4_001).expect("commit");

    let mut merged = phone.clone();
    merged.merge(&mut laptop.clone()).expect("merge");
    let commitment = hydrate::<PersonalPlan>(&merged).expect("hydrate").commitment.expect("signed");
    let winner = if commitment.signed_at == 4_000 { &phone } else { &laptop };
    let expected = hydrate::<PersonalPlan>(winner).expect("hydrate").commitment.expect("signed");
    assert_eq!(commitment, expected, "the merged commitment is one device's, whole");
    // Both items are in the merged plan, but each signature covers only one: changed since signing.
    assert_eq!(check(&merged), CommitmentStatus::ChangedSinceSigning { signed_at: commitment.signed_at });
}

#[test]
fn a_document_of_another_kind_is_an_error() {
    let forum = new_document(DocKind::Forum, actor(1));
    assert!(verify(&forum, &plan_id(), &member(), roster).is_err());
    let mut forum = forum;
    assert!(commit(&mut forum, &plan_id(), &member(), &phone_key(), 1).is_err());
}
