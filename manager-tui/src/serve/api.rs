//! The control API (JSON over HTTP). Everything but asking for and giving a one-time code
//! needs an operator's token.
use std::net::IpAddr;
use std::sync::Arc;

use common::api::{
    AccountRow, ApiKeyRequest, ApiKeyRow, DeleteReply, ErrorReply, ObjectRow, OtpReply, OtpRequest,
    Page, PhotoRow, PoolReply, Status, TokenReply, UserUsage, VerifyRequest,
};
use common::autoscale::Policy;
use common::db::TokenKind;
use rocket::http::Status as Http;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{catch, catchers, delete, get, post, put, routes, Build, Rocket, State};

use super::auth::{hash_token, Auth, AuthError};
use super::control::{ControlError, ControlPlane};
use super::data::{self, DataError};

#[derive(Debug)]
pub struct ApiError(Http, String);

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Json(ErrorReply { error: self.1 }).respond_to(req)?;
        res.set_status(self.0);
        Ok(res)
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Invalid(m) => ApiError(Http::Conflict, m),
            ControlError::Db(e) => internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::TooMany => Http::TooManyRequests,
            AuthError::BadAddress => Http::BadRequest,
            AuthError::BadCode => Http::Unauthorized,
            AuthError::Mail(_) | AuthError::Db(_) => return internal(e),
        };
        ApiError(status, e.to_string())
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "control API internal error");
    ApiError(
        Http::InternalServerError,
        "internal error; see the control plane's log".into(),
    )
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::NoStore => ApiError(Http::ServiceUnavailable, e.to_string()),
            other => internal(other),
        }
    }
}

type Result<T> = std::result::Result<Json<T>, ApiError>;

const PAGE_MAX: u32 = 1000;

/// Why the operator guard refused a call, for the catcher's reply.
struct RefusedBecause(String);

/// An authenticated operator (session token or API key).
pub struct Operator {
    pub email: String,
    /// The hash of the token the call came with.
    token_hash: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Operator {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ApiError> {
        let unauthorized = |m: &str| {
            // Rocket answers a failed guard with the catcher: it reads the reason from here.
            req.local_cache(|| RefusedBecause(m.to_owned()));
            Outcome::Error((Http::Unauthorized, ApiError(Http::Unauthorized, m.into())))
        };
        let Some(token) = req
            .headers()
            .get_one("Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
        else {
            return unauthorized("log in first: this call needs an operator token");
        };
        let control = req.rocket().state::<Arc<ControlPlane>>().expect("managed");
        let token_hash = hash_token(token.trim());
        let auth = req.rocket().state::<Auth>().expect("managed");
        match control.db.operator_for_token(&token_hash).await {
            Ok(Some(email)) if auth.is_operator(&email) => {
                Outcome::Success(Operator { email, token_hash })
            }
            Ok(Some(email)) => {
                tracing::warn!(%email, "refused a token of an address no longer on the allow-list");
                unauthorized("this operator is no longer allowed (not in `operators`)")
            }
            Ok(None) => unauthorized("the token is unknown or has expired; log in again"),
            Err(e) => Outcome::Error((Http::InternalServerError, internal(e))),
        }
    }
}

#[post("/auth/otp", data = "<req>")]
async fn otp(auth: &State<Auth>, client: IpAddr, req: Json<OtpRequest>) -> Result<OtpReply> {
    let (challenge, expires_in) = auth.request_code(&req.email, client).await?;
    Ok(Json(OtpReply {
        challenge,
        expires_in,
        message: format!(
            "If {} is an operator address, a code was sent to it; it is valid for {expires_in} s.",
            req.email.trim()
        ),
    }))
}

#[post("/auth/verify", data = "<req>")]
async fn verify(
    auth: &State<Auth>,
    control: &State<Arc<ControlPlane>>,
    req: Json<VerifyRequest>,
) -> Result<TokenReply> {
    let (token, expires_at) = auth.verify(&control.db, &req.challenge, &req.code).await?;
    Ok(Json(TokenReply {
        token,
        expires_at: Some(expires_at),
    }))
}

/// How long an API key lasts unless asked otherwise, and at most.
const API_KEY_DAYS: u32 = 90;
const API_KEY_DAYS_MAX: u32 = 365;

/// A long-lived key for scripts (`manager-tui --once`), shown once; it expires.
#[post("/api-keys", data = "<req>")]
async fn api_key(
    op: Operator,
    control: &State<Arc<ControlPlane>>,
    req: Json<ApiKeyRequest>,
) -> Result<TokenReply> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(ApiError(
            Http::BadRequest,
            "give the key a name of 1 to 128 characters".into(),
        ));
    }
    let days = req.expires_in_days.unwrap_or(API_KEY_DAYS);
    if !(1..=API_KEY_DAYS_MAX).contains(&days) {
        return Err(ApiError(
            Http::BadRequest,
            format!("a key lasts 1 to {API_KEY_DAYS_MAX} days"),
        ));
    }
    let ttl = u64::from(days) * 24 * 3600;
    let token = format!("gk_{}", hex::encode(rand::random::<[u8; 32]>()));
    control
        .db
        .insert_operator_token(
            &hash_token(&token),
            &op.email,
            TokenKind::ApiKey,
            name,
            Some(ttl),
        )
        .await
        .map_err(internal)?;
    Ok(Json(TokenReply {
        token,
        expires_at: Some(common::clock::now() as i64 + ttl as i64),
    }))
}

#[get("/api-keys")]
async fn api_keys(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<Vec<ApiKeyRow>> {
    Ok(Json(control.db.api_keys().await.map_err(internal)?))
}

/// Revokes a key: calls with it are refused from now on.
#[delete("/api-keys/<id>")]
async fn revoke_api_key(
    op: Operator,
    control: &State<Arc<ControlPlane>>,
    id: &str,
) -> std::result::Result<Http, ApiError> {
    if !control.db.delete_api_key(id).await.map_err(internal)? {
        return Err(ApiError(
            Http::NotFound,
            format!("no API key {id:?} (GET /api-keys lists them)"),
        ));
    }
    tracing::warn!(operator = %op.email, key = id, "revoked an API key");
    Ok(Http::NoContent)
}

/// Ends the session (or retires the API key) the call is made with.
#[post("/auth/logout")]
async fn logout(
    op: Operator,
    control: &State<Arc<ControlPlane>>,
) -> std::result::Result<Http, ApiError> {
    control
        .db
        .delete_operator_token(&op.token_hash)
        .await
        .map_err(internal)?;
    Ok(Http::NoContent)
}

#[get("/status")]
async fn status(_op: Operator, control: &State<Arc<ControlPlane>>) -> Json<Status> {
    Json(control.status().await)
}

#[post("/pool/grow")]
async fn grow(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<PoolReply> {
    let desired = control.grow_or_shrink(1).await?;
    Ok(Json(PoolReply {
        desired,
        message: format!("growing the pool to {desired} workers"),
    }))
}

#[post("/pool/shrink")]
async fn shrink(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<PoolReply> {
    let desired = control.grow_or_shrink(-1).await?;
    Ok(Json(PoolReply {
        desired,
        message: format!("shrinking the pool to {desired} workers"),
    }))
}

#[get("/autoscaler")]
fn get_policy(_op: Operator, control: &State<Arc<ControlPlane>>) -> Json<Policy> {
    Json(control.policy())
}

#[put("/autoscaler", data = "<policy>")]
async fn put_policy(
    _op: Operator,
    control: &State<Arc<ControlPlane>>,
    policy: Json<Policy>,
) -> Result<Policy> {
    let policy = control
        .set_policy(policy.into_inner())
        .await
        .map_err(|e| match e {
            ControlError::Invalid(m) => ApiError(Http::BadRequest, m),
            other => other.into(),
        })?;
    Ok(Json(policy))
}

#[post("/autoscaler/start")]
async fn start(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<PoolReply> {
    control.set_enabled(true).await?;
    Ok(Json(PoolReply {
        desired: control.desired(),
        message: "autoscaler started".into(),
    }))
}

#[post("/autoscaler/stop")]
async fn stop_autoscaler(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<PoolReply> {
    control.set_enabled(false).await?;
    Ok(Json(PoolReply {
        desired: control.desired(),
        message: "autoscaler stopped".into(),
    }))
}

#[get("/accounts?<offset>&<limit>")]
async fn accounts(
    _op: Operator,
    control: &State<Arc<ControlPlane>>,
    offset: Option<u64>,
    limit: Option<u32>,
) -> Result<Page<AccountRow>> {
    Ok(Json(
        data::accounts(
            &control.db,
            offset.unwrap_or(0),
            limit.unwrap_or(100).min(PAGE_MAX),
        )
        .await?,
    ))
}

#[get("/photos?<offset>&<limit>")]
async fn photos(
    _op: Operator,
    control: &State<Arc<ControlPlane>>,
    offset: Option<u64>,
    limit: Option<u32>,
) -> Result<Page<PhotoRow>> {
    Ok(Json(
        data::photos(
            &control.db,
            offset.unwrap_or(0),
            limit.unwrap_or(100).min(PAGE_MAX),
        )
        .await?,
    ))
}

#[get("/objects?<prefix>&<offset>&<limit>")]
async fn objects(
    _op: Operator,
    control: &State<Arc<ControlPlane>>,
    prefix: Option<&str>,
    offset: Option<u64>,
    limit: Option<u32>,
) -> Result<Page<ObjectRow>> {
    let page = data::objects(
        control.store.as_ref(),
        prefix.unwrap_or(""),
        offset.unwrap_or(0),
        limit.unwrap_or(100).min(PAGE_MAX),
    );
    Ok(Json(page.await?))
}

#[get("/users")]
async fn users(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<Vec<UserUsage>> {
    Ok(Json(
        data::usage(&control.db, control.store.as_ref()).await?,
    ))
}

#[get("/users/<id>")]
async fn user(_op: Operator, control: &State<Arc<ControlPlane>>, id: u64) -> Result<UserUsage> {
    let all = data::usage(&control.db, control.store.as_ref()).await?;
    all.into_iter()
        .find(|u| u.id == id)
        .map(Json)
        .ok_or_else(|| ApiError(Http::NotFound, format!("no account with id {id}")))
}

#[delete("/users/<id>/photos")]
async fn delete_user_photos(
    op: Operator,
    control: &State<Arc<ControlPlane>>,
    id: u64,
) -> Result<DeleteReply> {
    let reply = data::delete_user_photos(&control.db, control.store.as_ref(), id).await?;
    control.forget_totals();
    tracing::warn!(operator = %op.email, user = id, photos = reply.photos, "deleted a user's photos");
    Ok(Json(reply))
}

#[delete("/photos")]
async fn delete_photos(op: Operator, control: &State<Arc<ControlPlane>>) -> Result<DeleteReply> {
    let reply = data::delete_all_photos(&control.db, control.store.as_ref()).await?;
    control.forget_totals();
    tracing::warn!(operator = %op.email, photos = reply.photos, objects = reply.objects, "deleted all photos");
    Ok(Json(reply))
}

#[delete("/everything")]
async fn delete_everything(
    op: Operator,
    control: &State<Arc<ControlPlane>>,
) -> Result<DeleteReply> {
    let reply = data::delete_everything(&control.db, control.store.as_ref()).await?;
    control.forget_totals();
    tracing::warn!(operator = %op.email, photos = reply.photos, accounts = reply.accounts, "deleted everything");
    Ok(Json(reply))
}

/// Drains and stops every worker, then the control plane exits.
#[post("/stop")]
fn stop(op: Operator, control: &State<Arc<ControlPlane>>) -> Json<PoolReply> {
    tracing::warn!(operator = %op.email, "stop everything requested");
    let control = control.inner().clone();
    tokio::spawn(async move { control.stop_everything().await });
    Json(PoolReply {
        desired: 0,
        message: "draining and stopping every worker; the control plane then exits".into(),
    })
}

#[catch(default)]
fn default_catcher(status: Http, req: &Request<'_>) -> ApiError {
    let message = match status.code {
        401 => {
            let because = &req.local_cache(|| RefusedBecause(String::new())).0;
            if because.is_empty() {
                "log in first: this call needs an operator token".into()
            } else {
                because.clone()
            }
        }
        404 => format!("no such endpoint: {} {}", req.method(), req.uri().path()),
        400 | 422 => "the request body is not valid JSON of the expected shape".to_string(),
        _ => status.reason().unwrap_or("error").to_lowercase(),
    };
    ApiError(status, message)
}

pub fn build(control: Arc<ControlPlane>, auth: Auth) -> Rocket<Build> {
    let config = &control.config;
    let figment = rocket::Config::figment()
        .merge(("address", config.control_address))
        .merge(("port", config.control_port))
        // No cookies are used here, but Rocket insists on a key in release builds.
        .merge(("secret_key", hex::encode(rand::random::<[u8; 32]>())))
        .merge(("log_level", "critical"))
        .merge(("cli_colors", false))
        .merge(("ident", "gallery-control"))
        // The per-client code limit must key on the real peer, not on a header the client
        // writes itself (Rocket trusts X-Real-IP by default).
        .merge(("ip_header", false));
    rocket::custom(figment)
        .manage(control)
        .manage(auth)
        .mount(
            "/",
            routes![
                otp,
                verify,
                logout,
                api_key,
                api_keys,
                revoke_api_key,
                status,
                grow,
                shrink,
                get_policy,
                put_policy,
                start,
                stop_autoscaler,
                stop,
                accounts,
                photos,
                objects,
                users,
                user,
                delete_user_photos,
                delete_photos,
                delete_everything
            ],
        )
        .register("/", catchers![default_catcher])
}
