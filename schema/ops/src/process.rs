//! What each cranefleet program does first, once: logs on stderr, an
//! async runtime, and whether its tables are coloured.

use std::process::ExitCode;

/// Logs go to stderr (coloured on a terminal), filtered by the
/// `CRANEFLEET_LOG` environment variable (`EnvFilter` syntax), else by
/// `default` (`info` for a daemon, `warn` for a command).
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRANEFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A multi-threaded runtime; if there is none to be had, the error is
/// printed and the program exits 1 with it.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(1)
        })
}

/// Whether tables printed on this process's stdout are coloured: on a
/// terminal whose `TERM` is not `dumb`, unless `NO_COLOR` is set;
/// `CLICOLOR_FORCE=1` forces it into a pipe (see
/// [`schema::render::Style::choose`]).
pub fn stdout_style() -> schema::render::Style {
    let var = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
    schema::render::Style::choose(
        std::io::IsTerminal::is_terminal(&std::io::stdout()),
        var("NO_COLOR").as_deref(),
        var("CLICOLOR_FORCE").as_deref(),
        var("TERM").as_deref(),
    )
}
