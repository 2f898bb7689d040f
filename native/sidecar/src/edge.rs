//! `EdgeApi`: the REST component as the sidecar's only way to the data, in
//! edge mode (docs/protocol.md §6), where the database is a store the sidecar cannot
//! open (Fermyon's managed SQLite, libSQL/Turso, another node's disk).
//!
//! Here: the client (its calls, their failures, readiness), and the two
//! writes that take more than one call's thought (actions, batches of
//! messages); [`crate::edge_store`] is the sidecar's store on top of it.
//! Every failure of the upstream is a [`StoreError`], which a socket sees
//! as a storage error and the log sees in full.

use std::time::Duration;

use chatroom_core::internal::{Draft, Outcome};
use chatroom_core::limits::MAX_BODY_BYTES;
use chatroom_core::{Action, ApiError, Applied, Message, MessageDraft, StoreError};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use chatroom_front::rest_upstream::{RestUpstream, UpstreamError, classify};

/// Whether the upstream's internal API serves this sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Away or failing for now (unreachable, `5xx`): worth retrying.
    Unavailable(String),
    /// Refused for good (certificate, token, URL): an operator must act.
    Misconfigured(String),
}

/// How long one call to the component may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A batch of drafts is split so that each request body stays under the
/// component's body limit.
const BATCH_BODY_BYTES: usize = MAX_BODY_BYTES - 4 * 1024;

/// Where the component is, and the token of its internal API.
#[derive(Clone)]
pub struct EdgeConfig {
    /// The REST deployment (`https://chat.example.com`, or with a path
    /// prefix where the component is mounted under one) and its client.
    pub upstream: RestUpstream,
    /// The value of the component's `internal_token` variable.
    pub token: String,
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("upstream", &self.upstream.base())
            .field("token", &"<secret>")
            .finish()
    }
}

/// A client of one REST deployment.
pub struct EdgeApi {
    upstream: RestUpstream,
    token: String,
}

pub(crate) fn upstream(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("REST upstream, {what}: {e}"))
}

impl EdgeApi {
    pub fn new(config: &EdgeConfig) -> Self {
        EdgeApi {
            upstream: config.upstream.clone(),
            token: config.token.clone(),
        }
    }

    /// Checks that the internal API answers this sidecar: the feed's head
    /// (what a start needs first). A refused certificate or token is for
    /// the operator to fix, [`Readiness::Misconfigured`]; anything else
    /// (unreachable, `5xx`) may pass, [`Readiness::Unavailable`].
    pub async fn probe(&self) -> Readiness {
        let call = self
            .upstream
            .client()
            .get(self.upstream.url("/internal/feed/head"))
            .bearer_auth(&self.token)
            .timeout(CALL_TIMEOUT)
            .send()
            .await;
        match call {
            Err(e) => match classify(&e) {
                tls @ UpstreamError::Tls(_) => Readiness::Misconfigured(tls.to_string()),
                other => Readiness::Unavailable(other.to_string()),
            },
            Ok(res) if res.status().is_success() => Readiness::Ready,
            Ok(res) => {
                let status = res.status();
                let body = res.bytes().await.unwrap_or_default();
                let said = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                        Readiness::Misconfigured(format!(
                            "the REST upstream refused the internal API ({status}: {said}); \
                             check --internal-token against the component's internal_token \
                             and the --rest-upstream URL (its path prefix included)"
                        ))
                    }
                    _ => Readiness::Unavailable(format!(
                        "the REST upstream answered {status}: {said}"
                    )),
                }
            }
        }
    }

    /// Sends one request; the status and body of the answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, bytes::Bytes), StoreError> {
        let mut req = self
            .upstream
            .client()
            .request(method, self.upstream.url(path))
            .timeout(CALL_TIMEOUT)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let res = req.send().await.map_err(|e| upstream(path, classify(&e)))?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| upstream(path, e))?;
        Ok((status, body))
    }

    /// A call that must succeed with JSON of type `T`.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, StoreError> {
        let (status, body) = self.call(method, path, body).await?;
        if !status.is_success() {
            return Err(refused(path, status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| upstream(path, e))
    }

    /// A call that must succeed, with no answer wanted.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let (status, body) = self.call(method, path, body).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(refused(path, status, &body))
        }
    }

    /// Has the component do what `action` asks.
    pub async fn apply(&self, action: &Action) -> Result<Applied, ApiError> {
        let body = serde_json::to_vec(&action.to_object()).map_err(|e| upstream("actions", e))?;
        let o: Outcome = self
            .json(Method::POST, "/internal/actions", Some(body))
            .await?;
        if !o.ok {
            return Err(o.refusal());
        }
        match (o.message, o.read) {
            (Some(message), _) => Ok(Applied::Message(message)),
            (None, Some(read)) => Ok(Applied::Read(read)),
            (None, None) => match action {
                Action::Delete {
                    room_id,
                    message_id,
                    ..
                } => Ok(Applied::Deleted {
                    room_id: *room_id,
                    message_id: *message_id,
                }),
                _ => Err(upstream("actions", "an answer without its result").into()),
            },
        }
    }

    /// Stores the drafts in order; each gets its own answer.
    pub async fn insert_messages(
        &self,
        drafts: &[(i64, MessageDraft)],
    ) -> Result<Vec<Result<Message, ApiError>>, StoreError> {
        let mut answers = Vec::with_capacity(drafts.len());
        for batch in batches(drafts) {
            let body = serde_json::to_vec(&batch).map_err(|e| upstream("messages", e))?;
            let outcomes: Vec<Outcome> = self
                .json(Method::POST, "/internal/messages", Some(body))
                .await?;
            if outcomes.len() != batch.len() {
                return Err(upstream("messages", "one answer per message expected"));
            }
            answers.extend(outcomes.into_iter().map(outcome));
        }
        Ok(answers)
    }
}

/// The drafts as the internal API takes them, in requests that each fit
/// the component's body limit (one message always fits: 4000 characters).
fn batches(drafts: &[(i64, MessageDraft)]) -> Vec<Vec<Draft>> {
    let mut out: Vec<Vec<Draft>> = Vec::new();
    let mut size = 0;
    for (room_id, d) in drafts {
        let draft = Draft {
            room_id: *room_id,
            sender: d.sender.as_str().to_owned(),
            message: d.content.as_str().to_owned(),
            client_id: d.client_id.as_ref().map(|k| k.as_str().to_owned()),
        };
        let bytes = serde_json::to_vec(&draft).map_or(0, |v| v.len()) + 1;
        match out.last_mut() {
            Some(batch) if size + bytes <= BATCH_BODY_BYTES => {
                size += bytes;
                batch.push(draft);
            }
            _ => {
                size = bytes + 2;
                out.push(vec![draft]);
            }
        }
    }
    out
}

/// One draft's answer from the component.
fn outcome(o: Outcome) -> Result<Message, ApiError> {
    match o {
        Outcome {
            ok: true,
            message: Some(message),
            ..
        } => Ok(message),
        refused => Err(refused.refusal()),
    }
}

/// The `resync_required` a `410` body names, with its horizon.
pub(crate) fn resync_from(body: &[u8]) -> Option<ApiError> {
    #[derive(serde::Deserialize)]
    struct Gone {
        code: String,
        kept_after: i64,
    }
    let gone: Gone = serde_json::from_slice(body).ok()?;
    (gone.code == "resync_required").then_some(ApiError::ResyncRequired {
        kept_after: gone.kept_after,
    })
}

/// A failed answer as an error for the log.
pub(crate) fn refused(path: &str, status: StatusCode, body: &[u8]) -> StoreError {
    let body = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    upstream(path, format!("{status}: {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stay_under_the_body_limit_and_keep_order() {
        let big = "x".repeat(4000);
        let drafts: Vec<_> = (0..64)
            .map(|i| (i, MessageDraft::from_fields(Some("s"), Some(&big)).unwrap()))
            .collect();
        let split = batches(&drafts);
        assert!(split.len() > 1);
        let ids: Vec<i64> = split.iter().flatten().map(|d| d.room_id).collect();
        assert_eq!(ids, (0..64).collect::<Vec<_>>());
        for batch in &split {
            assert!(serde_json::to_vec(batch).unwrap().len() <= BATCH_BODY_BYTES);
        }
        assert!(batches(&[]).is_empty());
    }
}
