//! The app in real browsers against the real relay: two phones (two Chromium profiles, each with
//! its own IndexedDB) edit the forum minutes while the relay is down, and both edits survive.
//!
//! Runs only with `CHIBO_E2E=1` and a built `app/dist` (see [`crate::browser`]). Every wait is on
//! the page's `data-testid` elements, never on the clock.

use std::path::Path;

use anyhow::{Context as _, ensure};
use chibo_server::config::DataDir;
use chibo_server::roster::{InviteSpec, Limits, Roster, unix_now};
use chibo_server::store::sqlite::SqliteStore;
use chibo_server::store::transfer;
use chibo_shared::access::Role;
use chibo_shared::ids::{DocumentId, UnitId};
use chibo_shared::schema::demo::{DemoRole, demo_branch, demo_branch_id, demo_forum_id};
use chibo_shared::schema::{DocPath, ForumText, read_text};
use thirtyfour::prelude::*;

use crate::browser::{ChromeDriver, NOTHING_UNSYNCED, OFFLINE, ONLINE, PHONE, Phone, Prerequisites};
use crate::harness::{RelayProcess, stored_doc};

const MINUTES_EDITABLE: &str = "[data-testid=minutes]:enabled";
const SAVED_NOT_SYNCED: &str = "[data-testid=minutes-save-state][data-state=saved]";
const SYNCED: &str = "[data-testid=minutes-save-state][data-state=synced]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_and_secretary_type_into_the_minutes_offline_and_both_insertions_survive() -> anyhow::Result<()>
{
    let Some(machine) = Prerequisites::check(
        "clerk_and_secretary_type_into_the_minutes_offline_and_both_insertions_survive",
    )?
    else {
        return Ok(());
    };
    let data = tempfile::tempdir()?;
    let codes = store_demo_branch(data.path()).await?;
    let relay = RelayProcess::serve_app(data.path(), ([127, 0, 0, 1], 0).into(), &machine.app_dir).await?;
    let chromedriver = ChromeDriver::start(&machine.chromedriver).await?;
    let clerk = chromedriver.phone(&machine.chromium).await?;
    let secretary = chromedriver.phone(&machine.chromium).await?;
    let outcome = async {
        let origin = relay.addr();
        join(&clerk, origin, &codes.clerk).await?;
        join(&secretary, origin, &codes.secretary).await?;
        offline_edits_merge(&machine.app_dir, data.path(), relay, [&clerk, &secretary]).await
    }
    .await;
    // Close the browsers whatever happened; the driver dies on drop.
    for phone in [clerk, secretary] {
        let _ = phone.quit().await;
    }
    outcome
}

async fn offline_edits_merge(
    app_dir: &Path,
    data: &Path,
    relay: RelayProcess,
    phones: [&Phone; 2],
) -> anyhow::Result<()> {
    let [clerk, secretary] = phones;
    let origin = relay.addr();
    let demo = demo_minutes()?;

    for phone in phones {
        phone.open(origin, "/dien-dan").await?;
    }
    for phone in phones {
        phone.wait_for_value("minutes", &demo).await?;
        phone.wait_for("the editable minutes", MINUTES_EDITABLE).await?;
        phone.wait_for("the online status", ONLINE).await?;
    }

    relay.kill()?;
    for phone in phones {
        phone.wait_for("the offline status", OFFLINE).await?;
    }
    type_at(clerk, Caret::Start, "AAA ").await?;
    type_at(secretary, Caret::End, "BBB ").await?;
    for (phone, minutes) in [(clerk, format!("AAA {demo}")), (secretary, format!("{demo}BBB "))] {
        phone.wait_for_value("minutes", &minutes).await?;
        phone.wait_for("the minutes saved on the phone, not synced", SAVED_NOT_SYNCED).await?;
    }

    // Same data, same address: the pages' origin (and so their storage) stays the same.
    let relay = RelayProcess::serve_app(data, origin, app_dir).await?;
    ensure!(relay.addr() == origin, "the relay came back on {} instead of {origin}", relay.addr());
    let both = format!("AAA {demo}BBB ");
    for phone in phones {
        phone.reconnect_now().await?;
    }
    for phone in phones {
        phone.wait_for("the online status", ONLINE).await?;
        phone.wait_for_value("minutes", &both).await?;
        phone.wait_for("the minutes synced", SYNCED).await?;
        phone.wait_for("no unsynced documents", NOTHING_UNSYNCED).await?;
    }
    let stored = text_stored_by_relay(data).await?;
    ensure!(stored == both, "the relay stored {stored:?}, the phones show {both:?}");

    let shots = tempfile::Builder::new().prefix("chibo-e2e-").tempdir()?.keep();
    for (name, phone) in [("clerk", clerk), ("secretary", secretary)] {
        let path = shots.join(format!("{name}.png"));
        let size = phone.screenshot(&path).await?;
        ensure!(size == PHONE, "{name}'s screenshot is {size:?}, not {PHONE:?}");
        eprintln!("screenshot: {}", path.display());
    }
    relay.kill()
}

enum Caret {
    Start,
    End,
}

/// Taps the minutes, moves the caret to the start or end (Ctrl+Home, Ctrl+End) and types
/// `text` there, key by key, as a person would.
async fn type_at(phone: &Phone, caret: Caret, text: &str) -> anyhow::Result<()> {
    let minutes = phone.wait_for("the editable minutes", MINUTES_EDITABLE).await?;
    minutes.click().await?;
    let key = match caret {
        Caret::Start => Key::Home,
        Caret::End => Key::End,
    };
    // Keyboard actions, not "send keys to element": that one puts the caret at the end first.
    phone
        .driver
        .action_chain()
        .key_down(Key::Control)
        .key_down(key.clone())
        .key_up(key)
        .key_up(Key::Control)
        .send_keys(text)
        .perform()
        .await?;
    Ok(())
}

/// Invite codes for a new device of demo members.
pub(crate) struct DemoCodes {
    pub(crate) secretary: String,
    pub(crate) clerk: String,
    pub(crate) members: Vec<String>,
}

/// Stores the demo branch and its roster (as `chibo-server init --demo` does) in `data`.
pub(crate) async fn store_demo_branch(data: &Path) -> anyhow::Result<DemoCodes> {
    let path = DataDir::new(data).sqlite_path();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(path)).await??;
    let demo = demo_branch();
    let roster = Roster::new(store.shared_roster(), Limits::default());
    let invites = roster.seed_demo(&demo, std::time::Duration::from_secs(3600), unix_now()).await?;
    transfer::store_documents(&store, demo.documents).await?;
    let code_of = |name: &str| invites.iter().find(|i| i.name == name).map(|i| i.code.clone());
    let roster = demo.roster;
    let by_role = |role: DemoRole| roster.iter().filter(move |m| m.role == role).map(|m| m.name.as_str());
    Ok(DemoCodes {
        secretary: by_role(DemoRole::Secretary).find_map(code_of).context("no secretary")?,
        clerk: by_role(DemoRole::Clerk).find_map(code_of).context("no clerk")?,
        members: by_role(DemoRole::Member).filter_map(code_of).collect(),
    })
}

/// An invite for a second device of the first demo member with `role` (the secretary would
/// issue it).
pub(crate) async fn second_device_code(data: &Path, role: DemoRole) -> anyhow::Result<String> {
    let path = DataDir::new(data).sqlite_path();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(path)).await??;
    let roster = Roster::new(store.shared_roster(), Limits::default());
    let demo = demo_branch();
    let member = demo.roster.iter().find(|m| m.role == role).context("a demo member with that role")?;
    let server_role = if role == DemoRole::Secretary { Role::Secretary } else { Role::Member };
    let spec = InviteSpec {
        member: Some(member.id),
        ..InviteSpec::new(
            UnitId::from(demo.branch),
            server_role,
            &member.name,
            std::time::Duration::from_secs(3600),
        )
    };
    Ok(roster.create_invite(spec, unix_now()).await?.code)
}

/// Opens the join page with `code` from its link (as a scanned QR code does), joins, and waits
/// for the member's home page.
pub(crate) async fn join(phone: &Phone, origin: std::net::SocketAddr, code: &str) -> anyhow::Result<()> {
    phone.open(origin, &format!("/tham-gia?ma={code}")).await?;
    phone.wait_for_value("invite-code", code).await?;
    phone.wait_for("the join button", "[data-testid=join]:enabled").await?.click().await?;
    phone.wait_for("the member's home page", "[data-testid=hello]").await?;
    Ok(())
}

fn forum() -> DocumentId {
    DocPath::Forum { branch: demo_branch_id(), forum: demo_forum_id() }.document_id()
}

fn demo_minutes() -> anyhow::Result<String> {
    let documents = demo_branch().documents;
    let (_, doc) = documents.iter().find(|(id, _)| *id == forum()).context("the demo has no forum")?;
    Ok(read_text(doc, &ForumText::Minutes)?)
}

async fn text_stored_by_relay(data: &Path) -> anyhow::Result<String> {
    let doc = stored_doc(data, forum()).await?;
    Ok(read_text(&doc, &ForumText::Minutes)?)
}
