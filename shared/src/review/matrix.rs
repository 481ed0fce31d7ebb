//! The member × step matrix: for each member, where they are in the workflow (self-assessment,
//! personal plan, signed commitment, this month's progress, vote), from the documents this device
//! holds. A document that is not here (not synced yet) is `Missing`, never "not started".

use automerge::Automerge;

use super::vote::{VoteState, VoteTally};
use crate::catalogue::ITEM_CODES;
use crate::commitment::{CommitmentStatus, verify};
use crate::ids::{DocumentId, MemberId};
use crate::schema::{PersonalPlan, SelfAssessment, hydrate};

/// A member's personal plan document and its id (the id is part of what the commitment signs).
#[derive(Clone, Copy)]
pub struct PlanDoc<'a> {
    /// The plan's document id.
    pub id: DocumentId,
    /// The plan document.
    pub doc: &'a Automerge,
}

/// What this device holds of one member's documents.
#[derive(Clone, Copy)]
pub struct MemberDocs<'a> {
    /// The member.
    pub member: MemberId,
    /// Their self-assessment for this forum, hydrated, if it is here.
    pub assessment: Option<&'a SelfAssessment>,
    /// Their personal plan for this year, if it is here.
    pub plan: Option<PlanDoc<'a>>,
}

/// The self-assessment step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssessmentStep {
    /// The document is not on this device.
    Missing,
    /// No item answered, not submitted.
    NotStarted,
    /// `answered` of `total` items answered (whether it applies), not submitted yet.
    InProgress { answered: u32, total: u32 },
    /// Submitted (marked done) at `submitted_at`, with `answered` of `total` items answered.
    Done { answered: u32, total: u32, submitted_at: i64 },
}

/// The personal plan step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStep {
    /// The document is not on this device.
    Missing,
    /// The document is here but not a readable personal plan.
    Unreadable,
    /// The plan holds `items` items (0: not started).
    Items { items: u32 },
}

/// The signed commitment step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStep {
    /// The plan is not on this device.
    Missing,
    /// The plan is here but not a readable personal plan.
    Unreadable,
    /// What [`verify`] found (unsigned, valid, changed since signing, ...).
    Checked(CommitmentStatus),
}

/// This month's progress step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStep {
    /// The plan is not on this device.
    Missing,
    /// The plan is here but not a readable personal plan.
    Unreadable,
    /// `reported` of the plan's `items` items have a progress status for the month.
    Reported { reported: u32, items: u32 },
}

/// The vote step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteStep {
    /// No vote to show (no resolution tallied).
    NoVote,
    /// The member is not entitled to vote.
    NotEligible,
    /// Their vote as the tally sees it (no ballot here, not voted, or the choice and whether it
    /// was on the open text).
    Vote(VoteState),
}

/// One member's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixRow {
    /// The member.
    pub member: MemberId,
    /// Self-assessment.
    pub assessment: AssessmentStep,
    /// Personal plan.
    pub plan: PlanStep,
    /// Signed commitment.
    pub signature: SignatureStep,
    /// Progress in the month asked for.
    pub progress: ProgressStep,
    /// Vote on the resolution.
    pub vote: VoteStep,
}

/// One row per member, in the order given.
///
/// `month` (1..=12) is the month of the plan's year whose progress is shown; `votes` is the tally
/// of the forum's resolution ([`super::tally`]), if any; `known_key(member, key)` answers whether
/// `key` is the public key of one of `member`'s devices in the roster (for [`verify`]).
pub fn member_matrix(
    members: &[MemberDocs<'_>],
    month: u8,
    votes: Option<&VoteTally>,
    known_key: impl Fn(&MemberId, &[u8; 32]) -> bool,
) -> Vec<MatrixRow> {
    members
        .iter()
        .map(|docs| {
            let (plan, signature, progress) = match docs.plan {
                None => (PlanStep::Missing, SignatureStep::Missing, ProgressStep::Missing),
                Some(plan_doc) => plan_steps(docs.member, plan_doc, month, &known_key),
            };
            MatrixRow {
                member: docs.member,
                assessment: assessment_step(docs.assessment),
                plan,
                signature,
                progress,
                vote: match votes {
                    None => VoteStep::NoVote,
                    Some(t) => t
                        .member(&docs.member)
                        .map_or(VoteStep::NotEligible, |m| VoteStep::Vote(m.state.clone())),
                },
            }
        })
        .collect()
}

/// The self-assessment step of one (hydrated) self-assessment.
pub fn assessment_step(assessment: Option<&SelfAssessment>) -> AssessmentStep {
    let Some(a) = assessment else { return AssessmentStep::Missing };
    let total = ITEM_CODES.len() as u32;
    let answered =
        ITEM_CODES.iter().filter(|code| a.items.get(**code).is_some_and(|i| i.applies.is_some())).count()
            as u32;
    match a.submitted_at {
        Some(submitted_at) => AssessmentStep::Done { answered, total, submitted_at },
        None if answered == 0 => AssessmentStep::NotStarted,
        None => AssessmentStep::InProgress { answered, total },
    }
}

fn plan_steps(
    member: MemberId,
    plan_doc: PlanDoc<'_>,
    month: u8,
    known_key: &impl Fn(&MemberId, &[u8; 32]) -> bool,
) -> (PlanStep, SignatureStep, ProgressStep) {
    let Ok(plan) = hydrate::<PersonalPlan>(plan_doc.doc) else {
        return (PlanStep::Unreadable, SignatureStep::Unreadable, ProgressStep::Unreadable);
    };
    let items = plan.items.len() as u32;
    let reported =
        plan.items.iter().filter(|item| item.progress_in(month).is_some_and(|p| p.status.is_some())).count()
            as u32;
    let signature = match verify(plan_doc.doc, &plan_doc.id, &member, |key| known_key(&member, key)) {
        Ok(status) => SignatureStep::Checked(status),
        Err(_) => SignatureStep::Unreadable,
    };
    (PlanStep::Items { items }, signature, ProgressStep::Reported { reported, items })
}
