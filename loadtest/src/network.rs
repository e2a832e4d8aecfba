//! `--network NAME`: the network the burst's containers are put on exists before the
//! burst (the default bridge network and CNI networks are the daemon's already; any
//! other name is made as a bridge network through the API, untimed).

use std::path::Path;

use bytes::Bytes;
use hyper::Method;

use crate::client::Conn;
use crate::error::{Error, Result};

/// Names the daemon knows without a definition of the run's.
const BUILTIN: [&str; 4] = ["bridge", "berth0", "none", "host"];

/// Make sure `network` exists on the daemon at `socket`.
pub async fn prepare(socket: &Path, network: &str) -> Result<()> {
    if BUILTIN.contains(&network) {
        return Ok(());
    }
    let mut conn = Conn::new(socket);
    let path = format!("/v1/networks/{network}");
    let found = conn.call(Method::GET, &path, None).await?;
    match found.status.as_u16() {
        200 => return Ok(()),
        404 => {}
        _ => {
            return Err(Error::Protocol {
                what: format!("GET {path}"),
                message: found.error_text(),
            })
        }
    }
    let body = serde_json::json!({ "name": network }).to_string();
    let made = conn
        .call(Method::POST, "/v1/networks", Some(Bytes::from(body)))
        .await?;
    if !made.status.is_success() {
        return Err(Error::Network(format!(
            "creating network {network:?} (neither a CNI network of --cni-conf-dir nor \
             defined): {}",
            made.error_text()
        )));
    }
    Ok(())
}
