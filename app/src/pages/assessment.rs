//! `/tu-kiem-diem`: the member's self-assessment for the current forum: the 27 manifestations in
//! their three groups; for each, whether it applies and to what degree (the catalogue's scale),
//! how it relates to them, its cause and the remedy; per group, the member's view of the branch;
//! proposed solutions. Every choice and keystroke is stored on this device at once (the text
//! fields by character splices), and the catalogue version answered is recorded on the first edit.

use chibo_shared::catalogue::{Catalogue, ItemText, ScaleStatus};
use chibo_shared::ids::DocumentId;
use chibo_shared::schema::{AssessmentText, ItemPart, LongText, SelfAssessment, Solution, hydrate, update};
use leptos::logging::error;
use leptos::prelude::*;

use crate::components::{TextEditor, save_state};
use crate::i18n::{use_lang, use_texts};
use crate::sync::SyncHandle;
use crate::use_branch;

fn now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// Edits the assessment in one change, recording the catalogue it answers.
fn edit(sync: SyncHandle, doc: DocumentId, f: impl FnOnce(&mut SelfAssessment)) {
    let result = sync.change(doc, |am| {
        update::<SelfAssessment>(am, now(), |a| {
            if a.catalogue_version.is_empty() {
                a.set_catalogue(Catalogue::builtin());
            }
            f(a);
        })
    });
    match result {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => error!("assessment: edit not applied: {e}"),
        Err(e) => error!("assessment: edit not applied: {e}"),
    }
}

#[component]
pub fn AssessmentPage() -> impl IntoView {
    let t = use_texts;
    move || match use_branch().assessment() {
        None => view! { <p data-testid="no-forum">{t().no_forum_yet}</p> }.into_any(),
        Some(doc) => view! { <Assessment doc /> }.into_any(),
    }
}

#[component]
fn Assessment(doc: DocumentId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let catalogue = Catalogue::builtin();
    let state = Memo::new(move |_| {
        sync.track(doc);
        sync.read(doc, |am| hydrate::<SelfAssessment>(am).ok()).flatten()
    });
    let answered =
        move || state.get().map_or(0, |a| a.items.values().filter(|i| i.applies.is_some()).count());
    let groups: Vec<(String, String)> =
        catalogue.groups().map(|g| (g.code().to_owned(), g.code().to_owned())).collect();
    let solutions = move || {
        state.get().map(|a| a.solutions.into_iter().map(|s| s.id).collect::<Vec<_>>()).unwrap_or_default()
    };
    let add_solution = move |_| {
        let id = format!("s{}", (js_sys::Math::random() * 1e12) as u64);
        edit(sync, doc, |a| a.solutions.push(Solution { id, text: LongText::default() }));
    };
    let submitted = move || state.get().and_then(|a| a.submitted_at);
    view! {
        <h2>{move || t().assessment_title}</h2>
        <p>{move || t().assessment_help}</p>
        <p class="muted" data-testid="catalogue">
            {move || format!("{}: {} ({})", t().catalogue_used, catalogue.title(), catalogue.version())}
        </p>
        <p data-testid="answered" data-count=move || answered().to_string()>
            {move || format!("{}/27 {}", answered(), t().answered_of)}
        </p>
        <p class="save-state" data-testid="assessment-save-state" data-state=move || save_state(sync, doc).0>
            {move || save_state(sync, doc).1}
        </p>
        {groups
            .into_iter()
            .map(|(code, _)| view! { <GroupSection doc group=code state /> })
            .collect_view()}
        <section>
            <h3>{move || t().solutions}</h3>
            <For
                each=solutions
                key=|id| id.clone()
                children=move |id| {
                    let testid = format!("solution-{id}");
                    view! { <TextEditor doc field=AssessmentText::Solution { id } label=t().solution testid rows=3 /> }
                }
            />
            <button type="button" class="big" data-testid="add-solution" on:click=add_solution>
                {move || t().add_solution}
            </button>
        </section>
        <section>
            <Show
                when=move || submitted().is_some()
                fallback=move || view! {
                    <button type="button" class="big" data-testid="submit-assessment"
                        on:click=move |_| edit(sync, doc, |a| a.submitted_at = Some(now()))>
                        {move || t().submit_assessment}
                    </button>
                }
            >
                <p data-testid="submitted">{move || t().submitted}</p>
            </Show>
        </section>
    }
}

#[component]
fn GroupSection(doc: DocumentId, group: String, state: Memo<Option<SelfAssessment>>) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let catalogue = Catalogue::builtin();
    let title_group = group.clone();
    let title = move || {
        catalogue
            .groups()
            .find(|g| g.code() == title_group)
            .map(|g| g.title(use_lang()).to_owned())
            .unwrap_or_default()
    };
    let items: Vec<String> = catalogue.items_in(&group).map(|i| i.code().to_owned()).collect();
    let g = group.clone();
    let present = move || state.get().and_then(|a| a.groups.get(&g).and_then(|v| v.present_in_branch));
    let set_present = {
        let group = group.clone();
        move |v: bool| {
            let group = group.clone();
            edit(sync, doc, move |a| {
                if let Some(view) = a.groups.get_mut(&group) {
                    view.present_in_branch = Some(v);
                }
            });
        }
    };
    let set_yes = set_present.clone();
    let view_testid = format!("group-view-{group}");
    view! {
        <section class="group" data-testid=format!("group-{group}")>
            <h3>{title}</h3>
            {items.into_iter().map(|code| view! { <ItemRow doc code state /> }).collect_view()}
            <fieldset>
                <legend>{move || t().group_view_question}</legend>
                <YesNo name=format!("group-{group}-present") value=Signal::derive(present)
                    on_yes=move || set_yes(true) on_no=move || set_present(false) />
            </fieldset>
            <TextEditor doc field=AssessmentText::Group { group: group.clone() } label=t().group_view testid=view_testid rows=3 />
        </section>
    }
}

/// Two big radio buttons.
#[component]
fn YesNo(
    name: String,
    value: Signal<Option<bool>>,
    on_yes: impl Fn() + 'static,
    on_no: impl Fn() + 'static,
) -> impl IntoView {
    let t = use_texts;
    let yes_id = format!("{name}-yes");
    let no_id = format!("{name}-no");
    view! {
        <div class="yes-no" role="radiogroup">
            <input type="radio" id=yes_id.clone() name=name.clone() data-testid=yes_id.clone()
                prop:checked=move || value.get() == Some(true) on:change=move |_| on_yes() />
            <label for=yes_id>{move || t().yes}</label>
            <input type="radio" id=no_id.clone() name=name data-testid=no_id.clone()
                prop:checked=move || value.get() == Some(false) on:change=move |_| on_no() />
            <label for=no_id>{move || t().no}</label>
        </div>
    }
}

#[component]
fn ItemRow(doc: DocumentId, code: String, state: Memo<Option<SelfAssessment>>) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let catalogue = Catalogue::builtin();
    let Some(item) = catalogue.item(&code) else { return ().into_any() };
    let text = move || item.display_text(use_lang());
    let flag = move || match text() {
        ItemText::TopicOnly(_) => Some(t().topic_only_note),
        ItemText::Translation(_) => Some(t().translation_note),
        ItemText::Official(_) => None,
    };
    let c = code.clone();
    let answer = move || state.get().and_then(|a| a.items.get(&c).cloned()).unwrap_or_default();
    let applies = Signal::derive({
        let answer = answer.clone();
        move || answer().applies
    });
    let set_applies = {
        let code = code.clone();
        move |v: bool| {
            let code = code.clone();
            edit(sync, doc, move |a| {
                if let Some(i) = a.items.get_mut(&code) {
                    i.applies = Some(v);
                    if !v {
                        i.degree = None;
                    }
                }
            });
        }
    };
    let set_yes = set_applies.clone();
    let degree_code = code.clone();
    let on_degree = move |ev| {
        let value = event_target_value(&ev);
        let code = degree_code.clone();
        edit(sync, doc, move |a| {
            if let Some(i) = a.items.get_mut(&code) {
                i.degree = (!value.is_empty()).then_some(value);
            }
        });
    };
    let degree_value = {
        let answer = answer.clone();
        move || answer().degree.unwrap_or_default()
    };
    let unverified = catalogue.scale_status() == ScaleStatus::Unverified;
    let part = |p: ItemPart| AssessmentText::Item { code: code.clone(), part: p };
    let id = |suffix: &str| format!("item-{code}-{suffix}");
    let (degree_id, note_id, cause_id, remedy_id) = (id("degree"), id("note"), id("cause"), id("remedy"));
    let degree_testid = degree_id.clone();
    view! {
        <article class="item" data-testid=format!("item-{code}")>
            <h4>
                <span class="code">{code.clone()}</span>
                " "
                {move || text().as_str().to_owned()}
            </h4>
            <Show when=move || flag().is_some()>
                <p class="flag">{move || flag().unwrap_or_default()}</p>
            </Show>
            <fieldset>
                <legend>{move || t().applies_question}</legend>
                <YesNo name=format!("item-{code}-applies") value=applies
                    on_yes=move || set_yes(true) on_no=move || set_applies(false) />
            </fieldset>
            <Show when=move || applies.get() == Some(true)>
                <label for=degree_id.clone()>
                    {move || t().degree}
                    {unverified.then(|| view! { <span class="flag">{format!(" ({})", t().degree_unverified)}</span> })}
                </label>
                <select id=degree_id.clone() data-testid=degree_testid.clone() on:change=on_degree.clone() prop:value=degree_value.clone()>
                    <option value="">{move || t().choose}</option>
                    {catalogue
                        .degrees()
                        .iter()
                        .map(|d| {
                            let code = d.code().to_owned();
                            view! { <option value=code>{move || d.label(use_lang()).to_owned()}</option> }
                        })
                        .collect_view()}
                </select>
            </Show>
            <TextEditor doc field=part(ItemPart::Note) label=t().note testid=note_id rows=2 />
            <TextEditor doc field=part(ItemPart::Cause) label=t().cause testid=cause_id rows=2 />
            <TextEditor doc field=part(ItemPart::Remedy) label=t().remedy testid=remedy_id rows=2 />
        </article>
    }
    .into_any()
}
