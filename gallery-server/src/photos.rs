//! A user's photos: accepting an upload (checked, processed, its objects stored, then its
//! row) and removing one's files. A photo row exists only when its three objects do; any
//! failure removes what was written.
use bytes::Bytes;
use common::db::{Db, Photo};
use common::store::SharedStore;
use rocket::fs::TempFile;
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::pipeline::Processed;
use crate::routes::forms::file_name;
use crate::AppState;

pub async fn accept(state: &AppState, owner_id: u64, file: &mut TempFile<'_>) -> Result<Photo> {
    let file_name = file_name(file)?;
    if file.len() == 0 {
        return Err(Error::bad_request("the file is empty"));
    }
    let mut data = Vec::with_capacity(file.len() as usize);
    file.open().await.map_err(Error::internal)?.read_to_end(&mut data).await.map_err(Error::internal)?;
    let data = Bytes::from(data);

    let detector = state.detector.clone();
    let limits = state.decode_limits();
    let input = data.clone();
    let processed = state
        .jobs
        .run(move || crate::pipeline::process(&input, detector.as_ref(), limits))
        .await
        .map_err(|_| Error::busy(5))?
        .map_err(Error::internal)??;
    for (stage, took) in &processed.timings {
        state.metrics.stages.with_label_values(&[stage]).observe(took.as_secs_f64());
    }

    let photo = Photo {
        id: uuid::Uuid::now_v7().simple().to_string(),
        owner_id,
        file_name,
        content_type: processed.content_type.into(),
        ext: processed.ext.into(),
        width: processed.width,
        height: processed.height,
        bytes: data.len() as u64,
        boxes: processed.boxes.len() as u32,
        detector: state.detector.describe(),
        runtime: state.detector.runtime().to_owned(),
        created_ms: time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
    };
    let started = std::time::Instant::now();
    let photo = commit(state.store.clone(), state.db.clone(), photo, data, processed)
        .await
        .map_err(Error::internal)?;
    state.metrics.stages.with_label_values(&["store"]).observe(started.elapsed().as_secs_f64());
    tracing::info!(photo = %photo.id, owner = owner_id, boxes = photo.boxes, "photo saved");
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

/// Writes the three objects, then the row. Runs as its own task so that a client hanging up
/// mid-way cannot cancel it between the writes and the clean-up.
pub async fn commit(
    store: SharedStore,
    db: Db,
    photo: Photo,
    original: Bytes,
    processed: Processed,
) -> Result<Photo, CommitError> {
    tokio::spawn(async move {
        let objects = [
            (photo.original_key(), original, photo.content_type.clone()),
            (photo.annotated_key(), Bytes::from(processed.annotated), "image/jpeg".to_string()),
            (photo.thumbnail_key(), Bytes::from(processed.thumbnail), "image/jpeg".to_string()),
        ];
        let keys: Vec<String> = objects.iter().map(|o| o.0.clone()).collect();
        let mut result: Result<(), CommitError> = Ok(());
        for (key, data, content_type) in objects {
            if let Err(e) = store.put(&key, data, &content_type).await {
                result = Err(e.into());
                break;
            }
        }
        if result.is_ok() {
            result = match db.insert_photo(&photo).await {
                Ok(()) => Ok(()),
                // The insert may have committed before the connection broke: if the row is
                // there, the photo is saved and its objects must stay.
                Err(e) => match db.photo(&photo.id).await {
                    Ok(Some(_)) => Ok(()),
                    _ => Err(e.into()),
                },
            };
        }
        if let Err(e) = result {
            for key in &keys {
                if let Err(del) = store.delete(key).await {
                    tracing::error!(%key, error = %del, "could not remove object of a failed upload");
                }
            }
            return Err(e);
        }
        Ok(photo)
    })
    .await
    .expect("commit task panicked")
}
