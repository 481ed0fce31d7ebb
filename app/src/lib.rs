//! chibo's web app: a Leptos CSR shell, installable as a PWA, that keeps documents in IndexedDB.
//!
//! Vietnamese first. Only [`storage`] touches IndexedDB; pages and components are views over
//! what it returns and never build storage keys themselves.
//!
//! # Layout
//! - [`App`]: the shell (title, storage status, documents on this device).
//! - [`storage`]: the IndexedDB chunk store ([`storage::IdbStore`]) and persistence request.
//! - `static/` (not Rust): `index.html`, `sw.js`, the manifest and icons; `cargo xtask build-app`
//!   turns them into `app/dist/` with hashed asset names.

use chibo_shared::ids::DocumentId;
use leptos::prelude::*;

pub mod storage;

use storage::{IdbStore, Persistence, StorageError};

/// What the shell shows about local storage once it is open.
#[derive(Debug, Clone)]
struct LocalState {
    persistence: Persistence,
    documents: Vec<DocumentId>,
}

async fn open_local() -> Result<LocalState, StorageError> {
    let store = IdbStore::open().await?;
    let documents = store.list_documents().await?;
    store.close();
    let persistence = storage::request_persistence().await;
    Ok(LocalState { persistence, documents })
}

/// The app shell.
#[component]
pub fn App() -> impl IntoView {
    let local = LocalResource::new(open_local);
    view! {
        <header>
            <h1 data-testid="app-title">"chibo — Diễn đàn chi bộ"</h1>
        </header>
        <main>
            <Suspense fallback=|| view! { <p data-testid="storage-status">"Đang mở bộ nhớ trên máy…"</p> }>
                {move || Suspend::new(async move {
                    match local.await {
                        Ok(state) => view! { <Local state /> }.into_any(),
                        Err(e) => view! {
                            <p data-testid="storage-status" data-state="error" role="alert">
                                {storage_error_text(&e)}
                            </p>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn Local(state: LocalState) -> impl IntoView {
    let (persisted, text) = match state.persistence {
        Persistence::Persisted => ("persisted", "Bộ nhớ trên máy đã mở (IndexedDB), được lưu bền vững."),
        Persistence::BestEffort => (
            "best-effort",
            "Bộ nhớ trên máy đã mở (IndexedDB), nhưng trình duyệt có thể xoá khi thiếu dung lượng.",
        ),
        Persistence::Unsupported => {
            ("unsupported", "Bộ nhớ trên máy đã mở (IndexedDB); trình duyệt không hỗ trợ lưu bền vững.")
        }
    };
    let empty = state.documents.is_empty();
    view! {
        <p data-testid="storage-status" data-state="open" data-persisted=persisted>{text}</p>
        <section>
            <h2>"Tài liệu trên máy này"</h2>
            <Show when=move || empty>
                <p data-testid="no-documents">"Chưa có tài liệu nào."</p>
            </Show>
            <ul data-testid="document-list">
                {state
                    .documents
                    .into_iter()
                    .map(|doc| view! { <li data-testid="document" data-document-id=doc.to_string()>{doc.to_string()}</li> })
                    .collect_view()}
            </ul>
        </section>
    }
}

fn storage_error_text(e: &StorageError) -> String {
    match e {
        StorageError::Unavailable => {
            "Trình duyệt này không có bộ nhớ IndexedDB (chế độ ẩn danh?).".to_owned()
        }
        StorageError::QuotaExceeded => "Bộ nhớ của máy đã đầy.".to_owned(),
        other => format!("Không mở được bộ nhớ trên máy: {other}"),
    }
}
