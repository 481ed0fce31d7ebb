//! Store writes carried out one at a time, in the order the engine issued them, each reported back
//! only once its IndexedDB transaction has completed: the engine's "durable before sent" and its
//! compaction (which deletes chunks an earlier write put) both rely on that order.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;

use chibo_shared::ids::DocumentId;
use chibo_shared::storage::WriteBatch;
use chibo_shared::sync::{Input, WriteId};

use crate::storage::{IdbStore, StorageError};

/// Somewhere chunks can be written; [`IdbStore`] in the app, a stand-in in tests.
pub trait ChunkWriter: 'static {
    /// Resolves once the batch is durable (or failed, leaving nothing of it behind).
    fn write(&self, doc: DocumentId, batch: &WriteBatch) -> impl Future<Output = Result<(), StorageError>>;
}

impl ChunkWriter for IdbStore {
    fn write(&self, doc: DocumentId, batch: &WriteBatch) -> impl Future<Output = Result<(), StorageError>> {
        IdbStore::write(self, doc, batch)
    }
}

impl<W: ChunkWriter> ChunkWriter for Rc<W> {
    fn write(&self, doc: DocumentId, batch: &WriteBatch) -> impl Future<Output = Result<(), StorageError>> {
        W::write(self, doc, batch)
    }
}

/// A store that did not open: every write fails with the reason, so the engine keeps the changes
/// in memory and sends them to the relay without waiting for a disk.
impl<W: ChunkWriter> ChunkWriter for Result<W, StorageError> {
    async fn write(&self, doc: DocumentId, batch: &WriteBatch) -> Result<(), StorageError> {
        match self {
            Ok(w) => w.write(doc, batch).await,
            Err(e) => Err(e.clone()),
        }
    }
}

/// A write the engine asked for ([`chibo_shared::sync::Effect::Write`]).
#[derive(Debug, Clone)]
pub struct Write {
    pub doc: DocumentId,
    pub write: WriteId,
    pub batch: WriteBatch,
}

/// Runs writes one at a time in push order on the page's task queue and reports each as
/// [`Input::Written`] or [`Input::WriteFailed`].
pub struct WriteQueue<W> {
    inner: Rc<Inner<W>>,
}

struct Inner<W> {
    writer: W,
    queue: RefCell<VecDeque<Write>>,
    running: Cell<bool>,
    in_flight: Cell<bool>,
    report: Box<dyn Fn(Input<()>)>,
}

impl<W: ChunkWriter> WriteQueue<W> {
    /// `report` is called once per write, in order, after its transaction has completed.
    pub fn new(writer: W, report: impl Fn(Input<()>) + 'static) -> Self {
        let inner = Inner {
            writer,
            queue: RefCell::new(VecDeque::new()),
            running: Cell::new(false),
            in_flight: Cell::new(false),
            report: Box::new(report),
        };
        Self { inner: Rc::new(inner) }
    }

    /// Queues a write behind every write pushed before it.
    pub fn push(&self, write: Write) {
        self.inner.queue.borrow_mut().push_back(write);
        if !self.inner.running.replace(true) {
            wasm_bindgen_futures::spawn_local(run(self.inner.clone()));
        }
    }

    /// Writes queued or in flight (not yet reported).
    pub fn pending(&self) -> usize {
        self.inner.queue.borrow().len() + usize::from(self.inner.in_flight.get())
    }
}

async fn run<W: ChunkWriter>(inner: Rc<Inner<W>>) {
    loop {
        // Not borrowed across the await or the report: `report` may push more writes.
        let next = inner.queue.borrow_mut().pop_front();
        let Some(Write { doc, write, batch }) = next else { break };
        inner.in_flight.set(true);
        let input = match inner.writer.write(doc, &batch).await {
            Ok(()) => Input::Written { doc, write },
            Err(e) => Input::WriteFailed { doc, write, error: e.to_string() },
        };
        inner.in_flight.set(false);
        (inner.report)(input);
    }
    inner.running.set(false);
}
