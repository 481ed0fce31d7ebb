//! chibo's web app: a Leptos CSR app, installable as a PWA, that keeps documents in IndexedDB and
//! syncs them with the relay, offline first.
//!
//! Vietnamese first, English second ([`i18n`]). Only [`storage`] touches IndexedDB, only [`sync`]
//! touches the socket and only [`api`] calls the relay's JSON API; pages and components are views
//! over what they return and never build storage keys or automerge field names themselves (those
//! live in `chibo_shared::schema`).
//!
//! # Layout
//! - [`App`]: opens this device's enrolment ([`account`]); without one, the join page; with one,
//!   the member's shell: header, navigation, the sync status bar and the routes.
//! - [`pages`]: one file per page: `/tham-gia` join, `/` what is due, `/tu-kiem-diem` the
//!   self-assessment, `/ke-hoach` the personal plan (commitment, monthly progress), `/bieu-quyet`
//!   the vote on the resolution, `/dien-dan` the forum and its minutes, `/tai-lieu` the documents on this
//!   device.
//! - [`components`]: views several pages use (the sync status bar, the text editor).
//! - [`sync`]: the shared sync engine driven over a WebSocket to the relay; reactive status.
//! - [`storage`]: the IndexedDB chunk store ([`storage::IdbStore`]), the device record, and the
//!   persistence request.
//! - [`account`]: joining, the device key, sessions, the member's documents.
//! - [`edit`]: textarea edits as character splices (pure, tested in the browser).
//! - `static/` (not Rust): `index.html`, `sw.js`, the manifest and icons; `cargo xtask build-app`
//!   turns them into `app/dist/` with hashed asset names.

use std::rc::Rc;

use chibo_shared::catalogue::Lang;
use chibo_shared::ids::{BranchId, DocumentId, ForumId, MemberId};
use chibo_shared::schema::{DocPath, genesis_change_bytes};
use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

pub mod account;
pub mod api;
pub mod components;
pub mod edit;
pub mod i18n;
pub mod pages;
pub mod storage;
pub mod sync;

use account::Account;
use components::SyncStatusBar;
use i18n::{LangSignal, use_texts};
use pages::{AssessmentPage, DocumentsPage, ForumPage, HomePage, JoinPage, NotFound, PlanPage, VotePage};
use storage::IdbStore;
use sync::{Prepare, SyncHandle};

/// Where the member stands: their branch, themselves, this year, the branch's current forum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branch {
    pub branch: BranchId,
    pub member: MemberId,
    pub year: u16,
    pub forum: Option<ForumId>,
}

impl Branch {
    pub fn profile(&self) -> DocumentId {
        DocPath::BranchProfile { branch: self.branch }.document_id()
    }

    pub fn forum_doc(&self) -> Option<DocumentId> {
        self.forum.map(|forum| DocPath::Forum { branch: self.branch, forum }.document_id())
    }

    pub fn assessment(&self) -> Option<DocumentId> {
        self.forum.map(|forum| {
            DocPath::SelfAssessment { branch: self.branch, forum, member: self.member }.document_id()
        })
    }

    pub fn plan(&self) -> DocumentId {
        DocPath::PersonalPlan { branch: self.branch, member: self.member, year: self.year }.document_id()
    }
}

/// The member's [`Branch`] (tracked: the forum appears once the relay lists it).
pub fn use_branch() -> Branch {
    expect_context::<RwSignal<Branch>>().get()
}

/// The device's enrolment, for pages that sign or show who is signed in.
pub fn use_account() -> Rc<Account> {
    account_handle().get_value()
}

/// A `Copy` handle on the device's enrolment, for memos and effects.
pub fn account_handle() -> StoredValue<Rc<Account>, LocalStorage> {
    expect_context::<StoredValue<Rc<Account>, LocalStorage>>()
}

#[derive(Clone)]
enum Start {
    Opening,
    Join(Rc<IdbStore>),
    Member(Rc<Account>),
    Failed(String),
}

/// The app: finds this device's enrolment, then shows the join page or the member's shell.
#[component]
pub fn App() -> impl IntoView {
    let lang = RwSignal::new(i18n::stored_lang());
    i18n::store_lang(lang.get_untracked());
    provide_context(LangSignal(lang));
    let start = RwSignal::new_local(Start::Opening);
    leptos::task::spawn_local(async move {
        let opened = match IdbStore::open().await {
            Ok(store) => {
                let store = Rc::new(store);
                match Account::load(store.clone()).await {
                    Ok(Some(account)) => Start::Member(account),
                    Ok(None) => Start::Join(store),
                    Err(e) => Start::Failed(e.to_string()),
                }
            }
            Err(e) => Start::Failed(e.to_string()),
        };
        start.set(opened);
    });
    leptos::task::spawn_local(async {
        storage::request_persistence().await;
    });
    let joined = Callback::new(move |account: Rc<Account>| start.set(Start::Member(account)));
    view! {
        <Router>
            {move || match start.get() {
                Start::Opening => view! { <p data-testid="app-loading">{move || use_texts().loading_app}</p> }.into_any(),
                Start::Join(store) => view! {
                    <header>
                        <h1 data-testid="app-title">{move || use_texts().app_title}</h1>
                        <LangSwitch />
                    </header>
                    <main><JoinPage store joined /></main>
                }
                .into_any(),
                Start::Member(account) => view! { <MemberShell account /> }.into_any(),
                Start::Failed(why) => view! {
                    <p data-testid="app-error" role="alert">{format!("{} ({why})", use_texts().storage_full)}</p>
                }
                .into_any(),
            }}
        </Router>
    }
}

/// Switches between Vietnamese and English.
#[component]
fn LangSwitch() -> impl IntoView {
    let lang = expect_context::<LangSignal>().0;
    let flip = move |_| {
        let next = if lang.get_untracked() == Lang::Vi { Lang::En } else { Lang::Vi };
        i18n::store_lang(next);
        lang.set(next);
    };
    view! {
        <button type="button" class="lang" data-testid="switch-language" on:click=flip>
            {move || use_texts().switch_language}
        </button>
    }
}

fn current_year() -> u16 {
    u16::try_from(js_sys::Date::new_0().get_full_year()).unwrap_or(2026)
}

/// The signed-in member's app: sync with the account's credentials, navigation and routes.
#[component]
fn MemberShell(account: Rc<Account>) -> impl IntoView {
    let year = current_year();
    let first_forum = account.forums().first().copied();
    let (Some(branch), Some(member)) = (account.branch(), account.member()) else {
        return view! { <p data-testid="app-error" role="alert">"?"</p> }.into_any();
    };
    let context = RwSignal::new(Branch { branch, member, year, forum: first_forum });
    let docs = account.documents(year);
    for (path, _) in &docs {
        account.want(path);
    }
    let seeded = docs.iter().map(|(p, k)| (p.document_id(), Some(genesis_change_bytes(*k)))).collect();
    let for_sync = account.clone();
    let prepare: Prepare = Rc::new(move || {
        let account = for_sync.clone();
        Box::pin(async move {
            account.prepare_sync().await.map_err(|e| match e {
                api::ApiError::Refused { status, message } => format!("{status} {message}"),
                other => other.to_string(),
            })
        })
    });
    let sync = SyncHandle::start(account.identity(), seeded, Some(prepare));
    provide_context(sync);
    provide_context(context);
    provide_context(StoredValue::new_local(account.clone()));
    // Forums the relay lists later (joined offline, or a new forum): open their documents.
    let watcher = account.clone();
    Effect::new(move |_| {
        let _ = sync.connection();
        let forums = watcher.forums();
        let known = context.get_untracked().forum;
        if known.is_none() && !forums.is_empty() {
            context.update(|b| b.forum = forums.first().copied());
            let account = watcher.clone();
            leptos::task::spawn_local(async move {
                let docs = account.documents(year);
                for (path, _) in &docs {
                    account.want(path);
                }
                let _ = account.register().await;
                for (path, kind) in docs {
                    sync.open(path.document_id(), Some(genesis_change_bytes(kind)));
                }
            });
        }
    });
    let t = use_texts;
    view! {
        <header>
            <h1 data-testid="app-title">{move || t().app_title}</h1>
            <nav>
                <A href="/">{move || t().nav_home}</A>
                <A href="/tu-kiem-diem">{move || t().nav_assessment}</A>
                <A href="/ke-hoach">{move || t().nav_plan}</A>
                <A href="/bieu-quyet">{move || t().nav_vote}</A>
                <A href="/dien-dan">{move || t().nav_forum}</A>
                <A href="/tai-lieu">{move || t().nav_documents}</A>
            </nav>
            <LangSwitch />
            <SyncStatusBar />
        </header>
        <main>
            <Routes fallback=|| view! { <NotFound /> }>
                <Route path=path!("/") view=HomePage />
                <Route path=path!("/tham-gia") view=HomePage />
                <Route path=path!("/tu-kiem-diem") view=AssessmentPage />
                <Route path=path!("/ke-hoach") view=PlanPage />
                <Route path=path!("/bieu-quyet") view=VotePage />
                <Route path=path!("/dien-dan") view=ForumPage />
                <Route path=path!("/tai-lieu") view=DocumentsPage />
            </Routes>
        </main>
    }
    .into_any()
}
