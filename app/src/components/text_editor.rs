//! A textarea that edits one automerge Text field by character splices.

use chibo_shared::ids::DocumentId;
use chibo_shared::schema::{SchemaError, TextField, read_text, splice_text};
use leptos::html::Textarea;
use leptos::logging::error;
use leptos::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::HtmlTextAreaElement;

use crate::edit::{chars_to_utf16, minimal_splice, rebase, utf16_to_chars};
use crate::i18n::use_texts;
use crate::sync::SyncHandle;

/// The textarea's side of a text field.
#[derive(Debug, Default)]
struct Editor {
    /// The document's text as the textarea last showed it: what the next edit is a diff against.
    shown: String,
    /// An IME composition is under way: leave the textarea alone until it ends.
    composing: bool,
}

/// A textarea over one automerge Text field: every edit is stored on this device at once as the
/// smallest character splice, so people typing into the same field on two devices merge character
/// by character; remote changes re-render it with the caret kept next to the same text. Shows the
/// field's save state (`{testid}-save-state`).
#[component]
pub fn TextEditor<F>(
    doc: DocumentId,
    field: F,
    /// The label above the textarea.
    #[prop(into)]
    label: String,
    /// `data-testid` (and element id) of the textarea.
    #[prop(into)]
    testid: String,
    #[prop(default = 4)] rows: u32,
    #[prop(optional, into)] placeholder: String,
    /// Shown but not editable (the relay would refuse this member's changes to the document).
    #[prop(optional)]
    read_only: bool,
) -> impl IntoView
where
    F: TextField + Clone + Send + Sync + 'static,
{
    let sync = expect_context::<SyncHandle>();
    let textarea = NodeRef::<Textarea>::new();
    let editor = StoredValue::new(Editor::default());
    let loaded = Memo::new(move |_| {
        sync.track(doc);
        sync.doc_sync(doc).loaded
    });
    let field_for_effect = field.clone();
    let field_for_input = field.clone();
    let field_for_composition = field;
    // The document to the textarea: on load, remote changes and saves.
    Effect::new(move |_| {
        sync.track(doc);
        let Some(el) = textarea.get() else { return };
        if editor.with_value(|e| e.composing) {
            return; // compositionend catches up
        }
        if let Some(text) = current(sync, doc, &field_for_effect) {
            show(&el, &text, editor);
        }
    });
    let on_input = move |_| {
        if let Some(el) = textarea.get_untracked().filter(|_| !editor.with_value(|e| e.composing)) {
            commit(sync, doc, &field_for_input, &el, editor);
        }
    };
    let on_composition_start = move |_| editor.update_value(|e| e.composing = true);
    let on_composition_end = move |_| {
        editor.update_value(|e| e.composing = false);
        if let Some(el) = textarea.get_untracked() {
            commit(sync, doc, &field_for_composition, &el, editor);
        }
    };
    let save_state = move || save_state(sync, doc);
    let state_id = format!("{testid}-save-state");
    view! {
        <div class="text-editor">
            <label for=testid.clone()>{label}</label>
            <textarea
                id=testid.clone()
                data-testid=testid
                node_ref=textarea
                rows=rows
                placeholder=placeholder
                prop:disabled=move || !loaded.get()
                readonly=read_only
                on:input=on_input
                on:compositionstart=on_composition_start
                on:compositionend=on_composition_end
            ></textarea>
            <p class="save-state" data-testid=state_id data-state=move || save_state().0>
                {move || save_state().1}
            </p>
        </div>
    }
}

fn current<F: TextField>(sync: SyncHandle, doc: DocumentId, field: &F) -> Option<String> {
    sync.read(doc, |am| read_text(am, field).ok()).flatten()
}

/// Turns what the user changed since the textarea last showed the document into a splice of the
/// field. If remote changes arrived in between (they wait while an IME composes), the splice is
/// rebased onto them, and the merged text shown.
fn commit<F: TextField>(
    sync: SyncHandle,
    doc: DocumentId,
    field: &F,
    el: &HtmlTextAreaElement,
    editor: StoredValue<Editor>,
) {
    let typed = el.value();
    let shown = editor.with_value(|e| e.shown.clone());
    if typed == shown {
        return;
    }
    let caret = el.selection_end().ok().flatten().map(|units| utf16_to_chars(&typed, units as usize));
    let local = minimal_splice(&shown, &typed, caret);
    let time = (js_sys::Date::now() / 1000.0) as i64;
    let merged = sync.change(doc, |am| -> Result<String, SchemaError> {
        let current = read_text(am, field)?;
        let splices = if current == shown {
            vec![local]
        } else {
            rebase(&local, &minimal_splice(&shown, &current, None))
        };
        for s in &splices {
            let del = isize::try_from(s.del).unwrap_or(isize::MAX);
            splice_text(am, field, s.pos, del, &s.insert, time)?;
        }
        read_text(am, field)
    });
    let text = match merged {
        Ok(Ok(text)) => Some(text),
        Ok(Err(e)) => {
            error!("text: edit not applied: {e}");
            None
        }
        Err(e) => {
            error!("text: edit not applied: {e}");
            None
        }
    };
    // On failure, back to what the document holds: the textarea must not pretend.
    if let Some(text) = text.or_else(|| current(sync, doc, field)) {
        show(el, &text, editor);
    }
}

/// Puts the document's `text` in the textarea, moving the caret past remote edits before it.
fn show(el: &HtmlTextAreaElement, text: &str, editor: StoredValue<Editor>) {
    let current = el.value();
    if current != text {
        let remote = minimal_splice(&current, text, None);
        let selection = is_focused(el).then(|| {
            let at = |units: Option<u32>| utf16_to_chars(&current, units.unwrap_or(0) as usize);
            (at(el.selection_start().ok().flatten()), at(el.selection_end().ok().flatten()))
        });
        el.set_value(text);
        if let Some((start, end)) = selection {
            let at =
                |chars| u32::try_from(chars_to_utf16(text, remote.map_position(chars))).unwrap_or(u32::MAX);
            let _ = el.set_selection_range(at(start), at(end));
        }
    }
    editor.update_value(|e| text.clone_into(&mut e.shown));
}

fn is_focused(el: &HtmlTextAreaElement) -> bool {
    let active = web_sys::window().and_then(|w| w.document()).and_then(|d| d.active_element());
    active.is_some_and(|a| JsValue::from(a) == JsValue::from(el.clone()))
}

/// How a document stands on this device, for the line under an editor: (state, words).
pub fn save_state(sync: SyncHandle, doc: DocumentId) -> (&'static str, String) {
    sync.track(doc);
    let t = use_texts();
    let s = sync.doc_sync(doc);
    match s.storage_error {
        Some(e) if e.contains("full") => ("error", t.storage_full.to_owned()),
        Some(e) => ("error", format!("{} ({e})", t.not_saved)),
        None if !s.loaded => ("loading", t.opening.to_owned()),
        None if !s.saved => ("saving", t.saving.to_owned()),
        None if s.acknowledged => ("synced", t.saved_and_synced.to_owned()),
        None => ("saved", t.saved_not_synced.to_owned()),
    }
}
