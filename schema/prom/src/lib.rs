//! What a daemon's `--metrics ADDR` serves: its figures in the Prometheus
//! text exposition format (version 0.0.4) at `GET /metrics`.
//!
//! - [`Exposition`]: writes metric families (`# HELP`, `# TYPE`, samples),
//!   escaping label values and help text as the format says.
//! - [`Histogram`]: a cumulative histogram of durations kept in atomics, so
//!   a hot path records an observation without a lock.
//! - [`serve`]: the endpoint. It is unauthenticated, so what a client may
//!   cost is bounded: at most [`Limits::max_connections`] at once (the
//!   oldest connection that has not sent its request yet makes room for a
//!   new one, so idle connections never lock a scraper out), a request head
//!   of at most [`Limits::max_head_bytes`] (a larger one is answered 431),
//!   its head within [`Limits::header_timeout`], the whole exchange within
//!   [`Limits::deadline`], one request per connection.
//!
//! Both `hostd` and `ssh-gateway` serve their figures through this crate;
//! each implements [`Source`] over its own state.

mod endpoint;
mod histogram;
mod text;

pub use endpoint::{BindError, CONTENT_TYPE, Limits, Source, bind, serve};
pub use histogram::{Histogram, HistogramSnapshot};
pub use text::{Exposition, Kind};
