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
//!   device; for the committee `/chuan-bi` forum preparation, `/nghi-quyet` the resolution and its
//!   vote, `/hop-thang` the monthly review, `/tong-hop` the review of merged state.
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
use i18n::use_committee_texts as ct;
use i18n::{LangSignal, use_texts};
use pages::{
    AssessmentPage, DocumentsPage, ForumPage, HomePage, JoinPage, MonthlyPage, NotFound, PlanPage,
    PreparePage, ResolutionPage, ReviewPage, VotePage,
};
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

/// The branch roster as last listed (tracked: refreshed on every connection).
#[derive(Debug, Clone, Copy)]
pub struct RosterSignal(pub RwSignal<Vec<account::RosterMember>>);

/// The roster (tracked).
pub fn use_roster() -> Vec<account::RosterMember> {
    expect_context::<RosterSignal>().0.get()
}

/// A member's name from the roster (tracked), or a short form of the id.
pub fn member_name(member: &MemberId) -> String {
    let id = member.to_string();
    expect_context::<RosterSignal>()
        .0
        .with(|r| r.iter().find(|m| m.id == id).map(|m| m.name.clone()))
        .unwrap_or_else(|| format!("#{}", id.chars().take(6).collect::<String>()))
}

/// Opens documents (named to the relay first, so it lets them through), each with its genesis
/// seed; already open ones are left alone.
pub fn open_documents(sync: SyncHandle, account: &Rc<Account>, paths: Vec<DocPath>) {
    let paths: Vec<DocPath> = paths.into_iter().filter(|p| !sync.is_open(p.document_id())).collect();
    if paths.is_empty() {
        return;
    }
    for path in &paths {
        account.want(path);
    }
    let account = account.clone();
    leptos::task::spawn_local(async move {
        // Offline, naming waits for the next connection (prepare_sync names every wanted path).
        let _ = account.register().await;
        for path in paths {
            sync.open(path.document_id(), Some(genesis_change_bytes(path.kind())));
        }
    });
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
    let roster = RwSignal::new(account.members());
    provide_context(RosterSignal(roster));
    // Forums and members the relay lists later (joined offline, a new forum, a new member):
    // open their documents; keep the roster the pages show current.
    let watcher = account.clone();
    Effect::new(move |_| {
        let _ = sync.connection();
        let forums = watcher.forums();
        if context.get_untracked().forum.is_none() && !forums.is_empty() {
            context.update(|b| b.forum = forums.first().copied());
        }
        let members = watcher.members();
        if roster.with_untracked(|r| *r != members) {
            roster.set(members);
        }
        let new: Vec<DocPath> = watcher
            .documents(year)
            .into_iter()
            .map(|(path, _)| path)
            .filter(|path| !sync.is_open(path.document_id()))
            .collect();
        if !new.is_empty() {
            open_documents(sync, &watcher, new);
        }
    });
    let committee = account.on_committee();
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
                <Show when=move || committee>
                    <span class="nav-committee">
                        <A href="/chuan-bi">{move || ct().nav_prepare}</A>
                        <A href="/nghi-quyet">{move || ct().nav_resolution}</A>
                        <A href="/hop-thang">{move || ct().nav_monthly}</A>
                        <A href="/tong-hop">{move || ct().nav_review}</A>
                    </span>
                </Show>
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
                <Route path=path!("/chuan-bi") view=PreparePage />
                <Route path=path!("/nghi-quyet") view=ResolutionPage />
                <Route path=path!("/hop-thang") view=MonthlyPage />
                <Route path=path!("/tong-hop") view=ReviewPage />
            </Routes>
        </main>
    }
    .into_any()
}
