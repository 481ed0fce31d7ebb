//! `/dien-dan`: the branch's forum in the hall: title, sessions, guests and script (prepared on
//! `/chuan-bi`), attendance with reasons for absence, the minutes (biên bản) in a textarea, the
//! manifestations raised with their causes, members' proposals and the secretary's conclusion.
//! The committee and the forum's clerk write; everyone else reads.
//!
//! The minutes are a textarea. Every edit of the textarea becomes the smallest character
//! splice of the minutes' automerge Text, so two people typing at once merge character by
//! character; remote changes re-render the textarea with the caret kept next to the same text.

use chibo_shared::catalogue::Catalogue;
use chibo_shared::ids::{DocumentId, MemberId};
use chibo_shared::schema::{
    Attendance, AttendanceStatus, DocPath, Forum, ForumText, Guest, LongText, Proposal, RaisedManifestation,
    ScriptSection, Session,
};
use leptos::prelude::*;

use crate::components::TextEditor;
use crate::i18n::{use_committee_texts as ct, use_texts};
use crate::pages::{doc_memo, edit_doc, member_options, new_item_id};
use crate::sync::SyncHandle;
use crate::{member_name, use_account, use_branch, use_roster};

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
    move || {
        let b = use_branch();
        match b.forum {
            None => view! { <p data-testid="no-forum">{use_texts().no_forum_yet}</p> }.into_any(),
            Some(forum) => {
                let path = DocPath::Forum { branch: b.branch, forum };
                let read_only = !use_account().may_write(&path);
                view! { <Forum doc=path.document_id() read_only /> }.into_any()
            }
        }
    }
}

#[component]
fn Forum(doc: DocumentId, read_only: bool) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    // One hydration of the document per change, shared by the sections below.
    let full = doc_memo::<Forum>(sync, doc);
    let forum = Memo::new(move |_| full.get().map(ForumView::from));
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
        <section>
            <h3>"Biên bản"</h3>
            <TextEditor doc field=ForumText::Minutes label="Biên bản" testid="minutes" rows=14 placeholder="Đang mở biên bản…" read_only />
        </section>
        <Attendances doc forum=full read_only />
        <Raised doc forum=full read_only />
        <Proposals doc forum=full read_only />
        <section>
            <h3>{move || ct().conclusion}</h3>
            <TextEditor doc field=ForumText::Conclusion label=ct().conclusion_label testid="conclusion" rows=6 read_only />
        </section>
    }
}

/// Who came, and why the others did not.
#[component]
fn Attendances(doc: DocumentId, forum: Memo<Option<Forum>>, read_only: bool) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let record = move |member: String, status: Option<AttendanceStatus>, reason: Option<String>| {
        edit_doc::<Forum>(sync, doc, move |f| match status {
            None if reason.is_none() => {
                f.attendance.remove(&member);
            }
            _ => {
                let entry = f
                    .attendance
                    .entry(member)
                    .or_insert(Attendance { status: AttendanceStatus::Present, reason: String::new() });
                if let Some(status) = status {
                    entry.status = status;
                }
                if let Some(reason) = reason {
                    entry.reason = reason;
                }
            }
        });
    };
    let counts = move || {
        let f = forum.get();
        let count = |s| f.as_ref().map_or(0, |f| f.attendance.values().filter(|a| a.status == s).count());
        (
            count(AttendanceStatus::Present),
            count(AttendanceStatus::AbsentExcused),
            count(AttendanceStatus::AbsentUnexcused),
        )
    };
    view! {
        <section>
            <h3>{move || ct().attendance}</h3>
            <p data-testid="attendance-counts">{move || {
                let (p, e, u) = counts();
                format!("{}: {p} · {}: {e} · {}: {u}", ct().present, ct().absent_excused, ct().absent_unexcused)
            }}</p>
            <ul class="attendance">
                <For each=use_roster key=|m| m.id.clone() let:m>
                    {
                        let (id1, id2, id3) = (m.id.clone(), m.id.clone(), m.id.clone());
                        let current = Memo::new(move |_| forum.get().and_then(|f| f.attendance.get(&id1).cloned()));
                        let status = move || current.get().map(|a| a.status.as_str()).unwrap_or("");
                        let absent = move || current.get().is_some_and(|a| a.status != AttendanceStatus::Present);
                        let reason = move || current.get().map(|a| a.reason).unwrap_or_default();
                        view! {
                            <li class="row" data-testid="attendance-row" data-status=status>
                                <span>{m.name.clone()}</span>
                                <select disabled=read_only on:change=move |ev| {
                                    record(id2.clone(), AttendanceStatus::parse(&event_target_value(&ev)), None)
                                }>
                                    {move || {
                                        let now = status();
                                        [("", ct().not_recorded), ("present", ct().present),
                                         ("absent-excused", ct().absent_excused), ("absent-unexcused", ct().absent_unexcused)]
                                            .into_iter()
                                            .map(|(v, l)| view! { <option value=v selected=now == v>{l}</option> })
                                            .collect_view()
                                    }}
                                </select>
                                <Show when=absent>
                                    <input type="text" placeholder=move || ct().absence_reason prop:value=reason
                                        readonly=read_only
                                        on:change={let id = id3.clone(); move |ev| record(id.clone(), None, Some(event_target_value(&ev)))} />
                                </Show>
                            </li>
                        }
                    }
                </For>
            </ul>
        </section>
    }
}

/// A member select (roster), `""` for nobody.
fn member_choice(selected: Option<MemberId>) -> Vec<AnyView> {
    member_options(&selected.map(|m| m.to_string()).unwrap_or_default(), ("", ct().nobody))
}

/// Manifestations raised in discussion, with who raised them and their causes.
#[component]
fn Raised(doc: DocumentId, forum: Memo<Option<Forum>>, read_only: bool) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let ids = move || {
        forum.get().map(|f| f.raised.into_iter().map(|r| r.id).collect::<Vec<_>>()).unwrap_or_default()
    };
    let code = RwSignal::new(String::from("A1"));
    let add = move |_| {
        let id = new_item_id("r");
        let code = code.get_untracked();
        edit_doc::<Forum>(sync, doc, move |f| {
            f.raised.push(RaisedManifestation {
                id,
                code,
                raised_by: None,
                summary: LongText::default(),
                causes: LongText::default(),
            });
        });
    };
    let catalogue = Catalogue::builtin();
    view! {
        <section>
            <h3>{move || ct().raised}</h3>
            <For each=ids key=|id| id.clone() let:id>
                {
                    let item = {
                        let id = id.clone();
                        move || forum.get().and_then(|f| f.raised.into_iter().find(|r| r.id == id))
                    };
                    let id_for_by = id.clone();
                    let set_by = move |ev| {
                        let by: Option<MemberId> = event_target_value(&ev).parse().ok();
                        let id = id_for_by.clone();
                        edit_doc::<Forum>(sync, doc, move |f| {
                            if let Some(r) = f.raised.iter_mut().find(|r| r.id == id) {
                                r.raised_by = by;
                            }
                        });
                    };
                    let heading = {
                        let item = item.clone();
                        move || item().map(|r| {
                            let topic = catalogue.item(&r.code).map(|i| i.topic().to_owned()).unwrap_or_default();
                            format!("{} — {topic}", r.code)
                        })
                    };
                    view! {
                        <div class="card" data-testid="raised-item">
                            <h4>{heading}</h4>
                            <label>{move || ct().raised_by}
                                <select disabled=read_only on:change=set_by>{move || member_choice(item().and_then(|r| r.raised_by))}</select>
                            </label>
                            <TextEditor doc field=ForumText::RaisedSummary { id: id.clone() } label=ct().raised_summary
                                testid=format!("raised-summary-{id}") rows=3 read_only />
                            <TextEditor doc field=ForumText::RaisedCauses { id: id.clone() } label=ct().raised_causes
                                testid=format!("raised-causes-{id}") rows=3 read_only />
                        </div>
                    }
                }
            </For>
            <Show when=move || !read_only>
                <div class="row">
                    <select data-testid="raise-code" on:change=move |ev| code.set(event_target_value(&ev))>
                        {catalogue.items().iter().map(|i| view! { <option value=i.code().to_owned()>{format!("{} — {}", i.code(), i.topic())}</option> }).collect_view()}
                    </select>
                    <button type="button" data-testid="add-raised" on:click=add>{move || ct().add_raised}</button>
                </div>
            </Show>
        </section>
    }
}

/// Solutions proposed by members.
#[component]
fn Proposals(doc: DocumentId, forum: Memo<Option<Forum>>, read_only: bool) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let proposals = move || forum.get().map(|f| f.proposals).unwrap_or_default();
    let by = RwSignal::new(None::<MemberId>);
    let add = move |_| {
        let Some(member) = by.get_untracked() else { return };
        let id = new_item_id("p");
        edit_doc::<Forum>(sync, doc, move |f| {
            f.proposals.push(Proposal { id, member, text: LongText::default() })
        });
    };
    view! {
        <section>
            <h3>{move || ct().proposals}</h3>
            <For each=proposals key=|p| p.id.clone() let:p>
                <TextEditor doc field=ForumText::Proposal { id: p.id.clone() } label=member_name(&p.member)
                    testid=format!("proposal-{}", p.id) rows=3 read_only />
            </For>
            <Show when=move || !read_only>
                <div class="row">
                    <select data-testid="proposal-member" on:change=move |ev| by.set(event_target_value(&ev).parse().ok())>
                        {move || member_choice(by.get())}
                    </select>
                    <button type="button" data-testid="add-proposal" on:click=add>{move || ct().add_proposal}</button>
                </div>
            </Show>
        </section>
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
