//! `rollback APP [--to vN]`: an earlier release active again, from kept code.

use schema::command::RollbackArgs;

use super::{CmdError, Ctx};

pub async fn execute(ctx: &mut Ctx<'_>, args: RollbackArgs) -> Result<(), CmdError> {
    let out = ctx.host.rollback(ctx.who, &args.app, args.to).await?;
    if ctx.json {
        return ctx.json(&out).await;
    }
    let from = out
        .from
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into());
    ctx.print(format!(
        "rolled back {} {from} -> {} in {} ms\n",
        out.app, out.to, out.switch_ms
    ))
    .await
}
