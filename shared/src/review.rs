//! The committee's and the secretary's review of merged state: pure functions over documents
//! (hydrated structs or raw automerge documents) that the committee pages render.
//!
//! - [`vote`]: the adoption vote's tally under the party's majority rule, opening the vote and
//!   recording the adoption ([`tally`], [`open_vote`], [`adopt`]).
//! - [`matrix`]: one row per member over the steps of the workflow (self-assessment, plan,
//!   signature, this month's progress, vote) ([`member_matrix`]).
//! - [`heatmap`]: the 27 manifestations by degree across the branch's self-assessments
//!   ([`heat_map`]).
//! - [`conflicts`]: every field two devices set differently and concurrently, and settling one
//!   ([`conflicts()`], [`settle`]).
//! - [`history`]: who wrote what, when, from automerge's change metadata ([`history()`]).
//!
//! Like the rest of the crate this module does no IO and reads no clock: times come in as
//! arguments (unix seconds, as every chibo change is committed with).

use automerge::AutomergeError;

use crate::schema::{ResolutionStatus, SchemaError};

pub mod conflicts;
pub mod heatmap;
pub mod history;
pub mod matrix;
pub mod vote;

#[cfg(test)]
mod tests;

pub use conflicts::{Conflict, ConflictValue, PathSegment, ValueKind, conflicts, path_string, settle};
pub use heatmap::{HeatMap, HeatRow, heat_map};
pub use history::{HistoryEntry, history};
pub use matrix::{
    AssessmentStep, MatrixRow, MemberDocs, PlanDoc, PlanStep, ProgressStep, SignatureStep, VoteStep,
    assessment_step, member_matrix,
};
pub use vote::{
    MajorityRule, MemberVote, PARTY_MAJORITY, VoteState, VoteTally, VoteVersion, adopt, open_vote, tally,
};

/// Why a review action could not be carried out (reads never fail for a well-formed document;
/// writes refuse what would record something untrue).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The document is not a readable document of the expected kind.
    #[error(transparent)]
    Schema(Box<SchemaError>),
    /// automerge refused an operation.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
    /// The resolution is not in the status this action starts from.
    #[error("the resolution is {found:?}; this needs it to be {expected:?}")]
    WrongStatus { expected: ResolutionStatus, found: ResolutionStatus },
    /// Adoption refused: not enough members entitled to vote are in favour of the open text.
    #[error("majority not reached: {in_favour} in favour of {eligible} entitled to vote; {required} needed")]
    MajorityNotReached { in_favour: u32, required: u32, eligible: u32 },
    /// A stored list of change hashes (adoption heads) is not well formed.
    #[error("stored heads are not change hashes: {0}")]
    MalformedHeads(String),
    /// The conflict was read from an older state of the document: its values have changed since
    /// (another device wrote the field, or it was settled already). Read the conflicts again.
    #[error("the conflict at {path} has changed since it was read; read the conflicts again")]
    StaleConflict { path: String },
    /// The chosen value index is not one of the conflict's values.
    #[error("value {index} chosen, but the conflict has {len} values")]
    NoSuchValue { index: usize, len: usize },
    /// The edit turned out to change nothing, so no change was committed.
    #[error("nothing to write")]
    NothingWritten,
}

impl From<SchemaError> for ReviewError {
    fn from(e: SchemaError) -> Self {
        ReviewError::Schema(Box::new(e))
    }
}
