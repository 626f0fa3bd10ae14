//! The API the existing load generators speak: form fields in, one line (or JSON) out.
use rocket::data::Data;
use rocket::form::{Errors, Form};
use rocket::http::ContentType;
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{post, routes, FromForm, Route, State};
use serde_json::json;

use super::forms::form_error;
use crate::client::ClientAddr;
use crate::error::{wants_json, Result};
use crate::upload::read as read_upload;
use crate::{accounts, photos, AppState};

pub fn routes() -> Vec<Route> {
    routes![register, upload]
}

#[derive(FromForm)]
struct Credentials<'r> {
    username: &'r str,
    password: &'r str,
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

#[post("/register", data = "<form>")]
async fn register(
    state: &State<AppState>,
    form: Result<Form<Credentials<'_>>, Errors<'_>>,
) -> Result<Reply> {
    let form = form.map_err(form_error)?;
    let id = accounts::create(state, form.username, form.password).await?;
    Ok(Reply {
        text: "/api/register successful!",
        json: json!({"ok": true, "account_id": id}),
    })
}

/// Read as it streams in (see `upload`): the sender and the backlog's room are checked
/// before the file is.
#[post("/upload", data = "<data>")]
async fn upload(
    state: &State<AppState>,
    client: ClientAddr,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> Result<Reply> {
    let content_type = content_type.cloned().unwrap_or(ContentType::Any);
    let (owner, file) = read_upload(
        &content_type,
        data,
        state.config.max_upload_bytes,
        ["username", "password"],
        |[username, password]| async move {
            let owner = accounts::authenticate(state, &username, &password, client).await?;
            photos::check_room(state).await?;
            Ok(owner)
        },
    )
    .await?;
    let photo = photos::accept(state, owner, file).await?;
    Ok(Reply {
        text: "/api/upload successful!",
        // Stored durably, processing queued.
        json: json!({"ok": true, "photo_id": photo.id, "state": photo.state.as_str(), "width": photo.width, "height": photo.height}),
    })
}
