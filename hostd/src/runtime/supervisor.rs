//! One app's instances on this host: started, restarted, switched, stopped.
//!
//! A worker has `replicas` slots; each slot runs its instance in a loop that
//! restarts it with exponential backoff (100 ms doubling to 60 s) until a
//! stop is requested or the release is in a crash loop (5 failed starts in
//! 60 s across its slots). A switch starts the new release's slots first,
//! then asks the old ones to stop, so a worker app never has zero instances
//! because of a deploy. Jobs run from a schedule loop (see `job.rs`); http
//! apps are served per request by the ingress (see `http.rs`) and only
//! record here which release is active.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema::{AppKind, RunState, Version};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::job::{self, JobRun};
use super::message;
pub use super::status::{AppStatus, InstanceStatus};
use super::{ReleaseRun, Runtime, StopToken, instance};

/// What a supervisor tells the host about, asynchronously.
#[derive(Debug)]
pub enum Event {
    /// The release's instances keep failing; it was stopped.
    Crashloop {
        app: Arc<str>,
        version: Version,
        detail: String,
    },
}

/// Longest restart delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// An instance that ran this long before exiting starts over at the base delay.
const STABLE_AFTER: Duration = Duration::from_secs(60);

pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (BACKOFF_BASE * 2u32.pow(exp)).min(BACKOFF_CAP)
}

struct Slot {
    index: u32,
    stop: StopToken,
    status: Arc<Mutex<InstanceStatus>>,
    task: JoinHandle<()>,
}

impl Slot {
    fn request_stop(&self) {
        self.stop.request();
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(
            st.state,
            RunState::Running | RunState::Starting | RunState::Backoff
        ) {
            st.state = RunState::Stopping;
        }
    }
}

struct Inner {
    kind: AppKind,
    active: Option<Arc<ReleaseRun>>,
    replicas: u32,
    slots: Vec<Slot>,
    draining: Vec<Slot>,
    job: Option<JobRun>,
    draining_jobs: Vec<JobRun>,
    /// message apps: the active release's consumer, and old ones finishing.
    consumer: Option<message::Consumer>,
    draining_consumers: Vec<message::Consumer>,
    /// Why the active release is not running (crash loop), if so.
    halted: Option<String>,
    /// workers: a live canary (its release and percent of the replicas)
    /// and its slots.
    canary: Option<(Arc<ReleaseRun>, u8)>,
    canary_slots: Vec<Slot>,
}

/// A worker's replicas split between the active release and a canary
/// taking `share` percent: at least one of each while the canary is live
/// (one more than `replicas` when there are too few to split).
fn worker_split(replicas: u32, share: u8) -> (u32, u32) {
    if share == 0 || replicas == 0 {
        return (replicas, 0);
    }
    let canary = (replicas * u32::from(share)).div_ceil(100).max(1);
    (replicas.saturating_sub(canary).max(1), canary)
}

/// The supervisor of one app on this host.
pub struct AppRuntime {
    pub name: Arc<str>,
    rt: Arc<Runtime>,
    events: mpsc::UnboundedSender<Event>,
    inner: Mutex<Inner>,
    /// Restarts of the app's instances, every release together, since the
    /// supervisor was made (`ps` shows the current instances' own).
    restarts: Arc<AtomicU64>,
}

impl AppRuntime {
    pub fn new(
        name: &str,
        kind: AppKind,
        rt: Arc<Runtime>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Arc<AppRuntime> {
        Arc::new(AppRuntime {
            name: name.into(),
            rt,
            events,
            inner: Mutex::new(Inner {
                kind,
                active: None,
                replicas: 0,
                slots: Vec::new(),
                draining: Vec::new(),
                job: None,
                draining_jobs: Vec::new(),
                consumer: None,
                draining_consumers: Vec::new(),
                halted: None,
                canary: None,
                canary_slots: Vec::new(),
            }),
            restarts: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Restarts of this app's instances since its supervisor was made.
    pub fn restarts_total(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The release serving now.
    pub fn active(&self) -> Option<Arc<ReleaseRun>> {
        self.lock().active.clone()
    }

    /// Makes `rel` the running release with `replicas` instances; the
    /// previous release's instances get their grace period and stop.
    pub fn activate(&self, rel: Arc<ReleaseRun>, replicas: u32) {
        let mut g = self.lock();
        g.kind = rel.manifest.kind;
        g.halted = None;
        g.replicas = replicas;
        g.active = Some(rel.clone());
        let mut old: Vec<Slot> = std::mem::take(&mut g.slots);
        // A switch ends a canary: promoted, its release is the active one.
        g.canary = None;
        old.append(&mut g.canary_slots);
        for s in &old {
            s.request_stop();
        }
        g.draining.extend(old);
        if let Some(j) = g.job.take() {
            j.stop.request();
            g.draining_jobs.push(j);
        }
        if let Some(c) = g.consumer.take() {
            c.stop.request();
            g.draining_consumers.push(c);
        }
        match rel.manifest.kind {
            AppKind::Worker => {
                for i in 1..=replicas {
                    let slot = self.spawn_slot(&rel, i, "");
                    g.slots.push(slot);
                }
            }
            AppKind::Job => {
                if replicas > 0 {
                    g.job = Some(job::start(self.rt.clone(), rel.clone()));
                }
            }
            // Requests in flight keep their release; new ones get this one.
            AppKind::Http => {
                let route = self.rt.routes.get_or_create(&self.name);
                route.set_replicas(replicas);
                route.set_release(rel.clone());
            }
            AppKind::Message => {
                if replicas > 0 {
                    g.consumer = Some(self.start_consumer(&rel, replicas));
                }
            }
        }
        if rel.manifest.kind != AppKind::Http {
            self.rt.routes.remove(&self.name);
        }
        g.draining.retain(|s| !s.task.is_finished());
        g.draining_jobs.retain(|j| !j.task.is_finished());
    }

    /// Fresh instances of the active release: the running ones get their
    /// grace period and stop, new ones start (a message app's consumer
    /// hands over as on a switch; an http app's next requests get fresh
    /// instances anyway). Clears a crash loop; returns whether there was
    /// one.
    pub fn restart(&self) -> bool {
        let (rel, replicas, halted) = {
            let g = self.lock();
            (g.active.clone(), g.replicas, g.halted.is_some())
        };
        if let Some(rel) = rel {
            rel.clear_crashes();
            self.activate(rel, replicas);
        }
        halted
    }

    /// Sets the wanted replicas of the active release.
    pub fn scale(&self, replicas: u32) {
        let mut g = self.lock();
        g.replicas = replicas;
        let Some(rel) = g.active.clone() else { return };
        if g.halted.is_some() {
            return; // a crash-looping release stays stopped until a deploy or rollback
        }
        match rel.manifest.kind {
            AppKind::Worker => self.place_workers(&mut g, &rel),
            AppKind::Job => match (replicas, g.job.is_some()) {
                (0, true) => {
                    if let Some(j) = g.job.take() {
                        j.stop.request();
                        g.draining_jobs.push(j);
                    }
                }
                (n, false) if n > 0 => g.job = Some(job::start(self.rt.clone(), rel.clone())),
                _ => {}
            },
            AppKind::Http => {
                if let Some(route) = self.rt.routes.get(&self.name) {
                    route.set_replicas(replicas);
                }
            }
            // A new consumer with the new bound; the old one finishes what
            // it handles (same release, so nothing is handled twice: the old
            // one reads nothing more, and its pending stay pending).
            AppKind::Message => {
                if let Some(c) = g.consumer.take() {
                    c.stop.request();
                    g.draining_consumers.push(c);
                }
                if replicas > 0 {
                    g.consumer = Some(self.start_consumer(&rel, replicas));
                }
            }
        }
    }

    /// workers: sets (or, `None`, ends) a canary taking `share` percent
    /// of the replicas.
    pub fn set_canary(&self, canary: Option<(Arc<ReleaseRun>, u8)>) {
        let mut g = self.lock();
        let changed = match (&g.canary, &canary) {
            (Some((a, _)), Some((b, _))) => !Arc::ptr_eq(a, b),
            _ => true,
        };
        if changed {
            let old: Vec<Slot> = std::mem::take(&mut g.canary_slots);
            for s in &old {
                s.request_stop();
            }
            g.draining.extend(old);
        }
        g.canary = canary;
        if g.kind == AppKind::Worker
            && g.halted.is_none()
            && let Some(rel) = g.active.clone()
        {
            self.place_workers(&mut g, &rel);
        }
    }

    /// Brings a worker's slots to its replicas, split with a canary if one
    /// is live: stops the last ones beyond it, starts the missing ones.
    fn place_workers(&self, g: &mut Inner, rel: &Arc<ReleaseRun>) {
        let share = g.canary.as_ref().map_or(0, |c| c.1);
        let (stable, canary) = worker_split(g.replicas, share);
        while g.slots.len() as u32 > stable {
            if let Some(s) = g.slots.pop() {
                s.request_stop();
                g.draining.push(s);
            }
        }
        while (g.slots.len() as u32) < stable {
            let index = g.slots.last().map(|s| s.index + 1).unwrap_or(1);
            let slot = self.spawn_slot(rel, index, "");
            g.slots.push(slot);
        }
        while g.canary_slots.len() as u32 > canary {
            if let Some(s) = g.canary_slots.pop() {
                s.request_stop();
                g.draining.push(s);
            }
        }
        if let Some((crel, _)) = g.canary.clone() {
            while (g.canary_slots.len() as u32) < canary {
                let index = g.canary_slots.last().map(|s| s.index + 1).unwrap_or(1);
                let slot = self.spawn_slot(&crel, index, "canary-");
                g.canary_slots.push(slot);
            }
        }
    }

    fn start_consumer(&self, rel: &Arc<ReleaseRun>, replicas: u32) -> message::Consumer {
        let recover = self
            .rt
            .consumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.name.to_string());
        message::start(self.rt.clone(), rel.clone(), replicas, recover)
    }

    /// Stops the active release's instances because it is in a crash loop.
    pub fn halt(&self, version: Version, why: String) {
        let mut g = self.lock();
        if g.active.as_ref().map(|r| r.version) != Some(version) {
            return;
        }
        g.halted = Some(why);
        // The slots stay listed, so `ps` shows each one's restarts and last exit.
        for s in &g.slots {
            s.stop.request();
        }
    }

    /// Stops everything and waits for it (rm, shutdown).
    pub async fn stop(&self) {
        self.rt.routes.remove(&self.name);
        let (slots, jobs, consumers) = {
            let mut g = self.lock();
            g.active = None;
            let mut slots: Vec<Slot> = std::mem::take(&mut g.slots);
            slots.append(&mut g.canary_slots);
            slots.append(&mut g.draining);
            let mut jobs: Vec<JobRun> = g.job.take().into_iter().collect();
            jobs.append(&mut g.draining_jobs);
            let mut consumers: Vec<message::Consumer> = g.consumer.take().into_iter().collect();
            consumers.append(&mut g.draining_consumers);
            (slots, jobs, consumers)
        };
        for c in &consumers {
            c.stop.request();
        }
        for s in &slots {
            s.stop.request();
        }
        for j in &jobs {
            j.stop.request();
        }
        for s in slots {
            let _ = s.task.await;
        }
        for j in jobs {
            let _ = j.task.await;
        }
        for c in consumers {
            let _ = c.task.await;
        }
    }

    pub fn status(&self) -> AppStatus {
        let mut g = self.lock();
        g.draining.retain(|s| !s.task.is_finished());
        g.draining_jobs.retain(|j| !j.task.is_finished());
        g.draining_consumers.retain(|c| !c.task.is_finished());
        let release = g.active.as_ref().map(|r| r.version);
        let mut instances: Vec<InstanceStatus> = g
            .slots
            .iter()
            .chain(g.canary_slots.iter())
            .chain(g.draining.iter())
            .map(|s| s.status.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect();
        let mut next_run = None;
        let mut job_state = None;
        for j in g.job.iter().chain(g.draining_jobs.iter()) {
            let js = j.status.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(run) = &js.current {
                instances.push(run.clone());
            }
            if g.job
                .as_ref()
                .is_some_and(|cur| Arc::ptr_eq(&cur.status, &j.status))
            {
                next_run = js.next_run;
                job_state = Some((js.current.is_some(), js.last.clone(), js.runs));
            }
        }
        let mut running = instances
            .iter()
            .filter(|i| i.state == RunState::Running && Some(i.release) == release)
            .count() as u32;
        let mut rps = None;
        let mut messages = None;
        let mut requests = None;
        let mut warm = None;
        if g.kind == AppKind::Http
            && let Some(route) = self.rt.routes.get(&self.name)
        {
            running = route.in_flight.load(Ordering::SeqCst);
            warm = Some(route.warm());
            let (rate, minute) = route.metrics.ps();
            rps = Some(rate);
            requests = Some(minute);
        }
        let restarts = instances.iter().map(|i| i.restarts).sum();
        let memory = instances
            .iter()
            .map(|i| i.memory.load(Ordering::Relaxed))
            .sum::<u64>()
            + warm.map(|w| w.1).unwrap_or(0);
        let started = instances.iter().filter_map(|i| i.started).min();
        let (state, detail) = match (g.kind, &g.halted, &g.active) {
            (_, Some(why), _) => (RunState::Crashloop, Some(why.clone())),
            (_, None, None) => (RunState::Stopped, None),
            (AppKind::Worker, None, Some(_)) => {
                let state = if g.replicas == 0 {
                    RunState::Stopped
                } else if running >= g.replicas {
                    RunState::Running
                } else if instances.iter().any(|i| i.state == RunState::Backoff) {
                    RunState::Restarting
                } else {
                    RunState::Starting
                };
                let detail = instances
                    .iter()
                    .filter(|i| i.state == RunState::Backoff)
                    .find_map(|i| i.detail.clone());
                (state, detail)
            }
            (AppKind::Job, None, Some(_)) => match job_state {
                None => (RunState::Paused, None),
                Some((true, _, _)) => (RunState::Running, None),
                Some((false, last, _)) => (RunState::Scheduled, last),
            },
            (AppKind::Http, None, Some(rel)) => (
                if g.replicas == 0 {
                    RunState::Stopped
                } else {
                    RunState::Serving
                },
                // Reuse on: how many instances wait warm for a request.
                (rel.manifest.http.reuse() > 1).then(|| {
                    let warm = warm.map(|w| w.0).unwrap_or(0);
                    format!(
                        "reuse {}: {warm} warm instance{}",
                        rel.manifest.http.reuse(),
                        if warm == 1 { "" } else { "s" }
                    )
                }),
            ),
            (AppKind::Message, None, Some(_)) => match &g.consumer {
                None => (RunState::Stopped, None),
                Some(c) => {
                    let n = &c.counters;
                    let (rate, minute) = self.rt.message_metrics(&self.name).window.ps();
                    requests = Some(minute);
                    let stats = schema::MessageStats {
                        pending: Some(n.pending.load(Ordering::Relaxed))
                            .filter(|p| *p != message::UNKNOWN),
                        in_flight: n.in_flight.load(Ordering::Relaxed),
                        handled_per_s: rate,
                        handled: n.handled.load(Ordering::Relaxed),
                        failed: n.failed.load(Ordering::Relaxed),
                        dead_lettered: n.dead.load(Ordering::Relaxed),
                    };
                    running = stats.in_flight.min(u64::from(u32::MAX)) as u32;
                    rps = Some(stats.handled_per_s);
                    messages = Some(stats);
                    match n.error() {
                        // The source cannot be read: nothing is handled
                        // until it is back.
                        Some(why) => (RunState::Degraded, Some(why)),
                        None => (RunState::Serving, None),
                    }
                }
            },
        };
        AppStatus {
            kind: g.kind,
            release,
            replicas: g.replicas,
            running,
            restarts,
            state,
            detail,
            next_run,
            started,
            memory,
            rps,
            messages,
            requests,
            instances,
        }
    }

    fn spawn_slot(&self, rel: &Arc<ReleaseRun>, index: u32, tag: &str) -> Slot {
        let instance: Arc<str> = format!("{}.{tag}{index}", rel.app).into();
        let status = Arc::new(Mutex::new(InstanceStatus {
            instance: instance.clone(),
            release: rel.version,
            state: RunState::Starting,
            restarts: 0,
            started: None,
            detail: None,
            memory: Arc::new(AtomicU64::new(0)),
        }));
        let stop = StopToken::default();
        let task = tokio::spawn(slot_loop(
            self.rt.clone(),
            rel.clone(),
            instance,
            stop.clone(),
            status.clone(),
            self.events.clone(),
            self.restarts.clone(),
        ));
        Slot {
            index,
            stop,
            status,
            task,
        }
    }
}

impl Drop for AppRuntime {
    fn drop(&mut self) {
        let g = self.lock();
        for s in g
            .slots
            .iter()
            .chain(g.canary_slots.iter())
            .chain(g.draining.iter())
        {
            s.stop.request();
        }
        for j in g.job.iter().chain(g.draining_jobs.iter()) {
            j.stop.request();
        }
    }
}

fn set(status: &Mutex<InstanceStatus>, f: impl FnOnce(&mut InstanceStatus)) {
    f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Keeps one worker replica running until stopped or crash-looping.
async fn slot_loop(
    rt: Arc<Runtime>,
    rel: Arc<ReleaseRun>,
    instance: Arc<str>,
    stop: StopToken,
    status: Arc<Mutex<InstanceStatus>>,
    events: mpsc::UnboundedSender<Event>,
    restarts: Arc<AtomicU64>,
) {
    let memory = status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .memory
        .clone();
    let slot = SlotRun {
        rt,
        rel,
        instance,
        stop,
        status,
        memory,
        events,
    };
    let mut failures = 0u32;
    loop {
        if slot.stop.is_requested() || slot.rel.is_crashlooped() {
            break;
        }
        let (exit, ran) = slot.run_once().await;
        if slot.stop.is_requested() {
            slot.log(format!(
                "{} stopped ({exit}) after {}",
                slot.instance,
                schema::time::human_duration(ran)
            ));
            break;
        }
        if ran >= STABLE_AFTER {
            failures = 0;
        }
        failures += 1;
        set(&slot.status, |s| {
            s.restarts += 1;
            s.detail = Some(exit.to_string());
        });
        restarts.fetch_add(1, Ordering::Relaxed);
        if slot.crashlooped(&exit) {
            return;
        }
        let delay = backoff(failures);
        slot.log(format!(
            "{} exited ({exit}) after {}; restarting in {}",
            slot.instance,
            schema::time::human_duration(ran),
            schema::time::human_duration(delay)
        ));
        set(&slot.status, |s| s.state = RunState::Backoff);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = slot.stop.requested() => break,
        }
    }
    set(&slot.status, |s| {
        if s.state != RunState::Crashloop {
            s.state = RunState::Stopped;
        }
    });
}

/// What one worker replica's loop works with.
struct SlotRun {
    rt: Arc<Runtime>,
    rel: Arc<ReleaseRun>,
    instance: Arc<str>,
    stop: StopToken,
    status: Arc<Mutex<InstanceStatus>>,
    /// The instance's memory, as `ps` shows it.
    memory: Arc<AtomicU64>,
    events: mpsc::UnboundedSender<Event>,
}

impl SlotRun {
    /// A `system` record of this instance.
    fn log(&self, line: impl Into<String>) {
        self.rt
            .logs
            .system(&self.rel.app, Some(self.rel.version), &self.instance, line);
    }

    /// Runs the instance once, to its end; how it ended and how long it ran.
    async fn run_once(&self) -> (instance::Exit, Duration) {
        set(&self.status, |s| {
            s.state = RunState::Running;
            s.started = Some(schema::time::now_millis());
        });
        self.log(format!("starting {} ({})", self.instance, self.rel.version));
        let began = Instant::now();
        let exit = instance::run(
            &self.rt,
            &self.rel,
            &self.instance,
            self.memory.clone(),
            &self.stop,
            self.rel.manifest.timeout_ms().map(Duration::from_millis),
        )
        .await;
        (exit, began.elapsed())
    }

    /// After a failed run: whether the release is in a crash loop, so the
    /// slot stops. The run that makes it one says so in the logs and tells
    /// the host.
    fn crashlooped(&self, exit: &instance::Exit) -> bool {
        if self.rel.record_crash() {
            // A worker that keeps returning success did not crash: it is not
            // a long-running program (a job, or one missing its loop).
            let detail = if matches!(exit, instance::Exit::Code(0)) {
                format!(
                    "crash loop: exited successfully {} times within {}s, and a worker is meant to keep running; restarts stopped (work that finishes is a job: --schedule; `restart` tries again)",
                    super::CRASHLOOP_STARTS,
                    super::CRASHLOOP_WINDOW.as_secs()
                )
            } else {
                format!(
                    "crash loop: {} failed starts within {}s (last: {exit}); restarts stopped",
                    super::CRASHLOOP_STARTS,
                    super::CRASHLOOP_WINDOW.as_secs()
                )
            };
            self.log(&detail);
            set(&self.status, |s| s.state = RunState::Crashloop);
            let _ = self.events.send(Event::Crashloop {
                app: self.rel.app.clone(),
                version: self.rel.version,
                detail,
            });
            return true;
        }
        if self.rel.is_crashlooped() {
            set(&self.status, |s| s.state = RunState::Crashloop);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_to_a_cap_of_60s() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(11), Duration::from_secs(60));
        assert_eq!(backoff(1000), Duration::from_secs(60));
    }
}
