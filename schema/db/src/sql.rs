//! One query layer over two backends: SQLite (rusqlite, the embedded
//! default) and PostgreSQL (tokio-postgres, for a gateway that must survive
//! its machine).
//!
//! Queries are written once, in the SQL both understand, with SQLite's
//! numbered parameters (`?1`, `?2`); on PostgreSQL they become `$1`, `$2`
//! and are prepared once per connection. Values cross as [`Value`]s (the
//! five storage classes both have) and rows come back as [`Row`]s read by
//! column index. A transaction is [`transaction`]: `BEGIN`, the closure,
//! `COMMIT` (or `ROLLBACK` on its error), the same on both.
//!
//! What differs is said by each backend's [`Sql`]: the clock leases are
//! read against ([`Sql::now_ms`]) and a commit counter that tells a poller
//! the data changed ([`Sql::data_version`]); PostgreSQL's connection, its
//! parameters and how a migration's types are spelt for it are
//! [`crate::pg`].

use std::sync::LazyLock;

/// Which SQL a backend speaks, where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value sent to or read from either backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::Int(v as i64)
            }
        }
    )*};
}
int_values!(i64, i32, u32, u16, u8);

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v.min(i64::MAX as u64) as i64)
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v.min(i64::MAX as usize) as i64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// The arguments of a query: `args![app, v.0, now]`.
#[macro_export]
macro_rules! args {
    () => { &[] as &[$crate::sql::Value] };
    ($($a:expr),+ $(,)?) => { &[$($crate::sql::Value::from($a)),+] as &[$crate::sql::Value] };
}

/// A row of a result, read by column index.
#[derive(Debug, Clone)]
pub struct Row(pub(crate) Vec<Value>);

impl Row {
    /// Column `i` as `T`; a NULL, a wrong type or a value out of range is
    /// an error naming the column.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, SqlError> {
        let v = self.0.get(i).ok_or_else(|| SqlError::Decode {
            col: i,
            why: format!("the row has {} columns", self.0.len()),
        })?;
        T::from_value(v).map_err(|why| SqlError::Decode { col: i, why })
    }

    /// Column `i` parsed from its text (an enum kept as its name).
    pub fn parse<T>(&self, i: usize) -> Result<T, SqlError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.get::<String>(i)?
            .parse()
            .map_err(|e: T::Err| SqlError::Decode {
                col: i,
                why: e.to_string(),
            })
    }

    /// Column `i` as JSON of `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, SqlError> {
        serde_json::from_str(&self.get::<String>(i)?).map_err(|e| SqlError::Decode {
            col: i,
            why: e.to_string(),
        })
    }
}

/// How a column's value becomes a Rust value.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<i64, String> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(format!("expected an integer, found {}", kind(other))),
        }
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<$t, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_from_value!(i32, u32, u64, u16, usize);

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<bool, String> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<f64, String> {
        match v {
            Value::Real(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            other => Err(format!("expected a number, found {}", kind(other))),
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Result<String, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {}", kind(other))),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Vec<u8>, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {}", kind(other))),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Option<T>, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("column {col}: {why}")]
    Decode { col: usize, why: String },
    #[error("{0}")]
    Invalid(String),
}

impl SqlError {
    /// A value that cannot be stored (JSON that does not serialise).
    pub fn invalid(e: impl std::fmt::Display) -> SqlError {
        SqlError::Invalid(e.to_string())
    }
}

/// PostgreSQL's own words (severity, message, detail), not the client's
/// "db error".
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("PostgreSQL: {}: {} ({d})", db.severity(), db.message()),
            None => format!("PostgreSQL: {}: {}", db.severity(), db.message()),
        },
        None => match std::error::Error::source(e) {
            Some(src) => format!("PostgreSQL: {e}: {src}"),
            None => format!("PostgreSQL: {e}"),
        },
    }
}

/// hostd's own queries stay in rusqlite's types; the shared ones it calls
/// answer in [`SqlError`], which becomes rusqlite's error there.
impl From<SqlError> for rusqlite::Error {
    fn from(e: SqlError) -> rusqlite::Error {
        match e {
            SqlError::Sqlite(e) => e,
            SqlError::Decode { col, why } => rusqlite::Error::FromSqlConversionFailure(
                col,
                rusqlite::types::Type::Text,
                why.into(),
            ),
            other => rusqlite::Error::ToSqlConversionFailure(Box::new(other)),
        }
    }
}

/// A connection to either backend. Every method takes `&self`: a store
/// runs one query at a time on its own thread.
pub trait Sql {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; how many rows it changed.
    fn execute(&self, sql: &str, args: &[Value]) -> Result<u64, SqlError>;
    /// Runs a query; its rows.
    fn query(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>, SqlError>;
    /// Runs statements without arguments (`BEGIN`, a migration).
    fn batch(&self, sql: &str) -> Result<(), SqlError>;
    /// The database's clock, in Unix milliseconds: what every holder of a
    /// lease reads its deadline against (on PostgreSQL the server's, so
    /// gateways on different machines agree whatever their own clocks say).
    fn now_ms(&self) -> Result<i64, SqlError>;
    /// A number that changes when another connection commits: SQLite's
    /// `data_version`; on PostgreSQL the sum of the tables' write counters.
    fn data_version(&self) -> Result<i64, SqlError>;

    /// The first row, if any.
    fn query_opt(&self, sql: &str, args: &[Value]) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    /// The one row a query must return.
    fn query_one(&self, sql: &str, args: &[Value]) -> Result<Row, SqlError> {
        self.query_opt(sql, args)?
            .ok_or_else(|| SqlError::Invalid(format!("no row from: {sql}")))
    }
}

/// The first column of every row.
pub fn column<T: FromValue>(
    c: &(impl Sql + ?Sized),
    sql: &str,
    args: &[Value],
) -> Result<Vec<T>, SqlError> {
    c.query(sql, args)?.iter().map(|r| r.get(0)).collect()
}

/// Runs `f` in one transaction: committed if it returns `Ok`, rolled back
/// otherwise (and if the commit itself fails). On SQLite the write lock is
/// taken at `BEGIN`, so two writers never deadlock upgrading.
pub fn transaction<R>(
    c: &dyn Sql,
    f: impl FnOnce(&dyn Sql) -> Result<R, SqlError>,
) -> Result<R, SqlError> {
    c.batch(match c.dialect() {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    })?;
    match f(c).and_then(|r| c.batch("COMMIT").map(|()| r)) {
        Ok(r) => Ok(r),
        Err(e) => {
            let _ = c.batch("ROLLBACK");
            Err(e)
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_rows(c: &rusqlite::Connection, sql: &str, args: &[Value]) -> Result<Vec<Row>, SqlError> {
    use rusqlite::types::ValueRef;
    let mut st = c.prepare_cached(sql)?;
    let n = st.column_count();
    let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(Row(row));
    }
    Ok(out)
}

impl Sql for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    fn execute(&self, sql: &str, args: &[Value]) -> Result<u64, SqlError> {
        let mut st = self.prepare_cached(sql)?;
        Ok(st.execute(rusqlite::params_from_iter(args.iter()))? as u64)
    }
    fn query(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>, SqlError> {
        sqlite_rows(self, sql, args)
    }
    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        Ok(self.execute_batch(sql)?)
    }
    fn now_ms(&self) -> Result<i64, SqlError> {
        Ok(schema::time::now_millis())
    }
    fn data_version(&self) -> Result<i64, SqlError> {
        Ok(self.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }
}

/// Where a store lives: a SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Target {
    /// `postgres://…` or `postgresql://…` is PostgreSQL (a libpq URL);
    /// anything else is a SQLite file's path.
    pub fn parse(s: &str) -> Target {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Target::Postgres(s.to_owned())
        } else {
            Target::Sqlite(s.into())
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Target::Postgres(_))
    }
}

/// As shown in messages: a URL's password is never printed.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(p) => write!(f, "{}", p.display()),
            Target::Postgres(url) => {
                static PASSWORD: LazyLock<regex::Regex> = LazyLock::new(|| {
                    regex::Regex::new(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@").expect("valid")
                });
                let shown = PASSWORD.replace(url, "$1:***@");
                let shown = match shown.find("password=") {
                    Some(i) => format!("{}password=***", &shown[..i]),
                    None => shown.into_owned(),
                };
                f.write_str(&schema::render::clean(&shown))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_password_is_never_shown() {
        let t = Target::parse("postgres://gw:s3cret@db.example:5432/fleet");
        assert_eq!(t.to_string(), "postgres://gw:***@db.example:5432/fleet");
        let t = Target::parse("postgresql://db/fleet?user=gw&password=s3cret");
        assert!(!t.to_string().contains("s3cret"), "{t}");
        assert_eq!(
            Target::parse("/var/lib/gw/gateway.db"),
            Target::Sqlite("/var/lib/gw/gateway.db".into())
        );
    }

    #[test]
    fn rows_read_as_the_types_asked_for_and_say_which_column_did_not() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        Sql::batch(&c, "CREATE TABLE t (a INTEGER, b TEXT, c BLOB)").unwrap();
        Sql::execute(
            &c,
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            args![7u32, "x", vec![1u8, 2]],
        )
        .unwrap();
        Sql::execute(
            &c,
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            args![-1, None::<String>, None::<Vec<u8>>],
        )
        .unwrap();
        let rows = Sql::query(&c, "SELECT a, b, c FROM t ORDER BY a DESC", &[]).unwrap();
        assert_eq!(rows[0].get::<u32>(0).unwrap(), 7);
        assert_eq!(rows[0].get::<String>(1).unwrap(), "x");
        assert_eq!(rows[0].get::<Vec<u8>>(2).unwrap(), vec![1, 2]);
        assert_eq!(rows[1].get::<Option<String>>(1).unwrap(), None);
        let e = rows[1].get::<u32>(0).unwrap_err().to_string();
        assert!(e.contains("column 0") && e.contains("out of range"), "{e}");
        let e = rows[1].get::<String>(1).unwrap_err().to_string();
        assert!(e.contains("column 1: expected text, found NULL"), "{e}");
    }

    #[test]
    fn a_failed_transaction_leaves_nothing() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        Sql::batch(&c, "CREATE TABLE t (a INTEGER PRIMARY KEY)").unwrap();
        let r: Result<(), SqlError> = transaction(&c, |c| {
            c.execute("INSERT INTO t VALUES (1)", &[])?;
            c.execute("INSERT INTO t VALUES (1)", &[])?;
            Ok(())
        });
        assert!(r.is_err());
        assert!(
            column::<i64>(&c, "SELECT a FROM t", &[])
                .unwrap()
                .is_empty()
        );
        transaction(&c, |c| c.execute("INSERT INTO t VALUES (2)", &[])).unwrap();
        assert_eq!(column::<i64>(&c, "SELECT a FROM t", &[]).unwrap(), [2]);
    }
}
