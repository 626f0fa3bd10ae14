//! Browser sessions and CSRF tokens for the forms. The session cookie (a Rocket private
//! cookie, encrypted and authenticated with the deployment's secret key) holds a random
//! token; the session itself is a row, so that logging out, changing the password and
//! deleting the account end it on every worker at once.
use std::time::Duration;

use common::db::SessionToken;
use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::outcome::{try_outcome, IntoOutcome};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::State;

use crate::error::Error;
use crate::AppState;

const SESSION: &str = "session";
const CSRF: &str = "csrf";

/// A session ends this long after it began, whatever happens.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The logged-in user; routes that take it are for members only.
#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub username: String,
    /// The session this request came with.
    pub session: SessionToken,
}

fn session_token(cookies: &CookieJar<'_>) -> Option<SessionToken> {
    cookies
        .get_private(SESSION)
        .and_then(|c| SessionToken::from_hex(c.value()))
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Error> {
        let state = try_outcome!(req
            .guard::<&State<AppState>>()
            .await
            .map_error(|(s, _)| (s, Error::internal("no state"))));
        let please_log_in = || {
            Outcome::Error((
                rocket::http::Status::Unauthorized,
                Error::unauthorized("please log in"),
            ))
        };
        let Some(token) = session_token(req.cookies()) else {
            return please_log_in();
        };
        match state.db.session_account(&token).await {
            Ok(Some(a)) => Outcome::Success(User {
                id: a.account_id,
                username: a.username,
                session: token,
            }),
            Ok(None) => {
                // Logged out elsewhere, password changed, account deleted, or expired.
                req.cookies().remove_private(SESSION);
                please_log_in()
            }
            Err(e) => Outcome::Error((
                rocket::http::Status::InternalServerError,
                Error::internal(e),
            )),
        }
    }
}

pub async fn log_in(
    state: &AppState,
    cookies: &CookieJar<'_>,
    account_id: u64,
) -> Result<(), Error> {
    let token = state.db.create_session(account_id, SESSION_TTL).await?;
    let cookie = Cookie::build((SESSION, token.to_hex()))
        .same_site(SameSite::Lax)
        .http_only(true)
        .secure(state.config.secure_cookies)
        .max_age(rocket::time::Duration::seconds(SESSION_TTL.as_secs() as i64))
        .path("/");
    cookies.add_private(cookie);
    // A fresh CSRF token for the new session.
    cookies.remove_private(CSRF);
    Ok(())
}

/// Ends this browser's session, on the server too.
pub async fn log_out(state: &AppState, cookies: &CookieJar<'_>) {
    if let Some(token) = session_token(cookies) {
        if let Err(e) = state.db.end_session(&token).await {
            tracing::warn!(error = %e, "could not end a session");
        }
    }
    cookies.remove_private(SESSION);
    cookies.remove_private(CSRF);
}

/// The CSRF token of this browser, created on first use and echoed in every form.
pub struct CsrfToken(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let cookies = req.cookies();
        let token = match cookies.get_private(CSRF) {
            Some(c) => c.value().to_string(),
            None => {
                let token = hex::encode(rand::random::<[u8; 32]>());
                let secure = req
                    .rocket()
                    .state::<AppState>()
                    .is_some_and(|s| s.config.secure_cookies);
                cookies.add_private(
                    Cookie::build((CSRF, token.clone()))
                        .same_site(SameSite::Lax)
                        .http_only(true)
                        .secure(secure)
                        .path("/"),
                );
                token
            }
        };
        Some(CsrfToken(token)).or_forward(rocket::http::Status::InternalServerError)
    }
}

impl CsrfToken {
    /// Compares, in constant time, with the token a form sent back.
    pub fn check(&self, sent: &str) -> Result<(), Error> {
        if common::auth::constant_time_eq(self.0.as_bytes(), sent.as_bytes()) {
            Ok(())
        } else {
            Err(Error::forbidden("the form has expired or did not come from this site; reload the page and try again"))
        }
    }
}
