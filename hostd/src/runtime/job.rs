//! Jobs: a WASI command started on a cron schedule, one run at a time.
//!
//! A run that is still going when the next one is due makes that one
//! skipped (and says so in a `system` record) rather than stacking runs.
//! A run past the release's timeout is interrupted.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema::cron::Schedule;
use tokio::task::JoinHandle;

use super::status::InstanceStatus;
use super::{ReleaseRun, Runtime, StopToken, instance};

pub struct JobStatus {
    pub next_run: Option<i64>,
    /// The run in progress.
    pub current: Option<InstanceStatus>,
    pub runs: u64,
    /// How the last run ended.
    pub last: Option<String>,
}

pub struct JobRun {
    pub stop: StopToken,
    pub status: Arc<Mutex<JobStatus>>,
    pub task: JoinHandle<()>,
}

pub fn start(rt: Arc<Runtime>, rel: Arc<ReleaseRun>) -> JobRun {
    let stop = StopToken::default();
    let status = Arc::new(Mutex::new(JobStatus {
        next_run: None,
        current: None,
        runs: 0,
        last: None,
    }));
    let task = tokio::spawn(schedule_loop(rt, rel, stop.clone(), status.clone()));
    JobRun { stop, status, task }
}

fn lock(s: &Mutex<JobStatus>) -> std::sync::MutexGuard<'_, JobStatus> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

async fn schedule_loop(
    rt: Arc<Runtime>,
    rel: Arc<ReleaseRun>,
    stop: StopToken,
    status: Arc<Mutex<JobStatus>>,
) {
    let (app, v) = (rel.app.clone(), rel.version);
    let text = rel.manifest.schedule.clone().unwrap_or_default();
    let schedule = match Schedule::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            // Manifests are validated at deploy; this is a database edited by hand.
            rt.logs
                .system(&app, Some(v), "scheduler", format!("not scheduling: {e}"));
            return;
        }
    };
    let mut run: Option<JoinHandle<()>> = None;
    let mut n = 0u64;
    loop {
        let now = schema::time::now_millis();
        let Some(next) = schedule.next_after(now) else {
            rt.logs.system(
                &app,
                Some(v),
                "scheduler",
                format!("schedule {text:?} never fires again"),
            );
            break;
        };
        lock(&status).next_run = Some(next);
        let wait = Duration::from_millis((next - now).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.requested() => break,
        }
        if run.as_ref().is_some_and(|r| !r.is_finished()) {
            rt.logs.system(
                &app,
                Some(v),
                "scheduler",
                format!(
                    "skipped the run due at {}: the previous run is still going",
                    schema::time::rfc3339(next)
                ),
            );
            continue;
        }
        n += 1;
        run = Some(start_run(&rt, &rel, &stop, &status, n, next));
    }
    lock(&status).next_run = None;
    if let Some(r) = run {
        // The run got the same stop request: it has its grace, then it is interrupted.
        let _ = r.await;
    }
}

/// Starts run `n` of the job, scheduled for `next`, on a task of its own.
fn start_run(
    rt: &Arc<Runtime>,
    rel: &Arc<ReleaseRun>,
    stop: &StopToken,
    status: &Arc<Mutex<JobStatus>>,
    n: u64,
    next: i64,
) -> JoinHandle<()> {
    let instance: Arc<str> = format!("{}.run-{n}", rel.app).into();
    let current = InstanceStatus {
        instance: instance.clone(),
        release: rel.version,
        state: schema::RunState::Running,
        restarts: 0,
        started: Some(schema::time::now_millis()),
        detail: None,
        memory: Arc::new(AtomicU64::new(0)),
    };
    {
        let mut s = lock(status);
        s.current = Some(current.clone());
        s.runs += 1;
    }
    let (rt, rel, stop, status) = (rt.clone(), rel.clone(), stop.clone(), status.clone());
    tokio::spawn(async move {
        let line = run_once(&rt, &rel, &stop, &instance, current.memory, next).await;
        let mut s = lock(&status);
        s.current = None;
        s.last = Some(line);
    })
}

/// Runs the job's instance once, to its end; the `system` record that says
/// how it ended.
async fn run_once(
    rt: &Arc<Runtime>,
    rel: &Arc<ReleaseRun>,
    stop: &StopToken,
    instance: &str,
    memory: Arc<AtomicU64>,
    next: i64,
) -> String {
    let v = rel.version;
    rt.logs.system(
        &rel.app,
        Some(v),
        instance,
        format!(
            "starting {instance} ({v}, scheduled {})",
            schema::time::rfc3339(next)
        ),
    );
    let began = Instant::now();
    let deadline = rel.manifest.timeout_ms().map(Duration::from_millis);
    let exit = instance::run(rt, rel, instance, memory, stop, deadline).await;
    let took = schema::time::human_duration(began.elapsed());
    let how = if exit.is_success() {
        "finished"
    } else {
        "failed"
    };
    let line = format!("{instance} {how} ({exit}) after {took}");
    rt.logs.system(&rel.app, Some(v), instance, &line);
    line
}
