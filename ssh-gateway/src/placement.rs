//! Placement: which hosts run how many replicas of an app.
//!
//! Replicas go one at a time to the eligible host with the fewest instances
//! (counting those just assigned), ties broken by name, so the answer is
//! deterministic and the same inputs always give the same placement. A host
//! is eligible when it is up and carries every label the app asks for
//! (hosts carry `arch` as a label, so `--label arch=aarch64` pins an arch).
//! A job runs once per fleet: one replica on one host.
//!
//! What moves replicas that run: a host down for the grace period loses its
//! replicas; a rebalance (after one) places on the hosts that have been up
//! for the grace period, so a host that connects and drops at once moves
//! nothing off healthy hosts. Scaling keeps running replicas where they
//! are ([`keep`]) and places only the difference.

use std::collections::{BTreeMap, HashMap};

use schema::AppKind;

/// What placement needs to know of a host.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub up: bool,
    pub labels: BTreeMap<String, String>,
    /// Instances of other apps placed on it.
    pub load: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("no host is up to place {app} on")]
    NoHostUp { app: String },
    #[error("no host that is up carries the labels {labels} that {app} asks for")]
    NoMatch { app: String, labels: String },
}

/// Places `replicas` of `app` on `hosts`. Zero replicas places nothing.
pub fn place(
    app: &str,
    kind: AppKind,
    replicas: u32,
    labels: &BTreeMap<String, String>,
    hosts: &[Candidate],
) -> Result<BTreeMap<String, u32>, PlacementError> {
    let up: Vec<&Candidate> = hosts.iter().filter(|h| h.up).collect();
    if up.is_empty() {
        return Err(PlacementError::NoHostUp {
            app: app.to_string(),
        });
    }
    let eligible: Vec<&Candidate> = up
        .into_iter()
        .filter(|h| labels.iter().all(|(k, v)| h.labels.get(k) == Some(v)))
        .collect();
    if eligible.is_empty() {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Err(PlacementError::NoMatch {
            app: app.to_string(),
            labels: l.join(","),
        });
    }
    let replicas = if kind == AppKind::Job {
        replicas.min(1)
    } else {
        replicas
    };
    let mut load: HashMap<&str, u32> = eligible.iter().map(|h| (h.name.as_str(), h.load)).collect();
    let mut out = BTreeMap::new();
    for _ in 0..replicas {
        let best = eligible
            .iter()
            .min_by_key(|h| (load[h.name.as_str()], h.name.as_str()))
            .map(|h| h.name.as_str())
            .unwrap_or_default();
        *load.entry(best).or_default() += 1;
        *out.entry(best.to_string()).or_default() += 1;
    }
    Ok(out)
}

/// Places `replicas` of `app` keeping what `before` has on hosts still up
/// and eligible; only replicas without such a home (and more asked for) are
/// placed, on the least loaded eligible hosts. Fewer asked for: the most
/// crowded hosts give theirs up first.
pub fn keep(
    app: &str,
    kind: AppKind,
    replicas: u32,
    labels: &BTreeMap<String, String>,
    hosts: &[Candidate],
    before: &BTreeMap<String, u32>,
) -> Result<BTreeMap<String, u32>, PlacementError> {
    let eligible = |h: &Candidate| h.up && labels.iter().all(|(k, v)| h.labels.get(k) == Some(v));
    let replicas = if kind == AppKind::Job {
        replicas.min(1)
    } else {
        replicas
    };
    let mut out: BTreeMap<String, u32> = before
        .iter()
        .filter(|(name, n)| **n > 0 && hosts.iter().any(|h| &h.name == *name && eligible(h)))
        .map(|(name, n)| (name.clone(), *n))
        .collect();
    let mut kept: u32 = out.values().sum();
    while kept > replicas {
        let crowded = out
            .iter()
            .max_by_key(|(name, n)| (**n, std::cmp::Reverse((*name).clone())))
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        let n = out.entry(crowded.clone()).or_default();
        *n -= 1;
        if *n == 0 {
            out.remove(&crowded);
        }
        kept -= 1;
    }
    if kept == replicas {
        return Ok(out);
    }
    // The rest goes where `place` would put it, counting what is kept:
    // first to hosts that hold the app stopped (scaled to 0 there), so it
    // comes back where its logs and compiled code are.
    let loaded: Vec<Candidate> = hosts
        .iter()
        .map(|h| Candidate {
            load: h.load + out.get(&h.name).copied().unwrap_or(0),
            ..h.clone()
        })
        .collect();
    let homes: Vec<Candidate> = loaded
        .iter()
        .filter(|h| before.get(&h.name) == Some(&0) && eligible(h))
        .cloned()
        .collect();
    let placed = match place(app, kind, replicas - kept, labels, &homes) {
        Ok(p) if !homes.is_empty() => p,
        _ => place(app, kind, replicas - kept, labels, &loaded)?,
    };
    for (name, n) in placed {
        *out.entry(name).or_default() += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_stay_on_healthy_hosts_whatever_arrives() {
        let before = BTreeMap::from([("a1".into(), 1), ("a2".into(), 1)]);
        let hosts = [
            host("a1", true, 3, &[]),
            host("a2", true, 0, &[]),
            host("evil", true, 0, &[]),
        ];
        let p = keep("api", AppKind::Http, 2, &no_labels(), &hosts, &before).unwrap();
        assert_eq!(p, before, "a newcomer takes nothing from healthy hosts");
        // a1 down past the grace period: only its replica moves.
        let hosts = [
            host("a1", false, 3, &[]),
            host("a2", true, 0, &[]),
            host("b", true, 0, &[]),
        ];
        let p = keep("api", AppKind::Http, 2, &no_labels(), &hosts, &before).unwrap();
        assert_eq!(p, BTreeMap::from([("a2".into(), 1), ("b".into(), 1)]));
        // Scaled down: the most crowded gives up first; up: the least loaded gets.
        let before = BTreeMap::from([("a".into(), 3), ("b".into(), 1)]);
        let hosts = [
            host("a", true, 0, &[]),
            host("b", true, 0, &[]),
            host("c", true, 0, &[]),
        ];
        let p = keep("api", AppKind::Worker, 3, &no_labels(), &hosts, &before).unwrap();
        assert_eq!(p, BTreeMap::from([("a".into(), 2), ("b".into(), 1)]));
        let p = keep("api", AppKind::Worker, 5, &no_labels(), &hosts, &before).unwrap();
        assert_eq!(
            p,
            BTreeMap::from([("a".into(), 3), ("b".into(), 1), ("c".into(), 1)])
        );
    }

    fn host(name: &str, up: bool, load: u32, labels: &[(&str, &str)]) -> Candidate {
        Candidate {
            name: name.into(),
            up,
            load,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn no_labels() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn replicas_spread_over_the_least_loaded_hosts() {
        let hosts = [
            host("a", true, 0, &[]),
            host("b", true, 0, &[]),
            host("c", true, 3, &[]),
        ];
        let p = place("api", AppKind::Worker, 4, &no_labels(), &hosts).unwrap();
        assert_eq!(p, BTreeMap::from([("a".into(), 2), ("b".into(), 2)]));
        let p = place("api", AppKind::Worker, 9, &no_labels(), &hosts).unwrap();
        assert_eq!(p.values().sum::<u32>(), 9);
        assert_eq!(p["c"], 1, "c starts with 3 and is filled last: {p:?}");
    }

    #[test]
    fn down_hosts_and_unmatched_labels_are_skipped() {
        let hosts = [
            host("a", false, 0, &[("arch", "x86_64")]),
            host("b", true, 5, &[("arch", "x86_64"), ("region", "eu")]),
            host("c", true, 0, &[("arch", "aarch64")]),
        ];
        let eu = BTreeMap::from([("region".to_string(), "eu".to_string())]);
        assert_eq!(
            place("api", AppKind::Http, 2, &eu, &hosts).unwrap(),
            BTreeMap::from([("b".into(), 2)])
        );
        let x86 = BTreeMap::from([("arch".to_string(), "x86_64".to_string())]);
        assert_eq!(
            place("api", AppKind::Worker, 1, &x86, &hosts).unwrap(),
            BTreeMap::from([("b".into(), 1)])
        );
        let mars = BTreeMap::from([("region".to_string(), "mars".to_string())]);
        assert!(matches!(
            place("api", AppKind::Worker, 1, &mars, &hosts),
            Err(PlacementError::NoMatch { .. })
        ));
        let none_up = [host("a", false, 0, &[])];
        assert!(matches!(
            place("api", AppKind::Worker, 1, &no_labels(), &none_up),
            Err(PlacementError::NoHostUp { .. })
        ));
    }

    #[test]
    fn a_job_runs_on_one_host_and_zero_replicas_place_nothing() {
        let hosts = [host("a", true, 1, &[]), host("b", true, 0, &[])];
        assert_eq!(
            place("j", AppKind::Job, 1, &no_labels(), &hosts).unwrap(),
            BTreeMap::from([("b".into(), 1)])
        );
        assert!(
            place("w", AppKind::Worker, 0, &no_labels(), &hosts)
                .unwrap()
                .is_empty()
        );
    }
}
