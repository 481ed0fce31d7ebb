//! Per-kind round trips (genesis → update → hydrate, and through save/load) and text paths.

use std::fmt::Debug;

use automerge::Automerge;
use autosurgeon::bytes::ByteVec;

use super::{actor, edit, member, read, splice, text};
use crate::schema::plan::items_list;
use crate::schema::*;

/// Applies `change` both to the hydrated value and, through `update`, to the document; the
/// document must then hydrate (also after save/load) to the same value.
fn round_trip<T: Document + PartialEq + Debug>(change: impl Fn(&mut T)) -> Automerge {
    let mut doc = new_document(T::KIND, actor(9));
    let mut expected: T = read(&doc);
    change(&mut expected);
    assert_ne!(expected, T::genesis_value(), "the change should change something");
    edit(&mut doc, &change);
    assert_eq!(read::<T>(&doc), expected);
    let loaded = Automerge::load(&doc.save()).expect("load");
    assert_eq!(read::<T>(&loaded), expected);
    doc
}

#[test]
fn round_trip_branch_profile() {
    round_trip(|p: &mut BranchProfile| {
        "Chi bộ Cơ quan Ủy ban".clone_into(&mut p.name);
        p.branch_kind = BranchKind::AgencyOrUnit;
        "Đảng bộ Phường 1".clone_into(&mut p.superior);
        p.display_names.insert(member(1).to_string(), "Nguyễn Văn An".into());
    });
}

#[test]
fn round_trip_forum() {
    round_trip(|f: &mut Forum| {
        "Diễn đàn chi bộ".clone_into(&mut f.title);
        f.sessions.push(Session {
            id: "s-1".into(),
            date: "2026-03-15".into(),
            starts_at: "08:00".into(),
            place: "Hội trường".into(),
        });
        f.guests.push(Guest {
            id: "g-1".into(), name: "Lê Thị Mai".into(), organisation: "Đảng ủy".into()
        });
        f.chair = Some(member(1));
        f.attendance.insert(
            member(2).to_string(),
            Attendance { status: AttendanceStatus::AbsentExcused, reason: "Ốm".into() },
        );
        f.raised.push(RaisedManifestation {
            id: "r-1".into(),
            code: "A4".into(),
            raised_by: Some(member(3)),
            summary: LongText::new("Làm việc qua loa"),
            causes: LongText::new("Thiếu kiểm tra"),
        });
        f.proposals.push(Proposal {
            id: "p-1".into(),
            member: member(3),
            text: LongText::new("Tăng kiểm tra"),
        });
    });
}

#[test]
fn round_trip_self_assessment() {
    round_trip(|a: &mut SelfAssessment| {
        a.set_catalogue(crate::catalogue::Catalogue::builtin());
        if let Some(item) = a.items.get_mut("C9") {
            item.applies = Some(false);
        }
        if let Some(group) = a.groups.get_mut("A") {
            group.present_in_branch = Some(false);
        }
        a.solutions
            .push(Solution { id: "s-1".into(), text: LongText::new("Tự học lý luận mỗi tuần.") });
        a.submitted_at = Some(1_773_600_000);
    });
}

#[test]
fn round_trip_resolution_and_ballot() {
    round_trip(|r: &mut Resolution| {
        "Số 01-NQ/CB".clone_into(&mut r.number);
        r.status = ResolutionStatus::Adopted;
        r.tasks.push(ResolutionTask {
            id: "t-1".into(),
            content: LongText::new("Sinh hoạt chi bộ đúng kỳ"),
            owner: member(1).to_string(),
            deadline: "2026-12-31".into(),
            measure: LongText::new("12/12 kỳ"),
            manifestation_codes: vec!["A4".into(), "B1".into()],
        });
        r.adoption = Some(Adoption {
            heads: vec!["00ff".into()],
            adopted_at: 1_773_600_000,
            tally: Tally { in_favour: 6, against: 0, abstain: 1, eligible: 7 },
        });
    });
    round_trip(|b: &mut Ballot| {
        b.vote = Some(Vote { choice: Choice::Abstain, cast_at: 1, resolution_heads: vec!["00ff".into()] })
    });
}

#[test]
fn round_trip_personal_plan() {
    round_trip(|p: &mut PersonalPlan| {
        let mut item = PlanItem::new("i-1", PlanItemKind::Resolution4, "Không né tránh trách nhiệm");
        item.manifestation_codes.push("A4".into());
        item.resolution_task_ids.push("t-1".into());
        "2026-06-30".clone_into(&mut item.deadline);
        p.items.push(item);
        p.commitment = Some(Commitment {
            public_key: ByteVec::from(vec![1; 32]),
            signature: ByteVec::from(vec![2; 64]),
            signed_heads: vec!["00ff".into()],
            signed_at: 1_773_600_000,
        });
        p.reviews.push(ReviewNote {
            id: "rv-1".into(),
            month: 4,
            reviewer: member(1),
            written_at: 1_775_000_000,
            text: LongText::new("Thực hiện tốt."),
        });
        p.year_end.self_ranking = Some(Ranking::Good);
        p.year_end.committee_ranking = Some(Ranking::Excellent);
    });
}

#[test]
fn round_trip_monthly_meeting() {
    round_trip(|m: &mut MonthlyMeeting| {
        "2026-04-05".clone_into(&mut m.held_on);
        m.clerk = Some(member(2));
        m.plan_reviews.push(PlanReview {
            id: "pr-1".into(),
            member: member(3),
            reviewer: member(1),
            overall: Some(ProgressStatus::InProgress),
            note: LongText::new("Cần cố gắng hơn."),
        });
    });
}

/// Every text field of every kind resolves (the field names in the paths match the structs).
#[test]
fn every_text_field_resolves() {
    fn write_all<F: TextField + Debug>(doc: &mut Automerge, fields: &[F]) {
        for field in fields {
            splice(doc, field, 0, 0, "ổn");
            assert_eq!(text(doc, field), "ổn", "{field:?}");
        }
    }

    let mut forum = new_document(DocKind::Forum, actor(1));
    edit(&mut forum, |f: &mut Forum| {
        f.raised.push(RaisedManifestation {
            id: "r".into(),
            code: "A1".into(),
            raised_by: None,
            summary: LongText::default(),
            causes: LongText::default(),
        });
        f.proposals.push(Proposal { id: "p".into(), member: member(1), text: LongText::default() });
    });
    let mut fields: Vec<ForumText> = ScriptSection::ALL.into_iter().map(ForumText::Script).collect();
    fields.extend([
        ForumText::Minutes,
        ForumText::Conclusion,
        ForumText::RaisedSummary { id: "r".into() },
        ForumText::RaisedCauses { id: "r".into() },
        ForumText::Proposal { id: "p".into() },
    ]);
    write_all(&mut forum, &fields);

    let mut assessment = new_document(DocKind::SelfAssessment, actor(1));
    edit(&mut assessment, |a: &mut SelfAssessment| {
        a.solutions.push(Solution { id: "s".into(), text: LongText::default() })
    });
    let mut fields = vec![AssessmentText::Solution { id: "s".into() }];
    for code in crate::catalogue::ITEM_CODES {
        for part in [ItemPart::Note, ItemPart::Cause, ItemPart::Remedy] {
            fields.push(AssessmentText::Item { code: code.into(), part });
        }
    }
    fields.extend(crate::catalogue::GROUP_CODES.map(|g| AssessmentText::Group { group: g.into() }));
    write_all(&mut assessment, &fields);

    let mut resolution = new_document(DocKind::Resolution, actor(1));
    edit(&mut resolution, |r: &mut Resolution| {
        r.tasks.push(ResolutionTask {
            id: "t".into(),
            content: LongText::default(),
            owner: String::new(),
            deadline: String::new(),
            measure: LongText::default(),
            manifestation_codes: vec![],
        })
    });
    let mut fields: Vec<ResolutionText> =
        ResolutionSection::ALL.into_iter().map(ResolutionText::Section).collect();
    fields.extend([
        ResolutionText::TaskContent { id: "t".into() },
        ResolutionText::TaskMeasure { id: "t".into() },
    ]);
    write_all(&mut resolution, &fields);

    let mut plan = new_document(DocKind::PersonalPlan, actor(1));
    let mut tx = plan.transaction();
    let item = PlanItem::new("i", PlanItemKind::FollowUncleHo, "");
    insert_item(&mut tx, &items_list(), None, &item).expect("insert");
    tx.commit();
    edit(&mut plan, |p: &mut PersonalPlan| {
        p.reviews.push(ReviewNote {
            id: "rv".into(),
            month: 1,
            reviewer: member(1),
            written_at: 0,
            text: LongText::default(),
        })
    });
    let mut fields = vec![
        PlanText::ItemContent { id: "i".into() },
        PlanText::ItemMeasure { id: "i".into() },
        PlanText::Review { id: "rv".into() },
        PlanText::SelfComment,
        PlanText::CommitteeComment,
    ];
    fields.extend((1..=12).map(|month| PlanText::Progress { item: "i".into(), month }));
    write_all(&mut plan, &fields);

    let mut meeting = new_document(DocKind::MonthlyMeeting, actor(1));
    edit(&mut meeting, |m: &mut MonthlyMeeting| {
        m.plan_reviews.push(PlanReview {
            id: "pr".into(),
            member: member(2),
            reviewer: member(1),
            overall: None,
            note: LongText::default(),
        })
    });
    write_all(
        &mut meeting,
        &[MeetingText::Minutes, MeetingText::ActionPlanReview, MeetingText::PlanReview { id: "pr".into() }],
    );
}
