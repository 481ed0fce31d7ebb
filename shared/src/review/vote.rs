//! The adoption vote on the branch resolution (biểu quyết): the tally, opening the vote, and
//! recording the adoption.
//!
//! # What is counted
//! The vote is on the resolution's **open text**: the document at its current heads while the
//! vote is open (or a draft), and at the recorded `Adoption::heads` once adopted. Each member's
//! [`Ballot`] records the resolution heads the member saw when voting. A vote counts for the open
//! text when the member voted on exactly those heads, or on heads at which the text (number,
//! title, date, sections, tasks; not the status or the adoption record) is the same as the open
//! text. A vote cast on another text (an older draft, edited since) is reported as
//! [`VoteVersion::OtherText`] and **not counted**: the member is asked to vote again, which
//! replaces their vote. A vote cast on heads this copy of the resolution does not hold yet is
//! [`VoteVersion::NotHeldHere`] and not counted either, until those changes arrive.
//!
//! # The majority rule
//! The branch adopts its resolution by vote of all its members (guidance 36-HD/BTGTU, step 4.1:
//! "Thông qua toàn thể đảng viên chi bộ bản dự thảo Nghị quyết … và biểu quyết thống nhất thực
//! hiện"; see `shared/domain/WORKFLOW.md`). A decision needs **more than half of the members
//! entitled to vote** in favour (Điều lệ Đảng, the principle of democratic centralism, as recorded
//! in `shared/domain/RESEARCH.md`, "Product rules": "A decision needs more than half of the
//! members to agree"). The rule is the value [`PARTY_MAJORITY`]; who is entitled to vote is the
//! caller's list (the roster; full members only per the same notes, which say this is unverified).
//! Abstentions and members who did not vote therefore count against adoption.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::CommitOptions;
use automerge::{Automerge, AutomergeError, ChangeHash};

use super::ReviewError;
use crate::ids::MemberId;
use crate::schema::{Adoption, Ballot, Choice, Resolution, ResolutionStatus, Tally, hydrate, update_in};

/// A majority rule: adopted when the votes in favour are **strictly more** than
/// `numerator / denominator` of the members entitled to vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MajorityRule {
    /// The fraction's numerator.
    pub numerator: u32,
    /// The fraction's denominator (not zero).
    pub denominator: u32,
}

/// The party's rule: more than half of the members entitled to vote are in favour (Điều lệ Đảng;
/// see the [module documentation](self)).
pub const PARTY_MAJORITY: MajorityRule = MajorityRule { numerator: 1, denominator: 2 };

impl MajorityRule {
    /// The fewest votes in favour that adopt, with `eligible` members entitled to vote: the
    /// smallest `n` with `n / eligible > numerator / denominator`. With nobody entitled to vote
    /// this is 1, so nothing is adopted by an empty roll.
    pub const fn required(&self, eligible: u32) -> u32 {
        let denominator = if self.denominator == 0 { 1 } else { self.denominator as u64 };
        // n * den > eligible * num  <=>  n >= floor(eligible * num / den) + 1
        let n = (eligible as u64 * self.numerator as u64) / denominator + 1;
        if n > u32::MAX as u64 { u32::MAX } else { n as u32 }
    }
}

/// Which text a cast vote was on, compared with the open text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteVersion {
    /// On the open text (the same heads, or heads with the same text). Counted.
    OpenText,
    /// On another text: the resolution was edited between the vote and the open heads (usually a
    /// vote on an older draft). Not counted; the page flags it.
    OtherText,
    /// On heads this copy of the resolution does not hold (not synced here yet), or heads that are
    /// not change hashes. Not counted until they arrive.
    NotHeldHere,
}

/// One member's vote as the tally sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteState {
    /// The member's ballot document is not on this device (not synced yet).
    NoBallot,
    /// The ballot holds no vote.
    NotVoted,
    /// A cast vote.
    Voted {
        /// For, against, abstain.
        choice: Choice,
        /// When the member cast it (unix seconds, the member's device clock).
        cast_at: i64,
        /// Whether it was cast on the open text.
        version: VoteVersion,
    },
}

/// One member entitled to vote and their vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberVote {
    /// The member.
    pub member: MemberId,
    /// Their vote.
    pub state: VoteState,
}

impl MemberVote {
    /// The choice counted in the tally: only a vote on the open text counts.
    pub fn counted(&self) -> Option<Choice> {
        match self.state {
            VoteState::Voted { choice, version: VoteVersion::OpenText, .. } => Some(choice),
            _ => None,
        }
    }

    /// Whether the member voted, but not on the open text (the page flags these).
    pub fn on_other_version(&self) -> bool {
        matches!(self.state, VoteState::Voted { version, .. } if version != VoteVersion::OpenText)
    }
}

/// The vote count on the open text and whether it adopts the resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteTally {
    /// The rule applied.
    pub rule: MajorityRule,
    /// The resolution's status when tallied.
    pub status: ResolutionStatus,
    /// The heads of the open text (sorted): the current heads, or the recorded adoption heads.
    pub open_heads: Vec<ChangeHash>,
    /// Members entitled to vote (each counted once).
    pub eligible: u32,
    /// Counted votes in favour (tán thành).
    pub in_favour: u32,
    /// Counted votes against (không tán thành).
    pub against: u32,
    /// Counted abstentions (ý kiến khác).
    pub abstain: u32,
    /// Members with no vote (no ballot here, or an empty ballot).
    pub not_voted: u32,
    /// Members whose vote is on another text or on heads not held here (not counted).
    pub on_other_version: u32,
    /// Votes in favour needed to adopt ([`MajorityRule::required`]).
    pub required: u32,
    /// Whether the counted votes in favour reach the majority.
    pub adopted: bool,
    /// Every member entitled to vote, in the order given (duplicates dropped).
    pub members: Vec<MemberVote>,
}

impl VoteTally {
    /// The tally as stored in the adoption record.
    pub fn to_schema(&self) -> Tally {
        Tally {
            in_favour: self.in_favour,
            against: self.against,
            abstain: self.abstain,
            eligible: self.eligible,
        }
    }

    /// The vote of `member`, if they are entitled to vote.
    pub fn member(&self, member: &MemberId) -> Option<&MemberVote> {
        self.members.iter().find(|m| &m.member == member)
    }

    /// The members who voted, but not on the open text.
    pub fn on_other_versions(&self) -> impl Iterator<Item = &MemberVote> {
        self.members.iter().filter(|m| m.on_other_version())
    }
}

/// Counts the vote on the resolution `resolution` (see the [module documentation](self)).
///
/// `eligible` are the members entitled to vote (from the roster); `ballot_of` gives each one's
/// hydrated ballot, or `None` if it is not on this device. Ballots of members not in `eligible`
/// are never asked for. Errors only if `resolution` is not a readable resolution (or its
/// adoption record holds malformed heads).
pub fn tally<'a>(
    resolution: &Automerge,
    eligible: &[MemberId],
    ballot_of: impl Fn(&MemberId) -> Option<&'a Ballot>,
    rule: MajorityRule,
) -> Result<VoteTally, ReviewError> {
    let current: Resolution = hydrate(resolution)?;
    let open_heads = match (&current.status, &current.adoption) {
        (ResolutionStatus::Adopted, Some(adoption)) => parse_heads(&adoption.heads)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ReviewError::MalformedHeads(adoption.heads.join(",")))?,
        _ => resolution.get_heads(),
    };
    let status = current.status;
    let open_text = if open_heads == resolution.get_heads() {
        text_of(current)
    } else {
        text_of(hydrate(&resolution.fork_at(&open_heads)?)?)
    };
    let mut versions: BTreeMap<Vec<ChangeHash>, VoteVersion> = BTreeMap::new();
    versions.insert(open_heads.clone(), VoteVersion::OpenText);
    let mut version_of = |heads: &[String]| -> Result<VoteVersion, ReviewError> {
        let Some(heads) = parse_heads(heads).filter(|h| !h.is_empty()) else {
            return Ok(VoteVersion::NotHeldHere);
        };
        if let Some(known) = versions.get(&heads) {
            return Ok(*known);
        }
        let version = match resolution.fork_at(&heads) {
            Ok(then) => {
                if text_of(hydrate(&then)?) == open_text {
                    VoteVersion::OpenText
                } else {
                    VoteVersion::OtherText
                }
            }
            Err(AutomergeError::InvalidHash(_)) => VoteVersion::NotHeldHere,
            Err(e) => return Err(e.into()),
        };
        versions.insert(heads, version);
        Ok(version)
    };

    let mut seen = BTreeSet::new();
    let mut members = Vec::new();
    for member in eligible {
        if !seen.insert(*member) {
            continue;
        }
        let state = match ballot_of(member) {
            None => VoteState::NoBallot,
            Some(Ballot { vote: None }) => VoteState::NotVoted,
            Some(Ballot { vote: Some(vote) }) => VoteState::Voted {
                choice: vote.choice,
                cast_at: vote.cast_at,
                version: version_of(&vote.resolution_heads)?,
            },
        };
        members.push(MemberVote { member: *member, state });
    }

    let count = |c: Choice| members.iter().filter(|m| m.counted() == Some(c)).count() as u32;
    let (in_favour, against, abstain) = (count(Choice::For), count(Choice::Against), count(Choice::Abstain));
    let not_voted =
        members.iter().filter(|m| matches!(m.state, VoteState::NoBallot | VoteState::NotVoted)).count()
            as u32;
    let on_other_version = members.iter().filter(|m| m.on_other_version()).count() as u32;
    let eligible = members.len() as u32;
    let required = rule.required(eligible);
    Ok(VoteTally {
        rule,
        status,
        open_heads,
        eligible,
        in_favour,
        against,
        abstain,
        not_voted,
        on_other_version,
        required,
        adopted: in_favour >= required,
        members,
    })
}

/// Opens the vote: moves the resolution from `Draft` to `OpenForVote` in one change committed at
/// `time` (unix seconds) by the document's actor. Returns the change's hash.
///
/// Refused ([`ReviewError::WrongStatus`]) unless the resolution is a draft.
pub fn open_vote(resolution: &mut Automerge, time: i64) -> Result<ChangeHash, ReviewError> {
    let status = hydrate::<Resolution>(resolution)?.status;
    if status != ResolutionStatus::Draft {
        return Err(ReviewError::WrongStatus { expected: ResolutionStatus::Draft, found: status });
    }
    let mut tx = resolution.transaction();
    if let Err(e) = update_in(&mut tx, |r: &mut Resolution| r.status = ResolutionStatus::OpenForVote) {
        tx.rollback();
        return Err(e.into());
    }
    tx.commit_with(CommitOptions::default().with_time(time)).0.ok_or(ReviewError::NothingWritten)
}

/// Records the adoption: counts the vote ([`tally`], same arguments) and, if the majority is
/// reached, writes status `Adopted` and the [`Adoption`] (the open heads, `adopted_at = time`,
/// the tally) as **one new object** in one change committed at `time` by the document's actor.
/// Returns the change's hash and the tally written.
///
/// Refused, writing nothing: unless the vote is open ([`ReviewError::WrongStatus`]), and when
/// the counted votes in favour do not reach the majority ([`ReviewError::MajorityNotReached`]).
pub fn adopt<'a>(
    resolution: &mut Automerge,
    eligible: &[MemberId],
    ballot_of: impl Fn(&MemberId) -> Option<&'a Ballot>,
    rule: MajorityRule,
    time: i64,
) -> Result<(ChangeHash, VoteTally), ReviewError> {
    let counted = tally(resolution, eligible, ballot_of, rule)?;
    if counted.status != ResolutionStatus::OpenForVote {
        return Err(ReviewError::WrongStatus {
            expected: ResolutionStatus::OpenForVote,
            found: counted.status,
        });
    }
    if !counted.adopted {
        return Err(ReviewError::MajorityNotReached {
            in_favour: counted.in_favour,
            required: counted.required,
            eligible: counted.eligible,
        });
    }
    let adoption = Adoption {
        heads: counted.open_heads.iter().map(ChangeHash::to_string).collect(),
        adopted_at: time,
        tally: counted.to_schema(),
    };
    let mut tx = resolution.transaction();
    let written = (|| {
        // A null first, so a concurrent adoption on another device resolves to one whole record
        // rather than a mix of fields (reconciling `Some` onto a map updates it in place).
        update_in(&mut tx, |r: &mut Resolution| r.adoption = None)?;
        update_in(&mut tx, |r: &mut Resolution| {
            r.status = ResolutionStatus::Adopted;
            r.adoption = Some(adoption);
        })
    })();
    if let Err(e) = written {
        tx.rollback();
        return Err(e.into());
    }
    let hash =
        tx.commit_with(CommitOptions::default().with_time(time)).0.ok_or(ReviewError::NothingWritten)?;
    Ok((hash, counted))
}

/// The part of a resolution that is voted on: everything but the status and the adoption record.
fn text_of(mut resolution: Resolution) -> Resolution {
    resolution.status = ResolutionStatus::Draft;
    resolution.adoption = None;
    resolution
}

/// Sorted, deduplicated change hashes, or `None` if one is not a change hash.
fn parse_heads(heads: &[String]) -> Option<Vec<ChangeHash>> {
    let mut parsed = heads.iter().map(|h| h.parse::<ChangeHash>().ok()).collect::<Option<Vec<_>>>()?;
    parsed.sort();
    parsed.dedup();
    Some(parsed)
}
