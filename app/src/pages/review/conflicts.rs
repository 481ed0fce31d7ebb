//! Conflicts: where two devices set the same field differently while apart. automerge keeps
//! every concurrent value and shows one of them; here the secretary sees all of them, who wrote
//! each, and keeps one (a new write over all of them, which every device then converges to).
//! Documents this member may not write (a member's own self-assessment) show the conflict with
//! "ask the member" instead of the buttons.

use chibo_shared::review::{self, Conflict};
use chibo_shared::schema::DocPath;
use leptos::logging::error;
use leptos::prelude::*;

use super::{author_label, reviewed_documents};
use crate::i18n::use_committee_texts as ct;
use crate::pages::now;
use crate::sync::SyncHandle;
use crate::use_account;

#[component]
pub fn Conflicts() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let found = Memo::new(move |_| {
        reviewed_documents()
            .into_iter()
            .filter_map(|(path, label)| {
                let doc = path.document_id();
                sync.track(doc);
                let found = sync.read(doc, review::conflicts)?;
                (!found.is_empty()).then_some((path, label, found))
            })
            .collect::<Vec<(DocPath, String, Vec<Conflict>)>>()
    });
    let total = move || found.get().iter().map(|(_, _, c)| c.len()).sum::<usize>();
    view! {
        <h3>{move || ct().conflicts}</h3>
        <p data-testid="conflict-count" data-count=total>
            {move || if total() == 0 { ct().no_conflicts.to_owned() } else { format!("{} {}", total(), ct().conflicts_found) }}
        </p>
        <For each=move || found.get() key=|(path, _, c)| (path.to_canonical_string(), format!("{c:?}")) let:entry>
            <ConflictsOf path=entry.0 label=entry.1 conflicts=entry.2 />
        </For>
    }
}

#[component]
fn ConflictsOf(path: DocPath, label: String, conflicts: Vec<Conflict>) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let doc = path.document_id();
    let may_settle = use_account().may_write(&path);
    let settle = move |conflict: &Conflict, chosen: usize| match sync
        .change(doc, |am| review::settle(am, conflict, chosen, now()))
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => error!("conflict not settled: {e}"),
        Err(e) => error!("conflict not settled: {e}"),
    };
    view! {
        <div class="card" data-testid="conflicts-of" data-doc=path.to_canonical_string()>
            <h4>{label}</h4>
            {conflicts
                .into_iter()
                .map(|conflict| {
                    let where_ = conflict.path_string();
                    let values = conflict
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let conflict = conflict.clone();
                            let value = v.display.clone();
                            let button_value = v.display.clone();
                            view! {
                                <li data-testid="conflict-value" data-value=value.clone()>
                                    <strong>{v.display.clone()}</strong>
                                    {format!(" — {}", author_label(&v.actor.to_hex_string()))}
                                    {v.shown.then(|| format!(" ({})", ct().shown_now))}
                                    " "
                                    <Show when=move || may_settle>
                                        <button type="button" data-testid="keep-value" data-value=button_value.clone()
                                            on:click={let conflict = conflict.clone(); move |_| settle(&conflict, i)}>
                                            {move || ct().keep_this}
                                        </button>
                                    </Show>
                                </li>
                            }
                        })
                        .collect_view();
                    view! {
                        <div data-testid="conflict" data-path=where_.clone()>
                            <p>{where_.clone()}</p>
                            <ul>{values}</ul>
                            <Show when=move || !may_settle>
                                <p>{move || ct().ask_the_member}</p>
                            </Show>
                        </div>
                    }
                })
                .collect_view()}
        </div>
    }
}
