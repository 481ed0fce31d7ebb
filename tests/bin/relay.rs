//! `chibo-test-relay <data-dir> [<listen-addr> [<app-dir>]]`: the real relay
//! (`chibo_server::http::run`), on `127.0.0.1:0` unless told an address, serving the built app
//! from `<app-dir>` if given.
//!
//! With `CHIBO_TEST_RELAY_DATABASE_URL` set, documents live in that PostgreSQL database instead
//! of `<data-dir>` (several of these relays may share it).
//!
//! Prints `listening <addr>` on stdout once bound and serves until killed. The integration tests
//! run it as a child process where the relay must die abruptly (`SIGKILL`), which an in-process
//! relay cannot do; the browser test restarts it on the address it printed, so the pages' origin
//! stays the same.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use chibo_server::config::{DatabaseUrl, ServeConfig};

/// A PostgreSQL URL: serve documents from that database (a dedicated name, so a developer's own
/// `CHIBO_DATABASE_URL` never redirects the tests' relays).
const DATABASE_ENV: &str = "CHIBO_TEST_RELAY_DATABASE_URL";

const USAGE: &str = "usage: chibo-test-relay <data-dir> [<listen-addr> [<app-dir>]]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let data: PathBuf = args.next().context(USAGE)?.into();
    let listen: SocketAddr = match args.next() {
        Some(addr) => addr.to_str().and_then(|a| a.parse().ok()).context(USAGE)?,
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let app_dir = args.next().map(PathBuf::from);
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut config = ServeConfig::new(data);
    config.listen = addr;
    config.app_dir = app_dir;
    // Sync scenarios and the demo app's browser tests run without device credentials.
    config.open_access = true;
    if let Some(url) = std::env::var_os(DATABASE_ENV) {
        let url = url.into_string().map_err(|_| anyhow::anyhow!("{DATABASE_ENV} is not UTF-8"))?;
        config.database = Some(DatabaseUrl::new(url).map_err(|e| anyhow::anyhow!("{DATABASE_ENV}: {e}"))?);
    }
    // Connections made before `run` accepts wait in the listen backlog, so printing now is safe.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {addr}").context("writing the address")?;
    stdout.flush().context("flushing stdout")?;
    drop(stdout);
    chibo_server::http::run(listener, config, std::future::pending()).await
}
