//! `precompile FILE [--target TRIPLE] [-o OUT]`: Cranelift ahead of time, for
//! this machine or the other supported one, without a daemon.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use schema::PrecompileOutcome;

use crate::engine::{self, TARGETS};

#[derive(Debug, Args)]
pub struct PrecompileArgs {
    /// A .wasm module or component (`-` for stdin).
    pub file: String,
    /// x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu (default: this machine).
    #[arg(long)]
    pub target: Option<String>,
    /// Where to write the .cwasm (default: FILE with .cwasm, or .<arch>.cwasm for another target).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
}

pub fn execute(args: PrecompileArgs, json: bool) -> anyhow::Result<()> {
    let here = engine::host_target();
    let target = match (&args.target, here) {
        (Some(t), _) => t.clone(),
        (None, Some(h)) => h.to_string(),
        (None, None) => anyhow::bail!(
            "this machine is {}, which hostd does not run on; pass --target {}",
            std::env::consts::ARCH,
            TARGETS.join(" or --target ")
        ),
    };
    let compiler = engine::compile_engine(&target)?;
    let bytes = if args.file == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("reading stdin")?;
        b
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file))?
    };
    let pre = engine::precompile(&compiler, &bytes)
        .with_context(|| format!("cannot compile {}", args.file))?;
    let output = args.output.clone().unwrap_or_else(|| {
        let base = if args.file == "-" {
            PathBuf::from("stdin.wasm")
        } else {
            PathBuf::from(&args.file)
        };
        let arch = target.split('-').next().unwrap_or("unknown");
        if Some(target.as_str()) == here {
            base.with_extension("cwasm")
        } else {
            base.with_extension(format!("{arch}.cwasm"))
        }
    });
    crate::artifacts::write_atomically(&output, &pre.cwasm)?;
    let out = PrecompileOutcome {
        input: args.file.clone(),
        output: output.display().to_string(),
        digest: format!("sha256:{}", engine::digest(&bytes)),
        artifact: pre.form.as_str().to_string(),
        target: target.clone(),
        input_bytes: bytes.len() as u64,
        output_bytes: pre.cwasm.len() as u64,
        compile_ms: pre.compile_ms,
    };
    if json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "compiled {} ({}, {}) for {} in {} ms: {} -> {} ({} bytes)",
            out.input,
            out.artifact,
            out.digest,
            out.target,
            out.compile_ms,
            out.input_bytes,
            out.output,
            out.output_bytes
        );
    }
    Ok(())
}
