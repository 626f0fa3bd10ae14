//! The `photos` table: one row per stored photo, its three objects named by
//! [`crate::store::keys`].
use mysql_async::prelude::*;
use mysql_async::{FromRowError, Row};

use super::{Db, DbError};
use crate::api::PhotoRow;
pub use crate::api::PhotoState;
use crate::store::keys;

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
    /// What ran its model ("OpenVINO", "rten", …); empty where the detector is.
    pub runtime: String,
    pub state: PhotoState,
    /// Why processing gave up, for a `failed` photo.
    pub failure: String,
}

impl Photo {
    /// The columns a [`Photo`] is read from, in its [`FromRow`] order.
    pub(super) const COLUMNS: &'static str =
        "id, owner_id, file_name, content_type, ext, width, height, bytes, boxes, \
         CAST(UNIX_TIMESTAMP(created_at) * 1000 AS SIGNED), detector, runtime, state, failure";

    pub fn original_key(&self) -> String {
        keys::original(&self.id, &self.ext)
    }
    pub fn annotated_key(&self) -> String {
        keys::annotated(&self.id)
    }
    pub fn thumbnail_key(&self) -> String {
        keys::thumbnail(&self.id)
    }
    /// The photo's three objects: original, annotated copy, thumbnail.
    pub fn keys(&self) -> [String; 3] {
        [
            self.original_key(),
            self.annotated_key(),
            self.thumbnail_key(),
        ]
    }
}

impl FromRow for Photo {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        // More columns than mysql_async's tuples take: read them one by one.
        let mut r = row.clone();
        let photo = (|| {
            Some(Photo {
                id: r.take_opt(0)?.ok()?,
                owner_id: r.take_opt(1)?.ok()?,
                file_name: r.take_opt(2)?.ok()?,
                content_type: r.take_opt(3)?.ok()?,
                ext: r.take_opt(4)?.ok()?,
                width: r.take_opt(5)?.ok()?,
                height: r.take_opt(6)?.ok()?,
                bytes: r.take_opt(7)?.ok()?,
                boxes: r.take_opt(8)?.ok()?,
                created_ms: r.take_opt(9)?.ok()?,
                detector: r.take_opt(10)?.ok()?,
                runtime: r.take_opt(11)?.ok()?,
                state: PhotoState::parse(&r.take_opt::<String, _>(12)?.ok()?)?,
                failure: r.take_opt(13)?.ok()?,
            })
        })();
        photo.ok_or(FromRowError(row))
    }
}

/// A photo as the operator lists it, with its owner's name.
impl FromRow for PhotoRow {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        // More columns than mysql_async's tuples take: read them one by one.
        let mut r = row.clone();
        let photo = (|| {
            Some(PhotoRow {
                id: r.take_opt(0)?.ok()?,
                owner_id: r.take_opt(1)?.ok()?,
                owner: r.take_opt(2)?.ok()?,
                file_name: r.take_opt(3)?.ok()?,
                content_type: r.take_opt(4)?.ok()?,
                width: r.take_opt(5)?.ok()?,
                height: r.take_opt(6)?.ok()?,
                bytes: r.take_opt(7)?.ok()?,
                boxes: r.take_opt(8)?.ok()?,
                created_at: r.take_opt(9)?.ok()?,
                detector: r.take_opt(10)?.ok()?,
                runtime: r.take_opt(11)?.ok()?,
                state: PhotoState::parse(&r.take_opt::<String, _>(12)?.ok()?)?,
            })
        })();
        photo.ok_or(FromRowError(row))
    }
}

/// Which account a photo belongs to (to attribute objects to owners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoOwner {
    pub photo_id: String,
    pub owner_id: u64,
}

impl FromRow for PhotoOwner {
    fn from_row_opt(row: Row) -> Result<Self, FromRowError> {
        let (photo_id, owner_id) = mysql_async::from_row_opt(row)?;
        Ok(PhotoOwner { photo_id, owner_id })
    }
}

/// What became of a photo accepted while the database was away, once its row could be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedRow {
    Inserted,
    /// Its account was deleted, or had all its photos deleted, after it was accepted.
    Withdrawn,
}

impl Db {
    pub async fn insert_photo(&self, p: &Photo) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO photos (id, owner_id, file_name, content_type, ext, width, height, bytes, boxes, detector, runtime, state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (&p.id, p.owner_id, &p.file_name, &p.content_type, &p.ext, p.width, p.height, p.bytes, p.boxes, &p.detector, &p.runtime, p.state.as_str()),
        )
        .await?;
        Ok(())
    }

    /// Inserts the row of a photo accepted earlier (recorded in a manifest while the
    /// database was unreachable), dated when it was accepted: its wait counts from then.
    /// Nothing is inserted if its account is gone or had all its photos deleted since the
    /// photo was accepted (by the accepting worker's clock): the caller removes the photo.
    pub async fn insert_photo_accepted_at(&self, p: &Photo) -> Result<AcceptedRow, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            // One statement reads the account's mark and inserts, so a deletion of all its
            // photos (which marks in its own transaction) is either seen or deletes this row.
            "INSERT INTO photos (id, owner_id, file_name, content_type, ext, width, height, bytes, boxes, detector, runtime, state, created_at)
             SELECT ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(? / 1000)
             FROM accounts
             WHERE id = ? AND (photos_cleared_at IS NULL OR photos_cleared_at < FROM_UNIXTIME(? / 1000))
             LOCK IN SHARE MODE",
            // More values than a tuple of parameters holds.
            mysql_async::Params::Positional(vec![
                p.id.as_str().into(),
                p.file_name.as_str().into(),
                p.content_type.as_str().into(),
                p.ext.as_str().into(),
                p.width.into(),
                p.height.into(),
                p.bytes.into(),
                p.boxes.into(),
                p.detector.as_str().into(),
                p.runtime.as_str().into(),
                p.state.as_str().into(),
                p.created_ms.into(),
                p.owner_id.into(),
                p.created_ms.into(),
            ]),
        )
        .await?;
        Ok(if conn.affected_rows() == 1 {
            AcceptedRow::Inserted
        } else {
            AcceptedRow::Withdrawn
        })
    }

    /// The owner's photos, newest first.
    pub async fn photos_of(
        &self,
        owner_id: u64,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Photo>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec(
                format!(
                    "SELECT {} FROM photos WHERE owner_id = ?
                     ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                    Photo::COLUMNS
                ),
                (owner_id, limit, offset),
            )
            .await?)
    }

    pub async fn count_photos_of(&self, owner_id: u64) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        let n: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM photos WHERE owner_id = ?",
                (owner_id,),
            )
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// A photo only if it belongs to `owner_id`: other users' photos do not exist for them.
    pub async fn photo_of(&self, owner_id: u64, id: &str) -> Result<Option<Photo>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec_first(
                format!(
                    "SELECT {} FROM photos WHERE id = ? AND owner_id = ?",
                    Photo::COLUMNS
                ),
                (id, owner_id),
            )
            .await?)
    }

    /// Deletes one of the owner's photos' row; returns it, or None when the owner has no such
    /// photo (someone else's is none of theirs).
    pub async fn delete_photo_of(&self, owner_id: u64, id: &str) -> Result<Option<Photo>, DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await?;
        let photo: Option<Photo> = tx
            .exec_first(
                format!(
                    "SELECT {} FROM photos WHERE id = ? AND owner_id = ? FOR UPDATE",
                    Photo::COLUMNS
                ),
                (id, owner_id),
            )
            .await?;
        if photo.is_some() {
            tx.exec_drop(
                "DELETE FROM photos WHERE id = ? AND owner_id = ?",
                (id, owner_id),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(photo)
    }

    pub async fn photo(&self, id: &str) -> Result<Option<Photo>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn
            .exec_first(
                format!("SELECT {} FROM photos WHERE id = ?", Photo::COLUMNS),
                (id,),
            )
            .await?)
    }

    /// All users' photos, newest first, with the owner's name.
    pub async fn photos_page(&self, limit: u32, offset: u64) -> Result<Vec<PhotoRow>, DbError> {
        let mut conn = self.conn().await?;
        // Whole seconds, rounded down as the photo's own `created_ms / 1000` would be.
        Ok(conn
            .exec(
                "SELECT p.id, p.owner_id, a.username, p.file_name, p.content_type, p.width, p.height, p.bytes, p.boxes,
                        CAST(FLOOR(UNIX_TIMESTAMP(p.created_at)) AS SIGNED), p.detector, p.runtime, p.state
                 FROM photos p JOIN accounts a ON a.id = p.owner_id
                 ORDER BY p.created_at DESC, p.id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )
            .await?)
    }

    /// The owner of every photo: maps object keys to owners.
    pub async fn photo_owners(&self) -> Result<Vec<PhotoOwner>, DbError> {
        let mut conn = self.conn().await?;
        Ok(conn.query("SELECT id, owner_id FROM photos").await?)
    }

    /// Deletes the rows of `owner_id`'s photos (all photos when `None`) and returns them, so
    /// the caller can delete their objects after: a row never points at a missing object.
    pub async fn delete_photo_rows(&self, owner_id: Option<u64>) -> Result<Vec<Photo>, DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await?;
        let (sql, params): (String, mysql_async::Params) = match owner_id {
            Some(id) => (
                format!(
                    "SELECT {} FROM photos WHERE owner_id = ? FOR UPDATE",
                    Photo::COLUMNS
                ),
                (id,).into(),
            ),
            None => (
                format!("SELECT {} FROM photos FOR UPDATE", Photo::COLUMNS),
                mysql_async::Params::Empty,
            ),
        };
        let photos: Vec<Photo> = tx.exec(sql, params).await?;
        // Marked in the same transaction, so a manifest's row inserted after it sees the mark
        // (`insert_photo_accepted_at`), and one inserted before is among the rows deleted.
        match owner_id {
            Some(id) => {
                tx.exec_drop("DELETE FROM photos WHERE owner_id = ?", (id,))
                    .await?;
                tx.exec_drop(
                    "UPDATE accounts SET photos_cleared_at = NOW(3) WHERE id = ?",
                    (id,),
                )
                .await?
            }
            None => {
                tx.query_drop("DELETE FROM photos").await?;
                tx.query_drop("UPDATE accounts SET photos_cleared_at = NOW(3)")
                    .await?
            }
        }
        tx.commit().await?;
        Ok(photos)
    }
}
