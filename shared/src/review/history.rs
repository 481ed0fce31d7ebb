//! The history of a document: who wrote what, when, from automerge's change metadata.
//!
//! Every change carries its actor (one per device: the roster maps actor → device → member),
//! its sequence number for that actor, the time its device committed it (unix seconds, from the
//! device's clock: advisory, a phone's clock may be wrong), an optional message, and its
//! dependencies. What a change touched is read from its operations, in one pass over all changes
//! in causal order: each operation names the object it writes and the key, and each object's
//! path is known from the operation that created it (always in an earlier change, or earlier in
//! the same one). The cost is linear in the number of operations, whatever the number of
//! changes.
//!
//! Paths are as in [`super::conflicts`]: `title`, `tasks[t1].deadline`, `items.A1.degree`. A new
//! object is reported once by its own path (creating task `t1` with its fields is `tasks[t1]`),
//! and typing into a Text is reported as the Text's path. Items of lists are named by their `id`
//! (or `[*]` if they have none); paths of objects that were later replaced are still named as
//! where they were created.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, Automerge, ChangeHash, ObjType, ScalarValue};

use crate::schema::ITEM_ID_KEY;

/// One change of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The change's hash.
    pub hash: ChangeHash,
    /// The actor (device) that made it.
    pub actor: ActorId,
    /// Its sequence number among the actor's changes (1, 2, ...).
    pub seq: u64,
    /// When its device committed it (unix seconds, the device's clock; 0 for genesis).
    pub time: i64,
    /// Its message, if any (e.g. "settle conflict at tasks[t1].deadline").
    pub message: Option<String>,
    /// The changes it was made on top of.
    pub deps: Vec<ChangeHash>,
    /// The top-level fields it touched, sorted.
    pub fields: Vec<String>,
    /// The paths it touched, sorted (see the [module documentation](self)).
    pub paths: Vec<String>,
}

/// Every change of `doc`, in causal order (a change after all it depends on); changes made
/// concurrently are ordered by time, then actor, then sequence number.
pub fn history(doc: &Automerge) -> Vec<HistoryEntry> {
    let changes = doc.get_changes(&[]);
    let index: HashMap<ChangeHash, usize> = changes.iter().enumerate().map(|(i, c)| (c.hash(), i)).collect();
    let mut waiting: Vec<usize> = vec![0; changes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, change) in changes.iter().enumerate() {
        for dep in change.deps() {
            if let Some(&d) = index.get(dep) {
                waiting[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let order_key = |i: usize| {
        let c = &changes[i];
        Reverse((c.timestamp(), c.actor_id().clone(), c.seq(), c.hash(), i))
    };
    let mut ready: BinaryHeap<_> = (0..changes.len()).filter(|&i| waiting[i] == 0).map(order_key).collect();
    let mut paths = Paths::default();
    let mut out = Vec::with_capacity(changes.len());
    while let Some(Reverse((_, _, _, _, i))) = ready.pop() {
        let change = &changes[i];
        let touched = paths.apply(change);
        out.push((change, touched));
        for &next in &dependents[i] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(order_key(next));
            }
        }
    }
    out.into_iter()
        .map(|(change, touched)| {
            let paths: BTreeSet<String> = touched.iter().map(|t| paths.render(t)).collect();
            let fields: BTreeSet<String> =
                paths.iter().map(|p| p.split(['.', '[']).next().unwrap_or(p).to_owned()).collect();
            HistoryEntry {
                hash: change.hash(),
                actor: change.actor_id().clone(),
                seq: change.seq(),
                time: change.timestamp(),
                message: change.message().map(str::to_owned),
                deps: change.deps().to_vec(),
                fields: fields.into_iter().collect(),
                paths: paths.into_iter().collect(),
            }
        })
        .collect()
}

/// An operation id / object id: (counter, actor).
type OpKey = (u64, ActorId);

/// Where an object was created.
struct Node {
    parent: Option<OpKey>,
    typ: ObjType,
    /// In a map: the key. In a list: `None` (named by its `id`, if it gets one).
    key: Option<String>,
    id: Option<String>,
}

/// What one operation touched: an object (`None`: the root), and a key in it (maps).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Touch {
    Object(Option<OpKey>),
    Key(Option<OpKey>, String),
}

#[derive(Default)]
struct Paths {
    nodes: HashMap<OpKey, Node>,
}

impl Paths {
    /// Records the objects `change` creates and returns what it touched.
    fn apply(&mut self, change: &automerge::Change) -> Vec<Touch> {
        let expanded = change.decode();
        let start = expanded.start_op.get();
        let actor = expanded.actor_id.clone();
        let mut created_here: BTreeSet<u64> = BTreeSet::new();
        let mut touched: Vec<Touch> = Vec::new();
        let mut seen: std::collections::HashSet<Touch> = std::collections::HashSet::new();
        for (i, op) in expanded.operations.iter().enumerate() {
            let obj = match &op.obj {
                ObjectId::Root => None,
                ObjectId::Id(id) => Some((id.0, id.1.clone())),
            };
            let map_key = match &op.key {
                Key::Map(k) => Some(k.to_string()),
                Key::Seq(_) => None,
            };
            if let (Some(obj), Some(key), OpType::Put(ScalarValue::Str(value))) = (&obj, &map_key, &op.action)
                && key == ITEM_ID_KEY
                && let Some(node) = self.nodes.get_mut(obj)
                && node.key.is_none()
            {
                node.id = Some(value.to_string());
            }
            let made = if let OpType::Make(typ) = op.action {
                let counter = start + i as u64;
                self.nodes.insert(
                    (counter, actor.clone()),
                    Node { parent: obj.clone(), typ, key: map_key.clone(), id: None },
                );
                created_here.insert(counter);
                Some(counter)
            } else {
                None
            };
            // An operation inside an object this change created is part of creating it.
            if let Some((counter, a)) = &obj
                && a == &actor
                && created_here.contains(counter)
            {
                continue;
            }
            let touch = if let Some(counter) = made {
                Touch::Object(Some((counter, actor.clone())))
            } else {
                let in_map = match &obj {
                    None => true,
                    Some(o) => {
                        self.nodes.get(o).is_some_and(|n| matches!(n.typ, ObjType::Map | ObjType::Table))
                    }
                };
                match map_key {
                    Some(key) if in_map => Touch::Key(obj, key),
                    _ => Touch::Object(obj),
                }
            };
            if seen.insert(touch.clone()) {
                touched.push(touch);
            }
        }
        touched
    }

    fn render(&self, touch: &Touch) -> String {
        match touch {
            Touch::Object(obj) => self.path(obj.as_ref()),
            Touch::Key(obj, key) => {
                let base = self.path(obj.as_ref());
                if base.is_empty() { key.clone() } else { format!("{base}.{key}") }
            }
        }
    }

    fn path(&self, obj: Option<&OpKey>) -> String {
        let mut segments = Vec::new();
        let mut at = obj.cloned();
        while let Some(key) = at {
            let Some(node) = self.nodes.get(&key) else {
                segments.push("?".to_owned());
                break;
            };
            segments.push(match (&node.key, &node.id) {
                (Some(k), _) => format!(".{k}"),
                (None, Some(id)) => format!("[{id}]"),
                (None, None) => "[*]".to_owned(),
            });
            at = node.parent.clone();
        }
        segments.reverse();
        let joined = segments.concat();
        joined.strip_prefix('.').map(str::to_owned).unwrap_or(joined)
    }
}
