//! One file per page; each is a view over [`crate::sync::SyncHandle`] (documents) and, for the
//! documents page, [`crate::storage`].

pub mod assessment;
pub mod documents;
pub mod forum;
pub mod home;
pub mod join;
pub mod monthly;
pub mod plan;
pub mod prepare;
pub mod resolution;
pub mod review;
pub mod vote;

pub use assessment::AssessmentPage;
pub use documents::DocumentsPage;
pub use forum::ForumPage;
pub use home::HomePage;
pub use join::JoinPage;
pub use monthly::MonthlyPage;
pub use plan::PlanPage;
pub use prepare::PreparePage;
pub use resolution::ResolutionPage;
pub use review::ReviewPage;
pub use vote::VotePage;

use chibo_shared::ids::DocumentId;
use chibo_shared::schema::{Document, hydrate, update};
use leptos::logging::error;
use leptos::prelude::*;
use leptos_router::components::A;

use crate::sync::SyncHandle;

/// Now, in unix seconds (the time written into changes).
pub(crate) fn now() -> i64 {
    // Seconds since the epoch fit an i64 exactly.
    (js_sys::Date::now() / 1000.0) as i64
}

/// A document of kind `T` as the pages show it (tracked; `None` until it is loaded).
pub(crate) fn doc_memo<T>(sync: SyncHandle, doc: DocumentId) -> Memo<Option<T>>
where
    T: Document + Clone + PartialEq + Send + Sync + 'static,
{
    Memo::new(move |_| {
        sync.track(doc);
        sync.read(doc, |am| hydrate::<T>(am).ok()).flatten()
    })
}

/// Edits a document of kind `T` in one change (scalars, options and lists; text goes through
/// the text editor). A failure is logged: the page keeps showing the document as it is.
pub(crate) fn edit_doc<T: Document>(sync: SyncHandle, doc: DocumentId, f: impl FnOnce(&mut T)) {
    match sync.change(doc, |am| update::<T>(am, now(), f)) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => error!("edit not applied: {e}"),
        Err(e) => error!("edit not applied: {e}"),
    }
}

/// `<option>`s for choosing a member of the roster (tracked), after a first option `first`
/// (value, label); `selected` is the current value.
pub(crate) fn member_options(selected: &str, first: (&'static str, &'static str)) -> Vec<AnyView> {
    let mut opts =
        vec![view! { <option value=first.0 selected=selected == first.0>{first.1}</option> }.into_any()];
    opts.extend(crate::use_roster().into_iter().map(|m| {
        let is = m.id == selected;
        view! { <option value=m.id.clone() selected=is>{m.name.clone()}</option> }.into_any()
    }));
    opts
}

/// A fresh id for a keyed list item (unique per device and moment).
pub(crate) fn new_item_id(prefix: &str) -> String {
    format!("{prefix}{}", (js_sys::Math::random() * 1e12) as u64)
}

/// Any path the router does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <p data-testid="not-found">"Không có trang này. " <A href="/">"Về trang chi bộ"</A></p>
    }
}
