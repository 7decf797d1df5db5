//! Apps' buckets in a shared Redis (or Valkey): what replicas on several
//! hosts need to see one state. Keys are namespaced
//! `cranefleet:APP:BUCKET:KEY`, so apps sharing a server never meet.
//!
//! One reconnecting connection per URL serves every app on the host. When
//! the server goes away, operations fail at once with the reason (the app
//! sees a `wasi:keyvalue` error; hostd and the app's other work go on) and
//! the connection is re-established when the server returns.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{KvError, LIST_PAGE};

/// How long connecting, and one command, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct RedisKv {
    url: std::sync::Arc<str>,
    /// Connected on first use, and again after a failed first connect: a
    /// store down when hostd starts costs its apps errors, not their start.
    conn: std::sync::Arc<tokio::sync::OnceCell<ConnectionManager>>,
    /// The URL with any password taken out, for messages.
    shown: String,
    /// `cranefleet:APP:` once bound to an app.
    prefix: String,
}

impl RedisKv {
    /// A store at `url`, connected on first use.
    pub fn new(url: &str) -> RedisKv {
        RedisKv {
            url: url.into(),
            conn: Default::default(),
            shown: schema::render::mask_url_password(url),
            prefix: String::new(),
        }
    }

    /// Connects to `url` and pings it: an unreachable server is an error
    /// now (a deploy), not at the app's first request.
    pub async fn connect(url: &str) -> Result<RedisKv, KvError> {
        let kv = RedisKv::new(url);
        kv.check().await?;
        Ok(kv)
    }

    /// Pings the server.
    pub async fn check(&self) -> Result<(), KvError> {
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| {
            KvError::Other(format!(
                "cannot reach the key-value store at {}: {e}; start it, or fix [keyvalue] url (--keyvalue-url)",
                self.shown
            ))
        })?;
        Ok(())
    }

    async fn conn(&self) -> Result<ConnectionManager, KvError> {
        let shown = &self.shown;
        let unreachable = |e: String| {
            KvError::Other(format!(
                "cannot reach the key-value store at {shown}: {e}; start it, or fix [keyvalue] url (--keyvalue-url)"
            ))
        };
        self.conn
            .get_or_try_init(|| async {
                let client = redis::Client::open(self.url.as_ref())
                    .map_err(|e| unreachable(e.to_string()))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(2)
                    .set_max_delay(500);
                tokio::time::timeout(
                    CONNECT_TIMEOUT * 3,
                    ConnectionManager::new_with_config(client, config),
                )
                .await
                .map_err(|_| {
                    unreachable(format!(
                        "no answer in {} s",
                        (CONNECT_TIMEOUT * 3).as_secs()
                    ))
                })?
                .map_err(|e| unreachable(e.to_string()))
            })
            .await
            .cloned()
    }

    /// The same connection, with `app`'s namespace.
    pub fn for_app(&self, app: &str) -> RedisKv {
        RedisKv {
            url: self.url.clone(),
            conn: self.conn.clone(),
            shown: self.shown.clone(),
            prefix: format!("cranefleet:{app}:"),
        }
    }

    fn key(&self, bucket: &str, key: &str) -> String {
        format!("{}{bucket}:{key}", self.prefix)
    }

    fn err(&self, e: redis::RedisError) -> KvError {
        KvError::Other(format!("key-value store at {}: {e}", self.shown))
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut c = self.conn().await?;
        c.get(self.key(bucket, key)).await.map_err(|e| self.err(e))
    }

    pub async fn get_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let ks: Vec<String> = keys.iter().map(|k| self.key(bucket, k)).collect();
        redis::cmd("MGET")
            .arg(ks)
            .query_async(&mut c)
            .await
            .map_err(|e| self.err(e))
    }

    pub async fn set_many(&self, bucket: &str, pairs: &[(&str, &[u8])]) -> Result<(), KvError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let items: Vec<(String, &[u8])> = pairs
            .iter()
            .map(|(k, v)| (self.key(bucket, k), *v))
            .collect();
        c.mset::<_, _, ()>(&items).await.map_err(|e| self.err(e))
    }

    pub async fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let ks: Vec<String> = keys.iter().map(|k| self.key(bucket, k)).collect();
        c.del::<_, ()>(ks).await.map_err(|e| self.err(e))
    }

    pub async fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, KvError> {
        let delta = i64::try_from(delta)
            .map_err(|_| KvError::Other(format!("an increment of {delta} is past i64")))?;
        let mut c = self.conn().await?;
        let n: i64 = c
            .incr(self.key(bucket, key), delta)
            .await
            .map_err(|e| self.err(e))?;
        u64::try_from(n).map_err(|_| KvError::Other(format!("{key:?} is negative ({n})")))
    }

    /// A page of keys: the Redis SCAN cursor is ours.
    pub async fn list(
        &self,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let mut c = self.conn().await?;
        let pattern = format!("{}*", escape_glob(&self.key(bucket, "")));
        let strip = self.key(bucket, "").len();
        let mut keys = Vec::new();
        let mut cur = cursor.unwrap_or(0);
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cur)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(LIST_PAGE)
                .query_async(&mut c)
                .await
                .map_err(|e| self.err(e))?;
            keys.extend(
                page.into_iter()
                    .map(|k| k[strip.min(k.len())..].to_string()),
            );
            cur = next;
            if cur == 0 || keys.len() >= LIST_PAGE {
                break;
            }
        }
        Ok((keys, (cur != 0).then_some(cur)))
    }
}

/// Escapes Redis glob characters, so a key prefix matches only itself.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(
            schema::render::mask_url_password("redis://:hunter2@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(
            schema::render::mask_url_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(escape_glob("a*b[c]"), "a\\*b\\[c\\]");
    }
}
