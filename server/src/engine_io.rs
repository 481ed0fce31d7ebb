//! Store IO for an engine run on tokio, shared by the relay and the native client: loads run
//! concurrently, writes run one at a time in the order the engine asked for them, and each result
//! goes back to the engine as an [`Input`] through the host's `report` callback.

use std::sync::Arc;

use chibo_shared::ids::DocumentId;
use chibo_shared::storage::WriteBatch;
use chibo_shared::sync::{Effect, Input, WriteId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::Store;

/// How results reach the engine's task.
type Report<P> = Arc<dyn Fn(Input<P>) + Send + Sync>;

/// Carries out an engine's `Load` and `Write` effects against a [`Store`].
pub(crate) struct StoreIo<P> {
    store: Arc<dyn Store>,
    writes: mpsc::UnboundedSender<(DocumentId, WriteId, WriteBatch)>,
    report: Report<P>,
}

impl<P: Send + 'static> StoreIo<P> {
    /// Starts the writer task. It ends once the `StoreIo` is dropped and every queued write is
    /// done, so dropping it on shutdown still finishes what the engine asked for.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        report: impl Fn(Input<P>) + Send + Sync + 'static,
    ) -> (Self, JoinHandle<()>) {
        let report: Report<P> = Arc::new(report);
        let (writes, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(store.clone(), rx, report.clone()));
        (Self { store, writes, report }, writer)
    }

    /// Carries out `effect` if it is storage IO; hands any other effect back.
    pub(crate) fn carry_out(&self, effect: Effect) -> Option<Effect> {
        match effect {
            Effect::Load { doc } => {
                let (store, report) = (self.store.clone(), self.report.clone());
                tokio::spawn(async move {
                    let input = match store.load(doc).await {
                        Ok(chunks) => Input::Loaded { doc, chunks },
                        Err(e) => {
                            tracing::error!(%doc, error = %e, "loading a document failed");
                            Input::LoadFailed { doc, error: e.to_string() }
                        }
                    };
                    report(input);
                });
                None
            }
            Effect::Write { doc, write, batch } => {
                let _ = self.writes.send((doc, write, batch));
                None
            }
            other => Some(other),
        }
    }
}

/// Carries out writes in order until every sender is gone, reporting each once durable.
async fn write_loop<P>(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<(DocumentId, WriteId, WriteBatch)>,
    report: Report<P>,
) {
    while let Some((doc, write, batch)) = rx.recv().await {
        let input = match store.write(doc, batch).await {
            Ok(()) => Input::Written { doc, write },
            Err(e) => {
                tracing::error!(%doc, error = %e, "write failed");
                Input::WriteFailed { doc, write, error: e.to_string() }
            }
        };
        report(input);
    }
}
