//! Account credentials: argon2id password hashes and the rules a new account must meet.
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

pub const USERNAME_MAX: usize = 64;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// Checks a username for registration; the message is shown to the person registering.
pub fn validate_username(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("username must not be empty".into());
    }
    if name.chars().count() > USERNAME_MAX {
        return Err(format!(
            "username must be at most {USERNAME_MAX} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("username may contain only letters, digits, '.', '_' and '-'".into());
    }
    Ok(())
}

pub fn validate_password(password: &str, username: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < PASSWORD_MIN {
        return Err(format!(
            "password must be at least {PASSWORD_MIN} characters"
        ));
    }
    if n > PASSWORD_MAX {
        return Err(format!(
            "password must be at most {PASSWORD_MAX} characters"
        ));
    }
    if username.len() >= 3 && password.to_lowercase().contains(&username.to_lowercase()) {
        return Err("password must not contain the username".into());
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(' '))
    {
        return Err("password must not be one repeated character".into());
    }
    Ok(())
}

/// Hashes with argon2id and the crate's default (OWASP-recommended) parameters.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether two secrets are equal, taking the same time wherever they differ (a guess must
/// not learn how many leading bytes it got right).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A hash of a random password, verified against when the user does not exist so that
/// "unknown user" and "wrong password" take the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&uuid::Uuid::now_v7().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trip_uses_argon2id() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("correct horse"), "salted");
    }

    #[test]
    fn username_rules() {
        assert!(validate_username("alice.b-c_1").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username(&"a".repeat(65)).is_err());
        assert!(validate_username("../etc").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("bob\n").is_err());
    }

    #[test]
    fn password_rules() {
        assert!(validate_password("s3cret-pass", "alice").is_ok());
        assert!(validate_password("short", "alice").is_err());
        assert!(validate_password("aaaaaaaaaa", "alice").is_err());
        assert!(validate_password("AliceAlice", "alicealice").is_err());
        assert!(validate_password("my-alice-pw", "alice").is_err());
        assert!(validate_password(&"x1".repeat(65), "alice").is_err());
    }
}

use std::sync::Arc;

/// Credentials verified in the last minute, so that a stream of uploads from one account
/// (a load generator, a phone syncing its camera roll) pays the 19 MiB KDF once a minute
/// instead of per photo, and is still accepted while the database blinks. Keyed by an HMAC
/// of username and password under a key made at start and never stored: the process holds no
/// password and no hash that could be attacked offline. Only successful checks are kept.
pub struct VerifiedCredentials {
    key: [u8; 32],
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Verified, std::time::Instant)>>,
    /// Checks of the same credentials under way: the next one waits for the first, so a
    /// load generator's 48 parallel first uploads cost one KDF (and one throttle slot).
    checking: std::sync::Mutex<std::collections::HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
}

/// What a remembered check found: the account, and which of its password hashes the
/// password matched (a fingerprint of the stored hash, which a password change replaces, so
/// that every worker can tell its memory is stale with one cheap read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub account: u64,
    pub hash: [u8; 32],
}

impl Verified {
    pub fn new(account: u64, stored_hash: &str) -> Self {
        use sha2::Digest;
        Verified {
            account,
            hash: sha2::Sha256::digest(stored_hash.as_bytes()).into(),
        }
    }

    /// Whether `stored_hash` is still the one the password matched.
    pub fn still_matches(&self, stored_hash: &str) -> bool {
        Verified::new(self.account, stored_hash).hash == self.hash
    }
}

/// Held while these credentials are being checked; see [`VerifiedCredentials::check_alone`].
pub struct Checking<'a> {
    owner: &'a VerifiedCredentials,
    id: [u8; 32],
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        let mut checking = self.owner.checking.lock().unwrap();
        // Only this guard and the map hold the lock: nobody else waits, it can go.
        if checking
            .get(&self.id)
            .is_some_and(|m| Arc::strong_count(m) <= 2)
        {
            checking.remove(&self.id);
        }
    }
}

/// Entries kept at most; beyond, expired ones go, and if none has expired, all (each costs
/// one KDF to earn back).
const VERIFIED_MAX: usize = 10_000;

impl VerifiedCredentials {
    pub fn new(ttl: std::time::Duration) -> Self {
        VerifiedCredentials {
            key: rand::random(),
            ttl,
            entries: Default::default(),
            checking: Default::default(),
        }
    }

    fn id(&self, username: &str, password: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(username.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// What these credentials were verified as, if within the last `ttl`.
    pub fn get(&self, username: &str, password: &str) -> Option<Verified> {
        let id = self.id(username, password);
        let mut entries = self.entries.lock().unwrap();
        match entries.get(&id) {
            Some(&(verified, at)) if at.elapsed() < self.ttl => Some(verified),
            Some(_) => {
                entries.remove(&id);
                None
            }
            None => None,
        }
    }

    /// Waits until no other check of these credentials is under way, then holds them until
    /// the returned guard is dropped; look in the cache again after.
    pub async fn check_alone(&self, username: &str, password: &str) -> Checking<'_> {
        let id = self.id(username, password);
        let lock = self.checking.lock().unwrap().entry(id).or_default().clone();
        Checking {
            owner: self,
            id,
            _guard: lock.lock_owned().await,
        }
    }

    /// These credentials were found good again (their account's hash is still the one they
    /// matched): remembered from now, so that an outage of the database starts a stream's
    /// `ttl` afresh rather than where its last KDF left it.
    pub fn confirm(&self, username: &str, password: &str) {
        let id = self.id(username, password);
        if let Some((_, at)) = self.entries.lock().unwrap().get_mut(&id) {
            *at = std::time::Instant::now();
        }
    }

    pub fn put(&self, username: &str, password: &str, verified: Verified) {
        let id = self.id(username, password);
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= VERIFIED_MAX {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= VERIFIED_MAX {
                entries.clear();
            }
        }
        entries.insert(id, (verified, std::time::Instant::now()));
    }

    /// The account is gone: its credentials stop working here at once.
    pub fn forget_account(&self, account: u64) {
        self.entries
            .lock()
            .unwrap()
            .retain(|_, (v, _)| v.account != account);
    }
}

#[cfg(test)]
mod verified_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_confirmed_entry_is_remembered_from_its_confirmation() {
        let cache = VerifiedCredentials::new(Duration::from_millis(300));
        cache.put("ann", "secret-pass", Verified::new(7, "h"));
        std::thread::sleep(Duration::from_millis(200));
        cache.confirm("ann", "secret-pass");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            cache.get("ann", "secret-pass").is_some(),
            "300 ms from the confirmation"
        );
        cache.confirm("bob", "other");
        assert!(
            cache.get("bob", "other").is_none(),
            "confirming adds nothing"
        );
    }

    #[test]
    fn only_the_same_name_and_password_within_the_ttl_are_remembered() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60));
        cache.put("ann", "secret-pass", Verified::new(7, "h"));
        assert_eq!(cache.get("ann", "secret-pass").map(|v| v.account), Some(7));
        assert_eq!(cache.get("ann", "secret-pas"), None, "another password");
        assert_eq!(
            cache.get("an", "nsecret-pass"),
            None,
            "the boundary between name and password counts"
        );
        cache.forget_account(7);
        assert_eq!(
            cache.get("ann", "secret-pass"),
            None,
            "a deleted account's credentials stop at once"
        );

        let short = VerifiedCredentials::new(Duration::ZERO);
        short.put("ann", "secret-pass", Verified::new(7, "h"));
        assert_eq!(short.get("ann", "secret-pass"), None, "expired");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60));
        for i in 0..(VERIFIED_MAX as u64 + 10) {
            cache.put(&format!("user{i}"), "pw", Verified::new(i, "h"));
        }
        assert!(cache.entries.lock().unwrap().len() <= VERIFIED_MAX);
    }
}
