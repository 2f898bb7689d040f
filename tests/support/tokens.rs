//! User tokens for the tests that turn identity on: signed with the
//! test's secret as `chatroom token` signs them, valid for ten minutes.

use std::time::{SystemTime, UNIX_EPOCH};

use chatroom_core::auth::TokenKey;

/// A token for `user` with `roles` (`&["admin"]`: an operator's),
/// signed with `secret`.
pub fn signed(secret: &str, user: &str, roles: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    TokenKey::new(secret)
        .expect("a non-empty secret")
        .sign_with_roles(user, now + 600, roles)
        .expect("a token")
}
