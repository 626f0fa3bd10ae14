//! Operator login: a 6-digit one-time code e-mailed to an allow-listed address, exchanged
//! for a bearer token. Codes are single-use, bound to their challenge, short-lived, killed
//! by one wrong guess, compared in constant time. Tokens are stored hashed, and honoured
//! only while their operator is still on the allow-list.
//!
//! Code requests are limited per client network (an IPv4 /24, an IPv6 /64: stepping through
//! one's own addresses does not help) and per address *from that network*, so a flood from
//! elsewhere spends only its own quota and the operator's request still gets a code. An
//! address's delivered codes are capped too (a mailbox is not to be flooded), except from
//! networks the operator has logged in from. Every map here is bounded.
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use common::config::ManagerConfig;
use common::db::{Db, TokenKind};
use sha2::{Digest, Sha256};

use super::mail::MailTransport;
use super::now;

/// The longest e-mail address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// Keys the rate limiter and the known networks hold at most.
const KEYS_MAX: usize = 10_000;
/// An address's delivered codes per window, over all networks, as a multiple of the
/// per-network limit.
const DELIVERED_FACTOR: u32 = 4;

/// The network a client's code requests are counted against: an IPv4 /24, an IPv6 /64.
fn network(ip: IpAddr) -> IpAddr {
    common::network::client_network(ip, 24)
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Limited {
    Network(IpAddr),
    AddressFrom(String, IpAddr),
    Delivered(String),
}

/// Requests in a sliding window, per key, with a bounded number of keys.
struct Window {
    recent: HashMap<Limited, VecDeque<f64>>,
    width: f64,
}

impl Window {
    fn count(&mut self, key: &Limited, t: f64) -> u32 {
        let width = self.width;
        match self.recent.get_mut(key) {
            Some(q) => {
                while q.front().is_some_and(|at| t - at > width) {
                    q.pop_front();
                }
                q.len() as u32
            }
            None => 0,
        }
    }

    fn record(&mut self, key: Limited, t: f64) {
        if self.recent.len() >= KEYS_MAX && !self.recent.contains_key(&key) {
            let width = self.width;
            self.recent
                .retain(|_, q| q.back().is_some_and(|at| t - at <= width));
            if self.recent.len() >= KEYS_MAX {
                // Still full of live keys: the oldest half goes (a flood from that many
                // networks is stopped by each network's own limit as it comes back).
                let mut lasts: Vec<f64> = self
                    .recent
                    .values()
                    .filter_map(|q| q.back().copied())
                    .collect();
                lasts.sort_by(f64::total_cmp);
                let cut = lasts[lasts.len() / 2];
                self.recent
                    .retain(|_, q| q.back().is_some_and(|at| *at > cut));
            }
        }
        self.recent.entry(key).or_default().push_back(t);
    }
}

struct Challenge {
    email: String,
    /// `None` for addresses not on the allow-list: the reply looks the same, but no code
    /// can ever match.
    code: Option<String>,
    expires: f64,
    network: IpAddr,
}

pub struct Auth {
    challenges: Mutex<HashMap<String, Challenge>>,
    window: Mutex<Window>,
    /// (address, network) pairs that logged in: the delivered-codes cap does not stop them.
    known: Mutex<HashSet<(String, IpAddr)>>,
    operators: Vec<String>,
    validity: u64,
    token_ttl: u64,
    max_requests: u32,
    mail: Box<dyn MailTransport>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("too many code requests; wait a few minutes and try again")]
    TooMany,
    #[error("that is not an e-mail address")]
    BadAddress,
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
            window: Mutex::new(Window {
                recent: HashMap::new(),
                width: config.otp_window_secs as f64,
            }),
            known: Mutex::new(HashSet::new()),
            operators: config
                .operators
                .iter()
                .map(|e| e.trim().to_lowercase())
                .collect(),
            validity: config.otp_validity_secs,
            token_ttl: config.token_ttl_secs,
            max_requests: config.otp_max_requests,
            mail,
        }
    }

    /// Whether the operator may be e-mailed: on the allow-list, checked again on every call
    /// (a removed operator's tokens stop working with the next request).
    pub fn is_operator(&self, email: &str) -> bool {
        self.operators.contains(&email.trim().to_lowercase())
    }

    /// Counts a code request against its limits, or refuses it.
    fn admit(&self, email: &str, client: IpAddr, deliver: bool, t: f64) -> bool {
        let net = network(client);
        let keys = [
            Limited::Network(net),
            Limited::AddressFrom(email.to_owned(), net),
        ];
        let known = self
            .known
            .lock()
            .unwrap()
            .contains(&(email.to_owned(), net));
        let mut window = self.window.lock().unwrap();
        if keys.iter().any(|k| window.count(k, t) >= self.max_requests) {
            return false;
        }
        let delivered = Limited::Delivered(email.to_owned());
        if deliver && !known && window.count(&delivered, t) >= self.max_requests * DELIVERED_FACTOR
        {
            return false;
        }
        for k in keys {
            window.record(k, t);
        }
        if deliver {
            window.record(delivered, t);
        }
        true
    }

    /// Starts a login. Replies alike whether or not the address is allowed.
    pub async fn request_code(
        &self,
        email: &str,
        client: IpAddr,
    ) -> Result<(String, u64), AuthError> {
        let email = email.trim().to_lowercase();
        if email.len() > EMAIL_MAX || !email.contains('@') || email.chars().any(char::is_control) {
            return Err(AuthError::BadAddress);
        }
        let t = now();
        let allowed = self.operators.contains(&email);
        if !self.admit(&email, client, allowed, t) {
            return Err(AuthError::TooMany);
        }
        let challenge = hex::encode(rand::random::<[u8; 16]>());
        let code = if allowed {
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
                network: network(client),
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
        {
            let mut known = self.known.lock().unwrap();
            if known.len() >= KEYS_MAX {
                known.clear();
            }
            known.insert((entry.email.clone(), entry.network));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Default)]
    struct Counted(Arc<AtomicUsize>);

    #[async_trait::async_trait]
    impl MailTransport for Counted {
        async fn send(&self, _to: &str, _subject: &str, _body: &str) -> Result<(), String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn auth() -> (Auth, Arc<AtomicUsize>) {
        let config = ManagerConfig {
            operators: vec!["ops@example.com".into()],
            ..ManagerConfig::default()
        };
        let sent = Arc::new(AtomicUsize::new(0));
        (Auth::new(&config, Box::new(Counted(sent.clone()))), sent)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_flood_from_elsewhere_does_not_stop_the_operators_code() {
        let (auth, sent) = auth();
        // Another network asks for the operator's codes from every address it has.
        let mut refused = 0;
        for i in 1..=200 {
            let from = ip(&format!("198.51.100.{}", i % 250 + 1));
            if auth.request_code("ops@example.com", from).await.is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 195, "one network, one quota");
        // Loopback addresses are one network as well.
        for i in 1..=10 {
            let _ = auth
                .request_code("ops@example.com", ip(&format!("127.0.0.{i}")))
                .await;
        }
        let before = sent.load(Ordering::SeqCst);
        auth.request_code("ops@example.com", ip("203.0.113.7"))
            .await
            .expect("the operator's own request is answered");
        assert_eq!(
            sent.load(Ordering::SeqCst),
            before + 1,
            "and its code is sent"
        );
    }

    #[tokio::test]
    async fn many_networks_cannot_flood_the_operators_mailbox_without_end() {
        let (auth, sent) = auth();
        for n in 0..50 {
            let _ = auth
                .request_code("ops@example.com", ip(&format!("10.{n}.0.1")))
                .await;
        }
        assert_eq!(
            sent.load(Ordering::SeqCst),
            20,
            "codes delivered per window are capped"
        );
    }

    #[tokio::test]
    async fn addresses_are_bounded_and_the_limiter_forgets() {
        let (auth, _) = auth();
        let long = format!("{}@example.com", "a".repeat(1 << 20));
        assert!(matches!(
            auth.request_code(&long, ip("192.0.2.1")).await,
            Err(AuthError::BadAddress)
        ));
        for n in 0..(KEYS_MAX as u32 + 100) {
            let from = IpAddr::V4((n << 8).into());
            let _ = auth.request_code("nobody@example.com", from).await;
        }
        assert!(auth.window.lock().unwrap().recent.len() <= KEYS_MAX + 2);
    }
}
