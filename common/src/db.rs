//! MySQL/MariaDB access: pool, embedded versioned migrations, typed queries.
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Pool};

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

/// Migrations in order; a version is never edited once released, only added after.
const MIGRATIONS: &[(u32, &str)] = &[(
    1,
    r"
    CREATE TABLE accounts (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        username VARCHAR(64) NOT NULL,
        password_hash VARCHAR(255) NOT NULL,
        created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        UNIQUE KEY accounts_username (username)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

    CREATE TABLE photos (
        id CHAR(32) NOT NULL PRIMARY KEY,
        owner_id BIGINT UNSIGNED NOT NULL,
        file_name VARCHAR(255) NOT NULL,
        content_type VARCHAR(64) NOT NULL,
        ext VARCHAR(8) NOT NULL,
        width INT UNSIGNED NOT NULL,
        height INT UNSIGNED NOT NULL,
        bytes BIGINT UNSIGNED NOT NULL,
        boxes INT UNSIGNED NOT NULL,
        created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        KEY photos_owner_created (owner_id, created_at),
        CONSTRAINT photos_owner FOREIGN KEY (owner_id) REFERENCES accounts (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    ",
), (
    2,
    r"
    CREATE TABLE manager_settings (
        id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
        policy TEXT NOT NULL,
        autoscaler_enabled BOOLEAN NOT NULL,
        desired_workers INT UNSIGNED NOT NULL,
        updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
    ) ENGINE=InnoDB;

    CREATE TABLE worker_count_history (
        at TIMESTAMP(3) NOT NULL,
        desired INT UNSIGNED NOT NULL,
        healthy INT UNSIGNED NOT NULL,
        KEY worker_count_history_at (at)
    ) ENGINE=InnoDB;

    CREATE TABLE scaling_events (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        from_count INT UNSIGNED NOT NULL,
        to_count INT UNSIGNED NOT NULL,
        reason VARCHAR(255) NOT NULL
    ) ENGINE=InnoDB;

    CREATE TABLE operator_tokens (
        token_hash CHAR(64) NOT NULL PRIMARY KEY,
        email VARCHAR(255) NOT NULL,
        kind VARCHAR(16) NOT NULL,
        name VARCHAR(128) NOT NULL DEFAULT '',
        created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        expires_at TIMESTAMP(3) NULL
    ) ENGINE=InnoDB;
    ",
), (
    3,
    // Which detector made a photo's boxes: runtimes and precisions differ by a few pixels.
    "ALTER TABLE photos ADD COLUMN detector VARCHAR(96) NOT NULL DEFAULT ''",
)];

#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: u64,
    pub username: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub id: String,
    pub owner_id: u64,
    pub file_name: String,
    pub content_type: String,
    pub ext: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub boxes: u32,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The detector (model and runtime) that found the boxes; empty for photos from before
    /// it was recorded.
    pub detector: String,
}

impl Photo {
    pub fn original_key(&self) -> String {
        original_key(&self.id, &self.ext)
    }
    pub fn annotated_key(&self) -> String {
        annotated_key(&self.id)
    }
    pub fn thumbnail_key(&self) -> String {
        thumbnail_key(&self.id)
    }
    /// The photo's three objects: original, annotated copy, thumbnail.
    pub fn keys(&self) -> [String; 3] {
        [self.original_key(), self.annotated_key(), self.thumbnail_key()]
    }
}

pub fn original_key(id: &str, ext: &str) -> String {
    format!("photos/{id}.{ext}")
}
pub fn annotated_key(id: &str) -> String {
    format!("annotated/{id}.jpg")
}
pub fn thumbnail_key(id: &str) -> String {
    format!("thumbnails/{id}.jpg")
}

const PHOTO_COLUMNS: &str = "id, owner_id, file_name, content_type, ext, width, height, bytes, boxes, \
     CAST(UNIX_TIMESTAMP(created_at) * 1000 AS SIGNED), detector";

type PhotoRow = (String, u64, String, String, String, u32, u32, u64, u32, i64, String);

fn photo_from_row(r: PhotoRow) -> Photo {
    Photo {
        id: r.0,
        owner_id: r.1,
        file_name: r.2,
        content_type: r.3,
        ext: r.4,
        width: r.5,
        height: r.6,
        bytes: r.7,
        boxes: r.8,
        created_ms: r.9,
        detector: r.10,
    }
}

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let opts = Opts::from_url(url)?;
        let db = Db { pool: Pool::new(opts) };
        db.migrate().await?;
        Ok(db)
    }

    pub async fn conn(&self) -> Result<Conn, DbError> {
        Ok(self.pool.get_conn().await?)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        // Workers start together; the lock makes exactly one of them run each migration.
        let locked: Option<i64> = conn.query_first("SELECT GET_LOCK('gallery_migrations', 60)").await?;
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
            for (version, sql) in MIGRATIONS {
                if applied.contains(version) {
                    continue;
                }
                tracing::info!(version, "applying database migration");
                // MySQL commits DDL implicitly, so each statement runs on its own.
                for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    conn.query_drop(stmt).await?;
                }
                conn.exec_drop("INSERT INTO schema_migrations (version) VALUES (?)", (version,)).await?;
            }
            Ok::<_, DbError>(())
        }
        .await;
        conn.query_drop("DO RELEASE_LOCK('gallery_migrations')").await?;
        result
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.ping().await?;
        Ok(())
    }

    pub async fn create_account(&self, username: &str, password_hash: &str) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        let res = conn
            .exec_drop(
                "INSERT INTO accounts (username, password_hash) VALUES (?, ?)",
                (username, password_hash),
            )
            .await;
        match res {
            Ok(()) => Ok(conn.last_insert_id().expect("auto-increment id")),
            Err(mysql_async::Error::Server(e)) if e.code == 1062 => Err(DbError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn account_by_name(&self, username: &str) -> Result<Option<Account>, DbError> {
        let mut conn = self.conn().await?;
        let row: Option<(u64, String, String)> = conn
            .exec_first("SELECT id, username, password_hash FROM accounts WHERE username = ?", (username,))
            .await?;
        Ok(row.map(|(id, username, password_hash)| Account { id, username, password_hash }))
    }

    pub async fn account_by_id(&self, id: u64) -> Result<Option<Account>, DbError> {
        let mut conn = self.conn().await?;
        let row: Option<(u64, String, String)> = conn
            .exec_first("SELECT id, username, password_hash FROM accounts WHERE id = ?", (id,))
            .await?;
        Ok(row.map(|(id, username, password_hash)| Account { id, username, password_hash }))
    }

    pub async fn insert_photo(&self, p: &Photo) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO photos (id, owner_id, file_name, content_type, ext, width, height, bytes, boxes, detector)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (&p.id, p.owner_id, &p.file_name, &p.content_type, &p.ext, p.width, p.height, p.bytes, p.boxes, &p.detector),
        )
        .await?;
        Ok(())
    }

    /// The owner's photos, newest first.
    pub async fn photos_of(&self, owner_id: u64, limit: u32, offset: u64) -> Result<Vec<Photo>, DbError> {
        let mut conn = self.conn().await?;
        let rows: Vec<PhotoRow> = conn
            .exec(
                format!(
                    "SELECT {PHOTO_COLUMNS} FROM photos WHERE owner_id = ?
                     ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
                ),
                (owner_id, limit, offset),
            )
            .await?;
        Ok(rows.into_iter().map(photo_from_row).collect())
    }

    pub async fn count_photos_of(&self, owner_id: u64) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        let n: Option<u64> = conn.exec_first("SELECT COUNT(*) FROM photos WHERE owner_id = ?", (owner_id,)).await?;
        Ok(n.unwrap_or(0))
    }

    /// A photo only if it belongs to `owner_id`: other users' photos do not exist for them.
    pub async fn photo_of(&self, owner_id: u64, id: &str) -> Result<Option<Photo>, DbError> {
        let mut conn = self.conn().await?;
        let row: Option<PhotoRow> = conn
            .exec_first(format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE id = ? AND owner_id = ?"), (id, owner_id))
            .await?;
        Ok(row.map(photo_from_row))
    }

    /// Deletes an account and its photos' rows in one transaction, the account locked first
    /// (an upload committing meanwhile waits, then fails for want of an owner and removes its
    /// files); returns the photos, or None when there is no such account.
    pub async fn delete_account(&self, id: u64) -> Result<Option<Vec<Photo>>, DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
        let found: Option<u64> = tx.exec_first("SELECT id FROM accounts WHERE id = ? FOR UPDATE", (id,)).await?;
        if found.is_none() {
            return Ok(None);
        }
        let rows: Vec<PhotoRow> = tx.exec(format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE owner_id = ? FOR UPDATE"), (id,)).await?;
        tx.exec_drop("DELETE FROM photos WHERE owner_id = ?", (id,)).await?;
        tx.exec_drop("DELETE FROM accounts WHERE id = ?", (id,)).await?;
        tx.commit().await?;
        Ok(Some(rows.into_iter().map(photo_from_row).collect()))
    }

    /// Deletes one of the owner's photos' row; returns it, or None when the owner has no such
    /// photo (someone else's is none of theirs).
    pub async fn delete_photo_of(&self, owner_id: u64, id: &str) -> Result<Option<Photo>, DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
        let row: Option<PhotoRow> = tx
            .exec_first(format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE id = ? AND owner_id = ? FOR UPDATE"), (id, owner_id))
            .await?;
        if row.is_some() {
            tx.exec_drop("DELETE FROM photos WHERE id = ? AND owner_id = ?", (id, owner_id)).await?;
        }
        tx.commit().await?;
        Ok(row.map(photo_from_row))
    }

    pub async fn photo(&self, id: &str) -> Result<Option<Photo>, DbError> {
        let mut conn = self.conn().await?;
        let row: Option<PhotoRow> =
            conn.exec_first(format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE id = ?"), (id,)).await?;
        Ok(row.map(photo_from_row))
    }

    /// The manager's persisted settings: (policy JSON, autoscaler enabled, desired workers).
    pub async fn manager_settings(&self) -> Result<Option<(String, bool, u32)>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .query_first("SELECT policy, autoscaler_enabled, desired_workers FROM manager_settings WHERE id = 1")
            .await?)
    }

    pub async fn save_manager_settings(&self, policy: &str, enabled: bool, desired: u32) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO manager_settings (id, policy, autoscaler_enabled, desired_workers) VALUES (1, ?, ?, ?)
             ON DUPLICATE KEY UPDATE policy = VALUES(policy), autoscaler_enabled = VALUES(autoscaler_enabled),
             desired_workers = VALUES(desired_workers)",
            (policy, enabled, desired),
        )
        .await?;
        Ok(())
    }

    pub async fn record_worker_count(&self, desired: u32, healthy: u32) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop("INSERT INTO worker_count_history (at, desired, healthy) VALUES (NOW(3), ?, ?)", (desired, healthy))
            .await?;
        // History older than a day is never shown.
        conn.query_drop("DELETE FROM worker_count_history WHERE at < NOW(3) - INTERVAL 1 DAY").await?;
        Ok(())
    }

    /// (unix seconds, desired, healthy), oldest first.
    pub async fn worker_counts_since(&self, seconds: u64) -> Result<Vec<(i64, u32, u32)>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec(
                "SELECT CAST(UNIX_TIMESTAMP(at) AS SIGNED), desired, healthy FROM worker_count_history
                 WHERE at >= NOW(3) - INTERVAL ? SECOND ORDER BY at",
                (seconds,),
            )
            .await?)
    }

    pub async fn record_scaling_event(&self, from: u32, to: u32, reason: &str) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO scaling_events (from_count, to_count, reason) VALUES (?, ?, ?)",
            (from, to, reason.chars().take(255).collect::<String>()),
        )
        .await?;
        Ok(())
    }

    /// (unix seconds, from, to, reason), newest first.
    pub async fn scaling_events(&self, limit: u32) -> Result<Vec<(i64, u32, u32, String)>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec(
                "SELECT CAST(UNIX_TIMESTAMP(at) AS SIGNED), from_count, to_count, reason FROM scaling_events
                 ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            .await?)
    }

    pub async fn insert_operator_token(
        &self,
        token_hash: &str,
        email: &str,
        kind: &str,
        name: &str,
        ttl_secs: Option<u64>,
    ) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO operator_tokens (token_hash, email, kind, name, expires_at)
             VALUES (?, ?, ?, ?, IF(? IS NULL, NULL, NOW(3) + INTERVAL ? SECOND))",
            (token_hash, email, kind, name, ttl_secs, ttl_secs),
        )
        .await?;
        Ok(())
    }

    /// API keys, oldest first: (id = the first 16 hex digits of the key's hash, name, operator,
    /// created unix seconds).
    pub async fn api_keys(&self) -> Result<Vec<(String, String, String, i64)>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .query(
                "SELECT LEFT(token_hash, 16), name, email, CAST(UNIX_TIMESTAMP(created_at) AS SIGNED)
                 FROM operator_tokens WHERE kind = 'api_key' ORDER BY created_at, token_hash",
            )
            .await?)
    }

    /// Revokes the API key with this id; false when there is none.
    pub async fn delete_api_key(&self, id: &str) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop("DELETE FROM operator_tokens WHERE kind = 'api_key' AND LEFT(token_hash, 16) = ?", (id,)).await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Forgets one token (a logout).
    pub async fn delete_operator_token(&self, token_hash: &str) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop("DELETE FROM operator_tokens WHERE token_hash = ?", (token_hash,)).await?;
        Ok(())
    }

    /// The operator's e-mail when the token is known and not expired.
    pub async fn operator_for_token(&self, token_hash: &str) -> Result<Option<String>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec_first(
                "SELECT email FROM operator_tokens WHERE token_hash = ? AND (expires_at IS NULL OR expires_at > NOW(3))",
                (token_hash,),
            )
            .await?)
    }

    /// (id, username, created unix seconds, photo count), by id.
    pub async fn accounts_page(&self, limit: u32, offset: u64) -> Result<Vec<(u64, String, i64, u64)>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec(
                "SELECT a.id, a.username, CAST(UNIX_TIMESTAMP(a.created_at) AS SIGNED),
                        (SELECT COUNT(*) FROM photos p WHERE p.owner_id = a.id)
                 FROM accounts a ORDER BY a.id LIMIT ? OFFSET ?",
                (limit, offset),
            )
            .await?)
    }

    /// All users' photos, newest first, with the owner's name.
    pub async fn photos_page(&self, limit: u32, offset: u64) -> Result<Vec<(Photo, String)>, DbError> {
        let mut conn = self.conn().await?;
        // A photo's columns, then its owner's name.
        type Row = (String, u64, String, String, String, u32, u32, u64, u32, i64, String, String);
        let rows: Vec<Row> = conn
            .exec(
                "SELECT p.id, p.owner_id, p.file_name, p.content_type, p.ext, p.width, p.height, p.bytes, p.boxes,
                        CAST(UNIX_TIMESTAMP(p.created_at) * 1000 AS SIGNED), p.detector, a.username
                 FROM photos p JOIN accounts a ON a.id = p.owner_id
                 ORDER BY p.created_at DESC, p.id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (photo_from_row((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10)), r.11))
            .collect())
    }

    /// (photo id, owner id, ext) of every photo: maps object keys to owners.
    pub async fn photo_owners(&self) -> Result<Vec<(String, u64, String)>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn.query("SELECT id, owner_id, ext FROM photos").await?)
    }

    /// Deletes the rows of `owner_id`'s photos (all photos when `None`) and returns them, so
    /// the caller can delete their objects after: a row never points at a missing object.
    pub async fn delete_photo_rows(&self, owner_id: Option<u64>) -> Result<Vec<Photo>, DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
        let (sql, params): (String, mysql_async::Params) = match owner_id {
            Some(id) => (format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE owner_id = ? FOR UPDATE"), (id,).into()),
            None => (format!("SELECT {PHOTO_COLUMNS} FROM photos FOR UPDATE"), mysql_async::Params::Empty),
        };
        let rows: Vec<PhotoRow> = tx.exec(sql, params).await?;
        match owner_id {
            Some(id) => tx.exec_drop("DELETE FROM photos WHERE owner_id = ?", (id,)).await?,
            None => tx.query_drop("DELETE FROM photos").await?,
        }
        tx.commit().await?;
        Ok(rows.into_iter().map(photo_from_row).collect())
    }

    /// Deletes every account and every photo row in one transaction, the accounts locked
    /// first (a photo insert checks its owner under a shared lock, so it waits, then fails);
    /// returns the photos deleted and how many accounts.
    pub async fn delete_accounts_and_photos(&self) -> Result<(Vec<Photo>, u64), DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
        tx.query_drop("SELECT id FROM accounts FOR UPDATE").await?;
        let rows: Vec<PhotoRow> = tx.query(format!("SELECT {PHOTO_COLUMNS} FROM photos FOR UPDATE")).await?;
        tx.query_drop("DELETE FROM photos").await?;
        tx.query_drop("DELETE FROM accounts").await?;
        let accounts = tx.affected_rows();
        tx.commit().await?;
        Ok((rows.into_iter().map(photo_from_row).collect(), accounts))
    }

    pub async fn count_rows(&self) -> Result<(u64, u64), DbError> {
        let mut conn = self.conn().await?;
        let accounts: Option<u64> = conn.query_first("SELECT COUNT(*) FROM accounts").await?;
        let photos: Option<u64> = conn.query_first("SELECT COUNT(*) FROM photos").await?;
        Ok((accounts.unwrap_or(0), photos.unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// A repeated or reordered version would be skipped as applied, or fail the start of every
    /// worker with a duplicate in `schema_migrations`.
    #[test]
    fn migration_versions_count_up_from_one() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let expected: Vec<u32> = (1..=MIGRATIONS.len() as u32).collect();
        assert_eq!(versions, expected);
    }
}
