//! Blob storage: the bytes of originals and variants, by key. Two backends with one contract:
//! a local directory (the embedded default) and S3 (AWS, or an S3-compatible server such as
//! Garage). `tests/store_contract.rs` runs the same suite against both.
//!
//! Vocabulary: a *key* is a relative, slash-separated name such as `originals/<sha256>`; keys
//! are validated by [`BlobKey::parse`], so no key can name anything outside the store.
//!
//! Architecture invariant: only this module knows where and how bytes are kept; a `put` is
//! atomic (readers see the whole blob or nothing).

mod local;
mod s3;

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

pub use self::local::LocalStore;
pub use self::s3::{S3Location, S3Store};

/// A validated storage key: 1 to 512 characters of `[a-z0-9._-]` in `/`-separated segments, none
/// of them empty or starting with `.` (so no `..`, and no name of the local store's temporary files).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn parse(key: &str) -> Result<BlobKey, StoreError> {
        let valid_segment = |s: &str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        };
        if key.len() > 512 || !key.split('/').all(valid_segment) {
            return Err(StoreError::InvalidKey(key.to_owned()));
        }
        Ok(BlobKey(key.to_owned()))
    }

    /// `originals/<sha256 hex>`.
    pub fn original(sha256_hex: &str) -> Result<BlobKey, StoreError> {
        BlobKey::parse(&format!("originals/{sha256_hex}"))
    }

    /// `variants/<image id>/<variant key>.<extension>`.
    pub fn variant(image_id: &str, variant_key: &str, extension: &str) -> Result<BlobKey, StoreError> {
        BlobKey::parse(&format!("variants/{image_id}/{variant_key}.{extension}"))
    }

    /// The image id and variant key of a `variants/<image id>/<variant key>.<extension>` key.
    pub fn variant_of(&self) -> Option<(String, String)> {
        let (image_id, file) = self.0.strip_prefix("variants/")?.split_once('/')?;
        let (variant_key, _) = file.split_once('.')?;
        Some((image_id.to_owned(), variant_key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A blob seen by [`BlobStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub key: BlobKey,
    pub modified: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    /// The store could not be reached or answered with an error; the operation may succeed later.
    #[error("{backend} store unavailable during {op}: {detail}")]
    Unavailable { backend: &'static str, op: &'static str, detail: String },
    #[error("invalid storage setting: {0}")]
    Config(String),
}

/// The configured blob store.
#[derive(Debug, Clone)]
pub enum BlobStore {
    Local(LocalStore),
    S3(S3Store),
}

impl BlobStore {
    /// The store a `storage` setting names: `s3://bucket/prefix` (with `s3_endpoint` for an
    /// S3-compatible server), `file://PATH`, or empty for `<data_dir>/blobs`.
    /// Opens the store `storage` names. `timeout` bounds every operation of a remote store, so a
    /// store that stops answering gives an error, not a request that hangs.
    pub async fn open(
        storage: &str,
        s3_endpoint: &str,
        data_dir: &std::path::Path,
        timeout: Duration,
    ) -> Result<BlobStore, StoreError> {
        if storage.starts_with("s3://") {
            let location = S3Location::parse(storage)?;
            Ok(BlobStore::S3(S3Store::connect(location, s3_endpoint, timeout).await))
        } else if let Some(path) = storage.strip_prefix("file://") {
            Ok(BlobStore::Local(LocalStore::open(path).await?))
        } else if storage.is_empty() {
            Ok(BlobStore::Local(LocalStore::open(data_dir.join("blobs")).await?))
        } else {
            Err(StoreError::Config(format!("storage {storage:?} is neither s3://bucket/prefix nor file://PATH")))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            BlobStore::Local(_) => "local",
            BlobStore::S3(_) => "s3",
        }
    }

    /// Stores `bytes` under `key`, replacing any blob there. Atomic.
    pub async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = match self {
            BlobStore::Local(store) => store.put(key, &bytes).await,
            BlobStore::S3(store) => store.put(key, bytes, content_type).await,
        };
        self.observe("put", started);
        result
    }

    /// The blob under `key`, or `None` when there is none.
    pub async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, StoreError> {
        let started = Instant::now();
        let result = match self {
            BlobStore::Local(store) => store.get(key).await,
            BlobStore::S3(store) => store.get(key).await,
        };
        self.observe("get", started);
        result
    }

    /// Removes the blob under `key`; removing a missing blob succeeds.
    pub async fn delete(&self, key: &BlobKey) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = match self {
            BlobStore::Local(store) => store.delete(key).await,
            BlobStore::S3(store) => store.delete(key).await,
        };
        self.observe("delete", started);
        result
    }

    /// Every blob whose key starts with `prefix` (a whole segment path such as `originals/`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
        let started = Instant::now();
        let result = match self {
            BlobStore::Local(store) => store.list(prefix).await,
            BlobStore::S3(store) => store.list(prefix).await,
        };
        self.observe("list", started);
        result
    }

    /// Readiness: the store answers within `timeout`.
    pub async fn check(&self, timeout: Duration) -> Result<(), StoreError> {
        let check = async {
            match self {
                BlobStore::Local(store) => store.check().await,
                BlobStore::S3(store) => store.check().await,
            }
        };
        tokio::time::timeout(timeout, check).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable { backend: self.backend(), op: "check", detail: "timed out".to_owned() })
        })
    }

    fn observe(&self, op: &'static str, started: Instant) {
        metrics::histogram!("pixelmill_store_duration_seconds", "backend" => self.backend(), "op" => op)
            .record(started.elapsed().as_secs_f64());
    }
}
