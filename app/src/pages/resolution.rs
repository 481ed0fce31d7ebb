//! `/nghi-quyet`: the committee drafts the branch resolution / action plan together after the
//! forum (seed part 3): number, title, date, the four sections and the tasks (owner, deadline,
//! measure), each text typed by several committee members at once. The secretary opens the vote;
//! members vote from their own devices (`/bieu-quyet`, their own ballot documents); the tally and
//! the majority rule show live here, and adoption freezes the draft with the heads voted on.

use chibo_shared::ids::{DocumentId, ForumId, MemberId};
use std::collections::BTreeMap;

use chibo_shared::review::{self, PARTY_MAJORITY, VoteTally};
use chibo_shared::schema::{
    Ballot, COMMITTEE_OWNER, DocPath, LongText, Resolution, ResolutionSection, ResolutionStatus,
    ResolutionTask, ResolutionText, hydrate,
};
use leptos::logging::error;
use leptos::prelude::*;

use crate::components::TextEditor;
use crate::i18n::{CommitteeTexts, use_committee_texts as ct};
use crate::pages::{doc_memo, edit_doc, member_options, new_item_id, now};
use crate::sync::SyncHandle;
use crate::{member_name, use_account, use_branch, use_roster};

#[component]
pub fn ResolutionPage() -> impl IntoView {
    move || {
        let b = use_branch();
        match b.forum {
            None => view! { <p data-testid="no-forum">{ct().no_forum}</p> }.into_any(),
            Some(forum) => view! { <Draft forum /> }.into_any(),
        }
    }
}

#[component]
fn Draft(forum: ForumId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let branch = use_branch().branch;
    let path = DocPath::Resolution { branch, forum };
    let doc = path.document_id();
    let may_write = use_account().may_write(&path);
    let r = doc_memo::<Resolution>(sync, doc);
    // The adopted or voted-on text is frozen: only a draft is edited.
    let frozen = move || r.get().is_some_and(|r| r.status != ResolutionStatus::Draft);
    // A memo, not a derived signal: it must notify only when the answer changes, or every keystroke
    // in the document would rebuild the section editors below (losing focus and caret).
    let read_only: Signal<bool> = Memo::new(move |_| !may_write || frozen()).into();
    let field = move |get: fn(&Resolution) -> String,
                      set: fn(&mut Resolution, String),
                      testid: &'static str,
                      label: fn(&CommitteeTexts) -> &'static str| {
        view! {
            <label>{move || label(ct())}
                <input type="text" data-testid=testid prop:value=move || r.get().map(|r| get(&r)).unwrap_or_default()
                    readonly=read_only
                    on:change=move |ev| { let v = event_target_value(&ev); edit_doc::<Resolution>(sync, doc, move |r| set(r, v)); } />
            </label>
        }
    };
    view! {
        <h2>{move || ct().resolution_title}</h2>
        <p data-testid="resolution-status" data-status=move || r.get().map(|r| r.status.as_str()).unwrap_or("")>
            {move || status_label(ct(), r.get().map(|r| r.status))}
        </p>
        <VotePanel forum doc resolution=r />
        {field(|r| r.number.clone(), |r, v| r.number = v, "resolution-number", |t| t.resolution_number)}
        {field(|r| r.title.clone(), |r, v| r.title = v, "resolution-name", |t| t.resolution_name)}
        <label>{move || ct().date}
            <input type="date" data-testid="resolution-date" prop:value=move || r.get().map(|r| r.date).unwrap_or_default()
                readonly=read_only
                on:change=move |ev| { let v = event_target_value(&ev); edit_doc::<Resolution>(sync, doc, move |r| r.date = v); } />
        </label>
        {move || {
            let read_only = read_only.get();
            ResolutionSection::ALL
                .into_iter()
                .map(|s| view! {
                    <TextEditor doc field=ResolutionText::Section(s) label=section_label(ct(), s)
                        testid=format!("section-{}", section_key(s)) rows=6 read_only />
                })
                .collect_view()
        }}
        <Tasks doc resolution=r read_only />
    }
}

#[component]
fn Tasks(doc: DocumentId, resolution: Memo<Option<Resolution>>, read_only: Signal<bool>) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let ids = move || {
        resolution.get().map(|r| r.tasks.into_iter().map(|t| t.id).collect::<Vec<_>>()).unwrap_or_default()
    };
    let add = move |_| {
        let id = new_item_id("t");
        edit_doc::<Resolution>(sync, doc, move |r| {
            r.tasks.push(ResolutionTask {
                id,
                content: LongText::default(),
                owner: COMMITTEE_OWNER.to_owned(),
                deadline: String::new(),
                measure: LongText::default(),
                manifestation_codes: Vec::new(),
            });
        });
    };
    let set = move |id: String, f: Box<dyn FnOnce(&mut ResolutionTask)>| {
        edit_doc::<Resolution>(sync, doc, move |r| {
            if let Some(t) = r.tasks.iter_mut().find(|t| t.id == id) {
                f(t);
            }
        });
    };
    view! {
        <h3>{move || ct().tasks}</h3>
        <For each=ids key=|id| id.clone() let:id>
            {
                let task = {
                    let id = id.clone();
                    move || resolution.get().and_then(|r| r.tasks.into_iter().find(|t| t.id == id))
                };
                let (id_owner, id_deadline, id_content, id_measure) = (id.clone(), id.clone(), id.clone(), id.clone());
                let owner = {
                    let task = task.clone();
                    move || task().map(|t| t.owner).unwrap_or_default()
                };
                let deadline = move || task().map(|t| t.deadline).unwrap_or_default();
                view! {
                    <div class="card" data-testid="task" data-task=id.clone()>
                        {move || view! {
                            <TextEditor doc field=ResolutionText::TaskContent { id: id_content.clone() } label=ct().task_content
                                testid=format!("task-content-{id_content}") rows=3 read_only=read_only.get() />
                        }}
                        <div class="row">
                            <label>{move || ct().task_owner}
                                <select data-testid="task-owner" disabled=read_only on:change=move |ev| {
                                    let v = event_target_value(&ev);
                                    set(id_owner.clone(), Box::new(move |t| t.owner = v));
                                }>
                                    {move || owner_options(owner())}
                                </select>
                            </label>
                            <label>{move || ct().task_deadline}
                                <input type="date" data-testid="task-deadline" prop:value=deadline readonly=read_only
                                    on:change=move |ev| {
                                        let v = event_target_value(&ev);
                                        set(id_deadline.clone(), Box::new(move |t| t.deadline = v));
                                    } />
                            </label>
                        </div>
                        {move || view! {
                            <TextEditor doc field=ResolutionText::TaskMeasure { id: id_measure.clone() } label=ct().task_measure
                                testid=format!("task-measure-{id_measure}") rows=2 read_only=read_only.get() />
                        }}
                    </div>
                }
            }
        </For>
        <Show when=move || !read_only.get()>
            <button type="button" data-testid="add-task" on:click=add>{move || ct().add_task}</button>
        </Show>
    }
}

fn owner_options(selected: String) -> Vec<AnyView> {
    member_options(&selected, (COMMITTEE_OWNER, ct().committee_body))
}

/// The owner of a task as people read it.
pub(crate) fn owner_label(owner: &str) -> String {
    if owner == COMMITTEE_OWNER {
        return ct().committee_body.to_owned();
    }
    owner.parse::<MemberId>().map(|m| member_name(&m)).unwrap_or_else(|_| owner.to_owned())
}

/// The vote: open it (secretary), the live tally and the majority rule, adoption.
#[component]
fn VotePanel(forum: ForumId, doc: DocumentId, resolution: Memo<Option<Resolution>>) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let account = use_account();
    let secretary = account.role().is_some_and(|r| r.manages_roster());
    let branch = use_branch().branch;
    let eligible = move || use_roster().iter().filter_map(|m| m.member_id()).collect::<Vec<MemberId>>();
    let ballots = move |members: &[MemberId]| -> BTreeMap<MemberId, Ballot> {
        members
            .iter()
            .filter_map(|m| {
                let ballot = DocPath::Ballot { branch, forum, member: *m }.document_id();
                sync.track(ballot);
                Some((*m, sync.read(ballot, |am| hydrate::<Ballot>(am).ok()).flatten()?))
            })
            .collect()
    };
    let tally = Memo::new(move |_| {
        let members = eligible();
        let ballots = ballots(&members);
        sync.track(doc);
        sync.read(doc, |am| review::tally(am, &members, |m| ballots.get(m), PARTY_MAJORITY).ok()).flatten()
    });
    let status = move || resolution.get().map(|r| r.status);
    let open = move |_| match sync.change(doc, |am| review::open_vote(am, now())) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => error!("resolution: vote not opened: {e}"),
        Err(e) => error!("resolution: vote not opened: {e}"),
    };
    let adopt = move |_| {
        let members = eligible();
        let ballots = ballots(&members);
        match sync.change(doc, |am| review::adopt(am, &members, |m| ballots.get(m), PARTY_MAJORITY, now())) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => error!("resolution: not adopted: {e}"),
            Err(e) => error!("resolution: not adopted: {e}"),
        }
    };
    let adopted_heads = move || {
        resolution.get().and_then(|r| r.adoption).map(|a| {
            a.heads.iter().map(|h| h.chars().take(8).collect::<String>()).collect::<Vec<_>>().join(", ")
        })
    };
    view! {
        <section class="card" data-testid="vote-panel">
            <h3>{move || ct().vote_heading}</h3>
            <Tally tally />
            <Show when=move || secretary && status() == Some(ResolutionStatus::Draft)>
                <button type="button" class="big" data-testid="open-vote" on:click=open>{move || ct().open_vote}</button>
            </Show>
            <Show when=move || secretary && status() == Some(ResolutionStatus::OpenForVote)>
                <button type="button" class="big" data-testid="adopt"
                    disabled=move || !tally.get().is_some_and(|t| t.adopted) on:click=adopt>
                    {move || ct().adopt}
                </button>
            </Show>
            <Show when=move || adopted_heads().is_some()>
                <p data-testid="adopted-heads">{move || format!("{} {}", ct().frozen_at, adopted_heads().unwrap_or_default())}</p>
            </Show>
        </section>
    }
}

/// The counts and the majority rule.
#[component]
pub(crate) fn Tally(tally: Memo<Option<VoteTally>>) -> impl IntoView {
    let t = move || tally.get();
    let count = move |f: fn(&VoteTally) -> u32| move || t().map_or(0, |v| f(&v));
    view! {
        <p data-testid="tally" data-for=count(|v| v.in_favour) data-against=count(|v| v.against)
            data-abstain=count(|v| v.abstain) data-eligible=count(|v| v.eligible)
            data-adopted=move || t().is_some_and(|v| v.adopted).to_string()>
            {move || t().map(|v| format!(
                "{}: {} · {}: {} · {}: {} · {}: {} / {}",
                ct().in_favour, v.in_favour, ct().against, v.against, ct().abstain, v.abstain,
                ct().not_voted_yet, v.not_voted, v.eligible
            ))}
        </p>
        <p data-testid="majority">{move || t().map(|v| {
            let verdict = if v.adopted { ct().majority_reached } else { ct().majority_not_reached };
            format!("{} {} · {verdict}", ct().majority_rule, v.required)
        })}</p>
        <Show when=move || t().is_some_and(|v| v.on_other_version > 0)>
            <p class="warning" data-testid="older-draft-votes">{move || {
                let names: Vec<String> = t()
                    .map(|v| v.on_other_versions().map(|m| member_name(&m.member)).collect())
                    .unwrap_or_default();
                format!("{} {}", ct().voted_on_older_draft, names.join(", "))
            }}</p>
        </Show>
    }
}

fn status_label(t: &'static CommitteeTexts, status: Option<ResolutionStatus>) -> &'static str {
    match status {
        None => t.opening,
        Some(ResolutionStatus::Draft) => t.status_draft,
        Some(ResolutionStatus::OpenForVote) => t.status_open,
        Some(ResolutionStatus::Adopted) => t.status_adopted,
    }
}

fn section_label(t: &'static CommitteeTexts, section: ResolutionSection) -> &'static str {
    match section {
        ResolutionSection::Basis => t.section_basis,
        ResolutionSection::Assessment => t.section_assessment,
        ResolutionSection::TasksAndSolutions => t.section_tasks,
        ResolutionSection::Implementation => t.section_implementation,
    }
}

fn section_key(section: ResolutionSection) -> &'static str {
    match section {
        ResolutionSection::Basis => "basis",
        ResolutionSection::Assessment => "assessment",
        ResolutionSection::TasksAndSolutions => "tasks",
        ResolutionSection::Implementation => "implementation",
    }
}
