# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_console_global_optspecs
    string join \n gateway= identity= accept-new-host-key mono h/help V/version
end

function __fish_console_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_console_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_console_using_subcommand
    set -l cmd (__fish_console_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c console -n "__fish_console_needs_command" -l gateway -d 'The gateway: [user@]host[:port] (default port 2222), or a comma-separated list tried in turn' -r
complete -c console -n "__fish_console_needs_command" -l identity -d 'SSH key (default ~/.ssh/id_ed25519)' -r -F
complete -c console -n "__fish_console_needs_command" -l accept-new-host-key -d 'Record the gateway\'s host key in ~/.ssh/known_hosts the first time'
complete -c console -n "__fish_console_needs_command" -l mono -d 'Draw without colour (also when NO_COLOR is set)'
complete -c console -n "__fish_console_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c console -n "__fish_console_needs_command" -s V -l version -d 'Print version'
complete -c console -n "__fish_console_needs_command" -f -a "demo" -d 'Start a fleet on this machine and open the console on it.'
complete -c console -n "__fish_console_needs_command" -f -a "preview" -d 'Run the console locally against a synthetic fleet (nothing is real)'
complete -c console -n "__fish_console_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish), or write them all with --out'
complete -c console -n "__fish_console_needs_command" -f -a "man" -d 'Print console\'s man page (roff), or write one page per command with --out'
complete -c console -n "__fish_console_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c console -n "__fish_console_using_subcommand demo" -l port -d 'The gateway\'s SSH port (default: a free one)' -r
complete -c console -n "__fish_console_using_subcommand demo" -l no-console -d 'Keep the fleet running without opening the console, until Ctrl-C (for `ssh -t` into it)'
complete -c console -n "__fish_console_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c console -n "__fish_console_using_subcommand preview" -l rate -d 'Log lines per second of the followed app' -r
complete -c console -n "__fish_console_using_subcommand preview" -l preload -d 'Lines sent when logs are opened' -r
complete -c console -n "__fish_console_using_subcommand preview" -l viewer -d 'Act as a viewer key: a read-only console'
complete -c console -n "__fish_console_using_subcommand preview" -l remote -d 'Act as the gateway\'s console: no local files (deploy is refused)'
complete -c console -n "__fish_console_using_subcommand preview" -s h -l help -d 'Print help'
complete -c console -n "__fish_console_using_subcommand completions" -l out -d 'Write the scripts into DIR (`NAME.bash`, `_NAME`, `NAME.fish`) instead of printing one' -r -F
complete -c console -n "__fish_console_using_subcommand completions" -s h -l help -d 'Print help'
complete -c console -n "__fish_console_using_subcommand man" -l out -d 'Write one page per command into DIR (`NAME.1`, `NAME-SUBCOMMAND.1`, …) instead of printing the program\'s own page' -r -F
complete -c console -n "__fish_console_using_subcommand man" -s h -l help -d 'Print help'
complete -c console -n "__fish_console_using_subcommand help; and not __fish_seen_subcommand_from demo preview completions man help" -f -a "demo" -d 'Start a fleet on this machine and open the console on it.'
complete -c console -n "__fish_console_using_subcommand help; and not __fish_seen_subcommand_from demo preview completions man help" -f -a "preview" -d 'Run the console locally against a synthetic fleet (nothing is real)'
complete -c console -n "__fish_console_using_subcommand help; and not __fish_seen_subcommand_from demo preview completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish), or write them all with --out'
complete -c console -n "__fish_console_using_subcommand help; and not __fish_seen_subcommand_from demo preview completions man help" -f -a "man" -d 'Print console\'s man page (roff), or write one page per command with --out'
complete -c console -n "__fish_console_using_subcommand help; and not __fish_seen_subcommand_from demo preview completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
