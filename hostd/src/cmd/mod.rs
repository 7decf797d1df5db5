//! The commands `hostd` runs in its own process: the daemons (`serve`,
//! `agent`, `demo`) and the local-only `precompile`. The fleet commands of
//! CLI.md (`deploy`, `ps`, …) are the operations layer's (`ops`): the
//! control socket serves them with [`crate::host::HostOps`].

pub mod agent;
pub mod demo;
pub mod precompile;
pub mod serve;
