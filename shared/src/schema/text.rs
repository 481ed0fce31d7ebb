//! Long text: automerge Text objects edited by splices, so concurrent typing merges character by
//! character.
//!
//! [`LongText`] wraps `autosurgeon::Text` but hides its `splice`/`update`: those count positions
//! in UTF-8 bytes for their local copy while automerge counts Unicode code points, which corrupts
//! Vietnamese text. Edit a Text only with [`splice_text`], whose positions are in the document's
//! text encoding (automerge's default, Unicode code points, unless a build enables automerge's
//! `utf16-indexing` feature).

use std::fmt;

use automerge::transaction::CommitOptions;
use automerge::{Automerge, ChangeHash, ObjType};
use autosurgeon::reconcile::LoadKey;
use autosurgeon::{Hydrate, HydrateError, Reconcile, ReconcileError, Text};

use super::{Document, SchemaError, Step, check_kind, describe, resolve};

/// A long text field (minutes, sections, notes): an automerge Text.
///
/// Read it with [`LongText::as_str`]; change it with [`splice_text`]. A `LongText::new` value is
/// only for a *new* list item: written over an existing field it would replace the Text object
/// (and concurrent typing into the old one would be lost), so `update` closures must leave
/// existing `LongText`s alone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LongText(Text);

impl LongText {
    /// A fresh text for a new list item.
    pub fn new(value: impl AsRef<str>) -> Self {
        Self(Text::with_value(value))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for LongText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for LongText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Reconcile for LongText {
    type Key<'a> = <Text as Reconcile>::Key<'a>;

    fn reconcile<R: autosurgeon::Reconciler>(&self, reconciler: R) -> Result<(), R::Error> {
        self.0.reconcile(reconciler)
    }

    fn hydrate_key<'a, D: autosurgeon::ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: autosurgeon::Prop<'_>,
    ) -> Result<LoadKey<Self::Key<'a>>, ReconcileError> {
        Text::hydrate_key(doc, obj, prop)
    }

    fn key(&self) -> LoadKey<Self::Key<'_>> {
        self.0.key()
    }
}

impl Hydrate for LongText {
    fn hydrate_text<D: autosurgeon::ReadDoc>(doc: &D, obj: &automerge::ObjId) -> Result<Self, HydrateError> {
        Text::hydrate_text(doc, obj).map(Self)
    }
}

/// Where a text field is, from the document root. Opaque; made by the `*Text` enums of each kind.
#[derive(Clone, PartialEq, Eq)]
pub struct TextPath(pub(crate) Vec<Step>);

impl fmt::Debug for TextPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TextPath({})", describe(&self.0))
    }
}

impl fmt::Display for TextPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

/// A text field of one document kind (e.g. [`super::ForumText::Minutes`]).
pub trait TextField {
    type Doc: Document;

    fn path(&self) -> TextPath;
}

/// Splices `insert` into the text `field` at `pos`, deleting `del` characters (negative: before
/// `pos`), in one change committed at `time` by the document's current actor.
pub fn splice_text<F: TextField>(
    doc: &mut Automerge,
    field: &F,
    pos: usize,
    del: isize,
    insert: &str,
    time: i64,
) -> Result<Option<ChangeHash>, SchemaError> {
    let mut tx = doc.transaction();
    match splice_text_in(&mut tx, field, pos, del, insert) {
        Ok(()) => Ok(tx.commit_with(CommitOptions::default().with_time(time)).0),
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}

/// [`splice_text`] inside a transaction the caller commits.
pub fn splice_text_in<F: TextField, D: autosurgeon::Doc>(
    tx: &mut D,
    field: &F,
    pos: usize,
    del: isize,
    insert: &str,
) -> Result<(), SchemaError> {
    check_kind(tx, F::Doc::KIND)?;
    let text = resolve(tx, &field.path().0, ObjType::Text)?;
    tx.splice_text(&text, pos, del, insert)?;
    Ok(())
}

/// The current value of the text `field`.
pub fn read_text<F: TextField>(doc: &impl autosurgeon::ReadDoc, field: &F) -> Result<String, SchemaError> {
    check_kind(doc, F::Doc::KIND)?;
    let text = resolve(doc, &field.path().0, ObjType::Text)?;
    Ok(doc.text(&text)?)
}
