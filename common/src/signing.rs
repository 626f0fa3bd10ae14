//! Expiring HMAC signatures for media URLs of the local store (signed by workers, answered by
//! the local balancer or a worker), so a photo URL works only for a few minutes and only for
//! the object it names.
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl UrlSigner {
    /// `secret` is the deployment's secret; a separate key is derived for URL signing so the
    /// cookie key is never used for two purposes.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"gallery media url v1");
        UrlSigner {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, key: &str, expires: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    pub fn sign(&self, key: &str, expires: u64) -> String {
        hex::encode(self.mac(key, expires).finalize().into_bytes())
    }

    /// Constant-time check of the signature, then of the expiry.
    pub fn verify(&self, key: &str, expires: u64, sig: &str, now: u64) -> bool {
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        self.mac(key, expires).verify_slice(&sig).is_ok() && now <= expires
    }
}

/// The deployment's secret as a worker keeps it in `<data_dir>/secret.key` (hex) when none is
/// configured; `None` until the first worker has made it.
pub fn read_secret(path: &std::path::Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => hex::decode(s.trim())
            .map(Some)
            .map_err(|_| format!("{} is not hex", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_binds_key_and_expiry() {
        let s = UrlSigner::new(b"secret");
        let sig = s.sign("photos/a.jpg", 100);
        assert!(s.verify("photos/a.jpg", 100, &sig, 99));
        assert!(s.verify("photos/a.jpg", 100, &sig, 100));
        assert!(!s.verify("photos/a.jpg", 100, &sig, 101), "expired");
        assert!(!s.verify("photos/b.jpg", 100, &sig, 99), "other object");
        assert!(!s.verify("photos/a.jpg", 200, &sig, 99), "extended expiry");
        assert!(!s.verify("photos/a.jpg", 100, "zz", 99));
        assert!(!UrlSigner::new(b"other").verify("photos/a.jpg", 100, &sig, 99));
    }
}
