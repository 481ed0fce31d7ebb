//! `/`: the branch: its name and kind, the people on its roster, and the way to the forum.

use chibo_shared::schema::{BranchKind, BranchProfile, Forum, hydrate};
use leptos::prelude::*;
use leptos_router::components::A;

use crate::Branch;
use crate::sync::SyncHandle;

#[component]
pub fn HomePage() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let branch = expect_context::<Branch>();
    let profile = Memo::new(move |_| {
        sync.track(branch.profile);
        sync.read(branch.profile, |doc| hydrate::<BranchProfile>(doc).ok()).flatten()
    });
    let forum_title = Memo::new(move |_| {
        sync.track(branch.forum);
        sync.read(branch.forum, |doc| hydrate::<Forum>(doc).ok().map(|f| f.title))
            .flatten()
            .unwrap_or_default()
    });
    // Genesis leaves the name empty: nothing has arrived from the committee (or the relay) yet.
    let name = move || match profile.get() {
        Some(p) if !p.name.is_empty() => p.name,
        Some(_) => "Chi bộ (chưa đồng bộ hồ sơ)".to_owned(),
        None => "Đang mở…".to_owned(),
    };
    let known = move || profile.get().is_some_and(|p| !p.name.is_empty());
    let roster = move || {
        let mut names: Vec<(String, String)> =
            profile.get().map(|p| p.display_names.into_iter().collect()).unwrap_or_default();
        names.sort_by(|(_, a), (_, b)| vietnamese_order(a, b));
        names
    };
    view! {
        <section>
            <h2 data-testid="branch-name">{name}</h2>
            <Show when=known>
                <p data-testid="branch-kind">
                    {move || profile.get().map(|p| kind_label(p.branch_kind)).unwrap_or_default()}
                </p>
                <p data-testid="branch-superior">
                    {move || profile.get().map(|p| format!("Trực thuộc {}", p.superior)).unwrap_or_default()}
                </p>
            </Show>
        </section>
        <section>
            <h2>"Đảng viên"</h2>
            <Show
                when=move || !roster().is_empty()
                fallback=|| view! { <p data-testid="roster-empty">"Chưa có danh sách đảng viên trên máy này."</p> }
            >
                <ul data-testid="roster">
                    <For
                        each=roster
                        key=|(id, _)| id.clone()
                        children=|(_, name)| view! { <li data-testid="roster-member">{name}</li> }
                    />
                </ul>
            </Show>
        </section>
        <section>
            <h2>"Diễn đàn"</h2>
            <p>
                <A href="/dien-dan">
                    <span data-testid="forum-link">
                        {move || {
                            let title = forum_title.get();
                            if title.is_empty() { "Mở diễn đàn".to_owned() } else { title }
                        }}
                    </span>
                </A>
            </p>
        </section>
    }
}

fn kind_label(kind: BranchKind) -> &'static str {
    match kind {
        BranchKind::Residential => "Chi bộ địa bàn dân cư",
        BranchKind::AgencyOrUnit => "Chi bộ cơ quan, đơn vị",
        BranchKind::Enterprise => "Chi bộ doanh nghiệp",
    }
}

/// Vietnamese roster order: by given name (the last word), then by the whole name, with the
/// browser's Vietnamese collation (so "Đức" sorts after "Dung", not after "Z").
fn vietnamese_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |name: &str| format!("{} {name}", name.rsplit(' ').next().unwrap_or(name));
    let locales = js_sys::Array::of1(&"vi".into());
    let order = js_sys::JsString::from(key(a)).locale_compare(&key(b), &locales, &js_sys::Object::new());
    order.cmp(&0)
}
