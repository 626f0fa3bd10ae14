//! The control-API client used by the dashboard and `--once`. It never touches the cloud,
//! the database or the store: only the control plane's HTTP API.
use std::time::Duration;

use common::api::{
    AccountRow, DeleteReply, ErrorReply, ObjectRow, OtpReply, Page, PhotoRow, PoolReply, Status,
    TokenReply, UserUsage,
};
use common::autoscale::Policy;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

/// Rows asked for per table page.
pub const PAGE: u64 = 200;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ClientError {
    #[error("cannot reach the control plane at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("unexpected reply from the control plane: {0}")]
    Decode(String),
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .expect("HTTP client"),
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn with_token(&self, token: String) -> Self {
        Client {
            token: Some(token),
            ..self.clone()
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: e
                .to_string()
                .split(": ")
                .last()
                .unwrap_or("unreachable")
                .to_owned(),
        })?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()));
        }
        let message = serde_json::from_str::<ErrorReply>(&text)
            .map(|e| e.error)
            .unwrap_or(text);
        if status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized(message));
        }
        Err(ClientError::Api {
            status: status.as_u16(),
            message,
        })
    }

    /// Whether the deployment's public entry point answers its health check, as a user
    /// would reach it (the seed's "live status of the main DNS name").
    pub async fn probe_balancer(&self, address: &str) -> bool {
        let url = if address.contains("://") {
            format!("{address}/healthz")
        } else {
            format!("http://{address}/healthz")
        };
        matches!(self.http.get(url).timeout(Duration::from_secs(3)).send().await, Ok(r) if r.status().is_success())
    }

    pub async fn status(&self) -> Result<Status, ClientError> {
        self.call(Method::GET, "/status", None).await
    }
    pub async fn request_code(&self, email: &str) -> Result<OtpReply, ClientError> {
        self.call(Method::POST, "/auth/otp", Some(json!({ "email": email })))
            .await
    }
    pub async fn verify(&self, challenge: &str, code: &str) -> Result<TokenReply, ClientError> {
        self.call(
            Method::POST,
            "/auth/verify",
            Some(json!({ "challenge": challenge, "code": code })),
        )
        .await
    }
    pub async fn grow(&self) -> Result<PoolReply, ClientError> {
        self.call(Method::POST, "/pool/grow", None).await
    }
    pub async fn shrink(&self) -> Result<PoolReply, ClientError> {
        self.call(Method::POST, "/pool/shrink", None).await
    }
    pub async fn set_policy(&self, policy: &Policy) -> Result<Policy, ClientError> {
        self.call(
            Method::PUT,
            "/autoscaler",
            Some(serde_json::to_value(policy).expect("policy serialises")),
        )
        .await
    }
    pub async fn set_autoscaler(&self, enabled: bool) -> Result<PoolReply, ClientError> {
        let path = if enabled {
            "/autoscaler/start"
        } else {
            "/autoscaler/stop"
        };
        self.call(Method::POST, path, None).await
    }
    pub async fn accounts(&self, offset: u64) -> Result<Page<AccountRow>, ClientError> {
        self.call(
            Method::GET,
            &format!("/accounts?offset={offset}&limit={}", PAGE),
            None,
        )
        .await
    }
    pub async fn photos(&self, offset: u64) -> Result<Page<PhotoRow>, ClientError> {
        self.call(
            Method::GET,
            &format!("/photos?offset={offset}&limit={}", PAGE),
            None,
        )
        .await
    }
    pub async fn objects(&self, offset: u64) -> Result<Page<ObjectRow>, ClientError> {
        self.call(
            Method::GET,
            &format!("/objects?offset={offset}&limit={}", PAGE),
            None,
        )
        .await
    }
    pub async fn users(&self) -> Result<Vec<UserUsage>, ClientError> {
        self.call(Method::GET, "/users", None).await
    }
    pub async fn delete_user_photos(&self, id: u64) -> Result<DeleteReply, ClientError> {
        self.call(Method::DELETE, &format!("/users/{id}/photos"), None)
            .await
    }
    pub async fn delete_all_photos(&self) -> Result<DeleteReply, ClientError> {
        self.call(Method::DELETE, "/photos", None).await
    }
    pub async fn delete_everything(&self) -> Result<DeleteReply, ClientError> {
        self.call(Method::DELETE, "/everything", None).await
    }
    pub async fn stop_everything(&self) -> Result<PoolReply, ClientError> {
        self.call(Method::POST, "/stop", None).await
    }
}
