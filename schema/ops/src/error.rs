//! Why a command did not succeed, and the exit status that says so.

use serde::{Deserialize, Serialize};

/// The kinds CLI.md's exit statuses distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not an error: `help` or `--help` was asked for. The message is the
    /// help text, printed on stdout; exit 0.
    Help,
    /// The command line does not parse; the message is clap's whole text
    /// (it starts with `error:`), printed as it is; exit 2.
    Syntax,
    /// The command cannot run here as asked (`watch` on a single host, a
    /// deploy without its file); exit 2.
    Usage,
    /// Refused (a viewer's change, an unknown app) or failed (staging
    /// failed on a host); exit 1.
    Failed,
    /// The client went away or the link broke; nothing more can be said to
    /// it; exit 1.
    Gone,
}

/// A command's failure: what kind, and one line saying what failed and what
/// to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct OpError {
    pub kind: ErrorKind,
    pub message: String,
}

impl OpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            message: message.into(),
        }
    }

    /// Refused or failed: exit 1.
    pub fn failed(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::Failed, message)
    }

    pub fn usage(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::Usage, message)
    }

    pub fn gone() -> OpError {
        OpError::new(ErrorKind::Gone, "the client went away")
    }

    /// CLI.md's exit status: 0 help, 1 refused or failed, 2 usage.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Help => 0,
            ErrorKind::Syntax | ErrorKind::Usage => 2,
            ErrorKind::Failed | ErrorKind::Gone => 1,
        }
    }

    /// What a door prints for it: the text as CLI.md shows it, on stdout
    /// for help and stderr otherwise (`None`: nothing, the client is gone).
    pub fn printed(&self) -> Option<(bool, String)> {
        match self.kind {
            ErrorKind::Help => Some((true, self.message.clone())),
            ErrorKind::Syntax => Some((false, self.message.clone())),
            ErrorKind::Usage | ErrorKind::Failed => {
                Some((false, format!("error: {}\n", self.message)))
            }
            ErrorKind::Gone => None,
        }
    }

    /// The first line of the message without clap's `error: `: what a
    /// console shows in one line.
    pub fn reason(&self) -> String {
        self.message
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no reason given")
            .trim_start_matches("error: ")
            .to_string()
    }
}
