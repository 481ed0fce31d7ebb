//! Conflicts: fields that two devices set differently while neither had seen the other's write.
//!
//! automerge keeps every such concurrent value (and shows one of them, the same one on every
//! device). [`conflicts()`] finds them all by walking the document: every map key and list element
//! that holds more than one value. [`settle`] writes the chosen value back with one `put`, which
//! supersedes all the values it has seen, so every device that merges the settlement ends with
//! that value and no conflict. Characters of a Text are never reported (concurrent typing merges,
//! it does not conflict).
//!
//! The walk follows the value each device shows: conflicts inside a value that lost are not
//! reported (nobody sees them). Concurrent writes of the same value (both devices answered "yes")
//! are not reported either: there is nothing to choose.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value};

use super::ReviewError;
use crate::schema::ITEM_ID_KEY;

/// One step of a human-readable path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A map key (a struct field, or an entry keyed by data such as an item code or a month).
    Key(String),
    /// A list element that has no `id`.
    Index(usize),
    /// A list item (a map) with an `id` field, at `index` now.
    Item { index: usize, id: String },
}

/// Renders a path as `tasks[t1].deadline`, `items.A1.degree`, `manifestation_codes[2]`.
pub fn path_string(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            PathSegment::Index(index) => out.push_str(&format!("[{index}]")),
            PathSegment::Item { id, .. } => out.push_str(&format!("[{id}]")),
        }
    }
    out
}

/// What a conflicting value is.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// A scalar (string, number, boolean, null, ...).
    Scalar(ScalarValue),
    /// An object (a map, list or text written as a whole, e.g. two devices each writing a new
    /// commitment or vote).
    Object(ObjType),
}

/// One of the concurrent values of a conflicting field.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictValue {
    /// The id of the operation that wrote it (for an object, also the object's id).
    pub op: ObjId,
    /// The actor (device) that wrote it.
    pub actor: ActorId,
    /// The value.
    pub value: ValueKind,
    /// A display string: the text of a string, a number, `true`/`false`, `null`; `map`, `list` or
    /// `text` for an object.
    pub display: String,
    /// Whether this is the value every device shows now (exactly one value per conflict).
    pub shown: bool,
}

/// A map key or list element holding more than one concurrent value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The object holding the field (stable across devices and saves).
    pub obj: ObjId,
    /// The key (map) or index (list) in that object.
    pub prop: Prop,
    /// Where it is, from the root.
    pub path: Vec<PathSegment>,
    /// The concurrent values, in automerge's order (by operation id).
    pub values: Vec<ConflictValue>,
}

impl Conflict {
    /// The path as a string ([`path_string`]).
    pub fn path_string(&self) -> String {
        path_string(&self.path)
    }

    /// The value every device shows now.
    pub fn shown(&self) -> Option<&ConflictValue> {
        self.values.iter().find(|v| v.shown)
    }
}

/// Every conflict in `doc`, in document order (map keys sorted, list elements in order, depth
/// first).
pub fn conflicts(doc: &Automerge) -> Vec<Conflict> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk(doc, &automerge::ROOT, ObjType::Map, &mut path, &mut out);
    out
}

fn walk(doc: &Automerge, obj: &ObjId, typ: ObjType, path: &mut Vec<PathSegment>, out: &mut Vec<Conflict>) {
    match typ {
        ObjType::Map | ObjType::Table => {
            for key in doc.keys(obj) {
                path.push(PathSegment::Key(key.clone()));
                visit(doc, obj, Prop::Map(key), path, out);
                path.pop();
            }
        }
        ObjType::List => {
            for index in 0..doc.length(obj) {
                path.push(list_segment(doc, obj, index));
                visit(doc, obj, Prop::Seq(index), path, out);
                path.pop();
            }
        }
        ObjType::Text => {}
    }
}

fn visit(doc: &Automerge, obj: &ObjId, prop: Prop, path: &mut Vec<PathSegment>, out: &mut Vec<Conflict>) {
    let Ok(all) = doc.get_all(obj, prop.clone()) else { return };
    let shown = match doc.get(obj, prop.clone()) {
        Ok(Some((value, id))) => Some((value.into_owned(), id)),
        _ => None,
    };
    if all.len() > 1 && !all_equal(doc, &all) {
        let values = all
            .iter()
            .map(|(value, op)| conflict_value(value, op, shown.as_ref().is_some_and(|(_, id)| id == op)))
            .collect();
        out.push(Conflict { obj: obj.clone(), prop, path: path.clone(), values });
    }
    if let Some((Value::Object(typ), child)) = shown {
        walk(doc, &child, typ, path, out);
    }
}

/// Whether every concurrent value is the same (two devices wrote the same thing): nothing to
/// choose between, so not reported.
fn all_equal(doc: &Automerge, all: &[(Value<'_>, ObjId)]) -> bool {
    let content = |(value, id): &(Value<'_>, ObjId)| match value {
        Value::Scalar(s) => Ok(automerge::hydrate::Value::Scalar(s.as_ref().clone())),
        Value::Object(_) => ReadDoc::hydrate(doc, id, None),
    };
    let Some(first) = all.first().map(content) else { return true };
    let Ok(first) = first else { return false };
    all[1..].iter().all(|v| content(v).is_ok_and(|c| c == first))
}

fn conflict_value(value: &Value<'_>, op: &ObjId, shown: bool) -> ConflictValue {
    let (value, display) = match value {
        Value::Scalar(s) => (ValueKind::Scalar(s.as_ref().clone()), display_scalar(s)),
        Value::Object(t) => (ValueKind::Object(*t), object_name(*t).to_owned()),
    };
    ConflictValue { op: op.clone(), actor: actor_of(op), value, display, shown }
}

/// The actor of an operation id (the root, which no operation wrote, has the empty actor).
fn actor_of(op: &ObjId) -> ActorId {
    match op {
        ObjId::Id(_, actor, _) => actor.clone(),
        ObjId::Root => ActorId::from(&[][..]),
    }
}

fn object_name(t: ObjType) -> &'static str {
    match t {
        ObjType::Map | ObjType::Table => "map",
        ObjType::List => "list",
        ObjType::Text => "text",
    }
}

fn display_scalar(s: &ScalarValue) -> String {
    match s {
        ScalarValue::Str(s) => s.to_string(),
        ScalarValue::Bytes(b) => format!("{} bytes", b.len()),
        ScalarValue::Int(i) => i.to_string(),
        ScalarValue::Uint(u) => u.to_string(),
        ScalarValue::F64(f) => f.to_string(),
        ScalarValue::Counter(c) => i64::from(c).to_string(),
        ScalarValue::Timestamp(t) => t.to_string(),
        ScalarValue::Boolean(b) => b.to_string(),
        ScalarValue::Null => "null".to_owned(),
        ScalarValue::Unknown { type_code, .. } => format!("unknown value (type {type_code})"),
    }
}

/// The label of list element `index`: its `id` if it is a map with a string `id`.
fn list_segment(doc: &Automerge, list: &ObjId, index: usize) -> PathSegment {
    if let Ok(Some((Value::Object(ObjType::Map), item))) = doc.get(list, index)
        && let Ok(Some((Value::Scalar(s), _))) = doc.get(&item, ITEM_ID_KEY)
        && let ScalarValue::Str(id) = s.as_ref()
    {
        return PathSegment::Item { index, id: id.to_string() };
    }
    PathSegment::Index(index)
}

/// Settles `conflict` on the value at `chosen` (an index into `conflict.values`), in one change
/// committed at `time` (unix seconds) by `doc`'s actor, with a message naming the path. Returns
/// the change's hash.
///
/// A scalar is written back with one `put`. An object (e.g. two whole commitments or votes) is
/// written back as a new copy of the chosen object as it is now; a Text inside it becomes a new
/// Text, so typing into the old one that has not reached this device yet will not show.
///
/// Refused with [`ReviewError::StaleConflict`] if the field no longer holds exactly the values
/// the conflict was read with (another device wrote it since, or it was settled already): read
/// the conflicts again and let the user choose again.
pub fn settle(
    doc: &mut Automerge,
    conflict: &Conflict,
    chosen: usize,
    time: i64,
) -> Result<ChangeHash, ReviewError> {
    let Some(value) = conflict.values.get(chosen) else {
        return Err(ReviewError::NoSuchValue { index: chosen, len: conflict.values.len() });
    };
    let stale = || ReviewError::StaleConflict { path: conflict.path_string() };
    let now: Vec<ObjId> = match doc.get_all(&conflict.obj, conflict.prop.clone()) {
        Ok(all) => all.into_iter().map(|(_, id)| id).collect(),
        Err(_) => return Err(stale()),
    };
    let then: Vec<&ObjId> = conflict.values.iter().map(|v| &v.op).collect();
    if now.len() != then.len() || !now.iter().all(|id| then.contains(&id)) {
        return Err(stale());
    }
    let copy = match &value.value {
        ValueKind::Scalar(_) => None,
        ValueKind::Object(_) => Some(ReadDoc::hydrate(&*doc, &value.op, None)?),
    };
    let message = format!("settle conflict at {}", conflict.path_string());
    let mut tx = doc.transaction();
    let written = match (&value.value, &copy) {
        (ValueKind::Scalar(s), _) => tx.put(&conflict.obj, conflict.prop.clone(), s.clone()),
        (ValueKind::Object(_), Some(copy)) => {
            tx.batch_create_object(&conflict.obj, conflict.prop.clone(), copy, false).map(drop)
        }
        (ValueKind::Object(_), None) => Ok(()),
    };
    if let Err(e) = written {
        tx.rollback();
        return Err(e.into());
    }
    tx.commit_with(CommitOptions::default().with_time(time).with_message(message))
        .0
        .ok_or(ReviewError::NothingWritten)
}
