//! Schema tests: genesis determinism, offline creation and merge, lists, text, round trips.
//! (Path and catalogue tests sit next to their code; demo tests in `tests/demo.rs`.)

use std::fmt::Debug;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, Change};
use sha2::{Digest, Sha256};

use super::*;

mod demo;
mod kinds;

pub(super) fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16])
}

pub(super) fn member(n: u8) -> MemberId {
    MemberId::from_bytes([n; 16])
}

/// Merges each into a copy of the other; both results must be identical.
pub(super) fn merge_both_ways(a: &Automerge, b: &Automerge) -> (Automerge, Automerge) {
    let mut ab = a.clone();
    ab.merge(&mut b.clone()).expect("merge b into a");
    let mut ba = b.clone();
    ba.merge(&mut a.clone()).expect("merge a into b");
    let mut heads_ab = ab.get_heads();
    let mut heads_ba = ba.get_heads();
    heads_ab.sort();
    heads_ba.sort();
    assert_eq!(heads_ab, heads_ba, "merged heads differ");
    (ab, ba)
}

pub(super) fn splice<F: TextField>(doc: &mut Automerge, field: &F, pos: usize, del: isize, insert: &str) {
    splice_text(doc, field, pos, del, insert, 1).expect("splice");
}

pub(super) fn text<F: TextField>(doc: &Automerge, field: &F) -> String {
    read_text(doc, field).expect("read text")
}

pub(super) fn edit<T: Document>(doc: &mut Automerge, f: impl FnOnce(&mut T)) {
    update(doc, 1, f).expect("update");
}

pub(super) fn read<T: Document>(doc: &Automerge) -> T {
    hydrate(doc).expect("hydrate")
}

// ─── genesis ───

#[test]
fn genesis_is_byte_for_byte_reproducible() {
    for kind in DocKind::ALL {
        // Built afresh (not through the per-process cache) several times.
        let fresh = || {
            let doc = new_document(kind, actor(1));
            doc.get_changes(&[]).first().map(|c| c.raw_bytes().to_vec()).expect("one change")
        };
        let first = fresh();
        assert_eq!(first, genesis_change_bytes(kind), "{kind}");
        for _ in 0..3 {
            assert_eq!(fresh(), first, "{kind}");
        }
        // Independent builds through the public constructors agree as well.
        let a = new_document(kind, actor(1));
        let b = genesis(kind);
        assert_eq!(a.get_heads(), b.get_heads(), "{kind}");
        assert_eq!(a.get_heads(), vec![genesis_change_hash(kind)]);
    }
}

#[test]
fn genesis_change_has_fixed_actor_time_zero_and_no_deps() {
    for kind in DocKind::ALL {
        let change = Change::from_bytes(genesis_change_bytes(kind)).expect("genesis bytes decode");
        assert_eq!(change.actor_id(), &genesis_actor(kind));
        assert_eq!(change.timestamp(), 0);
        assert_eq!(change.seq(), 1);
        assert!(change.deps().is_empty());
        assert_eq!(change.message(), None);
        assert_eq!(change.hash(), genesis_change_hash(kind));
        assert_eq!(genesis_kind(&change.hash()), Some(kind));
        let digest = Sha256::digest(format!("chibo/genesis/{kind}"));
        assert_eq!(genesis_actor(kind).to_bytes(), &digest[..16]);
    }
}

/// Pins every genesis. If this fails, a root struct (or automerge/autosurgeon) changed what
/// genesis writes: every document created from now on would fork from every existing one, and
/// the relay would refuse the existing genesis changes. Do not update these values; add a schema
/// version instead (see `schema::genesis`).
#[test]
fn genesis_hashes_are_pinned() {
    let pinned = [
        (DocKind::BranchProfile, "81803f9f406539341c58b080c7c816a9c21afa4db1010fc912958c29aa7b1bd2"),
        (DocKind::Forum, "3418dc5e1d8ca85dac092c5de9ed95e6bf729391e9e27a70d99a137061f80bd5"),
        (DocKind::SelfAssessment, "aaaf34b989e6d395811e31a703179d2c6aa9f862fec7917ba8466ad3be417de5"),
        (DocKind::Resolution, "5ab2873dc2eb6fc1ac1f477c64b7baab9354096d99a5a9e4ea992699faf06341"),
        (DocKind::Ballot, "b0085248c73f481cd2a5e4110bb17c78243ef1784c510bf7f9566bce4672e194"),
        (DocKind::PersonalPlan, "cfaa5e47d4db7de918db46fd3ce36aea2e73237edd076e8f59e647b84658865a"),
        (DocKind::MonthlyMeeting, "4f3af5cea5f76902f2b41e5566ad95e3e72abe0793987aaa535c831bdf3c0e55"),
    ];
    let actual: Vec<(DocKind, String)> =
        DocKind::ALL.iter().map(|k| (*k, genesis_change_hash(*k).to_string())).collect();
    let expected: Vec<(DocKind, String)> = pinned.iter().map(|(k, h)| (*k, (*h).to_owned())).collect();
    assert_eq!(actual, expected);
}

#[test]
fn genesis_holds_the_kind_and_hydrates_to_the_genesis_value() {
    fn check<T: Document + PartialEq + Debug>() {
        let doc = genesis(T::KIND);
        assert_eq!(read::<T>(&doc), T::genesis_value());
        check_document(&doc, T::KIND).expect("well-formed");
    }
    check::<BranchProfile>();
    check::<Forum>();
    check::<SelfAssessment>();
    check::<Resolution>();
    check::<Ballot>();
    check::<PersonalPlan>();
    check::<MonthlyMeeting>();
    let sa: SelfAssessment = read(&genesis(DocKind::SelfAssessment));
    assert_eq!(sa.items.len(), 27);
    assert_eq!(sa.groups.len(), 3);
}

#[test]
fn wrong_kind_and_newer_schema_are_refused() {
    let mut ballot = genesis(DocKind::Ballot);
    let err = update(&mut ballot, 1, |_: &mut Forum| {}).expect_err("a ballot is not a forum");
    assert!(
        matches!(err, SchemaError::WrongKind { expected: DocKind::Forum, found: Some(ref k) } if k == "ballot")
    );
    assert!(matches!(hydrate::<Forum>(&Automerge::new()), Err(SchemaError::WrongKind { found: None, .. })));

    let mut newer = genesis(DocKind::Ballot);
    let mut tx = newer.transaction();
    automerge::transaction::Transactable::put(
        &mut tx,
        automerge::ROOT,
        SCHEMA_VERSION_KEY,
        SCHEMA_VERSION + 1,
    )
    .expect("put");
    tx.commit();
    assert!(matches!(hydrate::<Ballot>(&newer), Err(SchemaError::NewerSchema { found: 2 })));
}

// ─── two devices create the same document offline ───

#[test]
fn two_devices_create_the_same_forum_offline_and_merge() {
    let mut phone = new_document(DocKind::Forum, actor(1));
    let mut laptop = new_document(DocKind::Forum, actor(2));

    // Different fields on each device.
    edit(&mut phone, |f: &mut Forum| f.chair = Some(member(1)));
    edit(&mut laptop, |f: &mut Forum| f.clerk = Some(member(2)));
    splice(&mut laptop, &ForumText::Script(ScriptSection::Opening), 0, 0, "Tuyên bố lý do.");
    // The same Text on both.
    splice(&mut phone, &ForumText::Minutes, 0, 0, "Bí thư khai mạc diễn đàn. ");
    splice(&mut laptop, &ForumText::Minutes, 0, 0, "Thư ký ghi: có mặt 6/7. ");

    let (ab, ba) = merge_both_ways(&phone, &laptop);
    let forum: Forum = read(&ab);
    assert_eq!(forum, read::<Forum>(&ba));
    assert_eq!(forum.chair, Some(member(1)));
    assert_eq!(forum.clerk, Some(member(2)));
    assert_eq!(forum.script.opening.as_str(), "Tuyên bố lý do.");
    let minutes = forum.minutes.as_str();
    assert!(minutes.contains("Bí thư khai mạc diễn đàn. "), "{minutes}");
    assert!(minutes.contains("Thư ký ghi: có mặt 6/7. "), "{minutes}");
    assert_eq!(minutes.chars().count(), "Bí thư khai mạc diễn đàn. Thư ký ghi: có mặt 6/7. ".chars().count());
}

#[test]
fn two_devices_fill_the_same_self_assessment_item_offline() {
    let mut phone = new_document(DocKind::SelfAssessment, actor(1));
    let mut laptop = new_document(DocKind::SelfAssessment, actor(2));
    let note = |part| AssessmentText::Item { code: "A4".into(), part };

    edit(&mut phone, |a: &mut SelfAssessment| {
        a.set_catalogue(crate::catalogue::Catalogue::builtin());
        if let Some(item) = a.items.get_mut("A4") {
            item.applies = Some(true);
            item.degree = Some("mild".into());
        }
    });
    splice(&mut phone, &note(ItemPart::Note), 0, 0, "Có lúc làm việc qua loa.");
    splice(&mut laptop, &note(ItemPart::Cause), 0, 0, "Chưa sắp xếp thời gian hợp lý.");
    splice(&mut laptop, &note(ItemPart::Note), 0, 0, "Ngại va chạm.");
    splice(&mut laptop, &AssessmentText::Group { group: "B".into() }, 0, 0, "Chi bộ không có biểu hiện.");

    let (ab, ba) = merge_both_ways(&phone, &laptop);
    let a: SelfAssessment = read(&ab);
    assert_eq!(a, read::<SelfAssessment>(&ba));
    let item = &a.items["A4"];
    assert_eq!((item.applies, item.degree.as_deref()), (Some(true), Some("mild")));
    assert!(
        item.note.as_str().contains("Có lúc làm việc qua loa.")
            && item.note.as_str().contains("Ngại va chạm.")
    );
    assert_eq!(item.cause.as_str(), "Chưa sắp xếp thời gian hợp lý.");
    assert_eq!(a.groups["B"].view.as_str(), "Chi bộ không có biểu hiện.");
    assert_eq!(a.catalogue_version, "2016-10-30");
}

#[test]
fn two_devices_report_progress_on_the_same_plan_month_offline() {
    let mut phone = new_document(DocKind::PersonalPlan, actor(1));
    edit(&mut phone, |p: &mut PersonalPlan| {
        p.items.push(PlanItem::new("item-1", PlanItemKind::FollowUncleHo, "Đọc sách về Bác mỗi tháng."));
    });
    let mut laptop = phone.fork().with_actor(actor(2));
    let march = PlanText::Progress { item: "item-1".into(), month: 3 };

    splice(&mut phone, &march, 0, 0, "Đã đọc 1 cuốn. ");
    edit(&mut phone, |p: &mut PersonalPlan| {
        if let Some(progress) = p.items[0].progress.get_mut("03") {
            progress.status = Some(ProgressStatus::Done);
        }
    });
    splice(&mut laptop, &march, 0, 0, "Ghi chép cảm nhận. ");

    let (ab, _) = merge_both_ways(&phone, &laptop);
    let plan: PersonalPlan = read(&ab);
    let progress = plan.items[0].progress_in(3).expect("march");
    assert_eq!(progress.status, Some(ProgressStatus::Done));
    assert!(
        progress.note.as_str().contains("Đã đọc 1 cuốn. ")
            && progress.note.as_str().contains("Ghi chép cảm nhận. ")
    );
}

/// The control for the tests above: without a shared genesis each device creates its own
/// `minutes` Text, the two objects conflict, and one device's typing is hidden after the merge.
#[test]
fn without_shared_genesis_one_devices_text_is_hidden() {
    fn own_roots(n: u8) -> Automerge {
        let mut doc = Automerge::new().with_actor(actor(n));
        let mut tx = doc.transaction();
        put_meta(&mut tx, DocKind::Forum).expect("meta");
        autosurgeon::reconcile(&mut tx, Forum::genesis_value()).expect("roots");
        tx.commit_with(CommitOptions::default().with_time(0));
        doc
    }
    let mut a = own_roots(1);
    let mut b = own_roots(2);
    splice(&mut a, &ForumText::Minutes, 0, 0, "from a");
    splice(&mut b, &ForumText::Minutes, 0, 0, "from b");
    let (ab, _) = merge_both_ways(&a, &b);
    let minutes = text(&ab, &ForumText::Minutes);
    assert!(minutes == "from a" || minutes == "from b", "{minutes}");
}

// ─── lists and text ───

#[test]
fn concurrent_keyed_list_inserts_keep_both() {
    let base = new_document(DocKind::Resolution, actor(1));
    let mut a = base.fork().with_actor(actor(2));
    let mut b = base.fork().with_actor(actor(3));
    let task = |id: &str, content: &str| ResolutionTask {
        id: id.into(),
        content: LongText::new(content),
        owner: "Chi ủy".into(),
        deadline: "2026-06-30".into(),
        measure: LongText::default(),
        manifestation_codes: vec!["A4".into()],
    };
    edit(&mut a, |r: &mut Resolution| r.tasks.push(task("task-a", "Duy trì sinh hoạt chi bộ đúng kỳ.")));
    edit(&mut b, |r: &mut Resolution| r.tasks.push(task("task-b", "Phân công đảng viên phụ trách hộ.")));
    splice(&mut b, &ResolutionText::TaskMeasure { id: "task-b".into() }, 0, 0, "100% hộ được thăm.");

    let (mut ab, ba) = merge_both_ways(&a, &b);
    let r: Resolution = read(&ab);
    assert_eq!(r, read::<Resolution>(&ba));
    let mut ids: Vec<&str> = r.tasks.iter().map(|t| t.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["task-a", "task-b"]);

    // Editing a merged list from one side rewrites neither item.
    edit(&mut ab, |r: &mut Resolution| r.tasks.retain(|t| t.id != "task-a"));
    let r: Resolution = read(&ab);
    assert_eq!(r.tasks.len(), 1);
    assert_eq!(r.tasks[0].measure.as_str(), "100% hộ được thăm.");
}

#[test]
fn concurrent_guest_additions_keep_both() {
    let mut a = new_document(DocKind::Forum, actor(1));
    let mut b = new_document(DocKind::Forum, actor(2));
    let guest = |id: &str, name: &str| Guest {
        id: id.into(),
        name: name.into(),
        organisation: "Đảng ủy phường".into(),
    };
    edit(&mut a, |f: &mut Forum| f.guests.push(guest("g-1", "Lê Thị Mai")));
    edit(&mut b, |f: &mut Forum| f.guests.push(guest("g-2", "Ngô Văn Tâm")));
    let (ab, _) = merge_both_ways(&a, &b);
    assert_eq!(read::<Forum>(&ab).guests.len(), 2);
}

#[test]
fn concurrent_splices_interleave_without_loss() {
    let mut base = new_document(DocKind::MonthlyMeeting, actor(1));
    splice(&mut base, &MeetingText::Minutes, 0, 0, "Khai mạc. Bế mạc.");
    let mut clerk = base.fork().with_actor(actor(2));
    let mut secretary = base.fork().with_actor(actor(3));
    let at = "Khai mạc. ".chars().count();

    splice(&mut clerk, &MeetingText::Minutes, at, 0, "Đ/c Cường phát biểu. ");
    splice(&mut secretary, &MeetingText::Minutes, at, 0, "Bí thư kết luận. ");
    splice(
        &mut secretary,
        &MeetingText::Minutes,
        0,
        "Khai mạc".chars().count() as isize,
        "Khai mạc lúc 19 giờ",
    );
    let end = text(&clerk, &MeetingText::Minutes).chars().count();
    splice(&mut clerk, &MeetingText::Minutes, end, 0, " Ký biên bản.");

    let (ab, ba) = merge_both_ways(&clerk, &secretary);
    let minutes = text(&ab, &MeetingText::Minutes);
    assert_eq!(minutes, text(&ba, &MeetingText::Minutes));
    assert!(minutes.starts_with("Khai mạc lúc 19 giờ. "), "{minutes}");
    assert!(minutes.ends_with("Bế mạc. Ký biên bản."), "{minutes}");
    let both_orders = ["Đ/c Cường phát biểu. Bí thư kết luận. ", "Bí thư kết luận. Đ/c Cường phát biểu. "];
    assert!(both_orders.iter().any(|middle| minutes.contains(middle)), "{minutes}");
}

#[test]
fn splice_positions_count_characters_not_bytes() {
    let mut doc = new_document(DocKind::Forum, actor(1));
    splice(&mut doc, &ForumText::Conclusion, 0, 0, "Chi bộ họp.");
    splice(&mut doc, &ForumText::Conclusion, "Chi bộ".chars().count(), 0, " Khu phố 3");
    assert_eq!(text(&doc, &ForumText::Conclusion), "Chi bộ Khu phố 3 họp.");
    // Negative deletion removes characters before the position.
    let end = "Chi bộ Khu phố 3 họp".chars().count();
    splice(&mut doc, &ForumText::Conclusion, end, -3, "sinh hoạt");
    assert_eq!(text(&doc, &ForumText::Conclusion), "Chi bộ Khu phố 3 sinh hoạt.");
    // Hydrating after splices sees the same value.
    assert_eq!(read::<Forum>(&doc).conclusion.as_str(), "Chi bộ Khu phố 3 sinh hoạt.");
}

#[test]
fn bad_splices_fail_and_change_nothing() {
    let mut doc = new_document(DocKind::Forum, actor(1));
    let heads = doc.get_heads();
    assert!(splice_text(&mut doc, &ForumText::Minutes, 5, 0, "x", 1).is_err());
    let missing = ForumText::Proposal { id: "nope".into() };
    assert!(matches!(splice_text(&mut doc, &missing, 0, 0, "x", 1), Err(SchemaError::NoSuchObject { .. })));
    assert_eq!(doc.get_heads(), heads);
}

#[test]
fn update_without_changes_makes_no_change() {
    let mut doc = new_document(DocKind::Forum, actor(1));
    edit(&mut doc, |f: &mut Forum| "Diễn đàn".clone_into(&mut f.title));
    let heads = doc.get_heads();
    assert_eq!(
        update(&mut doc, 2, |f: &mut Forum| "Diễn đàn".clone_into(&mut f.title)).expect("update"),
        None
    );
    assert_eq!(update(&mut doc, 2, |_: &mut Forum| {}).expect("update"), None);
    assert_eq!(doc.get_heads(), heads);
}

#[test]
fn commit_time_is_the_callers() {
    let mut doc = new_document(DocKind::Ballot, actor(1));
    let vote = Vote { choice: Choice::For, cast_at: 1_773_600_000, resolution_heads: vec!["ab".into()] };
    update(&mut doc, 1_773_600_000, |b: &mut Ballot| b.vote = Some(vote.clone())).expect("vote");
    let change = doc.get_last_local_change().expect("a change");
    assert_eq!(change.timestamp(), 1_773_600_000);
    assert_eq!(change.actor_id(), &actor(1));
    assert_eq!(read::<Ballot>(&doc).vote, Some(vote));
}
