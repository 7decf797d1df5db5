//! `rm APP`: stop and forget an app.

use schema::command::RmArgs;

use super::{CmdError, Ctx};

pub async fn execute(ctx: &mut Ctx<'_>, args: RmArgs) -> Result<(), CmdError> {
    ctx.host.rm(ctx.who, &args.app).await?;
    if ctx.json {
        return ctx
            .json(&serde_json::json!({ "app": args.app, "removed": true }))
            .await;
    }
    ctx.print(format!("removed {}\n", args.app)).await
}
