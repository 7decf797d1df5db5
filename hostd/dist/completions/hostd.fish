# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hostd_global_optspecs
    string join \n data= local gateway= identity= accept-new-host-key json h/help V/version
end

function __fish_hostd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hostd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hostd_using_subcommand
    set -l cmd (__fish_hostd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hostd -n "__fish_hostd_needs_command" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_needs_command" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_needs_command" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_needs_command" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_needs_command" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_needs_command" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hostd -n "__fish_hostd_needs_command" -s V -l version -d 'Print version'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "serve" -d 'Run a stand-alone host with its own control socket'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "agent" -d 'Run a host that joins a fleet through an SSH tunnel to a gateway'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "precompile" -d 'Compile a .wasm ahead of time for x86_64 or aarch64'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "demo" -d 'A host with the sample apps deployed, in a temp dir, until Ctrl-C'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish), or write them all with --out'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "man" -d 'Print hostd\'s man page (roff), or write one page per command with --out'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "deploy" -d 'New release of APP from a .wasm (module or component), or from stdin with `-`'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "ps" -d 'Apps, or one app\'s instances'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "releases" -d 'Every release of an app'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "rollback" -d 'Make an earlier release active (default: the one before the active)'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "scale" -d 'Set the wanted replicas'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "restart" -d 'Restart every instance of the active release (clears a crash loop)'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "promote" -d 'End a live canary by hand: make it active everywhere'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "abort" -d 'End a live canary by hand: drop it (it is marked failed); the active release serves alone'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "logs" -d 'Log records, oldest first; -f follows'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "rm" -d 'Stop and forget an app (its releases stay in the audit log)'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "hosts" -d 'Hosts and what they run'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "audit" -d 'Who did what, when, from which key: oldest first, the newest last (as logs; the console\'s audit view lists newest first)'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "events" -d 'What on-call must know: auto-rollbacks, crash loops, hosts down and up, failed deploys; oldest first, -f follows'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "watch" -d 'The fleet as it changes: hosts and apps now, then again on every change (and at least every 2 s) until the client goes away; with `--json`, one `WatchSnapshot` per line. What the console shows live'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "info" -d 'An app at a glance: kind, release, grants, key-value store, health, env and config names'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "config" -d 'An app\'s wasi:config values: `config APP`, `config set APP K=V... [--secret]`, `config unset APP K...`'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "kv" -d 'An app\'s wasi:keyvalue buckets: `kv APP list|get KEY|set KEY VALUE|del KEY [--bucket B]`'
complete -c hostd -n "__fish_hostd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l http -d 'Ingress address for http apps (`none` to serve no http)' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics (default: off)' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l name -d 'This host\'s name in `hosts`, `ps` and log records (default: the hostname)' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l log-cap-mb -d 'Log records kept per app before the oldest are dropped, MiB' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l max-request-body-mb -d 'Largest request body the ingress passes to an app, MiB' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l http-max-connections -d 'http connections served at once; one more is answered 503 (default: half the open-file limit, at most 4096)' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l http-header-timeout-s -d 'Seconds a client has to send a request\'s headers' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l http-idle-timeout-s -d 'Seconds an idle keep-alive connection stays open' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l max-instances -d 'Instances this host can run at once: the slots the pooling allocator reserves (memories, tables and stacks for each). Past it an instance waits or fails; lower it to fit many hosts on one machine' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l max-artifact-mb -d 'Largest artifact a deploy accepts, MiB' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l secrets-key -d 'The key that seals apps\' config secrets at rest, created 0600 on first start (default DATA/secrets.key). Keep a copy apart from the data: without it, the secrets in a restored database cannot be read' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand serve" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand serve" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l host-key -d 'This host\'s SSH key (created, with FILE.pub, if missing); enroll it at the gateway with role `host`' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l name -d 'This host\'s name in the fleet (default: the hostname)' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l label -d 'A label for placement (repeatable); `arch` is added automatically' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l http -d 'Ingress address for http apps (`none` to serve no http)' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics, the tunnel\'s state included (default: off)' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l log-cap-mb -d 'Log records kept per app before the oldest are dropped, MiB' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l max-request-body-mb -d 'Largest request body the ingress passes to an app, MiB' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l http-max-connections -d 'http connections served at once; one more is answered 503 (default: half the open-file limit, at most 4096)' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l http-header-timeout-s -d 'Seconds a client has to send a request\'s headers' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l http-idle-timeout-s -d 'Seconds an idle keep-alive connection stays open' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l max-instances -d 'Instances this host can run at once: the slots the pooling allocator reserves (memories, tables and stacks for each). Past it an instance waits or fails; lower it to fit many hosts on one machine' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l secrets-key -d 'The key that seals apps\' config secrets at rest (default DATA/secrets.key)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand agent" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand agent" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -l target -d 'x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu (default: this machine)' -r
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -s o -l output -d 'Where to write the .cwasm (default: FILE with .cwasm, or .<arch>.cwasm for another target)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand precompile" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand demo" -l http -d 'Ingress address for the demo\'s http app' -r
complete -c hostd -n "__fish_hostd_using_subcommand demo" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand demo" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand demo" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand demo" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand demo" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand demo" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand demo" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand completions" -l out -d 'Write the scripts into DIR (`NAME.bash`, `_NAME`, `NAME.fish`) instead of printing one' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand completions" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand completions" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand completions" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand completions" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand completions" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand completions" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand completions" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand man" -l out -d 'Write one page per command into DIR (`NAME.1`, `NAME-SUBCOMMAND.1`, …) instead of printing the program\'s own page' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand man" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand man" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand man" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand man" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand man" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand man" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand man" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l manifest -d 'Read name, kind, replicas, env, limits and health from APP.toml; flags given too override it' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l kind -d 'The kind of app (default: inferred from the artifact\'s exports; job with --schedule, message with --subscribe or --stream)' -r -f -a "http\t''
worker\t''
job\t''
message\t''"
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l replicas -d 'Replicas wanted: instances kept running, or an http app\'s concurrent instances per host (default 1 for a new app; a redeploy keeps the app\'s count)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l env -d 'Environment variable of every instance (repeatable). A deploy\'s env replaces the running release\'s whole env (what changed is said by name), unless --keep-env' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l schedule -d 'Cron schedule of a job, in UTC (5 fields, 6 with seconds, @hourly, @every 30s…). @every counts from the Unix epoch, not from the deploy: @every 1h runs at :00 of every hour' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l memory-mb -d 'Memory cap per instance, MiB (default 128, at most 4096)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l timeout-ms -d 'Deadline per request (http), per run (job) or per instance (worker), ms (default 30000 for http, 3600000 for a job, none for a worker)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l stop-grace-ms -d 'Grace given to superseded instances before they are interrupted, ms (default 1000)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l label -d 'Placement label hosts must carry (repeatable)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l health-path -d 'http: path requested after the switch; a non-2xx rolls back' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l health-rule -d 'A rule over the app\'s metrics; true during the window rolls back' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l health-window-s -d 'How long after a switch health is checked, seconds (default 30)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l access-log -d 'http: one `access` log record per request (default on)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l reuse -d 'http: requests one instance serves before it is dropped (default 1, at most 100000). Above 1 globals survive between requests: only for code written for it' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l allow-outbound -d 'Network the app may reach: http://HOST:PORT, https://*.example.com, tcp://HOST:PORT (repeatable)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l keyvalue-url -d 'wasi:keyvalue in a shared Redis (redis://…) instead of the host\'s SQLite store' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l keyvalue-max-mb -d 'Quota of the host\'s key-value store, MiB (default 64)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l keyvalue-bucket -d 'A wasi:keyvalue bucket besides `default` (repeatable)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l config -d 'A wasi:config value (repeatable; secrets: `config set --secret`)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l subscribe -d 'message apps: a Redis pub/sub channel, redis://HOST:PORT/CHANNEL (at most once)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l stream -d 'message apps: a Redis stream, redis://HOST:PORT/STREAM, read by --group (at least once)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l group -d 'The stream\'s consumer group (created at the stream\'s start if absent)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l max-attempts -d 'Attempts before a stream message goes to STREAM:dead (default 5)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l claim-idle-s -d 'Claim messages pending this long on a host that does not come back (default 30)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l canary -d 'Deploy as a canary: this share of requests (a worker\'s replicas, a message app\'s messages) goes to the new release, judged against the active one by the gate, --health-rule (default: canary.error_rate > 2 * stable.error_rate || canary.p99_ms > stable.p99_ms + 50; a worker\'s: canary.restarts > stable.restarts + 2)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l canary-hosts -d 'Deploy as a canary on this many hosts first (through a gateway)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l canary-steps -d 'Shares after --canary, rising, comma-separated (10%,50%); 100% comes last' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l canary-window-s -d 'How long each canary step is held before the next, seconds (default 60)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l canary-sticky -d 'http canaries: route by this request header\'s hash, so one user sees one release' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l keep-env -d 'Keep the running release\'s env and set --env over it, instead of replacing it'
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand deploy" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand ps" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand ps" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand ps" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand ps" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand ps" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand ps" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand ps" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand releases" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand releases" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand releases" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand releases" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand releases" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand releases" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand releases" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand rollback" -l to -d 'The release to make active (default: the newest healthy one before the active)' -r
complete -c hostd -n "__fish_hostd_using_subcommand rollback" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand rollback" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand rollback" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand rollback" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand rollback" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand rollback" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand rollback" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand scale" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand scale" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand scale" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand scale" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand scale" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand scale" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand scale" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand restart" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand restart" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand restart" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand restart" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand restart" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand restart" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand restart" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand promote" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand promote" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand promote" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand promote" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand promote" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand promote" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand promote" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand abort" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand abort" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand abort" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand abort" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand abort" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand abort" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand abort" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l since -d 'A sequence number (records after it) or a duration (`5m`: records from the last five minutes)' -r
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l tail -d 'Only the last N records (default 100 unless --since is given)' -r
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l where -d 'Only records matching the expression, e.g. `stream == "stderr"`' -r
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand logs" -s f -l follow -d 'Keep printing records as they arrive'
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand logs" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand logs" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand rm" -l confirm -d 'The app\'s name again: `rm` removes its releases, compiled code and logs from every host (to stop it and keep them: `scale APP 0`)' -r
complete -c hostd -n "__fish_hostd_using_subcommand rm" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand rm" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand rm" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand rm" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand rm" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand rm" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand rm" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand hosts" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand hosts" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand hosts" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand hosts" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand hosts" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand hosts" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand hosts" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand audit" -l tail -d 'Only the last N entries (the newest N, still oldest first)' -r
complete -c hostd -n "__fish_hostd_using_subcommand audit" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand audit" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand audit" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand audit" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand audit" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand audit" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand audit" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand events" -l tail -d 'The last N events first' -r
complete -c hostd -n "__fish_hostd_using_subcommand events" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand events" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand events" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand events" -s f -l follow -d 'Keep printing events as they happen'
complete -c hostd -n "__fish_hostd_using_subcommand events" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand events" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand events" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand events" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand watch" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand watch" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand watch" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand watch" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand watch" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand watch" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand watch" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand info" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand info" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand info" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand info" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand info" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand info" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand info" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand config" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand config" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand config" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand config" -l secret -d 'With `set`: the values are secrets (sealed at rest, never printed, hidden from viewers)'
complete -c hostd -n "__fish_hostd_using_subcommand config" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand config" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand config" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand config" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand kv" -l bucket -d 'The bucket (default `default`)' -r
complete -c hostd -n "__fish_hostd_using_subcommand kv" -l host -d 'Through the gateway: that host\'s own key-value store' -r
complete -c hostd -n "__fish_hostd_using_subcommand kv" -l data -d 'State directory (default ~/.local/share/cranefleet)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand kv" -l gateway -d 'Talk to a gateway over SSH: [user@]host[:port], or a comma-separated list of gateways tried in turn (the first that answers)' -r
complete -c hostd -n "__fish_hostd_using_subcommand kv" -l identity -d 'SSH key for --gateway (default ~/.ssh/id_ed25519)' -r -F
complete -c hostd -n "__fish_hostd_using_subcommand kv" -l local -d 'Talk to the daemon on this machine over its Unix socket'
complete -c hostd -n "__fish_hostd_using_subcommand kv" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c hostd -n "__fish_hostd_using_subcommand kv" -l json -d 'One JSON document (or one JSON object per line for streams)'
complete -c hostd -n "__fish_hostd_using_subcommand kv" -s h -l help -d 'Print help'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "serve" -d 'Run a stand-alone host with its own control socket'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "agent" -d 'Run a host that joins a fleet through an SSH tunnel to a gateway'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "precompile" -d 'Compile a .wasm ahead of time for x86_64 or aarch64'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "demo" -d 'A host with the sample apps deployed, in a temp dir, until Ctrl-C'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish), or write them all with --out'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "man" -d 'Print hostd\'s man page (roff), or write one page per command with --out'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "deploy" -d 'New release of APP from a .wasm (module or component), or from stdin with `-`'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "ps" -d 'Apps, or one app\'s instances'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "releases" -d 'Every release of an app'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "rollback" -d 'Make an earlier release active (default: the one before the active)'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "scale" -d 'Set the wanted replicas'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "restart" -d 'Restart every instance of the active release (clears a crash loop)'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "promote" -d 'End a live canary by hand: make it active everywhere'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "abort" -d 'End a live canary by hand: drop it (it is marked failed); the active release serves alone'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "logs" -d 'Log records, oldest first; -f follows'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "rm" -d 'Stop and forget an app (its releases stay in the audit log)'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "hosts" -d 'Hosts and what they run'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "audit" -d 'Who did what, when, from which key: oldest first, the newest last (as logs; the console\'s audit view lists newest first)'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "events" -d 'What on-call must know: auto-rollbacks, crash loops, hosts down and up, failed deploys; oldest first, -f follows'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "watch" -d 'The fleet as it changes: hosts and apps now, then again on every change (and at least every 2 s) until the client goes away; with `--json`, one `WatchSnapshot` per line. What the console shows live'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "info" -d 'An app at a glance: kind, release, grants, key-value store, health, env and config names'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "config" -d 'An app\'s wasi:config values: `config APP`, `config set APP K=V... [--secret]`, `config unset APP K...`'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "kv" -d 'An app\'s wasi:keyvalue buckets: `kv APP list|get KEY|set KEY VALUE|del KEY [--bucket B]`'
complete -c hostd -n "__fish_hostd_using_subcommand help; and not __fish_seen_subcommand_from serve agent precompile demo completions man deploy ps releases rollback scale restart promote abort logs rm hosts audit events watch info config kv help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
