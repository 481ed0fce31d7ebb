//! Vietnamese first, English second. Every string the app shows is a field of [`Texts`], and both
//! languages are `const` values of it: a missing translation or a mistyped key does not compile.
//!
//! The language is a signal in context ([`use_lang`]), switched in the header and kept in
//! `localStorage`; [`use_texts`] gives the current strings.

use chibo_shared::catalogue::Lang;
use leptos::prelude::*;

const LANG_KEY: &str = "chibo.lang";

/// Every string of the app's chrome and pages.
#[derive(Debug)]
pub struct Texts {
    pub app_title: &'static str,
    pub switch_language: &'static str,
    pub nav_home: &'static str,
    pub nav_assessment: &'static str,
    pub nav_plan: &'static str,
    pub nav_forum: &'static str,
    pub nav_documents: &'static str,
    // sync status
    pub online: &'static str,
    pub connecting: &'static str,
    pub offline: &'static str,
    pub all_synced: &'static str,
    pub unsynced_suffix: &'static str,
    pub last_sync: &'static str,
    pub never_synced: &'static str,
    pub reconnect: &'static str,
    // save states
    pub opening: &'static str,
    pub saving: &'static str,
    pub saved_not_synced: &'static str,
    pub saved_and_synced: &'static str,
    pub not_saved: &'static str,
    pub storage_full: &'static str,
    // join
    pub join_title: &'static str,
    pub join_intro: &'static str,
    pub join_code: &'static str,
    pub join_device_label: &'static str,
    pub join_device_default: &'static str,
    pub join_button: &'static str,
    pub joining: &'static str,
    pub join_offline: &'static str,
    pub loading_app: &'static str,
    // home
    pub hello: &'static str,
    pub due_now: &'static str,
    pub no_forum_yet: &'static str,
    pub assessment_due: &'static str,
    pub answered_of: &'static str,
    pub submitted: &'static str,
    pub not_started: &'static str,
    pub plan_due: &'static str,
    pub plan_items: &'static str,
    pub commitment_signed: &'static str,
    pub commitment_unsigned: &'static str,
    pub commitment_changed: &'static str,
    pub progress_this_month: &'static str,
    // self-assessment
    pub assessment_title: &'static str,
    pub assessment_help: &'static str,
    pub catalogue_used: &'static str,
    pub topic_only_note: &'static str,
    pub translation_note: &'static str,
    pub applies_question: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub degree: &'static str,
    pub degree_unverified: &'static str,
    pub choose: &'static str,
    pub note: &'static str,
    pub cause: &'static str,
    pub remedy: &'static str,
    pub group_view_question: &'static str,
    pub group_view: &'static str,
    pub solutions: &'static str,
    pub add_solution: &'static str,
    pub solution: &'static str,
    pub submit_assessment: &'static str,
    pub submitted_at: &'static str,
    pub revoked: &'static str,
}

pub const VI: Texts = Texts {
    app_title: "chibo — Diễn đàn chi bộ",
    switch_language: "English",
    nav_home: "Trang chính",
    nav_assessment: "Tự liên hệ",
    nav_plan: "Kế hoạch",
    nav_forum: "Diễn đàn",
    nav_documents: "Tài liệu trên máy",
    online: "Đang trực tuyến",
    connecting: "Đang kết nối…",
    offline: "Ngoại tuyến",
    all_synced: "Mọi tài liệu đã đồng bộ",
    unsynced_suffix: "tài liệu chưa đồng bộ",
    last_sync: "Đồng bộ lần cuối:",
    never_synced: "Chưa đồng bộ lần nào",
    reconnect: "Thử kết nối lại",
    opening: "Đang mở…",
    saving: "Đang lưu…",
    saved_not_synced: "Đã lưu trên máy, chưa đồng bộ.",
    saved_and_synced: "Đã lưu trên máy và đã đồng bộ.",
    not_saved: "Không lưu được trên máy; thay đổi vẫn được gửi đi khi có mạng.",
    storage_full: "Bộ nhớ máy đã đầy: hãy giải phóng dung lượng rồi mở lại ứng dụng.",
    join_title: "Tham gia chi bộ",
    join_intro: "Nhập mã mời do bí thư chi bộ gửi (12 ký tự, ví dụ ABCD-EFGH-JKLM).",
    join_code: "Mã mời",
    join_device_label: "Tên thiết bị này",
    join_device_default: "Điện thoại",
    join_button: "Tham gia",
    joining: "Đang tham gia…",
    join_offline: "Chưa kết nối được máy chủ. Hãy thử lại khi có mạng.",
    loading_app: "Đang mở ứng dụng…",
    hello: "Xin chào",
    due_now: "Việc cần làm",
    no_forum_yet: "Chi bộ chưa mở diễn đàn nào.",
    assessment_due: "Tự liên hệ 27 biểu hiện",
    answered_of: "đã trả lời",
    submitted: "Đã hoàn thành",
    not_started: "Chưa bắt đầu",
    plan_due: "Kế hoạch cá nhân “2 trong 1”",
    plan_items: "nội dung",
    commitment_signed: "Đã ký cam kết",
    commitment_unsigned: "Chưa ký cam kết",
    commitment_changed: "Đã sửa sau khi ký cam kết",
    progress_this_month: "Tiến độ tháng này",
    assessment_title: "Tự liên hệ với 27 biểu hiện",
    assessment_help: "Với mỗi biểu hiện: có hay không, nếu có thì ở mức độ nào; nêu nguyên nhân và biện pháp khắc phục. Mọi thay đổi được lưu trên máy ngay.",
    catalogue_used: "Danh mục",
    topic_only_note: "Chủ đề (chưa đối chiếu nguyên văn)",
    translation_note: "Bản dịch không chính thức",
    applies_question: "Bản thân có biểu hiện này không?",
    yes: "Có",
    no: "Không",
    degree: "Mức độ",
    degree_unverified: "thang mức độ chưa được đối chiếu văn bản",
    choose: "— Chọn —",
    note: "Liên hệ bản thân",
    cause: "Nguyên nhân",
    remedy: "Biện pháp khắc phục",
    group_view_question: "Chi bộ có biểu hiện thuộc nhóm này không?",
    group_view: "Nhận xét về chi bộ",
    solutions: "Đề xuất giải pháp",
    add_solution: "Thêm đề xuất",
    solution: "Đề xuất",
    submit_assessment: "Đánh dấu đã hoàn thành",
    submitted_at: "Đã hoàn thành lúc",
    revoked: "Thiết bị này không còn được phép đồng bộ (đã bị thu hồi hoặc hết phiên).",
};

pub const EN: Texts = Texts {
    app_title: "chibo — Party cell forum",
    switch_language: "Tiếng Việt",
    nav_home: "Home",
    nav_assessment: "Self-assessment",
    nav_plan: "Plan",
    nav_forum: "Forum",
    nav_documents: "Documents on this device",
    online: "Online",
    connecting: "Connecting…",
    offline: "Offline",
    all_synced: "Every document is synced",
    unsynced_suffix: "documents not synced yet",
    last_sync: "Last synced:",
    never_synced: "Never synced",
    reconnect: "Reconnect now",
    opening: "Opening…",
    saving: "Saving…",
    saved_not_synced: "Saved on this device, not synced yet.",
    saved_and_synced: "Saved on this device and synced.",
    not_saved: "Could not save on this device; changes are still sent when online.",
    storage_full: "This device's storage is full: free some space, then reopen the app.",
    join_title: "Join your party cell",
    join_intro: "Type the invite code your secretary gave you (12 characters, e.g. ABCD-EFGH-JKLM).",
    join_code: "Invite code",
    join_device_label: "Name of this device",
    join_device_default: "Phone",
    join_button: "Join",
    joining: "Joining…",
    join_offline: "The server cannot be reached. Try again when online.",
    loading_app: "Opening the app…",
    hello: "Hello",
    due_now: "To do now",
    no_forum_yet: "The branch has not opened a forum yet.",
    assessment_due: "Self-assessment against the 27 manifestations",
    answered_of: "answered",
    submitted: "Done",
    not_started: "Not started",
    plan_due: "Personal \"2 in 1\" plan",
    plan_items: "items",
    commitment_signed: "Commitment signed",
    commitment_unsigned: "Commitment not signed",
    commitment_changed: "Changed since signing",
    progress_this_month: "Progress this month",
    assessment_title: "Self-assessment against the 27 manifestations",
    assessment_help: "For each manifestation: does it apply to you, and how much; its cause and your remedy. Every change is saved on this device at once.",
    catalogue_used: "Catalogue",
    topic_only_note: "Topic (official text not yet checked)",
    translation_note: "Unofficial translation",
    applies_question: "Does this apply to you?",
    yes: "Yes",
    no: "No",
    degree: "Degree",
    degree_unverified: "degree scale not yet checked against the source",
    choose: "— Choose —",
    note: "How it relates to me",
    cause: "Cause",
    remedy: "Remedy",
    group_view_question: "Does the branch show manifestations of this group?",
    group_view: "Remarks on the branch",
    solutions: "Proposed solutions",
    add_solution: "Add a proposal",
    solution: "Proposal",
    submit_assessment: "Mark as done",
    submitted_at: "Done at",
    revoked: "This device may no longer sync (revoked, or the session ended).",
};

/// The language signal; provided once by the app shell.
#[derive(Debug, Clone, Copy)]
pub struct LangSignal(pub RwSignal<Lang>);

/// The language kept on this device (Vietnamese unless English was chosen).
pub fn stored_lang() -> Lang {
    let stored = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(LANG_KEY).ok().flatten());
    if stored.as_deref() == Some("en") { Lang::En } else { Lang::Vi }
}

pub fn store_lang(lang: Lang) {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(LANG_KEY, if lang == Lang::En { "en" } else { "vi" });
    }
    if let Some(html) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
        let _ = html.set_attribute("lang", if lang == Lang::En { "en" } else { "vi" });
    }
}

/// The current language (tracked); Vietnamese outside the app shell.
pub fn use_lang() -> Lang {
    use_context::<LangSignal>().map_or(Lang::Vi, |l| l.0.get())
}

/// The strings of the current language (tracked).
pub fn use_texts() -> &'static Texts {
    match use_lang() {
        Lang::Vi => &VI,
        Lang::En => &EN,
    }
}
