//! Writes the seed corpora: `cargo run --release --example gen_seeds` (from fuzz/).
//!
//! * corpus/wire_decode: one frame of every protocol message type (and the tagged-bytes and
//!   float-count variants the JS client sends).
//! * corpus/change_check: every real sync message of the seed history (mode byte 0 + message),
//!   every seed piece as a one-entry message, and a few structured-mode inputs (mode byte 1).

use std::fs;
use std::path::Path;

use automerge::sync::{Message as SyncMessage, MessageVersion};
use chibo_fuzz::{seed, structured};
use chibo_shared::ids::{DocumentId, PeerId};
use chibo_shared::wire::{Message, PeerMetadata};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn cbor_map(entries: &[(&str, Cbor)]) -> Vec<u8> {
    // Minimal CBOR writer for the hand-made frames below (definite lengths only).
    fn head(major: u8, n: u64, out: &mut Vec<u8>) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes());
            }
            _ => {
                out.push(m | 27);
                out.extend(n.to_be_bytes());
            }
        }
    }
    fn value(v: &Cbor, out: &mut Vec<u8>) {
        match v {
            Cbor::Text(s) => {
                head(3, s.len() as u64, out);
                out.extend(s.as_bytes());
            }
            Cbor::Bytes(b) => {
                head(2, b.len() as u64, out);
                out.extend(b);
            }
            Cbor::Tagged64(b) => {
                out.extend([0xd8, 64]);
                head(2, b.len() as u64, out);
                out.extend(b);
            }
            Cbor::Float(x) => {
                out.push(0xfb);
                out.extend(x.to_be_bytes());
            }
            Cbor::Uint(n) => head(0, *n, out),
        }
    }
    let mut out = Vec::new();
    head(5, entries.len() as u64, &mut out);
    for (k, v) in entries {
        value(&Cbor::Text((*k).to_owned()), &mut out);
        value(v, &mut out);
    }
    out
}

enum Cbor {
    Text(String),
    Bytes(Vec<u8>),
    Tagged64(Vec<u8>),
    Float(f64),
    Uint(u64),
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let wire = root.join("wire_decode");
    let change = root.join("change_check");
    fs::create_dir_all(&wire).expect("mkdir");
    fs::create_dir_all(&change).expect("mkdir");

    let seed = seed::get();
    let p = |s: &str| PeerId::new(s).expect("peer id");
    let doc = DocumentId::from_bytes([7; 16]);
    let md = Some(PeerMetadata { storage_id: Some("storage-1".into()), is_ephemeral: false });
    let sync = seed.messages.first().cloned().unwrap_or_default();
    let frames = [
        Message::Join { sender: p("peer-a"), supported_versions: vec!["1".into()], metadata: md.clone() },
        Message::Join { sender: p("peer-a"), supported_versions: vec![], metadata: None },
        Message::Peer { sender: p("relay"), target: p("peer-a"), selected_version: "1".into(), metadata: md },
        Message::Leave { sender: p("peer-a") },
        Message::Error { sender: p("relay"), message: "refused".into() },
        Message::Request { sender: p("peer-a"), target: p("relay"), document: doc, data: sync.clone() },
        Message::Sync { sender: p("peer-a"), target: p("relay"), document: doc, data: sync.clone() },
        Message::DocUnavailable { sender: p("relay"), target: p("peer-a"), document: doc },
        Message::Ephemeral {
            sender: p("peer-a"),
            target: p("relay"),
            count: 42,
            session: "sess".into(),
            document: doc,
            data: vec![0xa1, 0x61, 0x78, 0x01],
        },
        Message::Ignored { kind: "remote-heads-changed" },
        Message::Ignored { kind: "remote-subscription-change" },
    ];
    for (i, f) in frames.iter().enumerate() {
        write(&wire, &format!("{i:02}-{}", f.type_name()), &f.encode());
    }
    let url = format!("automerge:{doc}");
    write(
        &wire,
        "20-sync-tagged-url",
        &cbor_map(&[
            ("type", Cbor::Text("sync".into())),
            ("senderId", Cbor::Text("peer-a".into())),
            ("targetId", Cbor::Text("relay".into())),
            ("documentId", Cbor::Text(url)),
            ("data", Cbor::Tagged64(vec![0x42, 0, 0])),
        ]),
    );
    write(
        &wire,
        "21-ephemeral-float-count",
        &cbor_map(&[
            ("type", Cbor::Text("ephemeral".into())),
            ("senderId", Cbor::Text("peer-a".into())),
            ("targetId", Cbor::Text("relay".into())),
            ("count", Cbor::Float(3.0)),
            ("sessionId", Cbor::Text("s".into())),
            ("documentId", Cbor::Text(doc.to_string())),
            ("data", Cbor::Bytes(vec![1])),
        ]),
    );
    write(
        &wire,
        "22-ephemeral-uint-count",
        &cbor_map(&[
            ("type", Cbor::Text("ephemeral".into())),
            ("senderId", Cbor::Text("peer-a".into())),
            ("targetId", Cbor::Text("relay".into())),
            ("count", Cbor::Uint(u64::MAX)),
            ("sessionId", Cbor::Text("s".into())),
            ("documentId", Cbor::Text(doc.to_string())),
            ("data", Cbor::Bytes(vec![])),
        ]),
    );

    // change_check, mode 0: real messages and one message per seed piece.
    for (i, m) in seed.messages.iter().enumerate() {
        write(&change, &format!("msg-{i:02}"), &[&[0u8][..], m].concat());
    }
    for (i, piece) in seed.pieces.iter().enumerate() {
        let m = SyncMessage {
            heads: seed.full.get_heads(),
            need: vec![],
            have: vec![],
            changes: vec![piece.clone()].into(),
            flags: None,
            version: MessageVersion::V2,
        };
        write(&change, &format!("piece-{i:02}"), &[&[0u8][..], &m.encode()].concat());
    }
    // change_check, mode 1: a few structured inputs (each byte string is a valid choice list).
    for i in 0..32u8 {
        let input: Vec<u8> = (0..64u8).map(|j| i.wrapping_mul(37).wrapping_add(j.wrapping_mul(11))).collect();
        write(&change, &format!("structured-{i:02}"), &[&[1u8][..], &input].concat());
    }
    // Sanity: the structured builder makes messages from the seed.
    let mut u = arbitrary::Unstructured::new(&[0u8; 64]);
    let _ = structured::message(&mut u, seed);
    println!(
        "wrote {} wire_decode seeds and {} change_check seeds under {}",
        fs::read_dir(&wire).map(|d| d.count()).unwrap_or(0),
        fs::read_dir(&change).map(|d| d.count()).unwrap_or(0),
        root.display()
    );
}
