//! A user's photos: accepting an upload (checked by content and that it decodes, its original
//! stored, then its row inserted as queued: from the reply on it is never lost; processing
//! follows from the backlog) and removing a photo's files. A photo row exists only when its
//! original does; any failure to accept removes what was written.
use bytes::Bytes;
use common::db::{Db, Photo, PhotoState};
use common::store::SharedStore;

use crate::error::{Error, Result};
use crate::upload::UploadedFile;
use crate::AppState;

/// Whether the backlog has room for one more upload (checked before its body is read).
pub async fn check_room(state: &AppState) -> Result<()> {
    let waiting = state.backlog().await.map(|b| b.waiting()).unwrap_or(0);
    if waiting >= state.config.backlog_limit {
        return Err(Error::backlog_full(waiting));
    }
    Ok(())
}

pub async fn accept(state: &AppState, owner_id: u64, file: UploadedFile) -> Result<Photo> {
    let UploadedFile { file_name, data } = file;
    if data.is_empty() {
        return Err(Error::bad_request("the file is empty"));
    }
    check_room(state).await?;

    let limits = state.decode_limits();
    let input = data.clone();
    let started = std::time::Instant::now();
    let checked = state
        .jobs
        .run(move || crate::image::decode::check(&input, limits))
        .await
        .map_err(|_| Error::busy(5))?
        .map_err(Error::internal)??;
    state
        .metrics
        .stages
        .with_label_values(&["check"])
        .observe(started.elapsed().as_secs_f64());

    let photo = Photo {
        id: uuid::Uuid::now_v7().simple().to_string(),
        owner_id,
        file_name,
        content_type: checked.content_type.into(),
        ext: checked.ext.into(),
        width: checked.width,
        height: checked.height,
        bytes: data.len() as u64,
        boxes: 0,
        detector: String::new(),
        runtime: String::new(),
        // To the millisecond: a row written later from a manifest keeps this as its time.
        created_ms: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        state: PhotoState::Queued,
        failure: String::new(),
    };
    let started = std::time::Instant::now();
    let photo = commit(state.store.clone(), state.db.clone(), photo, data)
        .await
        .map_err(|e| match e {
            CommitError::Db(db) if db.is_missing_owner() => {
                Error::unauthorized("this account no longer exists")
            }
            other => Error::internal(other),
        })?;
    state
        .metrics
        .stages
        .with_label_values(&["accept"])
        .observe(started.elapsed().as_secs_f64());
    state.accepted().await;
    tracing::info!(photo = %photo.id, owner = owner_id, "photo accepted");
    Ok(photo)
}

/// Removes a deleted photo's three files. One that cannot be removed now is logged and left
/// to the operator's sweep of files no row owns: its row is gone, so nobody sees it.
pub async fn remove_files(state: &AppState, photo: &Photo) {
    for key in photo.keys() {
        if let Err(e) = state.store.delete(&key).await {
            tracing::error!(%key, error = %e, "could not remove a deleted photo's file");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] common::store::StoreError),
    #[error(transparent)]
    Db(#[from] common::db::DbError),
}

/// How long an upload waits for a database that does not answer before it is recorded in a
/// manifest instead (`manifest`): a restart of a few seconds costs its uploads a little time
/// and nothing more.
const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Stores the original, then inserts the row (the photo is accepted: queued). Runs as its own
/// task so that a client hanging up mid-way cannot cancel it between the write and the
/// clean-up. An insert that fails for want of the database is tried again for
/// `DATABASE_PATIENCE`, then the acceptance is recorded in the store (`manifest`) for the row
/// to be inserted when the database is back; one the database refused (the owner was deleted
/// meanwhile) is not. If neither can be written the original is removed: nothing is left
/// behind.
pub async fn commit(
    store: SharedStore,
    db: Db,
    photo: Photo,
    original: Bytes,
) -> Result<Photo, CommitError> {
    tokio::spawn(async move {
        let key = photo.original_key();
        store.put(&key, original, &photo.content_type).await?;
        let deadline = std::time::Instant::now() + DATABASE_PATIENCE;
        let mut pause = std::time::Duration::from_millis(200);
        let result = loop {
            match db.insert_photo(&photo).await {
                Ok(()) => break Ok(()),
                // The insert may have committed before the connection broke: if the row is
                // there, the photo is accepted and its original must stay.
                Err(e) => match db.photo(&photo.id).await {
                    Ok(Some(_)) => break Ok(()),
                    _ if e.is_refusal() || std::time::Instant::now() + pause > deadline => break Err(e),
                    _ => {
                        tracing::warn!(photo = %photo.id, error = %e, "the database did not take the photo; trying again");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(std::time::Duration::from_secs(2));
                    }
                },
            }
        };
        let result = match result {
            Err(e) if !e.is_refusal() => match crate::manifest::record(&store, &photo).await {
                Ok(()) => {
                    tracing::warn!(photo = %photo.id, error = %e, "the database is away: the upload is recorded in the store, its row follows when the database is back");
                    Ok(())
                }
                Err(recorded) => {
                    tracing::error!(photo = %photo.id, error = %recorded, "could not record an upload the database did not take");
                    Err(e)
                }
            },
            other => other,
        };
        if let Err(e) = result {
            if let Err(del) = store.delete(&key).await {
                tracing::error!(%key, error = %del, "could not remove the original of a refused upload");
            }
            return Err(e.into());
        }
        Ok(photo)
    })
    .await
    .expect("commit task panicked")
}
