//! Canonical document paths. A document that is "one per something" has its id derived from its
//! path (see [`DocumentId::from_canonical_path`]), so two offline devices creating "the same"
//! document create the same id. The path strings are part of the storage format: never change one.

use std::fmt;
use std::str::FromStr;

use crate::ids::{BranchId, DocumentId, ForumId, MemberId};

use super::DocKind;

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YearMonth {
    year: u16,
    month: u8,
}

impl YearMonth {
    /// `None` unless `year` has four digits and `month` is 1..=12.
    pub const fn new(year: u16, month: u8) -> Option<Self> {
        if year >= 1000 && year <= 9999 && month >= 1 && month <= 12 {
            Some(Self { year, month })
        } else {
            None
        }
    }

    pub const fn year(self) -> u16 {
        self.year
    }

    pub const fn month(self) -> u8 {
        self.month
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for YearMonth {
    type Err = DocPathError;
    fn from_str(s: &str) -> Result<Self, DocPathError> {
        let bad = || DocPathError::Segment { segment: s.to_owned(), expected: "a month YYYY-MM" };
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        YearMonth::new(parse_digits(y).ok_or_else(bad)?, parse_digits(m).ok_or_else(bad)?).ok_or_else(bad)
    }
}

/// Why a string is not a document path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocPathError {
    #[error("`{0}` is not a chibo document path")]
    Shape(String),
    #[error("`{segment}` is not {expected}")]
    Segment { segment: String, expected: &'static str },
}

/// Where a document lives: its kind and what it is "one per".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocPath {
    /// `branch/<branch>/profile`
    BranchProfile { branch: BranchId },
    /// `branch/<branch>/forum/<forum>`
    Forum { branch: BranchId, forum: ForumId },
    /// `branch/<branch>/forum/<forum>/self-assessment/<member>`
    SelfAssessment { branch: BranchId, forum: ForumId, member: MemberId },
    /// `branch/<branch>/forum/<forum>/resolution`
    Resolution { branch: BranchId, forum: ForumId },
    /// `branch/<branch>/forum/<forum>/ballot/<member>`
    Ballot { branch: BranchId, forum: ForumId, member: MemberId },
    /// `branch/<branch>/plan/<member>/<yyyy>`
    PersonalPlan { branch: BranchId, member: MemberId, year: u16 },
    /// `branch/<branch>/meeting/<yyyy-mm>`
    MonthlyMeeting { branch: BranchId, month: YearMonth },
}

impl DocPath {
    pub fn kind(&self) -> DocKind {
        match self {
            DocPath::BranchProfile { .. } => DocKind::BranchProfile,
            DocPath::Forum { .. } => DocKind::Forum,
            DocPath::SelfAssessment { .. } => DocKind::SelfAssessment,
            DocPath::Resolution { .. } => DocKind::Resolution,
            DocPath::Ballot { .. } => DocKind::Ballot,
            DocPath::PersonalPlan { .. } => DocKind::PersonalPlan,
            DocPath::MonthlyMeeting { .. } => DocKind::MonthlyMeeting,
        }
    }

    pub fn branch(&self) -> BranchId {
        match *self {
            DocPath::BranchProfile { branch }
            | DocPath::Forum { branch, .. }
            | DocPath::SelfAssessment { branch, .. }
            | DocPath::Resolution { branch, .. }
            | DocPath::Ballot { branch, .. }
            | DocPath::PersonalPlan { branch, .. }
            | DocPath::MonthlyMeeting { branch, .. } => branch,
        }
    }

    /// The member a per-member document belongs to (self-assessment, ballot, personal plan).
    pub fn member(&self) -> Option<MemberId> {
        match *self {
            DocPath::SelfAssessment { member, .. }
            | DocPath::Ballot { member, .. }
            | DocPath::PersonalPlan { member, .. } => Some(member),
            _ => None,
        }
    }

    pub fn to_canonical_string(&self) -> String {
        match self {
            DocPath::BranchProfile { branch } => format!("branch/{branch}/profile"),
            DocPath::Forum { branch, forum } => format!("branch/{branch}/forum/{forum}"),
            DocPath::SelfAssessment { branch, forum, member } => {
                format!("branch/{branch}/forum/{forum}/self-assessment/{member}")
            }
            DocPath::Resolution { branch, forum } => format!("branch/{branch}/forum/{forum}/resolution"),
            DocPath::Ballot { branch, forum, member } => {
                format!("branch/{branch}/forum/{forum}/ballot/{member}")
            }
            DocPath::PersonalPlan { branch, member, year } => {
                format!("branch/{branch}/plan/{member}/{year:04}")
            }
            DocPath::MonthlyMeeting { branch, month } => format!("branch/{branch}/meeting/{month}"),
        }
    }

    /// The deterministic automerge-repo document id of this path.
    pub fn document_id(&self) -> DocumentId {
        DocumentId::from_canonical_path(&self.to_canonical_string())
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical_string())
    }
}

impl FromStr for DocPath {
    type Err = DocPathError;

    fn from_str(s: &str) -> Result<Self, DocPathError> {
        let segments: Vec<&str> = s.split('/').collect();
        let shape = || DocPathError::Shape(s.to_owned());
        let path = match segments.as_slice() {
            ["branch", b, "profile"] => DocPath::BranchProfile { branch: id(b, "a branch id")? },
            ["branch", b, "forum", f] => {
                DocPath::Forum { branch: id(b, "a branch id")?, forum: id(f, "a forum id")? }
            }
            ["branch", b, "forum", f, "self-assessment", m] => DocPath::SelfAssessment {
                branch: id(b, "a branch id")?,
                forum: id(f, "a forum id")?,
                member: id(m, "a member id")?,
            },
            ["branch", b, "forum", f, "resolution"] => {
                DocPath::Resolution { branch: id(b, "a branch id")?, forum: id(f, "a forum id")? }
            }
            ["branch", b, "forum", f, "ballot", m] => DocPath::Ballot {
                branch: id(b, "a branch id")?,
                forum: id(f, "a forum id")?,
                member: id(m, "a member id")?,
            },
            ["branch", b, "plan", m, y] => DocPath::PersonalPlan {
                branch: id(b, "a branch id")?,
                member: id(m, "a member id")?,
                year: year(y)?,
            },
            ["branch", b, "meeting", ym] => {
                DocPath::MonthlyMeeting { branch: id(b, "a branch id")?, month: ym.parse()? }
            }
            _ => return Err(shape()),
        };
        // Only the canonical spelling parses, so string and path are one-to-one (ids hash the string).
        if path.to_canonical_string() != s {
            return Err(shape());
        }
        Ok(path)
    }
}

fn id<T: FromStr>(segment: &str, expected: &'static str) -> Result<T, DocPathError> {
    segment.parse().map_err(|_| DocPathError::Segment { segment: segment.to_owned(), expected })
}

fn year(segment: &str) -> Result<u16, DocPathError> {
    let bad = || DocPathError::Segment { segment: segment.to_owned(), expected: "a year YYYY" };
    match parse_digits(segment) {
        Some(y) if segment.len() == 4 && y >= 1000 => Ok(y),
        _ => Err(bad()),
    }
}

/// ASCII digits only (`u16::from_str` would also take a leading `+`).
fn parse_digits<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_paths() -> Vec<DocPath> {
        let branch = BranchId::from_bytes([1; 16]);
        let forum = ForumId::from_bytes([2; 16]);
        let member = MemberId::from_bytes([3; 16]);
        let month = YearMonth::new(2026, 3).expect("valid month");
        vec![
            DocPath::BranchProfile { branch },
            DocPath::Forum { branch, forum },
            DocPath::SelfAssessment { branch, forum, member },
            DocPath::Resolution { branch, forum },
            DocPath::Ballot { branch, forum, member },
            DocPath::PersonalPlan { branch, member, year: 2026 },
            DocPath::MonthlyMeeting { branch, month },
        ]
    }

    #[test]
    fn doc_path_string_round_trip() {
        let paths = all_paths();
        for path in &paths {
            let s = path.to_canonical_string();
            assert_eq!(s.parse::<DocPath>().as_ref(), Ok(path), "{s}");
            assert_eq!(path.document_id(), DocumentId::from_canonical_path(&s));
        }
        let kinds: Vec<DocKind> = paths.iter().map(DocPath::kind).collect();
        assert_eq!(kinds, DocKind::ALL);
        let ids: std::collections::BTreeSet<_> = paths.iter().map(DocPath::document_id).collect();
        assert_eq!(ids.len(), paths.len());
    }

    #[test]
    fn doc_path_examples_are_readable() {
        let paths = all_paths();
        let b = BranchId::from_bytes([1; 16]);
        assert_eq!(paths[0].to_string(), format!("branch/{b}/profile"));
        assert!(paths[5].to_string().ends_with("/2026"));
        assert!(paths[6].to_string().ends_with("/meeting/2026-03"));
    }

    #[test]
    fn malformed_doc_paths_are_refused() {
        let good = all_paths()[5].to_string();
        let b = BranchId::from_bytes([1; 16]);
        for bad in [
            String::new(),
            "branch".to_owned(),
            format!("branch/{b}/profile/"),
            format!("/branch/{b}/profile"),
            format!("branch/{b}/unknown"),
            "branch/not-an-id/profile".to_owned(),
            good.replace("/2026", "/26"),
            good.replace("/2026", "/+202"),
            format!("branch/{b}/meeting/2026-13"),
            format!("branch/{b}/meeting/2026-3"),
        ] {
            assert!(bad.parse::<DocPath>().is_err(), "{bad:?} parsed");
        }
    }
}
