//! The `sessions` table: who a browser is signed in as, until it logs out, its password
//! changes, its account is deleted, or the session expires.
use mysql_async::prelude::*;
use sha2::{Digest, Sha256};

use super::{Db, DbError};

/// A browser's session token: 32 random bytes, kept only in its (encrypted) cookie; the
/// table holds their SHA-256, so a copy of the database opens no session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken([u8; 32]);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

impl SessionToken {
    pub fn generate() -> Self {
        SessionToken(rand::random())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        hex::decode(s).ok()?.try_into().ok().map(SessionToken)
    }
    pub(super) fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }
}

/// The account a live session belongs to.
#[derive(Debug, Clone)]
pub struct SessionAccount {
    pub account_id: u64,
    pub username: String,
}

impl FromRow for SessionAccount {
    fn from_row_opt(row: mysql_async::Row) -> Result<Self, mysql_async::FromRowError> {
        let (account_id, username) = mysql_async::from_row_opt(row)?;
        Ok(SessionAccount {
            account_id,
            username,
        })
    }
}

impl Db {
    pub async fn create_session(
        &self,
        account_id: u64,
        ttl: std::time::Duration,
    ) -> Result<SessionToken, DbError> {
        let token = SessionToken::generate();
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO sessions (token_hash, account_id, expires_at)
             VALUES (?, ?, NOW(3) + INTERVAL ? SECOND)",
            (token.hash().to_vec(), account_id, ttl.as_secs()),
        )
        .await?;
        // Expired sessions go as new ones come, a few at a time.
        conn.query_drop("DELETE FROM sessions WHERE expires_at < NOW(3) LIMIT 100")
            .await?;
        Ok(token)
    }

    pub async fn session_account(
        &self,
        token: &SessionToken,
    ) -> Result<Option<SessionAccount>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec_first(
                "SELECT a.id, a.username FROM sessions s JOIN accounts a ON a.id = s.account_id
                 WHERE s.token_hash = ? AND s.expires_at > NOW(3)",
                (token.hash().to_vec(),),
            )
            .await?)
    }

    pub async fn end_session(&self, token: &SessionToken) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "DELETE FROM sessions WHERE token_hash = ?",
            (token.hash().to_vec(),),
        )
        .await?;
        Ok(())
    }
}
