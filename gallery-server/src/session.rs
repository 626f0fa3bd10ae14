//! Browser sessions (Rocket private cookies, encrypted and authenticated with the
//! deployment's secret key) and CSRF tokens for the forms.
use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::outcome::{try_outcome, IntoOutcome};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::State;

use crate::error::Error;
use crate::AppState;

const SESSION: &str = "session";
const CSRF: &str = "csrf";

/// The logged-in user; routes that take it are for members only.
#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub username: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Error> {
        let state = try_outcome!(req
            .guard::<&State<AppState>>()
            .await
            .map_error(|(s, _)| (s, Error::internal("no state"))));
        let id = req
            .cookies()
            .get_private(SESSION)
            .and_then(|c| c.value().parse::<u64>().ok());
        let Some(id) = id else {
            return Outcome::Error((
                rocket::http::Status::Unauthorized,
                Error::unauthorized("please log in"),
            ));
        };
        match state.db.account_by_id(id).await {
            Ok(Some(a)) => Outcome::Success(User {
                id: a.id,
                username: a.username,
            }),
            Ok(None) => {
                // The account was deleted by the operator: the session ends with it.
                req.cookies().remove_private(SESSION);
                Outcome::Error((
                    rocket::http::Status::Unauthorized,
                    Error::unauthorized("please log in"),
                ))
            }
            Err(e) => Outcome::Error((
                rocket::http::Status::InternalServerError,
                Error::internal(e),
            )),
        }
    }
}

pub fn log_in(cookies: &CookieJar<'_>, account_id: u64) {
    let cookie = Cookie::build((SESSION, account_id.to_string()))
        .same_site(SameSite::Lax)
        .http_only(true)
        .path("/");
    cookies.add_private(cookie);
    // A fresh CSRF token for the new session.
    cookies.remove_private(CSRF);
}

pub fn log_out(cookies: &CookieJar<'_>) {
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
                cookies.add_private(
                    Cookie::build((CSRF, token.clone()))
                        .same_site(SameSite::Lax)
                        .http_only(true)
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
