//! `config` and `kv` on this host: an app's config as a new release of the
//! same code, and its key-value buckets for operators.

use std::sync::Arc;

use schema::audit::Action;
use schema::command::{ConfigArgs, KvArgs};
use schema::{Actor, AppInfo, ConfigOutcome, ConfigRow, KvOutcome};

use super::{Host, HostError, refuse_if_managed};
use crate::store::{AppRecord, ReleaseRecord};

impl Host {
    /// `info APP`.
    /// The active release of `rec`'s app, if it has one.
    async fn active_of(&self, rec: &AppRecord) -> Result<Option<ReleaseRecord>, HostError> {
        let Some(active) = rec.active else {
            return Ok(None);
        };
        self.release(&rec.name, active)
            .await?
            .map(Some)
            .ok_or(HostError::NoSuchRelease {
                app: rec.name.clone(),
                version: active,
            })
    }

    pub async fn info(&self, app: &str) -> Result<AppInfo, HostError> {
        let rec = self.app(app).await?;
        let manifest = self.active_of(&rec).await?.map(|r| r.manifest);
        let mut info = ops::cmd::info::of(
            app,
            rec.kind,
            rec.active,
            rec.replicas,
            vec![self.config.name.clone()],
            manifest.as_ref(),
        );
        info.canary = self.canary_status(app);
        Ok(info)
    }

    /// `config APP`: the active release's config, secrets as names.
    pub async fn config_rows(&self, app: &str) -> Result<Vec<ConfigRow>, HostError> {
        let rec = self.app(app).await?;
        Ok(self
            .active_of(&rec)
            .await?
            .map(|r| ops::cmd::config::rows(&r.manifest.config))
            .unwrap_or_default())
    }

    /// `config set` / `config unset`: a new release of the active code with
    /// the changed config, switched to at once (no compile: same digest).
    /// A rollback to the release before restores the config it had.
    pub async fn config_change(
        self: &Arc<Self>,
        who: &Actor,
        args: &ConfigArgs,
    ) -> Result<ConfigOutcome, HostError> {
        let app = args.app.as_str();
        let result = self.config_change_inner(who, args).await;
        if let Err(e) = &result {
            self.audit_refused(who, Action::Config, Some(app), e).await;
        }
        result
    }

    async fn config_change_inner(
        self: &Arc<Self>,
        who: &Actor,
        args: &ConfigArgs,
    ) -> Result<ConfigOutcome, HostError> {
        let app = args.app.as_str();
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        refuse_if_managed(Some(&rec), who, "config")?;
        let from = self.active_of(&rec).await?.ok_or_else(|| {
            HostError::Refused(format!(
                "{app} has no active release: deploy it first, then set its config"
            ))
        })?;
        let active = from.version;
        let (mut manifest, mut outcome) = ops::cmd::config::apply(&from.manifest, args)?;
        self.seal_secrets(&mut manifest)?;
        let compiled = self.artifacts.load(&from.digest).await?;
        let code = self.rt.link(&compiled.loaded, manifest.kind)?;
        let caps = self.capabilities(active, &manifest, true).await?;
        let (run, _) = self
            .release_now(who, manifest, &from.digest, code, caps, rec.replicas)
            .await?;
        let version = run.version;
        outcome.version = version;
        outcome.from = Some(active);
        // Names only: a value (a secret's above all) never reaches the audit log.
        let detail = ops::cmd::config::summary(&outcome);
        self.audit(who, Action::Config, Some(app), &detail).await;
        self.logs
            .system(app, Some(version), "hostd", format!("{detail} by {who}"));
        self.prune(app).await;
        self.watch_health(run);
        Ok(outcome)
    }

    /// `kv APP …` on this host's store of the app (the store its active
    /// release uses: SQLite here, or its Redis).
    pub async fn kv(&self, who: &Actor, args: &KvArgs) -> Result<KvOutcome, HostError> {
        let app = args.app.as_str();
        let rec = self.app(app).await?;
        let manifest = self
            .active_of(&rec)
            .await?
            .map(|r| r.manifest)
            .ok_or_else(|| HostError::Refused(format!("{app} has no active release")))?;
        let bucket = args.bucket();
        if !manifest.keyvalue.has_bucket(bucket) {
            return Err(HostError::Refused(format!(
                "{app} has no bucket {bucket:?}: its buckets are default{}",
                manifest
                    .keyvalue
                    .buckets
                    .iter()
                    .map(|b| format!(", {b}"))
                    .collect::<String>()
            )));
        }
        let store = self
            .kv
            .open(app, &manifest.keyvalue, false)
            .await
            .map_err(|e| HostError::Refused(e.to_string()))?;
        let (keys, found) = store
            .run(bucket, &args.op, manifest.keyvalue.max_bytes())
            .await
            .map_err(|e| HostError::Refused(e.to_string()))?;
        let outcome = ops::cmd::kv::outcome(args, keys, found)?;
        if args.changes() {
            // The key, never the value.
            let detail = ops::cmd::kv::summary(&outcome);
            self.audit(who, Action::Kv, Some(app), &detail).await;
        }
        Ok(outcome)
    }
}
