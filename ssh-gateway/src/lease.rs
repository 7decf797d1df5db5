//! Several gateways on one PostgreSQL database: one is active, holding a
//! lease row with a deadline read against the database's clock; the others
//! are standby. A standby claims the lease every second and takes it when
//! it lapses (its holder died, or let it go on a clean stop); the active
//! renews it every fifth of its length and, when it cannot renew before the
//! deadline as it last knew it, stops serving: by then a standby may have
//! taken over, and two gateways must never both drive the fleet.
//!
//! A lease row (not an advisory lock) because an advisory lock lives as
//! long as its connection, and PostgreSQL may not see a dead machine's
//! connection close for as long as TCP keepalives take; a deadline lapses
//! on time whatever the network did.

use std::time::{Duration, Instant};

use db::SqlDb;

use crate::store::{self, LeaseRecord};

/// How long a lease lasts unless renewed, by default.
pub const DEFAULT_LEASE_SECS: u64 = 10;
/// The shortest and longest lease `--lease-secs` takes.
pub const LEASE_SECS_RANGE: std::ops::RangeInclusive<u64> = 3..=300;

/// A gateway's claim on the lease, on a connection of its own (`db`).
#[derive(Clone)]
pub struct Lease {
    db: SqlDb,
    /// This gateway's name in the lease: its advertised address and this
    /// process's own token, so two processes never share a holder name.
    pub holder: String,
    /// Where operators and hosts reach this gateway.
    pub address: String,
    pub ttl: Duration,
}

impl Lease {
    /// A claim for the gateway reached at `address`.
    pub fn new(db: SqlDb, address: String, ttl: Duration) -> Lease {
        let token = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id().rotate_left(16);
        Lease {
            db,
            holder: format!("{address}#{token:08x}"),
            address,
            ttl,
        }
    }

    fn ttl_ms(&self) -> i64 {
        self.ttl.as_millis().min(i64::MAX as u128) as i64
    }

    /// Claims (or renews) the lease; the lease as it stands after.
    pub async fn claim(&self) -> Result<LeaseRecord, db::DbError> {
        let (h, a, ttl) = (self.holder.clone(), self.address.clone(), self.ttl_ms());
        self.db
            .call(move |c| store::claim_lease(c, &h, &a, ttl))
            .await
    }

    /// Claims the lease every second until this gateway holds it, telling
    /// `standing` who holds it meanwhile. A store that cannot be reached is
    /// said and retried.
    pub async fn acquire(
        &self,
        standing: &tokio::sync::watch::Sender<Option<LeaseRecord>>,
    ) -> LeaseRecord {
        let mut said: Option<String> = None;
        // The lease of a gateway at this same address, and since when it
        // has stood still: a previous run of this gateway (killed, then
        // restarted) whose lease is taken back once it has missed a
        // renewal, without waiting for it to lapse. One that keeps being
        // renewed is another live process at this address: refused.
        let mut stale: Option<(LeaseRecord, std::time::Instant)> = None;
        let mut duplicate_said = false;
        loop {
            match self.claim().await {
                Ok(r) if r.held_by(&self.holder) => {
                    let _ = standing.send(Some(r.clone()));
                    return r;
                }
                Ok(r) => {
                    if r.address == self.address && r.until_ms > r.now_ms {
                        match &stale {
                            Some((seen, since))
                                if seen.holder == r.holder
                                    && seen.until_ms == r.until_ms
                                    && since.elapsed() >= self.ttl / 5 + Duration::from_secs(1) =>
                            {
                                let (h, a, ttl, seen) = (
                                    self.holder.clone(),
                                    self.address.clone(),
                                    self.ttl_ms(),
                                    seen.clone(),
                                );
                                let taken = self
                                    .db
                                    .call(move |c| store::take_over_lease(c, &h, &a, ttl, &seen))
                                    .await;
                                if let Ok(true) = taken {
                                    tracing::info!(previous = %r.holder, "took back the lease of this gateway's previous run");
                                    continue;
                                }
                            }
                            Some((seen, _))
                                if seen.holder == r.holder && seen.until_ms == r.until_ms => {}
                            Some((seen, _)) if seen.holder == r.holder => {
                                if !duplicate_said {
                                    tracing::error!(
                                        holder = %r.holder,
                                        "another running gateway advertises the same address ({}) and holds the lease; give each gateway its own --advertise",
                                        self.address
                                    );
                                    duplicate_said = true;
                                }
                                stale = Some((r.clone(), std::time::Instant::now()));
                            }
                            _ => stale = Some((r.clone(), std::time::Instant::now())),
                        }
                    } else {
                        stale = None;
                    }
                    if said.as_deref() != Some(r.holder.as_str()) {
                        tracing::info!(active = %r.address, "standby: another gateway holds the lease");
                        said = Some(r.holder.clone());
                    }
                    let _ = standing.send(Some(r));
                }
                Err(e) => tracing::warn!(error = %e, "standby: cannot read the lease; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Renews the lease every fifth of its length while this gateway is
    /// active; returns why when it is lost: another gateway took it, or it
    /// could not be renewed before it lapses (then another may take it).
    pub async fn hold(&self, first: LeaseRecord) -> String {
        let every = self.ttl / 5;
        // The deadline by this process's clock: the lease ends no later
        // than the store's deadline, read when it was renewed.
        let mut deadline =
            Instant::now() + Duration::from_millis((first.until_ms - first.now_ms).max(0) as u64);
        loop {
            tokio::time::sleep(every).await;
            let asked = Instant::now();
            match tokio::time::timeout(every.max(Duration::from_secs(1)), self.claim()).await {
                Ok(Ok(r)) if r.held_by(&self.holder) => {
                    deadline = asked + Duration::from_millis((r.until_ms - r.now_ms).max(0) as u64);
                }
                Ok(Ok(r)) => {
                    return format!("the gateway at {} holds the lease now", r.address);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew the lease; retrying"),
                Err(_) => tracing::warn!("renewing the lease is taking too long; retrying"),
            }
            // Stop before the lease can lapse: a margin of one renewal.
            if Instant::now() + every >= deadline {
                return format!(
                    "could not renew the lease within {} s (is the database reachable?)",
                    self.ttl.as_secs()
                );
            }
        }
    }

    /// Lets the lease go (a clean stop), so a standby takes over at once.
    pub async fn release(&self) {
        let h = self.holder.clone();
        if let Err(e) = self.db.call(move |c| store::release_lease(c, &h)).await {
            tracing::warn!(error = %e, "could not let the lease go; a standby takes over when it lapses");
        }
    }
}

/// What a standby tells whoever connects: that it is one, and who is active.
pub fn standby_message(me: &str, lease: Option<&LeaseRecord>) -> String {
    let text = match lease {
        Some(r) if r.address == me && r.until_ms > r.now_ms => format!(
            "{STANDBY_PREFIX} this gateway ({me}) was restarted and is taking its lease back; retry in a few seconds"
        ),
        Some(r) if r.until_ms > r.now_ms => format!(
            "{STANDBY_PREFIX} this gateway ({me}) is a standby; the active gateway is {} (active since {}); use --gateway {}",
            r.address,
            schema::time::rfc3339(r.since_ms),
            r.address
        ),
        Some(r) => format!(
            "{STANDBY_PREFIX} this gateway ({me}) is a standby; the lease of {} has lapsed and a standby is taking over; retry in a few seconds",
            r.address
        ),
        None => format!(
            "{STANDBY_PREFIX} this gateway ({me}) is a standby, waiting for the database; retry in a few seconds"
        ),
    };
    schema::render::clean(&text).into_owned()
}

/// How a standby's message begins (clients recognise it).
pub const STANDBY_PREFIX: &str = ssh_client::STANDBY_BANNER;
