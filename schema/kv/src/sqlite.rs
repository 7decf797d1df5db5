//! One app's buckets in a SQLite file on the host, with a size quota.
//!
//! Operations run on the calling thread under a mutex: each is one indexed
//! statement on a WAL database (microseconds), cheaper than a hop to a
//! database thread. The bytes in use (keys plus values) are counted once
//! at open and kept up to date by every write, so the quota check costs
//! nothing.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{KvError, LIST_PAGE};

pub struct SqliteKv {
    inner: Mutex<Inner>,
}

struct Inner {
    conn: Connection,
    /// Bytes of keys and values stored.
    used: u64,
}

fn db_err(e: rusqlite::Error) -> KvError {
    KvError::Other(format!("key-value store: {e}"))
}

impl SqliteKv {
    pub fn open(path: &Path) -> Result<SqliteKv, KvError> {
        if let Some(dir) = path.parent() {
            net::create_private_dir(dir)
                .map_err(|e| KvError::Other(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS kv (
                 bucket TEXT NOT NULL,
                 key    TEXT NOT NULL,
                 value  BLOB NOT NULL,
                 PRIMARY KEY (bucket, key)
             ) WITHOUT ROWID;",
        )
        .map_err(db_err)?;
        let used: i64 = conn
            .query_row(
                "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) FROM kv",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        Ok(SqliteKv {
            inner: Mutex::new(Inner {
                conn,
                used: used.max(0) as u64,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes of keys and values stored.
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    pub fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.lock()
            .conn
            .prepare_cached("SELECT value FROM kv WHERE bucket = ?1 AND key = ?2")
            .and_then(|mut q| q.query_row(params![bucket, key], |r| r.get(0)).optional())
            .map_err(db_err)
    }

    pub fn set_many(
        &self,
        bucket: &str,
        pairs: &[(&str, &[u8])],
        max_bytes: u64,
    ) -> Result<(), KvError> {
        let mut g = self.lock();
        let Inner { conn, used } = &mut *g;
        let tx = conn.transaction().map_err(db_err)?;
        let mut after = *used;
        for (k, v) in pairs {
            let old: Option<i64> = tx
                .prepare_cached("SELECT length(value) FROM kv WHERE bucket = ?1 AND key = ?2")
                .and_then(|mut q| q.query_row(params![bucket, k], |r| r.get(0)).optional())
                .map_err(db_err)?;
            let old = old.map(|n| n as u64 + k.len() as u64).unwrap_or(0);
            after = after.saturating_sub(old) + k.len() as u64 + v.len() as u64;
            if after > max_bytes {
                return Err(quota(after, max_bytes));
            }
            tx.prepare_cached("INSERT OR REPLACE INTO kv (bucket, key, value) VALUES (?1, ?2, ?3)")
                .and_then(|mut q| q.execute(params![bucket, k, v]))
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        *used = after;
        Ok(())
    }

    pub fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<(), KvError> {
        let mut g = self.lock();
        let Inner { conn, used } = &mut *g;
        let tx = conn.transaction().map_err(db_err)?;
        let mut freed = 0u64;
        for k in keys {
            let old: Option<i64> = tx
                .prepare_cached("SELECT length(value) FROM kv WHERE bucket = ?1 AND key = ?2")
                .and_then(|mut q| q.query_row(params![bucket, k], |r| r.get(0)).optional())
                .map_err(db_err)?;
            if let Some(n) = old {
                freed += n as u64 + k.len() as u64;
                tx.prepare_cached("DELETE FROM kv WHERE bucket = ?1 AND key = ?2")
                    .and_then(|mut q| q.execute(params![bucket, k]))
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        *used = used.saturating_sub(freed);
        Ok(())
    }

    pub fn list(
        &self,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let from = cursor.unwrap_or(0).min(i64::MAX as u64) as i64;
        let g = self.lock();
        let mut q = g
            .conn
            .prepare_cached("SELECT key FROM kv WHERE bucket = ?1 ORDER BY key LIMIT ?2 OFFSET ?3")
            .map_err(db_err)?;
        let keys: Vec<String> = q
            .query_map(params![bucket, LIST_PAGE as i64 + 1, from], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(db_err)?;
        Ok(if keys.len() > LIST_PAGE {
            let mut keys = keys;
            keys.truncate(LIST_PAGE);
            (keys, Some(from as u64 + LIST_PAGE as u64))
        } else {
            (keys, None)
        })
    }

    pub fn increment(
        &self,
        bucket: &str,
        key: &str,
        delta: u64,
        max_bytes: u64,
    ) -> Result<u64, KvError> {
        let mut g = self.lock();
        let Inner { conn, used } = &mut *g;
        let tx = conn.transaction().map_err(db_err)?;
        let old: Option<Vec<u8>> = tx
            .prepare_cached("SELECT value FROM kv WHERE bucket = ?1 AND key = ?2")
            .and_then(|mut q| q.query_row(params![bucket, key], |r| r.get(0)).optional())
            .map_err(db_err)?;
        let current = match &old {
            None => 0,
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    KvError::Other(format!("the value at {key:?} is not a decimal number"))
                })?,
        };
        let new = current
            .checked_add(delta)
            .ok_or_else(|| KvError::Other(format!("incrementing {key:?} overflows a u64")))?;
        let bytes = new.to_string().into_bytes();
        let old_len = old.map(|v| v.len() as u64 + key.len() as u64).unwrap_or(0);
        let after = used.saturating_sub(old_len) + key.len() as u64 + bytes.len() as u64;
        if after > max_bytes {
            return Err(quota(after, max_bytes));
        }
        tx.prepare_cached("INSERT OR REPLACE INTO kv (bucket, key, value) VALUES (?1, ?2, ?3)")
            .and_then(|mut q| q.execute(params![bucket, key, bytes]))
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        *used = after;
        Ok(new)
    }
}

fn quota(after: u64, max: u64) -> KvError {
    KvError::Other(format!(
        "key-value quota exceeded: the write would store {} KiB, over the app's {} KiB; delete keys or raise [keyvalue] max_mb",
        after.div_ceil(1024),
        max / 1024
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_refuses_a_write_past_it_and_counts_what_deletes_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv/app.sqlite");
        let s = SqliteKv::open(&path).unwrap();
        let v = vec![b'x'; 600];
        s.set_many("default", &[("a", &v)], 1000).unwrap();
        let e = s.set_many("default", &[("b", &v)], 1000).unwrap_err();
        assert!(e.to_string().contains("quota exceeded"), "{e}");
        assert_eq!(s.get("default", "b").unwrap(), None);
        // Replacing a value counts only the difference.
        s.set_many("default", &[("a", &v[..500])], 1000).unwrap();
        s.delete_many("default", &["a".into()]).unwrap();
        assert_eq!(s.used(), 0);
        s.set_many("default", &[("b", &v)], 1000).unwrap();
        assert_eq!(s.increment("default", "n", 5, 1000).unwrap(), 5);
        assert_eq!(s.increment("default", "n", 2, 1000).unwrap(), 7);
        assert!(s.increment("default", "b", 1, 1000).is_err());
        // Buckets are apart; the count survives a reopen.
        assert_eq!(s.get("cache", "n").unwrap(), None);
        let used = s.used();
        drop(s);
        let s = SqliteKv::open(&path).unwrap();
        assert_eq!(s.used(), used);
        assert_eq!(s.get("default", "n").unwrap().as_deref(), Some(&b"7"[..]));
        let (keys, next) = s.list("default", None).unwrap();
        assert_eq!((keys, next), (vec!["b".to_string(), "n".to_string()], None));
    }
}
