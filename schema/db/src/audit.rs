//! The audit trail, who did what and when, as `hostd.db` and `gateway.db`
//! both keep it: the same `audit` columns, read and written by the same
//! queries. hostd's table adds `reported` (which entries a gateway has not
//! heard of yet); hostd's store writes and reads that column itself,
//! around [`ENTRY_COLS`] and [`entry_from_row`].

use crate::args;
use crate::sql::{Row, Sql, SqlError};
use schema::AuditEntry;
use schema::audit::Action;

/// The columns of an entry, in the order [`entry_from_row`] reads them.
pub const ENTRY_COLS: &str = "time, key, action, app, detail, refused";

/// Reads the [`ENTRY_COLS`] of a row, starting at column `first`.
pub fn entry_from_row(r: &Row, first: usize) -> Result<AuditEntry, SqlError> {
    Ok(AuditEntry {
        time: schema::time::rfc3339(r.get(first)?),
        key: r.get(first + 1)?,
        action: r.get(first + 2)?,
        app: r.get(first + 3)?,
        detail: r.get(first + 4)?,
        refused: r.get(first + 5)?,
    })
}

/// Records an entry.
pub fn record(c: &dyn Sql, e: &Entry<'_>) -> Result<(), SqlError> {
    c.execute(
        &format!("INSERT INTO audit ({ENTRY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        args![e.time, e.key, e.action.as_str(), e.app, e.detail, e.refused],
    )?;
    Ok(())
}

/// An entry to write.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub time: i64,
    pub key: &'a str,
    pub action: Action,
    pub app: Option<&'a str>,
    /// As shown: a refusal's detail starts `refused: ` (see
    /// `schema::audit::Outcome::detail`).
    pub detail: &'a str,
    pub refused: bool,
}

/// The last `tail` entries, oldest first.
pub fn tail(c: &dyn Sql, tail: u64) -> Result<Vec<AuditEntry>, SqlError> {
    c.query(
        &format!(
            "SELECT {ENTRY_COLS} FROM
               (SELECT id, {ENTRY_COLS} FROM audit ORDER BY id DESC LIMIT ?1) AS newest
             ORDER BY id"
        ),
        args![tail],
    )?
    .iter()
    .map(|r| entry_from_row(r, 0))
    .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use rusqlite::Connection;
    use schema::migrations::{GATEWAY, HOSTD};

    #[test]
    fn the_tail_is_the_newest_entries_oldest_first_on_both_databases() {
        for migrations in [HOSTD, GATEWAY] {
            let mut c = Connection::open_in_memory().unwrap();
            crate::migrate(&mut c, Path::new(":memory:"), migrations).unwrap();
            for (i, app) in [None, Some("web"), Some("api")].into_iter().enumerate() {
                let detail = format!("n{i}");
                let e = Entry {
                    time: i as i64 * 1000,
                    key: "ops",
                    action: Action::Deploy,
                    app,
                    detail: &detail,
                    refused: i == 2,
                };
                record(&c, &e).unwrap();
            }
            let t = tail(&c, 2).unwrap();
            assert_eq!(
                t.iter()
                    .map(|e| (e.app.as_deref(), e.detail.as_str()))
                    .collect::<Vec<_>>(),
                [(Some("web"), "n1"), (Some("api"), "n2")]
            );
            assert_eq!(t[0].time, schema::time::rfc3339(1000));
            assert_eq!((t[0].refused, t[1].refused), (false, true));
            assert_eq!(tail(&c, u64::MAX).unwrap().len(), 3);
        }
    }
}
