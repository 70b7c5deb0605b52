//! The S3 backend, through aws-sdk-s3. Credentials come from the standard AWS chain
//! (environment, profile, web identity for IRSA in EKS). With an explicit endpoint (an
//! S3-compatible server such as Garage) requests use path-style addressing.

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{BlobEntry, BlobKey, StoreError};

/// `s3://bucket/prefix` parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

impl S3Location {
    pub fn parse(url: &str) -> Result<S3Location, StoreError> {
        let rest =
            url.strip_prefix("s3://").ok_or_else(|| StoreError::Config(format!("{url:?} is not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(StoreError::Config(format!("{bucket:?} is not a valid bucket name")));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(S3Location { bucket: bucket.to_owned(), prefix })
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    location: S3Location,
    /// The deadline of a whole operation, from the request's start to the body's last byte.
    timeout: Duration,
}

fn unavailable(op: &'static str, error: impl std::fmt::Debug) -> StoreError {
    // The SDK's Display is terse ("service error"); its Debug names the cause.
    let detail = format!("{error:?}");
    StoreError::Unavailable { backend: "s3", op, detail: detail.chars().take(500).collect() }
}

impl S3Store {
    /// A client from the standard AWS configuration chain; `endpoint` (empty for AWS) selects an
    /// S3-compatible server with path-style addressing. `timeout` bounds each operation, retries
    /// included, and the connection set-up.
    pub async fn connect(location: S3Location, endpoint: &str, timeout: Duration) -> S3Store {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let timeouts = TimeoutConfig::builder().connect_timeout(timeout).operation_timeout(timeout).build();
        let mut config = aws_sdk_s3::config::Builder::from(&shared).timeout_config(timeouts);
        if !endpoint.is_empty() {
            config = config.endpoint_url(endpoint).force_path_style(true);
        }
        if shared.region().is_none() {
            // S3-compatible servers need some region for signing; Garage's default is "garage".
            config = config.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        S3Store { client: Client::from_conf(config.build()), location, timeout }
    }

    /// Runs one whole operation under the store's deadline. The SDK's operation timeout ends at
    /// the response headers; a server that stalls while sending the body would hang the request
    /// (and every render coalesced onto it) without this.
    async fn within<T>(
        &self,
        op: &'static str,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(unavailable(op, format!("no complete answer within {:?}", self.timeout))),
        }
    }

    fn object_key(&self, key: &BlobKey) -> String {
        format!("{}{}", self.location.prefix, key.as_str())
    }

    pub(super) async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<(), StoreError> {
        let put = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(self.object_key(key))
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send();
        self.within("put", async { put.await.map(drop).map_err(|e| unavailable("put", e)) }).await
    }

    pub(super) async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, StoreError> {
        let get = self.client.get_object().bucket(&self.location.bucket).key(self.object_key(key)).send();
        self.within("get", async {
            match get.await {
                Ok(output) => {
                    let body = output.body.collect().await.map_err(|e| unavailable("get", e))?;
                    Ok(Some(body.into_bytes()))
                }
                Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
                Err(error) => Err(unavailable("get", error)),
            }
        })
        .await
    }

    pub(super) async fn delete(&self, key: &BlobKey) -> Result<(), StoreError> {
        let delete = self.client.delete_object().bucket(&self.location.bucket).key(self.object_key(key)).send();
        self.within("delete", async { delete.await.map(drop).map_err(|e| unavailable("delete", e)) }).await
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
        self.within("list", self.list_all(prefix)).await
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(format!("{}{prefix}", self.location.prefix))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| unavailable("list", e))?;
            for object in page.contents() {
                let Some(name) = object.key().and_then(|k| k.strip_prefix(&self.location.prefix)) else { continue };
                let Ok(key) = BlobKey::parse(name) else { continue };
                let modified = object
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                entries.push(BlobEntry { key, modified });
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    pub(super) async fn check(&self) -> Result<(), StoreError> {
        let head = self.client.head_bucket().bucket(&self.location.bucket).send();
        self.within("check", async { head.await.map(drop).map_err(|e| unavailable("check", e)) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            S3Location::parse("s3://images").unwrap(),
            S3Location { bucket: "images".into(), prefix: String::new() }
        );
        assert_eq!(
            S3Location::parse("s3://images/prod/a/").unwrap(),
            S3Location { bucket: "images".into(), prefix: "prod/a/".into() }
        );
        assert!(S3Location::parse("https://images").is_err());
        assert!(S3Location::parse("s3://Bad_Bucket").is_err());
    }
}
