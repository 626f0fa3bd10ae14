//! Form handling shared by the pages and the API: the limits, a page upload's file, and
//! Rocket's form errors as one sentence a person understands.
use rocket::fs::TempFile;
use tokio::io::AsyncReadExt;

use crate::upload::{clean_file_name, UploadedFile};

use crate::error::{Error, Result};
use common::units::human_bytes;

/// Rocket's `form` limit (urlencoded forms: logins, deletes): set in `build`, and named in
/// the message when a form is larger.
pub const FORM_LIMIT: u64 = 64 * 1024;

/// A file Rocket spooled for a page's form, read whole.
pub async fn read_temp_file(file: &mut TempFile<'_>) -> Result<UploadedFile> {
    let raw = file
        .raw_name()
        .map(|n| n.dangerous_unsafe_unsanitized_raw().as_str().to_owned())
        .unwrap_or_default();
    let file_name = clean_file_name(&raw)?;
    let mut data = Vec::with_capacity(file.len() as usize);
    if file.len() > 0 {
        file.open()
            .await
            .map_err(Error::internal)?
            .read_to_end(&mut data)
            .await
            .map_err(Error::internal)?;
    }
    Ok(UploadedFile {
        file_name,
        data: data.into(),
    })
}

/// Turns Rocket's form errors into one sentence a person understands.
pub fn form_error(errors: rocket::form::Errors<'_>, max_upload: u64) -> Error {
    use rocket::form::error::ErrorKind;
    use rocket::http::Status;
    let too_large = errors.status() == Status::PayloadTooLarge
        || errors
            .iter()
            .any(|e| matches!(e.kind, ErrorKind::InvalidLength { max: Some(_), .. }));
    if too_large {
        return Error::new(
            Status::PayloadTooLarge,
            format!(
                "the upload is larger than the {} limit",
                human_bytes(max_upload)
            ),
        );
    }
    let first = errors.iter().next();
    let field = first
        .and_then(|e| e.name.as_ref())
        .map(|n| n.to_string())
        .unwrap_or_default();
    let message = match first.map(|e| &e.kind) {
        Some(ErrorKind::Missing) => format!("missing field `{field}`"),
        Some(kind) if field.is_empty() => format!("malformed form: {kind}"),
        Some(kind) => format!("field `{field}`: {kind}"),
        None => "malformed form".into(),
    };
    Error::bad_request(message)
}
