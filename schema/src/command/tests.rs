//! The grammar of CLI.md, parsed and printed back.

use super::*;

fn parse(s: &str) -> CommandLine {
    CommandLine::parse_argv(s.split_whitespace()).unwrap()
}

#[test]
fn a_command_line_parses_back_from_its_words() {
    for line in [
        "deploy api app.wasm --kind http --replicas 3 --env A=1 --label region=eu --health-path /h --json",
        "deploy api - --schedule @hourly --memory-mb 64 --timeout-ms 5 --stop-grace-ms 9 --health-rule x --health-window-s 3",
        "deploy --manifest api.toml",
        "deploy q q.wasm --kind message --stream redis://127.0.0.1:6379/jobs --group workers --max-attempts 3 --claim-idle-s 10",
        "deploy q q.wasm --subscribe redis://127.0.0.1:6379/news",
        "deploy api a.wasm --allow-outbound http://127.0.0.1:8080 --allow-outbound https://*.example.com --keyvalue-url redis://127.0.0.1:6379/0 --keyvalue-max-mb 8 --keyvalue-bucket cache --config LEVEL=info",
        "ps",
        "ps api --json",
        "releases api",
        "rollback api",
        "rollback api --to v2",
        "scale api 4 --json",
        "logs api -f --since 5m --tail 10 --where stream==\"stderr\"",
        "logs api --since 42",
        "rm api",
        "hosts",
        "audit --tail 7",
        "watch --json",
        "info api --json",
        "config api",
        "config set api A=1 B=x=y",
        "config set api PW=hunter2 --secret",
        "config unset api A B",
        "kv api list",
        "kv api get k --bucket cache",
        "kv api set k v --host h1",
        "kv api del k",
        "kv api set k -- -v",
    ] {
        let words = split_command_line(line).unwrap();
        let c = CommandLine::parse_argv(&words).unwrap();
        assert_eq!(CommandLine::parse_argv(c.to_argv()).unwrap(), c, "{line}");
    }
}

#[test]
fn cli_md_commands_parse() {
    let c = parse(
        "deploy api app.wasm --kind http --replicas 3 --env A=1 --env B=x=y --label region=eu --json",
    );
    assert!(c.json);
    let Command::Deploy(d) = c.command else {
        panic!()
    };
    assert_eq!(d.app.as_deref(), Some("api"));
    assert_eq!(
        d.env,
        vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
    );
    assert!(matches!(
        parse("ps").command,
        Command::Ps(PsArgs { app: None })
    ));
    let Command::Rollback(r) = parse("rollback api --to v2").command else {
        panic!()
    };
    assert_eq!(r.to, Some(Version(2)));
    let Command::Logs(l) = parse("logs api -f --since 42 --tail 5").command else {
        panic!()
    };
    assert!(l.follow);
    assert_eq!(l.since, Some(Since::Seq(42)));
    let Command::Logs(l) = parse("logs api --since 5m").command else {
        panic!()
    };
    assert_eq!(
        l.since,
        Some(Since::Ago(std::time::Duration::from_secs(300)))
    );
    assert!(matches!(
        parse("scale api 4").command,
        Command::Scale(ScaleArgs { replicas: 4, .. })
    ));
    assert!(parse("hosts --json").json);
}

#[test]
fn command_lines_split_and_join_like_a_shell() {
    let argv = vec![
        "logs",
        "api",
        "--where",
        "level >= warn && msg ~ \"it's\"",
        "",
        "a b",
        "x\\y",
    ];
    let line = join_command_line(&argv);
    assert_eq!(split_command_line(&line).unwrap(), argv);
    assert_eq!(
        split_command_line("ps  api\t--json").unwrap(),
        vec!["ps", "api", "--json"]
    );
    assert_eq!(
        split_command_line(r#"a "b \" c" 'd e' f\ g"#).unwrap(),
        vec!["a", "b \" c", "d e", "f g"]
    );
    assert!(split_command_line("a 'b").is_err());
    assert!(split_command_line("a \"b").is_err());
}

#[test]
fn usage_errors_are_clap_errors() {
    for bad in [
        "",
        "frobnicate",
        "scale api",
        "scale api many",
        "rollback api --to x",
        "logs api --since soon",
    ] {
        assert!(
            CommandLine::parse_argv(bad.split_whitespace()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn flags_override_the_manifest_and_round_trip() {
    let base = Manifest::from_toml(
        "name = \"api\"\nkind = \"http\"\nreplicas = 2\n[env]\nA = \"1\"\nB = \"0\"\n",
    )
    .unwrap();
    let Command::Deploy(mut d) = parse("deploy - --replicas 5 --env B=2").command else {
        panic!()
    };
    // "-" was taken as APP by the parser; a client puts positionals right.
    d.app = None;
    d.overlay_manifest(&base);
    let m = d.to_manifest(AppKind::Worker).unwrap();
    assert_eq!(m.name, "api");
    assert_eq!(m.kind, AppKind::Http);
    assert_eq!(m.replicas, Some(5));
    assert_eq!(m.env["A"], "1");
    assert_eq!(m.env["B"], "2");
    let Command::Deploy(d2) = CommandLine::parse_argv(d.to_argv("-")).unwrap().command else {
        panic!()
    };
    assert_eq!(d2.file.as_deref(), Some("-"));
    assert_eq!(d2.to_manifest(AppKind::Worker).unwrap(), m);
}

#[test]
fn every_manifest_field_survives_the_trip_through_flags() {
    let base = Manifest::from_toml("name = \"api\"\nkind = \"http\"\nreplicas = 2\n").unwrap();
    let full = Manifest::from_toml(
        r#"
name = "api"
kind = "http"
replicas = 2
[env]
A = "1"
[labels]
region = "eu"
[limits]
memory_mb = 64
timeout_ms = 900
stop_grace_ms = 5
[health]
path = "/h"
rule = "error_rate > 0.5"
window_s = 7
[allow]
outbound = ["http://127.0.0.1:8080", "tcp://db.internal:5432"]
[keyvalue]
url = "redis://127.0.0.1:6379/0"
max_mb = 8
buckets = ["cache", "sessions"]
[config]
LEVEL = "info"
[http]
access_log = false
reuse = 8
[canary]
share = "10%"
steps = ["50%"]
window_s = 30
sticky = "x-user"
"#,
    )
    .unwrap();
    assert_ne!(base, full);
    let mut d = DeployArgs {
        app: None,
        file: None,
        manifest: None,
        kind: None,
        replicas: None,
        env: Vec::new(),
        // Not a manifest field: what this deploy does with the running env.
        keep_env: false,
        schedule: None,
        memory_mb: None,
        timeout_ms: None,
        stop_grace_ms: None,
        label: Vec::new(),
        health_path: None,
        health_rule: None,
        health_window_s: None,
        access_log: None,
        reuse: None,
        allow_outbound: Vec::new(),
        keyvalue_url: None,
        keyvalue_max_mb: None,
        keyvalue_bucket: Vec::new(),
        config: Vec::new(),
        subscribe: None,
        stream: None,
        group: None,
        max_attempts: None,
        claim_idle_s: None,
        canary: None,
        canary_hosts: None,
        canary_steps: Vec::new(),
        canary_window_s: None,
        canary_sticky: None,
    };
    d.overlay_manifest(&full);
    let Command::Deploy(d2) = CommandLine::parse_argv(d.to_argv("a.wasm"))
        .unwrap()
        .command
    else {
        panic!()
    };
    assert_eq!(d2.to_manifest(AppKind::Worker).unwrap(), full);
}

#[test]
fn a_manifest_file_may_not_hold_a_secret() {
    let e = Manifest::from_toml(
        "name = \"api\"\nkind = \"http\"\n[config]\nPW = { value = \"x\", secret = true }\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("config set"), "{e}");
}

#[test]
fn kind_is_inferred_unless_given() {
    let Command::Deploy(d) = parse("deploy w x.wasm").command else {
        panic!()
    };
    assert_eq!(
        d.to_manifest(AppKind::Worker).unwrap().kind,
        AppKind::Worker
    );
    let d = DeployArgs {
        app: Some("j".into()),
        schedule: Some("@every 2s".into()),
        ..Default::default()
    };
    assert_eq!(d.to_manifest(AppKind::Worker).unwrap().kind, AppKind::Job);
}

#[test]
fn config_and_kv_are_typed_when_parsed_and_refused_when_malformed() {
    let c = parse("config set api A=1 --secret");
    assert!(!c.command.is_read_only());
    let Command::Config(a) = c.command else {
        panic!()
    };
    assert_eq!(
        a.action,
        ConfigAction::Set {
            pairs: vec![("A".into(), "1".into())],
            secret: true
        }
    );
    assert!(parse("config api").command.is_read_only());
    assert!(parse("kv api get k").command.is_read_only());
    assert!(!parse("kv api del k").command.is_read_only());
    for bad in [
        "config",
        "config set api",
        "config set api novalue",
        "config unset api",
        "config api --secret",
        "kv api",
        "kv api get",
        "kv api set k",
        "kv api frob k",
    ] {
        assert!(
            CommandLine::parse_argv(bad.split_whitespace()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn a_logged_command_never_shows_a_value_it_sets() {
    let shown = CommandLine::shown_line("config set api PW=hunter2 A=b --secret");
    assert!(
        !shown.contains("hunter2") && shown.contains("PW=***"),
        "{shown}"
    );
    let shown = CommandLine::shown_line("kv api set token abc123");
    assert!(!shown.contains("abc123"), "{shown}");
    assert!(!CommandLine::shown_line("config set api PW=hunter2 --secrt").contains("hunter2"));
    assert_eq!(CommandLine::shown_line("ps api"), "ps api");
}

#[test]
fn a_message_trigger_is_checked_when_the_manifest_is_built() {
    let build = |line: &str| {
        let Command::Deploy(d) = CommandLine::parse_argv(line.split_whitespace())
            .unwrap()
            .command
        else {
            panic!()
        };
        d.to_manifest(AppKind::Message)
    };
    let m = build("deploy q q.wasm --stream redis://127.0.0.1:6379/jobs --group g").unwrap();
    assert_eq!(m.kind, AppKind::Message, "inferred from the trigger");
    let src = m.trigger.source().unwrap();
    assert_eq!(
        (src.stream, src.server.as_str(), src.name.as_str()),
        (true, "redis://127.0.0.1:6379", "jobs")
    );
    for (line, says) in [
        ("deploy q q.wasm --kind message", "needs --subscribe"),
        ("deploy q q.wasm --stream redis://h:1/jobs", "needs --group"),
        (
            "deploy q q.wasm --subscribe redis://h:1/news --group g",
            "goes with --stream",
        ),
        (
            "deploy q q.wasm --stream redis://h:1/a --subscribe redis://h:1/b --group g",
            "not both",
        ),
        (
            "deploy q q.wasm --stream http://h:1/jobs --group g",
            "not a redis://",
        ),
        (
            "deploy q q.wasm --stream redis://h:1 --group g",
            "names no stream",
        ),
        (
            "deploy q q.wasm --subscribe redis://h:1/news*",
            "not a channel name",
        ),
        (
            "deploy q q.wasm --stream redis://h:1/j --group g --max-attempts 0",
            "outside 1..=100",
        ),
        (
            "deploy q q.wasm --kind worker --subscribe redis://h:1/news",
            "only message apps",
        ),
    ] {
        let e = build(line).unwrap_err().to_string();
        assert!(e.contains(says), "{line}: {e}");
    }
}

#[test]
fn keep_env_is_a_flag_that_survives_the_wire() {
    let cl = parse("deploy api x.wasm --keep-env --env A=1");
    let Command::Deploy(d) = &cl.command else {
        panic!()
    };
    assert!(d.keep_env);
    assert_eq!(CommandLine::parse_argv(cl.to_argv()).unwrap(), cl);
    let Command::Deploy(d) = parse("deploy api x.wasm").command else {
        panic!()
    };
    assert!(!d.keep_env);
}
