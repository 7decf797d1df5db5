//! `ps [APP]`: apps, or one app's instances.

use schema::command::PsArgs;

use super::{CmdError, Ctx};

pub async fn execute(ctx: &mut Ctx<'_>, args: PsArgs) -> Result<(), CmdError> {
    let rows = ctx.host.ps(args.app.as_deref()).await?;
    if ctx.json {
        return ctx.json(&rows).await;
    }
    ctx.print(schema::render::ps(&rows, args.app.is_some()))
        .await
}
