//! Startup from the service-worker cache: the time from navigation start to
//! `performance.mark("chibo-interactive")` for the member's home page (the mark is made once the
//! member's name is shown) and, in the same run and the same way, for a blank Leptos page
//! (`bench/blank-page`, built through the app's pipeline into `target/blank-dist/`).
//!
//! `cargo xtask measure-startup` builds both and runs this. A measurement, not a check: it asserts
//! only that every reload produced a positive time, and the end-to-end phase of `cargo xtask test`
//! leaves it out. Each page is opened online until its service worker controls it, then its relay
//! is killed and the page reloaded [`RUNS`] times (the two pages alternate, so both see the same
//! machine load). Prints a table; with `CHIBO_MEASURE_OUT=DIR` also writes `DIR/startup.csv` and
//! `DIR/startup-runs.csv`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use crate::browser::{ChromeDriver, Phone, Prerequisites};
use crate::e2e::{join, store_demo_branch};
use crate::harness::{RelayProcess, TIMEOUT};

/// Reloads per page.
const RUNS: usize = 7;
/// `index.html` sets it once the service worker controls the page.
const OFFLINE_READY: &str = "html[data-offline-ready=yes]";
/// The member's greeting on the app's home page; the paragraph on the blank page.
const HELLO: &str = "[data-testid=hello]";
/// `startTime` of the `chibo-interactive` mark (ms from navigation start), or null before it.
const READ_MARK: &str = r#"
    const mark = performance.getEntriesByName("chibo-interactive")[0];
    return mark ? mark.startTime : null;
"#;
/// Where the CSV files go, if set.
const ENV_OUT: &str = "CHIBO_MEASURE_OUT";
/// How often to look for the mark again.
const POLL: Duration = Duration::from_millis(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_from_the_service_worker_cache_app_against_a_blank_page() -> anyhow::Result<()> {
    let Some(machine) =
        Prerequisites::check("startup_from_the_service_worker_cache_app_against_a_blank_page")?
    else {
        return Ok(());
    };
    let blank_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/blank-dist");
    ensure!(
        blank_dir.join("index.html").is_file(),
        "no blank page in {} (`cargo xtask measure-startup` builds it)",
        blank_dir.display()
    );
    let app_data = tempfile::tempdir()?;
    let blank_data = tempfile::tempdir()?;
    let codes = store_demo_branch(app_data.path()).await?;
    let any_port = ([127, 0, 0, 1], 0).into();
    let app_relay = RelayProcess::serve_app(app_data.path(), any_port, &machine.app_dir).await?;
    let blank_relay = RelayProcess::serve_app(blank_data.path(), any_port, &blank_dir).await?;
    let chromedriver = ChromeDriver::start(&machine.chromedriver).await?;
    let app = chromedriver.phone(&machine.chromium).await?;
    let blank = chromedriver.phone(&machine.chromium).await?;
    let outcome = async {
        let code = codes.members.first().context("a member's code")?;
        join(&app, app_relay.addr(), code).await?;
        app.wait_for("the service worker in control of the app", OFFLINE_READY).await?;
        blank.open(blank_relay.addr(), "/").await?;
        blank.wait_for("the blank page", HELLO).await?;
        blank.wait_for("the service worker in control of the blank page", OFFLINE_READY).await?;
        // From here on every navigation is answered by the service worker's cache.
        app_relay.kill()?;
        blank_relay.kill()?;

        let (mut app_ms, mut blank_ms) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            app_ms.push(reload_and_time(&app).await.context("the app")?);
            blank_ms.push(reload_and_time(&blank).await.context("the blank page")?);
        }
        for (page, runs) in [("app", &app_ms), ("blank", &blank_ms)] {
            ensure!(
                runs.len() == RUNS && runs.iter().all(|ms| ms.is_finite() && *ms > 0.0),
                "{page}: not every reload produced a positive time: {runs:?}"
            );
        }
        report(&[
            Measured::new("app", app_ms, &machine.app_dir)?,
            Measured::new("blank", blank_ms, &blank_dir)?,
        ])
    }
    .await;
    for phone in [app, blank] {
        let _ = phone.quit().await;
    }
    outcome
}

/// Reloads the page, waits for its marker element and the mark, and returns the mark's time.
async fn reload_and_time(phone: &Phone) -> anyhow::Result<f64> {
    phone.driver.refresh().await?;
    phone.wait_for("the page's marker element", HELLO).await?;
    phone.wait_for("the service worker still in control", OFFLINE_READY).await?;
    let give_up = Instant::now() + TIMEOUT;
    loop {
        if let Some(ms) = phone.driver.execute(READ_MARK, Vec::new()).await?.json().as_f64() {
            return Ok(ms);
        }
        ensure!(Instant::now() < give_up, "no chibo-interactive mark within {TIMEOUT:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// One page's reloads and its wasm's size.
struct Measured {
    page: &'static str,
    runs: Vec<f64>,
    wasm_bytes: u64,
    wasm_br_bytes: u64,
}

impl Measured {
    fn new(page: &'static str, runs: Vec<f64>, dist: &Path) -> anyhow::Result<Self> {
        let wasm = wasm_in(dist)?;
        let size = |path: &Path| {
            std::fs::metadata(path).map(|m| m.len()).with_context(|| format!("reading {}", path.display()))
        };
        let mut br = wasm.clone().into_os_string();
        br.push(".br");
        Ok(Self { page, wasm_bytes: size(&wasm)?, wasm_br_bytes: size(Path::new(&br))?, runs })
    }

    fn median(&self) -> f64 {
        percentile(&self.runs, 50)
    }

    fn p90(&self) -> f64 {
        percentile(&self.runs, 90)
    }
}

/// The nearest-rank percentile (with 7 runs, p90 is the slowest).
fn percentile(runs: &[f64], p: usize) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// The hashed `*_bg-*.wasm` in a dist directory.
fn wasm_in(dist: &Path) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(dist).with_context(|| format!("listing {}", dist.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            return Ok(path);
        }
    }
    anyhow::bail!("no .wasm in {}", dist.display())
}

/// Prints the table and, with `CHIBO_MEASURE_OUT`, writes it (and every run) as CSV.
fn report(measured: &[Measured; 2]) -> anyhow::Result<()> {
    let [app, blank] = measured;
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    let mut table = format!(
        "startup from the service-worker cache: ms from navigation start to `chibo-interactive`, \
         {RUNS} reloads each\n{:<6} {:>8} {:>8} {:>10} {:>10}  runs (ms)\n",
        "page", "median", "p90", "wasm KiB", "br KiB"
    );
    for m in measured {
        let runs: Vec<String> = m.runs.iter().map(|ms| format!("{ms:.1}")).collect();
        writeln!(
            table,
            "{:<6} {:>8.1} {:>8.1} {:>10.1} {:>10.1}  {}",
            m.page,
            m.median(),
            m.p90(),
            kib(m.wasm_bytes),
            kib(m.wasm_br_bytes),
            runs.join(" ")
        )?;
    }
    let (median_ratio, p90_ratio) = (app.median() / blank.median(), app.p90() / blank.p90());
    write!(table, "ratio app/blank: median {median_ratio:.2}, p90 {p90_ratio:.2}")?;
    eprintln!("\n{table}\n");

    let Some(out) = std::env::var_os(ENV_OUT).map(PathBuf::from) else { return Ok(()) };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut summary = String::from("page,runs,median_ms,p90_ms,median_ratio_to_blank,p90_ratio_to_blank,");
    summary.push_str("wasm_bytes,wasm_br_bytes\n");
    let mut each = String::from("page,run,ms\n");
    for m in measured {
        writeln!(
            summary,
            "{},{},{:.1},{:.1},{:.3},{:.3},{},{}",
            m.page,
            m.runs.len(),
            m.median(),
            m.p90(),
            m.median() / blank.median(),
            m.p90() / blank.p90(),
            m.wasm_bytes,
            m.wasm_br_bytes
        )?;
        for (i, ms) in m.runs.iter().enumerate() {
            writeln!(each, "{},{},{ms:.1}", m.page, i + 1)?;
        }
    }
    for (name, text) in [("startup.csv", summary), ("startup-runs.csv", each)] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[test]
fn nearest_rank_percentiles() {
    let runs = [7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0];
    assert_eq!(percentile(&runs, 50), 4.0);
    assert_eq!(percentile(&runs, 90), 7.0);
    assert!(percentile(&[], 50).is_nan());
}
