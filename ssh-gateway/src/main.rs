//! `ssh-gateway`: serve a fleet, and manage who may reach it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use db::{Durability, SqlDb, Target};
use russh::keys::{HashAlg, PrivateKey};
use schema::audit::Action;
use ssh_gateway::cli::{Cli, Cmd, KeysCmd};
use ssh_gateway::fleet::{Fleet, FleetConfig};
use ssh_gateway::keys;

fn data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".local/share/cranefleet-gateway")
    })
}

/// Where the state is: `--db` (a SQLite path or a postgres:// URL), else
/// DATA/gateway.db.
fn db_target(dir: &Path, flag: Option<&str>) -> Target {
    match flag {
        Some(s) if !s.is_empty() => Target::parse(s),
        _ => Target::Sqlite(dir.join("gateway.db")),
    }
}

fn open_db(dir: &Path, target: &Target) -> anyhow::Result<SqlDb> {
    net::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if let Target::Sqlite(path) = target {
        // Never start empty over what this gateway kept: its artifacts.
        let state = [dir.join("artifacts"), dir.join("ssh_host_ed25519_key")];
        db::check_state(path, &state)?;
    }
    Ok(SqlDb::open(
        target,
        schema::migrations::GATEWAY,
        Durability::Full,
    )?)
}

/// `--advertise`, else the listen address (the hostname for 0.0.0.0).
fn advertised(flag: Option<String>, listen: &std::net::SocketAddr) -> String {
    flag.unwrap_or_else(|| {
        if listen.ip().is_unspecified() {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
            format!("{host}:{}", listen.port())
        } else {
            listen.to_string()
        }
    })
}

/// Loads the host key, or makes one (ed25519) on first start.
fn host_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let (key, created) = ssh_client::load_or_create_key(path)
        .with_context(|| format!("the gateway's host key {}", path.display()))?;
    if created {
        tracing::info!(path = %path.display(), "generated the gateway host key");
    }
    Ok(key)
}

/// Who runs a `keys` command: a local user of the gateway's machine.
fn local_who() -> String {
    schema::Actor::local(std::env::var("USER").unwrap_or_else(|_| "admin".into())).to_string()
}

/// What `serve` was given beyond the fleet's configuration.
struct ServeArgs {
    listen: String,
    key_path: Option<PathBuf>,
    limits: ssh_gateway::server::Limits,
    metrics: Option<std::net::SocketAddr>,
    target: Target,
    advertise: Option<String>,
    lease: Duration,
}

async fn serve(cfg: FleetConfig, args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        listen,
        key_path,
        limits,
        metrics,
        target,
        advertise,
        lease,
    } = args;
    let dir = cfg.dir.clone();
    match net::raise_nofile_limit() {
        Ok(n) => tracing::debug!(open_files = n, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let db = open_db(&dir, &target)?;
    // Bound before anything starts, so a taken address fails the start;
    // served from the start (a standby says it is one).
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let figures = Arc::new(ssh_gateway::metrics::GatewayMetrics::default());
    if let Some(addr) = metrics {
        let l = prom::bind(addr).await?;
        let addr = l.local_addr()?;
        tokio::spawn(prom::serve(
            l,
            figures.clone(),
            prom::Limits::default(),
            shutdown.clone(),
        ));
        tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    }
    let key = host_key(&key_path.unwrap_or_else(|| dir.join("ssh_host_ed25519_key")))?;
    let fp = key.public_key().fingerprint(HashAlg::Sha256);
    let config = Arc::new(russh::server::Config {
        keys: vec![key],
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(10)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}; pick another --listen"))?;
    let local = listener.local_addr()?;
    // With PostgreSQL, gateways sharing the database take turns: this one
    // serves as a standby (naming the active one) until it holds the lease.
    let lease = match &target {
        Target::Postgres(_) => {
            let address = advertised(advertise, &local);
            // The lease has a connection of its own: a renewal never waits
            // behind the store's other work (a large artifact's bytes going
            // into the database).
            let lease_db = SqlDb::open(&target, schema::migrations::GATEWAY, Durability::Full)?;
            let lease = ssh_gateway::lease::Lease::new(lease_db, address, lease);
            let (standing, mut seen) = tokio::sync::watch::channel(None);
            let (message_tx, message) = tokio::sync::watch::channel(
                ssh_gateway::lease::standby_message(&lease.address, None),
            );
            let (active_tx, active) = tokio::sync::watch::channel(false);
            tracing::info!(listen = %local, db = %target, gateway = %lease.address, "ssh-gateway starting: claiming the lease");
            let holder = lease.address.clone();
            let relay = tokio::spawn(async move {
                while seen.changed().await.is_ok() {
                    let m = ssh_gateway::lease::standby_message(&holder, seen.borrow().as_ref());
                    let _ = message_tx.send(m);
                }
            });
            let standby = ssh_gateway::server::standby::run(
                config.clone(),
                &listener,
                limits,
                message,
                active,
            );
            tokio::pin!(standby);
            let first = {
                let acquire = lease.acquire(&standing);
                tokio::pin!(acquire);
                tokio::select! {
                    r = &mut acquire => r,
                    _ = wait_for_signal() => {
                        tracing::info!("shutting down (standby)");
                        relay.abort();
                        return Ok(());
                    }
                    _ = &mut standby => unreachable!("the standby loop runs until told"),
                }
            };
            let _ = active_tx.send(true);
            let _ = standby.await;
            relay.abort();
            tracing::info!(gateway = %lease.address, epoch = first.epoch, "holding the lease: this gateway is active");
            Some((lease, first))
        }
        Target::Sqlite(_) => None,
    };
    // Renewed from the moment it is held, loading the state included (a
    // new active gateway may copy artifacts for a while first).
    type Held = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;
    let mut held: Held = match &lease {
        Some((l, first)) => {
            let (l, first) = (l.clone(), first.clone());
            Box::pin(async move { l.hold(first).await })
        }
        None => Box::pin(std::future::pending()),
    };
    let fleet = tokio::select! {
        f = Fleet::open(cfg, db) => f?,
        why = &mut held => anyhow::bail!(
            "this gateway lost the lease ({why}) while loading the fleet's state, and stopped; restarted, it serves as a standby"
        ),
    };
    tracing::info!(listen = %local, host_key = %fp, data = %dir.display(), db = %target, "ssh-gateway serving");
    let server = ssh_gateway::server::Server::new(fleet.clone());
    figures.activate(fleet.clone(), server.sessions());
    let serving = tokio::spawn(ssh_gateway::server::run(
        server, config, listener, limits, shutdown,
    ));
    let lost = tokio::select! {
        _ = wait_for_signal() => None,
        why = &mut held => Some(why),
    };
    match &lost {
        None => tracing::info!("shutting down"),
        Some(why) => {
            tracing::error!("lost the lease: {why}; stopping so that one gateway drives the fleet")
        }
    }
    fleet.closing();
    let _ = shutdown_tx.send(true);
    let _ = serving.await;
    // Sessions were told; give them a moment to say goodbye.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some((l, _)) = &lease
        && lost.is_none()
    {
        l.release().await;
    }
    match lost {
        Some(why) => anyhow::bail!(
            "this gateway lost the lease ({why}) and stopped; restarted, it serves as a standby"
        ),
        None => Ok(()),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn keys_cmd(dir: PathBuf, target: Target, json: bool, cmd: KeysCmd) -> anyhow::Result<()> {
    let db = open_db(&dir, &target)?;
    match cmd {
        KeysCmd::Add { role, file, name } => {
            let text = if file == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?
            };
            let key = keys::parse_public_key(&text)?;
            let name = name.unwrap_or_else(|| {
                let c = key.comment().to_string();
                let c = c.trim();
                if !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
                {
                    c.to_string()
                } else {
                    Path::new(&file)
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("key")
                        .to_string()
                }
            });
            let now = schema::time::now_millis();
            let entry = db
                .call(move |c| Ok::<_, db::SqlError>(keys::add(c, role, &key, &name, now)))
                .await??;
            let detail = format!("{} {} ({})", entry.role, entry.name, entry.fingerprint);
            audit_key_change(&db, Action::KeysAdd, detail.clone()).await?;
            if json {
                println!("{}", serde_json::to_string(&entry)?);
            } else {
                println!("enrolled {detail}");
            }
        }
        KeysCmd::List => {
            let list = db.call(|c| keys::list(c)).await?;
            if json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|k| {
                        vec![
                            k.name.clone(),
                            k.role.to_string(),
                            k.fingerprint.clone(),
                            k.added.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    schema::render::table_styled(
                        &["NAME", "ROLE", "FINGERPRINT", "ADDED"],
                        &rows,
                        ops::process::stdout_style()
                    )
                );
            }
        }
        KeysCmd::Role { name, role } => {
            let n = name.clone();
            let was = db
                .call(move |c| Ok::<_, db::SqlError>(keys::set_role(c, &n, role)))
                .await??;
            let detail = format!("{name}: {was} -> {role}");
            audit_key_change(&db, Action::KeysRole, detail.clone()).await?;
            if !json {
                println!("changed {detail}");
            }
        }
        KeysCmd::Rm { name } => {
            let n = name.clone();
            db.call(move |c| Ok::<_, db::SqlError>(keys::remove(c, &n)))
                .await??;
            audit_key_change(&db, Action::KeysRm, name.clone()).await?;
            if !json {
                println!("removed {name}");
            }
        }
    }
    Ok(())
}

/// Audits a change to the enrolled keys, made by the local user.
async fn audit_key_change(db: &SqlDb, action: Action, detail: String) -> anyhow::Result<()> {
    let (who, now) = (local_who(), schema::time::now_millis());
    db.call(move |c| {
        let e = db::audit::Entry {
            time: now,
            key: &who,
            action,
            app: None,
            detail: &detail,
            refused: false,
        };
        ssh_gateway::store::audit(c, &e)
    })
    .await?;
    Ok(())
}

/// `completions` and `man`: files for everyone to read, written before
/// the daemon's private umask.
fn docs(cmd: &Cmd) -> Option<std::io::Result<()>> {
    match cmd {
        Cmd::Completions(args) => {
            Some(ops::clidoc::run_completions(&Cli::command(), args).map(|_| ()))
        }
        Cmd::Man(args) => Some(ops::clidoc::run_man(&Cli::command(), args).map(|_| ())),
        Cmd::Serve { .. } | Cmd::Keys(_) => None,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match docs(&cli.command) {
        Some(Ok(())) => return ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        None => {}
    }
    let daemon = matches!(cli.command, Cmd::Serve { .. });
    // Whatever the gateway writes (gateway.db and its WAL, artifacts, its
    // host key) is its owner's alone.
    net::private_umask();
    ops::process::init_tracing(if daemon { "info,russh=warn" } else { "warn" });
    let rt = match ops::process::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let dir = data_dir(cli.data.as_deref());
    let target = db_target(&dir, cli.db.as_deref());
    let r = rt.block_on(async {
        match cli.command {
            Cmd::Serve {
                listen,
                host_key,
                name,
                keep_releases,
                down_after_s,
                login_grace_time,
                max_startups,
                per_source_max_startups,
                audit_keep,
                audit_refusals_every_s,
                secrets_key,
                keyvalue_url,
                metrics,
                advertise,
                lease_secs,
            } => {
                let limits = ssh_gateway::server::Limits {
                    login_grace: Duration::from_secs(login_grace_time),
                    max_startups: max_startups as usize,
                    per_source_max_startups: per_source_max_startups as usize,
                    audit_refusals_every: Duration::from_secs(audit_refusals_every_s),
                    audit_keep,
                };
                let name = name.unwrap_or_else(|| {
                    std::fs::read_to_string("/proc/sys/kernel/hostname")
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|_| "gateway".into())
                });
                let mut cfg = FleetConfig::new(name, dir);
                cfg.keep_releases = keep_releases as usize;
                cfg.down_after = Duration::from_secs(down_after_s);
                if let Some(k) = secrets_key {
                    cfg.secrets_key = k;
                }
                if let Some(url) = keyvalue_url {
                    schema::manifest::validate_redis_url(&url)
                        .map_err(|e| anyhow::anyhow!("--keyvalue-url: {e}"))?;
                    cfg.keyvalue_url = Some(url);
                }
                let args = ServeArgs {
                    listen,
                    key_path: host_key,
                    limits,
                    metrics,
                    target,
                    advertise,
                    lease: Duration::from_secs(lease_secs),
                };
                serve(cfg, args).await
            }
            Cmd::Keys(k) => keys_cmd(dir, target, cli.json, k).await,
            // Answered before the umask, by `docs`.
            Cmd::Completions(_) | Cmd::Man(_) => Ok(()),
        }
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
