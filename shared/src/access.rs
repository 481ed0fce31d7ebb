//! Who may read and who may write each kind of document: the relay's policy, kept here so a
//! client can show the same answer (what the user can edit) without asking.
//!
//! The roster itself (members, roles, devices) is server-authoritative relational data; this
//! module only decides from a [`Subject`] the relay built from it.
//!
//! | document                      | read                                        | write                           |
//! |-------------------------------|---------------------------------------------|---------------------------------|
//! | branch profile                | branch, upper-level readers                 | committee                       |
//! | forum (script, minutes)       | branch, upper-level readers                 | committee, the forum's clerk    |
//! | resolution / action plan      | branch, upper-level readers                 | committee                       |
//! | monthly meeting               | branch, upper-level readers                 | committee                       |
//! | ballot                        | branch (votes are open, the tally is live)  | its member                      |
//! | self-assessment               | its member, committee                       | its member                      |
//! | personal plan                 | its member, committee                       | its member, committee (reviews) |
//!
//! "Committee" is the branch committee: secretary, deputy secretary and committee members.
//! Upper-level readers never see per-member documents; the relay admin reads no documents.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::ids::{BranchId, DeviceId, ForumId, MemberId};
use crate::schema::DocPath;

/// A role on the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Đảng viên.
    Member,
    /// Chi ủy viên.
    Committee,
    /// Phó bí thư.
    DeputySecretary,
    /// Bí thư.
    Secretary,
    /// A reader at an upper-level committee (cấp ủy cấp trên): reads the branch documents of the
    /// branches under it, never a member's own documents.
    UpperReader,
    /// Administers units and the first secretaries; reads no documents.
    RelayAdmin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Member,
        Role::Committee,
        Role::DeputySecretary,
        Role::Secretary,
        Role::UpperReader,
        Role::RelayAdmin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Committee => "committee",
            Role::DeputySecretary => "deputy-secretary",
            Role::Secretary => "secretary",
            Role::UpperReader => "upper-reader",
            Role::RelayAdmin => "relay-admin",
        }
    }

    /// Roles held by someone on a branch's roster (the others belong to upper-level units).
    pub const fn is_branch_role(self) -> bool {
        matches!(self, Role::Member | Role::Committee | Role::DeputySecretary | Role::Secretary)
    }

    /// Secretary, deputy secretary or committee member.
    pub const fn is_committee(self) -> bool {
        matches!(self, Role::Committee | Role::DeputySecretary | Role::Secretary)
    }

    /// May manage the branch roster (invite members, change roles, revoke devices).
    pub const fn manages_roster(self) -> bool {
        matches!(self, Role::DeputySecretary | Role::Secretary)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role (member, committee, deputy-secretary, secretary, upper-reader, relay-admin)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// What the policy needs to know about the person behind a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub member: MemberId,
    pub role: Role,
    /// The member's branch (`None` for upper-level readers and the relay admin).
    pub branch: Option<BranchId>,
    /// Forums of the branch this member is the clerk of.
    pub clerk_of: BTreeSet<ForumId>,
    /// Branches an upper-level reader oversees (the units under theirs).
    pub oversees: BTreeSet<BranchId>,
}

impl Subject {
    /// A branch member with a branch role and no clerk duties.
    pub fn in_branch(member: MemberId, role: Role, branch: BranchId) -> Self {
        Subject { member, role, branch: Some(branch), clerk_of: BTreeSet::new(), oversees: BTreeSet::new() }
    }

    fn in_branch_of(&self, path: &DocPath) -> bool {
        self.role.is_branch_role() && self.branch == Some(path.branch())
    }

    fn on_committee_of(&self, path: &DocPath) -> bool {
        self.in_branch_of(path) && self.role.is_committee()
    }

    fn owns(&self, path: &DocPath) -> bool {
        self.in_branch_of(path) && path.member() == Some(self.member)
    }

    fn oversees(&self, path: &DocPath) -> bool {
        self.role == Role::UpperReader && self.oversees.contains(&path.branch())
    }
}

/// The text a device signs with its enrolled key to open a session: the relay's nonce bound to the
/// device. Part of the protocol between the app and the relay: never change it.
pub fn session_payload(device: &DeviceId, nonce: &[u8; 32]) -> Vec<u8> {
    format!("chibo/session/v1\n{device}\n{}", hex::encode(nonce)).into_bytes()
}

/// May `who` read the document at `path`?
pub fn may_read(who: &Subject, path: &DocPath) -> bool {
    match path {
        DocPath::BranchProfile { .. }
        | DocPath::Forum { .. }
        | DocPath::Resolution { .. }
        | DocPath::MonthlyMeeting { .. } => who.in_branch_of(path) || who.oversees(path),
        DocPath::Ballot { .. } => who.in_branch_of(path),
        DocPath::SelfAssessment { .. } | DocPath::PersonalPlan { .. } => {
            who.owns(path) || who.on_committee_of(path)
        }
    }
}

/// May `who` write the document at `path`?
pub fn may_write(who: &Subject, path: &DocPath) -> bool {
    match path {
        DocPath::BranchProfile { .. } | DocPath::Resolution { .. } | DocPath::MonthlyMeeting { .. } => {
            who.on_committee_of(path)
        }
        DocPath::Forum { forum, .. } => {
            who.on_committee_of(path) || (who.in_branch_of(path) && who.clerk_of.contains(forum))
        }
        DocPath::SelfAssessment { .. } | DocPath::Ballot { .. } => who.owns(path),
        DocPath::PersonalPlan { .. } => who.owns(path) || who.on_committee_of(path),
    }
}

#[cfg(test)]
mod tests;
