//! `hostd`: the daemon of every server, and the scripted commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hostd::cmd::precompile::PrecompileArgs;
use hostd::cmd::serve::ServeArgs;
use hostd::config;
use schema::command::{Command, CommandLine};

/// Runs Wasm apps on this server, and drives a cranefleet host or fleet.
///
/// Commands go to the local daemon (`--local`, over DATA/hostd.sock) or,
/// with `--gateway`, to a fleet's gateway over SSH.
#[derive(Debug, Parser)]
#[command(name = "hostd", version, max_term_width = 100)]
struct Cli {
    /// State directory [env: CRANEFLEET_DATA; default ~/.local/share/cranefleet].
    #[arg(long, global = true, env = "CRANEFLEET_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Talk to the daemon on this machine over its Unix socket.
    #[arg(long, global = true)]
    local: bool,
    /// Talk to a gateway over SSH: [user@]host[:port].
    #[arg(long, global = true, env = "CRANEFLEET_GATEWAY", value_name = "ADDR")]
    gateway: Option<String>,
    /// SSH key for --gateway (default ~/.ssh/id_ed25519).
    #[arg(long, global = true, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Record the gateway's host key in ~/.ssh/known_hosts the first time.
    #[arg(long, global = true)]
    accept_new_host_key: bool,
    /// One JSON document (or one JSON object per line for streams).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: HostdCommand,
}

#[derive(Debug, Subcommand)]
enum HostdCommand {
    /// Run a stand-alone host with its own control socket.
    Serve(ServeArgs),
    /// Run a host that joins a fleet through an SSH tunnel to a gateway.
    Agent(hostd::cmd::agent::AgentArgs),
    /// Compile a .wasm ahead of time for x86_64 or aarch64.
    Precompile(PrecompileArgs),
    /// A host with the sample apps deployed, in a temp dir, until Ctrl-C.
    Demo(hostd::cmd::demo::DemoArgs),
    #[command(flatten)]
    Fleet(Command),
}

async fn fleet(cli: Cli, command: Command) -> anyhow::Result<i32> {
    let remote = cli.gateway.clone().filter(|_| !cli.local);
    let socket = config::socket_path(&config::data_dir(cli.data.as_deref()));
    // The command was parsed once, by `Cli::parse`; what goes to the daemon
    // (or the gateway) are the words of the typed command, with a deploy's
    // files read here, where they are.
    let (command, stdin) = match command {
        Command::Deploy(d) => {
            let read = |file: &str| {
                if file == "-" {
                    let mut b = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map(|_| b)
                } else {
                    std::fs::read(file)
                }
            };
            let (d, bytes) = ops::cmd::deploy::prepare_local(*d, read)?;
            (Command::Deploy(Box::new(d)), bytes)
        }
        other => (other, Vec::new()),
    };
    let argv = CommandLine {
        json: cli.json,
        command,
    }
    .to_argv();
    match remote {
        Some(gw) => {
            let stdin = (!stdin.is_empty()).then_some(stdin);
            hostd::remote::exec(
                &gw,
                cli.identity.clone(),
                cli.accept_new_host_key,
                argv,
                stdin,
            )
            .await
        }
        None => hostd::client::exec(&socket, argv, stdin, cli.local).await,
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        HostdCommand::Serve(args) => {
            hostd::cmd::serve::execute(args, cli.data).await?;
            Ok(0)
        }
        HostdCommand::Agent(args) => {
            hostd::cmd::agent::execute(args, cli.data, cli.gateway).await?;
            Ok(0)
        }
        HostdCommand::Demo(args) => {
            hostd::cmd::demo::execute(args, cli.data).await?;
            Ok(0)
        }
        HostdCommand::Precompile(args) => {
            hostd::cmd::precompile::execute(args, cli.json)?;
            Ok(0)
        }
        HostdCommand::Fleet(ref c) => {
            let c = c.clone();
            fleet(cli, c).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let daemon = matches!(
        cli.command,
        HostdCommand::Serve(_) | HostdCommand::Agent(_) | HostdCommand::Demo(_)
    );
    ops::process::init_tracing(if daemon { "info" } else { "warn" });
    let rt = match ops::process::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
