//! Where a command's answer goes on this side: stdout as the daemon (or
//! the gateway) wrote it, or, for a table shown on a terminal, drawn here
//! in colour.
//!
//! A daemon never knows what its client prints on, so it always writes
//! plain text. When colour is wanted ([`ops::process::stdout_style`]) and
//! the command answers with tables (`ps`, `releases`, `hosts`, `audit`,
//! `watch`), the client asks for `--json` instead, reads each line back
//! into its typed reply ([`ops::wire`]) and prints it with the one
//! [`Printer`], in colour: the same text, the same columns.

use std::io::Write;

use bytes::Bytes;
use ops::Sink;
use ops::print::{Printer, Terminal};
use schema::command::Command;
use schema::render::Style;

/// Whether `command`'s text answer is tables that a client may draw itself.
pub fn draws_tables(command: &Command) -> bool {
    matches!(
        command,
        Command::Ps(_) | Command::Releases(_) | Command::Hosts | Command::Audit(_) | Command::Watch
    )
}

/// This process's stdout and stderr, for the [`Printer`]. A closed pipe
/// (`hostd ps | head -1`) is [`ops::Gone`].
pub struct LocalStdout;

impl Terminal for LocalStdout {
    async fn stdout(&mut self, b: Bytes) -> Result<(), ops::Gone> {
        let mut out = std::io::stdout().lock();
        out.write_all(&b)
            .and_then(|_| out.flush())
            .map_err(|_| ops::Gone)
    }

    async fn stderr(&mut self, b: Bytes) -> Result<(), ops::Gone> {
        let _ = std::io::stderr().write_all(&b);
        Ok(())
    }
}

/// The stdout of a command run elsewhere.
pub enum Stdout {
    /// Written as it comes.
    Raw,
    /// `--json` lines of `command`, drawn here as tables by `printer`.
    Tables {
        command: Command,
        printer: Box<Printer<LocalStdout>>,
        pending: Vec<u8>,
    },
}

/// What to send and how to print: the command line's `--json` as sent,
/// and where its stdout goes.
pub fn plan(command: &Command, json: bool, style: Style) -> (bool, Stdout) {
    if json || style == Style::Plain || !draws_tables(command) {
        return (json, Stdout::Raw);
    }
    let printer = Printer::new(LocalStdout, false).with_style(style);
    (
        true,
        Stdout::Tables {
            command: command.clone(),
            printer: Box::new(printer),
            pending: Vec::new(),
        },
    )
}

impl Stdout {
    /// Takes the next bytes of the command's stdout. `Err` when our own
    /// stdout is closed: the command's output is no longer wanted.
    pub async fn write(&mut self, b: &[u8]) -> Result<(), ops::Gone> {
        match self {
            Stdout::Raw => {
                let mut out = std::io::stdout().lock();
                out.write_all(b)
                    .and_then(|_| out.flush())
                    .map_err(|_| ops::Gone)
            }
            Stdout::Tables {
                command,
                printer,
                pending,
            } => {
                pending.extend_from_slice(b);
                while let Some(nl) = pending.iter().position(|&c| c == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    print_line(command, printer, &line).await?;
                }
                Ok(())
            }
        }
    }

    /// The command ended: prints what is left of a last line without a newline.
    pub async fn finish(&mut self) -> Result<(), ops::Gone> {
        if let Stdout::Tables {
            command,
            printer,
            pending,
        } = self
            && !pending.is_empty()
        {
            let line = std::mem::take(pending);
            print_line(command, printer, &line).await?;
        }
        Ok(())
    }
}

/// One `--json` line drawn as its table; a line that is not one (what an
/// unexpected peer wrote) is printed as it came.
async fn print_line(
    command: &Command,
    printer: &mut Printer<LocalStdout>,
    line: &[u8],
) -> Result<(), ops::Gone> {
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.trim().is_empty() {
        return Ok(());
    }
    match ops::wire::decode_stdout(command, trimmed) {
        Ok(reply) => printer.send(reply).await,
        Err(_) => {
            let raw = format!("{}\n", schema::render::clean(trimmed));
            LocalStdout.stdout(Bytes::from(raw)).await
        }
    }
}
