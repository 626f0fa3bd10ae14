//! Accepting one uploaded file for a user: shared by the web page and the API.
use bytes::Bytes;
use common::db::Photo;
use rocket::fs::TempFile;
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::AppState;

const FILE_NAME_MAX: usize = 255;

/// The name as the browser sent it, kept as data only (it never becomes a path).
pub fn file_name(file: &TempFile<'_>) -> Result<String> {
    let raw = file
        .raw_name()
        .map(|n| n.dangerous_unsafe_unsanitized_raw().as_str().to_owned())
        .unwrap_or_default();
    if raw.chars().any(char::is_control) {
        return Err(Error::bad_request("the file name contains control characters"));
    }
    let name: String = raw.trim().chars().take(FILE_NAME_MAX).collect();
    Ok(if name.is_empty() { "upload".into() } else { name })
}

pub async fn save(state: &AppState, owner_id: u64, file: &mut TempFile<'_>) -> Result<Photo> {
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
        created_ms: time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
    };
    let started = std::time::Instant::now();
    let photo = crate::pipeline::commit(state.store.clone(), state.db.clone(), photo, data, processed)
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

/// Turns Rocket's form errors into one sentence a person understands.
pub fn form_error(errors: rocket::form::Errors<'_>, max_upload: u64) -> Error {
    use rocket::form::error::ErrorKind;
    use rocket::http::Status;
    let too_large = errors.status() == Status::PayloadTooLarge
        || errors.iter().any(|e| matches!(e.kind, ErrorKind::InvalidLength { max: Some(_), .. }));
    if too_large {
        return Error::new(
            Status::PayloadTooLarge,
            format!("the upload is larger than the {} limit", human_bytes(max_upload)),
        );
    }
    let first = errors.iter().next();
    let field = first.and_then(|e| e.name.as_ref()).map(|n| n.to_string()).unwrap_or_default();
    let message = match first.map(|e| &e.kind) {
        Some(ErrorKind::Missing) => format!("missing field `{field}`"),
        Some(kind) if field.is_empty() => format!("malformed form: {kind}"),
        Some(kind) => format!("field `{field}`: {kind}"),
        None => "malformed form".into(),
    };
    Error::bad_request(message)
}

pub use common::units::human_bytes;

