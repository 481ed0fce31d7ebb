//! Replays change_check inputs step by step and says which step panics:
//! `cargo run --release --example triage -- [--fix-checksums] FILE...` (from fuzz/).
//!
//! `--out DIR` also writes each decoded sync message (`automerge::sync::Message::encode`, the
//! bytes a `sync` frame carries) to `DIR/<input name>.msg`; shared/tests/fuzz_regressions/ holds
//! such files.
//!
//! `--minimize DIR` shrinks each input while keeping its *panic signature* (the step and source
//! location of the first panic: `cargo fuzz tmin` keeps any crash, and the structured inputs
//! then drift to the commonest automerge panic). It first deletes byte ranges of the fuzz input,
//! then drops entries, chunks, heads, needs, haves and flags of the resulting message, and writes
//! `DIR/<name>.msg` (the encoded sync message) and `DIR/<name>` (the same as a mode-0 fuzz
//! input, replayable with `cargo fuzz run change_check DIR/<name>`).
//!
//! `--fix-checksums` rewrites the checksum of every well formed chunk in the message's `changes`
//! before replaying, to see whether automerge's own receive path (which checks checksums) is
//! reachable with the same bytes.

use std::panic::{AssertUnwindSafe, catch_unwind};

use arbitrary::Unstructured;
use automerge::Automerge;
use automerge::sync::{Message, State, SyncDoc as _};
use chibo_fuzz::{seed, structured};
use chibo_shared::sync::authorship::incoming_changes;

fn message(data: &[u8]) -> Option<Message> {
    let (&mode, rest) = data.split_first()?;
    if mode & 1 == 0 {
        Message::decode(rest).ok()
    } else {
        let m = structured::message(&mut Unstructured::new(rest), seed::get()).ok()?;
        Message::decode(&m.encode()).ok()
    }
}

fn fix(m: &mut Message) {
    let entries: Vec<Vec<u8>> = m
        .changes
        .iter()
        .map(|e| {
            let cs = structured::chunks(e);
            let whole: usize = cs.iter().map(|(_, b)| structured::wrap(0, b).len()).sum();
            if cs.is_empty() || whole != e.len() {
                return e.to_vec();
            }
            cs.iter().flat_map(|(k, b)| if *k == 2 { Vec::new() } else { structured::wrap(*k, b) }).collect()
        })
        .collect();
    m.changes = entries.into();
}

fn step<T: std::fmt::Debug>(name: &str, f: impl FnOnce() -> T) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => println!("  {name}: {v:?}"),
        Err(_) => println!("  {name}: PANICKED"),
    }
}

fn main() {
    let mut fix_sums = false;
    let mut out: Option<String> = None;
    let mut minimize: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--fix-checksums" {
            fix_sums = true;
            continue;
        }
        if arg == "--minimize" {
            minimize = args.next();
            continue;
        }
        if arg == "--out" {
            out = args.next();
            if let Some(dir) = &out {
                // The second receiver of change_check, for the replay in shared/tests.
                std::fs::write(format!("{dir}/partial-seed.automerge"), seed::get().partial.save())
                    .expect("write partial seed");
            }
            continue;
        }
        let data = std::fs::read(&arg).expect("read input");
        println!("{arg}:");
        if let Some(dir) = &minimize {
            minimize_one(&arg, &data, dir);
            continue;
        }
        let Some(mut m) = message(&data) else {
            println!("  not a sync message");
            continue;
        };
        if fix_sums {
            fix(&mut m);
        }
        println!("  message: {}", hex(&m.clone().encode()));
        if let Some(dir) = &out {
            let name = std::path::Path::new(&arg).file_name().map(|n| n.to_string_lossy().into_owned());
            let path = format!("{dir}/{}.msg", name.unwrap_or_default());
            std::fs::write(&path, m.clone().encode()).expect("write message");
            println!("  wrote {path}");
        }
        for (i, e) in m.changes.iter().enumerate() {
            println!(
                "  changes[{i}]: {} bytes, chunks {:?}",
                e.len(),
                structured::chunks(e).iter().map(|(k, b)| (*k, b.len())).collect::<Vec<_>>()
            );
        }
        step("incoming_changes", || incoming_changes(&m).map(|l| l.len()));
        let s = seed::get();
        for (name, doc) in [("empty", Automerge::new()), ("partial", s.partial.clone())] {
            step(&format!("receive_sync_message({name})"), || {
                let mut d = doc.clone();
                let before = d.get_heads();
                let r = d.receive_sync_message(&mut State::new(), m.clone()).map_err(|e| e.to_string());
                (r, d.get_changes_meta(&before).len())
            });
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

thread_local! {
    static SITE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn quiet_hook() {
    std::panic::set_hook(Box::new(|info| {
        let site = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let site = site.map(|s| {
            s.rsplit("index.crates.io-")
                .next()
                .map(|t| t.split_once('/').map_or(t, |(_, r)| r).to_owned())
                .unwrap_or(s)
        });
        SITE.with(|c| *c.borrow_mut() = site);
    }));
}

fn run<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| SITE.with(|c| c.borrow_mut().take()).unwrap_or_default())
}

/// The step and location of the first panic the change_check steps hit on `m`, if any.
fn signature(m: &Message) -> Option<String> {
    let m = match run(|| Message::decode(&m.clone().encode())) {
        Ok(Ok(m)) => m,
        Ok(Err(_)) => return None,
        Err(site) => return Some(format!("decode @ {site}")),
    };
    let listed = match run(|| incoming_changes(&m)) {
        Ok(l) => l.is_ok(),
        Err(site) => return Some(format!("incoming_changes @ {site}")),
    };
    let step = if listed { "receive-listed" } else { "receive-refused" };
    for (name, doc) in [("empty", Automerge::new()), ("partial", seed::get().partial.clone())] {
        let mut d = doc;
        let before = d.get_heads();
        if let Err(site) = run(|| d.receive_sync_message(&mut State::new(), m.clone())) {
            return Some(format!("{step}({name}) @ {site}"));
        }
        if let Err(site) = run(|| d.get_changes(&before).len()) {
            return Some(format!("{step}({name})-get_changes @ {site}"));
        }
    }
    None
}

fn input_signature(data: &[u8]) -> Option<String> {
    let m = run(|| message(data)).ok().flatten()?;
    signature(&m)
}

/// Delta debugging over byte ranges, keeping `keep(candidate)` true.
fn ddmin(mut data: Vec<u8>, keep: &dyn Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut n = 2usize;
    while data.len() >= 2 {
        let chunk = data.len().div_ceil(n);
        let mut reduced = false;
        let mut start = 0;
        while start < data.len() {
            let end = (start + chunk).min(data.len());
            let candidate: Vec<u8> = [&data[..start], &data[end..]].concat();
            if keep(&candidate) {
                data = candidate;
                reduced = true;
                n = (n - 1).max(2);
                break;
            }
            start = end;
        }
        if !reduced {
            if n >= data.len() {
                break;
            }
            n = (n * 2).min(data.len());
        }
    }
    data
}

fn minimize_one(path: &str, data: &[u8], dir: &str) {
    quiet_hook();
    let Some(sig) = input_signature(data) else {
        println!("  no panic");
        return;
    };
    println!("  signature: {sig}");
    // 1. The fuzz input itself (keeping its mode byte).
    let min =
        ddmin(data[1..].to_vec(), &|c| input_signature(&[&data[..1], c].concat()).as_deref() == Some(&sig));
    let input = [&data[..1], &min[..]].concat();
    let Some(mut m) = run(|| message(&input)).ok().flatten() else { return };
    // 2. The message: drop whole parts while the signature holds.
    let same = |m: &Message| signature(m).as_deref() == Some(&sig);
    let mut tries: Vec<Box<dyn Fn(&Message) -> Option<Message>>> = vec![
        Box::new(|m| (!m.heads.is_empty()).then(|| Message { heads: vec![], ..m.clone() })),
        Box::new(|m| (!m.need.is_empty()).then(|| Message { need: vec![], ..m.clone() })),
        Box::new(|m| (!m.have.is_empty()).then(|| Message { have: vec![], ..m.clone() })),
        Box::new(|m| m.flags.is_some().then(|| Message { flags: None, ..m.clone() })),
    ];
    for i in 0..8 {
        tries.push(Box::new(move |m| {
            let entries: Vec<Vec<u8>> = m.changes.iter().map(<[u8]>::to_vec).collect();
            (i < entries.len() && entries.len() > 1).then(|| {
                let mut e = entries;
                e.remove(i);
                Message { changes: e.into(), ..m.clone() }
            })
        }));
        for j in 0..8 {
            tries.push(Box::new(move |m| {
                let entries: Vec<Vec<u8>> = m.changes.iter().map(<[u8]>::to_vec).collect();
                let e = entries.get(i)?;
                let cs = structured::chunks(e);
                let whole: usize = cs.iter().map(|(_, b)| structured::wrap(0, b).len()).sum();
                if j >= cs.len() || cs.len() < 2 || whole != e.len() {
                    return None;
                }
                // Rebuild the entry from its raw chunks, without chunk j.
                let mut rest = e.as_slice();
                let mut out = Vec::new();
                for (k, (_, body)) in cs.iter().enumerate() {
                    let len = structured::wrap(0, body).len();
                    if k != j {
                        out.extend_from_slice(&rest[..len]);
                    }
                    rest = &rest[len..];
                }
                let mut es = entries.clone();
                es[i] = out;
                Some(Message { changes: es.into(), ..m.clone() })
            }));
        }
    }
    loop {
        let mut progressed = false;
        for t in &tries {
            if let Some(c) = t(&m) {
                if same(&c) {
                    m = c;
                    progressed = true;
                }
            }
        }
        if !progressed {
            break;
        }
    }
    let name =
        std::path::Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = m.clone().encode();
    std::fs::write(format!("{dir}/{name}.msg"), &bytes).expect("write message");
    std::fs::write(format!("{dir}/{name}"), [&[0u8][..], &bytes].concat()).expect("write input");
    println!(
        "  input {} -> {} bytes; message {} bytes, {} entries, chunks {:?}",
        data.len(),
        input.len(),
        bytes.len(),
        m.changes.len(),
        m.changes
            .iter()
            .map(|e| structured::chunks(e).iter().map(|(k, b)| (*k, b.len())).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    println!("  kept signature: {:?}", signature(&m));
}
