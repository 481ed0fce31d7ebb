//! Review tests: real documents edited on forks (devices) and merged; expectations are worked out
//! by hand from what each device did, never read back from what the code under test wrote.

use std::collections::BTreeMap;

use automerge::{ActorId, Automerge, ChangeHash, Prop, ReadDoc};

use super::*;
use crate::catalogue::Catalogue;
use crate::commitment::{self, CommitmentStatus, SigningKey};
use crate::ids::{DocumentId, MemberId};
use crate::schema::{
    Ballot, Choice, DocKind, LongText, PersonalPlan, PlanItem, PlanItemKind, ProgressStatus, Resolution,
    ResolutionStatus, ResolutionTask, ResolutionText, SelfAssessment, Tally, Vote, cast_vote, hydrate,
    new_document, splice_text, update,
};

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16])
}

fn member(n: u8) -> MemberId {
    MemberId::from_bytes([n; 16])
}

/// A device's copy of `doc`, editing as `actor(n)`.
fn device(doc: &Automerge, n: u8) -> Automerge {
    doc.fork().with_actor(actor(n))
}

fn merge(into: &mut Automerge, from: &Automerge) {
    into.merge(&mut from.clone()).expect("merge");
}

fn edit<T: crate::schema::Document>(doc: &mut Automerge, time: i64, f: impl FnOnce(&mut T)) {
    update(doc, time, f).expect("update").expect("a change");
}

fn hex(heads: &[ChangeHash]) -> Vec<String> {
    heads.iter().map(ChangeHash::to_string).collect()
}

fn task(id: &str, deadline: &str) -> ResolutionTask {
    ResolutionTask {
        id: id.into(),
        content: LongText::new("Sinh hoạt chuyên đề hằng quý"),
        owner: "Chi ủy".into(),
        deadline: deadline.into(),
        measure: LongText::default(),
        manifestation_codes: vec!["A1".into()],
    }
}

/// The committee's draft: a title and one task, on the secretary's device (actor 1).
fn draft() -> Automerge {
    let mut res = new_document(DocKind::Resolution, actor(1));
    edit(&mut res, 10, |r: &mut Resolution| {
        r.title = "Nghị quyết chi bộ".into();
        r.tasks.push(task("t1", "2026-06-30"));
    });
    res
}

/// A member's ballot with a vote on `heads`.
fn ballot(n: u8, choice: Choice, heads: &[ChangeHash]) -> Ballot {
    let mut doc = new_document(DocKind::Ballot, actor(100 + n));
    let vote = Vote { choice, cast_at: 1_000 + i64::from(n), resolution_heads: hex(heads) };
    cast_vote(&mut doc, vote, 1_000).expect("cast").expect("a change");
    hydrate(&doc).expect("ballot")
}

fn empty_ballot(n: u8) -> Ballot {
    hydrate(&new_document(DocKind::Ballot, actor(100 + n))).expect("ballot")
}

fn count(res: &Automerge, eligible: &[MemberId], ballots: &BTreeMap<MemberId, Ballot>) -> VoteTally {
    tally(res, eligible, |m| ballots.get(m), PARTY_MAJORITY).expect("tally")
}

fn state(t: &VoteTally, n: u8) -> &VoteState {
    &t.member(&member(n)).expect("eligible").state
}

fn version(t: &VoteTally, n: u8) -> VoteVersion {
    match state(t, n) {
        VoteState::Voted { version, .. } => *version,
        other => panic!("member {n} has not voted: {other:?}"),
    }
}

// ─── vote ───

#[test]
fn majority_is_more_than_half_of_those_entitled_to_vote() {
    for eligible in 0..=41u32 {
        // Smallest n with n > eligible / 2, by search.
        let expected = (0..=eligible + 1).find(|n| 2 * n > eligible).expect("exists");
        assert_eq!(PARTY_MAJORITY.required(eligible), expected, "eligible {eligible}");
    }
    assert_eq!(PARTY_MAJORITY.required(4), 3, "half is not a majority");
    let two_thirds = MajorityRule { numerator: 2, denominator: 3 };
    assert_eq!(two_thirds.required(6), 5);
    assert_eq!(two_thirds.required(7), 5);
}

#[test]
fn tally_counts_the_open_text_and_applies_the_rule() {
    let mut res = draft();
    open_vote(&mut res, 20).expect("open");
    let open = res.get_heads();
    let eligible: Vec<MemberId> = (1..=5).map(member).collect();
    let mut ballots = BTreeMap::new();
    ballots.insert(member(1), ballot(1, Choice::For, &open));
    ballots.insert(member(2), ballot(2, Choice::For, &open));
    ballots.insert(member(3), ballot(3, Choice::Against, &open));
    ballots.insert(member(4), ballot(4, Choice::Abstain, &open));
    // Member 9 is not entitled to vote (e.g. a probationary member): never counted.
    ballots.insert(member(9), ballot(9, Choice::For, &open));

    let t = count(&res, &eligible, &ballots);
    assert_eq!((t.eligible, t.in_favour, t.against, t.abstain, t.not_voted), (5, 2, 1, 1, 1));
    assert_eq!(t.required, 3);
    assert!(!t.adopted, "2 of 5 is not more than half");
    assert_eq!(t.status, ResolutionStatus::OpenForVote);
    assert_eq!(state(&t, 5), &VoteState::NoBallot);
    assert_eq!(t.to_schema(), Tally { in_favour: 2, against: 1, abstain: 1, eligible: 5 });

    ballots.insert(member(5), empty_ballot(5));
    assert_eq!(state(&count(&res, &eligible, &ballots), 5), &VoteState::NotVoted);

    ballots.insert(member(5), ballot(5, Choice::For, &open));
    let t = count(&res, &eligible, &ballots);
    assert_eq!((t.in_favour, t.not_voted), (3, 0));
    assert!(t.adopted, "3 of 5 is more than half");
    assert_eq!(
        state(&t, 5),
        &VoteState::Voted { choice: Choice::For, cast_at: 1_005, version: VoteVersion::OpenText }
    );

    // A member listed twice is counted once.
    let twice = [member(1), member(1), member(2)];
    assert_eq!(count(&res, &twice, &ballots).eligible, 2);
}

#[test]
fn votes_on_another_text_or_unknown_heads_are_flagged_and_not_counted() {
    let mut secretary = draft();
    let before_open = secretary.get_heads();
    open_vote(&mut secretary, 20).expect("open");
    let opened = secretary.get_heads();

    // A committee member, offline, corrects the task's deadline after the vote opened.
    let mut committee = device(&secretary, 2);
    edit(&mut committee, 30, |r: &mut Resolution| r.tasks[0].deadline = "2026-09-30".into());
    // Another committee member's edit that has not reached the secretary's device.
    let mut elsewhere = device(&secretary, 3);
    edit(&mut elsewhere, 31, |r: &mut Resolution| r.title = "Nghị quyết chi bộ (sửa)".into());
    let unsynced = elsewhere.get_heads();

    let eligible: Vec<MemberId> = (1..=4).map(member).collect();
    let mut ballots = BTreeMap::new();
    ballots.insert(member(1), ballot(1, Choice::For, &opened)); // on the text as opened
    ballots.insert(member(2), ballot(2, Choice::For, &before_open)); // same text, before opening
    ballots.insert(member(4), ballot(4, Choice::For, &unsynced)); // heads not held here

    // Before the correction arrives, members 1 and 2 voted on the open text.
    let t = count(&secretary, &eligible, &ballots);
    assert_eq!(version(&t, 1), VoteVersion::OpenText);
    assert_eq!(version(&t, 2), VoteVersion::OpenText, "opening the vote does not change the text");
    assert_eq!(version(&t, 4), VoteVersion::NotHeldHere);
    assert_eq!((t.in_favour, t.on_other_version), (2, 1));

    // The correction arrives: the open text is now the corrected one.
    merge(&mut secretary, &committee);
    ballots.insert(member(3), ballot(3, Choice::For, &secretary.get_heads()));
    let t = count(&secretary, &eligible, &ballots);
    assert_eq!(version(&t, 1), VoteVersion::OtherText);
    assert_eq!(version(&t, 2), VoteVersion::OtherText);
    assert_eq!(version(&t, 3), VoteVersion::OpenText);
    assert_eq!(version(&t, 4), VoteVersion::NotHeldHere);
    assert_eq!((t.in_favour, t.on_other_version, t.not_voted), (1, 3, 0));
    assert!(!t.adopted);
    let flagged: Vec<MemberId> = t.on_other_versions().map(|m| m.member).collect();
    assert_eq!(flagged, vec![member(1), member(2), member(4)]);

    // Once the other edit arrives too, member 4's heads are held but the text moved on again.
    merge(&mut secretary, &elsewhere);
    assert_eq!(version(&count(&secretary, &eligible, &ballots), 4), VoteVersion::OtherText);
}

#[test]
fn adoption_is_refused_without_a_majority_and_records_the_open_heads() {
    let mut res = draft();
    let eligible: Vec<MemberId> = (1..=3).map(member).collect();
    let mut ballots = BTreeMap::new();
    let ballot_of = |b: &BTreeMap<MemberId, Ballot>| b.clone();

    // Not open yet.
    let b = ballot_of(&ballots);
    match adopt(&mut res, &eligible, |m| b.get(m), PARTY_MAJORITY, 400) {
        Err(ReviewError::WrongStatus {
            expected: ResolutionStatus::OpenForVote,
            found: ResolutionStatus::Draft,
        }) => {}
        other => panic!("expected WrongStatus, got {other:?}"),
    }
    open_vote(&mut res, 20).expect("open");
    assert!(matches!(open_vote(&mut res, 21), Err(ReviewError::WrongStatus { .. })), "opened twice");
    let open = res.get_heads();

    ballots.insert(member(1), ballot(1, Choice::For, &open));
    ballots.insert(member(2), ballot(2, Choice::Against, &open));
    let b = ballot_of(&ballots);
    match adopt(&mut res, &eligible, |m| b.get(m), PARTY_MAJORITY, 400) {
        Err(ReviewError::MajorityNotReached { in_favour: 1, required: 2, eligible: 3 }) => {}
        other => panic!("expected MajorityNotReached, got {other:?}"),
    }
    assert_eq!(res.get_heads(), open, "a refused adoption writes nothing");

    ballots.insert(member(3), ballot(3, Choice::For, &open));
    let b = ballot_of(&ballots);
    let (hash, _) = adopt(&mut res, &eligible, |m| b.get(m), PARTY_MAJORITY, 500).expect("adopt");
    assert_eq!(res.get_heads(), vec![hash]);
    let adopted: Resolution = hydrate(&res).expect("resolution");
    assert_eq!(adopted.status, ResolutionStatus::Adopted);
    let adoption = adopted.adoption.expect("adoption");
    assert_eq!(adoption.heads, hex(&open));
    assert_eq!(adoption.adopted_at, 500);
    assert_eq!(adoption.tally, Tally { in_favour: 2, against: 1, abstain: 0, eligible: 3 });
    assert_eq!(res.get_change_by_hash(&hash).expect("change").timestamp(), 500);

    // After adoption the open text is the adopted one, even once the document moves on.
    let mut later = device(&res, 2);
    edit(&mut later, 600, |r: &mut Resolution| r.date = "2026-04-01".into());
    let t = count(&later, &eligible, &ballots);
    assert_eq!(
        (t.status, t.open_heads.clone(), t.in_favour, t.adopted),
        (ResolutionStatus::Adopted, open, 2, true)
    );
    assert!(matches!(open_vote(&mut later, 700), Err(ReviewError::WrongStatus { .. })));
}

#[test]
fn concurrent_adoptions_merge_to_one_whole_record() {
    let mut res = draft();
    open_vote(&mut res, 20).expect("open");
    let open = res.get_heads();
    let eligible: Vec<MemberId> = (1..=3).map(member).collect();
    let mut all = BTreeMap::new();
    for n in 1..=3 {
        all.insert(member(n), ballot(n, Choice::For, &open));
    }
    let mut fewer = all.clone();
    fewer.remove(&member(3));

    // The secretary's laptop has all three ballots; the deputy's phone only two.
    let mut laptop = device(&res, 2);
    let mut phone = device(&res, 3);
    adopt(&mut laptop, &eligible, |m| all.get(m), PARTY_MAJORITY, 500).expect("adopt on laptop");
    adopt(&mut phone, &eligible, |m| fewer.get(m), PARTY_MAJORITY, 600).expect("adopt on phone");
    merge(&mut laptop, &phone);
    merge(&mut phone, &laptop);
    let a: Resolution = hydrate(&laptop).expect("resolution");
    assert_eq!(a, hydrate::<Resolution>(&phone).expect("resolution"), "devices converge");
    let adoption = a.adoption.expect("adoption");
    let laptop_record = (500, Tally { in_favour: 3, against: 0, abstain: 0, eligible: 3 });
    let phone_record = (600, Tally { in_favour: 2, against: 0, abstain: 0, eligible: 3 });
    let got = (adoption.adopted_at, adoption.tally);
    assert!(got == laptop_record || got == phone_record, "a mix of two records: {got:?}");
    assert_eq!(adoption.heads, hex(&open));
    // Both wrote status "adopted" (nothing to choose); the two records are a conflict to see.
    let found: Vec<String> = conflicts(&laptop).iter().map(Conflict::path_string).collect();
    assert_eq!(found, ["adoption"]);
}

// ─── member × step matrix ───

fn assessment_doc(n: u8) -> Automerge {
    new_document(DocKind::SelfAssessment, actor(n))
}

fn answer(doc: &mut Automerge, time: i64, answers: &[(&str, bool, Option<&str>)]) {
    edit(doc, time, |a: &mut SelfAssessment| {
        for (code, applies, degree) in answers {
            let item = a.items.get_mut(*code).expect("code");
            item.applies = Some(*applies);
            item.degree = degree.map(str::to_owned);
        }
    });
}

fn plan_id(n: u8) -> DocumentId {
    DocumentId::from_canonical_path(&format!("branch/b/plan/m{n}/2026"))
}

fn device_key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

#[test]
fn matrix_rows_follow_each_members_documents() {
    let catalogue_codes = crate::catalogue::ITEM_CODES;

    // Member 2: three items answered on the phone, plan of two items signed, progress in March on
    // one of them, voted for.
    let mut a2 = assessment_doc(2);
    answer(&mut a2, 100, &[("A1", true, Some("mild")), ("B2", false, None), ("C9", true, None)]);
    let mut p2 = new_document(DocKind::PersonalPlan, actor(2));
    edit(&mut p2, 100, |p: &mut PersonalPlan| {
        p.items.push(PlanItem::new("i1", PlanItemKind::Resolution4, "Gương mẫu"));
        p.items.push(PlanItem::new("i2", PlanItemKind::FollowUncleHo, "Đọc sách"));
    });
    commitment::commit(&mut p2, &plan_id(2), &member(2), &device_key(2), 200).expect("sign");
    edit(&mut p2, 300, |p: &mut PersonalPlan| {
        p.items[0].progress.get_mut("03").expect("month").status = Some(ProgressStatus::Done);
    });

    // Member 3: phone answers group A, laptop groups B and C offline; merged, then submitted.
    // Plan signed, then an item edited on the laptop (changed since signing); progress only in
    // February.
    let mut phone = assessment_doc(3);
    let mut laptop = device(&phone, 33);
    let group = |g: &str| -> Vec<(&str, bool, Option<&str>)> {
        catalogue_codes.iter().filter(|c| c.starts_with(g)).map(|c| (*c, false, None)).collect()
    };
    answer(&mut phone, 100, &group("A"));
    let mut bc = group("B");
    bc.extend(group("C"));
    answer(&mut laptop, 101, &bc);
    merge(&mut phone, &laptop);
    edit(&mut phone, 150, |a: &mut SelfAssessment| a.submitted_at = Some(150));
    let a3 = phone;
    let mut p3 = new_document(DocKind::PersonalPlan, actor(3));
    edit(&mut p3, 100, |p: &mut PersonalPlan| {
        p.items.push(PlanItem::new("i1", PlanItemKind::Resolution4, "Gương mẫu"));
    });
    commitment::commit(&mut p3, &plan_id(3), &member(3), &device_key(3), 200).expect("sign");
    let mut p3_laptop = device(&p3, 34);
    edit(&mut p3_laptop, 250, |p: &mut PersonalPlan| p.items[0].deadline = "2026-12-31".into());
    edit(&mut p3, 260, |p: &mut PersonalPlan| {
        p.items[0].progress.get_mut("02").expect("month").status = Some(ProgressStatus::InProgress);
    });
    merge(&mut p3, &p3_laptop);

    // Member 4: an empty assessment and an empty plan; no ballot here.
    let a4 = assessment_doc(4);
    let p4 = new_document(DocKind::PersonalPlan, actor(4));

    let mut res = draft();
    open_vote(&mut res, 20).expect("open");
    let mut ballots = BTreeMap::new();
    ballots.insert(member(2), ballot(2, Choice::For, &res.get_heads()));
    ballots.insert(member(3), empty_ballot(3));
    let eligible = [member(2), member(3), member(4)];
    let votes = count(&res, &eligible, &ballots);

    let (h2, h3, h4): (SelfAssessment, SelfAssessment, SelfAssessment) =
        (hydrate(&a2).expect("a2"), hydrate(&a3).expect("a3"), hydrate(&a4).expect("a4"));
    let docs = [
        MemberDocs { member: member(1), assessment: None, plan: None },
        MemberDocs {
            member: member(2),
            assessment: Some(&h2),
            plan: Some(PlanDoc { id: plan_id(2), doc: &p2 }),
        },
        MemberDocs {
            member: member(3),
            assessment: Some(&h3),
            plan: Some(PlanDoc { id: plan_id(3), doc: &p3 }),
        },
        MemberDocs {
            member: member(4),
            assessment: Some(&h4),
            plan: Some(PlanDoc { id: plan_id(4), doc: &p4 }),
        },
    ];
    let known_key = |m: &MemberId, key: &[u8; 32]| {
        (2..=4).any(|n| *m == member(n) && device_key(n).verifying_key().as_bytes() == key)
    };
    let rows = member_matrix(&docs, 3, Some(&votes), known_key);

    let expected = [
        MatrixRow {
            member: member(1),
            assessment: AssessmentStep::Missing,
            plan: PlanStep::Missing,
            signature: SignatureStep::Missing,
            progress: ProgressStep::Missing,
            vote: VoteStep::NotEligible,
        },
        MatrixRow {
            member: member(2),
            assessment: AssessmentStep::InProgress { answered: 3, total: 27 },
            plan: PlanStep::Items { items: 2 },
            signature: SignatureStep::Checked(CommitmentStatus::Valid { signed_at: 200 }),
            progress: ProgressStep::Reported { reported: 1, items: 2 },
            vote: VoteStep::Vote(VoteState::Voted {
                choice: Choice::For,
                cast_at: 1_002,
                version: VoteVersion::OpenText,
            }),
        },
        MatrixRow {
            member: member(3),
            assessment: AssessmentStep::Done { answered: 27, total: 27, submitted_at: 150 },
            plan: PlanStep::Items { items: 1 },
            signature: SignatureStep::Checked(CommitmentStatus::ChangedSinceSigning { signed_at: 200 }),
            progress: ProgressStep::Reported { reported: 0, items: 1 },
            vote: VoteStep::Vote(VoteState::NotVoted),
        },
        MatrixRow {
            member: member(4),
            assessment: AssessmentStep::NotStarted,
            plan: PlanStep::Items { items: 0 },
            signature: SignatureStep::Checked(CommitmentStatus::Unsigned),
            progress: ProgressStep::Reported { reported: 0, items: 0 },
            vote: VoteStep::Vote(VoteState::NoBallot),
        },
    ];
    assert_eq!(rows, expected);
    assert!(member_matrix(&docs[..1], 3, None, known_key).iter().all(|r| r.vote == VoteStep::NoVote));

    // A document that is not a plan is unreadable, not "not started".
    let wrong = new_document(DocKind::Ballot, actor(5));
    let bad = [MemberDocs {
        member: member(5),
        assessment: None,
        plan: Some(PlanDoc { id: plan_id(5), doc: &wrong }),
    }];
    let row = &member_matrix(&bad, 3, None, known_key)[0];
    assert_eq!(
        (row.plan, row.signature, row.progress),
        (PlanStep::Unreadable, SignatureStep::Unreadable, ProgressStep::Unreadable)
    );
}

// ─── heat map ───

#[test]
fn heat_map_counts_each_item_by_degree_across_the_branch() {
    let catalogue = Catalogue::builtin();
    let scale: Vec<&str> = catalogue.degrees().iter().map(|d| d.code()).collect();
    assert_eq!(scale, ["none", "mild", "clear"], "the test's expectations assume the built-in scale");

    let mut a = assessment_doc(1);
    answer(&mut a, 100, &[("A1", true, Some("mild")), ("A2", false, None), ("B5", true, Some("clear"))]);
    // Member 2 answers A1 on the phone and A2 on the laptop, offline; merged.
    let mut phone = assessment_doc(2);
    let mut laptop = device(&phone, 22);
    answer(&mut phone, 100, &[("A1", true, Some("clear"))]);
    answer(&mut laptop, 101, &[("A2", true, None)]);
    merge(&mut phone, &laptop);
    let mut c = assessment_doc(3);
    answer(
        &mut c,
        100,
        &[("A1", true, Some("mild")), ("A2", true, Some("severe")), ("B5", true, Some("none"))],
    );

    let hydrated: Vec<SelfAssessment> =
        [&a, &phone, &c].iter().map(|d| hydrate(*d).expect("assessment")).collect();
    let mut inputs: Vec<Option<&SelfAssessment>> = hydrated.iter().map(Some).collect();
    inputs.push(None);
    let map = heat_map(catalogue, inputs);

    assert_eq!(map.degrees, ["none", "mild", "clear"]);
    assert_eq!((map.assessments, map.missing), (3, 1));
    assert_eq!(map.rows.len(), 27);
    let row = |code: &str| map.rows.iter().find(|r| r.code == code).expect("row");
    // (none, mild, clear), applies without degree, unknown degree, does not apply, unanswered
    let cells = |code: &str| {
        let r = row(code);
        (r.by_degree.clone(), r.applies_without_degree, r.unknown_degree, r.does_not_apply, r.unanswered)
    };
    assert_eq!(cells("A1"), (vec![0, 2, 1], 0, 0, 0, 0));
    assert_eq!(cells("A2"), (vec![0, 0, 0], 1, 1, 1, 0));
    assert_eq!(cells("B5"), (vec![1, 0, 1], 0, 0, 0, 1));
    assert_eq!(cells("C9"), (vec![0, 0, 0], 0, 0, 0, 3));
    assert_eq!(row("A2").applies(), 2);
    for r in &map.rows {
        let total = r.by_degree.iter().sum::<u32>()
            + r.applies_without_degree
            + r.unknown_degree
            + r.does_not_apply
            + r.unanswered;
        assert_eq!(total, 3, "row {} adds up to the assessments", r.code);
    }
}

// ─── conflicts ───

#[test]
fn concurrent_deadlines_conflict_and_settling_converges_everywhere() {
    let base = draft();
    let mut phone = device(&base, 2);
    let mut laptop = device(&base, 3);
    edit(&mut phone, 100, |r: &mut Resolution| r.tasks[0].deadline = "2026-07-15".into());
    edit(&mut laptop, 101, |r: &mut Resolution| r.tasks[0].deadline = "2026-08-01".into());
    let mut secretary = device(&base, 4);
    merge(&mut secretary, &phone);
    merge(&mut secretary, &laptop);
    // A device that already has the conflict, and keeps typing into the minutes-like text.
    let mut third = device(&secretary, 5);
    splice_text(&mut third, &ResolutionText::TaskContent { id: "t1".into() }, 0, 0, "Quý: ", 150)
        .expect("type");

    assert!(conflicts(&base).is_empty(), "no concurrency, no conflict");
    let found = conflicts(&secretary);
    assert_eq!(found.len(), 1, "{found:?}");
    let conflict = &found[0];
    assert_eq!(conflict.path_string(), "tasks[t1].deadline");
    assert_eq!(conflict.prop, Prop::Map("deadline".into()));
    let mut values: Vec<(String, ActorId)> =
        conflict.values.iter().map(|v| (v.display.clone(), v.actor.clone())).collect();
    values.sort();
    assert_eq!(values, vec![("2026-07-15".into(), actor(2)), ("2026-08-01".into(), actor(3))]);
    assert_eq!(conflict.values.iter().filter(|v| v.shown).count(), 1);
    let shown = hydrate::<Resolution>(&secretary).expect("resolution").tasks[0].deadline.clone();
    assert_eq!(conflict.shown().expect("shown").display, shown);
    // The object id is the task's, the same on every device.
    let (_, tasks) = secretary.get(automerge::ROOT, "tasks").expect("get").expect("tasks");
    let (_, task_obj) = secretary.get(&tasks, 0).expect("get").expect("task");
    assert_eq!(conflict.obj, task_obj);
    assert_eq!(conflicts(&third), found, "the conflict reads the same on another device");

    // The secretary settles on the value that is not shown.
    let chosen = conflict.values.iter().position(|v| !v.shown).expect("a hidden value");
    let chosen_value = conflict.values[chosen].display.clone();
    let hash = settle(&mut secretary, conflict, chosen, 200).expect("settle");
    assert!(conflicts(&secretary).is_empty());
    assert_eq!(hydrate::<Resolution>(&secretary).expect("resolution").tasks[0].deadline, chosen_value);
    let change = secretary.get_change_by_hash(&hash).expect("change");
    assert_eq!(change.timestamp(), 200);
    assert_eq!(change.message(), Some("settle conflict at tasks[t1].deadline"));

    // Settling the same conflict again is refused: it was read before the settlement.
    assert!(matches!(settle(&mut secretary, conflict, chosen, 201), Err(ReviewError::StaleConflict { .. })));
    assert!(matches!(
        settle(&mut secretary, conflict, 9, 201),
        Err(ReviewError::NoSuchValue { index: 9, len: 2 })
    ));

    // Every device that merges the settlement converges on it, with no conflict.
    for device_doc in [&mut third, &mut phone, &mut laptop] {
        merge(device_doc, &secretary);
        assert!(conflicts(device_doc).is_empty());
        let r: Resolution = hydrate(&*device_doc).expect("resolution");
        assert_eq!(r.tasks[0].deadline, chosen_value);
    }
    assert_eq!(
        hydrate::<Resolution>(&third).expect("resolution").tasks[0].content.as_str(),
        "Quý: Sinh hoạt chuyên đề hằng quý",
        "typing elsewhere is kept"
    );

    // The settlement is in the history, with its message and path.
    let entry = history(&secretary).into_iter().find(|e| e.hash == hash).expect("in history");
    assert_eq!(entry.paths, ["tasks[t1].deadline"]);
    assert_eq!(entry.actor, actor(4));
}

#[test]
fn a_conflict_that_changed_since_it_was_read_is_not_settled() {
    let base = assessment_doc(1);
    let mut phone = device(&base, 2);
    let mut laptop = device(&base, 3);
    let mut tablet = device(&base, 4);
    answer(&mut phone, 100, &[("A1", true, Some("mild"))]);
    answer(&mut laptop, 100, &[("A1", true, Some("clear"))]);
    answer(&mut tablet, 100, &[("A1", true, Some("none"))]);
    let mut secretary = device(&base, 5);
    merge(&mut secretary, &phone);
    merge(&mut secretary, &laptop);

    let found = conflicts(&secretary);
    let paths: Vec<String> = found.iter().map(Conflict::path_string).collect();
    // Both devices wrote `applies = true` (the same value: nothing to choose) and a degree.
    assert_eq!(paths, ["items.A1.degree"]);
    let degree = found[0].clone();
    let mut shown: Vec<String> = degree.values.iter().map(|v| v.display.clone()).collect();
    shown.sort();
    assert_eq!(shown, ["clear", "mild"]);

    // A third concurrent answer arrives before the secretary chooses.
    merge(&mut secretary, &tablet);
    let heads = secretary.get_heads();
    match settle(&mut secretary, &degree, 0, 200) {
        Err(ReviewError::StaleConflict { path }) => assert_eq!(path, "items.A1.degree"),
        other => panic!("expected StaleConflict, got {other:?}"),
    }
    assert_eq!(secretary.get_heads(), heads, "nothing written");
    let again = conflicts(&secretary);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].values.len(), 3);
    let chosen = again[0].values.iter().position(|v| v.actor == actor(4)).expect("the tablet's answer");
    settle(&mut secretary, &again[0], chosen, 201).expect("settle the fresh conflict");
    assert!(conflicts(&secretary).is_empty());
    let a: SelfAssessment = hydrate(&secretary).expect("assessment");
    assert_eq!(a.items["A1"].degree.as_deref(), Some("none"));
}

#[test]
fn two_whole_votes_conflict_and_settle_to_a_copy_of_the_chosen_one() {
    let base = new_document(DocKind::Ballot, actor(1));
    let mut phone = device(&base, 2);
    let mut laptop = device(&base, 3);
    let heads = vec![ChangeHash([7; 32])];
    let phone_vote = Vote { choice: Choice::For, cast_at: 100, resolution_heads: hex(&heads) };
    let laptop_vote = Vote { choice: Choice::Against, cast_at: 101, resolution_heads: hex(&heads) };
    cast_vote(&mut phone, phone_vote.clone(), 100).expect("vote");
    cast_vote(&mut laptop, laptop_vote.clone(), 101).expect("vote");
    let mut merged = device(&phone, 4);
    merge(&mut merged, &laptop);

    let found = conflicts(&merged);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path_string(), "vote");
    assert!(
        found[0]
            .values
            .iter()
            .all(|v| v.value == ValueKind::Object(automerge::ObjType::Map) && v.display == "map")
    );
    let by_laptop = found[0].values.iter().position(|v| v.actor == actor(3)).expect("laptop's vote");
    settle(&mut merged, &found[0], by_laptop, 200).expect("settle");
    assert!(conflicts(&merged).is_empty());
    assert_eq!(hydrate::<Ballot>(&merged).expect("ballot").vote, Some(laptop_vote.clone()));
    merge(&mut phone, &merged);
    assert!(conflicts(&phone).is_empty());
    assert_eq!(hydrate::<Ballot>(&phone).expect("ballot").vote, Some(laptop_vote));
}

#[test]
fn concurrent_typing_and_list_inserts_are_not_conflicts() {
    let base = draft();
    let mut a = device(&base, 2);
    let mut b = device(&base, 3);
    let field = ResolutionText::TaskContent { id: "t1".into() };
    splice_text(&mut a, &field, 0, 0, "A ", 100).expect("type");
    splice_text(&mut b, &field, 0, 0, "B ", 100).expect("type");
    edit(&mut a, 100, |r: &mut Resolution| r.tasks.push(task("t2", "")));
    edit(&mut b, 100, |r: &mut Resolution| r.tasks.push(task("t3", "")));
    merge(&mut a, &b);
    assert!(conflicts(&a).is_empty(), "{:?}", conflicts(&a));
}

// ─── history ───

#[test]
fn history_says_who_wrote_what_in_causal_order() {
    let base = new_document(DocKind::Resolution, actor(1));
    let mut secretary = device(&base, 2);
    let mut deputy = device(&base, 3);
    edit(&mut secretary, 100, |r: &mut Resolution| r.title = "Nghị quyết".into());
    edit(&mut deputy, 50, |r: &mut Resolution| r.tasks.push(task("t1", "")));
    splice_text(&mut deputy, &ResolutionText::TaskContent { id: "t1".into() }, 0, 0, "Mới: ", 200)
        .expect("type");
    merge(&mut secretary, &deputy);
    edit(&mut secretary, 300, |r: &mut Resolution| r.tasks[0].deadline = "2026-05-01".into());

    let entries = history(&secretary);
    let summary: Vec<(u8, u64, i64, Vec<String>)> = entries
        .iter()
        .map(|e| {
            let who = (1..=3).find(|n| e.actor == actor(*n)).unwrap_or(0);
            (who, e.seq, e.time, e.paths.clone())
        })
        .collect();
    let genesis = &entries[0];
    assert_eq!(genesis.time, 0);
    assert!(genesis.fields.contains(&"tasks".to_owned()) && genesis.fields.contains(&"sections".to_owned()));
    assert_eq!(
        summary[1..],
        [
            (3, 1, 50, vec!["tasks[t1]".to_owned()]),
            (2, 1, 100, vec!["title".to_owned()]),
            (3, 2, 200, vec!["tasks[t1].content".to_owned()]),
            (2, 2, 300, vec!["tasks[t1].deadline".to_owned()]),
        ]
    );
    assert_eq!(entries[4].fields, ["tasks"]);
    // Causal: every change comes after the changes it depends on.
    for (i, e) in entries.iter().enumerate() {
        for dep in &e.deps {
            let at = entries.iter().position(|x| x.hash == *dep).expect("dep in history");
            assert!(at < i, "{} before its dependency", e.hash);
        }
    }
    assert_eq!(entries.len(), secretary.get_changes(&[]).len());
    assert_eq!((entries[2].actor.clone(), entries[1].actor.clone()), (actor(2), actor(3)), "authors");
}

#[test]
fn history_of_a_few_hundred_changes_is_complete_and_causal() {
    let mut doc = draft();
    let mut other = device(&doc, 9);
    let field = ResolutionText::TaskContent { id: "t1".into() };
    for i in 0..200 {
        splice_text(&mut doc, &field, 0, 0, "x", 1_000 + i).expect("type");
        splice_text(
            &mut other,
            &ResolutionText::Section(crate::schema::ResolutionSection::Basis),
            0,
            0,
            "y",
            1_000 + i,
        )
        .expect("type");
        if i % 50 == 0 {
            merge(&mut doc, &other);
        }
    }
    merge(&mut doc, &other);
    let started = std::time::Instant::now();
    let entries = history(&doc);
    let elapsed = started.elapsed();
    eprintln!("history of {} changes: {elapsed:?}", entries.len());
    assert_eq!(entries.len(), doc.get_changes(&[]).len());
    assert!(entries.len() > 400);
    let mut position = std::collections::HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        for dep in &e.deps {
            assert!(position.get(dep).is_some_and(|&at: &usize| at < i));
        }
        position.insert(e.hash, i);
    }
    let typing = entries.iter().filter(|e| e.paths == ["tasks[t1].content"]).count();
    let basis = entries.iter().filter(|e| e.paths == ["sections.basis"]).count();
    assert_eq!((typing, basis), (200, 200));
}

// ─── the demo branch ───

#[test]
fn the_demo_branch_reviews_cleanly() {
    let demo = crate::schema::demo::demo_branch();
    let names: BTreeMap<ActorId, String> =
        demo.roster.iter().map(|m| (m.actor.clone(), m.name.clone())).collect();
    let mut assessments = Vec::new();
    for ((_, doc), path) in demo.documents.iter().zip(&demo.paths) {
        assert!(conflicts(doc).is_empty(), "{path:?} has conflicts");
        let entries = history(doc);
        assert_eq!(entries.len(), doc.get_changes(&[]).len());
        assert_eq!(
            entries[0].hash,
            crate::schema::genesis_change_hash(path.kind()),
            "{path:?} starts at genesis"
        );
        for e in &entries[1..] {
            assert!(names.contains_key(&e.actor), "{path:?}: change by an actor not on the roster");
            assert!(e.paths.iter().all(|p| !p.contains('?') && !p.is_empty()), "{path:?}: {:?}", e.paths);
            assert!(!e.fields.is_empty());
        }
        if path.kind() == DocKind::SelfAssessment {
            assessments.push(hydrate::<SelfAssessment>(doc).expect("assessment"));
        }
    }
    let map = heat_map(Catalogue::builtin(), assessments.iter().map(Some));
    assert_eq!(map.assessments as usize, assessments.len());
    assert!(map.assessments > 0);
}
