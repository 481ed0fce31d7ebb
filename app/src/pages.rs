//! One file per page; each is a view over [`crate::sync::SyncHandle`] (documents) and, for the
//! documents page, [`crate::storage`].

pub mod assessment;
pub mod documents;
pub mod forum;
pub mod home;
pub mod join;
pub mod plan;
pub mod vote;

pub use assessment::AssessmentPage;
pub use documents::DocumentsPage;
pub use forum::ForumPage;
pub use home::HomePage;
pub use join::JoinPage;
pub use plan::PlanPage;
pub use vote::VotePage;

use leptos::prelude::*;
use leptos_router::components::A;

/// Any path the router does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <p data-testid="not-found">"Không có trang này. " <A href="/">"Về trang chi bộ"</A></p>
    }
}
