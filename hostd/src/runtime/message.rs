//! Message apps: one fresh instance per message of a Redis channel or
//! stream, calling Spin's `fermyon:spin/inbound-redis#handle-message`.
//!
//! - A channel (`--subscribe`) is pub/sub: each host subscribed gets each
//!   message once, at most once (as Spin's Redis trigger).
//! - A stream (`--stream --group`) is a consumer group: the group is
//!   created at the stream's start if absent (messages written before the
//!   deploy are handled too), each host is a consumer named after itself,
//!   and a message is acknowledged only after the handler returned success
//!   (at least once). A failed message is retried with backoff; after
//!   `max_attempts` it is copied to `STREAM:dead` (with its id, attempts and
//!   error) and acknowledged. On the first start after hostd starts, the
//!   host's own pending messages are handled first; messages pending on
//!   another consumer longer than `claim_idle_s` are claimed.
//! - `replicas` bounds the handlers running at once on a host.
//!
//! A release switch starts the new release's consumer and asks the old one
//! to stop: it reads nothing more, lets its handlers finish and
//! acknowledges them; nothing is lost (an unacknowledged message stays
//! pending and is handled again) or acknowledged twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use schema::manifest::Source;
use tokio::sync::Semaphore;
use wasmtime::Store;

use super::instance::{configure_store, wasi_builder};
use super::state::{Limits, P2State};
use super::{Code, ReleaseRun, Runtime, StopToken};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/spin",
        world: "cranefleet:hostd/message-handler",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::MessageHandlerPre;

/// How long a blocking stream read waits for new messages (and so how
/// long a stop may wait for a read under way: a read is never abandoned,
/// or what it delivered would sit pending until claimed).
const BLOCK: Duration = Duration::from_millis(250);
/// Messages read at once.
const BATCH: usize = 64;
/// First retry delay of a failed message; doubles, at most [`RETRY_CAP`].
const RETRY_BASE: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(30);
/// Failed messages waiting out their backoff at most; past it the
/// consumer reads nothing new until retries drain (a handler failing
/// everything must not make hostd hold the stream in memory).
const MAX_WAITING: u64 = 1024;
/// How often messages idle on other consumers are looked for.
const CLAIM_EVERY: Duration = Duration::from_secs(5);
/// How often the group's backlog is asked for (`ps`'s pending).
const PENDING_EVERY: Duration = Duration::from_secs(1);
/// Acknowledgements sent in one XACK at most.
const ACK_BATCH: usize = 512;

/// What `ps` shows of a message app on this host.
#[derive(Debug)]
pub struct Counters {
    pub in_flight: AtomicU64,
    pub handled: AtomicU64,
    pub failed: AtomicU64,
    pub dead: AtomicU64,
    /// The group's unhandled messages (lag + pending), as last asked;
    /// [`UNKNOWN`] for a channel or while the source cannot be asked.
    pub pending: AtomicU64,
    /// Why the source cannot be read now (the consumer is reconnecting):
    /// `ps` shows the app degraded with this reason.
    pub error: std::sync::Mutex<Option<String>>,
}

/// [`Counters::pending`] when nobody knows.
pub const UNKNOWN: u64 = u64::MAX;

impl Default for Counters {
    fn default() -> Self {
        Counters {
            in_flight: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            pending: AtomicU64::new(UNKNOWN),
            error: std::sync::Mutex::new(None),
        }
    }
}

impl Counters {
    fn set_error(&self, e: Option<String>) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A running consumer of one release.
pub struct Consumer {
    pub stop: StopToken,
    pub task: tokio::task::JoinHandle<()>,
    pub counters: Arc<Counters>,
}

/// Checks that a trigger's server answers: a release whose messages cannot
/// be read is refused before it switches.
pub async fn check_source(src: &Source) -> Result<(), String> {
    let shown = schema::render::mask_url_password(&src.server);
    let fail = |e: String| {
        format!(
            "cannot reach the message source {shown}: {e}; start it, or fix --{} (the running release is untouched)",
            if src.stream { "stream" } else { "subscribe" }
        )
    };
    let client = redis::Client::open(src.server.as_str()).map_err(|e| fail(e.to_string()))?;
    let ping = async {
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Err(_) => Err(fail("no answer in 5 s".into())),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Starts consuming for `rel` with at most `replicas` handlers at once.
/// `recover` handles this host's own pending messages first (the first
/// consumer after hostd started).
pub fn start(rt: Arc<Runtime>, rel: Arc<ReleaseRun>, replicas: u32, recover: bool) -> Consumer {
    let stop = StopToken::default();
    let counters = Arc::new(Counters::default());
    let (retry, retries) = tokio::sync::mpsc::unbounded_channel();
    let metrics = rt.message_metrics(&rel.app);
    let c = Ctx {
        metrics,
        rt,
        rel,
        slots: Arc::new(Semaphore::new(replicas.max(1) as usize)),
        stop: stop.clone(),
        counters: counters.clone(),
        retry,
        waiting: Arc::new(AtomicU64::new(0)),
    };
    let task = tokio::spawn(async move { c.run(recover, retries).await });
    Consumer {
        stop,
        task,
        counters,
    }
}

#[derive(Clone)]
struct Ctx {
    rt: Arc<Runtime>,
    rel: Arc<ReleaseRun>,
    slots: Arc<Semaphore>,
    stop: StopToken,
    counters: Arc<Counters>,
    /// Failed stream messages come back here after their backoff.
    retry: tokio::sync::mpsc::UnboundedSender<Message>,
    /// Retries waiting out their backoff.
    waiting: Arc<AtomicU64>,
    /// The app's handling metrics (health rules read them) and totals.
    metrics: Arc<super::metrics::MessageMetrics>,
}

/// One message to handle.
struct Message {
    id: String,
    payload: Vec<u8>,
    fields: Vec<(String, Vec<u8>)>,
    attempt: u32,
}

impl Ctx {
    fn source(&self) -> Option<Source> {
        self.rel.manifest.trigger.source().ok()
    }

    fn note(&self, line: String) {
        self.rt
            .logs
            .system(&self.rel.app, Some(self.rel.version), "consumer", line);
    }

    async fn run(self, recover: bool, mut retries: tokio::sync::mpsc::UnboundedReceiver<Message>) {
        let Some(src) = self.source() else {
            self.note("no trigger: nothing to consume".into());
            return;
        };
        let mut delay = Duration::from_millis(100);
        loop {
            let r = if src.stream {
                self.consume_stream(&src, recover, &mut retries).await
            } else {
                self.consume_channel(&src).await
            };
            match r {
                Ok(()) => return, // stopped
                Err(e) => {
                    let why = format!("{}: {e}", schema::render::mask_url_password(&src.server));
                    self.note(format!("{why}; reconnecting in {} ms", delay.as_millis()));
                    self.counters.pending.store(UNKNOWN, Ordering::Relaxed);
                    self.counters
                        .set_error(Some(format!("{why}; reconnecting")));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.requested() => return,
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Pub/sub: every message published while subscribed, at most once.
    async fn consume_channel(&self, src: &Source) -> redis::RedisResult<()> {
        use futures_util::StreamExt;
        let client = redis::Client::open(src.server.as_str())?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&src.name).await?;
        self.counters.set_error(None);
        self.note(format!("subscribed to channel {}", src.name));
        let mut messages = pubsub.on_message();
        let mut n = 0u64;
        loop {
            let msg = tokio::select! {
                m = messages.next() => m,
                _ = self.stop.requested() => break,
            };
            let Some(msg) = msg else {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::IoError,
                    "the subscription ended",
                )));
            };
            n += 1;
            let m = Message {
                id: format!("{n}"),
                payload: msg.get_payload_bytes().to_vec(),
                fields: Vec::new(),
                attempt: 1,
            };
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                break;
            };
            let c = self.clone();
            let channel = src.name.clone();
            tokio::spawn(async move {
                let _permit = permit;
                c.handle(&channel, &m).await;
            });
        }
        self.drain_handlers().await;
        Ok(())
    }

    /// A stream's consumer group: at least once.
    async fn consume_stream(
        &self,
        src: &Source,
        recover: bool,
        retries: &mut tokio::sync::mpsc::UnboundedReceiver<Message>,
    ) -> redis::RedisResult<()> {
        let group = self.rel.manifest.trigger.group.clone().unwrap_or_default();
        let consumer = self.rt.logs.host().to_string();
        let client = redis::Client::open(src.server.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(BLOCK + Duration::from_secs(5))
            .set_number_of_retries(1);
        // One connection blocks on reads; the other acknowledges, claims
        // and asks for the backlog.
        let mut reader = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        let writer = ConnectionManager::new_with_config(client, config).await?;
        match reader
            .xgroup_create_mkstream::<_, _, _, ()>(&src.name, &group, "0")
            .await
        {
            Ok(()) => self.note(format!(
                "created consumer group {group} of stream {} at its start",
                src.name
            )),
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        self.counters.set_error(None);
        self.note(format!(
            "consuming stream {} in group {group} as {consumer}",
            src.name
        ));
        let (acks, acked) = tokio::sync::mpsc::unbounded_channel();
        let s = Session {
            stream: src.name.clone(),
            group: group.clone(),
            w: writer,
            acks,
            unacked: Arc::new(AtomicU64::new(0)),
        };
        // Background work of this connection: batched acknowledgements and
        // the backlog figure; both end with the session.
        let acker = tokio::spawn(ack_loop(
            self.clone(),
            (s.stream.clone(), s.group.clone(), s.w.clone()),
            s.unacked.clone(),
            acked,
        ));
        let _backlog = AbortOnDrop(tokio::spawn(backlog_loop(
            self.counters.clone(),
            (s.stream.clone(), s.group.clone(), s.w.clone()),
        )));
        let r = self
            .stream_session(&s, &mut reader, &consumer, recover, retries)
            .await;
        // Whatever ended the session, what was handled is acknowledged
        // (or, with the connection gone, left pending for a retry).
        self.drain_now(&s).await;
        drop(s);
        let _ = acker.await;
        r
    }

    async fn stream_session(
        &self,
        s: &Session,
        reader: &mut ConnectionManager,
        consumer: &str,
        recover: bool,
        retries: &mut tokio::sync::mpsc::UnboundedReceiver<Message>,
    ) -> redis::RedisResult<()> {
        let group = s.group.as_str();
        if recover {
            // This host's own pending messages first: what it read before a
            // restart and never acknowledged, in id order, each once (a
            // failure among them is retried like any other).
            let mut from = "0".to_string();
            let mut n = 0;
            loop {
                let opts = StreamReadOptions::default()
                    .group(group, consumer)
                    .count(BATCH);
                let r: StreamReadReply = reader
                    .xread_options(&[&s.stream], &[from.as_str()], &opts)
                    .await?;
                let ids: Vec<StreamId> = r.keys.into_iter().flat_map(|k| k.ids).collect();
                let Some(last) = ids.last() else { break };
                from = last.id.clone();
                n += ids.len();
                for id in ids {
                    let attempt = self.deliveries(s, &id.id).await;
                    self.dispatch(s, message(id, attempt)).await;
                }
            }
            if n > 0 {
                self.note(format!(
                    "handling {n} messages left pending by an earlier run"
                ));
            }
        }
        // Claim at once: a consumer that stopped between reading and
        // acknowledging (a crash) left messages only a claim recovers.
        let mut last_claim = Instant::now()
            .checked_sub(CLAIM_EVERY)
            .unwrap_or_else(Instant::now);
        while !self.stop.is_requested() {
            // Retries whose backoff is over.
            while let Ok(m) = retries.try_recv() {
                self.dispatch(s, m).await;
            }
            if last_claim.elapsed() >= CLAIM_EVERY {
                last_claim = Instant::now();
                self.claim_idle(s, consumer).await?;
            }
            if self.waiting.load(Ordering::SeqCst) >= MAX_WAITING {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            // Read a batch; dispatch waits for free handlers (what is read
            // and not yet handled stays pending, so nothing is lost).
            let block = if self.waiting.load(Ordering::SeqCst) == 0 {
                BLOCK
            } else {
                Duration::from_millis(50)
            };
            let opts = StreamReadOptions::default()
                .group(group, consumer)
                .count(BATCH)
                .block(block.as_millis() as usize);
            let read: Option<StreamReadReply> =
                reader.xread_options(&[&s.stream], &[">"], &opts).await?;
            for id in read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                self.dispatch(s, message(id, 1)).await;
            }
        }
        // Stopping: what runs finishes and is acknowledged (by the caller);
        // retries not yet due stay pending for the next consumer of this
        // host.
        Ok(())
    }

    /// Waits for the handlers under way and their acknowledgements.
    async fn drain_now(&self, s: &Session) {
        while self.counters.in_flight.load(Ordering::SeqCst) > 0
            || s.unacked.load(Ordering::SeqCst) > 0
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits for the handlers under way (a channel: nothing to acknowledge).
    async fn drain_handlers(&self) {
        while self.counters.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// How often `id` was delivered (Redis counts it per pending entry).
    async fn deliveries(&self, s: &Session, id: &str) -> u32 {
        let mut w = s.w.clone();
        let r: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
            .arg(&s.stream)
            .arg(&s.group)
            .arg(id)
            .arg(id)
            .arg(1)
            .query_async(&mut w)
            .await;
        match r {
            Ok(redis::Value::Array(rows)) => match rows.first() {
                Some(redis::Value::Array(row)) => match row.get(3) {
                    Some(redis::Value::Int(n)) => (*n).clamp(1, u32::MAX as i64) as u32,
                    _ => 1,
                },
                _ => 1,
            },
            _ => 1,
        }
    }

    /// Takes messages idle longer than `claim_idle_s` on any consumer of
    /// the group (a host that died holding them).
    async fn claim_idle(&self, s: &Session, consumer: &str) -> redis::RedisResult<()> {
        let idle_ms = self.rel.manifest.trigger.claim_idle_s() * 1000;
        let mut c = s.w.clone();
        let r: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&s.stream)
            .arg(&s.group)
            .arg(consumer)
            .arg(idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut c)
            .await?;
        let claimed = redis::from_redis_value::<StreamAutoClaimReply>(&r)
            .map(|r| r.claimed)
            .unwrap_or_default();
        if !claimed.is_empty() {
            self.note(format!(
                "claimed {} messages idle for over {} s on another consumer",
                claimed.len(),
                idle_ms / 1000
            ));
        }
        for id in claimed {
            let attempt = self.deliveries(s, &id.id).await;
            self.dispatch(s, message(id, attempt)).await;
        }
        Ok(())
    }

    /// Hands `m` to a handler (waiting for a free slot); its outcome acks
    /// it, sends it back for a retry after its backoff, or dead-letters it.
    async fn dispatch(&self, s: &Session, m: Message) {
        let max = self.rel.manifest.trigger.max_attempts();
        if m.attempt > max {
            self.dead_letter(s, &m, "no attempts left").await;
            return;
        }
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return;
        };
        // Counted until its outcome is settled, so a stop waits for it.
        s.unacked.fetch_add(1, Ordering::SeqCst);
        let (c, s) = (self.clone(), s.clone());
        tokio::spawn(async move {
            let ok = {
                let _permit = permit;
                c.handle(&s.stream, &m).await
            };
            if ok {
                // The ack loop settles it.
                if s.acks.send(m.id).is_err() {
                    s.unacked.fetch_sub(1, Ordering::SeqCst);
                }
                return;
            }
            if m.attempt >= max {
                c.dead_letter(&s, &m, "the handler failed").await;
                s.unacked.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            // Still pending in the group: if this consumer stops before the
            // retry, the next one claims it.
            c.waiting.fetch_add(1, Ordering::SeqCst);
            s.unacked.fetch_sub(1, Ordering::SeqCst);
            // The session may end while this waits (its acknowledgements
            // must not wait for a retry's backoff).
            drop(s);
            let wait = (RETRY_BASE * 2u32.saturating_pow(m.attempt.saturating_sub(1).min(16)))
                .min(RETRY_CAP);
            tokio::time::sleep(wait).await;
            c.waiting.fetch_sub(1, Ordering::SeqCst);
            let _ = c.retry.send(Message {
                attempt: m.attempt + 1,
                ..m
            });
        });
    }

    /// Copies `m` to `STREAM:dead` and acknowledges it.
    async fn dead_letter(&self, s: &Session, m: &Message, why: &str) {
        let mut w = s.w.clone();
        let dead = format!("{}:dead", s.stream);
        let mut fields: Vec<(String, Vec<u8>)> = m.fields.clone();
        fields.push(("cranefleet-id".into(), m.id.clone().into_bytes()));
        fields.push((
            "cranefleet-attempts".into(),
            m.attempt.to_string().into_bytes(),
        ));
        fields.push(("cranefleet-error".into(), why.as_bytes().to_vec()));
        let r: redis::RedisResult<String> = w.xadd(&dead, "*", &fields).await;
        match r {
            Ok(_) => {
                let _: redis::RedisResult<()> = w.xack(&s.stream, &s.group, &[&m.id]).await;
                self.counters.dead.fetch_add(1, Ordering::Relaxed);
                self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                self.rt.logs.system(
                    &self.rel.app,
                    Some(self.rel.version),
                    "consumer",
                    format!(
                        "{} {}: moved to {dead} after {} attempts ({why})",
                        s.stream, m.id, m.attempt
                    ),
                );
            }
            Err(e) => self.note(format!(
                "could not dead-letter {}: {e}; it stays pending",
                m.id
            )),
        }
    }

    /// Runs one fresh instance's `handle-message`; true on success.
    async fn handle(&self, source: &str, m: &Message) -> bool {
        self.counters.in_flight.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let n = self.counters.handled.load(Ordering::Relaxed)
            + self.counters.failed.load(Ordering::Relaxed);
        let instance = format!("{}.msg-{}", self.rel.app, n + 1);
        // A live canary takes its share of messages (by the message's id).
        let split = self.rt.message_canary(&self.rel.app);
        let to_canary = split.as_ref().filter(|s| s.takes_key(&m.id));
        let rel = to_canary.map_or(&self.rel, |s| &s.rel);
        let outcome = self.call(rel, &instance, &m.payload).await;
        let took = started.elapsed();
        let ms = took.as_secs_f64() * 1000.0;
        let ok = outcome.is_ok();
        // Health rules read messages as requests: a failure is an error.
        let status = if ok { 200 } else { 500 };
        self.metrics.window.record(status, took);
        if let Some(s) = &split {
            if to_canary.is_some() {
                s.served.fetch_add(1, Ordering::Relaxed);
                s.canary.record(status, took);
            } else {
                s.stable.record(status, took);
            }
        }
        if ok {
            self.counters.handled.fetch_add(1, Ordering::Relaxed);
            self.metrics.handled.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            self.metrics.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.rt.logs.message(
            &rel.app,
            Some(rel.version),
            &instance,
            format!(
                "message {source} {} attempt {}: {} in {ms:.2} ms",
                m.id,
                m.attempt,
                match &outcome {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("failed ({e})"),
                }
            ),
        );
        ok
    }

    async fn call(&self, rel: &ReleaseRun, instance: &str, payload: &[u8]) -> Result<(), String> {
        let Code::Message(pre) = &*rel.code else {
            return Err("the release is not a message handler".into());
        };
        let memory = Arc::new(AtomicU64::new(0));
        let cap = rel.manifest.memory_bytes();
        let state = P2State::new(
            wasi_builder(&self.rt, rel, instance).build(),
            &rel.caps,
            instance,
            Limits::new(cap, memory),
        );
        let mut store = Store::new(&self.rt.engine, state);
        configure_store(
            &mut store,
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
            |s| &mut s.limits,
        );
        let deadline = Duration::from_millis(rel.manifest.timeout_ms().unwrap_or(30_000));
        let run = async {
            let h = pre.instantiate_async(&mut store).await?;
            h.fermyon_spin_inbound_redis()
                .call_handle_message(&mut store, &payload.to_vec())
                .await
        };
        match tokio::time::timeout(deadline, run).await {
            Err(_) => Err(format!("timed out after {} ms", deadline.as_millis())),
            Ok(Err(trap)) => Err(format!("trapped: {}", trap.root_cause())),
            Ok(Ok(Err(_))) => Err("the handler returned an error".into()),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}

/// One connection's consumer of a stream.
#[derive(Clone)]
struct Session {
    stream: String,
    group: String,
    /// Acknowledges, claims, dead-letters, asks for the backlog.
    w: ConnectionManager,
    /// Ids handled successfully, for [`ack_loop`].
    acks: tokio::sync::mpsc::UnboundedSender<String>,
    /// Messages handed to a handler whose outcome is not settled yet
    /// (acknowledged, dead-lettered or waiting for a retry).
    unacked: Arc<AtomicU64>,
}

/// Acknowledges handled messages, as many per XACK as have finished since
/// the last one (at most [`ACK_BATCH`]): one round trip for a batch instead
/// of one per message. Ends when every sender is gone.
async fn ack_loop(
    c: Ctx,
    (stream, group, mut w): (String, String, ConnectionManager),
    unacked: Arc<AtomicU64>,
    mut acked: tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let mut ids: Vec<String> = Vec::with_capacity(ACK_BATCH);
    while let Some(first) = acked.recv().await {
        ids.push(first);
        while ids.len() < ACK_BATCH {
            match acked.try_recv() {
                Ok(id) => ids.push(id),
                Err(_) => break,
            }
        }
        if let Err(e) = w.xack::<_, _, _, ()>(&stream, &group, &ids).await {
            c.note(format!(
                "could not acknowledge {} messages ({} to {}): {e}; they stay pending and will be handled again",
                ids.len(),
                ids.first().map_or("", String::as_str),
                ids.last().map_or("", String::as_str),
            ));
        }
        unacked.fetch_sub(ids.len() as u64, Ordering::SeqCst);
        ids.clear();
    }
}

/// Keeps [`Counters::pending`] current: the group's lag (never delivered)
/// plus its pending entries (delivered, not acknowledged).
async fn backlog_loop(
    counters: Arc<Counters>,
    (stream, group, mut w): (String, String, ConnectionManager),
) {
    loop {
        let r: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(&mut w)
            .await;
        let n = r.ok().and_then(|v| group_backlog(&v, &group));
        counters
            .pending
            .store(n.unwrap_or(UNKNOWN), Ordering::Relaxed);
        tokio::time::sleep(PENDING_EVERY).await;
    }
}

/// `lag + pending` of `group` in an XINFO GROUPS reply (RESP2: a list of
/// flat key/value lists). `None` when Redis cannot say (a lag of nil, as
/// after XDEL or XSETID, or a group that is gone).
fn group_backlog(v: &redis::Value, group: &str) -> Option<u64> {
    let redis::Value::Array(groups) = v else {
        return None;
    };
    for g in groups {
        let fields: Vec<(String, redis::Value)> = match g {
            redis::Value::Array(kv) => kv
                .chunks(2)
                .filter_map(|p| match p {
                    [k, v] => redis::from_redis_value::<String>(k)
                        .ok()
                        .map(|k| (k, v.clone())),
                    _ => None,
                })
                .collect(),
            redis::Value::Map(kv) => kv
                .iter()
                .filter_map(|(k, v)| {
                    redis::from_redis_value::<String>(k)
                        .ok()
                        .map(|k| (k, v.clone()))
                })
                .collect(),
            _ => continue,
        };
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let name = get("name").and_then(|v| redis::from_redis_value::<String>(v).ok());
        if name.as_deref() != Some(group) {
            continue;
        }
        let pending = get("pending").and_then(|v| redis::from_redis_value::<u64>(v).ok())?;
        let lag = get("lag").and_then(|v| redis::from_redis_value::<u64>(v).ok())?;
        return Some(pending + lag);
    }
    None
}

/// Aborts a background task when the scope that owns it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn message(id: StreamId, attempt: u32) -> Message {
    let mut fields: Vec<(String, Vec<u8>)> = id
        .map
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                redis::from_redis_value::<Vec<u8>>(v).unwrap_or_default(),
            )
        })
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    // The handler's payload: the field `payload`, else the only field.
    let payload = fields
        .iter()
        .find(|(k, _)| k == "payload")
        .or(fields.first())
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Message {
        id: id.id,
        payload,
        fields,
        attempt,
    }
}
