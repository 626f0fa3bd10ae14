//! Photo files for the local store, behind expiring signed URLs (S3 serves its own).
use rocket::http::{ContentType, Header};
use rocket::response::Responder;
use rocket::{get, routes, Route, State};

use crate::error::{Error, Result};
use crate::AppState;

pub fn routes() -> Vec<Route> {
    routes![object]
}

#[derive(Responder)]
struct Media {
    body: Vec<u8>,
    content_type: ContentType,
    cache: Header<'static>,
}

#[get("/<kind>/<file>?<exp>&<sig>")]
async fn object(
    state: &State<AppState>,
    kind: &str,
    file: &str,
    exp: u64,
    sig: &str,
) -> Result<Media> {
    let key = format!("{kind}/{file}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    if !state.signer.verify(&key, exp, sig, now) {
        return Err(Error::forbidden(
            "this link has expired or is not valid; reload the page",
        ));
    }
    let body = state
        .store
        .get(&key)
        .await
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found("no such photo"))?;
    let content_type = file
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    let max_age = exp.saturating_sub(now);
    Ok(Media {
        body: body.to_vec(),
        content_type,
        cache: Header::new("Cache-Control", format!("private, max-age={max_age}")),
    })
}
