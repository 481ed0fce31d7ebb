//! `cargo xtask <command>`: the project's build helper (the cargo-xtask convention).
//!
//! Commands: `ensure-tools`, `build-app [--dev]`, `run`, `test`, `test-pg`, `screenshots DIR`,
//! `measure-startup`, `bench-sync [--quick]`. Everything runs from the workspace root; tools we
//! pin (wasm-bindgen-cli, binaryen) are checked before use.
//!
//! # Layout
//! - [`tools`]: finding and installing the pinned external tools.
//! - [`app`]: building `app/dist/` (wasm-bindgen, wasm-opt, hashed names, service worker,
//!   precompressed assets), and the blank page the same way into `target/blank-dist/`.
//! - [`pg`]: a private PostgreSQL cluster for the tests that need one.
//! - [`bench`]: the side-by-side sync benchmark (chibo's relay vs the automerge-repo sync server).

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod app;
mod bench;
mod pg;
mod tools;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ensure-tools      check/install wasm-bindgen-cli (Cargo.lock's version), wasm-opt, the wasm32 target
  build-app [--dev] build the web app into app/dist/ (--dev: debug build, no wasm-opt)
  run               build the app, create ./chibo-data with the demo branch, print invite codes, serve on 127.0.0.1:8080
  test              every test: native workspace tests (with a private PostgreSQL for the store and
                    multi-node tests), browser storage tests, the app build, then the end-to-end
                    browser tests (CHIBO_E2E=1; needs chromium and chromedriver)
  test-pg           only the PostgreSQL store, roster and multi-node relay tests, on a private PostgreSQL
  screenshots DIR   PNGs of every member page at 360x800 in Vietnamese, written to DIR
  measure-startup   build the app and a blank Leptos page, time both starting from the service-worker
                    cache in Chromium (a table; CSV into $CHIBO_MEASURE_OUT if set)
  bench-sync [--quick] [--out DIR]
                    the same load (10, 50, 100, 200 devices; --quick: 10, 50, shorter) against chibo's relay
                    (open access) and the automerge-repo sync server: a table of ratios, CSV and PNG in
                    DIR (default target/bench-sync/)";

fn main() -> std::process::ExitCode {
    match run_command(std::env::args().skip(1).collect()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_command(args: Vec<String>) -> Result<()> {
    let root = workspace_root();
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ensure-tools"] => tools::ensure(&root),
        ["build-app"] => app::build(&root, app::Mode::Release).map(drop),
        ["build-app", "--dev"] => app::build(&root, app::Mode::Dev).map(drop),
        ["run"] => run(&root),
        ["test"] => test(&root),
        ["screenshots", dir] => screenshots(&root, dir),
        ["measure-startup"] => measure_startup(&root),
        ["test-pg"] => test_pg(),
        ["bench-sync", rest @ ..] => bench::bench_sync(&root, &bench::Options::parse(&root, rest)?),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown command {args:?}\n{USAGE}"),
    }
}

/// `cargo xtask run`: the app and the relay with a demo branch on http://127.0.0.1:8080.
fn run(root: &Path) -> Result<()> {
    tools::ensure(root)?;
    let dist = app::build(root, app::Mode::Release)?;
    let server =
        ["run", "--release", "-p", "chibo-server", "--bin", "chibo-server", "--", "--data", "./chibo-data"];
    // Creates the demo branch on first run; every run prints fresh invite codes for its members.
    cargo(&[&server[..], &["init", "--demo"]].concat())?;
    let dist = dist.to_string_lossy();
    println!("chibo: http://127.0.0.1:8080 — join with one of the codes above (Ctrl-C stops)");
    let serve = ["serve", "--listen", "127.0.0.1:8080", "--app-dir", &dist];
    cargo(&[&server[..], &serve[..]].concat())
}

/// `cargo xtask test-pg`: the tests that need PostgreSQL, against a private cluster.
fn test_pg() -> Result<()> {
    let cluster = pg::Cluster::start()?;
    let cargo_bin = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let store = run_cmd(command(&cargo_bin).envs(cluster.env()).args([
        "test",
        "-p",
        "chibo-server",
        "--lib",
        "--",
        "store::postgres",
        "roster::tests::postgres",
    ]));
    let multinode = run_cmd(command(&cargo_bin).envs(cluster.env()).args([
        "test",
        "-p",
        "chibo-tests",
        "--test",
        "it",
        "multinode",
    ]));
    drop(cluster);
    store.and(multinode)
}

/// `cargo xtask test`: every phase runs; the exit status fails if any did.
/// The browser tests: `cargo test` arguments (they skip unless `CHIBO_E2E=1`).
const E2E_TESTS: [&str; 10] = [
    "test",
    "-p",
    "chibo-tests",
    "--test",
    "it",
    "--",
    "e2e::",
    "member_app::",
    "committee_app::",
    "screenshots::",
];

/// `cargo xtask screenshots DIR`: PNGs of every member page at 360×800 and every committee page
/// at 360×800 and 1280×800, in Vietnamese.
fn screenshots(root: &Path, dir: &str) -> Result<()> {
    tools::ensure(root)?;
    app::build(root, app::Mode::Release)?;
    let dir = std::path::absolute(dir).with_context(|| format!("resolving {dir}"))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_cmd(command(cargo).env("CHIBO_E2E", "1").env("CHIBO_SCREENSHOTS", &dir).args([
        "test",
        "-p",
        "chibo-tests",
        "--test",
        "it",
        "screenshots::",
    ]))?;
    println!("screenshots in {}", dir.display());
    Ok(())
}

/// `cargo xtask measure-startup`: navigation to interactive from the service-worker cache, the
/// member app against a blank Leptos page built the same way (`tests/it/startup.rs`). A
/// measurement, not a check: the end-to-end phase of `cargo xtask test` leaves it out.
fn measure_startup(root: &Path) -> Result<()> {
    tools::ensure(root)?;
    app::build(root, app::Mode::Release)?;
    app::build_page(root, app::BLANK, app::Mode::Release)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_cmd(command(cargo).env("CHIBO_E2E", "1").args([
        "test",
        "-p",
        "chibo-tests",
        "--test",
        "it",
        "startup::",
        "--",
        "--nocapture",
    ]))
}

fn test(root: &Path) -> Result<()> {
    // Stopped and removed when this function returns, whatever happened.
    let postgres: OnceCell<pg::Cluster> = OnceCell::new();
    let phases: [(&str, &dyn Fn() -> Result<()>); 6] = [
        ("ensure tools", &|| tools::ensure(root)),
        ("postgres", &|| {
            let cluster = pg::Cluster::start()?;
            let _ = postgres.set(cluster);
            Ok(())
        }),
        // `CHIBO_REQUIRE_PG=1` makes the PostgreSQL tests fail rather than skip if the cluster
        // did not start.
        ("native tests", &|| {
            let cargo_bin = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = command(cargo_bin);
            match postgres.get() {
                Some(cluster) => cmd.envs(cluster.env()),
                None => cmd.env("CHIBO_REQUIRE_PG", "1"),
            };
            run_cmd(cmd.args(["test", "--workspace", "--exclude", "chibo-app", "--no-fail-fast"]))
        }),
        ("browser tests", &|| {
            cargo(&["test", "-p", "chibo-app", "--target", app::WASM_TARGET, "--no-fail-fast"])
        }),
        ("app build", &|| app::build(root, app::Mode::Release).map(drop)),
        // The browser test needs the app just built; `CHIBO_E2E=1` makes it run (and fail if
        // chromedriver, Chromium or app/dist is missing) instead of skipping.
        ("end-to-end", &|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            run_cmd(command(cargo).env("CHIBO_E2E", "1").args(E2E_TESTS))
        }),
    ];
    let mut report = Vec::new();
    for (i, (name, phase)) in phases.iter().enumerate() {
        println!("\n=== xtask test: {name}");
        let (result, took) = timed(phase);
        if let Err(e) = &result {
            eprintln!("xtask: {name} failed: {e:#}");
        }
        report.push((*name, result.is_ok(), took));
        // Nothing else can run without the tools.
        if i == 0 && result.is_err() {
            break;
        }
    }
    println!("\n=== xtask test: summary");
    for (name, ok, took) in &report {
        println!("{:<14} {:<4} {:>7.1}s", name, if *ok { "ok" } else { "FAIL" }, took.as_secs_f64());
    }
    let failed: Vec<_> = report.iter().filter(|(_, ok, _)| !ok).map(|(name, _, _)| *name).collect();
    if failed.is_empty() { Ok(()) } else { bail!("failed: {}", failed.join(", ")) }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// The workspace root: xtask's manifest sits one level below it.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// A command for `program`, found on a PATH that includes `$CARGO_HOME/bin`.
fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("PATH", tools::child_path());
    cmd
}

/// Runs `cargo` (the one that runs us) with `args`.
fn cargo(args: &[&str]) -> Result<()> {
    run_cmd(command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())).args(args))
}

/// Runs a command to completion, echoing it first; non-zero exit is an error.
fn run_cmd(cmd: &mut Command) -> Result<()> {
    let shown = format!("{} {}", cmd.get_program().to_string_lossy(), shell_words(cmd));
    println!("$ {shown}");
    let status = cmd.status().with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns its trimmed stdout, or `None` if it cannot start or fails.
fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn shell_words(cmd: &Command) -> String {
    cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}
