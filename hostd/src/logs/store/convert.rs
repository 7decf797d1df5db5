//! Moving a store of a row per record (`log_records`, from before
//! segments) into segments, once, when the writer opens it.

use rusqlite::Connection;
use schema::Stream;
use schema::logbatch::{LogRef, LogSegmentWriter};

use super::segment::insert_segment;

/// Moves the records of a store written before segments (a row per record)
/// into segments, in one transaction: all of them or, on any error, none.
pub(super) fn convert_rows(c: &mut Connection) -> rusqlite::Result<()> {
    let old: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'log_records')",
        [],
        |r| r.get(0),
    )?;
    if !old {
        return Ok(());
    }
    let tx = c.transaction()?;
    let mut moved = 0u64;
    {
        let mut q = tx.prepare(
            "SELECT app, seq, time, release, instance, stream, line, partial
             FROM log_records ORDER BY app, seq",
        )?;
        let mut rows = q.query([])?;
        let mut current: Option<(String, LogSegmentWriter)> = None;
        while let Some(r) = rows.next()? {
            let app = r.get_ref(0)?.as_str()?;
            if current
                .as_ref()
                .is_some_and(|(a, w)| a != app || w.is_full())
            {
                let (a, w) = current.take().expect("checked above");
                insert_segment(&tx, &a, w.finish())?;
            }
            let (_, w) = current.get_or_insert_with(|| (app.to_string(), LogSegmentWriter::new()));
            w.push(&LogRef {
                seq: r.get::<_, i64>(1)? as u64,
                time: r.get(2)?,
                release: r.get(3)?,
                instance: r.get_ref(4)?.as_str()?,
                stream: r.get_ref(5)?.as_str()?.parse().unwrap_or(Stream::System),
                line: r.get_ref(6)?.as_str()?,
                partial: r.get(7)?,
            });
            moved += 1;
        }
        if let Some((a, w)) = current {
            insert_segment(&tx, &a, w.finish())?;
        }
    }
    tx.execute_batch(
        "DROP TABLE log_records;
         UPDATE log_apps SET bytes = (SELECT COALESCE(SUM(bytes), 0) FROM log_segments
                                      WHERE log_segments.app = log_apps.app);",
    )?;
    tx.commit()?;
    tracing::info!(
        records = moved,
        "moved the log store's records into segments"
    );
    Ok(())
}
