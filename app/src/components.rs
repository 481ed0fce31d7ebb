//! Views more than one page shows.

use leptos::prelude::*;

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
        Connection::Online => "Đang trực tuyến",
        Connection::Connecting => "Đang kết nối…",
        Connection::Offline => "Ngoại tuyến",
    };
    let unsynced = move || match sync.unsynced() {
        0 => "Mọi tài liệu đã đồng bộ".to_owned(),
        n => format!("{n} tài liệu chưa đồng bộ"),
    };
    let last_sync = move || match sync.last_sync() {
        Some(at) => format!("Đồng bộ lần cuối: {}", local_time(at)),
        None => "Chưa đồng bộ lần nào".to_owned(),
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
                    "Thử kết nối lại"
                </button>
            </Show>
        </p>
    }
}

/// `ms` since the epoch as the device's local date and time, Vietnamese style.
fn local_time(ms: f64) -> String {
    let date = js_sys::Date::new(&ms.into());
    String::from(date.to_locale_string("vi-VN", &wasm_bindgen::JsValue::UNDEFINED))
}
