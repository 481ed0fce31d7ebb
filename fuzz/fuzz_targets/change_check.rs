//! Differential check of `chibo_shared::sync::authorship::incoming_changes` against what
//! `automerge::sync::SyncDoc::receive_sync_message` really applies.
//!
//! Input layout: the first byte picks the mode.
//! * even: the rest is an encoded sync message (`automerge::sync::Message::decode`; skipped if
//!   it does not decode), as the relay receives it in a `sync`/`request` frame;
//! * odd: the rest drives `chibo_fuzz::structured::message`, which assembles a message from the
//!   chunks of a deterministic seed history (changes, compressed changes, bundles, documents,
//!   real sync messages), mutated with or without repairing chunk headers. The message is
//!   encoded and decoded again, as it would travel.
//!
//! Each message is applied to an empty document and to a document holding part of the seed
//! history; every change either gains must be listed by `incoming_changes` (when that returns
//! `Ok`) with the same author. Any panic in chibo code is a finding too; panics inside automerge
//! are recorded and skipped (`chibo_fuzz::panics`).
//!
//! `CHIBO_FUZZ_SKIP_BUNDLES=1` skips messages holding a bundle chunk (type 3): automerge 0.12.0
//! allocates gigabytes on some bundles, which stops libFuzzer every few minutes (README.md).
#![no_main]

use arbitrary::Unstructured;
use automerge::sync::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let decoded = chibo_fuzz::panics::catch_dependency("change_check", "decode", data, || {
        if mode & 1 == 0 {
            Message::decode(rest).ok()
        } else {
            let seed = chibo_fuzz::seed::get();
            let m = chibo_fuzz::structured::message(&mut Unstructured::new(rest), seed).ok()?;
            Message::decode(&m.encode()).ok()
        }
    });
    let Ok(Some(message)) = decoded else { return };
    if skip_bundles() && has_bundle(&message) {
        return;
    }
    chibo_fuzz::check::check_against_seed(&message, data);
});

fn skip_bundles() -> bool {
    static SKIP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("CHIBO_FUZZ_SKIP_BUNDLES").is_some_and(|v| v != "0"))
}

/// Whether a bundle chunk starts at a chunk boundary in some entry or in all entries joined (as
/// automerge reads them).
fn has_bundle(message: &Message) -> bool {
    use chibo_fuzz::structured::chunks;
    let joined: Vec<u8> = message.changes.iter().flatten().copied().collect();
    message
        .changes
        .iter()
        .chain(std::iter::once(joined.as_slice()))
        .any(|e| chunks(e).iter().any(|(k, _)| *k == 3))
}
