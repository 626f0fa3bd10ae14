//! The web pages: landing, register, log in/out, upload, the thumbnail grid, a photo.
use maud::{html, Markup};
use rocket::data::Data;
use rocket::form::{Errors, Form};
use rocket::http::{ContentType, CookieJar, Status};
use rocket::response::Redirect;
use rocket::{get, post, routes, FromForm, Route, State};

use super::forms::form_error;
use super::media_url;
use common::db::PhotoState;

use crate::accounts;
use crate::client::ClientAddr;
use crate::detect::Finds;
use crate::error::Error;
use crate::photos;
use crate::session::{log_in, log_out, CsrfToken, User};
use crate::upload::read as read_upload;
use crate::views::layout;
use crate::AppState;
use common::units::human_bytes;

pub fn routes() -> Vec<Route> {
    routes![
        index,
        register_page,
        register,
        login_page,
        login,
        logout,
        upload_page,
        upload,
        photo,
        delete_photo,
        account_page,
        change_password,
        delete_account
    ]
}

type Page = Result<Redirect, (Status, Markup)>;

fn credentials_form(
    action: &str,
    title: &str,
    csrf: &CsrfToken,
    username: &str,
    error: Option<&str>,
) -> Markup {
    html! {
        h1 { (title) }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.card method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf.0);
            label { "Username" input name="username" value=(username) required autocomplete="username"; }
            label { "Password" input name="password" type="password" required
                autocomplete=(if action == "/register" { "new-password" } else { "current-password" }); }
            button.primary type="submit" { (title) }
        }
    }
}

#[derive(FromForm)]
struct CredentialsForm<'r> {
    csrf: &'r str,
    username: &'r str,
    password: &'r str,
}

#[get("/?<page>")]
async fn index(
    state: &State<AppState>,
    user: Option<User>,
    csrf: CsrfToken,
    page: Option<u32>,
) -> Result<Markup, Error> {
    let Some(user) = user else {
        return Ok(layout(
            "Welcome",
            None,
            &csrf,
            html! {
                h1 { "Your photos, with the text in them found for you" }
                p { "Upload a photo and the gallery keeps the original, a copy with every line of text outlined, and a thumbnail." }
                p { a href="/register" { "Create an account" } " or " a href="/login" { "log in" } "." }
            },
        ));
    };
    let per_page = state.config.page_size;
    let total = state.db.count_photos_of(user.id).await?;
    let pages = total.div_ceil(per_page as u64).max(1);
    let page = page.unwrap_or(1).clamp(1, pages as u32);
    let photos = state
        .db
        .photos_of(user.id, per_page, (page as u64 - 1) * per_page as u64)
        .await?;
    // Photos still in the backlog have no thumbnail yet: a placeholder says where they are.
    let mut thumbs = Vec::with_capacity(photos.len());
    for p in &photos {
        let url = match p.state {
            PhotoState::Ready => Some(media_url(state, &p.thumbnail_key()).await?),
            _ => None,
        };
        thumbs.push((p, url));
    }
    let pending = photos
        .iter()
        .any(|p| matches!(p.state, PhotoState::Queued | PhotoState::Processing));
    Ok(layout(
        "Your photos",
        Some(&user),
        &csrf,
        html! {
            h1 { "Your photos" }
            @if total == 0 {
                p { "No photos yet. " a href="/upload" { "Upload your first one." } }
            } @else {
                p.meta { (total) @if total == 1 { " photo" } @else { " photos" } }
                @if pending { p.meta { "New photos appear here as soon as the text in them is found." } }
                div.grid {
                    @for (p, url) in &thumbs {
                        a href={ "/photos/" (p.id) } title=(p.file_name) {
                            @match url {
                                Some(url) => { img src=(url) alt=(p.file_name) loading="lazy"; }
                                None => { div.placeholder data-state=(p.state.as_str()) { (state_words(p.state)) } }
                            }
                        }
                    }
                }
                @if pages > 1 {
                    nav.pager {
                        @if page > 1 { a href={ "/?page=" (page - 1) } { "← Newer" } }
                        span { "Page " (page) " of " (pages) }
                        @if (page as u64) < pages { a href={ "/?page=" (page + 1) } { "Older →" } }
                    }
                }
            }
        },
    ))
}

#[get("/register")]
fn register_page(csrf: CsrfToken) -> Markup {
    layout(
        "Register",
        None,
        &csrf,
        credentials_form("/register", "Register", &csrf, "", None),
    )
}

#[post("/register", data = "<form>")]
async fn register(
    state: &State<AppState>,
    cookies: &CookieJar<'_>,
    csrf: CsrfToken,
    form: Result<Form<CredentialsForm<'_>>, Errors<'_>>,
) -> Page {
    let fail = |e: Error, name: &str| {
        (
            e.status,
            layout(
                "Register",
                None,
                &csrf,
                credentials_form("/register", "Register", &csrf, name, Some(&e.message)),
            ),
        )
    };
    let form = form.map_err(|e| fail(form_error(e), ""))?;
    csrf.check(form.csrf).map_err(|e| fail(e, form.username))?;
    let id = accounts::create(state, form.username, form.password)
        .await
        .map_err(|e| fail(e, form.username))?;
    log_in(state, cookies, id)
        .await
        .map_err(|e| fail(e, form.username))?;
    Ok(Redirect::to("/"))
}

#[get("/login")]
fn login_page(csrf: CsrfToken) -> Markup {
    layout(
        "Log in",
        None,
        &csrf,
        credentials_form("/login", "Log in", &csrf, "", None),
    )
}

#[post("/login", data = "<form>")]
async fn login(
    state: &State<AppState>,
    cookies: &CookieJar<'_>,
    client: ClientAddr,
    csrf: CsrfToken,
    form: Result<Form<CredentialsForm<'_>>, Errors<'_>>,
) -> Page {
    let fail = |e: Error, name: &str| {
        (
            e.status,
            layout(
                "Log in",
                None,
                &csrf,
                credentials_form("/login", "Log in", &csrf, name, Some(&e.message)),
            ),
        )
    };
    let form = form.map_err(|e| fail(form_error(e), ""))?;
    csrf.check(form.csrf).map_err(|e| fail(e, form.username))?;
    let id = accounts::authenticate(state, form.username, form.password, client)
        .await
        .map_err(|e| fail(e, form.username))?;
    log_in(state, cookies, id)
        .await
        .map_err(|e| fail(e, form.username))?;
    Ok(Redirect::to("/"))
}

#[derive(FromForm)]
struct CsrfForm<'r> {
    csrf: &'r str,
}

#[post("/logout", data = "<form>")]
async fn logout(
    state: &State<AppState>,
    cookies: &CookieJar<'_>,
    csrf: CsrfToken,
    form: Form<CsrfForm<'_>>,
) -> Result<Redirect, Error> {
    csrf.check(form.csrf)?;
    log_out(state, cookies).await;
    Ok(Redirect::to("/"))
}

fn upload_form(csrf: &CsrfToken, max: u64, error: Option<&str>) -> Markup {
    html! {
        h1 { "Upload a photo" }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.card method="post" action="/upload" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(csrf.0);
            input type="file" name="file" accept="image/*" required;
            p.meta { "JPEG, PNG, WebP, GIF, BMP or TIFF, up to " (human_bytes(max)) "." }
            button.primary type="submit" { "Upload" }
        }
    }
}

#[get("/upload")]
fn upload_page(state: &State<AppState>, user: User, csrf: CsrfToken) -> Markup {
    layout(
        "Upload",
        Some(&user),
        &csrf,
        upload_form(&csrf, state.config.max_upload_bytes, None),
    )
}

/// Read as it streams in, like the API's: a forged form or a full backlog is refused before
/// the file is read.
#[post("/upload", data = "<data>")]
async fn upload(
    state: &State<AppState>,
    user: User,
    csrf: CsrfToken,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> Page {
    let max = state.config.max_upload_bytes;
    let fail = |e: Error| {
        (
            e.status,
            layout(
                "Upload",
                Some(&user),
                &csrf,
                upload_form(&csrf, max, Some(&e.message)),
            ),
        )
    };
    let content_type = content_type.cloned().unwrap_or(ContentType::Any);
    let expected = &csrf;
    let ((), file) = read_upload(&content_type, data, max, ["csrf"], |[token]| async move {
        expected.check(&token)?;
        photos::check_room(state).await
    })
    .await
    .map_err(fail)?;
    let photo = photos::accept(state, user.id, file).await.map_err(fail)?;
    Ok(Redirect::to(format!("/photos/{}", photo.id)))
}

/// Where a photo not yet ready is, as its owner reads it.
fn state_words(state: PhotoState) -> &'static str {
    match state {
        PhotoState::Queued => "Waiting to be processed…",
        PhotoState::Processing => "Finding the text…",
        PhotoState::Ready => "Ready.",
        PhotoState::Failed => "Could not be processed.",
    }
}

fn format_time(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

#[get("/photos/<id>")]
async fn photo(
    state: &State<AppState>,
    user: User,
    csrf: CsrfToken,
    id: &str,
) -> Result<Markup, Error> {
    // Someone else's photo is reported exactly like a missing one.
    let photo = state
        .db
        .photo_of(user.id, id)
        .await?
        .ok_or_else(|| Error::not_found("no such photo"))?;
    let original = media_url(state, &photo.original_key()).await?;
    let annotated = match photo.state {
        PhotoState::Ready => Some(media_url(state, &photo.annotated_key()).await?),
        _ => None,
    };
    let pending = matches!(photo.state, PhotoState::Queued | PhotoState::Processing);
    let (one, many) = match state.detector.finds() {
        Finds::Text => ("text region", "text regions"),
        Finds::Objects => ("object", "objects"),
    };
    Ok(layout(
        &photo.file_name,
        Some(&user),
        &csrf,
        html! {
            h1 { (photo.file_name) }
            p.meta {
                (photo.width) "×" (photo.height) " · " (human_bytes(photo.bytes)) " · "
                @if photo.state == PhotoState::Ready { (photo.boxes) " " @if photo.boxes == 1 { (one) } @else { (many) } " · " }
                "uploaded " (format_time(photo.created_ms))
                @if !photo.detector.is_empty() { " · found by " (photo.detector) }
            }
            @if pending {
                // Reloads itself until the photo is processed.
                meta http-equiv="refresh" content="2";
                p.notice role="status" data-state=(photo.state.as_str()) { (state_words(photo.state)) " This page updates by itself." }
            }
            @if photo.state == PhotoState::Failed {
                p.error role="alert" { "The " (many) " in this photo could not be found: " (photo.failure) }
            }
            div.pair {
                figure { img src=(original) alt={ "Original of " (photo.file_name) }; figcaption { "Original" } }
                @if let Some(annotated) = &annotated {
                    figure { img src=(annotated) alt={ "Boxes around the " (many) " in " (photo.file_name) }; figcaption { "With the " (many) " found" } }
                }
            }
            p { a href="/" { "← All photos" } }
            form method="post" action={ "/photos/" (photo.id) "/delete" } onsubmit="return confirm('Delete this photo? This cannot be undone.')" {
                input type="hidden" name="csrf" value=(csrf.0);
                button.danger type="submit" { "Delete this photo" }
            }
        },
    ))
}

/// What the account page says after a form on it was sent.
enum AccountNote<'a> {
    None,
    PasswordChanged,
    PasswordError(&'a str),
    DeleteError(&'a str),
}

fn account_form(user: &User, photos: u64, csrf: &CsrfToken, note: AccountNote<'_>) -> Markup {
    html! {
        h1 { "Your account" }
        p { "Signed in as " strong { (user.username) } ", with " (photos) @if photos == 1 { " photo" } @else { " photos" } "." }
        h2 { "Change your password" }
        p { "Every other browser signed in to your account is signed out." }
        @match note {
            AccountNote::PasswordChanged => { p.notice role="status" { "Your password was changed." } }
            AccountNote::PasswordError(e) => { p.error role="alert" { (e) } }
            _ => {}
        }
        form.card method="post" action="/account/password" {
            input type="hidden" name="csrf" value=(csrf.0);
            label { "Current password" input name="current" type="password" required autocomplete="current-password"; }
            label { "New password" input name="new" type="password" required autocomplete="new-password"; }
            button.primary type="submit" { "Change password" }
        }
        h2 { "Delete your account" }
        p { "Your account and every photo in it — originals, annotated copies and thumbnails — are removed for good." }
        @if let AccountNote::DeleteError(e) = note { p.error role="alert" { (e) } }
        form.card method="post" action="/account/delete" onsubmit="return confirm('Delete your account and all your photos? This cannot be undone.')" {
            input type="hidden" name="csrf" value=(csrf.0);
            label { "Your password, to confirm" input name="password" type="password" required autocomplete="current-password"; }
            button.danger type="submit" { "Delete my account and photos" }
        }
    }
}

#[get("/account")]
async fn account_page(
    state: &State<AppState>,
    user: User,
    csrf: CsrfToken,
) -> Result<Markup, Error> {
    let photos = state.db.count_photos_of(user.id).await?;
    Ok(layout(
        "Your account",
        Some(&user),
        &csrf,
        account_form(&user, photos, &csrf, AccountNote::None),
    ))
}

#[derive(FromForm)]
struct PasswordForm<'r> {
    csrf: &'r str,
    current: &'r str,
    new: &'r str,
}

#[post("/account/password", data = "<form>")]
async fn change_password(
    state: &State<AppState>,
    user: User,
    client: ClientAddr,
    csrf: CsrfToken,
    form: Result<Form<PasswordForm<'_>>, Errors<'_>>,
) -> (Status, Markup) {
    let photos = state.db.count_photos_of(user.id).await.unwrap_or(0);
    let page = |status: Status, note: AccountNote<'_>| {
        (
            status,
            layout(
                "Your account",
                Some(&user),
                &csrf,
                account_form(&user, photos, &csrf, note),
            ),
        )
    };
    let result = match form {
        Err(e) => Err(form_error(e)),
        Ok(form) => match csrf.check(form.csrf) {
            Err(e) => Err(e),
            Ok(()) => accounts::change_password(state, &user, form.current, form.new, client).await,
        },
    };
    match result {
        Ok(()) => page(Status::Ok, AccountNote::PasswordChanged),
        Err(e) => page(e.status, AccountNote::PasswordError(&e.message)),
    }
}

#[derive(FromForm)]
struct DeleteAccountForm<'r> {
    csrf: &'r str,
    password: &'r str,
}

/// Asks for the password again (see `accounts::delete`), then the session ends.
#[post("/account/delete", data = "<form>")]
async fn delete_account(
    state: &State<AppState>,
    cookies: &CookieJar<'_>,
    client: ClientAddr,
    user: User,
    csrf: CsrfToken,
    form: Result<Form<DeleteAccountForm<'_>>, Errors<'_>>,
) -> Page {
    let photos = state.db.count_photos_of(user.id).await.unwrap_or(0);
    let fail = |e: Error| {
        (
            e.status,
            layout(
                "Your account",
                Some(&user),
                &csrf,
                account_form(&user, photos, &csrf, AccountNote::DeleteError(&e.message)),
            ),
        )
    };
    let form = form.map_err(|e| fail(form_error(e)))?;
    csrf.check(form.csrf).map_err(fail)?;
    accounts::delete(state, &user, form.password, client)
        .await
        .map_err(fail)?;
    log_out(state, cookies).await;
    Ok(Redirect::to("/"))
}

/// The row first, so the photo disappears at once and never points at a missing file; then
/// its three files. A file that cannot be removed now is left to the operator's sweep of
/// files no row owns (its owner no longer sees it either way).
#[post("/photos/<id>/delete", data = "<form>")]
async fn delete_photo(
    state: &State<AppState>,
    user: User,
    csrf: CsrfToken,
    id: &str,
    form: Form<CsrfForm<'_>>,
) -> Result<Redirect, Error> {
    csrf.check(form.csrf)?;
    let photo = state
        .db
        .delete_photo_of(user.id, id)
        .await?
        .ok_or_else(|| Error::not_found("no such photo"))?;
    photos::remove_files(state, &photo).await;
    tracing::info!(photo = %photo.id, owner = user.id, "photo deleted by its owner");
    Ok(Redirect::to("/"))
}
