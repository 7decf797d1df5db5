//! Progress of an operation: the typed steps of `schema::progress`, and the
//! queue an operation reports them on.

pub use schema::progress::{Progress, Step};

/// Where an operation reports its progress while it runs.
pub type ProgressTx = tokio::sync::mpsc::UnboundedSender<Progress>;
