//! chibo's web app: a Leptos CSR app, installable as a PWA, that keeps documents in IndexedDB and
//! syncs them with the relay, offline first.
//!
//! Vietnamese first. Only [`storage`] touches IndexedDB and only [`sync`] touches the socket;
//! pages and components are views over what they return and never build storage keys or automerge
//! field names themselves (those live in `chibo_shared::schema`).
//!
//! # Layout
//! - [`App`]: the shell: header, navigation, the sync status bar and the routes.
//! - [`pages`]: one file per page: `/` the branch, `/dien-dan` the forum and its minutes,
//!   `/tai-lieu` the documents on this device.
//! - [`components`]: views several pages use (the sync status bar).
//! - [`sync`]: the shared sync engine driven over a WebSocket to the relay; reactive status.
//! - [`storage`]: the IndexedDB chunk store ([`storage::IdbStore`]) and persistence request.
//! - [`edit`]: textarea edits as character splices (pure, tested in the browser).
//! - `static/` (not Rust): `index.html`, `sw.js`, the manifest and icons; `cargo xtask build-app`
//!   turns them into `app/dist/` with hashed asset names.

use chibo_shared::ids::DocumentId;
use chibo_shared::schema::demo::{demo_branch_id, demo_forum_id};
use chibo_shared::schema::{DocKind, DocPath, genesis_change_bytes};
use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

pub mod components;
pub mod edit;
pub mod pages;
pub mod storage;
pub mod sync;

use components::SyncStatusBar;
use pages::{DocumentsPage, ForumPage, HomePage, NotFound};
use sync::SyncHandle;

/// The branch the app shows and the documents it opens on start. Today that is the demo branch
/// `chibo-server init --demo` stores; enrolment will name the member's own branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branch {
    pub profile: DocumentId,
    pub forum: DocumentId,
}

impl Branch {
    pub fn demo() -> Self {
        let (branch, forum) = (demo_branch_id(), demo_forum_id());
        Self {
            profile: DocPath::BranchProfile { branch }.document_id(),
            forum: DocPath::Forum { branch, forum }.document_id(),
        }
    }

    /// The documents to open on start, each with its kind's genesis change: on an offline first
    /// start the pages still have the documents' structure to show and edit, and what is typed
    /// merges with the relay's copy later (both start from the same genesis).
    fn seeded_documents(&self) -> Vec<(DocumentId, Option<Vec<u8>>)> {
        vec![
            (self.profile, Some(genesis_change_bytes(DocKind::BranchProfile))),
            (self.forum, Some(genesis_change_bytes(DocKind::Forum))),
        ]
    }
}

/// The app: starts sync, then routes.
#[component]
pub fn App() -> impl IntoView {
    let branch = Branch::demo();
    let sync = SyncHandle::start(branch.seeded_documents());
    provide_context(branch);
    provide_context(sync);
    leptos::task::spawn_local(async {
        storage::request_persistence().await;
    });
    view! {
        <Router>
            <header>
                <h1 data-testid="app-title">"chibo — Diễn đàn chi bộ"</h1>
                <nav>
                    <A href="/">"Chi bộ"</A>
                    <A href="/dien-dan">"Diễn đàn"</A>
                    <A href="/tai-lieu">"Tài liệu trên máy"</A>
                </nav>
                <SyncStatusBar />
            </header>
            <main>
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("/") view=HomePage />
                    <Route path=path!("/dien-dan") view=ForumPage />
                    <Route path=path!("/tai-lieu") view=DocumentsPage />
                </Routes>
            </main>
        </Router>
    }
}
