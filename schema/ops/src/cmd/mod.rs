//! One file per verb: its wording (text and the console's one-line
//! summary) and the checks a single host and the fleet share. The grammar
//! of each verb is `schema::command`'s.

pub mod audit;
pub mod canary;
pub mod config;
pub mod deploy;
pub mod hosts;
pub mod info;
pub mod kv;
pub mod logs;
pub mod ps;
pub mod releases;
pub mod restart;
pub mod rm;
pub mod rollback;
pub mod scale;
pub mod watch;
