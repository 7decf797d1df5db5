//! The edge of a door that prints: replies rendered as CLI.md's text, or as
//! JSON with `--json`, on a terminal's stdout and stderr.

use std::future::Future;

use bytes::Bytes;
use schema::render::Style;
use serde::Serialize;

use crate::cmd;
use crate::error::OpError;
use crate::reply::{Gone, LogChunk, LogFormat, Reply, Sink};

/// Where a door's bytes go: an SSH channel's data and extended data, a
/// control socket's stdout and stderr frames.
pub trait Terminal: Send {
    fn stdout(&mut self, b: Bytes) -> impl Future<Output = Result<(), Gone>> + Send;
    fn stderr(&mut self, b: Bytes) -> impl Future<Output = Result<(), Gone>> + Send;
}

/// Renders replies onto a [`Terminal`].
pub struct Printer<T> {
    term: T,
    json: bool,
    style: Style,
}

impl<T: Terminal> Printer<T> {
    /// A printer of plain text (or JSON): what a daemon sends a client.
    pub fn new(term: T, json: bool) -> Printer<T> {
        Printer {
            term,
            json,
            style: Style::Plain,
        }
    }

    /// Tables drawn in `style` (never with `--json`): for a client that
    /// prints on its own terminal.
    pub fn with_style(mut self, style: Style) -> Printer<T> {
        self.style = if self.json { Style::Plain } else { style };
        self
    }

    /// Prints how the command ended and returns its exit status (CLI.md: 0
    /// success, 1 refused or failed with one line on stderr, 2 usage).
    pub async fn finish(&mut self, result: Result<(), OpError>) -> i32 {
        let Err(e) = result else {
            return 0;
        };
        match e.printed() {
            Some((true, text)) => {
                let _ = self.term.stdout(Bytes::from(text)).await;
            }
            Some((false, text)) => {
                // A reason may quote what a peer sent (a name, a path).
                let text = schema::render::clean_lines(&text);
                let _ = self.term.stderr(Bytes::from(text)).await;
            }
            None => {}
        }
        e.exit_code()
    }

    pub fn into_inner(self) -> T {
        self.term
    }

    async fn out(&mut self, text: String) -> Result<(), Gone> {
        self.term.stdout(Bytes::from(text)).await
    }

    /// One JSON document and a newline.
    async fn json_line<V: Serialize>(&mut self, v: &V) -> Result<(), Gone> {
        let mut s = serde_json::to_string(v).map_err(|_| Gone)?;
        s.push('\n');
        self.out(s).await
    }

    async fn either<V: Serialize>(
        &mut self,
        v: &V,
        text: impl FnOnce(&V) -> String,
    ) -> Result<(), Gone> {
        if self.json {
            self.json_line(v).await
        } else {
            self.out(text(v)).await
        }
    }
}

impl<T: Terminal> Sink for Printer<T> {
    async fn send(&mut self, reply: Reply) -> Result<(), Gone> {
        match reply {
            Reply::Progress(p) => {
                let line = if self.json {
                    serde_json::to_string(&p).map_err(|_| Gone)? + "\n"
                } else {
                    // A host's step may carry its own text (a note, a reason).
                    format!("{}\n", schema::render::clean(&p.to_string()))
                };
                self.term.stderr(Bytes::from(line)).await
            }
            Reply::Warning(w) => {
                let w = schema::render::clean(&w);
                self.term.stderr(Bytes::from(format!("{w}\n"))).await
            }
            Reply::Deployed(o) => self.either(&o, cmd::deploy::text).await,
            Reply::RolledBack(o) => self.either(&o, cmd::rollback::text).await,
            Reply::Scaled(o) => self.either(&o, cmd::scale::text).await,
            Reply::Restarted(o) => self.either(&o, cmd::restart::text).await,
            Reply::CanaryEnded(o) => self.either(&o, cmd::canary::text).await,
            Reply::Removed(o) => self.either(&o, cmd::rm::text).await,
            Reply::Ps { rows, instances } => {
                let style = self.style;
                self.either(&rows, |r| cmd::ps::text(r, instances, style))
                    .await
            }
            Reply::Releases(rows) => {
                let style = self.style;
                self.either(&rows, |r| cmd::releases::text(r, style)).await
            }
            Reply::Hosts(rows) => {
                let style = self.style;
                self.either(&rows, |r| cmd::hosts::text(r, style)).await
            }
            Reply::Audit(rows) => {
                let style = self.style;
                self.either(&rows, |r| cmd::audit::text(r, style)).await
            }
            Reply::Snapshot(s) => {
                let style = self.style;
                self.either(&s, |s| cmd::watch::text(s, style)).await
            }
            Reply::Events(rows) => {
                if self.json {
                    for r in &rows {
                        self.json_line(r).await?;
                    }
                    Ok(())
                } else {
                    self.out(cmd::audit::event_lines(&rows)).await
                }
            }
            Reply::Info(i) => self.either(&*i, cmd::info::text).await,
            Reply::Config { app, rows } => self.either(&rows, |r| cmd::config::text(&app, r)).await,
            Reply::ConfigChanged(o) => self.either(&o, cmd::config::changed_text).await,
            Reply::Kv(o) => self.either(&o, cmd::kv::text).await,
            Reply::Logs(LogChunk::Rendered(b)) => self.term.stdout(b).await,
            Reply::Logs(LogChunk::Records(records)) => {
                let text = cmd::logs::render(&records, self.log_format());
                self.term.stdout(Bytes::from(text)).await
            }
        }
    }

    fn log_format(&self) -> LogFormat {
        if self.json {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    }
}
