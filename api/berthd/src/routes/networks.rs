//! `/v1/networks`: create, list, inspect and remove networks. Bridge networks are made
//! by request; CNI networks are the daemon's CNI configuration files, listed beside them.

use std::sync::Arc;

use berth_engine::Networks;
use berth_network::service::{CreateNetwork, NetworkInfo};
use berth_network::NetworkConfig;
use std::collections::BTreeMap;

use hyper::StatusCode;
use serde::Deserialize;

use super::integer::JsonInt;
use super::{blocking, json, ApiError, App, Reply};

/// The networks service, or 404 when the daemon runs without one.
fn service(app: &App) -> Result<Arc<Networks>, ApiError> {
    app.networks.clone().ok_or_else(|| {
        ApiError::not_found(
            "networks_disabled",
            "this daemon was started without networks",
        )
    })
}

/// Body of `POST /v1/networks` (the service's [`CreateNetwork`], its integer taken as
/// any JSON integer: out of range is 422, not 400).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNetworkRequest {
    /// The name.
    pub name: String,
    /// `bridge` (the only driver made by request).
    pub driver: Option<String>,
    /// IPv4 CIDR.
    pub subnet: Option<String>,
    /// An address in the subnet.
    pub gateway: Option<String>,
    /// Masquerade traffic leaving the host (default true).
    pub masquerade: Option<bool>,
    /// No route out.
    #[serde(default)]
    pub internal: bool,
    /// The MTU.
    pub mtu: Option<JsonInt>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl CreateNetworkRequest {
    fn into_service(self) -> Result<CreateNetwork, ApiError> {
        let mtu = match self.mtu {
            Some(m) => Some(m.within(68u32, 65535, "mtu", "invalid_network")?),
            None => None,
        };
        Ok(CreateNetwork {
            name: self.name,
            driver: self.driver,
            subnet: self.subnet,
            gateway: self.gateway,
            masquerade: self.masquerade,
            internal: self.internal,
            mtu,
            labels: self.labels,
        })
    }
}

/// `POST /v1/networks`: 201 with the network.
pub async fn create(app: &Arc<App>, body: CreateNetworkRequest) -> Reply {
    let body = body.into_service()?;
    let networks = service(app)?;
    let made = blocking(move || Ok(networks.create(body)?)).await?;
    json(StatusCode::CREATED, &alone(made))
}

/// `GET /v1/networks`.
pub async fn list(app: &Arc<App>) -> Reply {
    let networks = service(app)?;
    let all = blocking(move || Ok(networks.list())).await?;
    json(StatusCode::OK, &all)
}

/// `GET /v1/networks/{name}`: the network and its containers.
pub async fn get(app: &Arc<App>, name: &str) -> Reply {
    let networks = service(app)?;
    let name = name.to_owned();
    let info = blocking(move || Ok(networks.get(&name)?)).await?;
    json(StatusCode::OK, &info)
}

/// `DELETE /v1/networks/{name}`: 409 while containers are attached.
pub async fn delete(app: &Arc<App>, name: &str) -> Reply {
    let networks = service(app)?;
    let engine = Arc::clone(&app.engine);
    let name = name.to_owned();
    let removed = blocking(move || {
        let live = |id: &str| engine.get(id).is_some_and(|r| !r.state.is_final());
        Ok(networks.remove(&name, &live)?)
    })
    .await?;
    json(StatusCode::OK, &alone(removed))
}

/// A network without containers (just made, or just removed).
fn alone(config: NetworkConfig) -> NetworkInfo {
    NetworkInfo {
        config,
        containers: Default::default(),
    }
}
