//! `config` and `kv`: commands whose first words choose what they do
//! (`config APP`, `config set APP K=V…`, `kv APP get KEY`). Clap reads the
//! words; [`ConfigArgs`] and [`KvArgs`] are what they mean, checked once
//! while parsing, so every door gets the typed request or a usage error.

use clap::{ArgMatches, Args, FromArgMatches};

/// `config APP`, `config set APP K=V... [--secret]`, `config unset APP K...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigArgs {
    pub app: String,
    pub action: ConfigAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigAction {
    /// The app's config: names and values, secrets as names only.
    Show,
    /// Sets values (a new release, same code).
    Set {
        pairs: Vec<(String, String)>,
        secret: bool,
    },
    /// Removes keys (a new release, same code).
    Unset(Vec<String>),
}

impl ConfigArgs {
    pub fn changes(&self) -> bool {
        self.action != ConfigAction::Show
    }

    /// The words that parse back into this request.
    pub fn words(&self) -> (Vec<String>, Vec<String>) {
        match &self.action {
            ConfigAction::Show => (vec![], vec![self.app.clone()]),
            ConfigAction::Set { pairs, secret } => (
                if *secret {
                    vec!["--secret".into()]
                } else {
                    vec![]
                },
                std::iter::once("set".to_string())
                    .chain(std::iter::once(self.app.clone()))
                    .chain(pairs.iter().map(|(k, v)| format!("{k}={v}")))
                    .collect(),
            ),
            ConfigAction::Unset(keys) => (
                vec![],
                ["unset".to_string(), self.app.clone()]
                    .into_iter()
                    .chain(keys.iter().cloned())
                    .collect(),
            ),
        }
    }
}

/// What clap reads for `config`.
#[derive(Debug, Clone, Args)]
struct ConfigWords {
    /// APP, or `set APP K=V...`, or `unset APP K...`
    #[arg(required = true, num_args = 1.., value_name = "APP | set APP K=V... | unset APP K...")]
    words: Vec<String>,
    /// With `set`: the values are secrets (sealed at rest, never printed, hidden from viewers).
    #[arg(long)]
    secret: bool,
}

fn usage(msg: impl std::fmt::Display) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{msg}\n"))
}

impl ConfigWords {
    fn typed(self) -> Result<ConfigArgs, clap::Error> {
        let mut w = self.words.into_iter();
        let first = w.next().unwrap_or_default();
        let rest: Vec<String> = w.collect();
        let verb = first.as_str();
        match (verb, rest.split_first()) {
            ("set", Some((app, pairs))) => {
                if pairs.is_empty() {
                    return Err(usage(format!(
                        "config set {app} needs KEY=VALUE (one or more)"
                    )));
                }
                let pairs = pairs
                    .iter()
                    .map(|p| match p.split_once('=') {
                        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                        _ => Err(usage(format!("config set: expected KEY=VALUE, got {p:?}"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(ConfigArgs {
                    app: app.clone(),
                    action: ConfigAction::Set {
                        pairs,
                        secret: self.secret,
                    },
                })
            }
            ("unset", Some((app, keys))) => {
                if keys.is_empty() {
                    return Err(usage(format!("config unset {app} needs KEY (one or more)")));
                }
                if self.secret {
                    return Err(usage("--secret goes with `config set`"));
                }
                Ok(ConfigArgs {
                    app: app.clone(),
                    action: ConfigAction::Unset(keys.to_vec()),
                })
            }
            (_, None) if verb != "set" && verb != "unset" => {
                if self.secret {
                    return Err(usage("--secret goes with `config set`"));
                }
                Ok(ConfigArgs {
                    app: first,
                    action: ConfigAction::Show,
                })
            }
            _ => Err(usage(
                "usage: config APP | config set APP KEY=VALUE... [--secret] | config unset APP KEY...",
            )),
        }
    }
}

impl FromArgMatches for ConfigArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        ConfigWords::from_arg_matches(m)?.typed()
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = ConfigArgs::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for ConfigArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        ConfigWords::augment_args(cmd)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        ConfigWords::augment_args_for_update(cmd)
    }
}

/// `kv APP list|get KEY|set KEY VALUE|del KEY [--bucket B] [--host NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvArgs {
    pub app: String,
    pub op: KvOp,
    /// The bucket (default `default`).
    pub bucket: Option<String>,
    /// Through the gateway: this host's own (SQLite) buckets.
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    List,
    Get(String),
    Set(String, String),
    Del(String),
}

impl KvArgs {
    pub fn changes(&self) -> bool {
        matches!(self.op, KvOp::Set(..) | KvOp::Del(_))
    }

    pub fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or("default")
    }

    /// The words that parse back into this request.
    pub fn words(&self) -> (Vec<String>, Vec<String>) {
        let mut flags = Vec::new();
        if let Some(b) = &self.bucket {
            flags.push(format!("--bucket={b}"));
        }
        if let Some(h) = &self.host {
            flags.push(format!("--host={h}"));
        }
        let mut p = vec![self.app.clone()];
        match &self.op {
            KvOp::List => p.push("list".into()),
            KvOp::Get(k) => p.extend(["get".into(), k.clone()]),
            KvOp::Set(k, v) => p.extend(["set".into(), k.clone(), v.clone()]),
            KvOp::Del(k) => p.extend(["del".into(), k.clone()]),
        }
        (flags, p)
    }
}

#[derive(Debug, Clone, Args)]
struct KvWords {
    /// The app whose buckets to read or change.
    #[arg(value_name = "APP")]
    app: String,
    /// list | get KEY | set KEY VALUE | del KEY
    #[arg(required = true, num_args = 1..=3, value_name = "list|get KEY|set KEY VALUE|del KEY")]
    op: Vec<String>,
    /// The bucket (default `default`).
    #[arg(long, value_name = "B")]
    bucket: Option<String>,
    /// Through the gateway: that host's own key-value store.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
}

impl KvWords {
    fn typed(self) -> Result<KvArgs, clap::Error> {
        let op = match self.op.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["list"] => KvOp::List,
            ["get", k] => KvOp::Get(k.into()),
            ["set", k, v] => KvOp::Set(k.into(), v.into()),
            ["del", k] => KvOp::Del(k.into()),
            _ => {
                return Err(usage(format!(
                    "kv {}: expected list, get KEY, set KEY VALUE or del KEY",
                    self.app
                )));
            }
        };
        Ok(KvArgs {
            app: self.app,
            op,
            bucket: self.bucket,
            host: self.host,
        })
    }
}

impl FromArgMatches for KvArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        KvWords::from_arg_matches(m)?.typed()
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = KvArgs::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for KvArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        KvWords::augment_args(cmd)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        KvWords::augment_args_for_update(cmd)
    }
}
