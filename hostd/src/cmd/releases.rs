//! `releases APP`: every release, newest first.

use schema::command::ReleasesArgs;

use super::{CmdError, Ctx};

pub async fn execute(ctx: &mut Ctx<'_>, args: ReleasesArgs) -> Result<(), CmdError> {
    let rows = ctx.host.releases(&args.app).await?;
    if ctx.json {
        return ctx.json(&rows).await;
    }
    ctx.print(schema::render::releases(&rows, schema::time::now_millis()))
        .await
}
