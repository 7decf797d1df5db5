//! `audit [--tail N]`: who did what, when.

use schema::command::AuditArgs;

use super::{CmdError, Ctx};

pub async fn execute(ctx: &mut Ctx<'_>, args: AuditArgs) -> Result<(), CmdError> {
    let rows = ctx.host.audit_tail(args.tail).await?;
    if ctx.json {
        return ctx.json(&rows).await;
    }
    ctx.print(schema::render::audit(&rows)).await
}
