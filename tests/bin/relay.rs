//! `chibo-test-relay <data-dir>`: the real relay (`chibo_server::http::run`) on `127.0.0.1:0`.
//!
//! Prints `listening <addr>` on stdout once bound and serves until killed. The integration tests
//! run it as a child process where the relay must die abruptly (`SIGKILL`), which an in-process
//! relay cannot do.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use chibo_server::config::ServeConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data: PathBuf = std::env::args_os().nth(1).context("usage: chibo-test-relay <data-dir>")?.into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut config = ServeConfig::new(data);
    config.listen = addr;
    // Connections made before `run` accepts wait in the listen backlog, so printing now is safe.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {addr}").context("writing the address")?;
    stdout.flush().context("flushing stdout")?;
    drop(stdout);
    chibo_server::http::run(listener, config, std::future::pending()).await
}
