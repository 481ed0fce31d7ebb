//! The sync driver's parts that need no relay, in a real browser: the ordered write queue against
//! IndexedDB (and against a writer that records what overlaps), and the reconnect backoff.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use chibo_app::storage::{IdbStore, StorageError};
use chibo_app::sync::{ChunkWriter, Write, WriteQueue, reconnect_delay};
use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, ChunkKey, ChunkKind, WriteBatch};
use chibo_shared::sync::{Input, WriteId};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn fresh_doc(name: &str) -> DocumentId {
    DocumentId::from_canonical_path(&format!("test/app-sync/{name}/{}", js_sys::Math::random()))
}

fn chunk(bytes: &[u8]) -> Chunk {
    Chunk { key: ChunkKey::incremental(bytes), bytes: bytes.to_vec() }
}

fn write(doc: DocumentId, id: u64, puts: Vec<Chunk>, deletes: Vec<ChunkKey>) -> Write {
    Write { doc, write: WriteId(id), batch: WriteBatch { puts, deletes } }
}

/// Resolves after `ms` on the page's timer.
async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let window = web_sys::window().unwrap();
        window.set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), ms).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        sleep(10).await;
    }
    panic!("timed out waiting for {what}");
}

/// What a queue reported, as (write id, succeeded).
type Reports = Rc<RefCell<Vec<(u64, bool)>>>;

fn recorder() -> (Reports, impl Fn(Input<()>) + 'static) {
    let reports = Rc::new(RefCell::new(Vec::new()));
    let sink = reports.clone();
    let report = move |input: Input<()>| match input {
        Input::Written { write, .. } => sink.borrow_mut().push((write.0, true)),
        Input::WriteFailed { write, .. } => sink.borrow_mut().push((write.0, false)),
        other => panic!("a write queue reported {other:?}"),
    };
    (reports, report)
}

#[wasm_bindgen_test]
async fn writes_land_in_indexeddb_in_the_order_they_were_pushed() {
    let doc = fresh_doc("order");
    let (a, b, c) = (chunk(b"first"), chunk(b"second"), chunk(b"third"));
    let store = Rc::new(IdbStore::open().await.unwrap());
    let (reports, report) = recorder();
    let queue = WriteQueue::new(store.clone(), report);
    // Pushed back to back, as the engine issues them: the second deletes what the first puts (a
    // compaction), so running them out of order would leave `a` behind.
    queue.push(write(doc, 0, vec![a.clone()], vec![]));
    queue.push(write(doc, 1, vec![b.clone()], vec![a.key.clone()]));
    queue.push(write(doc, 2, vec![c.clone()], vec![]));
    assert_eq!(queue.pending(), 3);
    wait_for("three reports", || reports.borrow().len() == 3).await;
    assert_eq!(*reports.borrow(), [(0, true), (1, true), (2, true)]);
    assert_eq!(queue.pending(), 0);

    let mut stored: Vec<ChunkKey> = store.load(doc).await.unwrap().into_iter().map(|c| c.key).collect();
    stored.sort_by_key(ToString::to_string);
    let mut expected = vec![b.key, c.key];
    expected.sort_by_key(ToString::to_string);
    assert_eq!(stored, expected);
    assert!(stored.iter().all(|k| k.kind == ChunkKind::Incremental));
}

/// Records when each write starts and ends; each takes a few timer turns.
struct SlowWriter {
    log: Rc<RefCell<Vec<String>>>,
}

impl ChunkWriter for SlowWriter {
    async fn write(&self, _: DocumentId, batch: &WriteBatch) -> Result<(), StorageError> {
        let name = String::from_utf8(batch.puts[0].bytes.clone()).unwrap();
        self.log.borrow_mut().push(format!("start {name}"));
        sleep(5).await;
        self.log.borrow_mut().push(format!("end {name}"));
        if name == "bad" { Err(StorageError::QuotaExceeded) } else { Ok(()) }
    }
}

#[wasm_bindgen_test]
async fn one_write_at_a_time_each_reported_after_it_completes() {
    let doc = fresh_doc("serial");
    let log = Rc::new(RefCell::new(Vec::new()));
    let report_log = log.clone();
    let queue = WriteQueue::new(SlowWriter { log: log.clone() }, move |input: Input<()>| {
        let entry = match input {
            Input::Written { write, .. } => format!("written {}", write.0),
            Input::WriteFailed { write, error, .. } => format!("failed {} ({error})", write.0),
            other => panic!("unexpected {other:?}"),
        };
        report_log.borrow_mut().push(entry);
    });
    queue.push(write(doc, 0, vec![chunk(b"a")], vec![]));
    queue.push(write(doc, 1, vec![chunk(b"bad")], vec![]));
    sleep(1).await;
    // Pushed while the others run: it still waits its turn.
    queue.push(write(doc, 2, vec![chunk(b"c")], vec![]));
    wait_for("three reports", || log.borrow().len() == 9).await;
    assert_eq!(
        *log.borrow(),
        [
            "start a",
            "end a",
            "written 0",
            "start bad",
            "end bad",
            "failed 1 (device storage is full)",
            "start c",
            "end c",
            "written 2",
        ]
    );
}

#[wasm_bindgen_test]
async fn without_a_store_every_write_fails_in_order() {
    let doc = fresh_doc("no-store");
    let (reports, report) = recorder();
    let missing: Result<IdbStore, StorageError> = Err(StorageError::Unavailable);
    let queue = WriteQueue::new(Rc::new(missing), report);
    for id in 0..3 {
        queue.push(write(doc, id, vec![chunk(&[id as u8])], vec![]));
    }
    wait_for("three reports", || reports.borrow().len() == 3).await;
    assert_eq!(*reports.borrow(), [(0, false), (1, false), (2, false)]);
}

#[wasm_bindgen_test]
fn reconnect_delays_double_from_one_second_to_thirty_with_jitter() {
    for random in [0.0, 0.25, 0.5, 0.999] {
        let delays: Vec<u32> = (0..10).map(|attempt| reconnect_delay(attempt, random)).collect();
        assert!((500..=1_000).contains(&delays[0]), "{delays:?}");
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "never shorter: {delays:?}");
        assert!(delays.iter().all(|d| (500..=30_000).contains(d)), "{delays:?}");
        assert!(delays[9] >= 15_000, "capped near 30 s: {delays:?}");
    }
    assert_eq!(reconnect_delay(0, 0.0), 1_000);
    assert_eq!(reconnect_delay(3, 0.0), 8_000);
    assert_eq!(reconnect_delay(5, 0.0), 30_000);
    assert_eq!(reconnect_delay(u32::MAX, 0.0), 30_000);
    assert_ne!(reconnect_delay(4, 0.1), reconnect_delay(4, 0.9), "jittered");
}
