//! What each cranefleet program does first, once: logs on stderr and an
//! async runtime.

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
