//! `/bieu-quyet`: the member's vote on the branch resolution when the secretary has opened it:
//! in favour, against, or abstain, written to the member's own ballot document with the
//! resolution heads voted on.

use chibo_shared::ids::DocumentId;
use chibo_shared::schema::{Ballot, Choice, DocPath, Resolution, ResolutionStatus, Vote, cast_vote, hydrate};
use leptos::logging::error;
use leptos::prelude::*;

use crate::i18n::use_texts;
use crate::sync::SyncHandle;
use crate::use_branch;

#[component]
pub fn VotePage() -> impl IntoView {
    let t = use_texts;
    move || {
        let b = use_branch();
        match b.forum {
            None => view! { <p data-testid="no-forum">{t().no_forum_yet}</p> }.into_any(),
            Some(forum) => {
                let resolution = DocPath::Resolution { branch: b.branch, forum }.document_id();
                let ballot = DocPath::Ballot { branch: b.branch, forum, member: b.member }.document_id();
                view! { <Voting resolution ballot /> }.into_any()
            }
        }
    }
}

#[component]
fn Voting(resolution: DocumentId, ballot: DocumentId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let t = use_texts;
    let status = Memo::new(move |_| {
        sync.track(resolution);
        sync.read(resolution, |am| hydrate::<Resolution>(am).ok().map(|r| (r.status, r.title))).flatten()
    });
    let mine = Memo::new(move |_| {
        sync.track(ballot);
        sync.read(ballot, |am| hydrate::<Ballot>(am).ok()).flatten().and_then(|b| b.vote).map(|v| v.choice)
    });
    let cast = move |choice: Choice| {
        let heads: Vec<String> = sync
            .read(resolution, |am| am.get_heads().iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let vote = Vote { choice, cast_at: (js_sys::Date::now() / 1000.0) as i64, resolution_heads: heads };
        let time = vote.cast_at;
        if !matches!(sync.change(ballot, |am| cast_vote(am, vote, time)), Ok(Ok(_))) {
            error!("vote: not cast");
        }
    };
    let label = move |c: Choice| match c {
        Choice::For => t().vote_for,
        Choice::Against => t().vote_against,
        Choice::Abstain => t().vote_abstain,
    };
    let open = move || status.get().is_some_and(|(s, _)| s == ResolutionStatus::OpenForVote);
    let adopted = move || status.get().is_some_and(|(s, _)| s == ResolutionStatus::Adopted);
    view! {
        <h2>{move || t().vote_title}</h2>
        <p data-testid="resolution-title">{move || status.get().map(|(_, title)| title).unwrap_or_default()}</p>
        <Show when=adopted>
            <p data-testid="vote-adopted">{move || t().vote_adopted}</p>
        </Show>
        <Show when=move || !open() && !adopted()>
            <p data-testid="vote-not-open">{move || t().vote_not_open}</p>
        </Show>
        <Show when=open>
            <div class="vote">
                {[Choice::For, Choice::Against, Choice::Abstain]
                    .into_iter()
                    .map(|c| view! {
                        <button type="button" class="big" data-testid=format!("vote-{}", c.as_str())
                            aria-pressed=move || (mine.get() == Some(c)).to_string()
                            on:click=move |_| cast(c)>
                            {move || label(c)}
                        </button>
                        " "
                    })
                    .collect_view()}
            </div>
        </Show>
        <p data-testid="my-vote" data-choice=move || mine.get().map(|c| c.as_str()).unwrap_or("none")>
            {move || format!("{}: {}", t().your_vote, mine.get().map_or(t().not_voted, label))}
        </p>
    }
}
