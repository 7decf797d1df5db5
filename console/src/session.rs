//! Who this console is: which front door draws it and the role of the key
//! it acts with. The lowest layer of the console: the app state, the
//! prompt and the drawing code all read it.

pub use schema::Role;

/// Which front door draws this console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// The `console` binary in the operator's own terminal: local files exist.
    Local,
    /// The gateway, drawing into an SSH channel: the operator's files do not.
    Remote,
}

/// The refusal a viewer sees, naming the command it tried.
pub fn read_only_message(command: &str) -> String {
    format!("read-only console (viewer key): {command} needs an operator key")
}
