//! Objects as files under a root directory. Writes go to a temporary file that is renamed
//! into place, so a reader never sees half an object and a crash leaves no partial file
//! under a real key.
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{check_key, MediaUrl, ObjectInfo, ObjectStore, StoreError};

pub struct DirStore {
    root: PathBuf,
}

const TMP_DIR: &str = ".tmp";

impl DirStore {
    pub async fn open(root: PathBuf) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(root.join(TMP_DIR)).await?;
        Ok(DirStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl ObjectStore for DirStore {
    async fn put(&self, key: &str, data: Bytes, _content_type: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(uuid::Uuid::now_v7().simple().to_string());
        let result = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&data).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        Ok(result?)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(data) => Ok(Some(data.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The file itself, streamed: a photo page never holds a whole original in memory.
    async fn open(&self, key: &str) -> Result<Option<super::ObjectReader>, StoreError> {
        match tokio::fs::File::open(self.path(key)?).await {
            Ok(file) => {
                let size = file.metadata().await?.len();
                Ok(Some(super::ObjectReader {
                    size,
                    body: Box::new(file),
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            // Only the directory the prefix names is walked, not the whole store.
            let start = match prefix.rfind('/') {
                Some(end) => root.join(&prefix[..end]),
                None => root.clone(),
            };
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                for entry in entries {
                    let entry = entry?;
                    let meta = entry.metadata()?;
                    let path = entry.path();
                    let rel = path
                        .strip_prefix(&root)
                        .expect("under root")
                        .to_string_lossy()
                        .into_owned();
                    if rel == TMP_DIR {
                        continue;
                    }
                    if meta.is_dir() {
                        stack.push(path);
                    } else if rel.starts_with(&prefix) {
                        out.push(ObjectInfo {
                            key: rel,
                            size: meta.len(),
                            modified: meta.modified().ok(),
                        });
                    }
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    async fn media_url(&self, key: &str, _ttl: Duration) -> Result<MediaUrl, StoreError> {
        check_key(key)?;
        Ok(MediaUrl::ServedByWorker)
    }

    async fn check(&self) -> Result<(), StoreError> {
        let meta = tokio::fs::metadata(self.root.join(TMP_DIR)).await?;
        if meta.permissions().readonly() {
            return Err(StoreError::Backend(format!(
                "{} is read-only",
                self.root.display()
            )));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path().join("objects")).await.unwrap();
        store
            .put("photos/a.jpg", Bytes::from_static(b"abc"), "image/jpeg")
            .await
            .unwrap();
        store
            .put("thumbnails/a.jpg", Bytes::from_static(b"de"), "image/jpeg")
            .await
            .unwrap();
        assert_eq!(
            store.get("photos/a.jpg").await.unwrap().unwrap(),
            Bytes::from_static(b"abc")
        );
        assert_eq!(store.get("photos/missing.jpg").await.unwrap(), None);
        let all = store.list("").await.unwrap();
        let listed: Vec<(&str, u64)> = all.iter().map(|o| (o.key.as_str(), o.size)).collect();
        assert_eq!(listed, vec![("photos/a.jpg", 3), ("thumbnails/a.jpg", 2)]);
        let age = all[0]
            .modified
            .and_then(|m| m.elapsed().ok())
            .expect("a written object has a time");
        assert!(age < std::time::Duration::from_secs(600), "{age:?}");
        assert_eq!(store.list("thumbnails/").await.unwrap().len(), 1);
        store.delete("photos/a.jpg").await.unwrap();
        store.delete("photos/a.jpg").await.unwrap();
        assert_eq!(store.get("photos/a.jpg").await.unwrap(), None);
        assert!(store.put("../escape", Bytes::new(), "x").await.is_err());
        assert!(std::fs::read_dir(dir.path().join("objects/.tmp"))
            .unwrap()
            .next()
            .is_none());
    }
}
