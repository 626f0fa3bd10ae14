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

fn backend<E: std::error::Error>(e: E) -> StoreError {
    StoreError::Backend(DisplayErrorContext(e).to_string())
}

impl S3Store {
    pub async fn connect(
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: String,
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
        let presigning = PresigningConfig::expires_in(ttl).map_err(backend)?;
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
