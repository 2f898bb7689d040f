//! Who a Socket.IO connection speaks for (docs/protocol.md §7). With an auth secret
//! set, a connection must present a token in its handshake (`auth:
//! {"token": "..."}`, an HS256 token of `chatroom_core::auth`), or it gets
//! `connect_error` with the message `unauthorized`; its username in joins
//! and messages is then the token's user, and another one is refused with
//! `sender_mismatch`. With no secret, connections are anonymous and name
//! themselves, as in the original.

use chatroom_core::auth::{Principal, TokenKey, acting_as};
use chatroom_core::{ApiError, Sender};
use serde_json::Value;

/// Why a handshake was refused: its `connect_error` message.
#[derive(Debug)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}

/// Who a handshake's `auth` payload proves to be, under `key` (its user,
/// and whether it is an operator); `Ok(None)` when auth is off.
pub fn user_of(
    key: Option<&TokenKey>,
    auth: Option<&Value>,
) -> Result<Option<Principal>, Unauthorized> {
    let Some(key) = key else {
        return Ok(None);
    };
    let token = auth
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .ok_or(Unauthorized)?;
    key.principal(token).map(Some).map_err(|_| Unauthorized)
}

/// The name a connection of `user` uses for `asked` (a join's `username`,
/// a message's `sender`): the user's own, whether asked for or implied.
pub fn name_for(user: Option<&Sender>, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    acting_as(user.map(Sender::as_str), asked).map(|name| name.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn handshakes_need_a_valid_token_only_with_a_secret() {
        let key = TokenKey::new("k").unwrap();
        let token = key.sign("alice", u64::MAX / 2).unwrap();
        assert!(user_of(None, None).unwrap().is_none());
        let user = user_of(Some(&key), Some(&json!({"token": token}))).unwrap();
        assert_eq!(user.unwrap().user.as_str(), "alice");
        assert!(user_of(Some(&key), None).is_err());
        assert!(user_of(Some(&key), Some(&json!({"token": 1}))).is_err());
        assert!(user_of(Some(&key), Some(&json!({"token": "x.y.z"}))).is_err());
    }

    #[test]
    fn a_user_speaks_only_as_itself() {
        let alice = Sender::parse("alice").unwrap();
        assert_eq!(name_for(None, Some("bob")).unwrap().as_deref(), Some("bob"));
        assert_eq!(name_for(None, None).unwrap(), None);
        assert_eq!(
            name_for(Some(&alice), None).unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(
            name_for(Some(&alice), Some("alice")).unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(
            name_for(Some(&alice), Some("bob")).unwrap_err().code(),
            "sender_mismatch"
        );
    }
}
