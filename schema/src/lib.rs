//! What crosses a boundary in cranefleet, and nothing else.
//!
//! The three programs (`hostd`, `ssh-gateway`, `console`) share only this
//! crate: the SQL migrations of both databases, the app manifest, the command
//! grammar of `docs/CLI.md`, the wire frames of the control socket and the
//! tunnel, and the JSON shapes scripts rely on. Nothing here does I/O, so every
//! rule in it can be tested without a daemon.

pub mod actor;
pub mod artifact;
pub mod audit;
pub mod canary;
pub mod command;
pub mod cron;
pub mod expr;
pub mod frame;
pub mod grant;
pub mod info;
pub mod logbatch;
pub mod manifest;
pub mod migrations;
pub mod names;
pub mod progress;
pub mod render;
pub mod state;
pub mod time;
pub mod tunnel;
pub mod types;

pub use actor::Actor;
pub use info::AppInfo;
pub use manifest::{Manifest, ManifestError};
pub use state::{HostState, RunState, Tone};
pub use types::*;
