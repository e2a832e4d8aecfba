//! Network commands: `network create`, `network ls`, `network inspect`, `network rm`.

use hyper::Method;
use serde_json::{json, Map, Value};

use super::{parse, settle, Ctx};
use crate::args::{NetworkAction, NetworkCreateArgs, NetworkLsArgs};
use crate::client::encode;
use crate::error::CliError;
use crate::table::Table;
use crate::view::{short_digest, NetworkView};

/// `network …`.
pub async fn network(ctx: &Ctx, action: NetworkAction) -> Result<u8, CliError> {
    match action {
        NetworkAction::Create(a) => create(ctx, a).await,
        NetworkAction::Ls(a) => list(ctx, a).await,
        NetworkAction::Inspect(a) => inspect(ctx, &a.networks).await,
        NetworkAction::Rm(a) => remove(ctx, &a.networks).await,
    }
}

/// The path of network `name` (a name or an id).
fn network_path(name: &str) -> String {
    format!("/v1/networks/{}", encode(name))
}

/// The body of `POST /v1/networks` for `args` (what is not given is left to the daemon).
fn create_body(args: &NetworkCreateArgs) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    if let Some(driver) = &args.driver {
        body.insert("driver".into(), json!(driver));
    }
    if let Some(subnet) = &args.subnet {
        body.insert("subnet".into(), json!(subnet));
    }
    if let Some(gateway) = &args.gateway {
        body.insert("gateway".into(), json!(gateway));
    }
    if args.no_masquerade {
        body.insert("masquerade".into(), json!(false));
    }
    if args.internal {
        body.insert("internal".into(), json!(true));
    }
    if let Some(mtu) = args.mtu {
        body.insert("mtu".into(), json!(mtu));
    }
    if !args.labels.is_empty() {
        // A key given twice: the last value, as docker keeps it.
        let labels: Map<String, Value> = args
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        body.insert("labels".into(), Value::Object(labels));
    }
    Value::Object(body)
}

/// `network create …`: prints the new network's id (`--json`: the daemon's answer).
pub async fn create(ctx: &Ctx, args: NetworkCreateArgs) -> Result<u8, CliError> {
    let body = create_body(&args);
    let (raw, value) = ctx
        .client
        .json(Method::POST, "/v1/networks", Some(&body))
        .await?;
    if ctx.json {
        ctx.raw_json(&raw)?;
        return Ok(0);
    }
    let made: NetworkView = parse(value, "POST /v1/networks")?;
    ctx.line(&made.id)?;
    Ok(0)
}

/// The table of `networks` (NETWORK ID, NAME, DRIVER, SUBNET, CONTAINERS).
pub fn table(networks: &[NetworkView]) -> Table {
    let mut t = Table::new(&["NETWORK ID", "NAME", "DRIVER", "SUBNET", "CONTAINERS"]);
    for n in networks {
        t.row(vec![
            short_digest(&n.id).to_owned(),
            n.name.clone(),
            n.driver.kind.clone(),
            n.driver.subnet.clone().unwrap_or_else(|| "-".into()),
            n.containers.len().to_string(),
        ]);
    }
    t
}

/// `network ls [-q] [--format table|json]`.
pub async fn list(ctx: &Ctx, args: NetworkLsArgs) -> Result<u8, CliError> {
    let (raw, value) = ctx.client.json(Method::GET, "/v1/networks", None).await?;
    if ctx.json || args.format == "json" {
        ctx.raw_json(&raw)?;
        return Ok(0);
    }
    let networks: Vec<NetworkView> = parse(value, "GET /v1/networks")?;
    if args.quiet {
        for n in &networks {
            ctx.line(&n.id)?;
        }
        return Ok(0);
    }
    ctx.out(table(&networks).render().as_bytes())?;
    Ok(0)
}

/// `network inspect NETWORK…`: the networks found as a pretty JSON array, as docker
/// prints them (`--json`: each as it came, one per line); one not found is reported
/// and makes the exit status 1.
pub async fn inspect(ctx: &Ctx, names: &[String]) -> Result<u8, CliError> {
    let (found, status) = super::fetch_each(ctx, names.iter().map(|n| network_path(n))).await?;
    if !ctx.json && !found.is_empty() {
        super::print_pretty(ctx, &Value::Array(found), "GET /v1/networks/{name}")?;
    }
    Ok(status)
}

/// `network rm NETWORK…`: prints each name as it is removed (`--json`: the daemon's
/// answer); a refusal for one is reported, the rest are still removed.
pub async fn remove(ctx: &Ctx, names: &[String]) -> Result<u8, CliError> {
    let mut status = 0;
    for name in names {
        let result = match ctx
            .client
            .json(Method::DELETE, &network_path(name), None)
            .await
        {
            Ok((raw, _)) if ctx.json => ctx.raw_json(&raw),
            Ok(_) => ctx.line(name),
            Err(e) => Err(e),
        };
        settle(result, &mut status)?;
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command, NetworkArgs};
    use clap::Parser;

    /// Two NetworkInfo objects as berthd lists them: a bridge network with a
    /// container, and a CNI network.
    const LIST: &str = r#"[
        {"name": "berth0",
         "id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "driver": {"type": "bridge", "bridge": "berth0", "subnet": "10.1.0.0/16",
                    "gateway": "10.1.0.1", "masquerade": true, "internal": false},
         "created": "2026-01-01T00:00:00Z", "labels": {},
         "containers": {"web": {"address": "10.1.0.2/16", "mac": "02:42:0a:01:00:02",
                                "ports": [{"host_port": 8080, "container_port": 80,
                                           "protocol": "tcp"}]}}},
        {"name": "k8s-pod-network",
         "id": "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
         "driver": {"type": "cni", "file": "/etc/cni/net.d/10-k8s.conflist",
                    "cni_name": "k8s-pod-network"},
         "created": "2026-01-01T00:00:00Z", "labels": {}, "containers": {}}
    ]"#;

    #[test]
    fn network_rows_from_the_list() {
        let networks: Vec<NetworkView> = serde_json::from_str(LIST).unwrap();
        assert_eq!(
            table(&networks).render(),
            "NETWORK ID     NAME              DRIVER   SUBNET        CONTAINERS\n\
             0123456789ab   berth0            bridge   10.1.0.0/16   1\n\
             fedcba987654   k8s-pod-network   cni      -             0\n"
        );
    }

    /// The body `berth network create words…` sends.
    fn body(words: &[&str]) -> Value {
        let all = ["berth", "network", "create"].iter().chain(words).copied();
        match Cli::try_parse_from(all).map(|c| c.command) {
            Ok(Command::Network(NetworkArgs {
                action: NetworkAction::Create(a),
            })) => create_body(&a),
            other => panic!("{words:?}: {other:?}"),
        }
    }

    #[test]
    fn create_sends_only_what_is_given() {
        assert_eq!(body(&["web"]), json!({"name": "web"}));
        assert_eq!(
            body(&[
                "--subnet",
                "10.5.0.0/24",
                "--gateway",
                "10.5.0.254",
                "--internal",
                "--no-masquerade",
                "--mtu",
                "1400",
                "--label",
                "a=1",
                "--label",
                "b",
                "--label",
                "a=2=x",
                "-d",
                "bridge",
                "web",
            ]),
            json!({"name": "web", "subnet": "10.5.0.0/24", "gateway": "10.5.0.254",
                   "internal": true, "masquerade": false, "mtu": 1400, "driver": "bridge",
                   "labels": {"a": "2=x", "b": ""}})
        );
    }
}
