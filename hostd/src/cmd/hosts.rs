//! `hosts`: this host (a gateway lists its whole fleet).

use super::{CmdError, Ctx};

pub async fn execute(ctx: &mut Ctx<'_>) -> Result<(), CmdError> {
    let rows = ctx.host.hosts().await?;
    if ctx.json {
        return ctx.json(&rows).await;
    }
    ctx.print(schema::render::hosts(&rows, schema::time::now_millis()))
        .await
}
