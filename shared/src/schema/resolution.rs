//! The branch resolution / action plan drafted after the forum, and members' ballots on it.
//!
//! The draft history is the document's own history; adoption records the heads that were voted
//! on. A ballot is a separate per-member document so each member writes only their own.

use autosurgeon::{Hydrate, Reconcile};

use super::text::TextPath;
use super::{DocKind, Document, LongText, Step, TextField, string_enum};

string_enum! {
    pub enum ResolutionStatus {
        Draft = "draft",
        OpenForVote = "open-for-vote",
        Adopted = "adopted",
    }
}

/// The fixed sections of a branch resolution (nghị quyết chi bộ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResolutionSection {
    /// Căn cứ.
    Basis,
    /// I. Đánh giá: results, shortcomings, causes.
    Assessment,
    /// II. Nhiệm vụ, chỉ tiêu, giải pháp.
    TasksAndSolutions,
    /// III. Tổ chức thực hiện.
    Implementation,
}

impl ResolutionSection {
    pub const ALL: [ResolutionSection; 4] = [
        ResolutionSection::Basis,
        ResolutionSection::Assessment,
        ResolutionSection::TasksAndSolutions,
        ResolutionSection::Implementation,
    ];

    fn field(self) -> &'static str {
        match self {
            ResolutionSection::Basis => "basis",
            ResolutionSection::Assessment => "assessment",
            ResolutionSection::TasksAndSolutions => "tasks_and_solutions",
            ResolutionSection::Implementation => "implementation",
        }
    }
}

/// The sections, one Text each.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate)]
pub struct ResolutionSections {
    pub basis: LongText,
    pub assessment: LongText,
    pub tasks_and_solutions: LongText,
    pub implementation: LongText,
}

/// The [`ResolutionTask::owner`] of a task the committee carries as a body ("Chi ủy").
pub const COMMITTEE_OWNER: &str = "chi-uy";

/// A task or solution with who does it, by when, and how it is measured.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct ResolutionTask {
    #[key]
    pub id: String,
    pub content: LongText,
    /// A member id, or [`COMMITTEE_OWNER`] for the committee as a body.
    pub owner: String,
    /// `YYYY-MM-DD`, or empty.
    pub deadline: String,
    pub measure: LongText,
    /// Catalogue item codes the task addresses.
    pub manifestation_codes: Vec<String>,
}

/// The vote count at adoption.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Reconcile, Hydrate)]
pub struct Tally {
    pub in_favour: u32,
    pub against: u32,
    pub abstain: u32,
    /// Members entitled to vote.
    pub eligible: u32,
}

/// The adopted version: written once, as one object, when the vote closes.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Adoption {
    /// Hex change hashes of the heads that were voted on.
    pub heads: Vec<String>,
    /// Unix seconds.
    pub adopted_at: i64,
    pub tally: Tally,
}

/// `branch/<branch>/forum/<forum>/resolution`, written by the committee.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Resolution {
    /// "Số 01-NQ/CB".
    pub number: String,
    pub title: String,
    /// `YYYY-MM-DD`, or empty.
    pub date: String,
    pub status: ResolutionStatus,
    pub sections: ResolutionSections,
    pub tasks: Vec<ResolutionTask>,
    pub adoption: Option<Adoption>,
}

impl Document for Resolution {
    const KIND: DocKind = DocKind::Resolution;

    fn genesis_value() -> Self {
        Resolution {
            number: String::new(),
            title: String::new(),
            date: String::new(),
            status: ResolutionStatus::Draft,
            sections: ResolutionSections::default(),
            tasks: Vec::new(),
            adoption: None,
        }
    }
}

/// The text fields of a [`Resolution`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolutionText {
    Section(ResolutionSection),
    TaskContent { id: String },
    TaskMeasure { id: String },
}

impl TextField for ResolutionText {
    type Doc = Resolution;

    fn path(&self) -> TextPath {
        TextPath(match self {
            ResolutionText::Section(s) => vec![Step::Field("sections"), Step::Field(s.field())],
            ResolutionText::TaskContent { id } => {
                vec![Step::Field("tasks"), Step::ById(id.clone()), Step::Field("content")]
            }
            ResolutionText::TaskMeasure { id } => {
                vec![Step::Field("tasks"), Step::ById(id.clone()), Step::Field("measure")]
            }
        })
    }
}

string_enum! {
    /// Biểu quyết: tán thành / không tán thành / ý kiến khác.
    pub enum Choice {
        For = "for",
        Against = "against",
        Abstain = "abstain",
    }
}

/// A cast vote: written as one object, so a vote cast on two devices offline resolves to one
/// whole vote, never a mix.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Vote {
    pub choice: Choice,
    /// Unix seconds.
    pub cast_at: i64,
    /// Hex change hashes of the resolution heads the member voted on.
    pub resolution_heads: Vec<String>,
}

/// `branch/<branch>/forum/<forum>/ballot/<member>`, written by the member.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Ballot {
    pub vote: Option<Vote>,
}

impl Document for Ballot {
    const KIND: DocKind = DocKind::Ballot;

    fn genesis_value() -> Self {
        Ballot { vote: None }
    }
}

/// Path of the resolution's task list, for deterministic inserts (demo).
pub(crate) fn tasks_list() -> Vec<Step> {
    vec![Step::Field("tasks")]
}

/// Casts (or changes) the member's vote in their ballot as one whole object: the old vote is
/// replaced by a null first, so two devices voting offline resolve to one of the two votes,
/// never a mix of their fields.
pub fn cast_vote(
    am: &mut automerge::Automerge,
    vote: Vote,
    time: i64,
) -> Result<Option<automerge::ChangeHash>, super::SchemaError> {
    let mut tx = am.transaction();
    let result = (|| {
        let ballot: Ballot = super::hydrate(&tx)?;
        if ballot.vote.is_some() {
            super::update_in(&mut tx, |b: &mut Ballot| b.vote = None)?;
        }
        super::update_in(&mut tx, |b: &mut Ballot| b.vote = Some(vote))
    })();
    match result {
        Ok(()) => Ok(tx.commit_with(automerge::transaction::CommitOptions::default().with_time(time)).0),
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}
