//! ssh-gateway: a fleet of hostd agents operated over SSH.
//!
//! Holds the desired state of the fleet in `gateway.db` (or PostgreSQL,
//! shared by an active gateway and its standbys), places replicas on
//! hosts, drives deploys and rollbacks through the hosts' tunnels, fans their
//! logs in, and runs CLI.md commands for operators' `ssh`.

pub mod cli;
pub mod exec;
pub mod fleet;
pub mod keys;
pub mod lease;
pub mod logs;
pub mod metrics;
pub mod operations;
pub mod placement;
pub mod refusals;
pub mod server;
pub mod sessions;
pub mod shell;
pub mod store;
pub mod tunnel;
