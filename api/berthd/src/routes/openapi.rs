//! `GET /v1/openapi.json`: the OpenAPI 3 document of this API, as committed in
//! `api/berthd/openapi.json` (a test checks it lists exactly the server's routes).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;

use super::Reply;

/// The document, built into the binary.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

/// The document as the answer.
pub fn document() -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from_static(DOCUMENT.as_bytes())));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}
