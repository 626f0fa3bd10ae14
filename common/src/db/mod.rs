//! MySQL/MariaDB access: pool, embedded versioned migrations, and typed queries, one module
//! per table family: [`accounts`], [`photos`], and the control plane's tables in [`control`].
//! Queries return named rows (this module's or the control API's types), never tuples.
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Pool};

mod accounts;
mod backlog;
mod control;
mod migrations;

/// How many schema migrations this build knows; a database brought up to date has them all.
pub const MIGRATION_COUNT: u32 = migrations::MIGRATIONS.len() as u32;
mod photos;
mod sessions;

pub use accounts::{username_key, Account, Deleted};
pub use backlog::{Backlog, Claim, Flow};
pub use control::{ManagerSettings, TokenKind};
pub use photos::{AcceptedRow, Photo, PhotoOwner, PhotoState};
pub use sessions::{SessionAccount, SessionToken};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("username is already taken")]
    UsernameTaken,
    #[error("database: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("database URL: {0}")]
    Url(#[from] mysql_async::UrlError),
    #[error("database migrations are locked by another process")]
    MigrationLock,
}

impl DbError {
    /// The server answered and said no (a constraint, a bad value): trying again will not
    /// help, unlike a connection that broke or a server that did not answer.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DbError::UsernameTaken | DbError::Mysql(mysql_async::Error::Server(_))
        )
    }

    /// A row referred to an account that no longer exists (it was deleted meanwhile).
    pub fn is_missing_owner(&self) -> bool {
        matches!(self, DbError::Mysql(mysql_async::Error::Server(e)) if e.code == 1452)
    }
}

#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

/// How many accounts and photo rows there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub accounts: u64,
    pub photos: u64,
}

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let opts = Opts::from_url(url)?;
        let db = Db {
            pool: Pool::new(opts),
        };
        db.migrate().await?;
        Ok(db)
    }

    pub async fn conn(&self) -> Result<Conn, DbError> {
        Ok(self.pool.get_conn().await?)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        // Workers start together; the lock makes exactly one of them run each migration.
        let locked: Option<i64> = conn
            .query_first("SELECT GET_LOCK('gallery_migrations', 60)")
            .await?;
        if locked != Some(1) {
            return Err(DbError::MigrationLock);
        }
        let result = async {
            conn.query_drop(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INT UNSIGNED NOT NULL PRIMARY KEY,
                    applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
            )
            .await?;
            let applied: Vec<u32> = conn.query("SELECT version FROM schema_migrations").await?;
            for (version, sql) in migrations::MIGRATIONS {
                if applied.contains(version) {
                    continue;
                }
                tracing::info!(version, "applying database migration");
                // MySQL commits DDL implicitly, so each statement runs on its own.
                for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    conn.query_drop(stmt).await?;
                }
                conn.exec_drop(
                    "INSERT INTO schema_migrations (version) VALUES (?)",
                    (version,),
                )
                .await?;
            }
            Ok::<_, DbError>(())
        }
        .await;
        conn.query_drop("DO RELEASE_LOCK('gallery_migrations')")
            .await?;
        result
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.ping().await?;
        Ok(())
    }

    pub async fn count_rows(&self) -> Result<RowCounts, DbError> {
        let mut conn = self.conn().await?;
        let accounts: Option<u64> = conn.query_first("SELECT COUNT(*) FROM accounts").await?;
        let photos: Option<u64> = conn.query_first("SELECT COUNT(*) FROM photos").await?;
        Ok(RowCounts {
            accounts: accounts.unwrap_or(0),
            photos: photos.unwrap_or(0),
        })
    }
}
