//! The client side of `hostd <command> --local`: forward the command line
//! to the daemon over its control socket and relay what comes back.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use schema::frame::{CHUNK, ExecMsg, ExecRequest, Hello, MAX_FRAME};
use tokio::net::UnixStream;

use crate::connection::{FrameReader, FrameWriter};
use crate::output::Stdout;

/// Runs `argv` on the daemon at `socket` with `stdin`, its stdout going to
/// `out`; returns its exit status. `local`: the user asked for this host
/// explicitly (`--local`).
pub async fn exec(
    socket: &Path,
    argv: Vec<String>,
    stdin: Vec<u8>,
    local: bool,
    out: &mut Stdout,
) -> anyhow::Result<i32> {
    // The daemon reads no frame past MAX_FRAME: say so here, not as a
    // broken pipe.
    let size: usize = argv.iter().map(|a| a.len() + 8).sum();
    if size > MAX_FRAME {
        anyhow::bail!(
            "the command line is {} KiB, more than the {} KiB the control socket takes in one command; pass large values in a file (a manifest, the artifact) instead",
            size >> 10,
            MAX_FRAME >> 10
        );
    }
    let stream = UnixStream::connect(socket).await.with_context(|| {
        format!(
            "cannot reach hostd at {}; is `hostd serve` running with the same --data (or CRANEFLEET_DATA / CRANEFLEET_SOCKET)?",
            socket.display()
        )
    })?;
    let (r, w) = stream.into_split();
    let mut w = FrameWriter::new(w);
    let mut reader = FrameReader::new(r, MAX_FRAME);
    w.send(&ExecMsg::Hello(Hello::exec())).await?;
    w.send(&ExecMsg::Exec(ExecRequest { argv, local })).await?;
    for chunk in stdin.chunks(CHUNK) {
        w.send(&ExecMsg::Stdin(chunk.to_vec())).await?;
    }
    w.send(&ExecMsg::StdinEnd).await?;
    let mut err = std::io::stderr();
    loop {
        match reader.next_exec().await.context("reading hostd's answer")? {
            Some(ExecMsg::Stdout(b)) => {
                // A closed pipe (`hostd logs -f | head`) ends us quietly.
                if out.write(&b).await.is_err() {
                    return Ok(0);
                }
            }
            Some(ExecMsg::Stderr(b)) => {
                let _ = err.write_all(&b);
            }
            Some(ExecMsg::Exit(code)) => {
                if out.finish().await.is_err() {
                    return Ok(0);
                }
                return Ok(code);
            }
            Some(other) => anyhow::bail!("unexpected message from hostd: {other:?}"),
            None => anyhow::bail!(
                "hostd closed the connection before the command finished; see hostd's log"
            ),
        }
    }
}
