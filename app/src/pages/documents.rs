//! `/tai-lieu`: the documents stored on this device, what each is, and whether it is saved and
//! synchronised; and whether the browser keeps the storage through disk pressure.

use chibo_shared::ids::DocumentId;
use chibo_shared::schema::demo::demo_paths;
use chibo_shared::schema::{BranchProfile, DocPath, hydrate};
use leptos::prelude::*;

use crate::storage::{self, IdbStore, Persistence, StorageError};
use crate::sync::SyncHandle;
use crate::use_branch;

/// What the page shows about local storage once it is open.
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

#[component]
pub fn DocumentsPage() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let local = LocalResource::new(open_local);
    // Saving a document for the first time adds it to the list.
    let refresh = Memo::new(move |_| {
        let branch = use_branch();
        let (profile, forum) = (branch.profile(), branch.forum_doc().unwrap_or(branch.plan()));
        sync.track(profile);
        sync.track(forum);
        (sync.doc_sync(profile).saved, sync.doc_sync(forum).saved)
    });
    Effect::new(move |previous: Option<(bool, bool)>| {
        let now = refresh.get();
        if previous.is_some_and(|p| p != now) {
            local.refetch();
        }
        now
    });
    view! {
        <h2>"Tài liệu trên máy này"</h2>
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
        <Show when=move || empty>
            <p data-testid="no-documents">"Chưa có tài liệu nào."</p>
        </Show>
        <ul data-testid="document-list">
            {state.documents.into_iter().map(|doc| view! { <DocumentRow doc /> }).collect_view()}
        </ul>
    }
}

#[component]
fn DocumentRow(doc: DocumentId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let profile = use_branch().profile();
    let label = move || {
        sync.track(profile);
        let names = sync
            .read(profile, |am| hydrate::<BranchProfile>(am).ok())
            .flatten()
            .map(|p| p.display_names)
            .unwrap_or_default();
        let path = demo_paths().into_iter().find(|p| p.document_id() == doc);
        match path {
            Some(path) => {
                let owner = path.member().and_then(|m| names.get(&m.to_string()).cloned());
                match owner {
                    Some(name) => format!("{} — {name}", kind_label(&path)),
                    None => kind_label(&path),
                }
            }
            None => "Tài liệu".to_owned(),
        }
    };
    let state = move || {
        sync.track(doc);
        let s = sync.doc_sync(doc);
        match s.storage_error {
            Some(_) => ("storage-error", "lỗi lưu trên máy"),
            None if !s.loaded => ("not-open", "chưa mở"),
            None if !s.saved => ("saving", "đang lưu"),
            None if s.acknowledged => ("synced", "đã đồng bộ"),
            None => ("unsynced", "chưa đồng bộ"),
        }
    };
    view! {
        <li data-testid="document" data-document-id=doc.to_string() data-sync=move || state().0>
            <strong>{label}</strong>
            " · "
            <span data-testid="document-sync">{move || state().1}</span>
            <br />
            <small>{doc.to_string()}</small>
        </li>
    }
}

fn kind_label(path: &DocPath) -> String {
    match path {
        DocPath::BranchProfile { .. } => "Hồ sơ chi bộ".to_owned(),
        DocPath::Forum { .. } => "Diễn đàn".to_owned(),
        DocPath::SelfAssessment { .. } => "Bản tự kiểm điểm".to_owned(),
        DocPath::Resolution { .. } => "Nghị quyết".to_owned(),
        DocPath::Ballot { .. } => "Phiếu biểu quyết".to_owned(),
        DocPath::PersonalPlan { year, .. } => format!("Kế hoạch cá nhân năm {year}"),
        DocPath::MonthlyMeeting { month, .. } => {
            format!("Sinh hoạt chi bộ tháng {}/{}", month.month(), month.year())
        }
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
