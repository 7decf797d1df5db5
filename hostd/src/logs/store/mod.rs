//! `logs.db`: the writer thread and the queries.
//!
//! The pieces: `write.rs` is the writer thread (batch, number, commit,
//! trim); `segment.rs` is how a segment is kept as a row of
//! `log_segments`, written and read back; `read.rs` answers queries and
//! finds where a read starts; `scan.rs` is the tunnel's bulk read, straight
//! into batch frames; `convert.rs` moves a store of a row per record (from
//! before segments) into segments once.

mod convert;
mod read;
mod scan;
mod segment;
#[cfg(test)]
mod tests;
mod write;

use std::path::Path;

use rusqlite::Connection;

use db::{DbError, Durability, migrate, open_connection};

pub use read::{query, query_matching, start};
pub use scan::{Sent, scan};
pub use write::{last_seq, run_writer};

/// Default bound of one app's records: the oldest go first past it.
pub const DEFAULT_CAP_BYTES: u64 = 64 << 20;

pub fn open_writer(path: &Path) -> Result<Connection, DbError> {
    let mut c = open_connection(path, Durability::Normal)?;
    migrate(&mut c, path, schema::migrations::LOGS)?;
    convert::convert_rows(&mut c).map_err(|source| DbError::Migration {
        path: path.to_path_buf(),
        version: 3,
        name: "segments",
        source,
    })?;
    Ok(c)
}

/// A connection for one bulk read: read-only, without SQLite's own mutex
/// (it is used by one thread), the file mapped rather than copied in.
pub fn open_reader(path: &Path) -> Result<Connection, DbError> {
    use rusqlite::OpenFlags;
    let err = |source| DbError::Open {
        path: path.to_path_buf(),
        source,
    };
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    c.execute_batch("PRAGMA mmap_size = 268435456;")
        .map_err(err)?;
    Ok(c)
}
