//! Every cranefleet database, reached from a dedicated thread: SQLite
//! (`hostd.db`, `logs.db`, `gateway.db`) and, for the gateway, PostgreSQL.
//!
//! A database connection blocks; async tasks must not. Each [`Db`]
//! (SQLite, rusqlite's API) and each [`SqlDb`] (either backend, through
//! the one query layer [`sql`]) owns one connection on its own thread and
//! runs closures sent to it in order, so writes to one database are
//! serialised without locks in our code. Opening a database brings its
//! schema forward with the migrations of [`schema::migrations`] (spelt for
//! PostgreSQL by [`pg`]), and refuses one written by a newer program.
//!
//! The typed queries that `hostd.db` and `gateway.db` share (the same
//! tables, the same columns) live here once: [`releases`] (apps and their
//! releases), [`audit`] and [`canaries`]. Each program's store adds what
//! only it keeps.

pub mod audit;
pub mod canaries;
pub mod pg;
pub mod pg_tls;
pub mod releases;
pub mod secrets;
pub mod sql;

pub use sql::{Row, Sql, SqlError, Target, Value};

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use schema::migrations::Schema;
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
        "database {path} has schema version {found}, newer than this {program} knows ({known}); run the newer {program} or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        program: &'static str,
        found: u32,
        known: u32,
    },
    #[error("migration {version} ({name}) of {path} failed: {source}")]
    Migration {
        path: PathBuf,
        version: u32,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {path} is {what}, but {state} holds this daemon's state; nothing was started and nothing was deleted: restore the database from a backup, or move the data directory aside to start afresh"
    )]
    Damaged {
        path: PathBuf,
        /// `empty (0 bytes)`, `missing`, `not a SQLite database`.
        what: &'static str,
        state: PathBuf,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Query(#[from] SqlError),
    #[error(
        "cannot reach PostgreSQL at {target}: {source}; check the URL, that the server runs and lets this user in"
    )]
    Connect {
        target: Target,
        #[source]
        source: SqlError,
    },
    #[error("migration {version} ({name}) of {target} failed: {source}")]
    MigrationPg {
        target: Target,
        version: u32,
        name: &'static str,
        #[source]
        source: SqlError,
    },
    #[error("the database thread has stopped")]
    Gone,
}

/// One connection (`C`) on its own thread, running the closures sent to
/// it in order: what [`Db`] and [`SqlDb`] are made of.
struct Worker<C: ?Sized + 'static> {
    tx: mpsc::Sender<Job<C>>,
}

/// A closure run on a worker's connection.
type Job<C> = Box<dyn FnOnce(&mut C) + Send>;

impl<C: ?Sized + 'static> Clone for Worker<C> {
    fn clone(&self) -> Self {
        Worker {
            tx: self.tx.clone(),
        }
    }
}

impl<C: ?Sized + 'static> Worker<C> {
    /// Starts the thread `name` and opens the connection there (a
    /// PostgreSQL client runs a runtime of its own on it, which a caller
    /// inside tokio could not); returns once it is open, or why not.
    fn start(
        name: String,
        open: impl FnOnce() -> Result<Box<C>, DbError> + Send + 'static,
    ) -> Result<Worker<C>, DbError> {
        let (tx, rx) = mpsc::channel::<Job<C>>();
        let (opened_tx, opened) = mpsc::channel::<Result<(), DbError>>();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut conn = match open() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                let _ = opened_tx.send(Ok(()));
                for job in rx {
                    job(&mut conn);
                }
            })
            .map_err(|e| {
                DbError::Query(SqlError::Invalid(format!(
                    "cannot start the database thread: {e}"
                )))
            })?;
        opened.recv().map_err(|_| DbError::Gone)??;
        Ok(Worker { tx })
    }

    async fn call<R, E, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        E: Into<DbError> + Send + 'static,
        F: FnOnce(&mut C) -> Result<R, E> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |c| {
                let _ = reply.send(f(c));
            }))
            .map_err(|_| DbError::Gone)?;
        rx.await.map_err(|_| DbError::Gone)?.map_err(Into::into)
    }

    fn call_blocking<R, E, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        E: Into<DbError> + Send + 'static,
        F: FnOnce(&mut C) -> Result<R, E> + Send + 'static,
    {
        let (reply, rx) = mpsc::channel();
        self.tx
            .send(Box::new(move |c| {
                let _ = reply.send(f(c));
            }))
            .map_err(|_| DbError::Gone)?;
        rx.recv().map_err(|_| DbError::Gone)?.map_err(Into::into)
    }
}

/// A handle to one SQLite database on its own thread. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    worker: Worker<Connection>,
}

/// How much durability a database needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a committed release survives a power cut.
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, may lose the last
    /// transactions on power loss. Right for logs, where throughput matters.
    Normal,
}

/// Refuses to start from a database that is missing, empty or not a SQLite
/// file while `state` shows the daemon has run here before (its artifacts,
/// its compiled code, its host key, the database's own WAL). A fresh data
/// directory passes; so do files an operator keeps there.
pub fn check_state(path: &Path, state: &[PathBuf]) -> Result<(), DbError> {
    let what = match std::fs::read(path).map(|b| b.get(..16).map(<[u8]>::to_vec)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing",
        Err(_) => "unreadable",
        Ok(None) if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) => "empty (0 bytes)",
        Ok(None) => "not a SQLite database",
        Ok(Some(head)) if head != b"SQLite format 3\0" => "not a SQLite database",
        Ok(Some(_)) => return Ok(()),
    };
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let holds = |p: &Path| match std::fs::read_dir(p) {
        Ok(mut entries) => entries.next().is_some(),
        Err(_) => p.is_file() && std::fs::metadata(p).is_ok_and(|m| m.len() > 0),
    };
    match std::iter::once(&wal).chain(state).find(|p| holds(p)) {
        Some(state) => Err(DbError::Damaged {
            path: path.to_path_buf(),
            what,
            state: state.clone(),
        }),
        None => Ok(()),
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path`, brings its schema
    /// up to date with `migrations`, and starts its thread.
    pub fn open(path: &Path, migrations: Schema, durability: Durability) -> Result<Db, DbError> {
        let name = format!(
            "db-{}",
            path.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("sqlite")
        );
        let path = path.to_path_buf();
        let worker = Worker::start(name, move || {
            let mut conn = open_connection(&path, durability)?;
            migrate(&mut conn, &path, migrations)?;
            Ok(Box::new(conn))
        })?;
        Ok(Db { worker })
    }

    /// Runs `f` on the database thread and returns its result.
    /// The closure answers in rusqlite's error or in [`SqlError`] (the
    /// queries shared with the gateway's store).
    pub async fn call<R, E, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        E: Into<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    {
        self.worker.call(f).await
    }

    /// Like [`Db::call`], for callers that are not async (startup, tests).
    pub fn call_blocking<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, rusqlite::Error> + Send + 'static,
    {
        self.worker.call_blocking(f)
    }
}

/// A handle to a store of either backend ([`Target`]): one connection on
/// its own thread, running the closures sent to it in order, as [`Db`]
/// does for SQLite alone. The closures see the connection as [`Sql`], so
/// the queries they run are the same on both. Cheap to clone.
#[derive(Clone)]
pub struct SqlDb {
    worker: Worker<dyn Sql>,
    target: std::sync::Arc<Target>,
}

impl SqlDb {
    /// Opens the store at `target` (creating a SQLite file if needed),
    /// brings its schema up to date with `migrations`, and starts its
    /// thread. On PostgreSQL the migrations are SQLite's, spelt for it
    /// ([`pg::postgres_ddl`]), applied under an advisory lock so that two
    /// gateways starting together migrate once.
    pub fn open(
        target: &Target,
        migrations: Schema,
        durability: Durability,
    ) -> Result<SqlDb, DbError> {
        let t = target.clone();
        let worker = Worker::start(format!("db-{}", migrations.program), move || {
            open_sql(&t, migrations, durability)
        })?;
        Ok(SqlDb {
            worker,
            target: std::sync::Arc::new(target.clone()),
        })
    }

    /// Where this store lives.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs `f` on the database thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<R, SqlError> + Send + 'static,
    {
        self.worker
            .call(move |c: &mut (dyn Sql + 'static)| f(&*c))
            .await
    }

    /// Like [`SqlDb::call`], for callers that are not async (startup, tests).
    pub fn call_blocking<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<R, SqlError> + Send + 'static,
    {
        self.worker
            .call_blocking(move |c: &mut (dyn Sql + 'static)| f(&*c))
    }
}

fn open_sql(
    target: &Target,
    migrations: Schema,
    durability: Durability,
) -> Result<Box<dyn Sql>, DbError> {
    Ok(match target {
        Target::Sqlite(path) => {
            let mut conn = open_connection(path, durability)?;
            migrate(&mut conn, path, migrations)?;
            Box::new(conn)
        }
        Target::Postgres(url) => {
            let pg = pg::Postgres::connect(url).map_err(|source| DbError::Connect {
                target: target.clone(),
                source,
            })?;
            migrate_postgres(&pg, target, migrations)?;
            Box::new(pg)
        }
    })
}

/// The advisory lock key under which PostgreSQL migrations run ("cfmg").
const MIGRATION_LOCK: i64 = 0x6366_6d67;

/// Applies, in one transaction under an advisory lock, the migrations a
/// PostgreSQL database has not had; its version is kept in
/// `cranefleet_schema` (SQLite keeps it in `user_version`).
fn migrate_postgres(c: &pg::Postgres, target: &Target, migrations: Schema) -> Result<(), DbError> {
    let known = migrations.latest();
    let program = migrations.program;
    let current = sql::transaction(c, |c| {
        c.execute("SELECT pg_advisory_xact_lock(?1)", args![MIGRATION_LOCK])?;
        c.batch(
            "CREATE TABLE IF NOT EXISTS cranefleet_schema (program TEXT PRIMARY KEY, version BIGINT NOT NULL)",
        )?;
        let current: u32 = c
            .query_opt(
                "SELECT version FROM cranefleet_schema WHERE program = ?1",
                args![program],
            )?
            .map(|r| r.get(0))
            .transpose()?
            .unwrap_or(0);
        if current > known {
            return Ok(current);
        }
        for m in migrations.steps.iter().filter(|m| m.version > current) {
            c.batch(&pg::postgres_ddl(m.sql)).map_err(|e| {
                SqlError::Invalid(format!("migration {} ({}): {e}", m.version, m.name))
            })?;
            c.execute(
                "INSERT INTO cranefleet_schema (program, version) VALUES (?1, ?2)
                 ON CONFLICT (program) DO UPDATE SET version = excluded.version",
                args![program, m.version],
            )?;
            tracing::debug!(db = %target, version = m.version, name = m.name, "applied migration");
        }
        Ok(current)
    })
    .map_err(|source| DbError::MigrationPg {
        target: target.clone(),
        version: known,
        name: "up to the latest",
        source,
    })?;
    if current > known {
        return Err(DbError::TooNew {
            path: target.to_string().into(),
            program,
            found: current,
            known,
        });
    }
    Ok(())
}

/// Opens a connection with the pragmas every cranefleet database uses.
pub fn open_connection(path: &Path, durability: Durability) -> Result<Connection, DbError> {
    let err = |source| DbError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
    ))
    .map_err(err)?;
    Ok(conn)
}

/// Applies the migrations after the database's `user_version`, one
/// transaction each.
pub fn migrate(conn: &mut Connection, path: &Path, migrations: Schema) -> Result<(), DbError> {
    let current: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(DbError::Sql)?;
    let known = migrations.latest();
    if current > known {
        return Err(DbError::TooNew {
            path: path.to_path_buf(),
            program: migrations.program,
            found: current,
            known,
        });
    }
    for m in migrations.steps.iter().filter(|m| m.version > current) {
        let err = |source| DbError::Migration {
            path: path.to_path_buf(),
            version: m.version,
            name: m.name,
            source,
        };
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(m.sql).map_err(err)?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::debug!(db = %path.display(), version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_newer_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostd.db");
        let db = Db::open(&path, schema::migrations::HOSTD, Durability::Full).unwrap();
        let v: u32 = db
            .call_blocking(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(v, schema::migrations::HOSTD.latest());
        drop(db);
        // Opening again applies nothing and works.
        Db::open(&path, schema::migrations::HOSTD, Durability::Full).unwrap();
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = Db::open(&path, schema::migrations::HOSTD, Durability::Full)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("newer than this hostd"), "{err}");
    }

    #[test]
    fn a_gateway_database_names_the_gateway_when_it_is_too_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.db");
        Db::open(&path, schema::migrations::GATEWAY, Durability::Full).unwrap();
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = Db::open(&path, schema::migrations::GATEWAY, Durability::Full)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("run the newer ssh-gateway"), "{err}");
    }

    #[test]
    fn an_empty_database_beside_a_daemons_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let artifacts = dir.path().join("artifacts");
        // A fresh directory: fine.
        check_state(&db, std::slice::from_ref(&artifacts)).unwrap();
        std::fs::create_dir(&artifacts).unwrap();
        check_state(&db, std::slice::from_ref(&artifacts)).unwrap();
        std::fs::write(artifacts.join("a.wasm"), b"x").unwrap();
        std::fs::write(&db, b"").unwrap();
        let e = check_state(&db, std::slice::from_ref(&artifacts)).unwrap_err();
        assert!(e.to_string().contains("is empty (0 bytes)"), "{e}");
        std::fs::write(&db, b"not sqlite at all, really").unwrap();
        let e = check_state(&db, &[]).map(|_| ());
        assert!(e.is_ok(), "no state: an operator's file is not refused");
        let e = check_state(&db, std::slice::from_ref(&artifacts)).unwrap_err();
        assert!(e.to_string().contains("not a SQLite database"), "{e}");
        std::fs::remove_file(&db).unwrap();
        let e = check_state(&db, std::slice::from_ref(&artifacts)).unwrap_err();
        assert!(e.to_string().contains("is missing"), "{e}");
        let real = Db::open(&db, schema::migrations::HOSTD, Durability::Full).unwrap();
        drop(real);
        check_state(&db, std::slice::from_ref(&artifacts)).unwrap();
    }
}
