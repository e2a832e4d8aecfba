//! `system`: the daemon's figures as a two-column table; `system workers N` resizes the
//! start pool.

use hyper::Method;
use serde_json::{json, Value};

use super::Ctx;
use crate::args::{SystemAction, SystemArgs};
use crate::error::CliError;
use crate::table::Table;

/// A JSON value in one cell: objects as `k=v k=v`, strings bare.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// The figures of `GET /v1/system` as rows, in the daemon's order.
fn table(info: &Value) -> Table {
    let mut t = Table::new(&["KEY", "VALUE"]);
    if let Some(map) = info.as_object() {
        for (k, v) in map {
            t.row(vec![k.clone(), cell(v)]);
        }
    }
    t
}

/// `system [info]` or `system workers N`.
pub async fn system(ctx: &Ctx, args: SystemArgs) -> Result<u8, CliError> {
    let (raw, info) = match args.action {
        None | Some(SystemAction::Info) => ctx.client.json(Method::GET, "/v1/system", None).await?,
        Some(SystemAction::Workers { n }) => {
            let body = json!({ "workers": n });
            ctx.client
                .json(Method::PUT, "/v1/system/workers", Some(&body))
                .await?
        }
    };
    if ctx.json {
        ctx.raw_json(&raw)?;
    } else {
        ctx.out(table(&info).render().as_bytes())?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_in_two_columns() {
        let t = table(&json!({"version": "0.1.0", "workers": 10,
                              "containers": {"running": 2, "stopped": 0}}));
        let text = t.render();
        assert!(text.contains("workers      10\n"), "{text}");
        assert!(
            text.contains("containers   running=2 stopped=0\n"),
            "{text}"
        );
    }
}
