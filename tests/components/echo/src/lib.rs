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
//!
//! Two more routes, for the variables and outbound Redis fixtures
//! (`tests/fixtures/echo-vars`), answer with `{"ok": ...}` or
//! `{"error": {"kind": "...", "message": "..."}}`, the guest's view of what
//! the host answered:
//!
//! - `/variable/<name>`: `spin_sdk::variables::get(name)`;
//! - `/redis/publish?address=A&channel=C&payload=P`: `Connection::open(A)`
//!   then `publish(C, P)`;
//! - `/redis/ops?address=A&key=K`: `open`, then `set(K, "1")`, `incr(K)`,
//!   `get(K)`, `del([K])`, `get(K)`, each result in a list.

use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let path_with_query = req.path_with_query().unwrap_or_default();
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((path_with_query.as_str(), ""));
    if let Some(answer) = variables_and_redis(path, query) {
        respond(out, answer).await;
        return;
    }
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
    respond(out, echo).await;
}

async fn respond(out: ResponseOutparam, answer: serde_json::Value) {
    let body = answer.to_string().into_bytes();
    let fields = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
        .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(200);
    if let Err(e) = out.set_with_body(response, body).await {
        eprintln!("chatroom-echo: writing the response failed: {e:?}");
    }
}

/// The answer of the variables and Redis routes, or `None` for a path that
/// is echoed.
fn variables_and_redis(path: &str, query: &str) -> Option<serde_json::Value> {
    if let Some(name) = path.strip_prefix("/variable/") {
        return Some(match spin_sdk::variables::get(&decode(name)) {
            Ok(value) => serde_json::json!({ "ok": value }),
            Err(e) => variable_error(e),
        });
    }
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| decode(v))
            .unwrap_or_default()
    };
    match path {
        "/redis/publish" => Some(
            match spin_sdk::redis::Connection::open(&param("address"))
                .and_then(|conn| conn.publish(&param("channel"), &param("payload").into_bytes()))
            {
                Ok(()) => serde_json::json!({ "ok": null }),
                Err(e) => redis_error(e),
            },
        ),
        "/redis/ops" => Some(match redis_ops(&param("address"), &param("key")) {
            Ok(results) => serde_json::json!({ "ok": results }),
            Err(e) => redis_error(e),
        }),
        _ => None,
    }
}

fn redis_ops(address: &str, key: &str) -> Result<Vec<serde_json::Value>, spin_sdk::redis::Error> {
    let conn = spin_sdk::redis::Connection::open(address)?;
    let text = |v: Option<Vec<u8>>| v.map(|v| String::from_utf8_lossy(&v).into_owned());
    conn.set(key, b"1")?;
    let incremented = conn.incr(key)?;
    let got = text(conn.get(key)?);
    let deleted = conn.del(&[key.to_owned()])?;
    let gone = text(conn.get(key)?);
    Ok(vec![
        serde_json::json!(incremented),
        serde_json::json!(got),
        serde_json::json!(deleted),
        serde_json::json!(gone),
    ])
}

fn error(kind: &str, message: Option<String>) -> serde_json::Value {
    serde_json::json!({ "error": { "kind": kind, "message": message } })
}

fn variable_error(e: spin_sdk::variables::Error) -> serde_json::Value {
    use spin_sdk::variables::Error;
    match e {
        Error::InvalidName(m) => error("invalid-name", Some(m)),
        Error::Undefined(m) => error("undefined", Some(m)),
        Error::Provider(m) => error("provider", Some(m)),
        Error::Other(m) => error("other", Some(m)),
    }
}

fn redis_error(e: spin_sdk::redis::Error) -> serde_json::Value {
    use spin_sdk::redis::Error;
    match e {
        Error::InvalidAddress => error("invalid-address", None),
        Error::TooManyConnections => error("too-many-connections", None),
        Error::TypeError => error("type-error", None),
        Error::Other(m) => error("other", Some(m)),
    }
}

/// Percent-decodes a path segment or query value (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
