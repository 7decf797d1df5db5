//! Live canaries (`canaries` of `hostd.db` and `gateway.db`): whoever
//! drives a canary keeps where it stands here, so a restart resumes it.

use schema::canary::Progress;

use crate::args;
use crate::sql::{Sql, SqlError};

/// Records (or updates) where the canary of `p.app` stands.
pub fn save(c: &dyn Sql, p: &Progress) -> Result<(), SqlError> {
    let json = serde_json::to_string(p).map_err(SqlError::invalid)?;
    c.execute(
        "INSERT INTO canaries (app, progress) VALUES (?1, ?2)
         ON CONFLICT(app) DO UPDATE SET progress = excluded.progress",
        args![&p.app, json],
    )?;
    Ok(())
}

/// The canary of `app`, if one is live.
pub fn get(c: &dyn Sql, app: &str) -> Result<Option<Progress>, SqlError> {
    let json: Option<String> = c
        .query_opt("SELECT progress FROM canaries WHERE app = ?1", args![app])?
        .map(|r| r.get(0))
        .transpose()?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Every live canary (one that cannot be read is skipped, and said).
pub fn all(c: &dyn Sql) -> Result<Vec<Progress>, SqlError> {
    let mut out = Vec::new();
    for r in c.query("SELECT app, progress FROM canaries ORDER BY app", &[])? {
        let (app, json): (String, String) = (r.get(0)?, r.get(1)?);
        match serde_json::from_str(&json) {
            Ok(p) => out.push(p),
            Err(e) => tracing::warn!(app, error = %e, "skipping a canary that cannot be read"),
        }
    }
    Ok(out)
}

/// Forgets the canary of `app` (promoted, aborted, or the app removed).
pub fn delete(c: &dyn Sql, app: &str) -> Result<(), SqlError> {
    c.execute("DELETE FROM canaries WHERE app = ?1", args![app])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

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
