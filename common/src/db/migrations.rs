//! The schema, as versioned migrations embedded in the binaries.

/// Migrations in order; a version is never edited once released, only added after.
pub(super) const MIGRATIONS: &[(u32, &str)] = &[
    (
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
    ),
    (
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
    ),
    (
        3,
        // Which detector made a photo's boxes: runtimes and precisions differ by a few pixels.
        "ALTER TABLE photos ADD COLUMN detector VARCHAR(96) NOT NULL DEFAULT ''",
    ),
    (
        4,
        // The runtime on its own, so that nobody takes it apart from the description
        // ("text (PP-OCRv4 DBNet) on OpenVINO"); photos described before keep theirs.
        r"
    ALTER TABLE photos ADD COLUMN runtime VARCHAR(32) NOT NULL DEFAULT '';
    UPDATE photos SET runtime = LEFT(SUBSTRING_INDEX(detector, ' on ', -1), 32) WHERE detector LIKE '% on %'
    ",
    ),
    (
        5,
        // The backlog: a photo row is accepted (`queued`) before it is processed, claimed by one
        // processor at a time under a lease, retried after `not_before`, `ready` once its annotated
        // copy and thumbnail are stored, or `failed` with the reason its owner is shown. Photos
        // from before were processed inside their upload: ready.
        r"
    ALTER TABLE photos
        ADD COLUMN state ENUM('queued', 'processing', 'ready', 'failed') NOT NULL DEFAULT 'ready',
        ADD COLUMN attempts INT UNSIGNED NOT NULL DEFAULT 0,
        ADD COLUMN claimed_by VARCHAR(64) NULL,
        ADD COLUMN lease_until TIMESTAMP(3) NULL,
        ADD COLUMN not_before TIMESTAMP(3) NULL,
        ADD COLUMN failure VARCHAR(255) NOT NULL DEFAULT '',
        ADD COLUMN processed_at TIMESTAMP(3) NULL,
        ADD KEY photos_backlog (state, created_at)
    ",
    ),
    (
        6,
        // The autoscaler counts uploads accepted and photos processed in the last seconds, every
        // two seconds: without these, each count would read the whole table.
        r"
    ALTER TABLE photos
        ADD KEY photos_created (created_at),
        ADD KEY photos_processed (processed_at)
    ",
    ),
    (
        7,
        // The control plane's tables took the database's default character set: latin1 on a
        // MariaDB server without configuration (and with RDS MariaDB's default parameters),
        // where a scaling event's reason ("… → 4 workers") could not be stored.
        r"
    ALTER TABLE manager_settings CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    ALTER TABLE worker_count_history CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    ALTER TABLE scaling_events CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    ALTER TABLE operator_tokens CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
    ",
    ),
    (
        8,
        // Names differing only by case are one account from now on: `username_key` is the
        // name in lower case, unique. Accounts that already clash keep their names: the oldest
        // gets the plain key, each later one its key with `#id` (a character no username can
        // hold), and still logs in with its name exactly as registered.
        r"
    ALTER TABLE accounts ADD COLUMN username_key VARCHAR(96) NULL;
    UPDATE accounts a
        JOIN (SELECT LOWER(username) AS k, MIN(id) AS first_id FROM accounts GROUP BY LOWER(username)) f
            ON f.k = LOWER(a.username)
        SET a.username_key = IF(a.id = f.first_id, LOWER(a.username), CONCAT(LOWER(a.username), '#', a.id));
    ALTER TABLE accounts
        MODIFY username_key VARCHAR(96) NOT NULL,
        ADD UNIQUE KEY accounts_username_key (username_key)
    ",
    ),
    (
        9,
        // Browser sessions on the server, so that logging out, a password change and deleting
        // the account end them (a cookie that held only the account id could not be revoked).
        // The cookie holds a random token; only its SHA-256 is stored.
        r"
    CREATE TABLE sessions (
        token_hash BINARY(32) NOT NULL PRIMARY KEY,
        account_id BIGINT UNSIGNED NOT NULL,
        created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        expires_at TIMESTAMP(3) NOT NULL,
        KEY sessions_account (account_id),
        KEY sessions_expires (expires_at),
        CONSTRAINT sessions_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
    ",
    ),
    (
        10,
        // API keys expire (90 days unless asked otherwise); keys made before without an
        // expiry get 90 days from the upgrade, so no script stops at once.
        "UPDATE operator_tokens SET expires_at = NOW(3) + INTERVAL 90 DAY WHERE kind = 'api_key' AND expires_at IS NULL",
    ),
    (
        11,
        // The processing rate per worker the demand policy measured, kept across restarts of
        // the control plane: one restarted in a flash crowd sizes on it, not on the assumed
        // rate, until it has measured again.
        "ALTER TABLE manager_settings ADD COLUMN learned_rate DOUBLE NULL",
    ),
    (
        12,
        // When an account's photos were last all deleted: an upload accepted before then,
        // while the database was away, is not brought back by its manifest afterwards.
        "ALTER TABLE accounts ADD COLUMN photos_cleared_at DATETIME(3) NULL",
    ),
];

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
