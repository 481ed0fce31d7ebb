//! Store IO for an engine run on tokio, shared by the relay and the native client: loads run
//! concurrently, writes run one at a time in the order the engine asked for them, and each result
//! goes back to the engine as an [`Input`].

use std::sync::Arc;

use chibo_shared::ids::DocumentId;
use chibo_shared::storage::WriteBatch;
use chibo_shared::sync::{Input, WriteId};
use tokio::sync::mpsc;

use crate::store::Store;

/// A write the engine asked for.
pub(crate) struct Write {
    pub(crate) doc: DocumentId,
    pub(crate) write: WriteId,
    pub(crate) batch: WriteBatch,
}

/// Loads `doc` in the background and reports the result.
pub(crate) fn spawn_load<P: Send + 'static>(
    store: Arc<dyn Store>,
    doc: DocumentId,
    report: impl FnOnce(Input<P>) + Send + 'static,
) {
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
}

/// Carries out writes in order until every sender is gone, reporting each once durable.
pub(crate) async fn write_loop<P>(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Write>,
    report: impl Fn(Input<P>) + Send + 'static,
) {
    while let Some(Write { doc, write, batch }) = rx.recv().await {
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
