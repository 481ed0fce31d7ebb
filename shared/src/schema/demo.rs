//! A deterministic demo branch for `init --demo`, screenshots and tests: a residential branch
//! "Chi bộ Khu phố 3" with a secretary, a clerk and five members, one forum being held (script
//! written, minutes started), and for each person an empty self-assessment and a 2026 personal
//! plan. Every id, actor, timestamp and byte is fixed: two builds are identical.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge};
use sha2::{Digest, Sha256};

use super::forum::{guests_list, sessions_list};
use super::resolution::tasks_list;
use super::{
    Attendance, AttendanceStatus, BranchKind, BranchProfile, COMMITTEE_OWNER, DocKind, DocPath, Forum, ForumText,
    Guest, LongText, Resolution, ResolutionSection, ResolutionTask, ResolutionText, SchemaError, ScriptSection,
    SelfAssessment, Session, insert_item, new_document, splice_text_in, update_in,
};
use crate::catalogue::Catalogue;
use crate::ids::{BranchId, DocumentId, ForumId, MemberId};

/// When the committee wrote the branch profile (2026-02-02 09:00 +07:00), unix seconds.
pub const PROFILE_WRITTEN_AT: i64 = 1_769_997_600;
/// When the committee prepared the forum script (2026-03-10 20:00 +07:00).
pub const FORUM_PREPARED_AT: i64 = 1_773_147_600;
/// When the clerk started the minutes (2026-03-15 08:05 +07:00).
pub const MINUTES_STARTED_AT: i64 = 1_773_536_700;
/// The year of the demo personal plans.
pub const PLAN_YEAR: u16 = 2026;
/// When the demo committee drafted the resolution (2026-03-20 09:00, UTC+7).
pub const RESOLUTION_DRAFTED_AT: i64 = 1_773_972_000;

/// A person's role on the demo roster (the server's role names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoRole {
    Secretary,
    Clerk,
    Member,
}

impl DemoRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            DemoRole::Secretary => "secretary",
            DemoRole::Clerk => "clerk",
            DemoRole::Member => "member",
        }
    }
}

/// One person on the demo roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoMember {
    pub id: MemberId,
    pub name: String,
    pub role: DemoRole,
    /// The actor the demo used for this person's edits (a relay may bind it to a demo device).
    pub actor: ActorId,
}

/// The demo branch: roster and every document.
#[derive(Debug, Clone)]
pub struct DemoBranch {
    pub branch: BranchId,
    pub name: String,
    pub forum: ForumId,
    pub roster: Vec<DemoMember>,
    /// Every document, by id.
    pub documents: Vec<(DocumentId, Automerge)>,
    /// The path of each document, in the same order as `documents`.
    pub paths: Vec<DocPath>,
}

const BRANCH_NAME: &str = "Chi bộ Khu phố 3";

const ROSTER: [(&str, &str, DemoRole); 7] = [
    ("secretary", "Nguyễn Văn An", DemoRole::Secretary),
    ("clerk", "Trần Thị Bình", DemoRole::Clerk),
    ("member-1", "Lê Văn Cường", DemoRole::Member),
    ("member-2", "Phạm Thị Dung", DemoRole::Member),
    ("member-3", "Hoàng Minh Đức", DemoRole::Member),
    ("member-4", "Vũ Thị Hoa", DemoRole::Member),
    ("member-5", "Đặng Quốc Khánh", DemoRole::Member),
];

const SCRIPT: [(ScriptSection, &str); 5] = [
    (ScriptSection::Opening, "Tuyên bố lý do, giới thiệu đại biểu; giới thiệu chủ trì và thư ký diễn đàn."),
    (
        ScriptSection::Situation,
        "Khái quát tình hình kinh tế - xã hội, quốc phòng - an ninh và công tác xây dựng Đảng của phường và khu phố năm 2025.",
    ),
    (
        ScriptSection::ChallengesAndTasks,
        "Những thời cơ, thách thức đối với Đảng trong giai đoạn hiện nay; 10 nhiệm vụ trọng tâm về xây dựng Đảng nêu trong Văn kiện Đại hội XII.",
    ),
    (
        ScriptSection::Manifestations,
        "Nội dung 27 biểu hiện suy thoái về tư tưởng chính trị, đạo đức, lối sống, \"tự diễn biến\", \"tự chuyển hóa\" trong nội bộ theo Nghị quyết Trung ương 4 khóa XII.",
    ),
    (
        ScriptSection::DiscussionPrompts,
        "Mỗi đảng viên liên hệ bản thân với 27 biểu hiện: có hay không, nếu có thì ở mức độ nào; nêu nguyên nhân và giải pháp khắc phục.",
    ),
];

const GUESTS: [(&str, &str, &str); 3] = [
    ("guest-1", "Lê Thị Mai", "Đảng ủy Phường Hòa Bình"),
    ("guest-2", "Ngô Văn Tâm", "Ban Công tác Mặt trận Khu phố 3"),
    ("guest-3", "Bùi Thị Lan", "Chi hội Phụ nữ Khu phố 3"),
];

fn fixed_bytes(label: &str) -> [u8; 16] {
    let digest = Sha256::new().chain_update(b"chibo/demo/").chain_update(label).finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes
}

/// Builds the demo branch (deterministic; see the module docs).
pub fn demo_branch() -> DemoBranch {
    // Every edit writes fixed values into documents built here; the demo tests build and hydrate
    // all of them.
    build().expect("demo branch from fixed data")
}

/// The demo branch's id.
pub fn demo_branch_id() -> BranchId {
    BranchId::from_bytes(fixed_bytes("branch"))
}

/// The demo forum's id.
pub fn demo_forum_id() -> ForumId {
    ForumId::from_bytes(fixed_bytes("forum"))
}

fn member_id(label: &str) -> MemberId {
    MemberId::from_bytes(fixed_bytes(&format!("member/{label}")))
}

/// The path of every demo document, in the order of [`DemoBranch::paths`], without building any
/// document: what a client needs to open the demo branch cheaply.
pub fn demo_paths() -> Vec<DocPath> {
    let (branch, forum) = (demo_branch_id(), demo_forum_id());
    let mut paths = vec![
        DocPath::BranchProfile { branch },
        DocPath::Forum { branch, forum },
        DocPath::Resolution { branch, forum },
    ];
    for (label, _, _) in ROSTER {
        let member = member_id(label);
        paths.push(DocPath::SelfAssessment { branch, forum, member });
        paths.push(DocPath::PersonalPlan { branch, member, year: PLAN_YEAR });
    }
    paths
}

fn build() -> Result<DemoBranch, SchemaError> {
    let branch = demo_branch_id();
    let forum_id = demo_forum_id();
    let roster: Vec<DemoMember> = ROSTER
        .iter()
        .map(|(label, name, role)| DemoMember {
            id: member_id(label),
            name: (*name).to_owned(),
            role: *role,
            actor: ActorId::from(fixed_bytes(&format!("actor/{label}"))),
        })
        .collect();
    let secretary = &roster[0];
    let clerk = &roster[1];

    let mut docs: Vec<(DocPath, Automerge)> = Vec::new();
    docs.push((DocPath::BranchProfile { branch }, profile(secretary, &roster)?));
    docs.push((DocPath::Forum { branch, forum: forum_id }, forum(secretary, clerk, &roster)?));
    docs.push((DocPath::Resolution { branch, forum: forum_id }, resolution(secretary)?));
    for member in &roster {
        let path = DocPath::SelfAssessment { branch, forum: forum_id, member: member.id };
        docs.push((path, self_assessment(member)?));
        let path = DocPath::PersonalPlan { branch, member: member.id, year: PLAN_YEAR };
        docs.push((path, new_document(DocKind::PersonalPlan, member.actor.clone())));
    }

    Ok(DemoBranch {
        branch,
        name: BRANCH_NAME.to_owned(),
        forum: forum_id,
        roster,
        paths: docs.iter().map(|(p, _)| *p).collect(),
        documents: docs.into_iter().map(|(p, d)| (p.document_id(), d)).collect(),
    })
}

fn commit_options(time: i64) -> CommitOptions {
    CommitOptions::default().with_time(time)
}

fn profile(secretary: &DemoMember, roster: &[DemoMember]) -> Result<Automerge, SchemaError> {
    let mut doc = new_document(DocKind::BranchProfile, secretary.actor.clone());
    let mut tx = doc.transaction();
    update_in(&mut tx, |p: &mut BranchProfile| {
        BRANCH_NAME.clone_into(&mut p.name);
        p.branch_kind = BranchKind::Residential;
        "Đảng bộ Phường Hòa Bình".clone_into(&mut p.superior);
        "Hòa Bình".clone_into(&mut p.place);
        p.display_names = roster.iter().map(|m| (m.id.to_string(), m.name.clone())).collect();
    })?;
    tx.commit_with(commit_options(PROFILE_WRITTEN_AT));
    Ok(doc)
}

fn forum(
    secretary: &DemoMember,
    clerk: &DemoMember,
    roster: &[DemoMember],
) -> Result<Automerge, SchemaError> {
    let mut doc = new_document(DocKind::Forum, secretary.actor.clone());

    // The committee (here the secretary) prepares the script, sessions and guests.
    let mut tx = doc.transaction();
    update_in(&mut tx, |f: &mut Forum| {
        f.title = "Diễn đàn \"Vai trò của chi bộ Đảng trong việc giáo dục, quản lý cán bộ, đảng viên để ngăn chặn, \
                   đẩy lùi sự suy thoái về tư tưởng chính trị, đạo đức, lối sống, những biểu hiện \
                   'tự diễn biến', 'tự chuyển hóa' trong nội bộ\""
            .to_owned();
        f.chair = Some(secretary.id);
        f.clerk = Some(clerk.id);
    })?;
    for (section, text) in SCRIPT {
        splice_text_in(&mut tx, &ForumText::Script(section), 0, 0, text)?;
    }
    let session = Session {
        id: "session-1".to_owned(),
        date: "2026-03-15".to_owned(),
        starts_at: "08:00".to_owned(),
        place: "Nhà văn hóa Khu phố 3".to_owned(),
    };
    insert_item(&mut tx, &sessions_list(), None, &session)?;
    for (id, name, organisation) in GUESTS {
        let guest = Guest { id: id.to_owned(), name: name.to_owned(), organisation: organisation.to_owned() };
        insert_item(&mut tx, &guests_list(), None, &guest)?;
    }
    tx.commit_with(commit_options(FORUM_PREPARED_AT));

    // The clerk, on their own device, records attendance and starts the minutes.
    doc.set_actor(clerk.actor.clone());
    let mut tx = doc.transaction();
    update_in(&mut tx, |f: &mut Forum| {
        for (i, m) in roster.iter().enumerate() {
            let attendance = if i == roster.len() - 1 {
                Attendance { status: AttendanceStatus::AbsentExcused, reason: "Đi công tác".to_owned() }
            } else {
                Attendance { status: AttendanceStatus::Present, reason: String::new() }
            };
            f.attendance.insert(m.id.to_string(), attendance);
        }
    })?;
    let minutes = format!(
        "Hôm nay, ngày 15 tháng 3 năm 2026, lúc 08 giờ 00, tại Nhà văn hóa Khu phố 3, {BRANCH_NAME} tổ chức diễn đàn.\n\
         Chủ trì: đồng chí {}, Bí thư chi bộ. Thư ký: đồng chí {}.\n\
         Có mặt {}/{} đảng viên; vắng 1 (có lý do).\n",
        secretary.name,
        clerk.name,
        roster.len() - 1,
        roster.len(),
    );
    splice_text_in(&mut tx, &ForumText::Minutes, 0, 0, &minutes)?;
    tx.commit_with(commit_options(MINUTES_STARTED_AT));
    Ok(doc)
}

/// The committee's draft resolution after the forum (a draft: the vote is not open).
const RESOLUTION_SECTIONS: [(ResolutionSection, &str); 4] = [
    (
        ResolutionSection::Basis,
        "Căn cứ Nghị quyết Trung ương 4 khóa XII; kết quả diễn đàn chi bộ ngày 15/3/2026.",
    ),
    (
        ResolutionSection::Assessment,
        "Đa số đảng viên giữ vững lập trường; một số đồng chí còn ngại va chạm trong tự phê bình và phê bình.",
    ),
    (
        ResolutionSection::TasksAndSolutions,
        "Mỗi đảng viên tự liên hệ 27 biểu hiện, xây dựng kế hoạch \"2 trong 1\" và ký cam kết.",
    ),
    (
        ResolutionSection::Implementation,
        "Chi ủy kiểm điểm tiến độ hằng tháng trong sinh hoạt chi bộ; báo cáo Đảng ủy 6 tháng một lần.",
    ),
];

fn resolution(secretary: &DemoMember) -> Result<Automerge, SchemaError> {
    let mut doc = new_document(DocKind::Resolution, secretary.actor.clone());
    let mut tx = doc.transaction();
    update_in(&mut tx, |r: &mut Resolution| {
        "01-NQ/CB".clone_into(&mut r.number);
        "Nghị quyết về tăng cường xây dựng, chỉnh đốn Đảng theo Nghị quyết Trung ương 4".clone_into(&mut r.title);
        "2026-03-20".clone_into(&mut r.date);
    })?;
    for (section, text) in RESOLUTION_SECTIONS {
        splice_text_in(&mut tx, &ResolutionText::Section(section), 0, 0, text)?;
    }
    let tasks = [
        ("task-1", COMMITTEE_OWNER.to_owned(), "2026-04-30", "Hoàn thành kế hoạch \"2 trong 1\" của từng đảng viên"),
        ("task-2", secretary.id.to_string(), "2026-12-31", "Kiểm điểm tiến độ trong sinh hoạt chi bộ hằng tháng"),
    ];
    for (id, owner, deadline, content) in tasks {
        let task = ResolutionTask {
            id: id.to_owned(),
            content: LongText::new(content),
            owner,
            deadline: deadline.to_owned(),
            measure: LongText::default(),
            manifestation_codes: Vec::new(),
        };
        insert_item(&mut tx, &tasks_list(), None, &task)?;
    }
    tx.commit_with(commit_options(RESOLUTION_DRAFTED_AT));
    Ok(doc)
}

fn self_assessment(member: &DemoMember) -> Result<Automerge, SchemaError> {
    let mut doc = new_document(DocKind::SelfAssessment, member.actor.clone());
    let mut tx = doc.transaction();
    update_in(&mut tx, |a: &mut SelfAssessment| a.set_catalogue(Catalogue::builtin()))?;
    tx.commit_with(commit_options(FORUM_PREPARED_AT));
    Ok(doc)
}
