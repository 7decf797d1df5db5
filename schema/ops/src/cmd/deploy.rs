//! `deploy APP FILE|- [flags]`: a new release from an artifact.

use std::path::Path;

use schema::artifact::inspect;
use schema::command::DeployArgs;
use schema::manifest::{ConfigValue, DEFAULT_MEMORY_MB, MAX_MEMORY_MB, MAX_TABLE_ELEMENTS};
use schema::names::validate_app_name;
use schema::{AppKind, DeployOutcome, EnvChanges, Manifest};

use crate::error::OpError;
use crate::scope::Scope;

/// What `deploy` prints: `deployed api v3 (sha256:0123456789ab…, http, 2
/// replicas); compiled in 120 ms`.
pub fn text(o: &DeployOutcome) -> String {
    let compiled = if o.compile_ms > 0 {
        format!("compiled in {} ms", o.compile_ms)
    } else {
        "code was already compiled".to_string()
    };
    let short = &o.digest[..o.digest.len().min(19)];
    let mut text = format!(
        "deployed {} {} ({short}…, {}, {} replica{}); {compiled}\n",
        o.app,
        o.version,
        o.kind,
        o.replicas,
        if o.replicas == 1 { "" } else { "s" }
    );
    if let Some(env) = o.env_changes.as_ref().and_then(env_note) {
        text.push_str(&env);
        text.push('\n');
    }
    if let Some(c) = &o.canary {
        text.push_str(&super::canary::started(c));
    }
    text
}

/// What a deploy did to the env, when it changed anything: names only; a
/// variable gone says how to keep it next time.
fn env_note(c: &EnvChanges) -> Option<String> {
    let said = c.summary()?;
    Some(if c.removed.is_empty() {
        said
    } else {
        format!(
            "{said} (a deploy's --env replaces the running release's env; --keep-env keeps it and sets --env over it)"
        )
    })
}

/// What a host and the fleet check before anything is stored, in this
/// order: the request itself, the artifact's size, then its exports against
/// the kind asked for. Returns the app's name and the release's manifest.
pub fn check(
    args: &DeployArgs,
    artifact: &[u8],
    limit: u64,
    scope: Scope,
) -> Result<(String, Manifest), OpError> {
    if args.manifest.is_some() {
        let how = match scope {
            Scope::Host => "`hostd deploy --manifest FILE`",
            Scope::Fleet => "`hostd deploy --manifest FILE --gateway …`",
        };
        return Err(OpError::failed(format!(
            "--manifest is read where the command is typed: use {how}, which sends its fields as flags"
        )));
    }
    let name = args
        .app
        .clone()
        .ok_or_else(|| OpError::failed("deploy needs an APP name"))?;
    validate_app_name(&name).map_err(|e| OpError::failed(e.to_string()))?;
    if artifact.len() as u64 > limit {
        return Err(OpError::failed(format!(
            "the artifact is {} MiB, more than {} limit of {} MiB",
            artifact.len() >> 20,
            scope.owner(),
            limit >> 20
        )));
    }
    let failed = |e: &dyn std::fmt::Display| OpError::failed(e.to_string());
    let exports = inspect(artifact).map_err(|e| failed(&e))?;
    let manifest = args
        .to_manifest(exports.inferred_kind().unwrap_or(AppKind::Worker))
        .map_err(|e| failed(&e))?;
    exports.check(manifest.kind).map_err(|e| failed(&e))?;
    // What compiling it may cost: one upload must not hold both cores for
    // long or leave the daemon a gigabyte bigger.
    if exports.functions > MAX_FUNCTIONS || exports.code_bytes > MAX_CODE_BYTES {
        return Err(OpError::failed(format!(
            "{name}'s code has {} functions in {} KiB of code; at most {MAX_FUNCTIONS} functions and {} MiB of code are compiled",
            exports.functions,
            exports.code_bytes >> 10,
            MAX_CODE_BYTES >> 20
        )));
    }
    if exports.min_table_elements > MAX_TABLE_ELEMENTS {
        return Err(OpError::failed(format!(
            "{name}'s code declares a table of at least {} elements, more than the {MAX_TABLE_ELEMENTS} an instance may have",
            exports.min_table_elements
        )));
    }
    // What instantiating it takes at the least, against what it may use:
    // refused here, the running release stays, instead of a crash loop.
    let limit_mb = manifest.limits.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
    if exports.min_memory_bytes > limit_mb << 20 {
        return Err(OpError::failed(format!(
            "{name}'s code declares at least {} MiB of memory, more than its limit of {limit_mb} MiB: raise it with --memory-mb (at most {MAX_MEMORY_MB}) or build the code with a smaller initial memory",
            exports.min_memory_bytes.div_ceil(1 << 20)
        )));
    }
    Ok((name, manifest))
}

/// Most functions an artifact may define (a large Rust component has some
/// tens of thousands).
pub const MAX_FUNCTIONS: u64 = 100_000;
/// Most bytes of code an artifact may hold.
pub const MAX_CODE_BYTES: u64 = 64 << 20;

/// An app keeps its kind unless the deploy says otherwise: a new release of
/// another kind (an http app's next artifact built as a command) needs an
/// explicit `--kind`.
pub fn check_kind_change(
    name: &str,
    current: Option<AppKind>,
    args: &DeployArgs,
    new: AppKind,
) -> Result<(), OpError> {
    match current {
        Some(kind) if kind != new && args.kind.is_none() => Err(OpError::failed(format!(
            "{name} is a {kind} app, and this artifact is built as {new}: to change the app's kind, deploy with --kind {new}"
        ))),
        _ => Ok(()),
    }
}

/// The config of a new release: the previous release's (config lives
/// across deploys, as on Heroku), with the deploy's `--config` values
/// over it. An env variable named like one of the app's secrets is
/// refused: env is shown by `info` and read by every library, a secret
/// belongs in `config set --secret`.
pub fn carry_config(
    prev: &Manifest,
    new: &Manifest,
) -> Result<std::collections::BTreeMap<String, ConfigValue>, OpError> {
    let mut config = prev.config.clone();
    for (k, v) in &new.config {
        if config.get(k).is_some_and(|c| c.secret) {
            return Err(OpError::failed(format!(
                "{k} is a secret of {}: change it with `config set {} {k}=… --secret`, not --config",
                new.name, new.name
            )));
        }
        config.insert(k.clone(), v.clone());
    }
    check_env_secrets(&new.name, &new.env, &config)?;
    schema::manifest::validate_config(&config).map_err(|e| OpError::failed(e.to_string()))?;
    Ok(config)
}

/// The env of a new release over the running one's `prev`: the deploy's
/// own (it replaces the whole env), or with `keep` (`--keep-env`) the
/// running env with the deploy's over it. Returns what changed, by name.
pub fn carry_env(prev: &Manifest, new: &mut Manifest, keep: bool) -> EnvChanges {
    if keep {
        let mut env = prev.env.clone();
        env.append(&mut new.env);
        new.env = env;
    }
    EnvChanges::between(&prev.env, &new.env)
}

/// Refuses env variables that name one of the app's secrets.
pub fn check_env_secrets(
    app: &str,
    env: &std::collections::BTreeMap<String, String>,
    config: &std::collections::BTreeMap<String, ConfigValue>,
) -> Result<(), OpError> {
    if let Some(k) = env
        .keys()
        .find(|k| config.get(*k).is_some_and(|c| c.secret))
    {
        return Err(OpError::failed(format!(
            "--env {k}: {k} is a secret of {app}; env is shown by `info` and passed to every library the app uses, so secrets are read through wasi:config (`config set {app} {k}=… --secret`), never env"
        )));
    }
    Ok(())
}

/// A job runs one at a time: its replicas are 0 (paused) or 1.
pub fn check_job_replicas(name: &str, kind: AppKind, replicas: u32) -> Result<(), OpError> {
    if kind == AppKind::Job && replicas > 1 {
        return Err(OpError::failed(format!(
            "{name} is scaled to {replicas}, but a job runs one at a time: pass --replicas 1 (or 0 to pause)"
        )));
    }
    Ok(())
}

/// The console's one line.
pub fn summary(o: &DeployOutcome) -> String {
    let env = o
        .env_changes
        .as_ref()
        .and_then(EnvChanges::summary)
        .map(|e| format!("; {e}"))
        .unwrap_or_default();
    format!(
        "{} {} {} ({} replicas, compiled in {} ms){env}",
        o.app, o.version, o.state, o.replicas, o.compile_ms
    )
}

/// A deploy typed where its files are (the `hostd` command line, the local
/// console): reads the manifest (its fields become flags; flags given win),
/// finds the artifact (FILE, or the manifest's `artifact` beside it) and
/// reads it with `read` (`-` is stdin, where the caller has one). Returns
/// the deploy as a daemon or the gateway takes it, FILE `-`, and the bytes.
pub fn prepare_local(
    mut d: DeployArgs,
    read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<(DeployArgs, Vec<u8>), OpError> {
    if let Some(path) = d.manifest.clone() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| OpError::failed(format!("cannot read manifest {path}: {e}")))?;
        let m = schema::Manifest::from_toml(&text)
            .map_err(|e| OpError::failed(format!("manifest {path}: {e}")))?;
        // `deploy --manifest F [FILE]`: a lone positional is the file.
        if d.file.is_none()
            && d.app
                .as_deref()
                .is_some_and(|a| a.ends_with(".wasm") || a == "-")
        {
            d.file = d.app.take();
        }
        if d.file.is_none()
            && let Some(a) = &m.artifact
        {
            let base = Path::new(&path).parent().unwrap_or(Path::new("."));
            d.file = Some(base.join(a).display().to_string());
        }
        d.overlay_manifest(&m);
    }
    // An environment past its bounds is refused here, with its reason,
    // rather than by a frame limit on the way.
    let env: std::collections::BTreeMap<String, String> = d.env.iter().cloned().collect();
    schema::manifest::validate_env(&env).map_err(|e| OpError::failed(e.to_string()))?;
    let file = d.file.clone().ok_or_else(|| {
        OpError::usage("deploy needs a FILE (or - for stdin), or a manifest with `artifact`")
    })?;
    let bytes = read(&file).map_err(|e| {
        if file == "-" {
            OpError::failed(format!("cannot read the artifact from stdin: {e}"))
        } else {
            OpError::failed(format!("cannot read {file}: {e}"))
        }
    })?;
    d.file = Some("-".into());
    Ok((d, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(line: &str) -> DeployArgs {
        match crate::parse_line(line).unwrap().command {
            crate::Command::Deploy(d) => *d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_local_deploy_reads_its_file_and_sends_it_as_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.wasm");
        std::fs::write(&f, b"\0asm").unwrap();
        let d = deploy(&format!("deploy api {} --replicas 2", f.display()));
        let (d, bytes) = prepare_local(d, |p| std::fs::read(p)).unwrap();
        assert_eq!(bytes, b"\0asm");
        assert_eq!(d.file.as_deref(), Some("-"));
        assert_eq!((d.app.as_deref(), d.replicas), (Some("api"), Some(2)));
        let e = prepare_local(deploy("deploy api /nonexistent.wasm"), |p| std::fs::read(p));
        assert!(
            e.unwrap_err()
                .message
                .starts_with("cannot read /nonexistent.wasm")
        );
    }

    #[test]
    fn a_manifest_gives_the_flags_and_the_artifact_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("svc.wasm"), b"\0asm").unwrap();
        let toml = dir.path().join("svc.toml");
        std::fs::write(
            &toml,
            "name = \"svc\"\nkind = \"worker\"\nreplicas = 3\nartifact = \"svc.wasm\"\n",
        )
        .unwrap();
        let d = deploy(&format!(
            "deploy --manifest {} --replicas 1",
            toml.display()
        ));
        let (d, bytes) = prepare_local(d, |p| std::fs::read(p)).unwrap();
        assert_eq!(bytes, b"\0asm");
        assert_eq!(d.app.as_deref(), Some("svc"));
        assert_eq!(d.replicas, Some(1), "a flag wins over the file");
        assert_eq!(d.kind, Some(schema::AppKind::Worker));
        assert_eq!(d.manifest, None);
    }
}
