//! The member app in real browsers: members join with invite codes, fill their self-assessment
//! on phones with the relay down (pages reopened from the service worker), and everything
//! converges when it returns — also on a second device of the same member, and for a native
//! client of the secretary reading from the relay.
//!
//! Runs only with `CHIBO_E2E=1` and a built `app/dist` (see [`crate::browser`]). Every wait is on
//! the page's `data-testid` elements (or the worker's `data-offline-ready` mark), never the clock.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context as _, ensure};
use chibo_shared::schema::demo::{DemoRole, demo_branch, demo_branch_id, demo_forum_id};
use chibo_shared::schema::{
    AssessmentText, DocKind, DocPath, ItemPart, SelfAssessment, genesis_change_bytes, hydrate, read_text,
};
use thirtyfour::prelude::*;

use crate::browser::{ChromeDriver, OFFLINE, OFFLINE_READY, ONLINE, Phone, Prerequisites};
use crate::e2e::{join, second_device_code, store_demo_branch};
use crate::harness::{RelayProcess, TIMEOUT, enrolled_device};

const ASSESSMENT_OPEN: &str = "[data-testid=item-A1-note]:enabled";
const SAVED_NOT_SYNCED: &str = "[data-testid=assessment-save-state][data-state=saved]";
const SYNCED: &str = "[data-testid=assessment-save-state][data-state=synced]";
const PLAN_SAVED_NOT_SYNCED: &str = "[data-testid=plan-save-state][data-state=saved]";
const PLAN_SYNCED: &str = "[data-testid=plan-save-state][data-state=synced]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_of_a_member_fill_the_self_assessment_offline_and_the_secretary_reads_it()
-> anyhow::Result<()> {
    let Some(machine) = Prerequisites::check(
        "two_devices_of_a_member_fill_the_self_assessment_offline_and_the_secretary_reads_it",
    )?
    else {
        return Ok(());
    };
    let data = tempfile::tempdir()?;
    let codes = store_demo_branch(data.path()).await?;
    let second = second_device_code(data.path(), DemoRole::Member).await?;
    let relay = RelayProcess::serve_app(data.path(), ([127, 0, 0, 1], 0).into(), &machine.app_dir).await?;
    let chromedriver = ChromeDriver::start(&machine.chromedriver).await?;
    let phone_a = chromedriver.phone(&machine.chromium).await?;
    let laptop_a = chromedriver.phone(&machine.chromium).await?;
    let phone_b = chromedriver.phone(&machine.chromium).await?;
    let phones = [&phone_a, &laptop_a, &phone_b];
    let outcome = async {
        let origin = relay.addr();
        let member_codes = [codes.members.first(), Some(&second), codes.members.get(1)];
        for (phone, code) in phones.into_iter().zip(member_codes) {
            join(phone, origin, code.context("a demo member's code")?).await?;
        }
        let relay = offline_round(&machine.app_dir, data.path(), relay, phones).await?;
        secretary_reads(origin, &codes.secretary).await?;
        relay.kill()
    }
    .await;
    for phone in [phone_a, laptop_a, phone_b] {
        let _ = phone.quit().await;
    }
    outcome
}

async fn offline_round(
    app_dir: &Path,
    data: &Path,
    relay: RelayProcess,
    phones: [&Phone; 3],
) -> anyhow::Result<RelayProcess> {
    let [phone_a, laptop_a, phone_b] = phones;
    let origin = relay.addr();
    for phone in phones {
        phone.open(origin, "/tu-kiem-diem").await?;
        phone.wait_for("the self-assessment", ASSESSMENT_OPEN).await?;
        phone.wait_for("the online status", ONLINE).await?;
        phone.wait_for("the service worker in control", OFFLINE_READY).await?;
    }

    relay.kill()?;
    // Each page reopens with the relay gone: from the service worker's cache and IndexedDB.
    for phone in phones {
        phone.driver.refresh().await?;
        phone.wait_for("the self-assessment reopened offline", ASSESSMENT_OPEN).await?;
        phone.wait_for("the offline status", OFFLINE).await?;
    }
    // Member A on the phone: A1 applies, to the first degree, with a note.
    phone_a.click("item-A1-applies-yes").await?;
    let degree = phone_a.wait_for("the degree of A1", "[data-testid=item-A1-degree]").await?;
    let first = degree.find(By::Css("option:nth-child(2)")).await?;
    first.click().await?;
    type_into(phone_a, "item-A1-note", "Từ điện thoại.").await?;
    // Member A on the laptop, the same document: A2 does not apply; a note on B1.
    laptop_a.click("item-A2-applies-no").await?;
    type_into(laptop_a, "item-B1-note", "Từ máy tính.").await?;
    // Member B: their own self-assessment, then their plan and this month's progress.
    phone_b.click("item-A1-applies-no").await?;
    for phone in phones {
        phone.wait_for("saved on the device, not synced", SAVED_NOT_SYNCED).await?;
    }
    let item = add_plan_item(phone_b, "Không ngại va chạm trong phê bình.").await?;
    let status =
        phone_b.wait_for("the progress status", &format!("[data-testid=progress-{item}-status]")).await?;
    status.find(By::Css("option[value=in-progress]")).await?.click().await?;
    type_into(phone_b, &format!("progress-{item}-note"), "Đã góp ý thẳng thắn trong họp chi bộ.").await?;
    phone_b.wait_for("the plan saved, not synced", PLAN_SAVED_NOT_SYNCED).await?;

    let relay = RelayProcess::serve_app(data, origin, app_dir).await?;
    ensure!(relay.addr() == origin, "the relay came back on {} instead of {origin}", relay.addr());
    for phone in phones {
        phone.reconnect_now().await?;
    }
    for phone in phones {
        phone.wait_for("the online status", ONLINE).await?;
    }
    for phone in [phone_a, laptop_a] {
        phone.wait_for("the self-assessment synced", SYNCED).await?;
    }
    // Both devices of A hold both devices' answers.
    for phone in [phone_a, laptop_a] {
        phone.wait_for("A1 answered yes", "[data-testid=item-A1-applies-yes]:checked").await?;
        phone.wait_for("A2 answered no", "[data-testid=item-A2-applies-no]:checked").await?;
        phone.wait_for_value("item-A1-note", "Từ điện thoại.").await?;
        phone.wait_for_value("item-B1-note", "Từ máy tính.").await?;
    }
    phone_b.wait_for("the plan synced", PLAN_SYNCED).await?;
    phone_b.open(origin, "/tu-kiem-diem").await?;
    phone_b.wait_for("B's own answer", "[data-testid=item-A1-applies-no]:checked").await?;
    phone_b.wait_for("B's self-assessment synced", SYNCED).await?;
    ensure!(
        phone_b
            .driver
            .query(By::Css("[data-testid=item-A1-note]"))
            .first()
            .await?
            .value()
            .await?
            .unwrap_or_default()
            == "",
        "member B sees member A's note"
    );
    Ok(relay)
}

/// The secretary's laptop, a native client, enrols and reads member A's self-assessment.
async fn secretary_reads(origin: SocketAddr, code: &str) -> anyhow::Result<()> {
    let (laptop, url) = enrolled_device(origin, code, "secretary-laptop", 0x5E).await?;
    let member = demo_branch().roster.iter().find(|m| m.role == DemoRole::Member).context("member")?.id;
    let doc =
        DocPath::SelfAssessment { branch: demo_branch_id(), forum: demo_forum_id(), member }.document_id();
    laptop.client.open(doc, Some(genesis_change_bytes(DocKind::SelfAssessment))).await?;
    laptop.client.connect(&url).await?;
    laptop
        .client
        .wait_until("A's answers at the secretary", TIMEOUT, move |inner| {
            inner.engine().doc(&doc).and_then(|am| hydrate::<SelfAssessment>(am).ok()).is_some_and(|a| {
                a.items.get("A1").and_then(|i| i.applies) == Some(true)
                    && a.items.get("A2").and_then(|i| i.applies) == Some(false)
                    && a.items.get("A1").is_some_and(|i| i.degree.is_some())
            })
        })
        .await?;
    let note = |code: &str| AssessmentText::Item { code: code.to_owned(), part: ItemPart::Note };
    let (a1, b1) =
        laptop.client.read(doc, move |am| (read_text(am, &note("A1")), read_text(am, &note("B1")))).await?;
    ensure!(a1? == "Từ điện thoại." && b1? == "Từ máy tính.", "the secretary's copy lacks a note");
    Ok(())
}

/// On the plan page: adds a Resolution 4 item, types its content; returns the item's id.
async fn add_plan_item(phone: &Phone, content: &str) -> anyhow::Result<String> {
    phone.driver.goto(format!("{}ke-hoach", base(phone).await?)).await?;
    phone.click("add-item-r4").await?;
    let card = phone.wait_for("the new plan item", "[data-testid^=plan-item-]").await?;
    let testid = card.attr("data-testid").await?.context("a plan item's test id")?;
    let id = testid.trim_start_matches("plan-item-").to_owned();
    type_into(phone, &format!("plan-{id}-content"), content).await?;
    Ok(id)
}

/// `http://host:port/` of the page the phone shows.
async fn base(phone: &Phone) -> anyhow::Result<String> {
    let url = phone.driver.current_url().await?;
    Ok(format!("{}://{}/", url.scheme(), url.authority()))
}

async fn type_into(phone: &Phone, testid: &str, text: &str) -> anyhow::Result<()> {
    let el = phone.wait_for(testid, &format!("[data-testid={testid}]:enabled")).await?;
    el.send_keys(text).await?;
    phone.wait_for_value(testid, text).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commitment_signed_on_one_device_verifies_on_another_and_shows_a_later_edit() -> anyhow::Result<()>
{
    let Some(machine) =
        Prerequisites::check("a_commitment_signed_on_one_device_verifies_on_another_and_shows_a_later_edit")?
    else {
        return Ok(());
    };
    let data = tempfile::tempdir()?;
    let codes = store_demo_branch(data.path()).await?;
    let second = second_device_code(data.path(), DemoRole::Member).await?;
    let relay = RelayProcess::serve_app(data.path(), ([127, 0, 0, 1], 0).into(), &machine.app_dir).await?;
    let chromedriver = ChromeDriver::start(&machine.chromedriver).await?;
    let phone = chromedriver.phone(&machine.chromium).await?;
    let laptop = chromedriver.phone(&machine.chromium).await?;
    let outcome = async {
        let origin = relay.addr();
        join(&phone, origin, codes.members.first().context("a member's code")?).await?;
        join(&laptop, origin, &second).await?;
        let item = add_plan_item(&phone, "Gương mẫu trong sinh hoạt khu phố.").await?;
        phone.click("sign-commitment").await?;
        phone.wait_for("the commitment signed", "[data-testid=commitment-status][data-state=valid]").await?;
        phone.wait_for("the plan synced", PLAN_SYNCED).await?;
        // The other device verifies the signature against the roster's keys.
        laptop.open(origin, "/ke-hoach").await?;
        laptop
            .wait_for("the commitment verified", "[data-testid=commitment-status][data-state=valid]")
            .await?;
        laptop.wait_for_value(&format!("plan-{item}-content"), "Gương mẫu trong sinh hoạt khu phố.").await?;
        // An edit of a signed item on the laptop shows on both.
        type_into(&laptop, &format!("plan-{item}-content"), " Thêm.").await.ok();
        laptop
            .wait_for("changed since signing", "[data-testid=commitment-status][data-state=changed]")
            .await?;
        phone
            .wait_for("changed since signing", "[data-testid=commitment-status][data-state=changed]")
            .await?;
        relay.kill()
    }
    .await;
    for p in [phone, laptop] {
        let _ = p.quit().await;
    }
    outcome
}
