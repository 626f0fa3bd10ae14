//! Routes, grouped by area.
pub mod api;
pub mod forms;
pub mod health;
pub mod media;
pub mod pages;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{catch, catchers, Build, Request, Rocket};

use crate::error::{wants_json, Error};

pub fn mount(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount("/", pages::routes())
        .mount("/api", api::routes())
        .mount("/media", media::routes())
        .mount("/", health::routes())
        .register(
            "/",
            catchers![
                unauthorized,
                not_found,
                unprocessable,
                too_large,
                default_catcher
            ],
        )
}

/// Members-only pages send browsers to the login page.
#[catch(401)]
fn unauthorized(req: &Request<'_>) -> Result<Redirect, Error> {
    if wants_json(req) || req.uri().path().starts_with("/api/") {
        Err(Error::unauthorized("please log in"))
    } else {
        Ok(Redirect::to("/login"))
    }
}

#[catch(404)]
fn not_found() -> Error {
    Error::not_found("there is nothing here")
}

#[catch(422)]
fn unprocessable() -> Error {
    Error::new(
        Status::BadRequest,
        "the form is missing fields or has malformed ones",
    )
}

#[catch(413)]
fn too_large() -> Error {
    Error::new(Status::PayloadTooLarge, "the request is too large")
}

#[catch(default)]
fn default_catcher(status: Status, _req: &Request<'_>) -> Error {
    Error::new(status, status.reason().unwrap_or("error").to_lowercase())
}

/// A URL the browser can fetch the object from for a few minutes: an S3 presigned GET, or
/// this worker's own signed media URL for the local store.
pub async fn media_url(state: &crate::AppState, key: &str) -> Result<String, Error> {
    use common::store::MediaUrl;
    match state
        .store
        .media_url(key, state.media_ttl())
        .await
        .map_err(Error::internal)?
    {
        MediaUrl::Presigned(url) => Ok(url),
        MediaUrl::ServedByWorker => {
            let expires = time::OffsetDateTime::now_utc().unix_timestamp() as u64
                + state.config.media_url_ttl_secs;
            let sig = state.signer.sign(key, expires);
            Ok(format!("/media/{key}?exp={expires}&sig={sig}"))
        }
    }
}
