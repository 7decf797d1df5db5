# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ssh_gateway_global_optspecs
    string join \n data= db= json h/help V/version
end

function __fish_ssh_gateway_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ssh_gateway_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ssh_gateway_using_subcommand
    set -l cmd (__fish_ssh_gateway_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -s V -l version -d 'Print version'
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -f -a "serve" -d 'Serve the fleet over SSH'
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -f -a "keys" -d 'Who may connect'
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish), or write them all with --out'
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -f -a "man" -d 'Print ssh-gateway\'s man page (roff), or write one page per command with --out'
complete -c ssh-gateway -n "__fish_ssh_gateway_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l listen -d 'Address and port to accept SSH connections on (0.0.0.0:2222 for every interface)' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l host-key -d 'The gateway\'s SSH host key, generated there on first start (default DATA/ssh_host_ed25519_key)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l name -d 'This gateway\'s name, as hosts and audit entries show it (default the hostname). Gateways sharing a PostgreSQL database serve one fleet: give them the same name' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l advertise -d 'Where hosts and operators reach this gateway (HOST:PORT), as a standby names it when this one is active (default the --listen address, or the hostname and its port when that is 0.0.0.0). With PostgreSQL it is also this gateway\'s name in the lease' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l lease-secs -d 'With PostgreSQL: seconds the active gateway\'s lease lasts unless renewed (every fifth of it). A standby takes over within about this long after the active one dies' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l keep-releases -d 'Releases of each app whose artifacts the gateway keeps (the active one always is); older releases stay in the history' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l down-after-s -d 'Seconds without a heartbeat after which a host is down and its replicas move; a host up this long may receive moved replicas' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l login-grace-time -d 'Seconds a connection may take to authenticate before it is closed (OpenSSH\'s LoginGraceTime)' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l max-startups -d 'Connections authenticating at once; more are closed at once (OpenSSH\'s MaxStartups)' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l per-source-max-startups -d 'Connections authenticating at once from one address (IPv6: one /64)' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l audit-keep -d 'The audit log keeps at most this many entries; the oldest refusals go first, an operator\'s action never' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l audit-refusals-every-s -d 'Refusals before login are counted and written to the audit log this often (seconds), one entry per source and attempt' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l secrets-key -d 'The key that seals apps\' config secrets at rest, created 0600 on first start (default DATA/secrets.key). Every gateway of a fleet is given the same file; keep a copy apart from the database' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l keyvalue-url -d 'The fleet-wide store of apps\' wasi:keyvalue (redis://…), for apps whose manifest names none (default: each host\'s own SQLite store)' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics (default: off)' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand serve" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -f -a "add" -d 'Enroll a public key (an OpenSSH .pub file, or - for stdin)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -f -a "list" -d 'Every enrolled key'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -f -a "rm" -d 'Remove a key; its holder can no longer connect, and its open connections (a multiplexed ssh, a console, a host\'s tunnel) close'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -f -a "role" -d 'Change a key\'s role; its open connections close, so what it does next is what the new role allows'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and not __fish_seen_subcommand_from add list rm role help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from add" -l role -d 'What the key may do: host (a hostd agent\'s tunnel), operator (every command) or viewer (read commands only)' -r -f -a "host\t''
operator\t''
viewer\t''"
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from add" -l name -d 'Name shown in the audit log; a host key\'s name is the host\'s (default: the key\'s comment, else the file name)' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from add" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from add" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from add" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from list" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from list" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from list" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from rm" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from rm" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from rm" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from role" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from role" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from role" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from role" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "add" -d 'Enroll a public key (an OpenSSH .pub file, or - for stdin)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every enrolled key'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove a key; its holder can no longer connect, and its open connections (a multiplexed ssh, a console, a host\'s tunnel) close'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "role" -d 'Change a key\'s role; its open connections close, so what it does next is what the new role allows'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand completions" -l out -d 'Write the scripts into DIR (`NAME.bash`, `_NAME`, `NAME.fish`) instead of printing one' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand completions" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand completions" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand completions" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand completions" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand man" -l out -d 'Write one page per command into DIR (`NAME.1`, `NAME-SUBCOMMAND.1`, …) instead of printing the program\'s own page' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand man" -l data -d 'State directory (default ~/.local/share/cranefleet-gateway)' -r -F
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand man" -l db -d 'Where the gateway keeps its state: a SQLite file (default DATA/gateway.db), or a PostgreSQL database (postgres://user:password@host:port/dbname) that several gateways share, one active and the others standby' -r
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand man" -l json -d 'JSON output (keys list)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand man" -s h -l help -d 'Print help'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve keys completions man help" -f -a "serve" -d 'Serve the fleet over SSH'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve keys completions man help" -f -a "keys" -d 'Who may connect'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve keys completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish), or write them all with --out'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve keys completions man help" -f -a "man" -d 'Print ssh-gateway\'s man page (roff), or write one page per command with --out'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve keys completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "add" -d 'Enroll a public key (an OpenSSH .pub file, or - for stdin)'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "list" -d 'Every enrolled key'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "rm" -d 'Remove a key; its holder can no longer connect, and its open connections (a multiplexed ssh, a console, a host\'s tunnel) close'
complete -c ssh-gateway -n "__fish_ssh_gateway_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "role" -d 'Change a key\'s role; its open connections close, so what it does next is what the new role allows'
