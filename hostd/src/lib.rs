//! hostd: compiles Wasm apps ahead of time with Cranelift and runs them.
//!
//! The runtime is a library; `main.rs` wires it to a command line ([`cli`]).
//! See `docs/DESIGN.md` for the life of a release and `docs/CLI.md` for
//! the commands.

pub mod agent;
pub mod artifacts;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod control;
pub mod engine;
pub mod exporter;
pub mod filter;
pub mod host;
pub mod ingress;
pub mod kv;
pub mod logs;
pub mod output;
pub mod remote;
pub mod runtime;
pub mod store;
