//! `/tong-hop`: the secretary reviews the merged state of the branch (issue 5, part 6): a member ×
//! step matrix (self-assessment, plan, signature, this month's progress, vote), a heat map of the
//! 27 manifestations by degree across the branch, the conflicts where two devices set the same
//! field differently (with a way to settle them), and the history of any document with the member
//! and device names from the roster.
//!
//! Everything here is computed by `chibo_shared::review` from the documents on this device, so
//! it works offline and shows what has merged so far; a member whose documents have not arrived
//! shows as "not here yet", never as "not started".

use std::collections::BTreeMap;

use chibo_shared::catalogue::Catalogue;
use chibo_shared::commitment::CommitmentStatus;
use chibo_shared::ids::{ForumId, MemberId};
use chibo_shared::review::{
    self, AssessmentStep, HeatMap, MatrixRow, MemberDocs, PARTY_MAJORITY, PlanDoc, PlanStep, ProgressStep,
    SignatureStep, VoteState, VoteStep,
};
use chibo_shared::schema::{Ballot, Choice, DocPath, SelfAssessment, hydrate};
use leptos::prelude::*;

use crate::i18n::{CommitteeTexts, use_committee_texts as ct, use_lang};
use crate::pages::monthly::this_month;
use crate::sync::SyncHandle;
use crate::{member_name, use_account, use_branch, use_roster};

pub mod conflicts;
pub mod history;

use conflicts::Conflicts;
use history::History;

#[component]
pub fn ReviewPage() -> impl IntoView {
    view! {
        <h2>{move || ct().review_title}</h2>
        <p>{move || ct().review_help}</p>
        {move || use_branch().forum.map(|forum| view! { <Matrix forum /> <Heat forum /> })}
        <Conflicts />
        <History />
    }
}

/// The members entitled to vote and on the matrix: the branch roster.
fn roster_members() -> Vec<MemberId> {
    use_roster().iter().filter_map(|m| m.member_id()).collect()
}

fn assessment_of(sync: SyncHandle, path: DocPath) -> Option<SelfAssessment> {
    let doc = path.document_id();
    sync.track(doc);
    sync.read(doc, |am| hydrate::<SelfAssessment>(am).ok()).flatten()
}

#[component]
fn Matrix(forum: ForumId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let b = use_branch();
    let (branch, year) = (b.branch, b.year);
    let month = this_month().month();
    let rows = Memo::new(move |_| {
        let members = roster_members();
        let ballots: BTreeMap<MemberId, Ballot> = members
            .iter()
            .filter_map(|m| {
                let doc = DocPath::Ballot { branch, forum, member: *m }.document_id();
                sync.track(doc);
                Some((*m, sync.read(doc, |am| hydrate::<Ballot>(am).ok()).flatten()?))
            })
            .collect();
        let resolution = DocPath::Resolution { branch, forum }.document_id();
        sync.track(resolution);
        let tally = sync
            .read(resolution, |am| review::tally(am, &members, |m| ballots.get(m), PARTY_MAJORITY).ok())
            .flatten();
        let account = use_account();
        let known = |m: &MemberId, key: &[u8; 32]| account.is_key_of(m, key);
        members
            .iter()
            .map(|member| {
                let assessment =
                    assessment_of(sync, DocPath::SelfAssessment { branch, forum, member: *member });
                let plan = DocPath::PersonalPlan { branch, member: *member, year }.document_id();
                sync.track(plan);
                let row = |plan_doc: Option<PlanDoc<'_>>| {
                    let docs =
                        MemberDocs { member: *member, assessment: assessment.as_ref(), plan: plan_doc };
                    review::member_matrix(&[docs], month, tally.as_ref(), known).pop()
                };
                sync.read(plan, |am| row(Some(PlanDoc { id: plan, doc: am }))).unwrap_or_else(|| row(None))
            })
            .collect::<Option<Vec<MatrixRow>>>()
            .unwrap_or_default()
    });
    view! {
        <h3>{move || ct().matrix}</h3>
        <div class="scroll">
            <table class="matrix" data-testid="matrix">
                <thead>
                    <tr>
                        <th>{move || ct().member}</th>
                        <th>{move || ct().step_assessment}</th>
                        <th>{move || ct().step_plan}</th>
                        <th>{move || ct().step_signature}</th>
                        <th>{move || ct().step_progress}</th>
                        <th>{move || ct().step_vote}</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || rows.get() key=|r| format!("{r:?}") let:row>
                        {
                            let t = ct();
                            let id = row.member.to_string();
                            let cell = |step: &'static str, (state, text): (&'static str, String)| view! {
                                <td data-testid=format!("matrix-{step}") data-state=state class=format!("cell-{state}")>{text}</td>
                            };
                            view! {
                                <tr data-testid="matrix-row" data-member=id>
                                    <th>{member_name(&row.member)}</th>
                                    {cell("assessment", assessment_cell(t, row.assessment))}
                                    {cell("plan", plan_cell(t, row.plan))}
                                    {cell("signature", signature_cell(t, row.signature))}
                                    {cell("progress", progress_cell(t, row.progress))}
                                    {cell("vote", vote_cell(t, &row.vote))}
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
        </div>
    }
}

fn assessment_cell(t: &CommitteeTexts, step: AssessmentStep) -> (&'static str, String) {
    match step {
        AssessmentStep::Missing => ("missing", t.not_here.to_owned()),
        AssessmentStep::NotStarted => ("none", t.not_started.to_owned()),
        AssessmentStep::InProgress { answered, total } => ("partial", format!("{answered}/{total}")),
        AssessmentStep::Done { answered, total, .. } => ("done", format!("{} ({answered}/{total})", t.done)),
    }
}

fn plan_cell(t: &CommitteeTexts, step: PlanStep) -> (&'static str, String) {
    match step {
        PlanStep::Missing => ("missing", t.not_here.to_owned()),
        PlanStep::Unreadable => ("error", t.unreadable.to_owned()),
        PlanStep::Items { items: 0 } => ("none", t.no_items.to_owned()),
        PlanStep::Items { items } => ("done", format!("{items} {}", t.items)),
    }
}

fn signature_cell(t: &CommitteeTexts, step: SignatureStep) -> (&'static str, String) {
    match step {
        SignatureStep::Missing => ("missing", t.not_here.to_owned()),
        SignatureStep::Unreadable => ("error", t.unreadable.to_owned()),
        SignatureStep::Checked(CommitmentStatus::Unsigned) => ("none", t.unsigned.to_owned()),
        SignatureStep::Checked(CommitmentStatus::Valid { .. }) => ("done", t.signed_valid.to_owned()),
        SignatureStep::Checked(CommitmentStatus::ChangedSinceSigning { .. }) => {
            ("partial", t.changed_since_signing.to_owned())
        }
        SignatureStep::Checked(_) => ("error", t.signature_invalid.to_owned()),
    }
}

fn progress_cell(t: &CommitteeTexts, step: ProgressStep) -> (&'static str, String) {
    match step {
        ProgressStep::Missing => ("missing", t.not_here.to_owned()),
        ProgressStep::Unreadable => ("error", t.unreadable.to_owned()),
        ProgressStep::Reported { items: 0, .. } => ("none", t.no_items.to_owned()),
        ProgressStep::Reported { reported, items } if reported >= items => {
            ("done", format!("{reported}/{items}"))
        }
        ProgressStep::Reported { reported: 0, items } => ("none", format!("0/{items}")),
        ProgressStep::Reported { reported, items } => ("partial", format!("{reported}/{items}")),
    }
}

fn vote_cell(t: &CommitteeTexts, step: &VoteStep) -> (&'static str, String) {
    match step {
        VoteStep::NoVote | VoteStep::NotEligible => ("none", "—".to_owned()),
        VoteStep::Vote(VoteState::NoBallot) => ("missing", t.not_here.to_owned()),
        VoteStep::Vote(VoteState::NotVoted) => ("none", t.not_voted_yet.to_owned()),
        VoteStep::Vote(VoteState::Voted { choice, .. }) => {
            let label = match choice {
                Choice::For => t.in_favour,
                Choice::Against => t.against,
                Choice::Abstain => t.abstain,
            };
            ("done", label.to_owned())
        }
    }
}

#[component]
fn Heat(forum: ForumId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let branch = use_branch().branch;
    let catalogue = Catalogue::builtin();
    let map = Memo::new(move |_| {
        let assessments: Vec<Option<SelfAssessment>> = roster_members()
            .into_iter()
            .map(|member| assessment_of(sync, DocPath::SelfAssessment { branch, forum, member }))
            .collect();
        review::heat_map(catalogue, assessments.iter().map(Option::as_ref))
    });
    let degrees = move || map.get().degrees;
    let lang = use_lang;
    view! {
        <h3>{move || ct().heat_map}</h3>
        <p data-testid="heat-summary">{move || {
            let m = map.get();
            format!("{} {} · {} {}", ct().assessments_counted, m.assessments, ct().assessments_missing, m.missing)
        }}</p>
        <div class="scroll">
            <table class="heat" data-testid="heat-map">
                <thead>
                    <tr>
                        <th>{move || ct().manifestation}</th>
                        {move || degrees()
                            .into_iter()
                            .map(|d| view! { <th>{catalogue.degree(&d).map(|d| d.label(lang()).to_owned()).unwrap_or(d)}</th> })
                            .collect_view()}
                        <th>{move || ct().applies_no_degree}</th>
                        <th>{move || ct().does_not_apply}</th>
                        <th>{move || ct().unanswered}</th>
                    </tr>
                </thead>
                <tbody>{move || heat_rows(map.get(), catalogue)}</tbody>
            </table>
        </div>
    }
}

fn heat_rows(map: HeatMap, catalogue: &'static Catalogue) -> impl IntoView {
    let most = map.rows.iter().flat_map(|r| r.by_degree.iter().copied()).max().unwrap_or(0).max(1);
    map.rows
        .iter()
        .map(|row| {
            let topic = catalogue.item(row.code).map(|i| i.topic().to_owned()).unwrap_or_default();
            let degrees = row
                .by_degree
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    // Heat: the share of the branch's highest count, as the cell's background.
                    let heat = (f64::from(*n) / f64::from(most) * 100.0).round();
                    view! {
                        <td data-testid=format!("heat-{}-{}", row.code, map.degrees[i]) data-count=*n
                            style=format!("--heat:{heat}%")>{*n}</td>
                    }
                })
                .collect_view();
            view! {
                <tr data-testid=format!("heat-{}", row.code) data-applies=row.applies()>
                    <th title=topic>{row.code}</th>
                    {degrees}
                    <td>{row.applies_without_degree}</td>
                    <td>{row.does_not_apply}</td>
                    <td>{row.unanswered}</td>
                </tr>
            }
        })
        .collect_view()
}

/// The documents the review looks at (every branch document open on this device), each with
/// the words people use for it.
pub(crate) fn reviewed_documents() -> Vec<(DocPath, String)> {
    let account = use_account();
    let year = use_branch().year;
    account
        .documents(year)
        .into_iter()
        .map(|(path, _)| {
            let label = document_label(ct(), &path);
            (path, label)
        })
        .collect()
}

pub(crate) fn document_label(t: &CommitteeTexts, path: &DocPath) -> String {
    match path {
        DocPath::BranchProfile { .. } => t.doc_profile.to_owned(),
        DocPath::Forum { .. } => t.doc_forum.to_owned(),
        DocPath::Resolution { .. } => t.doc_resolution.to_owned(),
        DocPath::SelfAssessment { member, .. } => format!("{} — {}", t.doc_assessment, member_name(member)),
        DocPath::Ballot { member, .. } => format!("{} — {}", t.doc_ballot, member_name(member)),
        DocPath::PersonalPlan { member, year, .. } => {
            format!("{} {year} — {}", t.doc_plan, member_name(member))
        }
        DocPath::MonthlyMeeting { month, .. } => format!("{} {month}", t.doc_meeting),
    }
}

/// The author of a change as people read it: member name and device, from the roster.
pub(crate) fn author_label(actor_hex: &str) -> String {
    match use_account().author_of(actor_hex) {
        Some((name, device)) if device.is_empty() => name,
        Some((name, device)) => format!("{name} ({device})"),
        None => format!("{} {}", ct().unknown_device, actor_hex.chars().take(8).collect::<String>()),
    }
}
