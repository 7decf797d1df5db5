//! `ssh-gateway serve --metrics ADDR` and `hostd agent --metrics ADDR`:
//! the fleet in Prometheus text, checked by `promtool` and scraped by a
//! real `prometheus`.

mod common;

use std::collections::BTreeSet;

use common::*;

/// An address on 127.0.0.1 with a port free right now.
fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Waits until a scrape of `addr` has every `(series, value)` of `want`;
/// returns that scrape.
fn wait_samples(addr: &str, what: &str, want: &[(&str, f64)]) -> String {
    wait_for_or(
        what,
        || {
            let text = scrape(addr);
            want.iter()
                .all(|(series, v)| sample(&text, series) == Some(*v))
                .then_some(text)
        },
        || scrape(addr),
    )
}

#[test]
fn hosts_by_state_deploys_and_rollbacks_are_counted_and_promtool_finds_nothing_to_lint() {
    let m = free_addr();
    let mut f = Fleet::start_with(&["--metrics", &m, "--down-after-s", "3"]);
    let r = get(&m, &m, "/metrics");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    promtool_check(&r.text());
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let text = wait_samples(
        &m,
        "two hosts up, their tunnels open",
        &[
            (r#"cranefleet_hosts{state="up"}"#, 2.0),
            (r#"cranefleet_hosts{state="down"}"#, 0.0),
            (r#"cranefleet_hosts{state="connecting"}"#, 0.0),
            (r#"cranefleet_host_up{host="h1"}"#, 1.0),
            (r#"cranefleet_host_up{host="h2"}"#, 1.0),
            (r#"cranefleet_ssh_connections{role="host"}"#, 2.0),
        ],
    );
    promtool_check(&text);

    // Two deploys, a refused one, a rollback.
    let hello = fixture("http-hello.wasm");
    let hello = hello.to_str().unwrap();
    f.ops(&["deploy", "api", hello, "--replicas", "2"]).ok();
    f.ops(&["deploy", "api", hello, "--replicas", "2", "--env", "V=2"])
        .ok();
    assert_eq!(f.ops(&["deploy", "Bad_Name", hello]).code, 1);
    f.ops(&["rollback", "api"]).ok();
    wait_samples(
        &m,
        "the deploys and the rollback counted",
        &[
            (r#"cranefleet_deploys_total{outcome="succeeded"}"#, 2.0),
            (r#"cranefleet_deploys_total{outcome="failed"}"#, 0.0),
            (r#"cranefleet_deploys_total{outcome="refused"}"#, 1.0),
            (r#"cranefleet_rollbacks_total{kind="manual"}"#, 1.0),
            (r#"cranefleet_rollbacks_total{kind="auto"}"#, 0.0),
        ],
    );

    // A host killed: down once silent for --down-after-s.
    f.kill_agent(1);
    let text = wait_samples(
        &m,
        "h2 down",
        &[
            (r#"cranefleet_hosts{state="up"}"#, 1.0),
            (r#"cranefleet_hosts{state="down"}"#, 1.0),
            (r#"cranefleet_host_up{host="h1"}"#, 1.0),
            (r#"cranefleet_host_up{host="h2"}"#, 0.0),
            (r#"cranefleet_ssh_connections{role="host"}"#, 1.0),
        ],
    );
    promtool_check(&text);
}

#[test]
fn a_real_prometheus_scrapes_the_gateway_and_an_agent() {
    let gw = free_addr();
    let mut f = Fleet::start_with(&["--metrics", &gw]);
    let agent = free_addr();
    f.add_agent_with("h1", &[], &["--metrics", &agent]);
    let tunnel = format!(
        r#"cranefleet_gateway_tunnel_up{{host="h1",gateway="{}"}}"#,
        f.addr()
    );
    let joins = format!(
        r#"cranefleet_gateway_tunnel_joins_total{{host="h1",gateway="{}"}}"#,
        f.addr()
    );
    promtool_check(&wait_samples(
        &agent,
        "the agent's tunnel up",
        &[(&tunnel, 1.0), (&joins, 1.0)],
    ));

    let prometheus = Prometheus::start(&[gw.clone(), agent.clone()]);
    wait_for_or(
        "prometheus to find both targets up",
        || {
            let up: BTreeSet<String> = prometheus
                .query("up")?
                .iter()
                .filter(|s| s["value"][1] == "1")
                .filter_map(|s| s["metric"]["instance"].as_str().map(String::from))
                .collect();
            (up == BTreeSet::from([gw.clone(), agent.clone()])).then_some(())
        },
        || {
            format!(
                "up: {:?}\nprometheus log:\n{}",
                prometheus.query("up"),
                prometheus.log()
            )
        },
    );
    let one = |query: &str, want: &str| {
        wait_for_or(
            &format!("{query} to be {want} in prometheus"),
            || {
                let r = prometheus.query(query)?;
                (r.len() == 1 && r[0]["value"][1] == want).then_some(r)
            },
            || format!("{:?}", prometheus.query(query)),
        )
    };
    let r = one(r#"cranefleet_hosts{state="up"}"#, "1");
    assert_eq!(r[0]["metric"]["instance"], gw.as_str());
    let r = one("cranefleet_gateway_tunnel_up", "1");
    assert_eq!(r[0]["metric"]["host"], "h1");
    assert_eq!(r[0]["metric"]["instance"], agent.as_str());

    // The gateway gone: the agent says its tunnel is down; back: up, and
    // joined a second time.
    f.kill_gateway();
    wait_samples(&agent, "the agent's tunnel down", &[(&tunnel, 0.0)]);
    one(r#"up{job="cranefleet"} == 0"#, "0");
    f.start_gateway();
    wait_samples(
        &agent,
        "the agent's tunnel up again",
        &[(&tunnel, 1.0), (&joins, 2.0)],
    );
}
