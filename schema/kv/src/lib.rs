//! Apps' key-value stores: what `wasi:keyvalue` (in hostd) and the `kv`
//! command (on a host, or at the gateway for a shared store) read and
//! write. Each app has its own buckets, in one of two backends:
//!
//! - a SQLite file per app on the host (`DATA/kv/APP.sqlite`), which
//!   survives restarts, redeploys and rollbacks, with a size quota
//!   (`[keyvalue] max_mb`, default 64) that refuses writes once full;
//! - a shared Redis (`[keyvalue] url`), namespaced per app, for apps whose
//!   replicas span hosts.
//!
//! Nothing here runs an app: the gateway links this crate and never wasmtime.

mod redis;
mod sqlite;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use schema::manifest::KeyValue;

pub use redis::RedisKv;
pub use sqlite::SqliteKv;

/// Most keys one `list-keys` call returns; a cursor gives the rest.
pub const LIST_PAGE: usize = 1000;
/// Longest key, bytes.
pub const MAX_KEY_BYTES: usize = 4096;

/// Why a key-value operation failed, as the guest (and the `kv` command)
/// sees it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KvError {
    #[error(
        "no bucket {0:?}: an app opens \"default\" and the buckets its manifest lists ([keyvalue] buckets)"
    )]
    NoSuchStore(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Other(String),
}

/// Where one app's buckets live.
#[derive(Clone)]
pub enum KvStore {
    Sqlite(Arc<SqliteKv>),
    Redis(RedisKv),
}

impl KvStore {
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            KvStore::Sqlite(s) => s.get(bucket, key),
            KvStore::Redis(r) => r.get(bucket, key).await,
        }
    }

    /// Sets `key`; a SQLite store refuses a write past `max_bytes`.
    pub async fn set(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
        max_bytes: u64,
    ) -> Result<(), KvError> {
        check_key(key)?;
        match self {
            KvStore::Sqlite(s) => s.set_many(bucket, &[(key, value)], max_bytes),
            KvStore::Redis(r) => r.set_many(bucket, &[(key, value)]).await,
        }
    }

    pub async fn set_many(
        &self,
        bucket: &str,
        pairs: &[(&str, &[u8])],
        max_bytes: u64,
    ) -> Result<(), KvError> {
        for (k, _) in pairs {
            check_key(k)?;
        }
        match self {
            KvStore::Sqlite(s) => s.set_many(bucket, pairs, max_bytes),
            KvStore::Redis(r) => r.set_many(bucket, pairs).await,
        }
    }

    pub async fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<(), KvError> {
        match self {
            KvStore::Sqlite(s) => s.delete_many(bucket, keys),
            KvStore::Redis(r) => r.delete_many(bucket, keys).await,
        }
    }

    /// A page of keys from `cursor` on, and the cursor of the next page.
    pub async fn list(
        &self,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        match self {
            KvStore::Sqlite(s) => s.list(bucket, cursor),
            KvStore::Redis(r) => r.list(bucket, cursor).await,
        }
    }

    /// Adds `delta` to the decimal number at `key` (0 when absent).
    pub async fn increment(
        &self,
        bucket: &str,
        key: &str,
        delta: u64,
        max_bytes: u64,
    ) -> Result<u64, KvError> {
        check_key(key)?;
        match self {
            KvStore::Sqlite(s) => s.increment(bucket, key, delta, max_bytes),
            KvStore::Redis(r) => r.increment(bucket, key, delta).await,
        }
    }

    pub async fn get_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        match self {
            KvStore::Sqlite(s) => keys.iter().map(|k| s.get(bucket, k)).collect(),
            KvStore::Redis(r) => r.get_many(bucket, keys).await,
        }
    }

    /// Runs one `kv` command's operation on `bucket` (the same on a host
    /// and at the gateway): the keys of a `list` and whether more follow,
    /// or the value of a `get` (None: no such key).
    pub async fn run(
        &self,
        bucket: &str,
        op: &schema::command::KvOp,
        max_bytes: u64,
    ) -> Result<(Option<(Vec<String>, bool)>, Option<Vec<u8>>), KvError> {
        use schema::command::KvOp;
        Ok(match op {
            KvOp::List => {
                let (keys, next) = self.list(bucket, None).await?;
                (Some((keys, next.is_some())), None)
            }
            KvOp::Get(k) => (None, self.get(bucket, k).await?),
            KvOp::Set(k, v) => {
                self.set(bucket, k, v.as_bytes(), max_bytes).await?;
                (None, None)
            }
            KvOp::Del(k) => {
                self.delete_many(bucket, std::slice::from_ref(k)).await?;
                (None, None)
            }
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            KvStore::Sqlite(_) => "sqlite",
            KvStore::Redis(_) => "redis",
        }
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::Other(format!(
            "a key of {} bytes is longer than {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

/// Every app's store on this host: SQLite files opened once, Redis
/// connections shared per URL.
pub struct KvStores {
    dir: PathBuf,
    sqlite: Mutex<HashMap<String, Arc<SqliteKv>>>,
    redis: tokio::sync::Mutex<HashMap<String, RedisKv>>,
}

impl KvStores {
    pub fn new(dir: PathBuf) -> KvStores {
        KvStores {
            dir,
            sqlite: Mutex::new(HashMap::new()),
            redis: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The store `app`'s release with `kv` settings uses. With `check`, a
    /// Redis store is pinged now (a deploy: a store that cannot be reached
    /// refuses the release before it serves); without, it connects on
    /// first use (a restart or a rollback: the app starts, its key-value
    /// calls fail until the store is back).
    pub async fn open(&self, app: &str, kv: &KeyValue, check: bool) -> Result<KvStore, KvError> {
        match &kv.url {
            Some(url) => {
                let base = {
                    let mut conns = self.redis.lock().await;
                    conns
                        .entry(url.clone())
                        .or_insert_with(|| RedisKv::new(url))
                        .clone()
                };
                if check {
                    base.check().await?;
                }
                Ok(KvStore::Redis(base.for_app(app)))
            }
            None => {
                let mut open = self.sqlite.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(s) = open.get(app) {
                    return Ok(KvStore::Sqlite(s.clone()));
                }
                let s = Arc::new(SqliteKv::open(&self.dir.join(format!("{app}.sqlite")))?);
                open.insert(app.to_string(), s.clone());
                Ok(KvStore::Sqlite(s))
            }
        }
    }

    /// Forgets `app`'s SQLite store and deletes its file (`rm`).
    pub fn remove(&self, app: &str) {
        self.sqlite
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app);
        for ext in ["sqlite", "sqlite-wal", "sqlite-shm"] {
            let _ = std::fs::remove_file(self.dir.join(format!("{app}.{ext}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_past_its_ceiling_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let stores = KvStores::new(dir.path().join("kv"));
        let store = stores
            .open("app", &KeyValue::default(), true)
            .await
            .unwrap();
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        let e = store
            .set("default", &long, b"v", 1 << 20)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("longer than 4096"), "{e}");
        assert!(store.increment("default", &long, 1, 1 << 20).await.is_err());
        let (keys, _) = store.list("default", None).await.unwrap();
        assert!(keys.is_empty());
    }
}
