//! `/tham-gia`: join the branch with an invite code (typed, or filled from the QR code's link
//! `/tham-gia?ma=CODE`). The device makes its key here; see [`crate::account`].

mod scan;

use std::rc::Rc;

use leptos::html::Video;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::account::{Account, JoinError};
use crate::api::ApiError;
use crate::i18n::use_texts;
use crate::storage::IdbStore;

#[component]
pub fn JoinPage(store: Rc<IdbStore>, joined: Callback<Rc<Account>>) -> impl IntoView {
    let t = use_texts;
    let from_link = use_query_map().get_untracked().get("ma").unwrap_or_default();
    let code = RwSignal::new(from_link);
    let label = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let store = StoredValue::new_local(store);
    let video = NodeRef::<Video>::new();
    let scanning = RwSignal::new(false);
    let start_scan = move |_| {
        let Some(el) = video.get_untracked() else { return };
        scanning.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match scan::scan(&el).await {
                Ok(text) => match scan::code_from_scan(&text) {
                    Some(found) => code.set(found),
                    None => error.set(Some(use_texts().scan_not_a_code.to_owned())),
                },
                Err(why) => error.set(Some(format!("{} ({why})", use_texts().scan_failed))),
            }
            scanning.set(false);
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let typed = code.get_untracked();
        let name = match label.get_untracked().trim() {
            "" => t().join_device_default.to_owned(),
            n => n.to_owned(),
        };
        let store = store.get_value();
        leptos::task::spawn_local(async move {
            match Account::join(store, &typed, &name).await {
                Ok(account) => joined.run(account),
                Err(e) => {
                    error.set(Some(match e {
                        JoinError::Api(ApiError::Offline) => use_texts().join_offline.to_owned(),
                        other => other.to_string(),
                    }));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <section class="join">
            <h2>{move || t().join_title}</h2>
            <p>{move || t().join_intro}</p>
            <Show when=scan::available>
                <button type="button" data-testid="scan-qr" prop:disabled=move || scanning.get() on:click=start_scan>
                    {move || t().scan_qr}
                </button>
            </Show>
            <video node_ref=video class="scanner" playsinline=true muted=true
                style:display=move || if scanning.get() { "block" } else { "none" }></video>
            <form on:submit=submit>
                <label for="invite-code">{move || t().join_code}</label>
                <input
                    id="invite-code"
                    data-testid="invite-code"
                    autocomplete="off"
                    autocapitalize="characters"
                    inputmode="text"
                    maxlength="20"
                    placeholder="ABCD-EFGH-JKLM"
                    prop:value=move || code.get()
                    on:input=move |ev| code.set(event_target_value(&ev))
                />
                <label for="device-label">{move || t().join_device_label}</label>
                <input
                    id="device-label"
                    data-testid="device-label"
                    maxlength="60"
                    placeholder=move || t().join_device_default
                    prop:value=move || label.get()
                    on:input=move |ev| label.set(event_target_value(&ev))
                />
                <button type="submit" data-testid="join" prop:disabled=move || busy.get()>
                    {move || if busy.get() { t().joining } else { t().join_button }}
                </button>
            </form>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" data-testid="join-error">{move || error.get()}</p>
            </Show>
        </section>
    }
}
