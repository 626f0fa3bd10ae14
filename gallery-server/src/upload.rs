//! An upload form read as it arrives, the API's (username, password, file) and the upload
//! page's (CSRF token, file). The fields come in the order the client sent them; when the
//! sender's fields come before the file (as every load generator and browser form sends
//! them), the sender is checked before a byte of the file is taken, so a wrong password, a
//! forged form, a throttled client or a full backlog costs neither a spooled 20 MiB nor its
//! memory. A file sent first is still accepted (read within the limit, then the fields after
//! it). Nothing is written to disk: the file is read into memory once, within the limit.
use std::future::Future;

use bytes::{Bytes, BytesMut};
use rocket::data::{Data, ToByteUnit};
use rocket::http::{ContentType, Status};

use crate::error::{Error, Result};
use common::units::human_bytes;

/// A text field's limit (a username, a password, a CSRF token).
const TEXT_MAX: u64 = 8 * 1024;
/// Room for the fields and the multipart framing around the file.
const FRAMING: u64 = 64 * 1024;

const FILE_NAME_MAX: usize = 255;

/// The name as the browser sent it, kept as data only (it never becomes a path).
pub fn clean_file_name(raw: &str) -> Result<String> {
    if raw.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "the file name contains control characters",
        ));
    }
    let name: String = raw.trim().chars().take(FILE_NAME_MAX).collect();
    Ok(if name.is_empty() {
        "upload".into()
    } else {
        name
    })
}

/// The file of an upload, read whole.
pub struct UploadedFile {
    pub file_name: String,
    pub data: Bytes,
}

fn multipart_error(e: multer::Error, max: u64) -> Error {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            too_large(max)
        }
        other => Error::bad_request(format!("malformed form: {other}")),
    }
}

fn too_large(max: u64) -> Error {
    Error::new(
        Status::PayloadTooLarge,
        format!("the upload is larger than the {} limit", human_bytes(max)),
    )
}

async fn read_file(field: &mut multer::Field<'_>, max: u64) -> Result<UploadedFile> {
    let file_name = clean_file_name(field.file_name().unwrap_or_default())?;
    let mut data = BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max))? {
        if data.len() as u64 + chunk.len() as u64 > max {
            return Err(too_large(max));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(UploadedFile {
        file_name,
        data: data.freeze(),
    })
}

/// Reads the text fields named in `fields` and `file` from a multipart body; `admit` gets the
/// fields' values, in that order, as soon as all are known and, when they came first, before
/// the file is read. Its refusal ends the request with the body unread.
pub async fn read<T, F, Fut, const N: usize>(
    content_type: &ContentType,
    data: Data<'_>,
    max: u64,
    fields: [&str; N],
    admit: F,
) -> Result<(T, UploadedFile)>
where
    F: FnOnce([String; N]) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let boundary = content_type
        .is_form_data()
        .then(|| content_type.params().find(|(k, _)| *k == "boundary"))
        .flatten()
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| {
            Error::bad_request(format!(
                "send the upload as multipart/form-data with {} and file",
                fields.join(", ")
            ))
        })?;
    // Rocket's own limit lies beyond multer's, so that an oversized body is reported as one
    // (Rocket would end the stream silently, which reads as a truncated form).
    let stream = tokio_util::io::ReaderStream::new(data.open((max + 2 * FRAMING).bytes()));
    let constraints = multer::Constraints::new().size_limit(fields.iter().fold(
        multer::SizeLimit::new().whole_stream(max + FRAMING),
        |limit, name| limit.for_field(*name, TEXT_MAX),
    ));
    let mut form = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut file = None;
    let mut admit = Some(admit);
    let mut admitted = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, max))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if let Some(i) = fields.iter().position(|f| *f == name) {
            values[i] = Some(field.text().await.map_err(|e| multipart_error(e, max))?);
        } else if name == "file" && file.is_none() {
            if values.iter().all(Option::is_some) {
                if let Some(f) = admit.take() {
                    admitted = Some(f(values.clone().map(Option::unwrap_or_default)).await?);
                }
            }
            file = Some(read_file(&mut field, max).await?);
        }
        // Other fields are skipped unread (up to the whole-body limit).
    }
    if let Some(i) = values.iter().position(Option::is_none) {
        return Err(Error::bad_request(format!("missing field `{}`", fields[i])));
    }
    let file = file.ok_or_else(|| Error::bad_request("missing field `file`"))?;
    let admitted = match (admitted, admit) {
        (Some(a), _) => a,
        (None, Some(f)) => f(values.map(Option::unwrap_or_default)).await?,
        (None, None) => {
            return Err(Error::internal(
                "the upload's sender was checked but not kept",
            ))
        }
    };
    Ok((admitted, file))
}
