//! Command line and environment (`CHIBO_*`), parsed once and validated into typed values.
//!
//! [`Cli`] is what clap sees; [`Cli::validate`] turns it into a [`Command`] whose configs hold
//! only checked values, so nothing downstream re-checks a flag.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chibo_shared::ids::BranchId;
use clap::{Args, Parser, Subcommand, ValueEnum};

use std::time::Duration;

use chibo_shared::access::{Role, UnknownRole};
use chibo_shared::ids::{DeviceId, UnitId};

use crate::roster::{Limits, UnitKind};

/// The SQLite file inside the data directory.
pub const SQLITE_FILE: &str = "chibo.sqlite3";

/// Largest accepted `--max-message-bytes`: a message is held in memory whole.
pub const MAX_MESSAGE_BYTES_LIMIT: u64 = 256 * 1024 * 1024;

/// chibo relay: merges automerge documents over the automerge-repo sync protocol.
#[derive(Debug, Parser)]
#[command(name = "chibo-server", version, about)]
pub struct Cli {
    /// Directory holding the relay's data (the SQLite database lives inside it).
    #[arg(long, global = true, env = "CHIBO_DATA", default_value = "./chibo-data")]
    pub data: PathBuf,

    /// Keep documents and the roster in this PostgreSQL database instead of the SQLite file in
    /// --data, e.g. postgres://chibo:secret@127.0.0.1:5432/chibo. Several relays may share one
    /// database: a change received by one reaches the devices of all, and a device enrolled
    /// through one signs in through any.
    #[arg(long, global = true, env = "CHIBO_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the relay (and serve the web app if `--app-dir` is given).
    Serve(ServeArgs),
    /// Create the data directory and database.
    Init {
        /// Also store the demo branch's documents.
        #[arg(long)]
        demo: bool,
    },
    /// Write stored documents to a directory as `<document-id>.automerge` files.
    Export {
        /// Only this branch's documents (not available yet: omit to export every document).
        #[arg(long, env = "CHIBO_EXPORT_BRANCH")]
        branch: Option<String>,
        /// Directory to write the files to (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Merge `<document-id>.automerge` files from a directory into the store.
    Import {
        /// Directory to read the files from.
        #[arg(long = "in", value_name = "DIR")]
        input: PathBuf,
    },
    /// Create an upper-level committee or a branch; prints its id.
    CreateUnit {
        /// `committee` (upper level) or `branch` (chi bộ).
        #[arg(long, value_enum)]
        kind: UnitKindArg,
        #[arg(long)]
        name: String,
        /// The committee it belongs to.
        #[arg(long)]
        parent: Option<String>,
    },
    /// Invite someone into a unit with a role (the first secretary of a branch, an upper-level
    /// reader); prints the code and the join link.
    Invite {
        #[arg(long)]
        unit: String,
        /// member, committee, deputy-secretary, secretary (branch); upper-reader, relay-admin (committee).
        #[arg(long)]
        role: String,
        /// The invitee's name.
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 168)]
        expires_in_hours: u64,
        /// Host (and port) of the relay as members reach it, for the join link.
        #[arg(long, default_value = "localhost:8080")]
        host: String,
        /// Also write the join link as an SVG QR code to this file.
        #[arg(long)]
        qr: Option<PathBuf>,
    },
    /// Revoke a device: it can no longer sign in and its future changes are refused (its live
    /// connections close at once when revoked through the API, or through this command on
    /// PostgreSQL; on SQLite a running relay refuses only its next connection).
    RevokeDevice {
        #[arg(long)]
        device: String,
    },
}

/// `--kind` of `create-unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnitKindArg {
    Committee,
    Branch,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CHIBO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Directory of the built web app (index.html, sw.js, hashed assets). Without it only the
    /// API routes are served.
    #[arg(long, env = "CHIBO_APP_DIR")]
    pub app_dir: Option<PathBuf>,

    /// Largest accepted WebSocket message, in bytes; suffixes KiB and MiB are accepted.
    #[arg(long, env = "CHIBO_MAX_MESSAGE_BYTES", default_value = "8MiB")]
    pub max_message_bytes: String,

    /// Log line format.
    #[arg(long, env = "CHIBO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// DEVELOPMENT ONLY: let anyone who reaches /sync without a session token read and write
    /// every document (the demo app has no join screen yet).
    #[arg(long, env = "CHIBO_OPEN_ACCESS")]
    pub open_access: bool,
}

/// A PostgreSQL connection URL. It may hold a password, so it never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Checks the URL's syntax (nothing is connected to).
    pub fn new(url: impl Into<String>) -> Result<Self, String> {
        let url = url.into();
        crate::store::postgres::check_url(&url)?;
        Ok(Self(url))
    }

    /// The URL itself, to connect with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where the relay keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(PathBuf);

impl DataDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The SQLite database file.
    pub fn sqlite_path(&self) -> PathBuf {
        self.0.join(SQLITE_FILE)
    }
}

/// A validated `serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data: DataDir,
    pub listen: SocketAddr,
    /// A directory containing `index.html`, when the app is served.
    pub app_dir: Option<PathBuf>,
    /// Largest WebSocket message (and frame) accepted, in bytes.
    pub max_message_bytes: usize,
    pub log_format: LogFormat,
    /// `/sync` without a token gets the all-powerful development principal.
    pub open_access: bool,
    /// Documents and the roster in PostgreSQL instead of `data`'s SQLite file.
    pub database: Option<DatabaseUrl>,
    /// Rate limits and credential lifetimes.
    pub limits: Limits,
}

impl ServeConfig {
    /// The defaults of `serve` with data in `data`; used by tests that build a config directly.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            data: DataDir::new(data),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            app_dir: None,
            max_message_bytes: 8 * 1024 * 1024,
            log_format: LogFormat::Text,
            open_access: false,
            database: None,
            limits: Limits::default(),
        }
    }
}

/// A validated `init`.
#[derive(Debug, Clone)]
pub struct InitConfig {
    pub data: DataDir,
    /// PostgreSQL instead of `data`'s SQLite file.
    pub database: Option<DatabaseUrl>,
    pub demo: bool,
}

/// A validated `export`.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub data: DataDir,
    pub database: Option<DatabaseUrl>,
    pub branch: Option<BranchId>,
    pub out: PathBuf,
}

/// A validated `import`.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    pub data: DataDir,
    pub database: Option<DatabaseUrl>,
    pub input: PathBuf,
}

/// A validated roster command of the relay admin.
#[derive(Debug, Clone)]
pub enum AdminAction {
    CreateUnit { kind: UnitKind, name: String, parent: Option<UnitId> },
    Invite { unit: UnitId, role: Role, name: String, ttl: Duration, host: String, qr: Option<PathBuf> },
    RevokeDevice { device: DeviceId },
}

/// What to do, with everything checked.
#[derive(Debug, Clone)]
pub enum Command {
    Serve(ServeConfig),
    Init(InitConfig),
    Export(ExportConfig),
    Import(ImportConfig),
    Admin { data: DataDir, database: Option<DatabaseUrl>, action: AdminAction },
}

impl Command {
    /// The log format to install; only `serve` has a choice.
    pub fn log_format(&self) -> LogFormat {
        match self {
            Command::Serve(c) => c.log_format,
            _ => LogFormat::Text,
        }
    }
}

/// Why the command line cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--listen {value:?} is not an address like 127.0.0.1:8080 or [::]:8080")]
    Listen { value: String },
    #[error("--app-dir {path}: {reason}")]
    AppDir { path: PathBuf, reason: &'static str },
    #[error("--max-message-bytes {value:?}: {reason}")]
    MaxMessageBytes { value: String, reason: String },
    #[error("--branch {value:?}: {reason}")]
    Branch { value: String, reason: String },
    #[error("{flag} {value:?}: {reason}")]
    Arg { flag: &'static str, value: String, reason: String },
    #[error("--data {path} exists and is not a directory")]
    DataNotDir { path: PathBuf },
    #[error("--database-url: {reason}")]
    DatabaseUrl { reason: String },
}

impl Cli {
    /// Checks every value once.
    pub fn validate(self) -> Result<Command, ConfigError> {
        let data = DataDir::new(self.data);
        if data.path().exists() && !data.path().is_dir() {
            return Err(ConfigError::DataNotDir { path: data.0 });
        }
        let database = match self.database_url.filter(|u| !u.trim().is_empty()) {
            None => None,
            Some(url) => Some(DatabaseUrl::new(url).map_err(|reason| ConfigError::DatabaseUrl { reason })?),
        };
        Ok(match self.command {
            CliCommand::Serve(args) => Command::Serve(args.validate(data, database)?),
            CliCommand::Init { demo } => Command::Init(InitConfig { data, database, demo }),
            CliCommand::Export { branch, out } => {
                let branch = branch
                    .map(|b| {
                        b.parse::<BranchId>()
                            .map_err(|e| ConfigError::Branch { value: b.clone(), reason: e.to_string() })
                    })
                    .transpose()?;
                Command::Export(ExportConfig { data, database, branch, out })
            }
            CliCommand::Import { input } => Command::Import(ImportConfig { data, database, input }),
            CliCommand::CreateUnit { kind, name, parent } => {
                let kind = match kind {
                    UnitKindArg::Committee => UnitKind::Committee,
                    UnitKindArg::Branch => UnitKind::Branch,
                };
                let parent = parent.map(|p| id_arg("--parent", &p)).transpose()?;
                Command::Admin { data, database, action: AdminAction::CreateUnit { kind, name, parent } }
            }
            CliCommand::Invite { unit, role, name, expires_in_hours, host, qr } => {
                let unit = id_arg("--unit", &unit)?;
                let role = role.parse().map_err(|e: UnknownRole| ConfigError::Arg {
                    flag: "--role",
                    value: role.clone(),
                    reason: e.to_string(),
                })?;
                let ttl = Duration::from_secs(expires_in_hours.saturating_mul(3600));
                Command::Admin {
                    data,
                    database,
                    action: AdminAction::Invite { unit, role, name, ttl, host, qr },
                }
            }
            CliCommand::RevokeDevice { device } => Command::Admin {
                data,
                database,
                action: AdminAction::RevokeDevice { device: id_arg("--device", &device)? },
            },
        })
    }
}

fn id_arg<T: FromStr<Err = chibo_shared::ids::IdError>>(
    flag: &'static str,
    value: &str,
) -> Result<T, ConfigError> {
    value.parse().map_err(|e: chibo_shared::ids::IdError| ConfigError::Arg {
        flag,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

impl ServeArgs {
    fn validate(self, data: DataDir, database: Option<DatabaseUrl>) -> Result<ServeConfig, ConfigError> {
        let listen = self.listen.parse().map_err(|_| ConfigError::Listen { value: self.listen.clone() })?;
        let app_dir = match self.app_dir {
            None => None,
            Some(path) if !path.is_dir() => {
                return Err(ConfigError::AppDir { path, reason: "is not a directory" });
            }
            Some(path) if !path.join("index.html").is_file() => {
                return Err(ConfigError::AppDir { path, reason: "has no index.html (build the app first)" });
            }
            Some(path) => Some(path),
        };
        let bytes: ByteSize = self.max_message_bytes.parse().map_err(|reason| {
            ConfigError::MaxMessageBytes { value: self.max_message_bytes.clone(), reason }
        })?;
        if bytes.0 < 1024 || bytes.0 > MAX_MESSAGE_BYTES_LIMIT {
            return Err(ConfigError::MaxMessageBytes {
                value: self.max_message_bytes,
                reason: format!("must be between 1KiB and {}MiB", MAX_MESSAGE_BYTES_LIMIT >> 20),
            });
        }
        let max_message_bytes = usize::try_from(bytes.0).map_err(|_| ConfigError::MaxMessageBytes {
            value: self.max_message_bytes.clone(),
            reason: "too large for this platform".into(),
        })?;
        Ok(ServeConfig {
            data,
            listen,
            app_dir,
            max_message_bytes,
            log_format: self.log_format,
            open_access: self.open_access,
            database,
            limits: Limits::default(),
        })
    }
}

/// A byte count written as `8388608`, `512KiB` or `8MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteSize(u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => s.split_at(i),
            None => (s, ""),
        };
        let n: u64 = digits.parse().map_err(|_| "expected a number of bytes, e.g. 8MiB".to_owned())?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" | "k" => 1024,
            "MiB" | "M" => 1024 * 1024,
            other => return Err(format!("unknown unit {other:?} (use KiB or MiB)")),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(|| "too large".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        let cli = Cli::try_parse_from(std::iter::once("chibo-server").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn serve_defaults() {
        let Ok(Command::Serve(c)) = parse(&["serve"]) else { panic!("serve") };
        assert_eq!(c.data.sqlite_path(), Path::new("./chibo-data").join(SQLITE_FILE));
        assert_eq!(c.listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(c.max_message_bytes, 8 * 1024 * 1024);
        assert_eq!((c.app_dir, c.log_format), (None, LogFormat::Text));
    }

    #[test]
    fn serve_flags_are_validated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = dir.path().to_str().expect("utf-8 path");
        let err = parse(&["serve", "--app-dir", app]).expect_err("no index.html");
        assert!(err.contains("index.html"), "{err}");
        std::fs::write(dir.path().join("index.html"), "<!doctype html>").expect("index");
        let Ok(Command::Serve(c)) = parse(&[
            "--data",
            "/tmp/x",
            "serve",
            "--app-dir",
            app,
            "--max-message-bytes",
            "512KiB",
            "--log-format",
            "json",
        ]) else {
            panic!("serve")
        };
        assert_eq!(c.app_dir.as_deref(), Some(dir.path()));
        assert_eq!((c.max_message_bytes, c.log_format), (512 * 1024, LogFormat::Json));
        assert_eq!(c.data.path(), Path::new("/tmp/x"));

        assert!(parse(&["serve", "--listen", "localhost"]).expect_err("listen").contains("--listen"));
        assert!(parse(&["serve", "--max-message-bytes", "8GB"]).expect_err("unit").contains("unknown unit"));
        assert!(parse(&["serve", "--max-message-bytes", "1024MiB"]).expect_err("cap").contains("between"));
    }

    #[test]
    fn database_url_selects_postgres_for_every_command() {
        let url = "postgres://chibo:secret@127.0.0.1:5432/chibo";
        let Ok(Command::Serve(c)) = parse(&["serve", "--database-url", url]) else { panic!("serve") };
        assert_eq!(c.database.as_ref().map(DatabaseUrl::expose), Some(url));
        assert!(!c.open_access, "the roster is on PostgreSQL too: no --open-access needed");
        assert!(!format!("{c:?}").contains("secret"), "the password never shows in Debug");
        let Ok(Command::Serve(c)) = parse(&["serve", "--database-url", url, "--open-access"]) else {
            panic!("serve")
        };
        assert!(c.open_access, "still an option");
        let err = parse(&["serve", "--database-url", "postgres://[oops"]).expect_err("bad url");
        assert!(err.contains("--database-url"), "{err}");
        let Ok(Command::Init(c)) = parse(&["--database-url", url, "init", "--demo"]) else { panic!("init") };
        assert_eq!(c.database.as_ref().map(DatabaseUrl::expose), Some(url));
        let Ok(Command::Admin { database, .. }) =
            parse(&["create-unit", "--kind", "branch", "--name", "Chi bộ 3", "--database-url", url])
        else {
            panic!("admin")
        };
        assert_eq!(database.as_ref().map(DatabaseUrl::expose), Some(url));
        let Ok(Command::Serve(c)) = parse(&["serve"]) else { panic!("serve") };
        assert!(c.database.is_none(), "SQLite by default");
        let Ok(Command::Init(c)) = parse(&["init"]) else { panic!("init") };
        assert!(c.database.is_none(), "SQLite by default");
    }

    #[test]
    fn other_commands() {
        let Ok(Command::Init(c)) = parse(&["init", "--demo"]) else { panic!("init") };
        assert!(c.demo);
        let Ok(Command::Export(c)) = parse(&["export", "--out", "x"]) else { panic!("export") };
        assert_eq!((c.branch, c.out), (None, PathBuf::from("x")));
        assert!(
            parse(&["export", "--out", "x", "--branch", "nope"]).expect_err("branch").contains("--branch")
        );
        let Ok(Command::Import(c)) = parse(&["import", "--in", "dir"]) else { panic!("import") };
        assert_eq!(c.input, PathBuf::from("dir"));
        assert!(parse(&["import"]).is_err(), "--in is required");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!("8MiB".parse(), Ok(ByteSize(8 << 20)));
        assert_eq!("100".parse(), Ok(ByteSize(100)));
        assert_eq!("4 KiB".parse(), Ok(ByteSize(4096)));
        assert!("MiB".parse::<ByteSize>().is_err());
        assert!("99999999999999999999MiB".parse::<ByteSize>().is_err());
    }
}
