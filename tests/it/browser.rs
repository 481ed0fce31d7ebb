//! Real browsers for the end-to-end tests: the system `chromedriver` as a child process, and
//! headless Chromium sessions on it, each with its own profile (its own IndexedDB: one phone).
//!
//! Gated by `CHIBO_E2E=1` (`cargo xtask test` sets it once `app/dist` is built): without it the
//! tests skip; with it, a missing driver, browser or app build fails the test.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use thirtyfour::prelude::*;
use thirtyfour::{ChromeCapabilities, DesiredCapabilities};

use crate::harness::TIMEOUT;

/// Set to `1` to run (and require) the browser tests.
pub(crate) const ENV_E2E: &str = "CHIBO_E2E";
/// Overrides for where the driver and the browser live (Debian's paths by default).
const ENV_CHROMEDRIVER: &str = "CHIBO_CHROMEDRIVER";
const ENV_CHROMIUM: &str = "CHIBO_CHROMIUM";

/// How often waits look at the page again.
const POLL: Duration = Duration::from_millis(100);
/// A phone's screen, CSS pixels.
pub(crate) const PHONE: (u32, u32) = (360, 800);
/// A laptop's viewport (the secretary's review).
pub(crate) const LAPTOP: (u32, u32) = (1280, 800);

/// The status bar says the page is connected to the relay.
pub(crate) const ONLINE: &str = "[data-testid=sync-status][data-state=online]";
/// The status bar says the page is offline.
pub(crate) const OFFLINE: &str = "[data-testid=sync-status][data-state=offline]";
/// The service worker controls the page (it reopens without the relay).
pub(crate) const OFFLINE_READY: &str = "html[data-offline-ready=yes]";
/// Every open document is acknowledged by the relay.
pub(crate) const NOTHING_UNSYNCED: &str = "[data-testid=unsynced-count][data-count='0']";
/// Some edit on this device has not reached the relay yet.
pub(crate) const PENDING: &str = "[data-testid=unsynced-count]:not([data-count='0'])";
const RECONNECT: &str = "[data-testid=reconnect]";

/// What a browser test needs from the machine.
#[derive(Debug)]
pub(crate) struct Prerequisites {
    pub(crate) chromedriver: PathBuf,
    pub(crate) chromium: PathBuf,
    /// The built app (`cargo xtask build-app`).
    pub(crate) app_dir: PathBuf,
}

impl Prerequisites {
    /// `None` (after saying why) when the browser tests are not asked for; an error when they
    /// are and something is missing.
    pub(crate) fn check(test: &str) -> anyhow::Result<Option<Self>> {
        if std::env::var_os(ENV_E2E).is_none_or(|v| v != "1") {
            eprintln!("{test}: skipped; set {ENV_E2E}=1 (after `cargo xtask build-app`) to run it");
            return Ok(None);
        }
        let path_from =
            |var: &str, default: &str| std::env::var_os(var).map_or(default.into(), PathBuf::from);
        let found = Self {
            chromedriver: path_from(ENV_CHROMEDRIVER, "/usr/bin/chromedriver"),
            chromium: path_from(ENV_CHROMIUM, "/usr/bin/chromium"),
            app_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/dist"),
        };
        let mut missing = Vec::new();
        for (what, path, fix) in [
            (
                "chromedriver",
                &found.chromedriver,
                "apt-get install chromium-driver, or set CHIBO_CHROMEDRIVER",
            ),
            ("chromium", &found.chromium, "apt-get install chromium, or set CHIBO_CHROMIUM"),
        ] {
            if !path.is_file() {
                missing.push(format!("{what} not found at {} ({fix})", path.display()));
            }
        }
        if !found.app_dir.join("index.html").is_file() {
            missing
                .push(format!("no built app in {} (run `cargo xtask build-app`)", found.app_dir.display()));
        }
        ensure!(missing.is_empty(), "{ENV_E2E}=1 but {test} cannot run: {}", missing.join("; "));
        Ok(Some(found))
    }
}

/// `chromedriver --port=N` as a child process, killed on drop.
pub(crate) struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    /// Starts the driver on a free port and waits for it to say it is ready.
    pub(crate) async fn start(binary: &Path) -> anyhow::Result<Self> {
        let binary = binary.to_path_buf();
        tokio::task::spawn_blocking(move || {
            // The driver cannot report a port it chose, so take one the OS says is free. The
            // window until the driver binds it is tiny; a collision fails loudly below.
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut child = Command::new(&binary)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| format!("spawning {}", binary.display()))?;
            let Some(stdout) = child.stdout.take() else { bail!("no stdout pipe") };
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut said = Vec::new();
            let ready = loop {
                match lines.next() {
                    Some(Ok(line)) if line.contains("started successfully") => break true,
                    Some(Ok(line)) => said.push(line),
                    Some(Err(_)) | None => break false,
                }
            };
            if !ready {
                let _ = child.kill();
                let _ = child.wait();
                bail!("chromedriver exited before it was ready; it said {said:?}");
            }
            // Keep draining, so the driver never blocks on a full pipe.
            std::thread::spawn(move || {
                lines.map_while(Result::ok).for_each(|l| eprintln!("chromedriver: {l}"))
            });
            Ok(Self { child, url: format!("http://127.0.0.1:{port}") })
        })
        .await?
    }

    /// A new headless browser with a fresh profile: a phone of its own.
    pub(crate) async fn phone(&self, chromium: &Path) -> anyhow::Result<Phone> {
        self.device(chromium, PHONE).await
    }

    /// A new headless browser with a fresh profile and a laptop's screen.
    pub(crate) async fn laptop(&self, chromium: &Path) -> anyhow::Result<Phone> {
        self.device(chromium, LAPTOP).await
    }

    async fn device(&self, chromium: &Path, screen: (u32, u32)) -> anyhow::Result<Phone> {
        let profile = tempfile::tempdir()?;
        let caps = chrome_capabilities(chromium, profile.path(), screen)?;
        let driver = WebDriver::new(&self.url, caps).await.context("starting a Chromium session")?;
        Ok(Phone { driver, _profile: profile })
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chrome_capabilities(
    chromium: &Path,
    profile: &Path,
    screen: (u32, u32),
) -> anyhow::Result<ChromeCapabilities> {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(&chromium.to_string_lossy())?;
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ] {
        caps.add_arg(arg)?;
    }
    // Headless windows have a minimum width above a phone's, so emulate the device's screen.
    caps.add_experimental_option(
        "mobileEmulation",
        serde_json::json!({ "deviceMetrics": { "width": screen.0, "height": screen.1, "pixelRatio": 1 } }),
    )?;
    caps.add_arg(&format!("--user-data-dir={}", profile.display()))?;
    Ok(caps)
}

/// One browser session on its own profile. Call [`Phone::quit`]; dropping only leaks the browser
/// until the driver is killed.
pub(crate) struct Phone {
    pub(crate) driver: WebDriver,
    _profile: tempfile::TempDir,
}

impl Phone {
    pub(crate) async fn open(&self, origin: SocketAddr, path: &str) -> anyhow::Result<()> {
        Ok(self.driver.goto(format!("http://{origin}{path}")).await?)
    }

    /// Waits (up to [`TIMEOUT`]) for an element matching the CSS `selector` and returns it.
    pub(crate) async fn wait_for(&self, what: &str, selector: &str) -> anyhow::Result<WebElement> {
        self.driver
            .query(By::Css(selector))
            .desc(what)
            .wait(TIMEOUT, POLL)
            .first()
            .await
            .with_context(|| format!("waiting for {what} ({selector})"))
    }

    /// Waits (up to [`TIMEOUT`]) until the element with `data-testid="{testid}"` has `value`.
    pub(crate) async fn wait_for_value(&self, testid: &str, value: &str) -> anyhow::Result<WebElement> {
        let selector = format!("[data-testid={testid}]");
        let found = self
            .driver
            .query(By::Css(&*selector))
            .with_value(value.to_owned())
            .wait(TIMEOUT, POLL)
            .first()
            .await;
        match found {
            Ok(el) => Ok(el),
            Err(e) => {
                let now = match self.driver.find(By::Css(&*selector)).await {
                    Ok(el) => el.value().await.ok().flatten(),
                    Err(_) => None,
                };
                bail!("waiting for {testid} to hold {value:?}: {e}; it holds {now:?}")
            }
        }
    }

    /// A PNG of the viewport, written to `path`; returns its pixel size.
    pub(crate) async fn screenshot(&self, path: &Path) -> anyhow::Result<(u32, u32)> {
        let png = self.driver.screenshot_as_png().await?;
        std::fs::write(path, &png).with_context(|| format!("writing {}", path.display()))?;
        png_size(&png).context("the screenshot is not a PNG")
    }

    /// Presses "reconnect" if the page is still waiting out its backoff; if the button vanished
    /// (the page is already reconnecting), the backoff's own retry brings it online.
    pub(crate) async fn reconnect_now(&self) -> anyhow::Result<()> {
        if let Some(button) = self.driver.query(By::Css(RECONNECT)).nowait().first_opt().await? {
            let _ = button.click().await;
        }
        Ok(())
    }

    /// Clicks the element with `data-testid="{testid}"` once it is there.
    pub(crate) async fn click(&self, testid: &str) -> anyhow::Result<()> {
        self.wait_for(testid, &format!("[data-testid={testid}]")).await?.click().await?;
        Ok(())
    }

    /// Sets an input's value as a person picking it would (a date picker, a select), firing
    /// its `change` event.
    pub(crate) async fn set_value(&self, el: &WebElement, value: &str) -> anyhow::Result<()> {
        self.driver
            .execute(
                "arguments[0].value = arguments[1]; \
                 arguments[0].dispatchEvent(new Event('change', { bubbles: true }));",
                vec![el.to_json()?, serde_json::json!(value)],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn quit(self) -> anyhow::Result<()> {
        Ok(self.driver.quit().await?)
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let be = |at: usize| Some(u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?));
    (png.starts_with(SIGNATURE) && png.get(12..16) == Some(b"IHDR")).then_some(())?;
    Some((be(16)?, be(20)?))
}
