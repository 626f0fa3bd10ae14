//! The API the existing load generators speak: form fields in, one line (or JSON) out.
use rocket::form::{Errors, Form};
use rocket::fs::TempFile;
use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{post, routes, FromForm, Route, State};
use serde_json::json;

use crate::error::{wants_json, Error, Result};
use crate::uploads::{form_error, save};
use crate::AppState;

pub fn routes() -> Vec<Route> {
    routes![register, upload]
}

#[derive(FromForm)]
struct Credentials<'r> {
    username: &'r str,
    password: &'r str,
}

#[derive(FromForm)]
struct Upload<'r> {
    username: &'r str,
    password: &'r str,
    file: TempFile<'r>,
}

/// `text` for the load generators, `json` for clients that ask with `Accept`.
pub struct Reply {
    text: &'static str,
    json: serde_json::Value,
}

impl<'r> Responder<'r, 'static> for Reply {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        if wants_json(req) {
            Json(self.json).respond_to(req)
        } else {
            self.text.respond_to(req)
        }
    }
}

pub async fn create_account(state: &AppState, username: &str, password: &str) -> Result<u64> {
    common::auth::validate_username(username).map_err(Error::bad_request)?;
    common::auth::validate_password(password, username).map_err(Error::bad_request)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || common::auth::hash_password(&password))
        .await
        .map_err(Error::internal)?;
    Ok(state.db.create_account(username, &hash).await?)
}

/// The account id when the password matches. Unknown users cost as much as wrong passwords,
/// so timing does not reveal which usernames exist.
pub async fn authenticate(state: &AppState, username: &str, password: &str) -> Result<u64> {
    let account = state.db.account_by_name(username).await?;
    let hash = account.as_ref().map(|a| a.password_hash.clone()).unwrap_or_else(|| common::auth::dummy_hash().to_owned());
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || common::auth::verify_password(&password, &hash))
        .await
        .map_err(Error::internal)?;
    match account {
        Some(a) if ok => Ok(a.id),
        _ => Err(Error::new(Status::Unauthorized, "wrong username or password")),
    }
}

#[post("/register", data = "<form>")]
async fn register(state: &State<AppState>, form: Result<Form<Credentials<'_>>, Errors<'_>>) -> Result<Reply> {
    let form = form.map_err(|e| form_error(e, state.config.max_upload_bytes))?;
    let id = create_account(state, form.username, form.password).await?;
    Ok(Reply { text: "/api/register successful!", json: json!({"ok": true, "account_id": id}) })
}

#[post("/upload", data = "<form>")]
async fn upload(state: &State<AppState>, form: Result<Form<Upload<'_>>, Errors<'_>>) -> Result<Reply> {
    let mut form = form.map_err(|e| form_error(e, state.config.max_upload_bytes))?;
    let owner = authenticate(state, form.username, form.password).await?;
    let photo = save(state, owner, &mut form.file).await?;
    Ok(Reply {
        text: "/api/upload successful!",
        json: json!({"ok": true, "photo_id": photo.id, "boxes": photo.boxes, "width": photo.width, "height": photo.height}),
    })
}
