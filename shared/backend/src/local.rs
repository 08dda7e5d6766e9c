use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use strata_core::ObjectId;
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::{Backend, BackendError, BlobHead, BlobMeta, ByteStream};

const READ_CHUNK: usize = 256 * 1024;

/// Object bytes as files under one directory: `objects/ab/cd/<id>`. Writes go to
/// `tmp/`, are fsynced, then renamed into place, so a crash never exposes a
/// partial object.
pub struct LocalDisk {
    id: String,
    root: PathBuf,
}

impl LocalDisk {
    pub async fn open(id: String, root: PathBuf) -> io::Result<LocalDisk> {
        fs::create_dir_all(root.join("tmp")).await?;
        fs::create_dir_all(root.join("objects")).await?;
        // Temp files left by a crash are never referenced by the catalog.
        let mut rd = fs::read_dir(root.join("tmp")).await?;
        while let Some(e) = rd.next_entry().await? {
            let _ = fs::remove_file(e.path()).await;
        }
        Ok(LocalDisk { id, root })
    }

    /// Maps a key to its file. Only ids made by the control plane are accepted,
    /// so no key can name a path outside the data directory.
    fn path_of(&self, key: &str) -> Result<PathBuf, BackendError> {
        let id = ObjectId::parse(key).map_err(|_| BackendError::InvalidKey)?;
        let s = id.as_str();
        Ok(self.root.join("objects").join(&s[0..2]).join(&s[2..4]).join(s))
    }
}

/// `<object>.meta`: the blob's catalog facts, one `key=value` per line with
/// percent-encoded values. Written (durably) before the object is renamed into
/// place, so a visible object always has its facts.
fn sidecar(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".meta");
    p.into()
}

fn decode_sidecar(raw: &[u8]) -> BlobMeta {
    String::from_utf8_lossy(raw)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), crate::meta::decode(v)))
        .collect()
}

impl LocalDisk {
    async fn write_sidecar(&self, dest: &Path, meta: &BlobMeta) -> io::Result<()> {
        if meta.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for (k, v) in meta {
            text.push_str(k);
            text.push('=');
            text.push_str(&crate::meta::encode(v));
            text.push('\n');
        }
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().simple().to_string());
        let mut file = fs::File::create(&tmp).await?;
        file.write_all(text.as_bytes()).await?;
        file.sync_all().await?;
        drop(file);
        fs::rename(&tmp, sidecar(dest)).await
    }
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir).await?.sync_all().await
}

#[async_trait]
impl Backend for LocalDisk {
    fn id(&self) -> &str {
        &self.id
    }

    async fn put(&self, key: &str, meta: &BlobMeta, mut body: ByteStream) -> Result<u64, BackendError> {
        let dest = self.path_of(key)?;
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().simple().to_string());
        let mut file = fs::File::create(&tmp).await.map_err(BackendError::Io)?;
        let mut written = 0u64;
        let result: Result<(), BackendError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(BackendError::Body)?;
                file.write_all(&chunk).await.map_err(BackendError::Io)?;
                written += chunk.len() as u64;
            }
            file.sync_all().await.map_err(BackendError::Io)?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp).await;
            return Err(e);
        }
        let parent = dest.parent().expect("object path has a parent");
        fs::create_dir_all(parent).await.map_err(BackendError::Io)?;
        if let Err(e) = self.write_sidecar(&dest, meta).await {
            let _ = fs::remove_file(&tmp).await;
            return Err(BackendError::Io(e));
        }
        fs::rename(&tmp, &dest).await.map_err(BackendError::Io)?;
        sync_dir(parent).await.map_err(BackendError::Io)?;
        Ok(written)
    }

    async fn get(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BackendError> {
        let path = self.path_of(key)?;
        let mut file = fs::File::open(&path).await.map_err(not_found_or_io)?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset)).await.map_err(BackendError::Io)?;
        }
        let stream = ReaderStream::with_capacity(file.take(len), READ_CHUNK);
        Ok(Box::pin(stream))
    }

    async fn head(&self, key: &str) -> Result<BlobHead, BackendError> {
        let path = self.path_of(key)?;
        let size = fs::metadata(&path).await.map_err(not_found_or_io)?.len();
        let meta = match fs::read(sidecar(&path)).await {
            Ok(raw) => decode_sidecar(&raw),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BlobMeta::new(),
            Err(e) => return Err(BackendError::Io(e)),
        };
        Ok(BlobHead { size, meta })
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackendError::Io(e)),
        }
        match fs::remove_file(sidecar(&path)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BackendError::Io(e)),
        }
    }

    async fn list_page(&self, after: &str, limit: u32) -> Result<Vec<crate::ListedBlob>, BackendError> {
        crate::listing::list_local(&self.root, after, limit)
            .await
            .map_err(BackendError::Io)
    }

    async fn check(&self) -> Result<(), BackendError> {
        let probe = self.root.join("tmp").join(".probe");
        fs::write(&probe, b"ok").await.map_err(BackendError::Io)?;
        fs::remove_file(&probe).await.map_err(BackendError::Io)
    }
}

fn not_found_or_io(e: io::Error) -> BackendError {
    if e.kind() == io::ErrorKind::NotFound {
        BackendError::NotFound
    } else {
        BackendError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::stream;

    fn body(parts: Vec<io::Result<Bytes>>) -> ByteStream {
        Box::pin(stream::iter(parts))
    }

    async fn read_all(s: ByteStream) -> Vec<u8> {
        s.map(|c| c.unwrap().to_vec()).concat().await
    }

    #[tokio::test]
    async fn put_get_range_delete() {
        let dir = std::env::temp_dir().join(format!("strata-local-{}", uuid::Uuid::new_v4()));
        let disk = LocalDisk::open("d".into(), dir.clone()).await.unwrap();
        let key = ObjectId::random().to_string();
        let tags = BlobMeta::from([("key".to_owned(), "a=b\nc ü".to_owned())]);
        let n = disk
            .put(
                &key,
                &tags,
                body(vec![
                    Ok(Bytes::from_static(b"hello ")),
                    Ok(Bytes::from_static(b"world")),
                ]),
            )
            .await
            .unwrap();
        assert_eq!(n, 11);
        assert_eq!(disk.head(&key).await.unwrap(), BlobHead { size: 11, meta: tags });
        assert_eq!(read_all(disk.get(&key, 0, 11).await.unwrap()).await, b"hello world");
        assert_eq!(read_all(disk.get(&key, 6, 3).await.unwrap()).await, b"wor");
        disk.delete(&key).await.unwrap();
        assert!(matches!(disk.head(&key).await, Err(BackendError::NotFound)));
        assert!(
            !sidecar(&disk.path_of(&key).unwrap()).exists(),
            "the sidecar goes with the blob"
        );
        disk.delete(&key).await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn failed_stream_leaves_nothing_and_bad_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("strata-local-{}", uuid::Uuid::new_v4()));
        let disk = LocalDisk::open("d".into(), dir.clone()).await.unwrap();
        let key = ObjectId::random().to_string();
        let err = disk
            .put(
                &key,
                &BlobMeta::from([("v".to_owned(), "1".to_owned())]),
                body(vec![Ok(Bytes::from_static(b"x")), Err(io::Error::other("cut"))]),
            )
            .await;
        assert!(matches!(err, Err(BackendError::Body(_))));
        assert!(matches!(disk.head(&key).await, Err(BackendError::NotFound)));
        assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        for bad in ["../../etc/passwd", "/abs", "a/b", ""] {
            assert!(matches!(
                disk.put(bad, &BlobMeta::new(), body(vec![])).await,
                Err(BackendError::InvalidKey)
            ));
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
