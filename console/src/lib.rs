//! The cranefleet console: one ratatui application, two front doors.
//!
//! The `console` binary draws it in the operator's terminal; the gateway
//! draws the same app into an SSH channel. Either way the pieces are:
//!
//! - [`App`] (`app.rs`): all state, changed only by [`App::update`], which
//!   takes an [`Event`] and returns [`Action`]s. No I/O, no clock, no async.
//! - `ui/`: pure drawing from an `&App` into a ratatui frame, one file per view.
//! - [`keys`]: the one keymap, which the `?` screen shows.
//! - [`input::KeyParser`]: raw terminal bytes (an SSH channel) to [`Key`]s.
//! - [`run()`]: the loop joining an app, a terminal and a driver.
//!
//! A driver (the SSH client of the local console, the gateway's session, the
//! preview) executes actions against the fleet and feeds results back as
//! events. [`driver`] is the one both real front doors use: it runs CLI.md
//! commands through an [`driver::Executor`] — over SSH ([`ssh`]) locally, in
//! the gateway's own process there.

pub mod app;
pub mod cli;
pub mod driver;
pub mod event;
pub mod input;
pub mod keys;
pub mod layout;
pub mod line;
pub mod local;
pub mod logs;
pub mod ops;
pub mod preview;
pub mod prompt;
pub mod run;
pub mod session;
pub mod ssh;
pub mod ui;

pub use app::{App, Front, Mode, Role, Sample, View};
pub use event::{Action, CommandId, Event};
pub use input::{Key, KeyParser};
pub use logs::{LineFilter, LogBuffer};
pub use run::{RunError, run};
