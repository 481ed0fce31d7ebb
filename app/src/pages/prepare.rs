//! `/chuan-bi`: the committee prepares the forum (seed part 1): its title, one or two sessions,
//! the chair and the clerk, the guests (suggested by the branch's kind, as the seed lists them)
//! and the script, section by section, typed together by several committee members.

use chibo_shared::ids::{DocumentId, ForumId, MemberId};
use chibo_shared::schema::{
    BranchKind, BranchProfile, DocPath, Forum, ForumText, Guest, ScriptSection, Session,
};
use leptos::prelude::*;

use crate::components::TextEditor;
use crate::i18n::{CommitteeTexts, use_committee_texts as ct};
use crate::pages::{doc_memo, edit_doc, member_options, new_item_id};
use crate::sync::SyncHandle;
use crate::{use_account, use_branch};

/// A forum holds at most two sessions (a large branch spreads it over a week).
const MAX_SESSIONS: usize = 2;

#[component]
pub fn PreparePage() -> impl IntoView {
    move || {
        let b = use_branch();
        match b.forum {
            None => view! { <p data-testid="no-forum">{ct().no_forum}</p> }.into_any(),
            Some(forum) => view! { <Prepare forum profile=b.profile() /> }.into_any(),
        }
    }
}

#[component]
fn Prepare(forum: ForumId, profile: DocumentId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let path = DocPath::Forum { branch: use_branch().branch, forum };
    let doc = path.document_id();
    let read_only = !use_account().may_write(&path);
    let f = doc_memo::<Forum>(sync, doc);
    let kind = doc_memo::<BranchProfile>(sync, profile);
    let title = move || f.get().map(|f| f.title).unwrap_or_default();
    let set_title = move |ev| {
        let value = event_target_value(&ev);
        edit_doc::<Forum>(sync, doc, |f| f.title = value);
    };
    view! {
        <h2>{move || ct().prepare_title}</h2>
        <p>{move || ct().prepare_help}</p>
        <label for="forum-title-input">{move || ct().forum_name}</label>
        <input id="forum-title-input" data-testid="forum-title-input" type="text" prop:value=title
            readonly=read_only on:change=set_title />
        <Sessions doc forum=f read_only />
        <ChairAndClerk doc forum_id=forum forum=f read_only />
        <Guests doc forum=f kind=Signal::derive(move || kind.get().map(|p| p.branch_kind)) read_only />
        <h3>{move || ct().script}</h3>
        {ScriptSection::ALL
            .into_iter()
            .map(|s| view! {
                <TextEditor doc field=ForumText::Script(s) label=script_label(ct(), s)
                    testid=format!("script-{}", script_key(s)) rows=5 read_only />
            })
            .collect_view()}
    }
}

#[component]
fn Sessions(doc: DocumentId, forum: Memo<Option<Forum>>, read_only: bool) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let sessions = move || forum.get().map(|f| f.sessions).unwrap_or_default();
    let add = move |_| {
        let id = new_item_id("s");
        edit_doc::<Forum>(sync, doc, move |f| {
            if f.sessions.len() < MAX_SESSIONS {
                f.sessions.push(Session {
                    id,
                    date: String::new(),
                    starts_at: String::new(),
                    place: String::new(),
                });
            }
        });
    };
    let set = move |id: String, part: fn(&mut Session) -> &mut String, value: String| {
        edit_doc::<Forum>(sync, doc, move |f| {
            if let Some(s) = f.sessions.iter_mut().find(|s| s.id == id) {
                *part(s) = value;
            }
        });
    };
    let remove = move |id: String| edit_doc::<Forum>(sync, doc, move |f| f.sessions.retain(|s| s.id != id));
    view! {
        <h3>{move || ct().sessions}</h3>
        <ol data-testid="sessions">
            <For each=sessions key=|s| format!("{s:?}") let:s>
                {
                    let (id1, id2, id3, id4) = (s.id.clone(), s.id.clone(), s.id.clone(), s.id.clone());
                    view! {
                        <li class="row">
                            <label>{move || ct().date}
                                <input type="date" prop:value=s.date.clone() readonly=read_only
                                    on:change=move |ev| set(id1.clone(), |s| &mut s.date, event_target_value(&ev)) />
                            </label>
                            <label>{move || ct().time}
                                <input type="time" prop:value=s.starts_at.clone() readonly=read_only
                                    on:change=move |ev| set(id2.clone(), |s| &mut s.starts_at, event_target_value(&ev)) />
                            </label>
                            <label>{move || ct().place}
                                <input type="text" prop:value=s.place.clone() readonly=read_only
                                    on:change=move |ev| set(id3.clone(), |s| &mut s.place, event_target_value(&ev)) />
                            </label>
                            <Show when=move || !read_only>
                                <button type="button" on:click={let id = id4.clone(); move |_| remove(id.clone())}>
                                    {move || ct().remove}
                                </button>
                            </Show>
                        </li>
                    }
                }
            </For>
        </ol>
        <Show when=move || !read_only && sessions().len() < MAX_SESSIONS>
            <button type="button" data-testid="add-session" on:click=add>{move || ct().add_session}</button>
        </Show>
    }
}

#[component]
fn ChairAndClerk(
    doc: DocumentId,
    forum_id: ForumId,
    forum: Memo<Option<Forum>>,
    read_only: bool,
) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let account = use_account();
    let manages = account.role().is_some_and(|r| r.manages_roster());
    let notice = RwSignal::new(None::<&'static str>);
    let chair = move || forum.get().and_then(|f| f.chair).map(|m| m.to_string()).unwrap_or_default();
    let clerk = move || forum.get().and_then(|f| f.clerk).map(|m| m.to_string()).unwrap_or_default();
    let set_chair = move |ev| {
        let chosen: Option<MemberId> = event_target_value(&ev).parse().ok();
        edit_doc::<Forum>(sync, doc, move |f| f.chair = chosen);
    };
    let set_clerk = move |ev| {
        let chosen: Option<MemberId> = event_target_value(&ev).parse().ok();
        let before = forum.get_untracked().and_then(|f| f.clerk);
        edit_doc::<Forum>(sync, doc, move |f| f.clerk = chosen);
        if !manages {
            return;
        }
        // The relay's roster decides who may write the minutes: tell it too (online only).
        let account = use_account();
        leptos::task::spawn_local(async move {
            let mut ok = true;
            if let Some(old) = before.filter(|old| Some(*old) != chosen) {
                ok &= account.set_clerk(forum_id, old, false).await.is_ok();
            }
            if let Some(new) = chosen {
                ok &= account.set_clerk(forum_id, new, true).await.is_ok();
            }
            notice.set(Some(if ok { ct().clerk_granted } else { ct().clerk_grant_failed }));
        });
    };
    let options = move |selected: String| member_options(&selected, ("", ct().nobody));
    view! {
        <h3>{move || ct().chair_and_clerk}</h3>
        <label>{move || ct().chair}
            <select data-testid="chair" disabled=read_only on:change=set_chair>{move || options(chair())}</select>
        </label>
        <label>{move || ct().clerk}
            <select data-testid="clerk" disabled=read_only on:change=set_clerk>{move || options(clerk())}</select>
        </label>
        <p data-testid="clerk-notice">{move || notice.get()}</p>
    }
}

#[component]
fn Guests(
    doc: DocumentId,
    forum: Memo<Option<Forum>>,
    kind: Signal<Option<BranchKind>>,
    read_only: bool,
) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let guests = move || forum.get().map(|f| f.guests).unwrap_or_default();
    let add = move |organisation: String| {
        let id = new_item_id("g");
        edit_doc::<Forum>(sync, doc, move |f| f.guests.push(Guest { id, name: String::new(), organisation }));
    };
    let set_name = move |id: String, name: String| {
        edit_doc::<Forum>(sync, doc, move |f| {
            if let Some(g) = f.guests.iter_mut().find(|g| g.id == id) {
                g.name = name;
            }
        });
    };
    let remove = move |id: String| edit_doc::<Forum>(sync, doc, move |f| f.guests.retain(|g| g.id != id));
    // Suggestions the list does not have yet.
    let suggestions = move || {
        let have: Vec<String> = guests().into_iter().map(|g| g.organisation).collect();
        suggested_guests(ct(), kind.get())
            .into_iter()
            .filter(|o| !have.iter().any(|h| h == o))
            .collect::<Vec<_>>()
    };
    view! {
        <h3>{move || ct().guests}</h3>
        <ul data-testid="guests">
            <For each=guests key=|g| format!("{g:?}") let:g>
                {
                    let (id1, id2) = (g.id.clone(), g.id.clone());
                    view! {
                        <li class="row">
                            <span>{g.organisation.clone()}</span>
                            <input type="text" placeholder=move || ct().guest_name prop:value=g.name.clone()
                                readonly=read_only on:change=move |ev| set_name(id1.clone(), event_target_value(&ev)) />
                            <Show when=move || !read_only>
                                <button type="button" on:click={let id = id2.clone(); move |_| remove(id.clone())}>
                                    {move || ct().remove}
                                </button>
                            </Show>
                        </li>
                    }
                }
            </For>
        </ul>
        <Show when=move || !read_only>
            <p>{move || ct().suggested_guests}</p>
            <div class="chips" data-testid="guest-suggestions">
                <For each=suggestions key=|o| o.to_string() let:o>
                    <button type="button" class="chip" on:click=move |_| add(o.to_owned())>{format!("+ {o}")}</button>
                </For>
            </div>
        </Show>
    }
}

/// The guests the seed (part 1.3) asks a branch of this kind to invite.
fn suggested_guests(t: &'static CommitteeTexts, kind: Option<BranchKind>) -> Vec<&'static str> {
    let mut list = t.guests_every_branch.to_vec();
    match kind {
        Some(BranchKind::Residential) => list.extend_from_slice(t.guests_residential),
        Some(BranchKind::AgencyOrUnit | BranchKind::Enterprise) => list.extend_from_slice(t.guests_agency),
        None => {}
    }
    list
}

pub(crate) fn script_label(t: &'static CommitteeTexts, section: ScriptSection) -> &'static str {
    match section {
        ScriptSection::Opening => t.script_opening,
        ScriptSection::Situation => t.script_situation,
        ScriptSection::ChallengesAndTasks => t.script_challenges,
        ScriptSection::Manifestations => t.script_manifestations,
        ScriptSection::DiscussionPrompts => t.script_prompts,
    }
}

fn script_key(section: ScriptSection) -> &'static str {
    match section {
        ScriptSection::Opening => "opening",
        ScriptSection::Situation => "situation",
        ScriptSection::ChallengesAndTasks => "challenges",
        ScriptSection::Manifestations => "manifestations",
        ScriptSection::DiscussionPrompts => "prompts",
    }
}
