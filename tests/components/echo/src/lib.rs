//! A test-only Spin HTTP component that echoes what it was given: the
//! method, the URI (scheme, authority, path and query) and the path with its
//! query as the component sees them, and every `spin-*` request header
//! (and `host`, which `wasi:http` hosts strip: the authority carries it),
//! as one JSON object:
//!
//! ```json
//! {"method": "GET", "uri": "http://127.0.0.1:3000/base/echo/x?q=1",
//!  "path_with_query": "/base/echo/x?q=1",
//!  "headers": {"spin-path-info": "", "spin-path-match-name": "x", ...}}
//! ```
//!
//! `tests/spin_compat.rs` serves it under `spin up` and under the project's
//! host on the same manifest and compares the two answers field by field.
//! A header sent more than once is echoed as its values joined by `, `.

use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers().entries() {
        let name = name.to_ascii_lowercase();
        if name != "host" && !name.starts_with("spin-") {
            continue;
        }
        let value = String::from_utf8_lossy(&value).into_owned();
        match headers.get_mut(&name) {
            Some(serde_json::Value::String(seen)) => {
                seen.push_str(", ");
                seen.push_str(&value);
            }
            _ => {
                headers.insert(name, serde_json::Value::String(value));
            }
        }
    }
    let echo = serde_json::json!({
        "method": req.method().to_string(),
        "uri": req.uri(),
        "path_with_query": req.path_with_query(),
        "headers": headers,
    });
    let body = echo.to_string().into_bytes();
    let fields = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
        .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(200);
    if let Err(e) = out.set_with_body(response, body).await {
        eprintln!("chatroom-echo: writing the response failed: {e:?}");
    }
}
