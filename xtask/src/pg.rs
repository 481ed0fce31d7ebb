//! A private PostgreSQL cluster for a test run: Debian's `initdb` into a temporary directory (on
//! tmpfs when there is one),
//! `pg_ctl start` on a free loopback port (its Unix socket in that directory too), one database,
//! and the URL handed to the tests as `CHIBO_TEST_PG`. Stopped and removed when dropped, whether
//! the tests passed or not.
//!
//! PostgreSQL refuses to run as root: as root, every server command runs as the `postgres` user
//! (created by Debian's `postgresql` package) through `runuser`, and the directory is given to it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::{output_of, run_cmd};

/// Where Debian installs the server binaries: `/usr/lib/postgresql/<major>/bin`.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// The user the server runs as when we are root.
const SERVER_USER: &str = "postgres";
/// The cluster's superuser (trust authentication on loopback only) and the database created.
const SUPERUSER: &str = "chibo";
const DATABASE: &str = "chibo_test";
/// Where the cluster lives if the machine has it (Linux's shared-memory tmpfs).
const TMPFS: &str = "/dev/shm";

/// A running cluster; dropping it stops the server and removes its files.
pub(crate) struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// `Some(user)` when server commands run as another user (we are root).
    run_as: Option<&'static str>,
    running: bool,
}

impl Cluster {
    /// Initialises and starts a cluster, and creates the test database.
    pub(crate) fn start() -> Result<Self> {
        let bin = server_bin_dir()?;
        let run_as = if is_root() { Some(SERVER_USER) } else { None };
        // In memory where possible: a scratch cluster need not compete for the disk.
        let parent = if Path::new(TMPFS).is_dir() { PathBuf::from(TMPFS) } else { std::env::temp_dir() };
        let dir = tempfile::Builder::new()
            .prefix("chibo-pg-")
            .tempdir_in(&parent)
            .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
        if let Some(user) = run_as {
            give_to(dir.path(), user)?;
        }
        let port = free_port()?;
        let mut cluster = Self { bin, dir, port, run_as, running: false };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                // Loopback and a private socket directory only; no passwords to leak.
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-locale".as_ref(),
                // A scratch cluster: initdb's own fsyncs only cost time.
                "--no-sync".as_ref(),
            ],
        )?;
        // fsync=off: the tests kill relays, never PostgreSQL, so what a commit made visible stays
        // visible; and on a busy disk one WAL fsync can take many seconds, which every notifying
        // commit in the cluster then waits for (NOTIFY serialises commits).
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("server.log");
        cluster.running = true; // from here on, drop tries to stop it
        cluster
            .run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-o".as_ref(),
                    options.as_ref(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "start".as_ref(),
                ],
            )
            .with_context(|| format!("starting PostgreSQL (log: {})", log.display()))?;
        let port = port.to_string();
        cluster.run(
            "createdb",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                DATABASE.as_ref(),
            ],
        )?;
        println!("xtask: PostgreSQL running at {}", cluster.url());
        Ok(cluster)
    }

    /// The test database's URL.
    pub(crate) fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// What the test phases get: the URL, and the demand that PostgreSQL tests run.
    pub(crate) fn env(&self) -> [(&'static str, String); 2] {
        [("CHIBO_TEST_PG", self.url()), ("CHIBO_REQUIRE_PG", "1".to_owned())]
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server's programs, as the server user when we are root.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
        let path = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        // The server user may not be allowed into the workspace.
        cmd.args(args).current_dir(self.dir.path());
        run_cmd(&mut cmd)
    }

    fn stop(&mut self) -> Result<()> {
        if !std::mem::replace(&mut self.running, false) {
            return Ok(());
        }
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        match self.stop() {
            Ok(()) => println!("xtask: PostgreSQL stopped"),
            Err(e) => eprintln!("xtask: stopping PostgreSQL failed: {e:#}"),
        }
        // The temporary directory (data, socket, log) goes when `dir` drops.
    }
}

/// The newest Debian PostgreSQL installed.
fn server_bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL is not installed ({DEBIAN_ROOT}/<version>/bin/initdb not found); on Debian: \
             apt-get install postgresql (`.ci/run` does)"
        ),
    }
}

fn is_root() -> bool {
    output_of(Command::new("id").arg("-u")).is_some_and(|uid| uid == "0")
}

/// Makes `user` own `dir` (PostgreSQL wants its data and socket directory to be its own).
fn give_to(dir: &Path, user: &str) -> Result<()> {
    let id = |flag: &str| -> Result<u32> {
        output_of(Command::new("id").args([flag, user]))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no user {user:?} (Debian's postgresql package creates it)"))
    };
    std::os::unix::fs::chown(dir, Some(id("-u")?), Some(id("-g")?))
        .with_context(|| format!("giving {} to {user}", dir.display()))
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
