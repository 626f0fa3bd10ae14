//! Form handling shared by the pages and the API: the limits, and Rocket's form errors as
//! one sentence a person understands.
use crate::error::Error;
use common::units::human_bytes;

/// Rocket's `form` and `data-form` limits (logins, registrations, settings; photos are
/// streamed by `upload::read` under their own limit): set in `build`, and named in the
/// message when a form is larger.
pub const FORM_LIMIT: u64 = 64 * 1024;

/// Turns Rocket's form errors into one sentence a person understands.
pub fn form_error(errors: rocket::form::Errors<'_>) -> Error {
    use rocket::form::error::ErrorKind;
    use rocket::http::Status;
    // Photos never come through a Rocket form (`upload::read` streams them, with its own
    // limit), so a form too large is a login, registration or settings form.
    let too_large = errors.status() == Status::PayloadTooLarge
        || errors
            .iter()
            .any(|e| matches!(e.kind, ErrorKind::InvalidLength { max: Some(_), .. }));
    if too_large {
        return Error::new(
            Status::PayloadTooLarge,
            format!(
                "the form is larger than the {} limit",
                human_bytes(FORM_LIMIT)
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

    #[test]
    fn a_form_too_long_names_the_form_limit_and_a_missing_field_its_name() {
        let long = form_error(
            FieldError::from(ErrorKind::InvalidLength {
                min: None,
                max: Some(FORM_LIMIT),
            })
            .into(),
        );
        assert_eq!(long.status, Status::PayloadTooLarge);
        assert!(long.message.contains("64 KiB"), "{}", long.message);
        let missing = form_error(
            FieldError::from(ErrorKind::Missing)
                .with_name("password")
                .into(),
        );
        assert_eq!(missing.status, Status::BadRequest);
        assert_eq!(missing.message, "missing field `password`");
    }
}
