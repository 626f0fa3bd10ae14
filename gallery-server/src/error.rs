//! The one error type of the worker's routes. It becomes a response that fits the caller:
//! JSON when asked for, a one-line text for the API, an HTML page for the browser.
use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, content, Responder, Response};
use rocket::serde::json::Json;

use crate::image::ImageError;
use crate::pipeline::PipelineError;

#[derive(Debug)]
pub struct Error {
    pub status: Status,
    pub message: String,
    retry_after: Option<u32>,
    /// The object's size, for a 416's `Content-Range: bytes */size`.
    content_range: Option<u64>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
            retry_after: None,
            content_range: None,
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(Status::Unauthorized, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(Status::Forbidden, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(Status::NotFound, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(Status::Conflict, m)
    }
    pub fn busy(retry_after: u32) -> Self {
        Error {
            retry_after: Some(retry_after),
            ..Self::new(
                Status::ServiceUnavailable,
                "the server is busy processing other uploads; try again shortly",
            )
        }
    }
    /// Every password check slot is taken and its queue is full.
    pub fn busy_signing_in() -> Self {
        Error {
            retry_after: Some(2),
            ..Self::new(
                Status::ServiceUnavailable,
                "too many people are signing in at once; try again in a few seconds",
            )
        }
    }
    /// Too many wrong passwords from this client or for this account, for now.
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        Error {
            retry_after: Some(retry_after_secs.clamp(1, u32::MAX as u64) as u32),
            ..Self::new(
                Status::TooManyRequests,
                format!(
                    "too many wrong passwords; try again in {}",
                    common::units::human_duration(retry_after_secs)
                ),
            )
        }
    }
    /// A `Range` outside the object.
    pub fn range_not_satisfiable(size: u64) -> Self {
        Error {
            content_range: Some(size),
            ..Self::new(
                Status::RangeNotSatisfiable,
                "the requested range is outside the file",
            )
        }
    }
    /// The backlog is at its limit: the store and the processors need time to catch up.
    pub fn backlog_full(waiting: u64) -> Self {
        tracing::warn!(waiting, "backlog full; refusing uploads");
        Error {
            retry_after: Some(30),
            ..Self::new(
                Status::ServiceUnavailable,
                "too many uploads are waiting to be processed; try again in a minute",
            )
        }
    }
    /// Logs the cause and tells the client only that something went wrong on our side.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            Status::InternalServerError,
            "internal server error; the upload was not saved",
        )
    }
}

impl From<ImageError> for Error {
    fn from(e: ImageError) -> Self {
        PipelineError::Image(e).into()
    }
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Self {
        let status = match &e {
            PipelineError::Image(ImageError::Empty | ImageError::Corrupt(_)) => Status::BadRequest,
            PipelineError::Image(ImageError::NotAnImage | ImageError::Unsupported(_)) => {
                Status::UnsupportedMediaType
            }
            PipelineError::Image(ImageError::TooManyPixels { .. }) => Status::PayloadTooLarge,
            PipelineError::Detect(_) | PipelineError::Image(ImageError::Encode(_)) => {
                return Error::internal(e)
            }
        };
        Error::new(status, e.to_string())
    }
}

impl From<common::db::DbError> for Error {
    fn from(e: common::db::DbError) -> Self {
        match e {
            common::db::DbError::UsernameTaken => Error::conflict("username is already taken"),
            other => Error::internal(other),
        }
    }
}

pub fn wants_json(req: &Request<'_>) -> bool {
    req.accept()
        .map(|a| a.media_types().any(|m| m.is_json()))
        .unwrap_or(false)
}

#[derive(serde::Serialize)]
struct JsonError<'a> {
    ok: bool,
    error: &'a str,
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = if wants_json(req) {
            Json(JsonError {
                ok: false,
                error: &self.message,
            })
            .respond_to(req)?
        } else if req.uri().path().starts_with("/api/") || req.uri().path().starts_with("/media/") {
            self.message.clone().respond_to(req)?
        } else {
            content::RawHtml(crate::views::error_page(self.status, &self.message).into_string())
                .respond_to(req)?
        };
        res.set_status(self.status);
        if let Some(secs) = self.retry_after {
            res.set_header(Header::new("Retry-After", secs.to_string()));
        }
        if let Some(size) = self.content_range {
            res.set_header(Header::new("Content-Range", format!("bytes */{size}")));
        }
        Ok(Response::build_from(res).finalize())
    }
}
