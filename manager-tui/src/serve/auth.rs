//! Operator login: a 6-digit one-time code e-mailed to an allow-listed address, exchanged
//! for a bearer token. Codes are single-use, bound to their challenge, short-lived, killed
//! by one wrong guess, compared in constant time; requests are rate-limited per address and
//! per client. Tokens are stored hashed.
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use common::config::ManagerConfig;
use common::db::{Db, TokenKind};
use sha2::{Digest, Sha256};

use super::mail::MailTransport;
use super::now;

struct Challenge {
    email: String,
    /// `None` for addresses not on the allow-list: the reply looks the same, but no code
    /// can ever match.
    code: Option<String>,
    expires: f64,
}

pub struct Auth {
    challenges: Mutex<HashMap<String, Challenge>>,
    recent: Mutex<HashMap<String, VecDeque<f64>>>,
    operators: Vec<String>,
    validity: u64,
    token_ttl: u64,
    max_requests: u32,
    window: f64,
    mail: Box<dyn MailTransport>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("too many code requests; wait a few minutes and try again")]
    TooMany,
    #[error("the code is wrong or has expired; ask for a new one")]
    BadCode,
    #[error("could not send the code: {0}")]
    Mail(String),
    #[error(transparent)]
    Db(#[from] common::db::DbError),
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Auth {
    pub fn new(config: &ManagerConfig, mail: Box<dyn MailTransport>) -> Self {
        Auth {
            challenges: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
            operators: config
                .operators
                .iter()
                .map(|e| e.trim().to_lowercase())
                .collect(),
            validity: config.otp_validity_secs,
            token_ttl: config.token_ttl_secs,
            max_requests: config.otp_max_requests,
            window: config.otp_window_secs as f64,
            mail,
        }
    }

    fn allow(&self, key: String, t: f64) -> bool {
        let mut recent = self.recent.lock().unwrap();
        let q = recent.entry(key).or_default();
        while q.front().is_some_and(|at| t - at > self.window) {
            q.pop_front();
        }
        if q.len() as u32 >= self.max_requests {
            return false;
        }
        q.push_back(t);
        true
    }

    /// Starts a login. Replies alike whether or not the address is allowed.
    pub async fn request_code(
        &self,
        email: &str,
        client: IpAddr,
    ) -> Result<(String, u64), AuthError> {
        let email = email.trim().to_lowercase();
        let t = now();
        if !self.allow(format!("client:{client}"), t) || !self.allow(format!("email:{email}"), t) {
            return Err(AuthError::TooMany);
        }
        let challenge = hex::encode(rand::random::<[u8; 16]>());
        let code = if self.operators.contains(&email) {
            let secret: [u8; 20] = rand::random();
            let code = totp_lite::totp_custom::<totp_lite::Sha1>(
                self.validity.max(1),
                6,
                &secret,
                t as u64,
            );
            let body = format!(
                "Your one-time code for the gallery control plane is {code}.\r\n\r\n\
                 It is valid for {} seconds and can be used once. If you did not ask for it, ignore this message.",
                self.validity
            );
            self.mail
                .send(&email, &format!("Gallery operator code {code}"), &body)
                .await
                .map_err(AuthError::Mail)?;
            Some(code)
        } else {
            tracing::warn!(%email, %client, "code requested for an address not on the allow-list");
            None
        };
        let mut challenges = self.challenges.lock().unwrap();
        challenges.retain(|_, c| c.expires > t);
        challenges.insert(
            challenge.clone(),
            Challenge {
                email,
                code,
                expires: t + self.validity as f64,
            },
        );
        Ok((challenge, self.validity))
    }

    /// Exchanges a code for a session token. Any attempt, right or wrong, ends the challenge.
    pub async fn verify(
        &self,
        db: &Db,
        challenge: &str,
        code: &str,
    ) -> Result<(String, i64), AuthError> {
        let entry = self.challenges.lock().unwrap().remove(challenge);
        let Some(entry) = entry else {
            return Err(AuthError::BadCode);
        };
        let expected = entry.code.as_deref().unwrap_or("");
        let good = now() <= entry.expires
            && !expected.is_empty()
            && common::auth::constant_time_eq(expected.as_bytes(), code.trim().as_bytes());
        if !good {
            return Err(AuthError::BadCode);
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        db.insert_operator_token(
            &hash_token(&token),
            &entry.email,
            TokenKind::Session,
            "",
            Some(self.token_ttl),
        )
        .await?;
        Ok((token, now() as i64 + self.token_ttl as i64))
    }
}
