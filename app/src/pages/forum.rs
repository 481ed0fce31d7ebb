//! `/dien-dan`: the branch's forum: title, sessions, guests and script (read only here), and the
//! minutes (biên bản) in a textarea. Every edit of the textarea becomes the smallest character
//! splice of the minutes' automerge Text, so two people typing at once merge character by
//! character; remote changes re-render the textarea with the caret kept next to the same text.

use chibo_shared::schema::{Forum, ForumText, Guest, ScriptSection, Session, hydrate};
use leptos::prelude::*;

use chibo_shared::ids::DocumentId;

use crate::components::TextEditor;
use crate::i18n::use_texts;
use crate::sync::SyncHandle;
use crate::use_branch;

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
    move || match use_branch().forum_doc() {
        None => view! { <p data-testid="no-forum">{use_texts().no_forum_yet}</p> }.into_any(),
        Some(doc) => view! { <Forum doc /> }.into_any(),
    }
}

#[component]
fn Forum(doc: DocumentId) -> impl IntoView {
    let sync = expect_context::<SyncHandle>();
    let forum = Memo::new(move |_| {
        sync.track(doc);
        sync.read(doc, |am| hydrate::<Forum>(am).ok()).flatten().map(ForumView::from)
    });
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
            <TextEditor doc field=ForumText::Minutes label="Biên bản" testid="minutes" rows=14 placeholder="Đang mở biên bản…" />
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
