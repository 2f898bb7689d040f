//! Spin's own endpoints under `/.well-known/spin/`, answered before any
//! route is looked at (a component's route there is never reached):
//! `health` gives `200` `OK`, `info` the application's name and version as
//! pretty-printed JSON, anything else under the prefix `404`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Serialize;

use crate::manifest::Manifest;
use crate::response::{ResponseBody, empty_response};

/// The prefix Spin keeps for itself.
const PREFIX: &str = "/.well-known/spin/";

/// What `/.well-known/spin/info` says: Spin's `AppInfo`.
#[derive(Debug, Clone, Serialize)]
struct AppInfo {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

/// The answers of the well-known endpoints of one application.
#[derive(Debug, Clone)]
pub struct WellKnown {
    info: Bytes,
}

fn response(body: Bytes, content_type: Option<&'static str>) -> hyper::Response<ResponseBody> {
    let mut response = hyper::Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    if let Some(content_type) = content_type {
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
    }
    response
}

impl WellKnown {
    pub fn new(manifest: &Manifest) -> Self {
        let info = AppInfo {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
        };
        // Two strings always serialise.
        let info = serde_json::to_vec_pretty(&info).unwrap_or_default();
        WellKnown {
            info: Bytes::from(info),
        }
    }

    /// The answer for `path` if it is under `/.well-known/spin/`.
    pub fn answer(&self, path: &str) -> Option<hyper::Response<ResponseBody>> {
        let rest = path.strip_prefix(PREFIX)?;
        Some(match rest {
            "health" => response(Bytes::from_static(b"OK"), None),
            "info" => response(self.info.clone(), Some("application/json")),
            _ => empty_response(404),
        })
    }
}
