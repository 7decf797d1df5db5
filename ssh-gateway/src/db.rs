//! SQLite on its own thread (the gateway's copy of hostd's pattern: the
//! programs share only `schema`, and this is I/O).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use schema::migrations::Migration;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this gateway knows ({known}); run the newer ssh-gateway or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the database thread has stopped")]
    Gone,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One SQLite database on its own thread; closures run in order.
#[derive(Clone)]
pub struct Db {
    tx: mpsc::Sender<Job>,
}

impl Db {
    pub fn open(path: &Path, migrations: &'static [Migration]) -> Result<Db, DbError> {
        let err = |source| DbError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(err)?;
        let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = migrations.last().map(|m| m.version).unwrap_or(0);
        if current > known {
            return Err(DbError::TooNew {
                path: path.to_path_buf(),
                found: current,
                known,
            });
        }
        for m in migrations.iter().filter(|m| m.version > current) {
            let tx = conn.transaction()?;
            tx.execute_batch(m.sql)?;
            tx.pragma_update(None, "user_version", m.version)?;
            tx.commit()?;
        }
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("db-gateway".into())
            .spawn(move || {
                for job in rx {
                    job(&mut conn);
                }
            })
            .map_err(|e| DbError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Db { tx })
    }

    pub async fn call<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, rusqlite::Error> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |c| {
                let _ = reply.send(f(c));
            }))
            .map_err(|_| DbError::Gone)?;
        Ok(rx.await.map_err(|_| DbError::Gone)??)
    }

    pub fn call_blocking<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, rusqlite::Error> + Send + 'static,
    {
        let (reply, rx) = mpsc::channel();
        self.tx
            .send(Box::new(move |c| {
                let _ = reply.send(f(c));
            }))
            .map_err(|_| DbError::Gone)?;
        Ok(rx.recv().map_err(|_| DbError::Gone)??)
    }
}
