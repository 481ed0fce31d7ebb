//! `/`: what is due now for this member: the self-assessment of the current forum and the
//! year's personal plan (its commitment and this month's progress), each with its state.

use std::sync::atomic::{AtomicBool, Ordering};

use chibo_shared::commitment::{self, CommitmentStatus};
use chibo_shared::schema::{BranchProfile, PersonalPlan, SelfAssessment, hydrate};
use leptos::prelude::*;
use leptos_router::components::A;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::i18n::use_texts;
use crate::sync::SyncHandle;
use crate::{use_account, use_branch};

/// The `performance` mark for "the member's home page shows their name": what
/// `cargo xtask measure-startup` times from navigation start (`tests/it/startup.rs`).
const INTERACTIVE_MARK: &str = "chibo-interactive";
/// Set once the mark is made: once per page load, however often the home page is shown again.
static INTERACTIVE_MARKED: AtomicBool = AtomicBool::new(false);

#[wasm_bindgen]
extern "C" {
    /// `performance.mark(name)` (imported directly: the app enables no `Performance` in web-sys).
    #[wasm_bindgen(catch, js_namespace = performance, js_name = mark)]
    fn performance_mark(name: &str) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>;
}

#[component]
pub fn HomePage() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let account = use_account();
    let name = account.record().name;
    let branch_name = Memo::new(move |_| {
        let doc = use_branch().profile();
        sync.track(doc);
        sync.read(doc, |am| hydrate::<BranchProfile>(am).ok().map(|p| p.name)).flatten().unwrap_or_default()
    });
    let assessment = Memo::new(move |_| {
        let doc = use_branch().assessment()?;
        sync.track(doc);
        sync.read(doc, |am| hydrate::<SelfAssessment>(am).ok()).flatten().map(|a| {
            let answered = a.items.values().filter(|i| i.applies.is_some()).count();
            (answered, a.submitted_at.is_some())
        })
    });
    let assessment_state = move || match assessment.get() {
        None => ("none", t().no_forum_yet.to_owned()),
        Some((_, true)) => ("done", t().submitted.to_owned()),
        Some((0, false)) => ("todo", t().not_started.to_owned()),
        Some((n, false)) => ("doing", format!("{n}/27 {}", t().answered_of)),
    };
    let keys = crate::account_handle();
    let plan = Memo::new(move |_| {
        let b = use_branch();
        let doc = b.plan();
        sync.track(doc);
        sync.read(doc, |am| {
            let plan = hydrate::<PersonalPlan>(am).ok()?;
            let status =
                commitment::verify(am, &doc, &b.member, |k| keys.with_value(|a| a.is_key_of(&b.member, k)))
                    .ok()?;
            let month = u8::try_from(js_sys::Date::new_0().get_month() + 1).unwrap_or(1);
            let reported = plan
                .items
                .iter()
                .filter(|i| {
                    i.progress_in(month).is_some_and(|p| p.status.is_some() || !p.note.as_str().is_empty())
                })
                .count();
            Some((plan.items.len(), status, reported))
        })
        .flatten()
    });
    let commitment_state = move || match plan.get().map(|(_, s, _)| s) {
        Some(CommitmentStatus::Valid { .. }) => ("signed", t().commitment_signed),
        Some(CommitmentStatus::ChangedSinceSigning { .. }) => ("changed", t().commitment_changed),
        _ => ("unsigned", t().commitment_unsigned),
    };
    // Effects run after the view is in the document, so the name below is on screen.
    Effect::new(move |_| {
        if !INTERACTIVE_MARKED.swap(true, Ordering::Relaxed) {
            let _ = performance_mark(INTERACTIVE_MARK);
        }
    });
    view! {
        <section>
            <h2 data-testid="hello">{move || format!("{}, {}", t().hello, name)}</h2>
            <p data-testid="branch-name">{move || branch_name.get()}</p>
        </section>
        <section>
            <h2>{move || t().due_now}</h2>
            <ul class="due">
                <li>
                    <A href="/tu-kiem-diem">{move || t().assessment_due}</A>
                    " — "
                    <span data-testid="assessment-state" data-state=move || assessment_state().0>
                        {move || assessment_state().1}
                    </span>
                </li>
                <li>
                    <A href="/ke-hoach">{move || t().plan_due}</A>
                    " — "
                    <span data-testid="plan-items">
                        {move || format!("{} {}", plan.get().map_or(0, |(n, _, _)| n), t().plan_items)}
                    </span>
                    " · "
                    <span data-testid="commitment-state" data-state=move || commitment_state().0>
                        {move || commitment_state().1}
                    </span>
                </li>
                <li>
                    <A href="/ke-hoach">{move || t().progress_this_month}</A>
                    " — "
                    <span data-testid="progress-state">
                        {move || {
                            let (items, reported) = plan.get().map_or((0, 0), |(n, _, r)| (n, r));
                            format!("{reported}/{items} {}", t().plan_items)
                        }}
                    </span>
                </li>
            </ul>
        </section>
    }
}
