//! Who may do what (docs/protocol.md §7, §10), from the `auth_secret` and
//! `auth_private_reads` Spin variables. With no secret, everything is open,
//! as the original was. With one, writes need `Authorization: Bearer
//! <token>` (an HS256 token, `chatroom_core::auth`) and a message's sender
//! is the token's user; reads stay public unless `auth_private_reads` is
//! `true`, but a reader's token (when sent) shows it the private rooms it
//! is a member of. The internal token reads every room.

use chatroom_core::auth::{Principal, TokenKey, acting_as, bearer};
use chatroom_core::{ApiError, Sender, Viewer};
use spin_sdk::http::IncomingRequest;

/// The deployment's access rules.
pub struct Access {
    key: Option<TokenKey>,
    private_reads: bool,
}

impl Access {
    pub fn from_variables() -> Self {
        let secret = spin_sdk::variables::get("auth_secret").unwrap_or_default();
        let private = spin_sdk::variables::get("auth_private_reads").unwrap_or_default();
        Access {
            key: TokenKey::new(&secret),
            private_reads: private.trim().eq_ignore_ascii_case("true"),
        }
    }

    /// For a write: who the request's token speaks for, or `None` when
    /// auth is off.
    pub fn principal(&self, req: &IncomingRequest) -> Result<Option<Principal>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let token = token_of(req).ok_or(ApiError::Unauthorized)?;
        key.principal(&token).map(Some)
    }

    /// For a write: the user the request's token speaks for, or `None`
    /// when auth is off.
    pub fn writer(&self, req: &IncomingRequest) -> Result<Option<Sender>, ApiError> {
        Ok(self.principal(req)?.map(|p| p.user))
    }

    /// For a read: who is reading. No token is an anonymous reader (`401`
    /// when reads are private); a user's token names its user (and an
    /// operator's sees every room); the deployment's internal token, with
    /// which edge-mode sidecars read, sees every room.
    pub fn viewer(&self, req: &IncomingRequest) -> Result<Viewer, ApiError> {
        let Some(token) = token_of(req) else {
            return match (&self.key, self.private_reads) {
                (Some(_), true) => Err(ApiError::Unauthorized),
                _ => Ok(Viewer::default()),
            };
        };
        if let Some(Ok(principal)) = self.key.as_ref().map(|key| key.principal(&token)) {
            return Ok(principal.into());
        }
        if crate::internal::authorize(req).is_ok() {
            return Ok(Viewer::trusted());
        }
        match self.key {
            // Auth off: a token that is not the internal one means nothing.
            None => Ok(Viewer::default()),
            Some(_) => Err(ApiError::Unauthorized),
        }
    }
}

fn token_of(req: &IncomingRequest) -> Option<String> {
    let header = req.headers().get("authorization");
    header.last().and_then(|v| bearer(v)).map(str::to_owned)
}

/// `Err(SenderMismatch)` unless `sender` is the token's user (when there
/// is one).
pub fn check_sender(sender: &Sender, user: Option<&Sender>) -> Result<(), ApiError> {
    acting_as(user.map(Sender::as_str), Some(sender.as_str())).map(drop)
}
