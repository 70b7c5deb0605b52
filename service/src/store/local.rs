//! The local-directory backend: one file per key below a root directory. A put writes a
//! temporary file in the same directory and renames it over the key, so a crash leaves either
//! the old blob, the new one, or a `.tmp-*` file that `list` ignores and `gc` may remove.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{BlobEntry, BlobKey, StoreError};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

fn unavailable(op: &'static str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable { backend: "local", op, detail: error.to_string() }
}

impl LocalStore {
    /// A store rooted at `root`, created if missing.
    pub async fn open(root: impl Into<PathBuf>) -> Result<LocalStore, StoreError> {
        let root = root.into();
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", root.display())))?;
        Ok(LocalStore { root })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // BlobKey guarantees relative segments without `..`: the path stays below the root.
        self.root.join(key.as_str())
    }

    pub(super) async fn put(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(dir).await.map_err(|e| unavailable("put", e))?;
        let temp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let write = async {
            tokio::fs::write(&temp, bytes).await?;
            tokio::fs::rename(&temp, &path).await
        };
        if let Err(error) = write.await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(unavailable("put", error));
        }
        Ok(())
    }

    pub(super) async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, StoreError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("get", e)),
        }
    }

    pub(super) async fn delete(&self, key: &BlobKey) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable("delete", e)),
        }
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut entries = Vec::new();
            walk(&root, &root, &mut entries)?;
            entries.retain(|e: &BlobEntry| e.key.as_str().starts_with(&prefix));
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(entries)
        })
        .await
        .map_err(|e| unavailable("list", e))?
    }

    pub(super) async fn check(&self) -> Result<(), StoreError> {
        let metadata = tokio::fs::metadata(&self.root).await.map_err(|e| unavailable("check", e))?;
        if metadata.is_dir() { Ok(()) } else { Err(unavailable("check", "root is not a directory")) }
    }
}

fn walk(root: &Path, dir: &Path, entries: &mut Vec<BlobEntry>) -> Result<(), StoreError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unavailable("list", e)),
    };
    for entry in read {
        let entry = entry.map_err(|e| unavailable("list", e))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| unavailable("list", e))?;
        if file_type.is_dir() {
            walk(root, &path, entries)?;
        } else if file_type.is_file() {
            let Some(relative) = path.strip_prefix(root).ok().and_then(Path::to_str) else { continue };
            // Temporary files of unfinished puts, and anything else that is not a key, are skipped.
            let Ok(key) = BlobKey::parse(relative) else { continue };
            let modified = entry.metadata().and_then(|m| m.modified()).map_err(|e| unavailable("list", e))?;
            entries.push(BlobEntry { key, modified });
        }
    }
    Ok(())
}
