//! The `accounts` table: the gallery's users.
use mysql_async::prelude::*;
use mysql_async::{FromRowError, Row};

use super::{Db, DbError, Photo};
use crate::api::AccountRow;

#[derive(Debug, Clone)]
pub struct Account {
    pub id: u64,
    pub username: String,
    pub password_hash: String,
}

impl FromRow for Account {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        let (id, username, password_hash) = mysql_async::from_row_opt(row)?;
        Ok(Account {
            id,
            username,
            password_hash,
        })
    }
}

/// An account as the operator lists it.
impl FromRow for AccountRow {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        let (id, username, created_at, photos) = mysql_async::from_row_opt(row)?;
        Ok(AccountRow {
            id,
            username,
            created_at,
            photos,
        })
    }
}

impl Db {
    pub async fn create_account(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        let res = conn
            .exec_drop(
                "INSERT INTO accounts (username, username_key, password_hash) VALUES (?, ?, ?)",
                (username, username_key(username), password_hash),
            )
            .await;
        match res {
            Ok(()) => Ok(conn.last_insert_id().expect("auto-increment id")),
            Err(mysql_async::Error::Server(e)) if e.code == 1062 => Err(DbError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// The account a person typing `username` means: the one of that name in any case, or,
    /// among accounts that clashed before names were compared without case, the one
    /// registered exactly so.
    pub async fn account_by_name(&self, username: &str) -> Result<Option<Account>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec_first(
                "SELECT id, username, password_hash FROM accounts
                 WHERE username = ? OR username_key = ?
                 ORDER BY username = ? DESC LIMIT 1",
                (username, username_key(username), username),
            )
            .await?)
    }

    /// Replaces the password hash and ends every session of the account but `keep` (the
    /// one that made the change), in one transaction.
    pub async fn change_password(
        &self,
        id: u64,
        password_hash: &str,
        keep: Option<&super::SessionToken>,
    ) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await?;
        tx.exec_drop(
            "UPDATE accounts SET password_hash = ? WHERE id = ?",
            (password_hash, id),
        )
        .await?;
        let keep = keep.map(|t| t.hash().to_vec()).unwrap_or_default();
        tx.exec_drop(
            "DELETE FROM sessions WHERE account_id = ? AND token_hash <> ?",
            (id, keep),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account's stored password hash (to tell whether a remembered check is stale).
    pub async fn password_hash_of(&self, id: u64) -> Result<Option<String>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec_first("SELECT password_hash FROM accounts WHERE id = ?", (id,))
            .await?)
    }

    pub async fn account_by_id(&self, id: u64) -> Result<Option<Account>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec_first(
                "SELECT id, username, password_hash FROM accounts WHERE id = ?",
                (id,),
            )
            .await?)
    }

    /// Deletes an account and its photos' rows in one transaction, the account locked first
    /// (an upload committing meanwhile waits, then fails for want of an owner and removes its
    /// files); returns the photos, or None when there is no such account.
    pub async fn delete_account(&self, id: u64) -> Result<Option<Vec<Photo>>, DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await?;
        let found: Option<u64> = tx
            .exec_first("SELECT id FROM accounts WHERE id = ? FOR UPDATE", (id,))
            .await?;
        if found.is_none() {
            return Ok(None);
        }
        let photos: Vec<Photo> = tx
            .exec(
                format!(
                    "SELECT {} FROM photos WHERE owner_id = ? FOR UPDATE",
                    Photo::COLUMNS
                ),
                (id,),
            )
            .await?;
        tx.exec_drop("DELETE FROM photos WHERE owner_id = ?", (id,))
            .await?;
        tx.exec_drop("DELETE FROM accounts WHERE id = ?", (id,))
            .await?;
        tx.commit().await?;
        Ok(Some(photos))
    }

    /// Accounts by id, with their photo counts.
    pub async fn accounts_page(&self, limit: u32, offset: u64) -> Result<Vec<AccountRow>, DbError> {
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

    /// Deletes every account and every photo row in one transaction, the accounts locked
    /// first (a photo insert checks its owner under a shared lock, so it waits, then fails);
    /// returns the photos deleted and how many accounts.
    pub async fn delete_accounts_and_photos(&self) -> Result<Deleted, DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await?;
        tx.query_drop("SELECT id FROM accounts FOR UPDATE").await?;
        let photos: Vec<Photo> = tx
            .query(format!("SELECT {} FROM photos FOR UPDATE", Photo::COLUMNS))
            .await?;
        tx.query_drop("DELETE FROM photos").await?;
        tx.query_drop("DELETE FROM sessions").await?;
        tx.query_drop("DELETE FROM accounts").await?;
        let accounts = tx.affected_rows();
        tx.commit().await?;
        Ok(Deleted { photos, accounts })
    }
}

/// The form of a username its uniqueness is decided on: names are ASCII (see
/// `auth::validate_username`), so lower case is the whole normalisation.
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// What deleting everything took: the photo rows (whose objects go next) and how many accounts.
#[derive(Debug)]
pub struct Deleted {
    pub photos: Vec<Photo>,
    pub accounts: u64,
}
