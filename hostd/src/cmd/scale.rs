//! `scale APP N`: the wanted replicas.

use schema::command::ScaleArgs;

use super::{CmdError, Ctx};

pub async fn execute(ctx: &mut Ctx<'_>, args: ScaleArgs) -> Result<(), CmdError> {
    let out = ctx.host.scale(ctx.who, &args.app, args.replicas).await?;
    if ctx.json {
        return ctx.json(&out).await;
    }
    ctx.print(format!(
        "scaled {} {} -> {}\n",
        out.app, out.from, out.replicas
    ))
    .await
}
