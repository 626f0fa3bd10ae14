//! The control API (JSON over HTTP). Everything but `/auth/*` needs an operator's token.
use std::net::IpAddr;
use std::sync::Arc;

use common::api::{ApiKeyRequest, ErrorReply, OtpReply, OtpRequest, PoolReply, Status, TokenReply, VerifyRequest};
use common::autoscale::Policy;
use rocket::http::Status as Http;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{catch, catchers, get, post, put, routes, Build, Rocket, State};

use super::auth::{hash_token, Auth, AuthError};
use super::control::{ControlError, ControlPlane};

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
            AuthError::BadCode => Http::Unauthorized,
            AuthError::Mail(_) | AuthError::Db(_) => return internal(e),
        };
        ApiError(status, e.to_string())
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "control API internal error");
    ApiError(Http::InternalServerError, "internal error; see the control plane's log".into())
}

type Result<T> = std::result::Result<Json<T>, ApiError>;

/// An authenticated operator (session token or API key).
pub struct Operator {
    pub email: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Operator {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ApiError> {
        let unauthorized = |m: &str| Outcome::Error((Http::Unauthorized, ApiError(Http::Unauthorized, m.into())));
        let Some(token) = req.headers().get_one("Authorization").and_then(|h| h.strip_prefix("Bearer ")) else {
            return unauthorized("log in first: this call needs an operator token");
        };
        let control = req.rocket().state::<Arc<ControlPlane>>().expect("managed");
        match control.db.operator_for_token(&hash_token(token.trim())).await {
            Ok(Some(email)) => Outcome::Success(Operator { email }),
            Ok(None) => unauthorized("the token is unknown or has expired; log in again"),
            Err(e) => Outcome::Error((Http::InternalServerError, internal(e))),
        }
    }
}

#[post("/auth/otp", data = "<req>")]
fn otp(auth: &State<Auth>, client: IpAddr, req: Json<OtpRequest>) -> Result<OtpReply> {
    let (challenge, expires_in) = auth.request_code(&req.email, client)?;
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
async fn verify(auth: &State<Auth>, control: &State<Arc<ControlPlane>>, req: Json<VerifyRequest>) -> Result<TokenReply> {
    let (token, expires_at) = auth.verify(&control.db, &req.challenge, &req.code).await?;
    Ok(Json(TokenReply { token, expires_at: Some(expires_at) }))
}

/// A long-lived key for scripts (`manager-tui --once`), shown once.
#[post("/api-keys", data = "<req>")]
async fn api_key(op: Operator, control: &State<Arc<ControlPlane>>, req: Json<ApiKeyRequest>) -> Result<TokenReply> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(ApiError(Http::BadRequest, "give the key a name of 1 to 128 characters".into()));
    }
    let token = format!("gk_{}", hex::encode(rand::random::<[u8; 32]>()));
    control.db.insert_operator_token(&hash_token(&token), &op.email, "api_key", name, None).await.map_err(internal)?;
    Ok(Json(TokenReply { token, expires_at: None }))
}

#[get("/status")]
async fn status(_op: Operator, control: &State<Arc<ControlPlane>>) -> Json<Status> {
    Json(control.status().await)
}

#[post("/pool/grow")]
async fn grow(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<PoolReply> {
    let desired = control.grow_or_shrink(1).await?;
    Ok(Json(PoolReply { desired, message: format!("growing the pool to {desired} workers") }))
}

#[post("/pool/shrink")]
async fn shrink(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<PoolReply> {
    let desired = control.grow_or_shrink(-1).await?;
    Ok(Json(PoolReply { desired, message: format!("shrinking the pool to {desired} workers") }))
}

#[get("/autoscaler")]
fn get_policy(_op: Operator, control: &State<Arc<ControlPlane>>) -> Json<Policy> {
    Json(control.policy())
}

#[put("/autoscaler", data = "<policy>")]
async fn put_policy(_op: Operator, control: &State<Arc<ControlPlane>>, policy: Json<Policy>) -> Result<Policy> {
    let policy = control.set_policy(policy.into_inner()).await.map_err(|e| match e {
        ControlError::Invalid(m) => ApiError(Http::BadRequest, m),
        other => other.into(),
    })?;
    Ok(Json(policy))
}

#[post("/autoscaler/start")]
async fn start(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<PoolReply> {
    control.set_enabled(true).await?;
    Ok(Json(PoolReply { desired: control.desired(), message: "autoscaler started".into() }))
}

#[post("/autoscaler/stop")]
async fn stop_autoscaler(_op: Operator, control: &State<Arc<ControlPlane>>) -> Result<PoolReply> {
    control.set_enabled(false).await?;
    Ok(Json(PoolReply { desired: control.desired(), message: "autoscaler stopped".into() }))
}

/// Drains and stops every worker, then the control plane exits.
#[post("/stop")]
fn stop(op: Operator, control: &State<Arc<ControlPlane>>) -> Json<PoolReply> {
    tracing::warn!(operator = %op.email, "stop everything requested");
    let control = control.inner().clone();
    tokio::spawn(async move { control.stop_everything().await });
    Json(PoolReply { desired: 0, message: "draining and stopping every worker; the control plane then exits".into() })
}

#[catch(default)]
fn default_catcher(status: Http, req: &Request<'_>) -> ApiError {
    let message = match status.code {
        401 => "log in first: this call needs an operator token".to_string(),
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
        .merge(("ident", "gallery-control"));
    rocket::custom(figment)
        .manage(control)
        .manage(auth)
        .mount(
            "/",
            routes![otp, verify, api_key, status, grow, shrink, get_policy, put_policy, start, stop_autoscaler, stop],
        )
        .register("/", catchers![default_catcher])
}
