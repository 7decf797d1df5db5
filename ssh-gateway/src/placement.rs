//! Placement: which hosts run how many replicas of an app.
//!
//! Replicas go one at a time to the eligible host with the fewest instances
//! (counting those just assigned), ties broken by name, so the answer is
//! deterministic and the same inputs always give the same placement. A host
//! is eligible when it is up and carries every label the app asks for
//! (hosts carry `arch` as a label, so `--label arch=aarch64` pins an arch).
//! A job runs once per fleet: one replica on one host.

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

#[cfg(test)]
mod tests {
    use super::*;

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
