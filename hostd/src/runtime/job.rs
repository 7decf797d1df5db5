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

use super::supervisor::InstanceStatus;
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
        let instance: Arc<str> = format!("{app}.run-{n}").into();
        let current = InstanceStatus {
            instance: instance.clone(),
            release: v,
            state: "running",
            restarts: 0,
            started: Some(schema::time::now_millis()),
            detail: None,
            memory: Arc::new(AtomicU64::new(0)),
        };
        {
            let mut s = lock(&status);
            s.current = Some(current.clone());
            s.runs += 1;
        }
        let (rt2, rel2, stop2, status2) = (rt.clone(), rel.clone(), stop.clone(), status.clone());
        run = Some(tokio::spawn(async move {
            let logs = &rt2.logs;
            logs.system(
                &rel2.app,
                Some(v),
                &instance,
                format!(
                    "starting {instance} ({v}, scheduled {})",
                    schema::time::rfc3339(next)
                ),
            );
            let began = Instant::now();
            let deadline = rel2.manifest.timeout_ms().map(Duration::from_millis);
            let exit = instance::run(
                &rt2,
                &rel2,
                &instance,
                current.memory.clone(),
                &stop2,
                deadline,
            )
            .await;
            let took = schema::time::human_duration(began.elapsed());
            let how = if exit.is_success() {
                "finished"
            } else {
                "failed"
            };
            let line = format!("{instance} {how} ({exit}) after {took}");
            logs.system(&rel2.app, Some(v), &instance, &line);
            let mut s = lock(&status2);
            s.current = None;
            s.last = Some(line);
        }));
    }
    lock(&status).next_run = None;
    if let Some(r) = run {
        // The run got the same stop request: it has its grace, then it is interrupted.
        let _ = r.await;
    }
}
