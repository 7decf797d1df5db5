//! What apps may reach: outbound calls by grant, wasi:keyvalue (SQLite on
//! the host, or a real Redis), wasi:config with secrets. Real hostd, real
//! Redis, a real HTTP upstream, components built by real toolchains
//! (componentize-py for `visits.wasm`, C for the rest).

mod common;

use common::*;
use sha2::{Digest, Sha256};

/// Every file under `dir`, as bytes, contains `needle` nowhere.
fn nowhere_in_files(dir: &std::path::Path, needle: &str) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            nowhere_in_files(&path, needle)?;
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            return Err(format!("{} holds it", path.display()));
        }
    }
    Ok(())
}

#[test]
fn a_python_app_counts_in_keyvalue_calls_only_what_it_is_granted_and_reads_a_secret_shown_nowhere()
{
    let mut h = Hostd::start();
    let allowed = Upstream::start("hello from upstream");
    let refused = Upstream::start("must never be reached");
    let out = h.deploy(
        "visits",
        "visits.wasm",
        &["--kind", "http", "--allow-outbound", &allowed.url()],
    );
    assert_eq!(out["version"], "v1");
    let addr = h.http_addr();
    for n in 1..=3 {
        assert_eq!(
            get(&addr, "visits.localhost", "/visit").text(),
            format!("visits: {n}\n")
        );
    }

    // A granted call goes out; a refused one gets the WASI error, the
    // upstream never sees it, and the app's logs say why, once a minute.
    let call = |url: &str| {
        get(
            &addr,
            "visits.localhost",
            &format!("/call?to={}", urlencode(url)),
        )
    };
    let r = call(&format!("{}/x", allowed.url()));
    assert_eq!(
        (r.status, r.text()),
        (200, "status: 200\nhello from upstream".to_string())
    );
    assert_eq!(allowed.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    for _ in 0..3 {
        let r = call(&format!("{}/x", refused.url()));
        assert_eq!(
            (r.status, r.text()),
            (502, "error: HTTP-request-denied\n".to_string())
        );
    }
    assert_eq!(refused.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let dest = format!("outbound {} denied", refused.url());
    h.wait_log("visits", "the denied destination", |r| {
        r["stream"] == "system" && line(r).contains(&dest)
    });
    let denials = h
        .logs("visits")
        .iter()
        .filter(|r| r["stream"] == "system" && line(r).contains(&dest))
        .count();
    assert_eq!(denials, 1, "one record per destination per minute");
    let rec = h.wait_log("visits", "the grant hint", |r| line(r).contains(&dest));
    assert!(
        line(&rec).contains(&format!("--allow-outbound {}", refused.url())),
        "{rec}"
    );

    // A secret, set as config: the app reads it through wasi:config.
    let secret = "s3cr3t-Value-7f1c";
    let set = h.json(&[
        "config",
        "set",
        "visits",
        &format!("API_KEY={secret}"),
        "--secret",
    ]);
    assert_eq!(
        (set["from"].as_str(), set["version"].as_str()),
        (Some("v1"), Some("v2"))
    );
    h.json(&["config", "set", "visits", "LEVEL=debug"]);
    let want = format!(
        "sha256: {}\n",
        hex::encode(Sha256::digest(secret.as_bytes()))
    );
    assert_eq!(
        get(&addr, "visits.localhost", "/secret?key=API_KEY").text(),
        want
    );
    assert_eq!(
        get(&addr, "visits.localhost", "/config?key=LEVEL").text(),
        "debug"
    );
    let rows = h.json(&["config", "visits"]);
    assert_eq!(rows[0]["key"], "API_KEY");
    assert_eq!(rows[0]["secret"], true);
    assert!(rows[0].get("value").is_none(), "{rows}");
    assert_eq!(
        h.run(&["config", "visits"]).ok().stdout,
        "API_KEY=(secret)\nLEVEL=debug\n"
    );
    let info = h.json(&["info", "visits"]);
    assert_eq!(info["grants"], serde_json::json!([allowed.url()]));
    assert_eq!(info["keyvalue"], "sqlite");
    assert_eq!(
        info["config"][0],
        serde_json::json!({"key": "API_KEY", "secret": true})
    );
    let text = h.run(&["info", "visits"]).ok().stdout;
    assert!(
        text.contains("config     API_KEY (secret), LEVEL"),
        "{text}"
    );
    // Nowhere: not in any command's output, the daemon's log, or any file
    // of the data directory (the database holds it sealed).
    for args in [
        &["config", "visits", "--json"][..],
        &["releases", "visits", "--json"],
        &["ps", "--json"],
        &["ps", "visits", "--json"],
        &["audit", "--json"],
        &["info", "visits"],
        &["logs", "visits", "--since", "0", "--json"],
    ] {
        let r = h.run(args).ok();
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{args:?}"
        );
    }
    assert!(!h.daemon_log().contains(secret));
    nowhere_in_files(h.data(), secret).unwrap();

    // The counter is the app's, not the release's: it survives a rollback
    // (which takes the config back with it) and a restart.
    assert_eq!(
        get(&addr, "visits.localhost", "/visit").text(),
        "visits: 4\n"
    );
    h.json(&["rollback", "visits", "--to", "v1"]);
    assert_eq!(
        get(&addr, "visits.localhost", "/secret?key=API_KEY").status,
        404
    );
    assert_eq!(
        get(&addr, "visits.localhost", "/visit").text(),
        "visits: 5\n"
    );
    h.restart();
    assert_eq!(
        get(&addr, "visits.localhost", "/visit").text(),
        "visits: 6\n"
    );
    h.json(&["rollback", "visits", "--to", "v3"]);
    assert_eq!(
        get(&addr, "visits.localhost", "/secret?key=API_KEY").text(),
        want
    );
    let kv = h.json(&["kv", "visits", "get", "visits"]);
    assert_eq!(kv["value"], "6");
}

#[test]
fn the_quota_refuses_writes_clearly_and_operators_read_and_write_an_apps_buckets() {
    let h = Hostd::start();
    h.deploy(
        "kvapp",
        "kv.wasm",
        &[
            "--kind",
            "http",
            "--keyvalue-max-mb",
            "1",
            "--keyvalue-bucket",
            "cache",
        ],
    );
    let addr = h.http_addr();
    let at = |path: &str| get(&addr, "kvapp.localhost", path);
    assert_eq!(at("/set?key=a&bytes=600000").status, 200);
    let r = at("/set?key=b&bytes=600000");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().contains("key-value quota exceeded"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("raise [keyvalue] max_mb"), "{}", r.text());
    let miss = h.run(&["kv", "kvapp", "get", "b"]);
    assert_eq!(miss.code, 1);
    assert!(
        miss.stderr
            .contains("no key \"b\" in bucket default of kvapp"),
        "{}",
        miss.stderr
    );
    assert_eq!(h.run(&["kv", "kvapp", "list"]).ok().stdout, "a\n");

    // What an operator writes, the app reads; and the other way round.
    h.run(&["kv", "kvapp", "set", "greeting", "hello"]).ok();
    assert_eq!(at("/get?key=greeting").text(), "hello");
    assert_eq!(at("/incr?key=n").text(), "1\n");
    assert_eq!(h.json(&["kv", "kvapp", "get", "n"])["value"], "1");
    // Named buckets: the listed one opens, another does not.
    h.run(&["kv", "kvapp", "set", "k", "v", "--bucket", "cache"])
        .ok();
    assert_eq!(at("/bucket?name=cache&op=get&key=k").text(), "v");
    let r = at("/bucket?name=other&op=get&key=k");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("no-such-store"), "{}", r.text());
    let e = h.run(&["kv", "kvapp", "list", "--bucket", "other"]);
    assert_eq!(e.code, 1);
    assert!(e.stderr.contains("has no bucket \"other\""), "{}", e.stderr);
    h.run(&["kv", "kvapp", "del", "greeting"]).ok();
    assert_eq!(at("/get?key=greeting").status, 404);
    // Changes are audited by key, never by value.
    let audit = h.run(&["audit"]).ok().stdout;
    assert!(audit.contains("set greeting in kvapp/default"), "{audit}");
    assert!(!audit.contains("hello"), "{audit}");
    // rm takes the store with it.
    h.run(&["rm", "kvapp", "--confirm", "kvapp"]).ok();
    assert!(!h.data().join("kv/kvapp.sqlite").exists());
}

#[test]
fn a_bad_grant_a_quota_of_zero_an_unreachable_store_or_a_secret_in_env_is_refused_and_changes_nothing()
 {
    let h = Hostd::start();
    h.deploy("kvapp", "kv.wasm", &["--kind", "http"]);
    h.run(&["config", "set", "kvapp", "PW=x", "--secret"]).ok();
    let before = h.releases("kvapp");
    let dead = format!("redis://127.0.0.1:{}/0", free_port());
    let wasm = fixture("kv.wasm");
    let wasm = wasm.to_str().unwrap();
    for (flags, says) in [
        (
            vec!["--allow-outbound", "ftp://files.example.com"],
            "grant \"ftp://files.example.com\": the scheme \"ftp\" is not one of http, https, tcp",
        ),
        (
            vec!["--allow-outbound", "tcp://db.internal"],
            "a tcp grant needs a port",
        ),
        (
            vec!["--keyvalue-max-mb", "0"],
            "a quota of 0 would refuse every write",
        ),
        (
            vec!["--keyvalue-url", "http://127.0.0.1:6379"],
            "is not a redis:// or rediss:// URL",
        ),
        (
            vec!["--keyvalue-url", dead.as_str()],
            "cannot reach the key-value store at redis://127.0.0.1:",
        ),
        (vec!["--env", "PW=plain"], "PW is a secret of kvapp"),
        (vec!["--config", "PW=plain"], "PW is a secret of kvapp"),
    ] {
        let mut args = vec!["deploy", "kvapp", wasm, "--kind", "http"];
        args.extend(flags.iter().copied());
        let r = h.run(&args);
        assert_eq!(r.code, 1, "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{flags:?}: {}", r.stderr);
        assert_eq!(
            h.releases("kvapp"),
            before,
            "{flags:?} changed the releases"
        );
        assert_eq!(
            get(&h.http_addr(), "kvapp.localhost", "/incr?key=alive").status,
            200
        );
    }
    // A config change that cannot apply changes nothing either.
    let r = h.run(&["config", "unset", "kvapp", "NOPE"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("kvapp has no config NOPE"),
        "{}",
        r.stderr
    );
    assert_eq!(h.run(&["config", "set", "kvapp"]).code, 2);
    assert_eq!(h.releases("kvapp"), before);
}

#[test]
fn a_tcp_grant_lets_wasi_sockets_connect_there_and_nowhere_else() {
    let h = Hostd::start();
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (p1, p2) = (
        open.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );
    h.deploy(
        "tcp",
        "tcp.wasm",
        &[
            "--kind",
            "http",
            "--allow-outbound",
            &format!("tcp://127.0.0.1:{p1}"),
        ],
    );
    let at = |path: &str| get(&h.http_addr(), "tcp.localhost", path);
    assert_eq!(
        at(&format!("/connect?addr=127.0.0.1:{p1}")).text(),
        "connected\n"
    );
    let r = at(&format!("/connect?addr=127.0.0.1:{p2}"));
    assert_eq!(
        (r.status, r.text()),
        (502, "error: access-denied\n".to_string())
    );
    h.wait_log("tcp", "the denied connect", |r| {
        r["stream"] == "system"
            && line(r).contains(&format!("outbound tcp://127.0.0.1:{p2} denied"))
    });
    // The grant is the release's: a release without it cannot connect,
    // and a rollback brings the grant back; `releases` shows each.
    h.deploy("tcp", "tcp.wasm", &["--kind", "http"]);
    assert_eq!(
        at(&format!("/connect?addr=127.0.0.1:{p1}")).text(),
        "error: access-denied\n"
    );
    let rows = h.json(&["releases", "tcp"]);
    assert_eq!(
        rows[1]["grants"],
        serde_json::json!([format!("tcp://127.0.0.1:{p1}")])
    );
    assert!(rows[0].get("grants").is_none(), "{rows}");
    assert!(h.run(&["releases", "tcp"]).ok().stdout.contains("GRANTS"));
    h.json(&["rollback", "tcp"]);
    assert_eq!(
        at(&format!("/connect?addr=127.0.0.1:{p1}")).text(),
        "connected\n"
    );
    // An http grant is no TCP grant.
    let h2 = Hostd::start();
    h2.deploy(
        "tcp",
        "tcp.wasm",
        &[
            "--kind",
            "http",
            "--allow-outbound",
            &format!("http://127.0.0.1:{p1}"),
        ],
    );
    let r = get(
        &h2.http_addr(),
        "tcp.localhost",
        &format!("/connect?addr=127.0.0.1:{p1}"),
    );
    assert_eq!(r.text(), "error: access-denied\n");
}

#[test]
fn two_daemons_share_one_counter_in_redis_and_live_through_redis_dying() {
    let mut redis = Redis::start();
    let url = redis.url();
    let (a, b) = (Hostd::start(), Hostd::start());
    for h in [&a, &b] {
        h.deploy(
            "kvapp",
            "kv.wasm",
            &["--kind", "http", "--keyvalue-url", &url],
        );
    }
    let incr = |h: &Hostd| get(&h.http_addr(), "kvapp.localhost", "/incr?key=n");
    assert_eq!(incr(&a).text(), "1\n");
    assert_eq!(incr(&b).text(), "2\n");
    assert_eq!(incr(&a).text(), "3\n");
    assert_eq!(b.json(&["kv", "kvapp", "get", "n"])["value"], "3");
    // Namespaced per app and bucket in the shared server.
    assert_eq!(
        redis.cli(&["GET", "cranefleet:kvapp:default:n"]).trim(),
        "3"
    );

    // Redis goes away: requests get an error naming the store, the daemons
    // and the app live on.
    redis.stop();
    let r = incr(&a);
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().contains("key-value store at redis://127.0.0.1:"),
        "{}",
        r.text()
    );
    assert_eq!(a.run(&["ps"]).code, 0);
    assert_eq!(a.run(&["kv", "kvapp", "get", "n"]).code, 1);
    // It comes back (empty: the test server keeps nothing on disk): so do
    // the app's writes, on both hosts, without a restart.
    redis.restart();
    wait_for("the app to write to Redis again", || {
        (incr(&a).status == 200).then_some(())
    });
    wait_for("the other host too", || {
        (incr(&b).status == 200).then_some(())
    });
    let n: u64 = redis
        .cli(&["GET", "cranefleet:kvapp:default:n"])
        .trim()
        .parse()
        .unwrap();
    assert!(n >= 2, "{n}");
}

/// A CA and a certificate for 127.0.0.1 it signed, made by openssl in `dir`.
fn test_ca(dir: &std::path::Path) {
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=cranefleet-test-ca 2>/dev/null",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null",
    );
    sh(
        "printf 'subjectAltName=IP:127.0.0.1' > ext && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext 2>/dev/null",
    );
}

/// A real HTTPS server (rustls) answering every request with `body`.
fn https_upstream(dir: &std::path::Path, body: &'static str) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("srv.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("srv.key")).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

#[test]
fn https_calls_trust_the_systems_roots_and_nothing_else() {
    let certs = tempfile::tempdir().unwrap();
    test_ca(certs.path());
    let port = https_upstream(certs.path(), "secure hello");
    let url = format!("https://127.0.0.1:{port}");
    let ca = certs.path().join("ca.pem");
    // The system's trust store, here pointed at the test CA as an operator
    // would install a company CA (rustls-native-certs reads SSL_CERT_FILE).
    let trusting = Hostd::start_with_env(&[], &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    let plain = Hostd::start();
    for h in [&trusting, &plain] {
        h.deploy(
            "out",
            "outbound.wasm",
            &["--kind", "http", "--allow-outbound", &url],
        );
    }
    let call = |h: &Hostd| {
        get(
            &h.http_addr(),
            "out.localhost",
            &format!("/call?to={}", urlencode(&format!("{url}/x"))),
        )
    };
    let r = call(&trusting);
    assert_eq!(
        (r.status, r.text()),
        (200, "status: 200\nsecure hello".to_string())
    );
    // A CA the system does not trust: the call fails as TLS, never in the clear.
    let r = call(&plain);
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().starts_with("error: TLS-"), "{}", r.text());
}

#[test]
fn an_app_whose_redis_is_down_when_hostd_restarts_starts_and_recovers_when_redis_returns() {
    let mut redis = Redis::start();
    let mut h = Hostd::start();
    h.deploy(
        "kvapp",
        "kv.wasm",
        &["--kind", "http", "--keyvalue-url", &redis.url()],
    );
    let incr = |h: &Hostd| get(&h.http_addr(), "kvapp.localhost", "/incr?key=n");
    assert_eq!(incr(&h).text(), "1\n");
    redis.stop();
    h.restart();
    // The app serves; its key-value calls say why they fail.
    let r = incr(&h);
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().contains("cannot reach the key-value store"),
        "{}",
        r.text()
    );
    assert_eq!(h.app("kvapp")["state"], "serving");
    redis.restart();
    wait_for("key-value calls to work again", || {
        (incr(&h).status == 200).then_some(())
    });
}
