//! `hostd <command> --gateway [user@]host[:port]`: the command runs on the
//! gateway over an SSH exec channel, exactly as `ssh -p PORT gw <command>`
//! would run it; stdout, stderr and the exit status come back as they are.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use russh::ChannelMsg;
use schema::command::join_command_line;

use ssh_client::{self as ssh, HostKeyPolicy, Target};

use crate::output::Stdout;

/// Where `hostd --gateway` finds the user's SSH files.
fn ssh_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".ssh")
}

pub fn default_identity() -> PathBuf {
    ssh_dir().join("id_ed25519")
}

/// Runs `argv` on the gateway, its stdout going to `out`; returns its exit
/// status.
pub async fn exec(
    gateway: &str,
    identity: Option<PathBuf>,
    accept_new_host_key: bool,
    argv: Vec<String>,
    stdin: Option<Vec<u8>>,
    out: &mut Stdout,
) -> anyhow::Result<i32> {
    let targets = Target::parse_list(gateway, &ssh::local_user())?;
    let identity = identity.unwrap_or_else(default_identity);
    let key = ssh::load_key(&identity)?;
    let policy = HostKeyPolicy::KnownHosts {
        path: ssh_dir().join("known_hosts"),
        accept_new: accept_new_host_key,
    };
    let (handle, _) = ssh::connect_first(&targets, &key, policy).await?;
    let mut channel = handle
        .channel_open_session()
        .await
        .context("opening a session on the gateway")?;
    channel
        .exec(true, join_command_line(&argv))
        .await
        .context("starting the command on the gateway")?;
    if let Some(bytes) = stdin {
        channel
            .data(&bytes[..])
            .await
            .context("sending the artifact to the gateway")?;
    }
    channel.eof().await.context("closing stdin")?;
    let mut err = std::io::stderr();
    let mut code = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                // A closed pipe (`hostd logs -f | head`) ends us quietly.
                let written = out.write(&data).await;
                if written.is_err() {
                    return Ok(0);
                }
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                let _ = err.write_all(&data);
            }
            ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status as i32),
            _ => {}
        }
    }
    if out.finish().await.is_err() {
        return Ok(0);
    }
    code.context("the gateway closed the session without an exit status")
}
