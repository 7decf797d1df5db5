//! Live canaries (`canaries` of `hostd.db` and `gateway.db`): whoever
//! drives a canary keeps where it stands here, so a restart resumes it.

use rusqlite::{Connection, OptionalExtension, params};
use schema::canary::Progress;

fn to_json(p: &Progress) -> rusqlite::Result<String> {
    serde_json::to_string(p).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Records (or updates) where the canary of `p.app` stands.
pub fn save(c: &Connection, p: &Progress) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO canaries (app, progress) VALUES (?1, ?2)
         ON CONFLICT(app) DO UPDATE SET progress = excluded.progress",
        params![p.app, to_json(p)?],
    )?;
    Ok(())
}

/// The canary of `app`, if one is live.
pub fn get(c: &Connection, app: &str) -> rusqlite::Result<Option<Progress>> {
    let json: Option<String> = c
        .query_row(
            "SELECT progress FROM canaries WHERE app = ?1",
            params![app],
            |r| r.get(0),
        )
        .optional()?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Every live canary (one that cannot be read is skipped, and said).
pub fn all(c: &Connection) -> rusqlite::Result<Vec<Progress>> {
    let mut st = c.prepare("SELECT app, progress FROM canaries ORDER BY app")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (app, json) = row?;
        match serde_json::from_str(&json) {
            Ok(p) => out.push(p),
            Err(e) => tracing::warn!(app, error = %e, "skipping a canary that cannot be read"),
        }
    }
    Ok(out)
}

/// Forgets the canary of `app` (promoted, aborted, or the app removed).
pub fn delete(c: &Connection, app: &str) -> rusqlite::Result<()> {
    c.execute("DELETE FROM canaries WHERE app = ?1", params![app])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_round_trips() {
        for schema in [schema::migrations::HOSTD, schema::migrations::GATEWAY] {
            let mut c = Connection::open_in_memory().unwrap();
            crate::migrate(&mut c, std::path::Path::new(":memory:"), schema).unwrap();
            let plan = schema::canary::Canary {
                share: Some("10%".into()),
                ..Default::default()
            }
            .plan(None, false)
            .unwrap()
            .unwrap();
            let mut p = Progress {
                app: "api".into(),
                version: schema::Version(4),
                stable: schema::Version(3),
                plan,
                step: 0,
                step_started_ms: 1,
                by: "alice".into(),
                hosts: vec![],
            };
            save(&c, &p).unwrap();
            p.step = 1;
            save(&c, &p).unwrap();
            assert_eq!(get(&c, "api").unwrap(), Some(p.clone()));
            assert_eq!(all(&c).unwrap(), vec![p]);
            delete(&c, "api").unwrap();
            assert_eq!(get(&c, "api").unwrap(), None);
        }
    }
}
