//! Shared pieces of chibo's fuzz targets (see README.md).
//!
//! * [`wire`]: the property `wire_decode` checks on `chibo_shared::wire::Message`.
//! * [`seed`]: a small deterministic automerge history (two actors) and every kind of storage
//!   chunk made from it: single changes, compressed changes, bundles, whole documents, and the
//!   sync messages real peers exchange.
//! * [`structured`]: turns fuzz input into a sync message built from those chunks, mutated (with
//!   or without repairing the chunk header, so mutations get past the checksum), so the fuzzer
//!   reaches the change/document/bundle decoders instead of stopping at the magic bytes.
//! * [`check`]: the differential property of `change_check`: whatever
//!   `receive_sync_message` applies was listed by `incoming_changes`.

pub mod wire {
    use chibo_shared::wire::Message;

    /// Decoding never panics; whatever decodes re-encodes to a frame that decodes to the same
    /// message (and re-encoding that gives the same bytes).
    pub fn check(data: &[u8]) {
        let Ok(msg) = Message::decode(data) else { return };
        let frame = msg.encode();
        let again =
            Message::decode(&frame).unwrap_or_else(|e| panic!("re-encoded {msg:?} does not decode: {e}"));
        assert_eq!(again, msg, "re-encoding changed the message");
        assert_eq!(again.encode(), frame, "encoding is not stable");
    }
}

pub mod seed {
    use std::sync::OnceLock;

    use automerge::sync::{Message, State, SyncDoc as _};
    use automerge::transaction::{CommitOptions, Transactable as _, Transaction};
    use automerge::{ActorId, Automerge, ChangeHash, ObjType, ROOT, ScalarValue, marks};

    /// The deterministic seed history and everything made from it.
    #[derive(Debug)]
    pub struct Seed {
        /// The whole history (alice and bob, concurrent edits, merged).
        pub full: Automerge,
        /// The first two changes only (both by alice).
        pub partial: Automerge,
        /// Every change hash of `full`.
        pub hashes: Vec<ChangeHash>,
        /// Chunk sequences as they appear in sync messages or on disk.
        pub pieces: Vec<Vec<u8>>,
        /// Encoded sync messages real peers exchange for this history.
        pub messages: Vec<Vec<u8>>,
    }

    pub const ALICE: &[u8] = b"alice-device-0001";
    pub const BOB: &[u8] = b"bob-device-000002";

    fn commit(tx: Transaction<'_>, time: i64) {
        tx.commit_with(CommitOptions::default().with_time(time).with_message(format!("c{time}")));
    }

    fn build_history() -> (Automerge, Automerge) {
        let mut a = Automerge::new().with_actor(ActorId::from(ALICE));
        // 1 (alice): every kind of object and scalar.
        let mut tx = a.transaction();
        tx.put(ROOT, "title", "chibo").ok();
        let text = tx.put_object(ROOT, "notes", ObjType::Text).expect("text");
        tx.splice_text(&text, 0, 0, "hello world").ok();
        let list = tx.put_object(ROOT, "items", ObjType::List).expect("list");
        tx.insert(&list, 0, 1i64).ok();
        tx.insert(&list, 1, "two").ok();
        tx.put(ROOT, "count", ScalarValue::counter(0)).ok();
        let meta = tx.put_object(ROOT, "meta", ObjType::Map).expect("map");
        tx.put(&meta, "ok", true).ok();
        tx.put(&meta, "when", ScalarValue::Timestamp(1_700_000_000)).ok();
        commit(tx, 1);
        let mut b = a.fork().with_actor(ActorId::from(BOB));
        // 2 (alice): text edits, a mark, counter, delete.
        let mut tx = a.transaction();
        tx.splice_text(&text, 5, 1, ", ").ok();
        tx.mark(&text, marks::Mark::new("bold".into(), true, 0, 5), marks::ExpandMark::Both).ok();
        tx.increment(ROOT, "count", 2).ok();
        tx.delete(&list, 0).ok();
        commit(tx, 2);
        let partial = a.clone();
        // 3 (bob, concurrent with 2).
        let mut tx = b.transaction();
        tx.splice_text(&text, 0, 0, "Oh ").ok();
        tx.put(ROOT, "title", "chibo!").ok();
        let inner = tx.insert_object(&list, 0, ObjType::Map).expect("map in list");
        tx.put(&inner, "x", 1.5f64).ok();
        tx.put(&inner, "raw", ScalarValue::Bytes(vec![0, 1, 2, 255])).ok();
        tx.increment(ROOT, "count", -1).ok();
        commit(tx, 3);
        a.merge(&mut b).ok();
        // 4 (alice): a long value, so the change is big enough to be sent compressed.
        let mut tx = a.transaction();
        let long: String =
            (0..600u32).map(|i| char::from(b'a' + u8::try_from(i * 7 % 26).unwrap_or(0))).collect();
        tx.put(ROOT, "long", long).ok();
        tx.splice_text(&text, 0, 0, "[").ok();
        commit(tx, 4);
        // 5 (bob, concurrent with 4): after seeing alice's 2.
        b.merge(&mut partial.clone()).ok();
        let mut tx = b.transaction();
        tx.delete(ROOT, "meta").ok();
        tx.put(ROOT, "u", ScalarValue::Uint(7)).ok();
        tx.put(ROOT, "nothing", ScalarValue::Null).ok();
        commit(tx, 5);
        a.merge(&mut b).ok();
        (a, partial)
    }

    /// Runs the sync protocol between `from` and `to` and returns every message `from` sends.
    fn messages(from: &Automerge, to: &Automerge) -> Vec<Message> {
        let (mut from, mut to) = (from.clone(), to.clone());
        let (mut a, mut b) = (State::new(), State::new());
        let mut sent = Vec::new();
        for _ in 0..10 {
            let mut quiet = true;
            if let Some(m) = from.generate_sync_message(&mut a) {
                quiet = false;
                sent.push(m.clone());
                to.receive_sync_message(&mut b, m).ok();
            }
            if let Some(m) = to.generate_sync_message(&mut b) {
                quiet = false;
                from.receive_sync_message(&mut a, m).ok();
            }
            if quiet {
                break;
            }
        }
        sent
    }

    fn build() -> Seed {
        let (full, partial) = build_history();
        let changes = full.get_changes(&[]);
        let hashes: Vec<ChangeHash> = changes.iter().map(|c| c.hash()).collect();
        let mut pieces = Vec::new();
        for c in &changes {
            pieces.push(c.raw_bytes().to_vec());
            let mut c = c.clone();
            let packed = c.bytes().to_vec();
            if packed != c.raw_bytes() {
                pieces.push(packed); // compressed change chunk
            }
        }
        pieces.push(full.save());
        pieces.push(full.save_nocompress());
        pieces.push(partial.save());
        pieces.push(full.save_after(&partial.get_heads()));
        if let Ok(b) = full.bundle(hashes.iter().copied()) {
            pieces.push(b.bytes().to_vec());
        }
        let missing: Vec<ChangeHash> =
            full.get_changes(&partial.get_heads()).iter().map(|c| c.hash()).collect();
        if let Ok(b) = full.bundle(missing) {
            pieces.push(b.bytes().to_vec());
        }
        let mut encoded = Vec::new();
        for to in [Automerge::new(), partial.clone()] {
            for m in messages(&full, &to) {
                pieces.extend(m.changes.iter().filter(|c| !c.is_empty()).map(<[u8]>::to_vec));
                encoded.push(m.encode());
            }
        }
        pieces.sort();
        pieces.dedup();
        Seed { full, partial, hashes, pieces, messages: encoded }
    }

    /// The seed, built once per process.
    pub fn get() -> &'static Seed {
        static SEED: OnceLock<Seed> = OnceLock::new();
        SEED.get_or_init(build)
    }
}

pub mod structured {
    use std::io::Write as _;

    use arbitrary::{Result, Unstructured};
    use automerge::ChangeHash;
    use automerge::sync::{Have, Message, MessageFlags, MessageVersion};
    use sha2::{Digest, Sha256};

    use crate::seed::Seed;

    pub const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

    pub fn uleb(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = u8::try_from(v & 0x7f).unwrap_or(0);
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn read_uleb(bytes: &[u8]) -> Option<(u64, usize)> {
        let mut v: u64 = 0;
        for (i, b) in bytes.iter().enumerate().take(9) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some((v, i + 1));
            }
        }
        None
    }

    /// A chunk with a correct header (magic, checksum, type, length) around `body`.
    pub fn wrap(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut typed = vec![kind];
        uleb(body.len() as u64, &mut typed);
        let hash = Sha256::new().chain_update(&typed).chain_update(body).finalize();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&hash[..4]);
        out.extend_from_slice(&typed);
        out.extend_from_slice(body);
        out
    }

    /// A compressed (type 2) chunk holding the change body `body`.
    pub fn wrap_compressed(body: &[u8]) -> Vec<u8> {
        let change = wrap(1, body);
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(body).ok();
        let deflated = enc.finish().unwrap_or_default();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&change[4..8]); // the checksum of the uncompressed change
        out.push(2);
        uleb(deflated.len() as u64, &mut out);
        out.extend_from_slice(&deflated);
        out
    }

    /// Splits a well formed chunk sequence into (type, body) pairs; stops at the first
    /// malformed chunk.
    pub fn chunks(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while bytes.len() > 9 && bytes[..4] == MAGIC {
            let kind = bytes[8];
            let Some((len, n)) = read_uleb(&bytes[9..]) else { break };
            let Some(end) = usize::try_from(len).ok().and_then(|l| l.checked_add(9 + n)) else { break };
            if end > bytes.len() {
                break;
            }
            out.push((kind, bytes[9 + n..end].to_vec()));
            bytes = &bytes[end..];
        }
        out
    }

    fn mutate(u: &mut Unstructured<'_>, bytes: &mut Vec<u8>) -> Result<()> {
        for _ in 0..u.int_in_range(1..=4u8)? {
            let len = bytes.len();
            let at = if len == 0 { 0 } else { u.int_in_range(0..=len - 1)? };
            match u.int_in_range(0..=6u8)? {
                0 if len > 0 => bytes[at] ^= 1 << u.int_in_range(0..=7u8)?,
                1 if len > 0 => bytes[at] = u.arbitrary()?,
                2 if len > 0 => bytes[at] = bytes[at].wrapping_add(u.int_in_range(1..=255u8)?),
                3 => {
                    let n = u.int_in_range(1..=8usize)?;
                    let ins: Vec<u8> = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
                    bytes.splice(at..at, ins);
                }
                4 if len > 0 => {
                    let n = u.int_in_range(1..=(len - at).min(16))?;
                    bytes.drain(at..at + n);
                }
                5 => bytes.truncate(at),
                _ if len > 0 => {
                    let n = u.int_in_range(1..=(len - at).min(8))?;
                    for b in &mut bytes[at..at + n] {
                        *b = u.arbitrary()?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn piece<'s>(u: &mut Unstructured<'_>, seed: &'s Seed) -> Result<&'s [u8]> {
        Ok(u.choose(&seed.pieces)?.as_slice())
    }

    /// One part of a `changes` entry.
    fn part(u: &mut Unstructured<'_>, seed: &Seed) -> Result<Vec<u8>> {
        Ok(match u.int_in_range(0..=6u8)? {
            // A real chunk sequence, untouched.
            0 => piece(u, seed)?.to_vec(),
            // A real chunk sequence with raw byte mutations (headers not repaired).
            1 => {
                let mut p = piece(u, seed)?.to_vec();
                mutate(u, &mut p)?;
                p
            }
            // One chunk of a real sequence, body mutated, header repaired.
            2 | 3 => {
                let cs = chunks(piece(u, seed)?);
                if cs.is_empty() {
                    return Ok(Vec::new());
                }
                let (mut kind, mut body) = u.choose(&cs)?.clone();
                mutate(u, &mut body)?;
                if u.ratio(1, 8)? {
                    kind = u.arbitrary()?;
                }
                if kind == 1 && u.ratio(1, 3)? { wrap_compressed(&body) } else { wrap(kind, &body) }
            }
            // A chunk with a valid header around bytes of the input.
            4 => {
                let kind = u.int_in_range(0..=4u8)?;
                let body: Vec<u8> = u.arbitrary()?;
                if kind == 4 { wrap_compressed(&body) } else { wrap(kind, &body) }
            }
            // Raw input bytes.
            5 => u.arbitrary()?,
            // The front of one real chunk sequence and the back of another.
            _ => {
                let (a, b) = (piece(u, seed)?, piece(u, seed)?);
                let (i, j) = (u.int_in_range(0..=a.len())?, u.int_in_range(0..=b.len())?);
                [&a[..i], &b[j..]].concat()
            }
        })
    }

    fn hashes(u: &mut Unstructured<'_>, seed: &Seed) -> Result<Vec<ChangeHash>> {
        let mut out = Vec::new();
        for _ in 0..u.int_in_range(0..=3u8)? {
            if u.ratio(1, 4)? {
                out.push(ChangeHash(u.arbitrary()?));
            } else {
                out.push(*u.choose(&seed.hashes)?);
            }
        }
        Ok(out)
    }

    /// A sync message assembled from the seed chunks under the direction of `u`.
    pub fn message(u: &mut Unstructured<'_>, seed: &Seed) -> Result<Message> {
        let version = if u.arbitrary()? { MessageVersion::V1 } else { MessageVersion::V2 };
        let heads = hashes(u, seed)?;
        let need = hashes(u, seed)?;
        let have = if u.arbitrary()? { vec![Have::default()] } else { Vec::new() };
        let flags = if u.arbitrary()? {
            let mut f = MessageFlags::new();
            for bit in [MessageFlags::SYNC_RESET, MessageFlags::READ_ONLY, MessageFlags::SUPPORTS_SYNC_RESET]
            {
                if u.arbitrary()? {
                    f.set(bit);
                }
            }
            Some(f)
        } else {
            None
        };
        let mut changes = Vec::new();
        for _ in 0..u.int_in_range(1..=4u8)? {
            let mut entry = Vec::new();
            for _ in 0..u.int_in_range(1..=3u8)? {
                entry.extend(part(u, seed)?);
            }
            changes.push(entry);
        }
        Ok(Message { heads, need, have, changes: changes.into(), flags, version })
    }
}

pub mod check {
    use std::collections::BTreeMap;

    use automerge::sync::{Message, State, SyncDoc as _};
    use automerge::{ActorId, Automerge, ChangeHash};
    use chibo_shared::sync::authorship::incoming_changes;

    use crate::panics::catch_dependency;

    /// The changes `doc` gained by receiving `message` (hash and author, from its change graph).
    /// `Err` if automerge panicked (see [`crate::panics`]).
    /// `step` names the call in dependency-panic reports: the relay only applies a message whose
    /// changes `incoming_changes` could list, so a panic there is reachable by an authorised
    /// writer (`receive-listed`) or not at all (`receive-refused`; still reachable in clients).
    pub fn gained(
        doc: &Automerge,
        message: &Message,
        step: &str,
        input: &[u8],
    ) -> Result<Vec<(ChangeHash, ActorId)>, String> {
        let mut doc = doc.clone();
        let before = doc.get_heads();
        catch_dependency("change_check", step, input, || {
            let _ = doc.receive_sync_message(&mut State::new(), message.clone());
        })?;
        if doc.get_heads() == before {
            return Ok(Vec::new());
        }
        let gained: Vec<(ChangeHash, ActorId)> =
            doc.get_changes_meta(&before).into_iter().map(|m| (m.hash, m.actor.into_owned())).collect();
        // What a relay then does with the new changes: save and send them (`save_after`,
        // `generate_sync_message` rebuild them from the op set). A panic there is recorded; the
        // property is still checked on `gained`.
        let _ = catch_dependency("change_check", &format!("{step}-get_changes"), input, || {
            doc.get_changes(&before).len()
        });
        Ok(gained)
    }

    /// The differential property: if `incoming_changes` lists the changes of `message`, every
    /// change that `receive_sync_message` applies to one of `receivers` is in the list, with the
    /// same author. Panics (in chibo code) are crashes; panics inside automerge are reported by
    /// [`crate::panics`] and end the check for this input.
    pub fn check_message(message: &Message, receivers: &[&Automerge], input: &[u8]) {
        let Ok(listed) =
            catch_dependency("change_check", "incoming_changes", input, || incoming_changes(message))
        else {
            return;
        };
        let step = if listed.is_ok() { "receive-listed" } else { "receive-refused" };
        for doc in receivers {
            let Ok(gained) = gained(doc, message, step, input) else { return };
            let Ok(listed) = &listed else { continue };
            let by_hash: BTreeMap<ChangeHash, &ActorId> = listed.iter().map(|c| (c.hash, &c.actor)).collect();
            for (hash, actor) in &gained {
                match by_hash.get(hash) {
                    None => panic!(
                        "change {hash} by {actor} was applied but not listed; listed: {:?}",
                        listed.iter().map(|c| (c.hash.to_string(), c.actor.to_string())).collect::<Vec<_>>()
                    ),
                    Some(a) => assert_eq!(*a, actor, "change {hash} listed with the wrong author"),
                }
            }
        }
    }

    /// Checks `message` against an empty document and the partial seed history.
    pub fn check_against_seed(message: &Message, input: &[u8]) {
        let seed = crate::seed::get();
        check_message(message, &[&Automerge::new(), &seed.partial], input);
    }
}

/// Keeps fuzzing past panics *inside dependencies* (automerge and the crates it uses), which are
/// reported once per panic site instead of stopping the run.
///
/// A panic whose location is in a crate from the cargo registry is caught, its site printed once
/// and the input saved under `artifacts/<target>/dependency-panics/`. Every other panic (chibo's
/// code, the fuzz property's assertions) aborts as usual, so libFuzzer records it as a crash.
/// `CHIBO_FUZZ_STRICT=1` turns this off: every panic is a crash.
pub mod panics {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeSet;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Mutex, Once};

    thread_local! {
        static CATCHING: Cell<bool> = const { Cell::new(false) };
        static SITE: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    fn strict() -> bool {
        std::env::var_os("CHIBO_FUZZ_STRICT").is_some_and(|v| v != "0")
    }

    fn in_dependency(file: &str) -> bool {
        file.contains("/.cargo/registry/") || file.contains("/.cargo/git/")
    }

    fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let site = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                let dependency = site.as_deref().is_some_and(in_dependency);
                if CATCHING.with(Cell::get) && dependency && !strict() {
                    let msg = info
                        .payload()
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| info.payload().downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    SITE.with(|s| *s.borrow_mut() = Some(format!("{} ({msg})", site.unwrap_or_default())));
                } else {
                    previous(info);
                }
            }));
        });
    }

    /// Runs `f`; a panic inside a dependency comes back as `Err(site)` after the input has been
    /// saved (first time per site) under `artifacts/<target>/dependency-panics/`.
    pub fn catch_dependency<T>(
        target: &str,
        step: &str,
        input: &[u8],
        f: impl FnOnce() -> T,
    ) -> Result<T, String> {
        install();
        CATCHING.with(|c| c.set(true));
        let r = catch_unwind(AssertUnwindSafe(f));
        CATCHING.with(|c| c.set(false));
        match r {
            Ok(v) => Ok(v),
            Err(payload) => {
                let Some(site) = SITE.with(|s| s.borrow_mut().take()) else {
                    std::panic::resume_unwind(payload)
                };
                record(target, step, &site, input);
                Err(site)
            }
        }
    }

    fn record(target: &str, step: &str, site: &str, input: &[u8]) {
        static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        let location = site.split(" (").next().unwrap_or(site).to_owned();
        let key = format!("{step} @ {location}");
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.insert(key.clone()) {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("artifacts")
            .join(target)
            .join("dependency-panics");
        let _ = std::fs::create_dir_all(&dir);
        let name: String = location
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        // `…_index.crates.io-<hash>_automerge-0.12.0_src_storage_load.rs_140_26` -> from the crate on.
        let name = match name.find("crates.io-") {
            Some(i) => name[i..].split_once('_').map_or(name.clone(), |(_, rest)| rest.to_owned()),
            None => name,
        };
        let file = dir.join(format!("{step}-{name}"));
        if !file.exists() {
            let _ = std::fs::write(&file, input);
        }
        eprintln!("DEPENDENCY PANIC in {step}: {site}\n  input saved to {}", file.display());
    }
}
