//! PNG screenshots of every member page at 360×800, and of every committee page at 360×800 and
//! 1280×800, in Vietnamese: `cargo xtask screenshots DIR`
//! (which sets `CHIBO_SCREENSHOTS=DIR`); in the end-to-end phase of `cargo xtask test` they go to
//! a temporary directory, so every page is at least rendered in a real browser on every run.

use std::path::PathBuf;

use anyhow::{Context as _, ensure};

use chibo_shared::schema::demo::DemoRole;

use crate::browser::{ChromeDriver, LAPTOP, PHONE, Prerequisites};
use crate::e2e::{join, second_device_code, store_demo_branch};
use crate::harness::RelayProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_page_at_360_by_800() -> anyhow::Result<()> {
    let Some(machine) = Prerequisites::check("every_member_page_at_360_by_800")? else {
        return Ok(());
    };
    let dir = screenshot_dir()?;
    let data = tempfile::tempdir()?;
    let codes = store_demo_branch(data.path()).await?;
    let relay = RelayProcess::serve_app(data.path(), ([127, 0, 0, 1], 0).into(), &machine.app_dir).await?;
    let chromedriver = ChromeDriver::start(&machine.chromedriver).await?;
    let phone = chromedriver.phone(&machine.chromium).await?;
    let outcome = async {
        let origin = relay.addr();
        let code = codes.members.first().context("a member's code")?;
        let shot = |name: &'static str| {
            let path = dir.join(format!("{name}.png"));
            let phone = &phone;
            async move {
                let size = phone.screenshot(&path).await?;
                ensure!(size == PHONE, "{name} is {size:?}, not {PHONE:?}");
                eprintln!("screenshot: {}", path.display());
                Ok::<_, anyhow::Error>(())
            }
        };
        phone.open(origin, &format!("/tham-gia?ma={code}")).await?;
        phone.wait_for_value("invite-code", code).await?;
        shot("01-tham-gia").await?;
        phone.wait_for("join", "[data-testid=join]:enabled").await?.click().await?;
        phone.wait_for("home", "[data-testid=hello]").await?;
        phone.wait_for("online", "[data-testid=sync-status][data-state=online]").await?;
        shot("02-trang-chinh").await?;
        phone.open(origin, "/tu-kiem-diem").await?;
        phone.wait_for("an item", "[data-testid=item-A1-applies-yes]").await?.click().await?;
        let note = phone.wait_for("the note", "[data-testid=item-A1-note]:enabled").await?;
        note.send_keys("Đôi khi còn ngại va chạm khi góp ý đồng chí trong chi bộ.").await?;
        note.scroll_into_view().await?;
        shot("03-tu-kiem-diem").await?;
        phone.open(origin, "/ke-hoach").await?;
        phone.wait_for("add", "[data-testid=add-item-r4]").await?.click().await?;
        let content = phone.wait_for("the item", "[data-testid$=-content]:enabled").await?;
        content.send_keys("Thẳng thắn góp ý, không né tránh va chạm.").await?;
        phone.wait_for("sign", "[data-testid=sign-commitment]").await?.click().await?;
        phone.wait_for("signed", "[data-testid=commitment-status][data-state=valid]").await?;
        shot("04-ke-hoach").await?;
        phone.wait_for("progress", "[data-testid=progress-month]").await?.scroll_into_view().await?;
        shot("05-tien-do-thang").await?;
        phone.open(origin, "/bieu-quyet").await?;
        phone.wait_for("the vote page", "[data-testid=my-vote]").await?;
        shot("06-bieu-quyet").await?;
        phone.open(origin, "/dien-dan").await?;
        phone.wait_for("the forum", "[data-testid=minutes]").await?;
        shot("07-dien-dan").await?;
        phone.open(origin, "/tai-lieu").await?;
        phone.wait_for("the documents", "[data-testid=storage-status], [data-testid=document]").await?;
        shot("08-tai-lieu").await?;
        relay.kill()
    }
    .await;
    let _ = phone.quit().await;
    outcome
}

/// The committee's and the secretary's pages, each at 360×800 (a committee member's phone) and
/// 1280×800 (the secretary's laptop), in Vietnamese.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committee_page_at_360_by_800_and_1280_by_800() -> anyhow::Result<()> {
    let Some(machine) = Prerequisites::check("every_committee_page_at_360_by_800_and_1280_by_800")? else {
        return Ok(());
    };
    let dir = screenshot_dir()?;
    let data = tempfile::tempdir()?;
    let codes = store_demo_branch(data.path()).await?;
    let laptop_code = second_device_code(data.path(), DemoRole::Secretary).await?;
    let relay = RelayProcess::serve_app(data.path(), ([127, 0, 0, 1], 0).into(), &machine.app_dir).await?;
    let chromedriver = ChromeDriver::start(&machine.chromedriver).await?;
    let phone = chromedriver.phone(&machine.chromium).await?;
    let laptop = chromedriver.laptop(&machine.chromium).await;
    let outcome = async {
        let laptop = laptop.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let origin = relay.addr();
        join(&phone, origin, &codes.secretary).await?;
        join(laptop, origin, &laptop_code).await?;
        // A draft task, so the resolution and the monthly review show one.
        phone.open(origin, "/nghi-quyet").await?;
        phone.click("add-task").await?;
        let content = phone.wait_for("the task", "[data-testid^=task-content-]:enabled").await?;
        content.send_keys("Mỗi đảng viên tự soạn kế hoạch \"2 trong 1\" trước ngày 30/4.").await?;
        let pages = [
            ("09-chuan-bi", "/chuan-bi", "[data-testid=forum-title-input]"),
            ("10-dien-dan-hoi-truong", "/dien-dan", "[data-testid=attendance-row]"),
            ("11-nghi-quyet", "/nghi-quyet", "[data-testid=vote-panel] [data-testid=tally]"),
            ("12-hop-thang", "/hop-thang", "[data-testid=member-month]"),
            ("13-tong-hop", "/tong-hop", "[data-testid=matrix-row]"),
        ];
        for (device, size, suffix) in [(&phone, PHONE, "360x800"), (laptop, LAPTOP, "1280x800")] {
            for (name, path, ready) in pages {
                device.open(origin, path).await?;
                device.wait_for(name, ready).await?;
                device.wait_for("online", "[data-testid=sync-status][data-state=online]").await?;
                let file = dir.join(format!("{name}-{suffix}.png"));
                let shot = device.screenshot(&file).await?;
                ensure!(shot == size, "{name} is {shot:?}, not {size:?}");
                eprintln!("screenshot: {}", file.display());
            }
        }
        relay.kill()
    }
    .await;
    let _ = phone.quit().await;
    if let Ok(laptop) = laptop {
        let _ = laptop.quit().await;
    }
    outcome
}

/// `CHIBO_SCREENSHOTS`, or a fresh temporary directory.
fn screenshot_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("CHIBO_SCREENSHOTS") {
        Some(dir) => PathBuf::from(dir),
        None => tempfile::Builder::new().prefix("chibo-screens-").tempdir()?.keep(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
