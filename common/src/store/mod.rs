//! Object store: where the photo files live. A local directory by default, or any
//! S3-compatible service. How a photo's objects are named is [`keys`].
mod dir;
pub mod keys;
mod s3;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use dir::DirStore;
pub use s3::S3Store;

use crate::config::{Config, StoreLocation};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store: {0}")]
    Backend(String),
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// When it was last written, as the store tells.
    pub modified: Option<std::time::SystemTime>,
}

/// How a browser gets an object: straight from the store (S3 presigned GET) or through a
/// worker URL that the worker signs itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaUrl {
    Presigned(String),
    ServedByWorker,
}

/// An object's bytes as a reader that can seek (for `Range` requests).
pub trait ObjectRead: tokio::io::AsyncRead + tokio::io::AsyncSeek + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncSeek + Send + Unpin> ObjectRead for T {}

/// An object opened for reading, without holding it in memory where the store allows.
pub struct ObjectReader {
    pub size: u64,
    pub body: Box<dyn ObjectRead>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, key: &str, data: Bytes, content_type: &str) -> Result<(), StoreError>;
    /// `Ok(None)` when the object does not exist.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// The object as a reader; `Ok(None)` when it does not exist. By default read whole.
    async fn open(&self, key: &str) -> Result<Option<ObjectReader>, StoreError> {
        Ok(self.get(key).await?.map(|data| ObjectReader {
            size: data.len() as u64,
            body: Box::new(std::io::Cursor::new(data)),
        }))
    }
    /// Deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every object under `prefix`, with sizes, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;
    async fn media_url(&self, key: &str, ttl: Duration) -> Result<MediaUrl, StoreError>;
    /// Cheap reachability check for health endpoints.
    async fn check(&self) -> Result<(), StoreError>;
    fn describe(&self) -> String;
}

pub type SharedStore = Arc<dyn ObjectStore>;

/// Keys come from our own code, but checking them keeps a bug from ever escaping the
/// store's root on disk.
pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.into()))
    }
}

pub async fn open(config: &Config) -> anyhow::Result<SharedStore> {
    Ok(match config.store_location()? {
        StoreLocation::Dir(path) => Arc::new(DirStore::open(path).await?),
        StoreLocation::S3 { bucket, prefix } => Arc::new(
            S3Store::connect(
                bucket,
                prefix,
                config.s3_endpoint.clone(),
                config.s3_region.clone(),
                Duration::from_secs(config.media_url_ttl_secs),
            )
            .await?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        assert!(check_key("photos/abc.jpg").is_ok());
        for bad in [
            "",
            "../x",
            "photos/../../x",
            "/abs",
            "a//b",
            "a/./b",
            "a b",
            "a\\b",
            "photos/x\n",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
