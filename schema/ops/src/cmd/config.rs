//! `config APP`, `config set APP K=V... [--secret]`, `config unset APP K...`:
//! what an app reads through `wasi:config/store`. A change is a new release
//! of the same code (as on Heroku), so a rollback restores that release's
//! config. A secret's value is never printed: not here, not in `info`, not
//! in a log line.

use std::collections::BTreeMap;

use schema::command::{ConfigAction, ConfigArgs};
use schema::manifest::{ConfigValue, Manifest};
use schema::{ConfigOutcome, ConfigRow};

use crate::error::OpError;

/// `LEVEL=info`, `DB_PASSWORD=(secret)`; a line when there is none.
pub fn text(app: &str, rows: &[ConfigRow]) -> String {
    if rows.is_empty() {
        return format!("{app} has no config; `config set {app} KEY=VALUE` adds some\n");
    }
    rows.iter()
        .map(|r| {
            format!(
                "{}={}\n",
                r.key,
                schema::render::clean(r.value.as_deref().unwrap_or("(secret)"))
            )
        })
        .collect()
}

pub fn changed_text(o: &ConfigOutcome) -> String {
    format!("{}\n", summary(o))
}

/// The console's one line.
pub fn summary(o: &ConfigOutcome) -> String {
    let mut what = Vec::new();
    if !o.set.is_empty() {
        what.push(format!("set {}", o.set.join(", ")));
    }
    if !o.unset.is_empty() {
        what.push(format!("unset {}", o.unset.join(", ")));
    }
    format!(
        "{} on {}: {} (same code as {})",
        what.join("; "),
        o.app,
        o.version,
        o.from
            .map(|v| v.to_string())
            .unwrap_or_else(|| "none".into())
    )
}

/// The rows `config APP` shows of a release's config.
pub fn rows(config: &BTreeMap<String, ConfigValue>) -> Vec<ConfigRow> {
    config
        .iter()
        .map(|(k, v)| ConfigRow {
            key: k.clone(),
            value: (!v.secret).then(|| v.value.clone()),
            secret: v.secret,
        })
        .collect()
}

/// The manifest of the release a `config set`/`unset` makes from the
/// active one's: the same in all but its config. Secrets come back in the
/// clear here; whoever stores the manifest seals them. Refuses what would
/// change nothing and what no release may hold.
pub fn apply(active: &Manifest, args: &ConfigArgs) -> Result<(Manifest, ConfigOutcome), OpError> {
    let mut m = active.clone();
    let mut outcome = ConfigOutcome {
        app: args.app.clone(),
        version: schema::Version(0),
        from: None,
        set: Vec::new(),
        unset: Vec::new(),
    };
    match &args.action {
        ConfigAction::Show => {
            return Err(OpError::usage(
                "config APP shows the config; it changes nothing",
            ));
        }
        ConfigAction::Set { pairs, secret } => {
            for (k, v) in pairs {
                if *secret && v.starts_with("sealed:") {
                    return Err(OpError::failed(format!(
                        "{k}: a secret may not start with `sealed:` (that is how sealed values are stored)"
                    )));
                }
                if m.env.contains_key(k) && *secret {
                    return Err(OpError::failed(format!(
                        "{k} is also an env variable of {}: env is shown by `info`; deploy without --env {k} first, then set the secret",
                        args.app
                    )));
                }
                m.config.insert(
                    k.clone(),
                    ConfigValue {
                        value: v.clone(),
                        secret: *secret,
                    },
                );
                outcome.set.push(k.clone());
            }
        }
        ConfigAction::Unset(keys) => {
            for k in keys {
                if m.config.remove(k).is_none() {
                    return Err(OpError::failed(format!(
                        "{} has no config {k}; `config {}` lists it",
                        args.app, args.app
                    )));
                }
                outcome.unset.push(k.clone());
            }
        }
    }
    schema::manifest::validate_config(&m.config).map_err(|e| OpError::failed(e.to_string()))?;
    Ok((m, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::AppKind;

    #[test]
    fn a_change_keeps_everything_else_and_never_shows_a_secret() {
        let mut active = Manifest::new("api", AppKind::Http);
        active.env.insert("MODE".into(), "x".into());
        let set = |pairs: &[(&str, &str)], secret| ConfigArgs {
            app: "api".into(),
            action: ConfigAction::Set {
                pairs: pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                secret,
            },
        };
        let (m, o) = apply(&active, &set(&[("LEVEL", "info")], false)).unwrap();
        assert_eq!(o.set, ["LEVEL"]);
        let (m, _) = apply(&m, &set(&[("PW", "hunter2")], true)).unwrap();
        assert_eq!(m.env, active.env);
        let shown = text("api", &rows(&m.config));
        assert_eq!(shown, "LEVEL=info\nPW=(secret)\n");
        assert!(
            !serde_json::to_string(&rows(&m.config))
                .unwrap()
                .contains("hunter2")
        );
        assert!(!format!("{m:?}").contains("hunter2"));
        let e = apply(&m, &set(&[("MODE", "s")], true)).unwrap_err();
        assert!(e.message.contains("also an env variable"), "{}", e.message);
        let unset = ConfigArgs {
            app: "api".into(),
            action: ConfigAction::Unset(vec!["NOPE".into()]),
        };
        assert!(
            apply(&m, &unset)
                .unwrap_err()
                .message
                .contains("has no config NOPE")
        );
    }
}
