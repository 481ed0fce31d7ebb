//! The cost of the relay's author check per change: listing the changes of a sync message
//! (`authorship::incoming_changes`, what `Access::may_write` is given) against applying the same
//! message (`receive_sync_message`, which the relay does anyway).
//!
//! `cargo bench -p chibo-shared --bench author_check`

use automerge::sync::{Message, MessageVersion, State, SyncDoc as _};
use automerge::transaction::Transactable as _;
use automerge::{ActorId, Automerge, ROOT};
use chibo_shared::sync::authorship::incoming_changes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// A document of `n` one-key changes by one actor, plus the message carrying its last change
/// and the message carrying all of them (as v1 change chunks).
fn fixture(n: usize) -> (Automerge, Message, Message) {
    let mut am = Automerge::new().with_actor(ActorId::from(b"phone-of-a-member".as_slice()));
    for i in 0..n {
        let mut tx = am.transaction();
        tx.put(ROOT, format!("k{}", i % 50), i64::try_from(i).unwrap_or_default()).ok();
        tx.commit();
    }
    let changes = am.get_changes(&[]);
    let message = |chunks: Vec<Vec<u8>>| Message {
        heads: am.get_heads(),
        need: vec![],
        have: vec![],
        changes: chunks.into(),
        flags: None,
        version: MessageVersion::V1,
    };
    let last = message(vec![changes[n - 1].raw_bytes().to_vec()]);
    let all = message(changes.iter().map(|c| c.raw_bytes().to_vec()).collect());
    let mut base = am.fork_at(&[changes[n - 1].deps()[0]]).unwrap_or_else(|_| Automerge::new());
    base = base.with_actor(ActorId::from(b"relay".as_slice()));
    (base, last, all)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("author_check");
    // One keystroke arriving on a document with 1,000 changes: the everyday case.
    let (base, last, _) = fixture(1000);
    g.throughput(Throughput::Elements(1));
    g.bench_function("list_1_change", |b| b.iter(|| incoming_changes(&last)));
    g.bench_function("apply_1_change", |b| {
        b.iter_batched(
            || (base.clone(), State::new(), last.clone()),
            |(mut doc, mut state, m)| doc.receive_sync_message(&mut state, m),
            BatchSize::SmallInput,
        )
    });
    // A device catching up with 1,000 changes at once.
    let (_, _, all) = fixture(1000);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("list_1000_changes", |b| b.iter(|| incoming_changes(&all)));
    g.bench_function("apply_1000_changes", |b| {
        b.iter_batched(
            || (Automerge::new(), State::new(), all.clone()),
            |(mut doc, mut state, m)| doc.receive_sync_message(&mut state, m),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
