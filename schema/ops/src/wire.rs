//! A door's `--json` output read back into replies: for a client at the
//! far end of SSH (the local console), the one place printed output is
//! parsed again. In-process, replies are never printed.

use schema::command::Command;

use crate::error::{ErrorKind, OpError};
use crate::progress::Progress;
use crate::reply::{LogChunk, Reply};

/// One line of a `--json` command's stdout, as the reply it prints.
pub fn decode_stdout(command: &Command, line: &str) -> Result<Reply, serde_json::Error> {
    use serde_json::from_str;
    Ok(match command {
        Command::Deploy(_) => Reply::Deployed(from_str(line)?),
        Command::Rollback(_) => Reply::RolledBack(from_str(line)?),
        Command::Scale(_) => Reply::Scaled(from_str(line)?),
        Command::Restart(_) => Reply::Restarted(from_str(line)?),
        Command::Promote(_) | Command::Abort(_) => Reply::CanaryEnded(from_str(line)?),
        Command::Rm(_) => Reply::Removed(from_str(line)?),
        Command::Ps(a) => Reply::Ps {
            rows: from_str(line)?,
            instances: a.app.is_some(),
        },
        Command::Releases(_) => Reply::Releases(from_str(line)?),
        Command::Hosts => Reply::Hosts(from_str(line)?),
        Command::Audit(_) => Reply::Audit(from_str(line)?),
        Command::Events(_) => Reply::Events(vec![from_str(line)?]),
        Command::Logs(_) => Reply::Logs(LogChunk::Records(vec![from_str(line)?])),
        Command::Watch => Reply::Snapshot(from_str(line)?),
        Command::Info(_) => Reply::Info(Box::new(from_str(line)?)),
        Command::Config(a) if a.changes() => Reply::ConfigChanged(from_str(line)?),
        Command::Config(a) => Reply::Config {
            app: a.app.clone(),
            rows: from_str(line)?,
        },
        Command::Kv(_) => Reply::Kv(from_str(line)?),
    })
}

/// One line of a `--json` command's stderr: progress, or `None` for text
/// (an error, a warning).
pub fn decode_stderr(line: &str) -> Option<Progress> {
    serde_json::from_str(line).ok()
}

/// How a command that exited with `code` failed, from what it printed on
/// stderr.
pub fn error_of(code: i32, stderr: &str) -> OpError {
    let kind = match code {
        2 => ErrorKind::Usage,
        _ => ErrorKind::Failed,
    };
    let message = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .trim_start_matches("error: ");
    OpError::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_outcome_reads_back_as_its_reply() {
        let cl = crate::parse_line("rollback api --json").unwrap();
        let r = decode_stdout(
            &cl.command,
            r#"{"app":"api","from":"v3","to":"v2","switch_ms":4}"#,
        )
        .unwrap();
        let Reply::RolledBack(o) = r else {
            panic!("{r:?}")
        };
        assert_eq!((o.to, o.switch_ms), (schema::Version(2), 4));
        assert!(decode_stdout(&cl.command, "rolled back").is_err());
        let e = error_of(1, "\nerror: no earlier release of api\n");
        assert_eq!(
            (e.exit_code(), e.message.as_str()),
            (1, "no earlier release of api")
        );
        assert!(decode_stderr("web-1: staging").is_none());
        assert_eq!(
            decode_stderr(r#"{"host":"h","line":"active v2"}"#)
                .unwrap()
                .host,
            "h"
        );
    }
}
