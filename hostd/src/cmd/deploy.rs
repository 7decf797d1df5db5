//! `deploy APP FILE|- [flags]`: a new release from an artifact.

use schema::command::DeployArgs;

use super::{CmdError, Ctx};

pub async fn execute(ctx: &mut Ctx<'_>, args: DeployArgs) -> Result<(), CmdError> {
    let bytes = std::mem::take(&mut ctx.stdin);
    let out = ctx.host.deploy(ctx.who, &args, bytes).await?;
    if ctx.json {
        return ctx.json(&out).await;
    }
    let compiled = if out.compile_ms > 0 {
        format!("compiled in {} ms", out.compile_ms)
    } else {
        "code was already compiled".to_string()
    };
    let short = &out.digest[..out.digest.len().min(19)];
    ctx.print(format!(
        "deployed {} {} ({short}…, {}, {} replica{}); {compiled}\n",
        out.app,
        out.version,
        out.kind,
        out.replicas,
        if out.replicas == 1 { "" } else { "s" }
    ))
    .await
}
