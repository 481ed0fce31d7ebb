//! Fresh PostgreSQL databases for tests, on the server named by `CHIBO_TEST_PG`.
//!
//! `cargo xtask test` starts a private cluster and sets `CHIBO_TEST_PG` (a URL whose database
//! the tests may create others next to) and `CHIBO_REQUIRE_PG=1`. Without `CHIBO_TEST_PG`, tests
//! that need PostgreSQL fail if `CHIBO_REQUIRE_PG=1` and are skipped (saying so) otherwise, so a
//! plain `cargo test` works on a machine without PostgreSQL.

use anyhow::{Context as _, bail};
use tokio_postgres::NoTls;

/// The URL of a PostgreSQL database whose server the tests may create databases on.
pub const ENV_URL: &str = "CHIBO_TEST_PG";
/// `1`: a missing [`ENV_URL`] fails the tests instead of skipping them.
pub const ENV_REQUIRE: &str = "CHIBO_REQUIRE_PG";

/// A database created for one test; [`TestDatabase::drop_database`] removes it.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database for `test`. `Ok(None)` means "skip": PostgreSQL is not
    /// configured and not required (a line on stderr says so).
    pub async fn create(test: &str) -> anyhow::Result<Option<Self>> {
        let Some(admin_url) = std::env::var(ENV_URL).ok().filter(|u| !u.trim().is_empty()) else {
            if std::env::var(ENV_REQUIRE).is_ok_and(|v| v == "1") {
                bail!(
                    "{test}: {ENV_REQUIRE}=1 but {ENV_URL} is not set; run `cargo xtask test` (it starts \
                     PostgreSQL) or set {ENV_URL}=postgres://user@127.0.0.1:5432/postgres"
                );
            }
            eprintln!("skipping {test}: set {ENV_URL}=postgres://… to run it against PostgreSQL");
            return Ok(None);
        };
        let slug: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(36)
            .collect();
        let name = format!("chibo_t_{slug}_{:08x}", rand::random::<u32>());
        let admin = connect(&admin_url).await?;
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.context("CREATE DATABASE")?;
        let url = with_dbname(&admin_url, &name);
        Ok(Some(Self { admin_url, name, url }))
    }

    /// The new database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one SQL batch on the new database (to inspect or damage it in a test).
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        connect(&self.url).await?.batch_execute(sql).await.with_context(|| format!("running {sql:?}"))
    }

    /// Removes the database (closing whatever is still connected to it).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        let admin = connect(&self.admin_url).await?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
            .await
            .context("DROP DATABASE")
    }
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.with_context(|| format!("connecting to {ENV_URL}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database replaced by `dbname` (URL or `key=value` form).
fn with_dbname(url: &str, dbname: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={dbname}");
    };
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = scheme_end + 3;
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{dbname}?{q}"),
        None => format!("{base}/{dbname}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn database_names_are_replaced_in_either_url_form() {
        assert_eq!(with_dbname("postgres://u@127.0.0.1:5/postgres", "x"), "postgres://u@127.0.0.1:5/x");
        assert_eq!(
            with_dbname("postgres://u@h:5/db?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgresql://h", "x"), "postgresql://h/x");
        assert_eq!(with_dbname("host=/tmp port=5", "x"), "host=/tmp port=5 dbname=x");
    }
}
