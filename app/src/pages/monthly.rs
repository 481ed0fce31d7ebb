//! `/hop-thang`: the committee's monthly review (seed part 4, WORKFLOW "monthly"): for a chosen
//! month, each member's plan items with the progress they reported, the committee's comment and
//! flag on each member (one review per committee member, so two reviewers offline never overwrite
//! each other), and the progress of the branch's collective action plan.

use chibo_shared::ids::{DocumentId, MemberId};
use chibo_shared::schema::{
    DocPath, LongText, MeetingText, MonthlyMeeting, PersonalPlan, PlanReview, ProgressStatus, Resolution,
    YearMonth,
};
use leptos::prelude::*;

use crate::components::TextEditor;
use crate::i18n::{CommitteeTexts, use_committee_texts as ct};
use crate::pages::resolution::owner_label;
use crate::pages::{doc_memo, edit_doc, new_item_id};
use crate::sync::SyncHandle;
use crate::{member_name, open_documents, use_account, use_branch, use_roster};

/// This month on the device's clock.
pub(crate) fn this_month() -> YearMonth {
    let d = js_sys::Date::new_0();
    let year = u16::try_from(d.get_full_year()).unwrap_or(2026);
    let month = u8::try_from(d.get_month() + 1).unwrap_or(1);
    YearMonth::new(year, month).unwrap_or(YearMonth::new(2026, 1).expect("a valid month"))
}

#[component]
pub fn MonthlyPage() -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let month = RwSignal::new(this_month());
    // Open the month's meeting and that year's plans (named to the relay first).
    Effect::new(move |_| {
        let m = month.get();
        let b = use_branch();
        let mut paths = vec![DocPath::MonthlyMeeting { branch: b.branch, month: m }];
        paths.extend(use_roster().iter().filter_map(|r| r.member_id()).map(|member| DocPath::PersonalPlan {
            branch: b.branch,
            member,
            year: m.year(),
        }));
        open_documents(sync, &use_account(), paths);
    });
    view! {
        <h2>{move || ct().monthly_title}</h2>
        <label>{move || ct().month}
            <input type="month" data-testid="month" prop:value=move || month.get().to_string()
                on:change=move |ev| {
                    if let Ok(m) = event_target_value(&ev).parse::<YearMonth>() {
                        month.set(m);
                    }
                } />
        </label>
        {move || view! { <Month month=month.get() /> }}
    }
}

#[component]
fn Month(month: YearMonth) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let b = use_branch();
    let path = DocPath::MonthlyMeeting { branch: b.branch, month };
    let meeting = path.document_id();
    let read_only = !use_account().may_write(&path);
    let m = doc_memo::<MonthlyMeeting>(sync, meeting);
    let members = move || use_roster().into_iter().filter_map(|r| r.member_id()).collect::<Vec<_>>();
    view! {
        <section>
            <h3>{move || ct().members_progress}</h3>
            <For each=members key=|id| id.to_string() let:member>
                <MemberMonth member month meeting reviews=m read_only />
            </For>
        </section>
        <section>
            <h3>{move || ct().collective_plan}</h3>
            {b.forum.map(|forum| view! { <CollectiveTasks resolution=DocPath::Resolution { branch: b.branch, forum }.document_id() /> })}
            <TextEditor doc=meeting field=MeetingText::ActionPlanReview label=ct().collective_review
                testid="action-plan-review" rows=5 read_only />
        </section>
    }
}

/// One member's items and progress this month, and the committee's reviews of them.
#[component]
fn MemberMonth(
    member: MemberId,
    month: YearMonth,
    meeting: DocumentId,
    reviews: Memo<Option<MonthlyMeeting>>,
    read_only: bool,
) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let branch = use_branch().branch;
    let me = use_branch().member;
    let plan = doc_memo::<PersonalPlan>(
        sync,
        DocPath::PersonalPlan { branch, member, year: month.year() }.document_id(),
    );
    let items = move || {
        plan.get()
            .map(|p| {
                p.items
                    .into_iter()
                    .map(|i| {
                        let progress = i.progress_in(month.month()).cloned();
                        (i.id, i.content.as_str().to_owned(), progress)
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let of_member = move || {
        reviews
            .get()
            .map(|m| m.plan_reviews.into_iter().filter(|r| r.member == member).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mine = move || of_member().into_iter().find(|r| r.reviewer == me).map(|r| r.id);
    let start_review = move |_| {
        let id = new_item_id("v");
        edit_doc::<MonthlyMeeting>(sync, meeting, move |m| {
            m.plan_reviews.push(PlanReview {
                id,
                member,
                reviewer: me,
                overall: None,
                note: LongText::default(),
            });
        });
    };
    let set_flag = move |id: String, flag: Option<ProgressStatus>| {
        edit_doc::<MonthlyMeeting>(sync, meeting, move |m| {
            if let Some(r) = m.plan_reviews.iter_mut().find(|r| r.id == id) {
                r.overall = flag;
            }
        });
    };
    view! {
        <div class="card" data-testid="member-month" data-member=member.to_string()>
            <h4>{member_name(&member)}</h4>
            <Show when=move || plan.get().is_none()>
                <p>{move || ct().plan_not_here}</p>
            </Show>
            <ul>
                <For each=items key=|item| format!("{item:?}") let:item>
                    <li data-testid="member-item">
                        {format!("{} — ", if item.1.is_empty() { "…".to_owned() } else { item.1.clone() })}
                        <strong>{progress_label(ct(), item.2.as_ref().and_then(|p| p.status))}</strong>
                        {item.2.map(|p| p.note.as_str().to_owned()).filter(|n| !n.is_empty()).map(|n| format!(" · {n}"))}
                    </li>
                </For>
            </ul>
            <For each=of_member key=|r| (r.id.clone(), r.overall) let:r>
                {
                    let id = r.id.clone();
                    let is_mine = r.reviewer == me;
                    let editable = is_mine && !read_only;
                    view! {
                        <div class="review" data-testid="plan-review">
                            <label>{format!("{} — {}", ct().review_by, member_name(&r.reviewer))}
                                <select disabled=!editable on:change={let id = id.clone(); move |ev| set_flag(id.clone(), ProgressStatus::parse(&event_target_value(&ev)))}>
                                    {flag_options(r.overall)}
                                </select>
                            </label>
                            <TextEditor doc=meeting field=MeetingText::PlanReview { id: id.clone() } label=ct().committee_comment
                                testid=format!("review-{id}") rows=2 read_only=!editable />
                        </div>
                    }
                }
            </For>
            <Show when=move || !read_only && mine().is_none()>
                <button type="button" data-testid="start-review" on:click=start_review>{move || ct().add_comment}</button>
            </Show>
        </div>
    }
}

fn flag_options(selected: Option<ProgressStatus>) -> impl IntoView {
    let now = selected.map(|s| s.as_str()).unwrap_or("");
    [
        ("", ct().not_flagged),
        ("done", ct().flag_done),
        ("in-progress", ct().flag_in_progress),
        ("not-done", ct().flag_not_done),
    ]
    .into_iter()
    .map(|(v, l)| view! { <option value=v selected=now == v>{l}</option> })
    .collect_view()
}

pub(crate) fn progress_label(t: &'static CommitteeTexts, status: Option<ProgressStatus>) -> &'static str {
    match status {
        None => t.not_reported,
        Some(ProgressStatus::Done) => t.flag_done,
        Some(ProgressStatus::InProgress) => t.flag_in_progress,
        Some(ProgressStatus::NotDone) => t.flag_not_done,
    }
}

/// The resolution's tasks: who carries them and by when.
#[component]
fn CollectiveTasks(resolution: DocumentId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let r = doc_memo::<Resolution>(sync, resolution);
    let tasks = move || r.get().map(|r| r.tasks).unwrap_or_default();
    view! {
        <ul data-testid="collective-tasks">
            <For each=tasks key=|t| (t.id.clone(), t.owner.clone(), t.deadline.clone()) let:t>
                <li>{format!("{} — {} — {}", t.content.as_str(), owner_label(&t.owner), t.deadline)}</li>
            </For>
        </ul>
    }
}
