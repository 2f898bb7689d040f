//! Who may do what (docs/protocol.md §7), from the `auth_secret` and
//! `auth_private_reads` Spin variables. With no secret, everything is open,
//! as the original was. With one, writes need `Authorization: Bearer
//! <token>` (an HS256 token, `chatroom_core::auth`) and a message's sender
//! is the token's user; reads stay public unless `auth_private_reads` is
//! `true`.

use chatroom_core::auth::{TokenKey, bearer};
use chatroom_core::{ApiError, Sender};
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

    /// For a write: the user the request's token speaks for, or `None`
    /// when auth is off.
    pub fn writer(&self, req: &IncomingRequest) -> Result<Option<Sender>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let header = req.headers().get("authorization");
        let token = header
            .last()
            .and_then(|v| bearer(v))
            .ok_or(ApiError::Unauthorized)?;
        key.verify(token).map(Some)
    }

    /// For a read: `Ok` unless reads are private and the token is missing
    /// or bad. The deployment's internal token reads too: edge-mode
    /// sidecars check rooms through the public routes.
    pub fn reader(&self, req: &IncomingRequest) -> Result<(), ApiError> {
        if !(self.private_reads && self.key.is_some()) || crate::internal::authorize(req).is_ok() {
            return Ok(());
        }
        self.writer(req).map(drop)
    }
}

/// `Err(SenderMismatch)` unless `sender` is the token's user (when there
/// is one).
pub fn check_sender(sender: &Sender, user: Option<&Sender>) -> Result<(), ApiError> {
    match user {
        Some(user) if user.as_str() != sender.as_str() => {
            Err(ApiError::SenderMismatch(user.as_str().to_owned()))
        }
        _ => Ok(()),
    }
}
