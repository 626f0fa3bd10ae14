//! Objects in an S3 bucket (AWS, or any S3-compatible server through `s3_endpoint`).
//! Credentials come from the standard AWS chain; none are ever configured here.
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

use super::{check_key, MediaUrl, ObjectInfo, ObjectStore, StoreError};

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

/// A presigned link works only while the credentials that signed it do: role credentials
/// (an instance's, a task's) last hours and are replaced before they expire, but the SDK keeps
/// using the old ones until 10 s before their end, so a link signed in their last minutes
/// would die minutes early. Credentials are renewed while they still outlast a link by a
/// margin. The cache subtracts up to half of its buffer at random (so a fleet does not renew
/// at once): the buffer is twice the lead that must remain.
fn credentials_cache(link_lifetime: Duration) -> aws_sdk_s3::config::SharedIdentityCache {
    let lead = link_lifetime + Duration::from_secs(30);
    aws_sdk_s3::config::IdentityCache::lazy()
        .buffer_time(lead * 2)
        .build()
}

fn backend<E: std::error::Error>(e: E) -> StoreError {
    StoreError::Backend(DisplayErrorContext(e).to_string())
}

impl S3Store {
    /// `link_lifetime` is how long a presigned link must work (`media_url_ttl_secs`).
    pub async fn connect(
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: String,
        link_lifetime: Duration,
    ) -> Result<Self, StoreError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region));
        if let Some(url) = &endpoint {
            loader = loader.endpoint_url(url);
        }
        let shared = loader.load().await;
        // Custom endpoints (SeaweedFS, MinIO, moto) rarely serve virtual-hosted buckets.
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(endpoint.is_some())
            .identity_cache(credentials_cache(link_lifetime))
            .build();
        let store = S3Store {
            client: Client::from_conf(conf),
            bucket,
            prefix,
        };
        store.ensure_bucket().await?;
        Ok(store)
    }

    async fn ensure_bucket(&self) -> Result<(), StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_not_found())
                    .unwrap_or(false) =>
            {
                self.client
                    .create_bucket()
                    .bucket(&self.bucket)
                    .send()
                    .await
                    .map_err(backend)?;
                Ok(())
            }
            Err(e) => Err(backend(e)),
        }
    }

    fn full_key(&self, key: &str) -> Result<String, StoreError> {
        check_key(key)?;
        Ok(format!("{}{}", self.prefix, key))
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, data: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .content_type(content_type)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let res = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .send()
            .await;
        match res {
            Ok(out) => Ok(Some(
                out.body.collect().await.map_err(backend)?.into_bytes(),
            )),
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_no_such_key())
                    .unwrap_or(false) =>
            {
                Ok(None)
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{}", self.prefix, prefix))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(backend)?;
            for obj in page.contents() {
                if let Some(key) = obj.key() {
                    let key = key.strip_prefix(&self.prefix).unwrap_or(key);
                    let modified = obj
                        .last_modified()
                        .and_then(|t| std::time::SystemTime::try_from(*t).ok());
                    out.push(ObjectInfo {
                        key: key.into(),
                        size: obj.size().unwrap_or(0).max(0) as u64,
                        modified,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn media_url(&self, key: &str, ttl: Duration) -> Result<MediaUrl, StoreError> {
        // The client's clock (the system's, or a test's), which the credentials cache reads
        // too: a presigned request is signed as of its start time.
        let now = self
            .client
            .config()
            .time_source()
            .map(|clock| clock.now())
            .unwrap_or_else(std::time::SystemTime::now);
        let presigning = PresigningConfig::builder()
            .start_time(now)
            .expires_in(ttl)
            .build()
            .map_err(backend)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .presigned(presigning)
            .await
            .map_err(backend)?;
        Ok(MediaUrl::Presigned(req.uri().to_string()))
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "bucket {}: {}",
                    self.bucket,
                    e.code().unwrap_or("unreachable")
                ))
            })?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    use aws_credential_types::provider::{future, ProvideCredentials};
    use aws_credential_types::Credentials;
    use aws_smithy_async::time::TimeSource;

    use super::*;

    #[derive(Debug, Clone)]
    struct Clock(Arc<Mutex<SystemTime>>);

    impl TimeSource for Clock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    /// An instance role as the metadata service serves it: credentials for six hours, their
    /// replacement on offer from a quarter of an hour before they end.
    #[derive(Debug)]
    struct InstanceRole {
        clock: Clock,
        issued: SystemTime,
    }

    impl ProvideCredentials for InstanceRole {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let ends = self.issued + Duration::from_secs(6 * 3600);
            let (key, expiry) = if self.clock.now() < ends - Duration::from_secs(15 * 60) {
                ("AKIDFIRST", ends)
            } else {
                ("AKIDSECOND", ends + Duration::from_secs(6 * 3600))
            };
            future::ProvideCredentials::ready(Ok(Credentials::new(
                key,
                "secret",
                Some("token".into()),
                Some(expiry),
                "instance role",
            )))
        }
    }

    fn signed_by(url: &MediaUrl) -> &str {
        let MediaUrl::Presigned(url) = url else {
            panic!("not presigned: {url:?}")
        };
        let credential = url
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("X-Amz-Credential="))
            .unwrap_or_else(|| panic!("no credential in {url}"));
        credential.split("%2F").next().unwrap()
    }

    #[tokio::test]
    async fn links_are_never_signed_with_credentials_that_end_before_the_link() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = Clock(Arc::new(Mutex::new(issued)));
        let lifetime = Duration::from_secs(300);
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .time_source(clock.clone())
            .credentials_provider(InstanceRole {
                clock: clock.clone(),
                issued,
            })
            .identity_cache(credentials_cache(lifetime))
            .build();
        let store = S3Store {
            client: Client::from_conf(conf),
            bucket: "photos".into(),
            prefix: String::new(),
        };
        let link = || async { store.media_url("a/b.jpg", lifetime).await.unwrap() };
        let at = |t: Duration| *clock.0.lock().unwrap() = issued + t;

        assert_eq!(signed_by(&link().await), "AKIDFIRST");
        at(Duration::from_secs(5 * 3600));
        assert_eq!(
            signed_by(&link().await),
            "AKIDFIRST",
            "an hour left: the credentials outlast the link"
        );
        // Four minutes left, less than a link's five: a link signed with them would die a
        // minute early.
        at(Duration::from_secs(6 * 3600 - 4 * 60));
        assert_eq!(signed_by(&link().await), "AKIDSECOND");
    }
}
