//! `port`: a container's published ports, as `docker port` prints them.

use hyper::Method;
use serde_json::Value;

use super::{container_path, parse, Ctx};
use crate::args::PortArgs;
use crate::error::CliError;
use crate::publish::{Protocol, Publish};

/// `port ID [PORT[/PROTO]]`: one line per published port (`80/tcp -> 0.0.0.0:8080`),
/// or with PORT where it is on the host (`0.0.0.0:8080`; exit status 1 when it is not
/// published). `--json`: the ports as the daemon shows them.
pub async fn port(ctx: &Ctx, args: PortArgs) -> Result<u8, CliError> {
    let path = container_path(&args.id, "");
    let (_, mut record) = ctx.client.json(Method::GET, &path, None).await?;
    // No attachment (network none, host, or no ports): nothing published.
    let ports = match record.pointer_mut("/network_attachment/ports") {
        Some(ports) => ports.take(),
        None => Value::Array(Vec::new()),
    };
    if ctx.json {
        ctx.line(&ports.to_string())?;
        return Ok(0);
    }
    let ports: Vec<Publish> = parse(ports, &format!("GET {path}"))?;
    for line in lines(&ports, args.port) {
        ctx.line(&line)?;
    }
    match args.port {
        Some((number, protocol)) if !ports.iter().any(|p| is(p, number, protocol)) => {
            Err(CliError::Container {
                id: args.id,
                what: format!("publishes no port {number}/{protocol}"),
            })
        }
        _ => Ok(0),
    }
}

/// Whether `p` publishes container port `number` for `protocol`.
fn is(p: &Publish, number: u16, protocol: Protocol) -> bool {
    p.container_port == number && p.protocol == protocol
}

/// What `port` prints: every port's line, or only where `only` is on the host.
fn lines(ports: &[Publish], only: Option<(u16, Protocol)>) -> Vec<String> {
    match only {
        None => ports.iter().map(Publish::line).collect(),
        Some((number, protocol)) => ports
            .iter()
            .filter(|p| is(p, number, protocol))
            .map(Publish::host_address)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::parse as publish;

    #[test]
    fn lines_like_docker_port() {
        let ports: Vec<Publish> = serde_json::from_value(serde_json::json!([
            {"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80, "protocol": "tcp"},
            {"host_port": 32768, "container_port": 53, "protocol": "udp"},
            {"host_ip": "::1", "host_port": 8443, "container_port": 443, "protocol": "tcp"}
        ]))
        .unwrap();
        assert_eq!(
            lines(&ports, None),
            [
                "80/tcp -> 127.0.0.1:8080",
                "53/udp -> 0.0.0.0:32768",
                "443/tcp -> [::1]:8443"
            ]
        );
        assert_eq!(lines(&ports, Some((53, Protocol::Udp))), ["0.0.0.0:32768"]);
        assert!(lines(&ports, Some((53, Protocol::Tcp))).is_empty());
        assert_eq!(ports[0], publish("127.0.0.1:8080:80").unwrap());
    }
}
