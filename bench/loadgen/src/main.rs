//! `chibo-loadgen run …` drives one relay at one load level and appends its figures to a CSV;
//! `chibo-loadgen report …` prints the table of ratios from that CSV and draws the PNG.
//! `cargo xtask bench-sync` runs both against chibo's relay and the automerge-repo sync server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chibo_loadgen::load::{self, LoadConfig};
use chibo_loadgen::{plot, report};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load generator for automerge-repo v1 sync relays")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One load level against one relay.
    Run(RunArgs),
    /// The table of ratios and the PNG from a summary CSV.
    Report {
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        png: PathBuf,
        /// The relay whose figures are divided by the baseline's.
        #[arg(long, default_value = "chibo")]
        ours: String,
        #[arg(long, default_value = "automerge-repo")]
        baseline: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The relay's WebSocket URL (chibo: ws://HOST:PORT/sync).
    #[arg(long)]
    url: String,
    /// The relay's name in the results.
    #[arg(long)]
    server: String,
    /// The relay's process id, for CPU and RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Devices per group (a branch); a group shares its documents.
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// Documents per group.
    #[arg(long, default_value_t = 2)]
    docs_per_group: usize,
    /// Edits per second per device while typing.
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
    /// Edits per burst.
    #[arg(long, default_value_t = 20)]
    burst: u32,
    /// Pause after each burst, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    think_ms: u64,
    /// Seconds of typing.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Each device goes offline about every this many seconds (0: never).
    #[arg(long, default_value_t = 0.0)]
    churn_every: f64,
    /// Seconds a device stays offline.
    #[arg(long, default_value_t = 3.0)]
    offline_for: f64,
    /// Seconds to wait for the last edits after typing stopped.
    #[arg(long, default_value_t = 30.0)]
    drain: f64,
    /// Directory for the devices' stores (default: /dev/shm if present, else the temp dir).
    #[arg(long)]
    store_root: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Summary CSV to append the level's row to.
    #[arg(long)]
    csv: PathBuf,
    /// Time-series CSV to append the level's samples to.
    #[arg(long)]
    series_csv: Option<PathBuf>,
}

fn default_store_root() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() { shm } else { std::env::temp_dir() }
}

async fn run(args: RunArgs) -> Result<()> {
    let run_id = format!("{}-{}-{}", std::process::id(), args.devices, args.seed);
    let config = LoadConfig {
        url: args.url,
        server: args.server,
        server_pid: args.server_pid,
        devices: args.devices,
        group_size: args.group_size,
        docs_per_group: args.docs_per_group,
        rate: args.rate,
        burst: args.burst,
        think: Duration::from_millis(args.think_ms),
        duration: Duration::from_secs_f64(args.duration),
        churn_every: (args.churn_every > 0.0).then(|| Duration::from_secs_f64(args.churn_every)),
        offline_for: Duration::from_secs_f64(args.offline_for),
        drain: Duration::from_secs_f64(args.drain),
        store_root: args.store_root.unwrap_or_else(default_store_root),
        run_id,
        seed: args.seed,
    };
    let result = load::run(&config)
        .await
        .with_context(|| format!("{} with {} devices", config.server, config.devices))?;
    let row = report::summary_row(&result);
    println!("{}\n{row}", report::SUMMARY_HEADER);
    report::append_csv(&args.csv, report::SUMMARY_HEADER, &[row])?;
    if let Some(series) = &args.series_csv {
        report::append_csv(series, report::SERIES_HEADER, &report::series_rows(&result))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run(args) => {
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
        }
        Command::Report { csv, png, ours, baseline } => {
            let rows = report::read_summary(&csv)?;
            print!("{}", report::table(&rows, &ours, &baseline));
            plot::plot(&rows, &png)?;
            println!("plot: {}", png.display());
            Ok(())
        }
    }
}
