//! The self-assessment (tự liên hệ): one per member per forum, against one catalogue version.
//!
//! Genesis creates the entry of every item code (`A1`..`C9`) and every group (`A`, `B`, `C`) with
//! its Text fields: every catalogue has exactly these codes, and a member filling the same item on
//! a phone and a laptop offline must type into the same objects.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};

use super::text::TextPath;
use super::{DocKind, Document, LongText, Step, TextField};
use crate::catalogue::{Catalogue, GROUP_CODES, ITEM_CODES};

/// The member's relation to one manifestation.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate)]
pub struct ItemAssessment {
    /// `None` until answered.
    pub applies: Option<bool>,
    /// A degree code of the catalogue's scale (e.g. `mild`), when it applies.
    pub degree: Option<String>,
    pub note: LongText,
    /// Nguyên nhân.
    pub cause: LongText,
    /// Giải pháp khắc phục.
    pub remedy: LongText,
}

/// The member's view of the branch as a whole for one group: does the branch show these?
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate)]
pub struct GroupView {
    pub present_in_branch: Option<bool>,
    pub view: LongText,
}

/// A solution the member proposes.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Solution {
    #[key]
    pub id: String,
    pub text: LongText,
}

/// `branch/<branch>/forum/<forum>/self-assessment/<member>`, written by the member.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct SelfAssessment {
    /// The catalogue this assessment answers (set on first edit; empty in genesis).
    pub catalogue_id: String,
    pub catalogue_version: String,
    /// By item code, `A1`..`C9` (all present from genesis).
    pub items: BTreeMap<String, ItemAssessment>,
    /// By group code, `A`..`C` (all present from genesis).
    pub groups: BTreeMap<String, GroupView>,
    pub solutions: Vec<Solution>,
    /// When the member marked it done (unix seconds).
    pub submitted_at: Option<i64>,
}

impl SelfAssessment {
    /// Records the catalogue this assessment is made against.
    pub fn set_catalogue(&mut self, catalogue: &Catalogue) {
        catalogue.id().clone_into(&mut self.catalogue_id);
        catalogue.version().clone_into(&mut self.catalogue_version);
    }
}

impl Document for SelfAssessment {
    const KIND: DocKind = DocKind::SelfAssessment;

    fn genesis_value() -> Self {
        SelfAssessment {
            catalogue_id: String::new(),
            catalogue_version: String::new(),
            items: ITEM_CODES.iter().map(|c| ((*c).to_owned(), ItemAssessment::default())).collect(),
            groups: GROUP_CODES.iter().map(|g| ((*g).to_owned(), GroupView::default())).collect(),
            solutions: Vec::new(),
            submitted_at: None,
        }
    }
}

/// The text parts of an item assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemPart {
    Note,
    Cause,
    Remedy,
}

/// The text fields of a [`SelfAssessment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssessmentText {
    Item { code: String, part: ItemPart },
    Group { group: String },
    Solution { id: String },
}

impl TextField for AssessmentText {
    type Doc = SelfAssessment;

    fn path(&self) -> TextPath {
        TextPath(match self {
            AssessmentText::Item { code, part } => vec![
                Step::Field("items"),
                Step::Entry(code.clone()),
                Step::Field(match part {
                    ItemPart::Note => "note",
                    ItemPart::Cause => "cause",
                    ItemPart::Remedy => "remedy",
                }),
            ],
            AssessmentText::Group { group } => {
                vec![Step::Field("groups"), Step::Entry(group.clone()), Step::Field("view")]
            }
            AssessmentText::Solution { id } => {
                vec![Step::Field("solutions"), Step::ById(id.clone()), Step::Field("text")]
            }
        })
    }
}
