//! The schema of every document kind, as plain Rust structs mapped to automerge by autosurgeon.
//!
//! Each kind (see [`DocKind`]) is a root struct implementing [`Document`]; its automerge field
//! names are its Rust field names, and **no automerge field name appears outside this module**
//! (text fields are addressed through typed [`TextField`] paths). Every document starts from its
//! kind's deterministic [genesis](genesis()) change, which creates all root objects, so two devices
//! that create "the same" document offline share those objects and nothing typed on either is
//! hidden after a merge. Read with [`hydrate`], edit scalars and lists with [`update`], and edit
//! long text with [`splice_text`] (never by replacing it). No IO, no clock: commit times are
//! arguments.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ChangeHash, ObjType, ScalarValue, Value};
use autosurgeon::{Hydrate, HydrateError, Reconcile, ReconcileError};

use crate::ids::{BranchId, ForumId, MemberId};

mod assessment;
mod branch;
pub mod demo;
mod forum;
mod genesis;
mod meeting;
mod path;
mod plan;
mod resolution;
mod text;

#[cfg(test)]
mod tests;

pub use assessment::{AssessmentText, GroupView, ItemAssessment, ItemPart, SelfAssessment, Solution};
pub use branch::{BranchKind, BranchProfile};
pub use forum::{
    Attendance, AttendanceStatus, Forum, ForumScript, ForumText, Guest, Proposal, RaisedManifestation,
    ScriptSection, Session,
};
pub use genesis::{
    genesis, genesis_actor, genesis_change_bytes, genesis_change_hash, genesis_kind, new_document,
};
pub use meeting::{MeetingText, MonthlyMeeting, PlanReview};
pub use path::{DocPath, DocPathError, YearMonth};
pub use plan::{
    Commitment, MonthProgress, PersonalPlan, PlanItem, PlanItemKind, PlanText, ProgressStatus, Ranking,
    ReviewNote, YearEnd,
};
pub use resolution::{
    Adoption, Ballot, COMMITTEE_OWNER, Choice, Resolution, ResolutionSection, ResolutionSections,
    ResolutionStatus, ResolutionTask, ResolutionText, Tally, Vote, cast_vote,
};
pub use text::{LongText, TextField, TextPath, read_text, splice_text, splice_text_in};

/// The schema version genesis writes. A document with a higher version is refused by [`hydrate`].
pub const SCHEMA_VERSION: u64 = 1;

/// Root keys every document has besides its struct fields (written by genesis, never by `update`).
const KIND_KEY: &str = "kind";
const SCHEMA_VERSION_KEY: &str = "schema_version";
/// The field that identifies an item of a keyed list (`#[key] id`).
pub(crate) const ITEM_ID_KEY: &str = "id";

/// The document kinds (one root struct each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKind {
    BranchProfile,
    Forum,
    SelfAssessment,
    Resolution,
    Ballot,
    PersonalPlan,
    MonthlyMeeting,
}

impl DocKind {
    pub const ALL: [DocKind; 7] = [
        DocKind::BranchProfile,
        DocKind::Forum,
        DocKind::SelfAssessment,
        DocKind::Resolution,
        DocKind::Ballot,
        DocKind::PersonalPlan,
        DocKind::MonthlyMeeting,
    ];

    /// The name stored in the document's `kind` field and hashed into its genesis actor.
    pub const fn as_str(self) -> &'static str {
        match self {
            DocKind::BranchProfile => "branch-profile",
            DocKind::Forum => "forum",
            DocKind::SelfAssessment => "self-assessment",
            DocKind::Resolution => "resolution",
            DocKind::Ballot => "ballot",
            DocKind::PersonalPlan => "personal-plan",
            DocKind::MonthlyMeeting => "monthly-meeting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for DocKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A document kind's root struct.
pub trait Document: Reconcile + Hydrate {
    const KIND: DocKind;

    /// The value genesis writes: every map, list and Text that later edits write into. It must not
    /// depend on anything but the kind (genesis is the same for every document of a kind).
    fn genesis_value() -> Self;
}

/// Why a document could not be read or edited.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("document does not match the schema: {0}")]
    Hydrate(#[from] HydrateError),
    #[error("could not write the document: {0}")]
    Reconcile(#[from] ReconcileError),
    #[error("document is not a {expected} (its kind is {found:?})")]
    WrongKind { expected: DocKind, found: Option<String> },
    #[error("document has schema version {found}; this build reads up to {SCHEMA_VERSION}")]
    NewerSchema { found: u64 },
    #[error("no {expected} at {path}")]
    NoSuchObject { path: String, expected: &'static str },
}

/// Checks that `doc` is a `kind` document of a schema version this build understands.
pub fn check_kind(doc: &impl autosurgeon::ReadDoc, kind: DocKind) -> Result<(), SchemaError> {
    let found = match doc.get(&automerge::ROOT, KIND_KEY)? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    };
    if found.as_deref() != Some(kind.as_str()) {
        return Err(SchemaError::WrongKind { expected: kind, found });
    }
    match doc.get(&automerge::ROOT, SCHEMA_VERSION_KEY)? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Uint(v) if *v <= SCHEMA_VERSION => Ok(()),
            ScalarValue::Uint(v) => Err(SchemaError::NewerSchema { found: *v }),
            _ => Err(SchemaError::NoSuchObject { path: SCHEMA_VERSION_KEY.into(), expected: "version" }),
        },
        _ => Err(SchemaError::NoSuchObject { path: SCHEMA_VERSION_KEY.into(), expected: "version" }),
    }
}

/// Reads a whole document of kind `T` (works on an `Automerge` or inside a transaction).
pub fn hydrate<T: Document>(doc: &impl autosurgeon::ReadDoc) -> Result<T, SchemaError> {
    check_kind(doc, T::KIND)?;
    Ok(autosurgeon::hydrate(doc)?)
}

/// Checks that `doc` is a well-formed `kind` document (it hydrates as that kind's struct).
pub fn check_document(doc: &impl autosurgeon::ReadDoc, kind: DocKind) -> Result<(), SchemaError> {
    match kind {
        DocKind::BranchProfile => hydrate::<BranchProfile>(doc).map(drop),
        DocKind::Forum => hydrate::<Forum>(doc).map(drop),
        DocKind::SelfAssessment => hydrate::<SelfAssessment>(doc).map(drop),
        DocKind::Resolution => hydrate::<Resolution>(doc).map(drop),
        DocKind::Ballot => hydrate::<Ballot>(doc).map(drop),
        DocKind::PersonalPlan => hydrate::<PersonalPlan>(doc).map(drop),
        DocKind::MonthlyMeeting => hydrate::<MonthlyMeeting>(doc).map(drop),
    }
}

/// Edits a document of kind `T` in one change committed at `time` (unix seconds, advisory) by the
/// document's current actor. `f` may change scalars, options and lists (new list items carry their
/// own unique `id`); **it must not replace a [`LongText`]** (use [`splice_text`]). Returns the new
/// change's hash, or `None` if nothing changed.
pub fn update<T: Document>(
    doc: &mut Automerge,
    time: i64,
    f: impl FnOnce(&mut T),
) -> Result<Option<ChangeHash>, SchemaError> {
    let mut tx = doc.transaction();
    match update_in::<T, _>(&mut tx, f) {
        Ok(()) => Ok(tx.commit_with(CommitOptions::default().with_time(time)).0),
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}

/// [`update`] inside a transaction the caller commits (to group several edits in one change).
pub fn update_in<T: Document, D: autosurgeon::Doc>(
    tx: &mut D,
    f: impl FnOnce(&mut T),
) -> Result<(), SchemaError> {
    let mut value: T = hydrate(tx)?;
    f(&mut value);
    autosurgeon::reconcile(tx, &value)?;
    Ok(())
}

/// One step of a path from the document root to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A struct field.
    Field(&'static str),
    /// An entry of a map keyed by data (an item code, a month).
    Entry(String),
    /// The item of a keyed list whose `id` is this.
    ById(String),
}

fn describe(steps: &[Step]) -> String {
    let parts: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::Field(f) => (*f).to_owned(),
            Step::Entry(e) => format!("[{e}]"),
            Step::ById(id) => format!("[id={id}]"),
        })
        .collect();
    parts.join(".")
}

/// Finds the object at `steps` and checks its type.
pub(crate) fn resolve(
    doc: &impl autosurgeon::ReadDoc,
    steps: &[Step],
    expected: ObjType,
) -> Result<automerge::ObjId, SchemaError> {
    let missing = || SchemaError::NoSuchObject {
        path: describe(steps),
        expected: match expected {
            ObjType::Text => "text",
            ObjType::List => "list",
            ObjType::Map | ObjType::Table => "map",
        },
    };
    let mut obj = automerge::ROOT;
    for step in steps {
        let next = match step {
            Step::Field(key) => doc.get(&obj, *key)?,
            Step::Entry(key) => doc.get(&obj, key.as_str())?,
            Step::ById(id) => find_by_id(doc, &obj, id)?,
        };
        obj = match next {
            Some((Value::Object(_), id)) => id,
            _ => return Err(missing()),
        };
    }
    match doc.object_type(&obj) {
        Some(t) if t == expected => Ok(obj),
        _ => Err(missing()),
    }
}

fn find_by_id<'a, D: autosurgeon::ReadDoc>(
    doc: &'a D,
    list: &automerge::ObjId,
    id: &str,
) -> Result<Option<(Value<'a>, automerge::ObjId)>, SchemaError> {
    for index in 0..doc.length(list) {
        if let Some((Value::Object(ObjType::Map), item)) = doc.get(list, index)? {
            let matches = matches!(
                doc.get(&item, ITEM_ID_KEY)?,
                Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Str(s) if s == id)
            );
            if matches {
                return Ok(Some((Value::Object(ObjType::Map), item)));
            }
        }
    }
    Ok(None)
}

/// Inserts `item` into the list at `steps` at `index` through autosurgeon's insert path, which
/// writes fields in declaration order: unlike pushing onto a `Vec` and reconciling (which goes
/// through a hash map), the change is byte-for-byte reproducible. Used by the demo branch.
pub(crate) fn insert_item<D: autosurgeon::Doc, R: Reconcile>(
    tx: &mut D,
    steps: &[Step],
    index: Option<usize>,
    item: R,
) -> Result<(), SchemaError> {
    let list = resolve(tx, steps, ObjType::List)?;
    let index = index.unwrap_or_else(|| tx.length(&list));
    autosurgeon::reconcile_insert(tx, list, index, item)?;
    Ok(())
}

/// Writes the root keys genesis adds besides the struct fields.
pub(crate) fn put_meta(tx: &mut impl Transactable, kind: DocKind) -> Result<(), automerge::AutomergeError> {
    tx.put(automerge::ROOT, KIND_KEY, kind.as_str())?;
    tx.put(automerge::ROOT, SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
    Ok(())
}

/// Declares a fieldless enum stored as a stable lowercase string (not autosurgeon's variant name,
/// so Rust renames do not change documents).
macro_rules! string_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The string stored in documents.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        impl autosurgeon::Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.as_str())
            }
        }

        impl autosurgeon::Hydrate for $name {
            fn hydrate_string(s: &str) -> Result<Self, autosurgeon::HydrateError> {
                Self::parse(s).ok_or_else(|| autosurgeon::HydrateError::unexpected(stringify!($name), s.to_owned()))
            }
        }
    };
}
pub(crate) use string_enum;

/// Ids are stored as their bs58check strings, like everywhere else.
macro_rules! id_as_string {
    ($($ty:ty),+) => {$(
        impl Reconcile for $ty {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.to_string())
            }
        }

        impl Hydrate for $ty {
            fn hydrate_string(s: &str) -> Result<Self, HydrateError> {
                s.parse().map_err(|e: crate::ids::IdError| HydrateError::unexpected(stringify!($ty), e.to_string()))
            }
        }
    )+};
}
id_as_string!(BranchId, ForumId, MemberId);
