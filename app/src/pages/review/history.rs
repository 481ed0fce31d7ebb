//! The history of any document: every change with its author (member and device, from the
//! roster), when it was made (the device's clock) and what it touched, newest first.

use chibo_shared::review::{self, HistoryEntry};
use leptos::prelude::*;

use super::{author_label, reviewed_documents};
use crate::i18n::use_committee_texts as ct;
use crate::sync::SyncHandle;

/// How many changes are listed before "show more".
const PAGE: usize = 50;

#[component]
pub fn History() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let chosen = RwSignal::new(String::new());
    let shown = RwSignal::new(PAGE);
    let docs = Memo::new(move |_| reviewed_documents());
    let entries = Memo::new(move |_| {
        let key = chosen.get();
        let (path, _) = docs.get().into_iter().find(|(p, _)| p.to_canonical_string() == key)?;
        let doc = path.document_id();
        sync.track(doc);
        sync.read(doc, review::history).map(|mut h| {
            h.reverse();
            h
        })
    });
    view! {
        <h3>{move || ct().history}</h3>
        <label>{move || ct().choose_document}
            <select data-testid="history-doc" on:change=move |ev| { chosen.set(event_target_value(&ev)); shown.set(PAGE); }>
                <option value="">"—"</option>
                {move || docs.get().into_iter().map(|(path, label)| {
                    let key = path.to_canonical_string();
                    view! { <option value=key>{label}</option> }
                }).collect_view()}
            </select>
        </label>
        <Show when=move || entries.get().is_some()>
            <p data-testid="history-count" data-count=move || entries.get().map_or(0, |e| e.len())>
                {move || format!("{} {}", entries.get().map_or(0, |e| e.len()), ct().changes)}
            </p>
            <ol class="history" data-testid="history">
                {move || entries.get().unwrap_or_default().into_iter().take(shown.get()).map(entry_view).collect_view()}
            </ol>
            <Show when=move || entries.get().is_some_and(|e| e.len() > shown.get())>
                <button type="button" on:click=move |_| shown.update(|n| *n += PAGE)>{move || ct().show_more}</button>
            </Show>
        </Show>
    }
}

fn entry_view(e: HistoryEntry) -> impl IntoView {
    let when = if e.time > 0 {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(e.time as f64 * 1000.0));
        String::from(d.to_locale_string("vi-VN", &wasm_bindgen::JsValue::UNDEFINED))
    } else {
        ct().genesis.to_owned()
    };
    let what = if e.paths.is_empty() { e.fields.join(", ") } else { e.paths.join(", ") };
    let author = author_label(&e.actor.to_hex_string());
    let shown = author.clone();
    view! {
        <li data-testid="history-entry" data-author=author>
            <strong>{shown}</strong>
            {format!(" · {when} · {what}")}
            {e.message.map(|m| format!(" · {m}"))}
        </li>
    }
}
