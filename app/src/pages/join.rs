//! `/tham-gia`: join the branch with an invite code (typed, or filled from the QR code's link
//! `/tham-gia?ma=CODE`). The device makes its key here; see [`crate::account`].

use std::rc::Rc;

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
