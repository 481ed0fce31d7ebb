//! The monthly branch meeting (sinh hoạt chi bộ định kỳ): its minutes, the review of the collective
//! action plan, and the committee's review of each member's personal plan.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};

use super::text::TextPath;
use super::{Attendance, DocKind, Document, LongText, ProgressStatus, Step, TextField};
use crate::ids::MemberId;

/// The committee's review of one member's plan this month. A keyed list item (not a map entry by
/// member) so two committee members writing reviews offline never overwrite each other.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct PlanReview {
    #[key]
    pub id: String,
    pub member: MemberId,
    pub reviewer: MemberId,
    pub overall: Option<ProgressStatus>,
    pub note: LongText,
}

/// `branch/<branch>/meeting/<yyyy-mm>`, written by the committee; the clerk writes the minutes.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct MonthlyMeeting {
    /// `YYYY-MM-DD`, or empty.
    pub held_on: String,
    pub place: String,
    pub chair: Option<MemberId>,
    pub clerk: Option<MemberId>,
    /// By member id (bs58 string).
    pub attendance: BTreeMap<String, Attendance>,
    pub minutes: LongText,
    /// Review of the branch's collective action plan.
    pub action_plan_review: LongText,
    pub plan_reviews: Vec<PlanReview>,
}

impl Document for MonthlyMeeting {
    const KIND: DocKind = DocKind::MonthlyMeeting;

    fn genesis_value() -> Self {
        MonthlyMeeting {
            held_on: String::new(),
            place: String::new(),
            chair: None,
            clerk: None,
            attendance: BTreeMap::new(),
            minutes: LongText::default(),
            action_plan_review: LongText::default(),
            plan_reviews: Vec::new(),
        }
    }
}

/// The text fields of a [`MonthlyMeeting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeetingText {
    Minutes,
    ActionPlanReview,
    PlanReview { id: String },
}

impl TextField for MeetingText {
    type Doc = MonthlyMeeting;

    fn path(&self) -> TextPath {
        TextPath(match self {
            MeetingText::Minutes => vec![Step::Field("minutes")],
            MeetingText::ActionPlanReview => vec![Step::Field("action_plan_review")],
            MeetingText::PlanReview { id } => {
                vec![Step::Field("plan_reviews"), Step::ById(id.clone()), Step::Field("note")]
            }
        })
    }
}
