//! Offline editing: devices edit apart, then meet at the relay and converge without losing a
//! keystroke.

use chibo_shared::ids::{BranchId, ForumId, MemberId};
use chibo_shared::schema::{
    DocKind, DocPath, ForumText, PersonalPlan, PlanItem, PlanItemKind, PlanText, Ranking,
    genesis_change_bytes, genesis_change_hash, hydrate, read_text,
};

use crate::harness::{
    Device, Relay, TIMEOUT, append_text, change_hashes, edit, merged, sorted, stored_doc, text_of,
};

const BRANCH: BranchId = BranchId::from_bytes([0x11; 16]);
const FORUM: ForumId = ForumId::from_bytes([0x22; 16]);
const MEMBER: MemberId = MemberId::from_bytes([0x33; 16]);

const HEADING: &str = "BIÊN BẢN DIỄN ĐÀN\n";
const CLERK_WORDS: [&str; 5] = ["Đồng ", "chí ", "Bình ", "ghi: ", "khai mạc. "];
const SECRETARY_WORDS: [&str; 5] = ["Bí ", "thư ", "kết ", "luận: ", "nhất trí. "];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_edit_minutes_offline_and_a_third_edits_its_plan() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start_in(data.path()).await?;
    let forum = DocPath::Forum { branch: BRANCH, forum: FORUM }.document_id();
    let plan = DocPath::PersonalPlan { branch: BRANCH, member: MEMBER, year: 2026 }.document_id();
    let clerk = Device::new("clerk")?;
    let secretary = Device::new("secretary")?;
    let member = Device::new("member-1")?;

    // Online: the clerk heads the minutes, the secretary receives them, the member starts a plan.
    clerk.client.open(forum, Some(genesis_change_bytes(DocKind::Forum))).await?;
    clerk.client.change(forum, |d| append_text(d, &ForumText::Minutes, HEADING)).await??;
    clerk.client.connect(&relay.url()).await?;
    clerk.client.wait_synced(forum, TIMEOUT).await?;
    let base = clerk.heads(forum).await?;
    secretary.client.open(forum, Some(genesis_change_bytes(DocKind::Forum))).await?;
    secretary.client.connect(&relay.url()).await?;
    secretary.wait_for_heads(forum, &base).await?;
    member.client.open(plan, Some(genesis_change_bytes(DocKind::PersonalPlan))).await?;
    member
        .client
        .change(plan, |d| {
            edit::<PersonalPlan>(d, |p| {
                p.items.push(PlanItem::new("item-1", PlanItemKind::Resolution4, "Khắc phục "));
            })
        })
        .await??;
    member.client.connect(&relay.url()).await?;
    member.client.wait_synced(plan, TIMEOUT).await?;

    // Offline: the clerk and the secretary type into the same minutes, word by word, each word
    // its own change; the member edits the plan.
    for device in [&clerk, &secretary, &member] {
        device.client.disconnect().await?;
    }
    for (c, s) in CLERK_WORDS.into_iter().zip(SECRETARY_WORDS) {
        clerk.client.change(forum, move |d| append_text(d, &ForumText::Minutes, c)).await??;
        secretary.client.change(forum, move |d| append_text(d, &ForumText::Minutes, s)).await??;
    }
    let item = PlanText::ItemContent { id: "item-1".into() };
    member.client.change(plan, move |d| append_text(d, &item, "bệnh ngại va chạm.")).await??;
    member
        .client
        .change(plan, |d| edit::<PersonalPlan>(d, |p| p.year_end.self_ranking = Some(Ranking::Good)))
        .await??;

    let (clerk_doc, secretary_doc) = (clerk.snapshot(forum).await?, secretary.snapshot(forum).await?);
    let forum_heads = sorted(merged(&[&clerk_doc, &secretary_doc])?.get_heads());
    let plan_heads = member.heads(plan).await?;
    assert_ne!(clerk.heads(forum).await?, forum_heads, "the clerk already had the secretary's words");
    assert_ne!(secretary.heads(forum).await?, forum_heads, "the secretary already had the clerk's words");

    for device in [&clerk, &secretary, &member] {
        device.client.connect(&relay.url()).await?;
    }
    clerk.wait_for_heads(forum, &forum_heads).await?;
    secretary.wait_for_heads(forum, &forum_heads).await?;
    member.wait_for_heads(plan, &plan_heads).await?;

    let clerk_text: String = CLERK_WORDS.concat();
    let secretary_text: String = SECRETARY_WORDS.concat();
    for device in [&clerk, &secretary] {
        let minutes = device.client.read(forum, |d| text_of(d, &ForumText::Minutes)).await??;
        assert!(minutes.starts_with(HEADING), "{minutes:?}");
        assert!(minutes.contains(&clerk_text), "clerk's words lost: {minutes:?}");
        assert!(minutes.contains(&secretary_text), "secretary's words lost: {minutes:?}");
        assert_eq!(
            minutes.chars().count(),
            HEADING.chars().count() + clerk_text.chars().count() + secretary_text.chars().count()
        );
    }

    // The relay's own copy, read from its SQLite file after it stopped.
    relay.stop().await?;
    let stored_forum = stored_doc(data.path(), forum).await?;
    assert_eq!(sorted(stored_forum.get_heads()), forum_heads);
    assert_eq!(change_hashes(&stored_forum), change_hashes(&clerk.snapshot(forum).await?));
    let stored_minutes = read_text(&stored_forum, &ForumText::Minutes)?;
    assert!(stored_minutes.contains(&clerk_text) && stored_minutes.contains(&secretary_text));
    let stored_plan = stored_doc(data.path(), plan).await?;
    assert_eq!(sorted(stored_plan.get_heads()), plan_heads);
    let p: PersonalPlan = hydrate(&stored_plan)?;
    assert_eq!(p.year_end.self_ranking, Some(Ranking::Good));
    assert_eq!(
        read_text(&stored_plan, &PlanText::ItemContent { id: "item-1".into() })?,
        "Khắc phục bệnh ngại va chạm."
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_create_the_same_singleton_offline_and_both_edits_survive() -> anyhow::Result<()> {
    // The member's 2026 plan, created on the phone and on the laptop before either has seen a
    // relay: same path, so same document id and same genesis.
    let plan = DocPath::PersonalPlan { branch: BRANCH, member: MEMBER, year: 2026 }.document_id();
    let phone = Device::new("member-phone")?;
    let laptop = Device::new("member-laptop")?;
    for device in [&phone, &laptop] {
        device.client.open(plan, Some(genesis_change_bytes(DocKind::PersonalPlan))).await?;
    }
    const PHONE_TEXT: &str = "Trên điện thoại: tự phê bình. ";
    const LAPTOP_TEXT: &str = "Trên máy tính: phấn đấu. ";
    phone
        .client
        .change(plan, |d| edit::<PersonalPlan>(d, |p| p.year_end.self_ranking = Some(Ranking::Good)))
        .await??;
    phone.client.change(plan, |d| append_text(d, &PlanText::SelfComment, PHONE_TEXT)).await??;
    laptop
        .client
        .change(plan, |d| {
            edit::<PersonalPlan>(d, |p| {
                p.items.push(PlanItem::new("item-laptop", PlanItemKind::FollowUncleHo, "Học tập"));
            })
        })
        .await??;
    laptop.client.change(plan, |d| append_text(d, &PlanText::SelfComment, LAPTOP_TEXT)).await??;

    let (phone_doc, laptop_doc) = (phone.snapshot(plan).await?, laptop.snapshot(plan).await?);
    let common: Vec<_> =
        change_hashes(&phone_doc).intersection(&change_hashes(&laptop_doc)).copied().collect();
    assert_eq!(common, vec![genesis_change_hash(DocKind::PersonalPlan)], "only genesis is shared");
    let expected = sorted(merged(&[&phone_doc, &laptop_doc])?.get_heads());

    let data = tempfile::tempdir()?;
    let relay = Relay::start_in(data.path()).await?;
    for device in [&phone, &laptop] {
        device.client.connect(&relay.url()).await?;
    }
    phone.wait_for_heads(plan, &expected).await?;
    laptop.wait_for_heads(plan, &expected).await?;
    // A third device that never created it gets everything from the relay.
    let tablet = Device::new("member-tablet")?;
    tablet.client.open(plan, None).await?;
    tablet.client.connect(&relay.url()).await?;
    tablet.wait_for_heads(plan, &expected).await?;

    for device in [&phone, &laptop, &tablet] {
        let p = device.client.read(plan, hydrate::<PersonalPlan>).await??;
        assert_eq!(p.year_end.self_ranking, Some(Ranking::Good), "the phone's ranking was lost");
        let items: Vec<&str> = p.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(items, ["item-laptop"], "the laptop's item was lost");
        let comment = p.year_end.self_comment.as_str();
        assert!(comment.contains(PHONE_TEXT) && comment.contains(LAPTOP_TEXT), "{comment:?}");
    }
    relay.stop().await?;
    Ok(())
}
