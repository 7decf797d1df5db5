//! `hostd`: the daemon of every server, and the scripted commands.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use hostd::cli::{Cli, HostdCommand};
use hostd::config;
use schema::command::{Command, CommandLine};

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
    // Tables for a terminal are drawn here, in colour, from the answer
    // asked for as JSON; everything else prints as it comes.
    let (json, mut out) = hostd::output::plan(&command, cli.json, ops::process::stdout_style());
    let argv = CommandLine { json, command }.to_argv();
    match remote {
        Some(gw) => {
            let stdin = (!stdin.is_empty()).then_some(stdin);
            hostd::remote::exec(
                &gw,
                cli.identity.clone(),
                cli.accept_new_host_key,
                argv,
                stdin,
                &mut out,
            )
            .await
        }
        None => hostd::client::exec(&socket, argv, stdin, cli.local, &mut out).await,
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
        HostdCommand::Completions(args) => {
            ops::clidoc::run_completions(&Cli::command(), &args)?;
            Ok(0)
        }
        HostdCommand::Man(args) => {
            ops::clidoc::run_man(&Cli::command(), &args)?;
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
