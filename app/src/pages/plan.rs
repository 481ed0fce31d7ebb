//! `/ke-hoach`: the member's personal "2 in 1" plan for the year: items tied to manifestations
//! and to the branch resolution's tasks, "follow Uncle Ho's example" items, deadlines and
//! measures; the signed commitment (the device key's signature over the plan's state, shown as
//! "changed since signing" after later edits of the signed items); and monthly progress per item.

use chibo_shared::catalogue::Catalogue;
use chibo_shared::commitment::{self, CommitmentStatus};
use chibo_shared::ids::DocumentId;
use chibo_shared::schema::{
    PersonalPlan, PlanItem, PlanItemKind, PlanText, ProgressStatus, Resolution, hydrate, update,
};
use leptos::logging::error;
use leptos::prelude::*;

use crate::components::{TextEditor, save_state};
use crate::i18n::use_texts;
use crate::sync::SyncHandle;
use crate::{use_account, use_branch};

fn now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

fn edit(sync: SyncHandle, doc: DocumentId, f: impl FnOnce(&mut PersonalPlan)) {
    match sync.change(doc, |am| update::<PersonalPlan>(am, now(), f)) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => error!("plan: edit not applied: {e}"),
        Err(e) => error!("plan: edit not applied: {e}"),
    }
}

fn edit_item(sync: SyncHandle, doc: DocumentId, id: String, f: impl FnOnce(&mut PlanItem)) {
    edit(sync, doc, move |p| {
        if let Some(item) = p.items.iter_mut().find(|i| i.id == id) {
            f(item);
        }
    });
}

#[component]
pub fn PlanPage() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let doc = use_branch().plan();
    let plan = Memo::new(move |_| {
        sync.track(doc);
        sync.read(doc, |am| hydrate::<PersonalPlan>(am).ok()).flatten()
    });
    let ids =
        move || plan.get().map(|p| p.items.into_iter().map(|i| i.id).collect::<Vec<_>>()).unwrap_or_default();
    let add = move |kind: PlanItemKind| {
        let id = format!("i{}", (js_sys::Math::random() * 1e12) as u64);
        edit(sync, doc, move |p| p.items.push(PlanItem::new(id, kind, "")));
    };
    view! {
        <h2>{move || t().plan_title}</h2>
        <p>{move || t().plan_help}</p>
        <p class="save-state" data-testid="plan-save-state" data-state=move || save_state(sync, doc).0>
            {move || save_state(sync, doc).1}
        </p>
        <Show when=move || ids().is_empty()>
            <p data-testid="no-items">{move || t().no_items}</p>
        </Show>
        <For each=ids key=|id| id.clone() children=move |id| view! { <ItemCard doc id plan /> } />
        <p>
            <button type="button" class="big" data-testid="add-item-r4" on:click=move |_| add(PlanItemKind::Resolution4)>
                {move || t().add_item_r4}
            </button>
            " "
            <button type="button" class="big" data-testid="add-item-uncle-ho" on:click=move |_| add(PlanItemKind::FollowUncleHo)>
                {move || t().add_item_uncle_ho}
            </button>
        </p>
        <Commitment doc />
        <Progress doc plan />
    }
}

#[component]
fn ItemCard(doc: DocumentId, id: String, plan: Memo<Option<PersonalPlan>>) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let item_id = id.clone();
    let item = Memo::new(move |_| plan.get().and_then(|p| p.items.into_iter().find(|i| i.id == item_id)));
    let kind_label = move || match item.get().map(|i| i.kind) {
        Some(PlanItemKind::FollowUncleHo) => t().kind_uncle_ho,
        _ => t().kind_r4,
    };
    let deadline_id = id.clone();
    let on_deadline = move |ev| {
        let value = event_target_value(&ev);
        edit_item(sync, doc, deadline_id.clone(), move |i| i.deadline = value);
    };
    let codes_id = id.clone();
    let on_codes = move |ev| {
        let catalogue = Catalogue::builtin();
        let codes: Vec<String> = event_target_value(&ev)
            .split([',', ' ', ';'])
            .map(|c| c.trim().to_uppercase())
            .filter(|c| catalogue.item(c).is_some())
            .collect();
        edit_item(sync, doc, codes_id.clone(), move |i| i.manifestation_codes = codes);
    };
    let tasks = Memo::new(move |_| {
        let resolution = use_branch().forum.map(|forum| {
            let b = use_branch();
            chibo_shared::schema::DocPath::Resolution { branch: b.branch, forum }.document_id()
        })?;
        sync.track(resolution);
        sync.read(resolution, |am| hydrate::<Resolution>(am).ok()).flatten().map(|r| r.tasks)
    });
    let toggle_id = id.clone();
    let toggle_task = Callback::new(move |(task, on): (String, bool)| {
        edit_item(sync, doc, toggle_id.clone(), move |i| {
            i.resolution_task_ids.retain(|t| *t != task);
            if on {
                i.resolution_task_ids.push(task);
            }
        });
    });
    view! {
        <article class="item" data-testid=format!("plan-item-{id}")>
            <h3>{kind_label}</h3>
            <TextEditor doc field=PlanText::ItemContent { id: id.clone() } label=t().content testid=format!("plan-{id}-content") rows=3 />
            <TextEditor doc field=PlanText::ItemMeasure { id: id.clone() } label=t().measure testid=format!("plan-{id}-measure") rows=2 />
            <label for=format!("plan-{id}-deadline")>{move || t().deadline}</label>
            <input type="date" id=format!("plan-{id}-deadline") data-testid=format!("plan-{id}-deadline")
                prop:value=move || item.get().map(|i| i.deadline).unwrap_or_default() on:change=on_deadline />
            <label for=format!("plan-{id}-codes")>{move || t().manifestation_codes}</label>
            <input id=format!("plan-{id}-codes") data-testid=format!("plan-{id}-codes")
                prop:value=move || item.get().map(|i| i.manifestation_codes.join(", ")).unwrap_or_default()
                on:change=on_codes />
            <Show when=move || tasks.get().is_some_and(|t| !t.is_empty())>
                <fieldset>
                    <legend>{move || t().resolution_tasks}</legend>
                    {move || {
                        let chosen = item.get().map(|i| i.resolution_task_ids).unwrap_or_default();
                        tasks
                            .get()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|task| {
                                let on = chosen.contains(&task.id);
                                let tid = task.id.clone();
                                view! {
                                    <label class="task">
                                        <input type="checkbox" prop:checked=on
                                            on:change=move |ev| toggle_task.run((tid.clone(), event_target_checked(&ev))) />
                                        {task.content.as_str().to_owned()}
                                    </label>
                                }
                            })
                            .collect_view()
                    }}
                </fieldset>
            </Show>
        </article>
    }
}

#[component]
fn Commitment(doc: DocumentId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let account = use_account();
    let verifier = crate::account_handle();
    let status = Memo::new(move |_| {
        sync.track(doc);
        let member = use_branch().member;
        sync.read(doc, |am| {
            commitment::verify(am, &doc, &member, |k| verifier.with_value(|a| a.is_key_of(&member, k))).ok()
        })
        .flatten()
    });
    let state = move || match status.get() {
        None | Some(CommitmentStatus::Unsigned) => ("unsigned", t().commitment_unsigned.to_owned()),
        Some(CommitmentStatus::Valid { signed_at }) => {
            ("valid", format!("{} ({} {})", t().commitment_signed, t().signed_at, local_time(signed_at)))
        }
        Some(CommitmentStatus::ChangedSinceSigning { signed_at }) => {
            ("changed", format!("{} ({} {})", t().commitment_changed, t().signed_at, local_time(signed_at)))
        }
        Some(CommitmentStatus::UnknownKey) => ("unknown-key", t().commitment_unknown_key.to_owned()),
        Some(CommitmentStatus::MissingHeads { .. }) => ("missing", t().commitment_missing.to_owned()),
        Some(CommitmentStatus::BadSignature | CommitmentStatus::Malformed) => {
            ("invalid", t().commitment_invalid.to_owned())
        }
    };
    let sign = move |_| {
        let member = use_branch().member;
        let Some(key) = account.signing_key() else { return };
        let signed = sync.change(doc, |am| commitment::commit(am, &doc, &member, &key, now()));
        if !matches!(signed, Ok(Ok(_))) {
            error!("plan: commitment not signed");
        }
    };
    view! {
        <section>
            <h3>{move || t().commitment}</h3>
            <p data-testid="commitment-status" data-state=move || state().0>{move || state().1}</p>
            <p class="muted">{move || t().signing_help}</p>
            <button type="button" class="big" data-testid="sign-commitment" on:click=sign>
                {move || if state().0 == "unsigned" { t().sign_commitment } else { t().sign_again }}
            </button>
        </section>
    }
}

#[component]
fn Progress(doc: DocumentId, plan: Memo<Option<PersonalPlan>>) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let this_month = u8::try_from(js_sys::Date::new_0().get_month() + 1).unwrap_or(1);
    let month = RwSignal::new(this_month);
    let items = move || plan.get().map(|p| p.items).unwrap_or_default();
    view! {
        <section>
            <h3>{move || t().monthly_progress}</h3>
            <label for="progress-month">{move || t().month}</label>
            <select id="progress-month" data-testid="progress-month"
                prop:value=move || month.get().to_string()
                on:change=move |ev| month.set(event_target_value(&ev).parse().unwrap_or(this_month))>
                {(1..=12u8).map(|m| view! { <option value=m.to_string()>{format!("{m:02}")}</option> }).collect_view()}
            </select>
            {move || {
                let m = month.get();
                items()
                    .into_iter()
                    .map(|item| {
                        let id = item.id.clone();
                        let status = item.progress_in(m).and_then(|p| p.status);
                        let status_id = id.clone();
                        let on_status = move |ev| {
                            let value = event_target_value(&ev);
                            let status = ProgressStatus::ALL.iter().copied().find(|s| s.as_str() == value);
                            let key = format!("{m:02}");
                            edit_item(sync, doc, status_id.clone(), move |i| {
                                if let Some(p) = i.progress.get_mut(&key) {
                                    p.status = status;
                                }
                            });
                        };
                        let title = item.content.as_str().chars().take(80).collect::<String>();
                        view! {
                            <article class="item" data-testid=format!("progress-{id}")>
                                <h4>{title}</h4>
                                <label for=format!("progress-{id}-status")>{t().progress_status}</label>
                                <select id=format!("progress-{id}-status") data-testid=format!("progress-{id}-status")
                                    prop:value=status.map(|s| s.as_str().to_owned()).unwrap_or_default()
                                    on:change=on_status>
                                    <option value="">{t().choose}</option>
                                    <option value="done">{t().status_done}</option>
                                    <option value="in-progress">{t().status_in_progress}</option>
                                    <option value="not-done">{t().status_not_done}</option>
                                </select>
                                <TextEditor doc field=PlanText::Progress { item: id.clone(), month: m }
                                    label=t().progress_note testid=format!("progress-{id}-note") rows=2 />
                            </article>
                        }
                    })
                    .collect_view()
            }}
        </section>
    }
}

fn local_time(unix: i64) -> String {
    let date = js_sys::Date::new(&((unix as f64) * 1000.0).into());
    String::from(date.to_locale_string("vi-VN", &wasm_bindgen::JsValue::UNDEFINED))
}
