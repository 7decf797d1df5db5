//! `config` and `kv` across the fleet: a config change is a new release of
//! the same code, staged and switched on the app's hosts like a deploy (no
//! upload, no compile); `kv` reads and writes an app's shared (Redis)
//! store from the gateway, or one host's own store with `--host`.

use schema::audit::Action;
use schema::command::{ConfigArgs, KvArgs};
use schema::{AppInfo, ConfigOutcome, ConfigRow, EnvChanges, KvOutcome, Manifest};

use super::{Fleet, FleetError, ProgressTx};
use crate::store::{self, ReleaseRecord};

impl Fleet {
    /// The active release of `app`, as stored (secrets sealed).
    async fn active_release(&self, app: &str) -> Result<ReleaseRecord, FleetError> {
        let rec = self.app(app).await?;
        let active = rec.active.ok_or_else(|| {
            FleetError::Refused(format!("{app} has no active release: deploy it first"))
        })?;
        let a = app.to_string();
        self.db
            .call(move |c| store::release(c, &a, active))
            .await?
            .ok_or_else(|| FleetError::Refused(format!("{app} has no release {active}")))
    }

    /// `info APP`.
    pub async fn info(&self, app: &str) -> Result<AppInfo, FleetError> {
        let rec = self.app(app).await?;
        let manifest = match rec.active {
            Some(_) => Some(self.active_release(app).await?.manifest),
            None => None,
        };
        let hosts = self.placement_of(app).await?.into_keys().collect();
        let mut info = ::ops::cmd::info::of(
            app,
            rec.kind,
            rec.active,
            rec.replicas,
            hosts,
            manifest.as_ref(),
        );
        let rows = self.ps(Some(app)).await.unwrap_or_default();
        info.canary = self.canary_status(app, &rows);
        Ok(info)
    }

    /// `config APP`: names and values, secrets as names only.
    pub async fn config_rows(&self, app: &str) -> Result<Vec<ConfigRow>, FleetError> {
        let rec = self.app(app).await?;
        if rec.active.is_none() {
            return Ok(Vec::new());
        }
        Ok(::ops::cmd::config::rows(
            &self.active_release(app).await?.manifest.config,
        ))
    }

    /// `config set` / `config unset` through the gateway.
    pub async fn config_change(
        &self,
        who: &str,
        args: &ConfigArgs,
        progress: &ProgressTx,
    ) -> Result<ConfigOutcome, FleetError> {
        let r = self.config_change_inner(who, args, progress).await;
        if let Err(e) = &r {
            self.audit_refused(who, Action::Config, Some(&args.app), e)
                .await;
        }
        self.bump();
        r
    }

    async fn config_change_inner(
        &self,
        who: &str,
        args: &ConfigArgs,
        progress: &ProgressTx,
    ) -> Result<ConfigOutcome, FleetError> {
        let app = args.app.as_str();
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        let from = self.active_release(app).await?;
        let (mut manifest, mut outcome) = ::ops::cmd::config::apply(&from.manifest, args)?;
        db::secrets::seal_manifest(&self.secrets, &mut manifest)
            .map_err(|e| FleetError::Refused(e.to_string()))?;
        let replicas = rec.replicas;
        let rel = self
            .record_release(manifest, &from.digest, who, replicas)
            .await?;
        let version = rel.version;
        let placement = self.placement_of(app).await?;
        self.stage_release(&rel, &placement, who, progress).await?;
        self.switch_release(&rel, &placement, replicas, who, progress)
            .await?;
        outcome.version = version;
        outcome.from = Some(from.version);
        // Names only: a value never reaches the audit log.
        let detail = ::ops::cmd::config::summary(&outcome);
        self.audit(who, Action::Config, Some(app), &detail).await;
        Ok(outcome)
    }

    /// A deploy's manifest, completed by the fleet: the previous release's
    /// config (with the deploy's own `--config` over it), its env with
    /// `keep_env` (`--keep-env`), and the fleet-wide key-value store when
    /// the manifest names none. Returns how the env changed from the
    /// running release's (`None`: there was none).
    pub(super) async fn complete_manifest(
        &self,
        manifest: &mut Manifest,
        keep_env: bool,
    ) -> Result<Option<EnvChanges>, FleetError> {
        let n = manifest.name.clone();
        let mut env = None;
        if let Some(active) = self
            .db
            .call(move |c| store::get_app(c, &n))
            .await?
            .and_then(|a| a.active)
        {
            let n = manifest.name.clone();
            if let Some(prev) = self.db.call(move |c| store::release(c, &n, active)).await? {
                env = Some(::ops::cmd::deploy::carry_env(
                    &prev.manifest,
                    manifest,
                    keep_env,
                ));
                manifest.config = ::ops::cmd::deploy::carry_config(&prev.manifest, manifest)?;
            }
        }
        if manifest.keyvalue.url.is_none() {
            manifest.keyvalue.url = self.keyvalue_url.clone();
        }
        Ok(env)
    }

    /// What goes to a host inside the tunnel: the manifest with its secrets
    /// opened (the host seals them again with its own key).
    pub(super) fn for_host(&self, manifest: &Manifest) -> Result<Manifest, String> {
        db::secrets::open_manifest(&self.secrets, manifest).map_err(|e| e.to_string())
    }

    /// `kv APP …`: the app's shared store, read and written from here; with
    /// `--host NAME`, that host's own store, through its tunnel.
    pub async fn kv(&self, who: &str, args: &KvArgs) -> Result<KvOutcome, FleetError> {
        let app = args.app.as_str();
        let rel = self.active_release(app).await?;
        let settings = &rel.manifest.keyvalue;
        let bucket = args.bucket();
        if !settings.has_bucket(bucket) {
            return Err(FleetError::Refused(format!(
                "{app} has no bucket {bucket:?}: its buckets are default{}",
                settings
                    .buckets
                    .iter()
                    .map(|b| format!(", {b}"))
                    .collect::<String>()
            )));
        }
        if let Some(host) = &args.host {
            let outcome = self.kv_on_host(host, who, args).await?;
            if args.changes() {
                let detail = format!("{} on {host}", ::ops::cmd::kv::summary(&outcome));
                self.audit(who, Action::Kv, Some(app), &detail).await;
            }
            return Ok(outcome);
        }
        let Some(url) = settings.url.clone() else {
            let hosts: Vec<String> = self.placement_of(app).await?.into_keys().collect();
            return Err(FleetError::Refused(format!(
                "{app} keeps its key-value state on each host (SQLite): pass --host NAME ({}), or give it a shared store ([keyvalue] url, or the gateway's --keyvalue-url)",
                if hosts.is_empty() {
                    "no host runs it".to_string()
                } else {
                    hosts.join(", ")
                }
            )));
        };
        let store = kv::KvStore::Redis({
            let mut conns = self.kv.lock().await;
            match conns.get(&url) {
                Some(c) => c.clone(),
                None => {
                    let c = kv::RedisKv::connect(&url)
                        .await
                        .map_err(|e| FleetError::Refused(e.to_string()))?;
                    conns.insert(url.clone(), c.clone());
                    c
                }
            }
            .for_app(app)
        });
        let (keys, found) = store
            .run(bucket, &args.op, settings.max_bytes())
            .await
            .map_err(|e| FleetError::Refused(e.to_string()))?;
        let outcome = ::ops::cmd::kv::outcome(args, keys, found)?;
        if args.changes() {
            let detail = ::ops::cmd::kv::summary(&outcome);
            self.audit(who, Action::Kv, Some(app), &detail).await;
        }
        Ok(outcome)
    }
}

impl Fleet {
    /// `kv … --host NAME`: that host answers from its own store.
    async fn kv_on_host(
        &self,
        host: &str,
        who: &str,
        args: &KvArgs,
    ) -> Result<KvOutcome, FleetError> {
        let conn = self.conn(host).ok_or_else(|| {
            FleetError::Refused(format!(
                "host {host} is not connected; `hosts` lists the hosts"
            ))
        })?;
        let argv = schema::command::CommandLine {
            json: false,
            command: schema::command::Command::Kv(KvArgs {
                host: None,
                ..args.clone()
            }),
        }
        .to_argv();
        let by = who.to_string();
        let (_, message) = conn
            .request_message(
                move |id| schema::tunnel::GatewayMsg::Kv { id, by, argv },
                None,
            )
            .await
            .map_err(|e| FleetError::Refused(format!("{host}: {e}")))?;
        serde_json::from_str(&message)
            .map_err(|e| FleetError::Refused(format!("{host} answered kv with {e}")))
    }
}
