//! The personal plan ("2 in 1": the Resolution 4 plan merged with the "follow Uncle Ho's example"
//! plan): one per member per year, with the signed commitment, monthly progress, the committee's
//! review notes and the year-end rankings.

use std::collections::BTreeMap;

use autosurgeon::bytes::ByteVec;
use autosurgeon::{Hydrate, Reconcile};

use super::text::TextPath;
use super::{DocKind, Document, LongText, Step, TextField, string_enum};
use crate::ids::MemberId;

string_enum! {
    pub enum PlanItemKind {
        /// Striving and self-training under Resolution 4 (against the manifestations).
        Resolution4 = "resolution-4",
        /// Học tập và làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh.
        FollowUncleHo = "follow-uncle-ho",
    }
}

string_enum! {
    pub enum ProgressStatus {
        Done = "done",
        InProgress = "in-progress",
        NotDone = "not-done",
    }
}

string_enum! {
    /// The four quality levels (unchanged in name across QĐ 132, 124 and 366).
    pub enum Ranking {
        /// Hoàn thành xuất sắc nhiệm vụ.
        Excellent = "excellent",
        /// Hoàn thành tốt nhiệm vụ.
        Good = "good",
        /// Hoàn thành nhiệm vụ.
        Completed = "completed",
        /// Không hoàn thành nhiệm vụ.
        NotCompleted = "not-completed",
    }
}

/// Progress on one item in one month.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate)]
pub struct MonthProgress {
    pub status: Option<ProgressStatus>,
    pub note: LongText,
}

/// One commitment of the plan.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct PlanItem {
    #[key]
    pub id: String,
    pub kind: PlanItemKind,
    pub content: LongText,
    pub measure: LongText,
    /// `YYYY-MM-DD`, or empty.
    pub deadline: String,
    /// Catalogue item codes this item addresses.
    pub manifestation_codes: Vec<String>,
    /// Ids of resolution tasks this item carries out.
    pub resolution_task_ids: Vec<String>,
    /// By month `01`..`12`, all created with the item (so two devices reporting the same month
    /// type into the same Text).
    pub progress: BTreeMap<String, MonthProgress>,
}

impl PlanItem {
    /// A new item with an empty progress entry for every month.
    pub fn new(id: impl Into<String>, kind: PlanItemKind, content: &str) -> Self {
        PlanItem {
            id: id.into(),
            kind,
            content: LongText::new(content),
            measure: LongText::default(),
            deadline: String::new(),
            manifestation_codes: Vec::new(),
            resolution_task_ids: Vec::new(),
            progress: (1..=12u8).map(|m| (month_key(m), MonthProgress::default())).collect(),
        }
    }

    pub fn progress_in(&self, month: u8) -> Option<&MonthProgress> {
        self.progress.get(&month_key(month))
    }
}

fn month_key(month: u8) -> String {
    format!("{month:02}")
}

/// The member's signature over the plan's heads. Written as one object (a signature and the heads
/// it covers must never mix across devices).
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Commitment {
    /// Ed25519 public key of the signing device (32 bytes).
    pub public_key: ByteVec,
    /// Ed25519 signature (64 bytes) over the signed heads.
    pub signature: ByteVec,
    /// Hex change hashes of the plan heads that were signed.
    pub signed_heads: Vec<String>,
    /// Unix seconds.
    pub signed_at: i64,
}

/// A committee note from a monthly review.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct ReviewNote {
    #[key]
    pub id: String,
    /// 1..=12.
    pub month: u8,
    pub reviewer: MemberId,
    /// Unix seconds.
    pub written_at: i64,
    pub text: LongText,
}

/// Year-end self-ranking and the committee's ranking.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate)]
pub struct YearEnd {
    pub self_ranking: Option<Ranking>,
    pub self_comment: LongText,
    pub committee_ranking: Option<Ranking>,
    pub committee_comment: LongText,
}

/// `branch/<branch>/plan/<member>/<year>`, written by the member (review notes and the committee
/// ranking by the committee).
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct PersonalPlan {
    pub items: Vec<PlanItem>,
    pub commitment: Option<Commitment>,
    pub reviews: Vec<ReviewNote>,
    pub year_end: YearEnd,
}

impl Document for PersonalPlan {
    const KIND: DocKind = DocKind::PersonalPlan;

    fn genesis_value() -> Self {
        PersonalPlan {
            items: Vec::new(),
            commitment: None,
            reviews: Vec::new(),
            year_end: YearEnd::default(),
        }
    }
}

/// The text fields of a [`PersonalPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanText {
    ItemContent { id: String },
    ItemMeasure { id: String },
    Progress { item: String, month: u8 },
    Review { id: String },
    SelfComment,
    CommitteeComment,
}

impl TextField for PlanText {
    type Doc = PersonalPlan;

    fn path(&self) -> TextPath {
        TextPath(match self {
            PlanText::ItemContent { id } => {
                vec![Step::Field("items"), Step::ById(id.clone()), Step::Field("content")]
            }
            PlanText::ItemMeasure { id } => {
                vec![Step::Field("items"), Step::ById(id.clone()), Step::Field("measure")]
            }
            PlanText::Progress { item, month } => vec![
                Step::Field("items"),
                Step::ById(item.clone()),
                Step::Field("progress"),
                Step::Entry(month_key(*month)),
                Step::Field("note"),
            ],
            PlanText::Review { id } => {
                vec![Step::Field("reviews"), Step::ById(id.clone()), Step::Field("text")]
            }
            PlanText::SelfComment => vec![Step::Field("year_end"), Step::Field("self_comment")],
            PlanText::CommitteeComment => vec![Step::Field("year_end"), Step::Field("committee_comment")],
        })
    }
}

#[cfg(test)]
pub(crate) fn items_list() -> Vec<Step> {
    vec![Step::Field("items")]
}
