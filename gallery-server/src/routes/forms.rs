//! Form handling shared by the pages and the API: the limits, and Rocket's form errors as
//! one sentence a person understands.
use crate::error::Error;
use common::units::human_bytes;

/// Rocket's `form` limit (urlencoded forms: logins, deletes): set in `build`, and named in
/// the message when a form is larger.
pub const FORM_LIMIT: u64 = 64 * 1024;

/// The temporary directory is full or cannot be written (rather than the client's body
/// breaking off).
fn spooling_failed_here(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EACCES | libc::EMFILE | libc::ENFILE
        )
    )
}

/// Turns Rocket's form errors into one sentence a person understands.
pub fn form_error(errors: rocket::form::Errors<'_>, max_upload: u64) -> Error {
    use rocket::form::error::ErrorKind;
    use rocket::http::Status;
    // Rocket reports every failure to spool a form as the client's (400); a full or
    // unwritable temporary directory is this server's, and the upload may be tried again.
    let ours = errors.iter().find_map(|e| match &e.kind {
        ErrorKind::Io(io) if spooling_failed_here(io) => Some(io),
        _ => None,
    });
    if let Some(io) = ours {
        tracing::error!(error = %io, "an upload could not be written to the temporary directory");
        return Error::new(
            Status::ServiceUnavailable,
            "the server cannot take uploads right now; try again in a few minutes",
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::form::error::{Error as FieldError, ErrorKind};
    use rocket::http::Status;

    fn io(e: std::io::Error) -> rocket::form::Errors<'static> {
        FieldError::from(ErrorKind::Io(e)).into()
    }

    #[test]
    fn a_full_disk_is_the_servers_trouble_and_a_broken_body_the_clients() {
        let full = form_error(io(std::io::Error::from_raw_os_error(libc::ENOSPC)), 1 << 20);
        assert_eq!(full.status, Status::ServiceUnavailable);
        assert!(full.message.contains("try again"), "{}", full.message);
        let cut = form_error(io(std::io::ErrorKind::ConnectionReset.into()), 1 << 20);
        assert_eq!(cut.status, Status::BadRequest);
    }
}
