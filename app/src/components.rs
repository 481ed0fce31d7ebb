//! Views more than one page shows.

pub mod text_editor;

use leptos::prelude::*;
pub use text_editor::{TextEditor, save_state};

use crate::i18n::use_texts;
use crate::sync::{Connection, SyncHandle};

/// Online or offline, how many documents the relay has not acknowledged, and the last time
/// everything was in sync. Always visible (it sits in the header).
#[component]
pub fn SyncStatusBar() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let state = move || match sync.connection() {
        Connection::Online => "online",
        Connection::Connecting => "connecting",
        Connection::Offline => "offline",
    };
    let connection = move || match sync.connection() {
        Connection::Online => use_texts().online,
        Connection::Connecting => use_texts().connecting,
        Connection::Offline => use_texts().offline,
    };
    let unsynced = move || match sync.unsynced() {
        0 => use_texts().all_synced.to_owned(),
        n => format!("{n} {}", use_texts().unsynced_suffix),
    };
    let last_sync = move || match sync.last_sync() {
        Some(at) => format!("{} {}", use_texts().last_sync, local_time(at)),
        None => use_texts().never_synced.to_owned(),
    };
    view! {
        <p class="sync-status" data-testid="sync-status" data-state=state role="status">
            <span data-testid="connection">{connection}</span>
            " · "
            <span data-testid="unsynced-count" data-count=move || sync.unsynced().to_string()>
                {unsynced}
            </span>
            " · "
            <span data-testid="last-sync">{last_sync}</span>
            <Show when=move || sync.connection() == Connection::Offline>
                " "
                <button type="button" data-testid="reconnect" on:click=move |_| sync.reconnect_now()>
                    {move || use_texts().reconnect}
                </button>
            </Show>
            <Show when=move || sync.last_error().is_some_and(|e| e.contains("401"))>
                <span class="warning" data-testid="revoked">{move || use_texts().revoked}</span>
            </Show>
        </p>
    }
}

/// `ms` since the epoch as the device's local date and time, Vietnamese style.
fn local_time(ms: f64) -> String {
    let date = js_sys::Date::new(&ms.into());
    String::from(date.to_locale_string("vi-VN", &wasm_bindgen::JsValue::UNDEFINED))
}
