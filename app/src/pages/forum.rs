//! `/dien-dan`: the branch's forum: title, sessions, guests and script (read only here), and the
//! minutes (biên bản) in a textarea. Every edit of the textarea becomes the smallest character
//! splice of the minutes' automerge Text, so two people typing at once merge character by
//! character; remote changes re-render the textarea with the caret kept next to the same text.

use chibo_shared::ids::DocumentId;
use chibo_shared::schema::{
    Forum, ForumText, Guest, SchemaError, ScriptSection, Session, hydrate, read_text, splice_text,
};
use leptos::html::Textarea;
use leptos::logging::error;
use leptos::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::HtmlTextAreaElement;

use crate::Branch;
use crate::edit::{chars_to_utf16, minimal_splice, rebase, utf16_to_chars};
use crate::sync::SyncHandle;

/// What the page shows of the forum besides the minutes.
#[derive(Debug, Clone, PartialEq)]
struct ForumView {
    title: String,
    sessions: Vec<Session>,
    guests: Vec<Guest>,
    script: Vec<(ScriptSection, String)>,
}

impl From<Forum> for ForumView {
    fn from(f: Forum) -> Self {
        let script = ScriptSection::ALL
            .iter()
            .map(|s| (*s, f.script.section(*s).as_str().to_owned()))
            .filter(|(_, text)| !text.is_empty())
            .collect();
        Self { title: f.title, sessions: f.sessions, guests: f.guests, script }
    }
}

#[component]
pub fn ForumPage() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let doc = expect_context::<Branch>().forum;
    let forum = Memo::new(move |_| {
        sync.track(doc);
        sync.read(doc, |am| hydrate::<Forum>(am).ok()).flatten().map(ForumView::from)
    });
    let title = move || match forum.get() {
        Some(f) if !f.title.is_empty() => f.title,
        Some(_) => "Diễn đàn (chưa đồng bộ nội dung)".to_owned(),
        None => "Đang mở diễn đàn…".to_owned(),
    };
    let sessions = move || forum.get().map(|f| f.sessions).unwrap_or_default();
    let guests = move || forum.get().map(|f| f.guests).unwrap_or_default();
    let script = move || forum.get().map(|f| f.script).unwrap_or_default();
    view! {
        <h2 data-testid="forum-title">{title}</h2>
        <Show when=move || !sessions().is_empty()>
            <h3>"Thời gian, địa điểm"</h3>
            <ul data-testid="forum-sessions">
                <For
                    each=sessions
                    key=|s| s.id.clone()
                    children=|s| view! { <li>{format!("Ngày {}, lúc {}, tại {}", vietnamese_date(&s.date), s.starts_at, s.place)}</li> }
                />
            </ul>
        </Show>
        <Show when=move || !guests().is_empty()>
            <h3>"Đại biểu khách mời"</h3>
            <ul data-testid="forum-guests">
                <For
                    each=guests
                    key=|g| g.id.clone()
                    children=|g| view! { <li>{format!("{} — {}", g.name, g.organisation)}</li> }
                />
            </ul>
        </Show>
        <Show when=move || !script().is_empty()>
            <details data-testid="forum-script">
                <summary>"Kịch bản diễn đàn"</summary>
                <For
                    each=script
                    key=|(section, _)| section_label(*section)
                    children=|(section, text)| {
                        view! {
                            <h4>{section_label(section)}</h4>
                            <p>{text}</p>
                        }
                    }
                />
            </details>
        </Show>
        <MinutesEditor doc />
    }
}

/// `YYYY-MM-DD` as Vietnamese write dates, `DD/MM/YYYY`; anything else as it is.
fn vietnamese_date(iso: &str) -> String {
    match iso.split('-').collect::<Vec<_>>().as_slice() {
        [y, m, d] => format!("{d}/{m}/{y}"),
        _ => iso.to_owned(),
    }
}

fn section_label(section: ScriptSection) -> &'static str {
    match section {
        ScriptSection::Opening => "Khai mạc",
        ScriptSection::Situation => "Khái quát tình hình",
        ScriptSection::ChallengesAndTasks => "Thời cơ, thách thức và nhiệm vụ",
        ScriptSection::Manifestations => "27 biểu hiện suy thoái",
        ScriptSection::DiscussionPrompts => "Gợi ý thảo luận",
    }
}

/// The textarea's side of the minutes.
#[derive(Debug, Default)]
struct Editor {
    /// The document's text as the textarea last showed it: what the next edit is a diff against.
    shown: String,
    /// An IME composition is under way: leave the textarea alone until it ends.
    composing: bool,
}

#[component]
fn MinutesEditor(doc: DocumentId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let textarea = NodeRef::<Textarea>::new();
    let editor = StoredValue::new(Editor::default());
    let loaded = Memo::new(move |_| {
        sync.track(doc);
        sync.doc_sync(doc).loaded
    });
    // The document to the textarea: on load, remote changes and saves.
    Effect::new(move |_| {
        sync.track(doc);
        let Some(el) = textarea.get() else { return };
        if editor.with_value(|e| e.composing) {
            return; // compositionend catches up
        }
        if let Some(text) = minutes(sync, doc) {
            show(&el, &text, editor);
        }
    });
    let on_input = move |_| {
        if let Some(el) = textarea.get_untracked().filter(|_| !editor.with_value(|e| e.composing)) {
            commit(sync, doc, &el, editor);
        }
    };
    let on_composition_start = move |_| editor.update_value(|e| e.composing = true);
    let on_composition_end = move |_| {
        editor.update_value(|e| e.composing = false);
        if let Some(el) = textarea.get_untracked() {
            commit(sync, doc, &el, editor);
        }
    };
    let save_state = move || {
        sync.track(doc);
        let s = sync.doc_sync(doc);
        match s.storage_error {
            Some(e) => {
                ("error", format!("Không lưu được trên máy ({e}); thay đổi vẫn được gửi đi khi có mạng."))
            }
            None if !s.loaded => ("loading", "Đang mở…".to_owned()),
            None if !s.saved => ("saving", "Đang lưu…".to_owned()),
            None if s.acknowledged => ("synced", "Đã lưu trên máy và đã đồng bộ.".to_owned()),
            None => ("saved", "Đã lưu trên máy, chưa đồng bộ.".to_owned()),
        }
    };
    view! {
        <section>
            <h3>
                <label for="minutes">"Biên bản"</label>
            </h3>
            <textarea
                id="minutes"
                data-testid="minutes"
                node_ref=textarea
                rows="14"
                placeholder="Đang mở biên bản…"
                prop:disabled=move || !loaded.get()
                on:input=on_input
                on:compositionstart=on_composition_start
                on:compositionend=on_composition_end
            ></textarea>
            <p data-testid="minutes-save-state" data-state=move || save_state().0>
                {move || save_state().1}
            </p>
        </section>
    }
}

fn minutes(sync: SyncHandle, doc: DocumentId) -> Option<String> {
    sync.read(doc, |am| read_text(am, &ForumText::Minutes).ok()).flatten()
}

/// Turns what the user changed since the textarea last showed the document into a splice of the
/// minutes. If remote changes arrived in between (they wait while an IME composes), the splice is
/// rebased onto them, and the merged text shown.
fn commit(sync: SyncHandle, doc: DocumentId, el: &HtmlTextAreaElement, editor: StoredValue<Editor>) {
    let typed = el.value();
    let shown = editor.with_value(|e| e.shown.clone());
    if typed == shown {
        return;
    }
    let caret = el.selection_end().ok().flatten().map(|units| utf16_to_chars(&typed, units as usize));
    let local = minimal_splice(&shown, &typed, caret);
    let time = (js_sys::Date::now() / 1000.0) as i64;
    let merged = sync.change(doc, |am| -> Result<String, SchemaError> {
        let current = read_text(am, &ForumText::Minutes)?;
        let splices = if current == shown {
            vec![local]
        } else {
            rebase(&local, &minimal_splice(&shown, &current, None))
        };
        for s in &splices {
            let del = isize::try_from(s.del).unwrap_or(isize::MAX);
            splice_text(am, &ForumText::Minutes, s.pos, del, &s.insert, time)?;
        }
        read_text(am, &ForumText::Minutes)
    });
    let text = match merged {
        Ok(Ok(text)) => Some(text),
        Ok(Err(e)) => {
            error!("minutes: edit not applied: {e}");
            None
        }
        Err(e) => {
            error!("minutes: edit not applied: {e}");
            None
        }
    };
    // On failure, back to what the document holds: the textarea must not pretend.
    if let Some(text) = text.or_else(|| minutes(sync, doc)) {
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
