//! `chibo-server`: parses the command line, installs logging, binds, and hands over to the library.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use chibo_server::config::{AdminAction, Cli, Command, DataDir, DatabaseUrl, LogFormat};
use chibo_server::roster::{InviteSpec, Limits, Roster, unix_now};
use chibo_server::store::Store;
use chibo_server::store::postgres::PostgresStore;
use chibo_server::store::roster::RosterStore;
use chibo_server::store::sqlite::SqliteStore;
use chibo_server::store::transfer;
use clap::{CommandFactory as _, Parser as _};
use tracing_subscriber::EnvFilter;

const DEFAULT_LOG_FILTER: &str = "chibo_server=info,tower_http=info";

/// jemalloc, built to give freed pages back to the system at once (`dirty_decay_ms:0,
/// muzzy_decay_ms:0`, set in `.cargo/config.toml`; `_RJEM_MALLOC_CONF` overrides it at run time).
/// With glibc's malloc the relay's RSS after 100,000 documents had been touched and evicted was
/// 3.6× its RSS after 100 (freed memory kept by the allocator); with this (and document reads bounded in `SqliteStore`), 1.47× (bench/MEMORY.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::parse()
        .validate()
        .unwrap_or_else(|e| Cli::command().error(clap::error::ErrorKind::ValueValidation, e).exit());
    install_tracing(command.log_format());
    match command {
        Command::Serve(config) => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            chibo_server::http::run(listener, config, shutdown_signal()).await
        }
        Command::Init(config) => {
            let (store, roster) = open_backend(&config.data, config.database.as_ref()).await?;
            tracing::info!("store ready");
            if config.demo {
                let demo = chibo_shared::schema::demo::demo_branch();
                let roster = Roster::new(roster, Limits::default());
                let week = std::time::Duration::from_secs(7 * 24 * 3600);
                let invites = roster.seed_demo(&demo, week, unix_now()).await?;
                let written = transfer::store_documents(&*store, demo.documents).await?;
                tracing::info!(documents = written, "stored the demo branch");
                println!(
                    "demo branch {} ({}); invite codes for a new device, valid 7 days:",
                    demo.branch, demo.name
                );
                for i in invites {
                    println!("  {}  {} ({})", i.code, i.name, i.role);
                }
            }
            Ok(())
        }
        Command::Export(config) => {
            if let Some(branch) = config.branch {
                // Which documents belong to a branch is not recorded yet.
                bail!(
                    "--branch {branch}: exporting one branch is not supported yet; omit --branch to export every document"
                );
            }
            let (store, _) = open_backend(&config.data, config.database.as_ref()).await?;
            let report = transfer::export_all(&*store, &config.out).await?;
            println!("exported {} document(s) to {}", report.documents, config.out.display());
            Ok(())
        }
        Command::Admin { data, database, action } => admin(&data, database.as_ref(), action).await,
        Command::Import(config) => {
            let (store, _) = open_backend(&config.data, config.database.as_ref()).await?;
            let report = transfer::import_dir(&*store, &config.input).await?;
            println!(
                "imported {} document(s); skipped {} other file(s)",
                report.documents,
                report.skipped.len()
            );
            Ok(())
        }
    }
}

/// The relay admin's roster commands, run against the data directory or the PostgreSQL database.
/// A revocation on PostgreSQL also closes the device's live connections on every running relay
/// (they hear of it on commit); on SQLite only its later connections are refused.
async fn admin(data: &DataDir, database: Option<&DatabaseUrl>, action: AdminAction) -> anyhow::Result<()> {
    let (_, db) = open_backend(data, database).await?;
    let roster = Roster::new(db, Limits::default());
    let now = unix_now();
    match action {
        AdminAction::CreateUnit { kind, name, parent } => {
            let id = roster.create_unit(kind, &name, parent, now).await?;
            println!("{id}");
        }
        AdminAction::Invite { unit, role, name, ttl, host, qr } => {
            let issued = roster.create_invite(InviteSpec::new(unit, role, &name, ttl), now).await?;
            let link = chibo_server::api::join_link(&host, &issued.code);
            if let Some(path) = qr {
                std::fs::write(&path, chibo_server::api::qr_svg(&link))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!("code {}\nlink {link}\nexpires_at {}", issued.code, issued.record.expires_at);
        }
        AdminAction::RevokeDevice { device } => {
            if !roster.db().revoke_device(device, now).await? {
                bail!("device {device} is unknown or already revoked");
            }
            roster.db().audit(now, "admin".into(), "device.revoke", device.to_string()).await?;
            println!("revoked {device}");
        }
    }
    Ok(())
}

fn install_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn open_sqlite(data: &DataDir) -> anyhow::Result<SqliteStore> {
    std::fs::create_dir_all(data.path()).with_context(|| format!("creating {}", data.path().display()))?;
    let path = data.sqlite_path();
    tokio::task::spawn_blocking(move || SqliteStore::open(path))
        .await?
        .with_context(|| format!("opening {}", data.sqlite_path().display()))
}

/// The document store and the roster: the SQLite file in `data`, or the PostgreSQL database.
async fn open_backend(
    data: &DataDir,
    database: Option<&DatabaseUrl>,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn RosterStore>)> {
    if let Some(url) = database {
        let pg = PostgresStore::connect(url.expose()).await.context("opening the PostgreSQL store")?;
        return Ok((Arc::new(pg.clone()), pg.shared_roster()));
    }
    let sqlite = open_sqlite(data).await?;
    tracing::debug!(path = %data.sqlite_path().display(), "opened the SQLite store");
    Ok((Arc::new(sqlite.clone()), sqlite.shared_roster()))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
