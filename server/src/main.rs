//! `chibo-server`: parses the command line, installs logging, binds, and hands over to the library.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use chibo_server::config::{Cli, Command, DataDir, LogFormat};
use chibo_server::store::Store;
use chibo_server::store::sqlite::SqliteStore;
use chibo_server::store::transfer;
use clap::{CommandFactory as _, Parser as _};
use tracing_subscriber::EnvFilter;

const DEFAULT_LOG_FILTER: &str = "chibo_server=info,tower_http=info";

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
            let store = open_store(&config.data).await?;
            tracing::info!(path = %config.data.sqlite_path().display(), "store ready");
            if config.demo {
                let written = transfer::store_documents(&*store, demo_documents()).await?;
                tracing::info!(documents = written, "stored the demo branch");
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
            let store = open_store(&config.data).await?;
            let report = transfer::export_all(&*store, &config.out).await?;
            println!("exported {} document(s) to {}", report.documents, config.out.display());
            Ok(())
        }
        Command::Import(config) => {
            let store = open_store(&config.data).await?;
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

fn install_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn open_store(data: &DataDir) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(data.path()).with_context(|| format!("creating {}", data.path().display()))?;
    let path = data.sqlite_path();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(path))
        .await?
        .with_context(|| format!("opening {}", data.sqlite_path().display()))?;
    Ok(Arc::new(store))
}

/// The demo branch's documents, for `init --demo`.
fn demo_documents() -> Vec<(chibo_shared::ids::DocumentId, automerge::Automerge)> {
    chibo_shared::schema::demo::demo_branch().documents
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
