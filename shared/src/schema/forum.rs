//! The forum (diễn đàn): its script, sessions, guests, chair and clerk, attendance, the minutes,
//! the manifestations raised with their causes, members' proposals and the secretary's conclusion.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};

use super::text::TextPath;
use super::{DocKind, Document, LongText, Step, TextField, string_enum};
use crate::ids::MemberId;

/// The sections of the script (kịch bản) the committee prepares, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptSection {
    /// Opening, reason for the forum, delegates (tuyên bố lý do, giới thiệu đại biểu).
    Opening,
    /// Overview of the local and national situation (khái quát tình hình).
    Situation,
    /// Opportunities and challenges; the 10 party-building tasks of the 12th Congress.
    ChallengesAndTasks,
    /// The 27 manifestations.
    Manifestations,
    /// Discussion prompts (đề dẫn, gợi ý thảo luận).
    DiscussionPrompts,
}

impl ScriptSection {
    pub const ALL: [ScriptSection; 5] = [
        ScriptSection::Opening,
        ScriptSection::Situation,
        ScriptSection::ChallengesAndTasks,
        ScriptSection::Manifestations,
        ScriptSection::DiscussionPrompts,
    ];

    /// Field name in [`ForumScript`].
    fn field(self) -> &'static str {
        match self {
            ScriptSection::Opening => "opening",
            ScriptSection::Situation => "situation",
            ScriptSection::ChallengesAndTasks => "challenges_and_tasks",
            ScriptSection::Manifestations => "manifestations",
            ScriptSection::DiscussionPrompts => "discussion_prompts",
        }
    }
}

/// The script, one Text per section.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate)]
pub struct ForumScript {
    pub opening: LongText,
    pub situation: LongText,
    pub challenges_and_tasks: LongText,
    pub manifestations: LongText,
    pub discussion_prompts: LongText,
}

impl ForumScript {
    pub fn section(&self, section: ScriptSection) -> &LongText {
        match section {
            ScriptSection::Opening => &self.opening,
            ScriptSection::Situation => &self.situation,
            ScriptSection::ChallengesAndTasks => &self.challenges_and_tasks,
            ScriptSection::Manifestations => &self.manifestations,
            ScriptSection::DiscussionPrompts => &self.discussion_prompts,
        }
    }
}

/// One sitting; a large branch may hold the forum over two sessions in a week.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Session {
    #[key]
    pub id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `HH:MM`, local time.
    pub starts_at: String,
    pub place: String,
}

/// An invited delegate (upper-level committee, Fatherland Front, union, youth union, ...).
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Guest {
    #[key]
    pub id: String,
    pub name: String,
    pub organisation: String,
}

string_enum! {
    pub enum AttendanceStatus {
        Present = "present",
        /// Vắng có lý do.
        AbsentExcused = "absent-excused",
        /// Vắng không lý do.
        AbsentUnexcused = "absent-unexcused",
    }
}

/// One member's attendance. Scalars only: if two devices record the same member concurrently,
/// one record wins whole, as any concurrent write to one field does.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Attendance {
    pub status: AttendanceStatus,
    /// Reason for absence (empty when present).
    pub reason: String,
}

/// A manifestation raised in discussion, with its causes.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct RaisedManifestation {
    #[key]
    pub id: String,
    /// Catalogue item code, `A1`..`C9`.
    pub code: String,
    /// Who raised it, if recorded.
    pub raised_by: Option<MemberId>,
    pub summary: LongText,
    pub causes: LongText,
}

/// A solution proposed by a member.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Proposal {
    #[key]
    pub id: String,
    pub member: MemberId,
    pub text: LongText,
}

/// `branch/<branch>/forum/<forum>`: written by the committee; the clerk writes the minutes.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Forum {
    pub title: String,
    pub script: ForumScript,
    pub sessions: Vec<Session>,
    pub guests: Vec<Guest>,
    pub chair: Option<MemberId>,
    pub clerk: Option<MemberId>,
    /// By member id (bs58 string).
    pub attendance: BTreeMap<String, Attendance>,
    /// Biên bản: the clerk and the secretary may type into it at once.
    pub minutes: LongText,
    pub raised: Vec<RaisedManifestation>,
    pub proposals: Vec<Proposal>,
    /// The secretary's conclusion (kết luận).
    pub conclusion: LongText,
}

impl Document for Forum {
    const KIND: DocKind = DocKind::Forum;

    fn genesis_value() -> Self {
        Forum {
            title: String::new(),
            script: ForumScript::default(),
            sessions: Vec::new(),
            guests: Vec::new(),
            chair: None,
            clerk: None,
            attendance: BTreeMap::new(),
            minutes: LongText::default(),
            raised: Vec::new(),
            proposals: Vec::new(),
            conclusion: LongText::default(),
        }
    }
}

/// The text fields of a [`Forum`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForumText {
    Script(ScriptSection),
    Minutes,
    Conclusion,
    RaisedSummary { id: String },
    RaisedCauses { id: String },
    Proposal { id: String },
}

impl TextField for ForumText {
    type Doc = Forum;

    fn path(&self) -> TextPath {
        TextPath(match self {
            ForumText::Script(section) => vec![Step::Field("script"), Step::Field(section.field())],
            ForumText::Minutes => vec![Step::Field("minutes")],
            ForumText::Conclusion => vec![Step::Field("conclusion")],
            ForumText::RaisedSummary { id } => {
                vec![Step::Field("raised"), Step::ById(id.clone()), Step::Field("summary")]
            }
            ForumText::RaisedCauses { id } => {
                vec![Step::Field("raised"), Step::ById(id.clone()), Step::Field("causes")]
            }
            ForumText::Proposal { id } => {
                vec![Step::Field("proposals"), Step::ById(id.clone()), Step::Field("text")]
            }
        })
    }
}

/// Paths of the forum's lists, for deterministic inserts (demo).
pub(crate) fn sessions_list() -> Vec<Step> {
    vec![Step::Field("sessions")]
}

pub(crate) fn guests_list() -> Vec<Step> {
    vec![Step::Field("guests")]
}
