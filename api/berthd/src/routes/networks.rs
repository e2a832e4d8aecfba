//! `/v1/networks`: create, list, inspect and remove networks. Bridge networks are made
//! by request; CNI networks are the daemon's CNI configuration files, listed beside them.

use std::sync::Arc;

use berth_engine::Networks;
use berth_network::service::{CreateNetwork, NetworkInfo};
use hyper::StatusCode;

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

/// `POST /v1/networks`: 201 with the network.
pub async fn create(app: &Arc<App>, body: CreateNetwork) -> Reply {
    let networks = service(app)?;
    let made = blocking(move || Ok(networks.create(body)?)).await?;
    json(StatusCode::CREATED, &made)
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
    let name = name.to_owned();
    let removed = blocking(move || Ok(networks.remove(&name)?)).await?;
    json(
        StatusCode::OK,
        &NetworkInfo {
            config: removed,
            containers: Default::default(),
        },
    )
}
