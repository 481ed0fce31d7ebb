use super::*;
use crate::schema::YearMonth;

struct World {
    branch: BranchId,
    other: BranchId,
    forum: ForumId,
    me: MemberId,
    peer: MemberId,
}

fn world() -> World {
    World {
        branch: BranchId::from_bytes([1; 16]),
        other: BranchId::from_bytes([2; 16]),
        forum: ForumId::from_bytes([3; 16]),
        me: MemberId::from_bytes([4; 16]),
        peer: MemberId::from_bytes([5; 16]),
    }
}

fn paths(w: &World, branch: BranchId) -> Vec<(&'static str, DocPath)> {
    let month = YearMonth::new(2026, 11).unwrap_or_else(|| unreachable!());
    vec![
        ("profile", DocPath::BranchProfile { branch }),
        ("forum", DocPath::Forum { branch, forum: w.forum }),
        ("resolution", DocPath::Resolution { branch, forum: w.forum }),
        ("meeting", DocPath::MonthlyMeeting { branch, month }),
        ("my-ballot", DocPath::Ballot { branch, forum: w.forum, member: w.me }),
        ("peer-ballot", DocPath::Ballot { branch, forum: w.forum, member: w.peer }),
        ("my-assessment", DocPath::SelfAssessment { branch, forum: w.forum, member: w.me }),
        ("peer-assessment", DocPath::SelfAssessment { branch, forum: w.forum, member: w.peer }),
        ("my-plan", DocPath::PersonalPlan { branch, member: w.me, year: 2026 }),
        ("peer-plan", DocPath::PersonalPlan { branch, member: w.peer, year: 2026 }),
    ]
}

/// The names of the documents `who` may read and may write in `branch`.
fn grants(who: &Subject, w: &World, branch: BranchId) -> (Vec<&'static str>, Vec<&'static str>) {
    let all = paths(w, branch);
    let read = all.iter().filter(|(_, p)| may_read(who, p)).map(|(n, _)| *n).collect();
    let write = all.iter().filter(|(_, p)| may_write(who, p)).map(|(n, _)| *n).collect();
    (read, write)
}

const BRANCH_DOCS: [&str; 4] = ["profile", "forum", "resolution", "meeting"];

#[test]
fn a_plain_member_reads_the_branch_and_writes_only_their_own_documents() {
    let w = world();
    let me = Subject::in_branch(w.me, Role::Member, w.branch);
    let (read, write) = grants(&me, &w, w.branch);
    let mut want_read = BRANCH_DOCS.to_vec();
    want_read.extend(["my-ballot", "peer-ballot", "my-assessment", "my-plan"]);
    assert_eq!(read, want_read);
    assert_eq!(write, ["my-ballot", "my-assessment", "my-plan"]);
}

#[test]
fn nobody_reads_or_writes_another_branch() {
    let w = world();
    for role in [Role::Member, Role::Committee, Role::DeputySecretary, Role::Secretary] {
        let who = Subject::in_branch(w.me, role, w.branch);
        assert_eq!(grants(&who, &w, w.other), (vec![], vec![]), "{role}");
    }
}

#[test]
fn the_committee_reads_every_member_document_and_writes_branch_documents_and_plans() {
    let w = world();
    for role in [Role::Committee, Role::DeputySecretary, Role::Secretary] {
        let who = Subject::in_branch(w.me, role, w.branch);
        let (read, write) = grants(&who, &w, w.branch);
        assert_eq!(read.len(), 10, "{role} reads everything in the branch");
        let mut want_write = BRANCH_DOCS.to_vec();
        want_write.extend(["my-ballot", "my-assessment", "my-plan", "peer-plan"]);
        assert_eq!(write, want_write, "{role}");
    }
}

#[test]
fn a_clerk_writes_the_minutes_of_their_forum_only() {
    let w = world();
    let mut clerk = Subject::in_branch(w.me, Role::Member, w.branch);
    clerk.clerk_of.insert(w.forum);
    assert!(may_write(&clerk, &DocPath::Forum { branch: w.branch, forum: w.forum }));
    let other_forum = ForumId::from_bytes([9; 16]);
    assert!(!may_write(&clerk, &DocPath::Forum { branch: w.branch, forum: other_forum }));
    assert!(!may_write(&clerk, &DocPath::Resolution { branch: w.branch, forum: w.forum }));
}

#[test]
fn an_upper_level_reader_sees_branch_documents_but_no_member_documents() {
    let w = world();
    let mut upper = Subject {
        member: w.me,
        role: Role::UpperReader,
        branch: None,
        clerk_of: BTreeSet::new(),
        oversees: BTreeSet::new(),
    };
    upper.oversees.insert(w.branch);
    assert_eq!(grants(&upper, &w, w.branch), (BRANCH_DOCS.to_vec(), vec![]));
    assert_eq!(grants(&upper, &w, w.other), (vec![], vec![]));
}

#[test]
fn the_relay_admin_reads_no_documents() {
    let w = world();
    let mut admin = Subject::in_branch(w.me, Role::RelayAdmin, w.branch);
    admin.oversees.insert(w.branch);
    assert_eq!(grants(&admin, &w, w.branch), (vec![], vec![]));
}

#[test]
fn roles_round_trip_through_their_names() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
    }
    assert!("chairman".parse::<Role>().is_err());
}
