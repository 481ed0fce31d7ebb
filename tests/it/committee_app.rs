//! The committee's and the secretary's pages in real browsers against the real relay: members
//! vote from their own phones and the secretary adopts; a self-assessment typed offline reaches
//! the secretary's matrix and heat map; two devices set a task's deadline differently offline and
//! the secretary settles the conflict for everyone. (The minutes typed by the clerk and the
//! secretary at once, offline, are `e2e::clerk_and_secretary_type_into_the_minutes_offline_...`.)
//!
//! Runs only with `CHIBO_E2E=1` and a built `app/dist` (see [`crate::browser`]). Every wait is on
//! the page's `data-testid` elements (or the worker's `data-offline-ready` mark), never the clock.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context as _, ensure};
use chibo_shared::catalogue::Catalogue;
use chibo_shared::ids::MemberId;
use chibo_shared::review;
use chibo_shared::schema::demo::{DemoRole, demo_branch, demo_branch_id, demo_forum_id};
use chibo_shared::schema::{Ballot, DocPath, Resolution, ResolutionStatus, hydrate};
use thirtyfour::prelude::*;

use crate::browser::{
    ChromeDriver, NOTHING_UNSYNCED, OFFLINE, OFFLINE_READY, ONLINE, PENDING, Phone, Prerequisites,
};
use crate::e2e::{DemoCodes, join, second_device_code, store_demo_branch};
use crate::harness::{RelayProcess, TIMEOUT, stored_doc};

const RESOLUTION_STATUS: &str = "[data-testid=resolution-status]";

fn resolution_path() -> DocPath {
    DocPath::Resolution { branch: demo_branch_id(), forum: demo_forum_id() }
}

/// The demo members with the plain member role, in roster order.
fn demo_members() -> Vec<MemberId> {
    demo_branch().roster.iter().filter(|m| m.role == DemoRole::Member).map(|m| m.id).collect()
}

/// What a test works with: the demo branch stored in `data`, its invite codes, the relay serving
/// the app, and fresh browser profiles.
struct Scene<'a> {
    machine: &'a Prerequisites,
    data: &'a Path,
    codes: DemoCodes,
    /// Where the relay serves (the same address after a restart).
    origin: SocketAddr,
    relay: Option<RelayProcess>,
    browsers: &'a [Phone],
}

impl Scene<'_> {
    /// Kills the relay (if it runs).
    fn stop_relay(&mut self) -> anyhow::Result<()> {
        self.relay.take().map_or(Ok(()), RelayProcess::kill)
    }

    /// Stops the relay (the phones are cut off for real), runs `offline`, starts the relay again
    /// on the same address (same origin, same storage for the pages) and reconnects the pages.
    async fn offline<F>(&mut self, offline: F) -> anyhow::Result<()>
    where
        F: AsyncFnOnce() -> anyhow::Result<()>,
    {
        let origin = self.origin;
        self.stop_relay()?;
        offline().await?;
        let relay = RelayProcess::serve_app(self.data, origin, &self.machine.app_dir).await?;
        ensure!(relay.addr() == origin, "the relay came back on {} instead of {origin}", relay.addr());
        self.relay = Some(relay);
        for browser in self.browsers {
            browser.reconnect_now().await?;
        }
        for browser in self.browsers {
            browser.wait_for("the online status", ONLINE).await?;
        }
        Ok(())
    }
}

/// Stores the demo branch, starts the relay and one browser per entry of `laptops` (a laptop's
/// screen for `true`, a phone's for `false`), runs `body`, and closes the browsers whatever
/// happened.
async fn in_browsers<F>(test: &str, laptops: &[bool], body: F) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&mut Scene<'_>) -> anyhow::Result<()>,
{
    let Some(machine) = Prerequisites::check(test)? else {
        return Ok(());
    };
    let data = tempfile::tempdir()?;
    let codes = store_demo_branch(data.path()).await?;
    let relay = RelayProcess::serve_app(data.path(), ([127, 0, 0, 1], 0).into(), &machine.app_dir).await?;
    let chromedriver = ChromeDriver::start(&machine.chromedriver).await?;
    let mut browsers = Vec::new();
    let mut started = Ok(());
    for laptop in laptops {
        let browser = if *laptop {
            chromedriver.laptop(&machine.chromium).await
        } else {
            chromedriver.phone(&machine.chromium).await
        };
        match browser {
            Ok(b) => browsers.push(b),
            Err(e) => {
                started = Err(e);
                break;
            }
        }
    }
    let origin = relay.addr();
    let mut scene = Scene {
        machine: &machine,
        data: data.path(),
        codes,
        origin,
        relay: Some(relay),
        browsers: &browsers,
    };
    let outcome = match started {
        Ok(()) => body(&mut scene).await,
        Err(e) => Err(e),
    };
    let _ = scene.stop_relay();
    for browser in browsers {
        let _ = browser.quit().await;
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_vote_and_the_secretary_sees_the_tally_and_adopts() -> anyhow::Result<()> {
    let test = "three_members_vote_and_the_secretary_sees_the_tally_and_adopts";
    let eligible = demo_branch().roster.len();
    // More than half of the roster must be in favour (the party's majority rule).
    let required = eligible / 2 + 1;
    in_browsers(test, &[true, false, false, false], async |scene| {
        let [secretary, m1, m2, m3] = scene.browsers else { unreachable!("four browsers") };
        let origin = scene.origin;
        join(secretary, origin, &scene.codes.secretary).await?;
        for (phone, code) in [m1, m2, m3].into_iter().zip(&scene.codes.members) {
            join(phone, origin, code).await?;
        }
        secretary.open(origin, "/nghi-quyet").await?;
        secretary.click("open-vote").await?;
        secretary
            .wait_for("the vote open", &format!("{RESOLUTION_STATUS}[data-status=open-for-vote]"))
            .await?;
        for phone in [m1, m2, m3] {
            phone.open(origin, "/bieu-quyet").await?;
        }
        m1.click("vote-for").await?;
        m2.click("vote-for").await?;
        m3.click("vote-against").await?;
        let tally = |f: usize, a: usize| {
            format!("[data-testid=tally][data-for='{f}'][data-against='{a}'][data-eligible='{eligible}']")
        };
        secretary.wait_for("two for, one against", &tally(2, 1)).await?;
        // Member 3 changes their mind: their ballot holds one whole vote, the new one.
        m3.click("vote-for").await?;
        m3.wait_for("member 3's vote", "[data-testid=my-vote][data-choice=for]").await?;
        secretary.wait_for("three for", &tally(3, 0)).await?;
        ensure!(3 < required, "the demo roster is too small for this test: {required} votes adopt");
        secretary.wait_for("adoption not yet possible", "[data-testid=adopt]:disabled").await?;
        // The secretary votes too, from her own ballot; then the majority is there.
        secretary.open(origin, "/bieu-quyet").await?;
        secretary.click("vote-for").await?;
        secretary.wait_for("the secretary's vote", "[data-testid=my-vote][data-choice=for]").await?;
        secretary.open(origin, "/nghi-quyet").await?;
        secretary.wait_for("four for", &tally(4, 0)).await?;
        ensure!(4 >= required, "{required} votes adopt, the test brings 4");
        secretary.wait_for("the majority", "[data-testid=tally][data-adopted=true]").await?;
        secretary.wait_for("adoption possible", "[data-testid=adopt]:enabled").await?.click().await?;
        secretary.wait_for("adopted", &format!("{RESOLUTION_STATUS}[data-status=adopted]")).await?;
        secretary.wait_for("the adopted version", "[data-testid=adopted-heads]").await?;
        for phone in [m1, m2, m3] {
            phone.wait_for("adopted on the member's phone", "[data-testid=vote-adopted]").await?;
        }
        for browser in [secretary, m1, m2, m3] {
            browser.wait_for("everything synced", NOTHING_UNSYNCED).await?;
        }
        scene.stop_relay()?;
        // What the relay keeps: the adoption, frozen at the heads the members voted on.
        let stored: Resolution = hydrate(&stored_doc(scene.data, resolution_path().document_id()).await?)?;
        ensure!(stored.status == ResolutionStatus::Adopted, "the relay's resolution is {:?}", stored.status);
        let adoption = stored.adoption.context("no adoption record at the relay")?;
        ensure!(
            adoption.tally.in_favour == 4 && adoption.tally.against == 0,
            "stored tally {:?}",
            adoption.tally
        );
        ensure!(adoption.tally.eligible as usize == eligible, "stored tally {:?}", adoption.tally);
        let member = demo_members()[0];
        let ballot = DocPath::Ballot { branch: demo_branch_id(), forum: demo_forum_id(), member };
        let ballot: Ballot = hydrate(&stored_doc(scene.data, ballot.document_id()).await?)?;
        let voted_on = ballot.vote.context("member 1's vote is not at the relay")?.resolution_heads;
        ensure!(
            sorted(adoption.heads.clone()) == sorted(voted_on.clone()),
            "adopted at {:?}, member 1 voted on {voted_on:?}",
            adoption.heads
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_assessment_entered_offline_reaches_the_secretarys_matrix_and_heat_map() -> anyhow::Result<()>
{
    let test = "a_self_assessment_entered_offline_reaches_the_secretarys_matrix_and_heat_map";
    // The first degree of the catalogue's scale: what the member picks.
    let degree = Catalogue::builtin().degrees().first().context("a degree scale")?.code().to_owned();
    let member = demo_members()[0];
    in_browsers(test, &[true, false], async |scene| {
        let [secretary, phone] = scene.browsers else { unreachable!("two browsers") };
        let origin = scene.origin;
        join(secretary, origin, &scene.codes.secretary).await?;
        join(phone, origin, scene.codes.members.first().context("a member's code")?).await?;
        phone.open(origin, "/tu-kiem-diem").await?;
        phone.wait_for("the self-assessment", "[data-testid=item-A1-note]:enabled").await?;
        phone.wait_for("the online status", ONLINE).await?;
        phone.wait_for("the service worker in control", OFFLINE_READY).await?;
        secretary.open(origin, "/tong-hop").await?;
        let cell =
            format!("[data-testid=matrix-row][data-member='{member}'] [data-testid=matrix-assessment]");
        let heat = format!("[data-testid=heat-A1-{degree}]");
        // Before: as the relay has it (the demo member has not started).
        secretary.wait_for("the member not started", &format!("{cell}[data-state=none]")).await?;
        let before: u32 = secretary
            .wait_for("the heat map's A1 cell", &heat)
            .await?
            .attr("data-count")
            .await?
            .context("a count")?
            .parse()?;

        scene
            .offline(async || {
                phone.driver.refresh().await?;
                phone
                    .wait_for("the self-assessment reopened offline", "[data-testid=item-A1-note]:enabled")
                    .await?;
                phone.wait_for("the offline status", OFFLINE).await?;
                phone.click("item-A1-applies-yes").await?;
                let select = phone.wait_for("the degree of A1", "[data-testid=item-A1-degree]").await?;
                select.find(By::Css(format!("option[value='{degree}']"))).await?.click().await?;
                phone
                    .wait_for("saved on the phone", "[data-testid=assessment-save-state][data-state=saved]")
                    .await?;
                Ok(())
            })
            .await?;
        phone.wait_for("synced", "[data-testid=assessment-save-state][data-state=synced]").await?;
        secretary.wait_for("the member under way", &format!("{cell}[data-state=partial]")).await?;
        let text = secretary.wait_for("the cell", &cell).await?.text().await?;
        ensure!(text.starts_with("1/"), "the matrix shows {text:?} for one answered item");
        secretary.wait_for("A1 counted once more", &format!("{heat}[data-count='{}']", before + 1)).await?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_set_differently_on_two_devices_is_settled_by_the_secretary_everywhere()
-> anyhow::Result<()> {
    let test = "a_deadline_set_differently_on_two_devices_is_settled_by_the_secretary_everywhere";
    in_browsers(test, &[false, true], async |scene| {
        let [phone, laptop] = scene.browsers else { unreachable!("two browsers") };
        let origin = scene.origin;
        let laptop_code = second_device_code(scene.data, DemoRole::Secretary).await?;
        join(phone, origin, &scene.codes.secretary).await?;
        join(laptop, origin, &laptop_code).await?;
        // The secretary drafts a task on the phone; it reaches the laptop.
        phone.open(origin, "/nghi-quyet").await?;
        phone.click("add-task").await?;
        let task = phone.wait_for("the new task", "[data-testid=task]").await?;
        let id = task.attr("data-task").await?.context("the task's id")?;
        let deadline = format!("[data-testid=task][data-task='{id}'] [data-testid=task-deadline]");
        laptop.open(origin, "/nghi-quyet").await?;
        for device in [phone, laptop] {
            device.wait_for("the task", &deadline).await?;
            device.wait_for("the online status", ONLINE).await?;
        }
        // Offline, each device sets a different deadline.
        scene
            .offline(async || {
                for (device, date) in [(phone, "2026-12-15"), (laptop, "2026-12-31")] {
                    device.wait_for("the offline status", OFFLINE).await?;
                    let input = device.wait_for("the deadline", &deadline).await?;
                    device.set_value(&input, date).await?;
                    // The app took the edit: it is saved on the device, waiting for the relay.
                    device.wait_for("the deadline waiting to sync", PENDING).await?;
                }
                Ok(())
            })
            .await?;
        // Both values meet at the relay: the review shows the conflict with both.
        laptop.open(origin, "/tong-hop").await?;
        let conflict = "[data-testid=conflict][data-path$='.deadline']";
        for date in ["2026-12-15", "2026-12-31"] {
            let value = format!("{conflict} [data-testid=conflict-value][data-value='{date}']");
            laptop.wait_for("both values", &value).await?;
        }
        let keep = format!("{conflict} [data-testid=keep-value][data-value='2026-12-15']");
        laptop.wait_for("keep the 15th", &keep).await?.click().await?;
        laptop.wait_for("no conflict left", "[data-testid=conflict-count][data-count='0']").await?;
        for device in [phone, laptop] {
            device.open(origin, "/nghi-quyet").await?;
            wait_for_input_value(device, &deadline, "2026-12-15").await?;
            device.wait_for("everything synced", NOTHING_UNSYNCED).await?;
        }
        // The relay's copy holds the settled value and no conflict.
        let stored = stored_doc(scene.data, resolution_path().document_id()).await?;
        let found = review::conflicts(&stored);
        ensure!(found.is_empty(), "the relay's resolution still has conflicts: {found:?}");
        let r: Resolution = hydrate(&stored)?;
        let task = r.tasks.iter().find(|t| t.id == id).context("the task at the relay")?;
        ensure!(task.deadline == "2026-12-15", "the relay's deadline is {:?}", task.deadline);
        Ok(())
    })
    .await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Waits until the input matching `selector` holds `value`.
async fn wait_for_input_value(device: &Phone, selector: &str, value: &str) -> anyhow::Result<()> {
    device
        .driver
        .query(By::Css(selector))
        .with_value(value.to_owned())
        .wait(TIMEOUT, std::time::Duration::from_millis(100))
        .first()
        .await
        .with_context(|| format!("waiting for {selector} to hold {value}"))?;
    Ok(())
}
