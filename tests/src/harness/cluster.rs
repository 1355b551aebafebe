//! A cluster under test: natter-server nodes on one PostgreSQL database and one nats-server,
//! both real (`scripts/cluster-services.sh` starts them and sets [`CLUSTER_POSTGRES_ENV`] and
//! [`NATS_ENV`]).

use anyhow::{bail, Result};

use super::server::{PgDatabase, TestServer};

/// The environment variable naming the PostgreSQL server cluster suites make databases on (an
/// administration URL, `postgres://user@127.0.0.1:port/postgres`). Unlike
/// [`super::server::POSTGRES_ENV`] it moves no other suite to PostgreSQL.
pub const CLUSTER_POSTGRES_ENV: &str = "NATTER_CLUSTER_POSTGRES";

/// The environment variable naming the suite's nats-server (`nats://127.0.0.1:port`).
pub const NATS_ENV: &str = "NATTER_TEST_NATS";

/// How long a silent node counts as alive in the cluster suites: short, so that a killed node's
/// users go offline within a test's patience.
pub const NODE_TIMEOUT_MS: u64 = 1500;

/// One database, one bus and one files directory (the shared volume) that nodes join.
pub struct TestCluster {
    db: PgDatabase,
    nats: String,
    files: tempfile::TempDir,
    /// Suites run in parallel on one NATS: each cluster gets subjects of its own.
    name: String,
}

impl TestCluster {
    /// A fresh database on the suite's PostgreSQL and its NATS. `None` when the services are
    /// not configured; in CI (`CI=true`) that is an error, so the suite can never pass by
    /// skipping there.
    pub fn from_env() -> Result<Option<Self>> {
        let pg = std::env::var(CLUSTER_POSTGRES_ENV).unwrap_or_default();
        let nats = std::env::var(NATS_ENV).unwrap_or_default();
        if pg.is_empty() || nats.is_empty() {
            if std::env::var("CI").as_deref() == Ok("true") {
                bail!(
                    "{CLUSTER_POSTGRES_ENV} and {NATS_ENV} must be set in CI \
                     (scripts/cluster-services.sh)"
                );
            }
            eprintln!(
                "skipped: set {CLUSTER_POSTGRES_ENV} and {NATS_ENV} (eval \"$(bash scripts/cluster-services.sh start DIR)\")"
            );
            return Ok(None);
        }
        Ok(Some(Self {
            db: PgDatabase::create(&pg)?,
            nats,
            files: tempfile::Builder::new()
                .prefix("natter-cluster-files-")
                .tempdir()?,
            name: format!("t{}", uuid::Uuid::new_v4().simple()),
        }))
    }

    /// Starts one more node.
    pub async fn node(&self) -> Result<TestServer> {
        let timeout = NODE_TIMEOUT_MS.to_string();
        let files = self.files.path().display().to_string();
        TestServer::start_with(&[
            "--files-dir",
            &files,
            "--database-url",
            &self.db.url,
            "--nats-url",
            &self.nats,
            "--node-timeout-ms",
            &timeout,
            "--cluster-name",
            &self.name,
        ])
        .await
    }
}
