//! The control plane's tables: its settings, the worker-count history, scaling events, and
//! operator tokens (sessions and API keys).
use mysql_async::prelude::*;
use mysql_async::{FromRowError, Row};

use super::{Db, DbError};
use crate::api::{ApiKeyRow, CountPoint, ScalingEvent};

/// What the control plane keeps across restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerSettings {
    /// The autoscaling policy, as JSON (read leniently: a policy from an older version may
    /// not parse, and then the configured one is used).
    pub policy: String,
    pub autoscaler_enabled: bool,
    pub desired_workers: u32,
    /// Photos per second one worker processed, as the demand policy last measured it.
    pub learned_rate: Option<f64>,
}

impl FromRow for ManagerSettings {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        let (policy, autoscaler_enabled, desired_workers, learned_rate) =
            mysql_async::from_row_opt(row)?;
        Ok(ManagerSettings {
            policy,
            autoscaler_enabled,
            desired_workers,
            learned_rate,
        })
    }
}

/// What an operator token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// From a one-time code; expires.
    Session,
    /// Made by an operator for scripts; listed and revoked by id.
    ApiKey,
}

impl TokenKind {
    /// As stored in `operator_tokens.kind`.
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::ApiKey => "api_key",
        }
    }
}

impl FromRow for CountPoint {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        let (at, desired, healthy) = mysql_async::from_row_opt(row)?;
        Ok(CountPoint {
            at,
            desired,
            healthy,
        })
    }
}

impl FromRow for ScalingEvent {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        let (at, from, to, reason) = mysql_async::from_row_opt(row)?;
        Ok(ScalingEvent {
            at,
            from,
            to,
            reason,
        })
    }
}

impl FromRow for ApiKeyRow {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        let (id, name, email, created_at, expires_at) = mysql_async::from_row_opt(row)?;
        Ok(ApiKeyRow {
            id,
            name,
            email,
            created_at,
            expires_at,
        })
    }
}

impl Db {
    pub async fn manager_settings(&self) -> Result<Option<ManagerSettings>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .query_first("SELECT policy, autoscaler_enabled, desired_workers, learned_rate FROM manager_settings WHERE id = 1")
            .await?)
    }

    pub async fn save_manager_settings(&self, settings: &ManagerSettings) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO manager_settings (id, policy, autoscaler_enabled, desired_workers, learned_rate) VALUES (1, ?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE policy = VALUES(policy), autoscaler_enabled = VALUES(autoscaler_enabled),
             desired_workers = VALUES(desired_workers), learned_rate = VALUES(learned_rate)",
            (&settings.policy, settings.autoscaler_enabled, settings.desired_workers, settings.learned_rate),
        )
        .await?;
        Ok(())
    }

    pub async fn record_worker_count(&self, desired: u32, healthy: u32) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO worker_count_history (at, desired, healthy) VALUES (NOW(3), ?, ?)",
            (desired, healthy),
        )
        .await?;
        // History older than a day is never shown.
        conn.query_drop("DELETE FROM worker_count_history WHERE at < NOW(3) - INTERVAL 1 DAY")
            .await?;
        Ok(())
    }

    /// Worker counts of the last `seconds`, oldest first.
    pub async fn worker_counts_since(&self, seconds: u64) -> Result<Vec<CountPoint>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec(
                "SELECT CAST(UNIX_TIMESTAMP(at) AS SIGNED), desired, healthy FROM worker_count_history
                 WHERE at >= NOW(3) - INTERVAL ? SECOND ORDER BY at",
                (seconds,),
            )
            .await?)
    }

    pub async fn record_scaling_event(
        &self,
        from: u32,
        to: u32,
        reason: &str,
    ) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO scaling_events (from_count, to_count, reason) VALUES (?, ?, ?)",
            (from, to, reason.chars().take(255).collect::<String>()),
        )
        .await?;
        Ok(())
    }

    /// The latest `limit` scaling events, newest first.
    pub async fn scaling_events(&self, limit: u32) -> Result<Vec<ScalingEvent>, DbError> {
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
        kind: TokenKind,
        name: &str,
        ttl_secs: Option<u64>,
    ) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO operator_tokens (token_hash, email, kind, name, expires_at)
             VALUES (?, ?, ?, ?, IF(? IS NULL, NULL, NOW(3) + INTERVAL ? SECOND))",
            (token_hash, email, kind.as_str(), name, ttl_secs, ttl_secs),
        )
        .await?;
        Ok(())
    }

    /// API keys, oldest first; a key's id is the first 16 hex digits of its hash.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec(
                "SELECT LEFT(token_hash, 16), name, email, CAST(UNIX_TIMESTAMP(created_at) AS SIGNED),
                        CAST(UNIX_TIMESTAMP(expires_at) AS SIGNED)
                 FROM operator_tokens WHERE kind = ? ORDER BY created_at, token_hash",
                (TokenKind::ApiKey.as_str(),),
            )
            .await?)
    }

    /// Revokes the API key with this id; false when there is none.
    pub async fn delete_api_key(&self, id: &str) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "DELETE FROM operator_tokens WHERE kind = ? AND LEFT(token_hash, 16) = ?",
            (TokenKind::ApiKey.as_str(), id),
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Forgets one token (a logout).
    pub async fn delete_operator_token(&self, token_hash: &str) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "DELETE FROM operator_tokens WHERE token_hash = ?",
            (token_hash,),
        )
        .await?;
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
}
