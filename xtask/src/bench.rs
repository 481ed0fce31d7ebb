//! `cargo xtask bench-sync [--quick] [--out DIR]`: the same load, level by level, against chibo's
//! relay and the automerge-repo sync server (`bench/baseline/server.mjs`), each started fresh
//! for each level on a free loopback port with an empty data directory. `chibo-loadgen` appends
//! one summary row per relay × level (and a time series) to CSVs in DIR, then prints the table
//! of ratios and draws the PNG there.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, command, run_cmd};

/// A load level: devices (in groups of ten sharing two documents each, like a branch's members
/// and their shared minutes and resolution).
struct Level {
    devices: usize,
}

/// The load every level shares. A device types bursts of 20 edits at 4 edits/s, thinks for a
/// second, and goes offline for 3 s about every 15 s (it keeps typing meanwhile).
const LOAD_ARGS: [&str; 14] = [
    "--group-size",
    "10",
    "--docs-per-group",
    "2",
    "--rate",
    "4",
    "--burst",
    "20",
    "--think-ms",
    "1000",
    "--churn-every",
    "15",
    "--offline-for",
    "3",
];

/// What the two relays are called in the results.
const OURS: &str = "chibo";
const BASELINE: &str = "automerge-repo";

/// Options of `bench-sync`.
pub(crate) struct Options {
    quick: bool,
    out: PathBuf,
}

impl Options {
    pub(crate) fn parse(root: &Path, args: &[&str]) -> Result<Self> {
        let mut options = Self { quick: false, out: root.join("target/bench-sync") };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match *arg {
                "--quick" => options.quick = true,
                "--out" => options.out = PathBuf::from(args.next().context("--out needs a directory")?),
                other => bail!("bench-sync: unknown argument {other:?}"),
            }
        }
        Ok(options)
    }
}

/// Runs the whole benchmark.
pub(crate) fn bench_sync(root: &Path, options: &Options) -> Result<()> {
    cargo(&[
        "build",
        "--release",
        "-p",
        "chibo-server",
        "-p",
        "chibo-loadgen",
        "--bin",
        "chibo-server",
        "--bin",
        "chibo-loadgen",
    ])?;
    let baseline_dir = root.join("bench/baseline");
    run_cmd(command("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&baseline_dir))
        .context("installing the baseline (npm ci in bench/baseline)")?;
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    let out = std::path::absolute(&options.out)?;
    let (summary, series) = (out.join("summary.csv"), out.join("series.csv"));
    for file in [&summary, &series] {
        if file.exists() {
            std::fs::remove_file(file).with_context(|| format!("removing the old {}", file.display()))?;
        }
    }
    let release = root.join("target/release");
    let loadgen = release.join("chibo-loadgen");
    let (levels, duration): (&[Level], &str) = if options.quick {
        (&[Level { devices: 10 }, Level { devices: 50 }], "5")
    } else {
        (
            &[Level { devices: 10 }, Level { devices: 50 }, Level { devices: 100 }, Level { devices: 200 }],
            "20",
        )
    };
    println!(
        "bench-sync: chibo's relay runs with --open-access (no tokens): this measures sync, not \
         authentication. Each relay is started fresh, with an empty data directory, for each level."
    );
    for level in levels {
        for server in [OURS, BASELINE] {
            let data = tempfile::tempdir().context("creating a data directory")?;
            let relay = match server {
                OURS => Server::chibo(&release.join("chibo-server"), data.path())?,
                _ => Server::baseline(&baseline_dir, data.path())?,
            };
            println!("\n=== bench-sync: {server}, {} devices ({})", level.devices, relay.url);
            let devices = level.devices.to_string();
            let pid = relay.child.id().to_string();
            let mut cmd = command(&loadgen);
            cmd.args(["run", "--url", &relay.url, "--server", server, "--server-pid", &pid])
                .args(["--devices", &devices, "--duration", duration])
                .args(LOAD_ARGS)
                .arg("--csv")
                .arg(&summary)
                .arg("--series-csv")
                .arg(&series);
            let result = run_cmd(&mut cmd);
            drop(relay);
            result.with_context(|| format!("{server} with {} devices", level.devices))?;
        }
    }
    println!();
    run_cmd(
        command(&loadgen)
            .arg("report")
            .arg("--csv")
            .arg(&summary)
            .arg("--png")
            .arg(out.join("bench-sync.png")),
    )?;
    println!("bench-sync: CSV and PNG in {}", out.display());
    Ok(())
}

/// A relay process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `chibo-server serve` in open access on a free port, once it accepts connections.
    fn chibo(exe: &Path, data: &Path) -> Result<Self> {
        // The relay prints no machine-readable address: pick a free port and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(exe)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--open-access"])
            .env("RUST_LOG", "chibo_server=warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut server = Self { child, url: format!("ws://127.0.0.1:{port}/sync") };
        server.wait_listening(port)?;
        Ok(server)
    }

    /// `node server.mjs DATA` on port 0; it prints `listening PORT`.
    fn baseline(dir: &Path, data: &Path) -> Result<Self> {
        let mut child = command("node")
            .arg(dir.join("server.mjs"))
            .arg(data)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting node bench/baseline/server.mjs")?;
        let stdout = child.stdout.take().context("no stdout from the baseline")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).context("reading the baseline's port")?;
        // Killed on the way out if the port does not parse.
        let mut server = Self { child, url: String::new() };
        let port: u16 = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .with_context(|| format!("the baseline printed {line:?}, not `listening PORT`"))?;
        server.url = format!("ws://127.0.0.1:{port}/");
        Ok(server)
    }

    fn wait_listening(&mut self, port: u16) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait()? {
                bail!("the relay exited with {status} before listening");
            }
            if Instant::now() > deadline {
                bail!("the relay did not listen on port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}
