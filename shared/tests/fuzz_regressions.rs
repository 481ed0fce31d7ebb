//! Inputs found by the `change_check` fuzz target (fuzz/, see fuzz/README.md), replayed with the
//! target's property.
//!
//! Every file `fuzz_regressions/*.msg` is an encoded automerge sync message (the bytes a `sync`
//! frame carries) on which automerge 0.12.0 panics. The property is the one the fuzz target
//! checks: whatever `receive_sync_message` applies to an empty document or to the partial seed
//! history (`fuzz_regressions/partial-seed.automerge`, the `partial` document of
//! fuzz/src/lib.rs) must have been listed, with its author, by `incoming_changes` whenever that
//! returns `Ok`.
//!
//! * `applied_changes_are_listed` runs the property and tolerates the known automerge panics (a
//!   panic ends the check for that input): it guards the listing once automerge stops
//!   panicking on these bytes.
//! * `automerge_does_not_panic_on_fuzz_inputs` is ignored: it fails with automerge 0.12.0 (the
//!   panics are upstream bugs, listed in fuzz/README.md). Run it after an automerge upgrade:
//!   `cargo test -p chibo-shared --test fuzz_regressions -- --ignored`.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use automerge::sync::{Message, State, SyncDoc as _};
use automerge::{ActorId, Automerge, ChangeHash};
use chibo_shared::sync::authorship::incoming_changes;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fuzz_regressions")
}

/// Every `*.msg` file, sorted by name.
fn messages() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir())
        .expect("tests/fuzz_regressions exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "msg"))
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (name, std::fs::read(&p).expect("read input"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regression inputs found");
    out
}

/// The documents the fuzz target applies each message to.
fn receivers() -> [Automerge; 2] {
    let partial = std::fs::read(dir().join("partial-seed.automerge")).expect("read partial seed");
    [Automerge::new(), Automerge::load(&partial).expect("partial seed loads")]
}

/// Where automerge panicked, if it did.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Checked,
    Panicked(&'static str),
}

/// The fuzz target's property on one encoded sync message. Panics inside automerge end the
/// check and are returned; a change applied but not listed fails the test.
fn check(name: &str, bytes: &[u8]) -> Outcome {
    let Ok(decoded) = catch_unwind(|| Message::decode(bytes)) else { return Outcome::Panicked("decode") };
    let Ok(message) = decoded else { return Outcome::Checked };
    let Ok(listed) = catch_unwind(|| incoming_changes(&message)) else {
        return Outcome::Panicked("incoming_changes");
    };
    for doc in receivers() {
        let mut doc = doc;
        let before = doc.get_heads();
        let applied = catch_unwind(AssertUnwindSafe(|| {
            let _ = doc.receive_sync_message(&mut State::new(), message.clone());
        }));
        if applied.is_err() {
            return Outcome::Panicked("receive_sync_message");
        }
        let gained: Vec<(ChangeHash, ActorId)> =
            doc.get_changes_meta(&before).into_iter().map(|m| (m.hash, m.actor.into_owned())).collect();
        if catch_unwind(AssertUnwindSafe(|| doc.get_changes(&before).len())).is_err() {
            return Outcome::Panicked("get_changes");
        }
        let Ok(listed) = &listed else { continue };
        let by_hash: BTreeMap<ChangeHash, &ActorId> = listed.iter().map(|c| (c.hash, &c.actor)).collect();
        for (hash, actor) in &gained {
            assert_eq!(
                by_hash.get(hash),
                Some(&actor),
                "{name}: change {hash} by {actor} applied but not listed"
            );
        }
    }
    Outcome::Checked
}

#[test]
fn applied_changes_are_listed() {
    for (name, bytes) in messages() {
        let outcome = check(&name, &bytes);
        eprintln!("{name}: {outcome:?}");
    }
}

#[test]
#[ignore = "automerge 0.12.0 panics on these inputs (upstream bugs, see fuzz/README.md)"]
fn automerge_does_not_panic_on_fuzz_inputs() {
    let panicked: Vec<(String, Outcome)> = messages()
        .into_iter()
        .map(|(name, bytes)| {
            let outcome = check(&name, &bytes);
            (name, outcome)
        })
        .filter(|(_, o)| *o != Outcome::Checked)
        .collect();
    assert!(panicked.is_empty(), "automerge still panics: {panicked:?}");
}
