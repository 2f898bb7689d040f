//! Validation rules for everything a client sends (docs/protocol.md §2 limits). A value of
//! one of these types has passed its rule, so storage never sees raw input.

use crate::error::ApiError;
use crate::limits::{
    CLIENT_ID_MAX_CHARS, CONTENT_MAX_CHARS, EMOJI_MAX_BYTES, EMOJI_NAME_MAX_CHARS,
    ROOM_NAME_MAX_CHARS, SENDER_MAX_CHARS,
};

/// Control characters are refused everywhere, except newline and tab.
fn has_forbidden_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Checks a trimmed, single-field text against its length and character rules.
fn check_text(value: &str, what: &str, max: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if chars == 0 {
        return Err(format!("{what} must not be empty"));
    }
    if chars > max {
        return Err(format!(
            "{what} must be at most {max} characters (got {chars})"
        ));
    }
    if has_forbidden_control(value) {
        return Err(format!(
            "{what} must not contain control characters other than newline and tab"
        ));
    }
    Ok(())
}

/// A room name: trimmed, 1..=100 characters, unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName {
    name: String,
    key: String,
}

impl RoomName {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let name = raw.trim();
        check_text(name, "name", ROOM_NAME_MAX_CHARS).map_err(ApiError::InvalidName)?;
        Ok(RoomName {
            name: name.to_owned(),
            key: name.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The case-insensitive uniqueness key (Unicode lowercase).
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A sender name: trimmed, 1..=64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender(String);

impl Sender {
    /// A message's `sender`; a bad one is `invalid_sender`.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        Self::parse_as(raw, "sender", ApiError::InvalidSender)
    }

    /// A name given as a `username` (a join, an action, a read position,
    /// an unread query): the same rule as a sender, reported as
    /// `invalid_username`.
    pub fn parse_username(raw: &str) -> Result<Self, ApiError> {
        Self::parse_as(raw, "username", ApiError::InvalidUsername)
    }

    fn parse_as(raw: &str, what: &str, err: fn(String) -> ApiError) -> Result<Self, ApiError> {
        let name = raw.trim();
        check_text(name, what, SENDER_MAX_CHARS).map_err(err)?;
        Ok(Sender(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's key for one message (`client_id`, or REST's
/// `Idempotency-Key`): 1..=64 ASCII letters, digits, `-`, `_`, `.`, `:`.
/// A repeat of it from the same sender in the same room stores nothing
/// (docs/protocol.md §3.5, "Idempotent sends").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok = (1..=CLIENT_ID_MAX_CHARS).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if !ok {
            return Err(ApiError::InvalidPayload(format!(
                "client_id must be 1 to {CLIENT_ID_MAX_CHARS} ASCII letters, digits, '-', '_', '.' or ':'"
            )));
        }
        Ok(ClientId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Message text: 1..=4000 characters, not only whitespace, stored as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        if raw.trim().is_empty() {
            return Err(ApiError::InvalidMessage(
                "message must not be empty".to_owned(),
            ));
        }
        check_text(raw, "message", CONTENT_MAX_CHARS).map_err(ApiError::InvalidMessage)?;
        Ok(Content(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reaction: one grapheme cluster that is not plain ASCII (an emoji,
/// ZWJ sequences and keycaps included), or a short name like `:party:`
/// (lowercase ASCII letters, digits, `_`, `+`, `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        use unicode_segmentation::UnicodeSegmentation;
        let valid = match raw.strip_prefix(':').and_then(|r| r.strip_suffix(':')) {
            Some(name) => {
                (1..=EMOJI_NAME_MAX_CHARS).contains(&name.len())
                    && name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b)
                    })
            }
            None => {
                raw.len() <= EMOJI_MAX_BYTES
                    && !raw.is_ascii()
                    && raw.graphemes(true).count() == 1
                    && !raw.chars().any(|c| c.is_control() || c.is_whitespace())
            }
        };
        if !valid {
            return Err(ApiError::InvalidEmoji(format!(
                "emoji must be one emoji or a :short_name: of 1 to {EMOJI_NAME_MAX_CHARS} lowercase letters, digits, _, + or -"
            )));
        }
        Ok(Emoji(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message id from a path segment, query or payload string: a positive
/// decimal integer.
pub fn parse_message_id(raw: &str) -> Result<i64, ApiError> {
    parse_room_id(raw).map_err(|_| ApiError::InvalidMessageId)
}

/// A room id from a path segment or query: a positive decimal integer.
pub fn parse_room_id(raw: &str) -> Result<i64, ApiError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::InvalidRoomId);
    }
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::InvalidRoomId),
    }
}

/// A sidecar's node id or a connection's public id, as the internal API
/// takes them in its paths: 1 to 64 ASCII letters, digits, `.`, `_`, `-`.
pub fn parse_node_token<'a>(what: &str, raw: &'a str) -> Result<&'a str, ApiError> {
    let fits = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if fits {
        Ok(raw)
    } else {
        Err(ApiError::BadRequest(format!(
            "{what} must be 1 to 64 ASCII letters, digits, '.', '_' or '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_trimmed_and_keyed_case_insensitively() {
        let name = RoomName::parse("  Café Général \n").unwrap();
        assert_eq!(name.as_str(), "Café Général");
        assert_eq!(name.key(), RoomName::parse("CAFÉ GÉNÉRAL").unwrap().key());
    }

    #[test]
    fn room_name_limits_count_characters_not_bytes() {
        assert!(RoomName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            RoomName::parse(&"é".repeat(101)).unwrap_err().code(),
            "invalid_name"
        );
        assert!(RoomName::parse("   ").is_err());
        assert!(RoomName::parse("").is_err());
    }

    #[test]
    fn a_username_is_a_sender_name_reported_as_a_username() {
        assert_eq!(Sender::parse_username("  bob ").unwrap().as_str(), "bob");
        let long = Sender::parse_username(&"x".repeat(65)).unwrap_err();
        assert_eq!(long.code(), "invalid_username");
        assert_eq!(
            long.to_string(),
            "username must be at most 64 characters (got 65)"
        );
        assert_eq!(
            Sender::parse(&"x".repeat(65)).unwrap_err().code(),
            "invalid_sender"
        );
    }

    #[test]
    fn control_characters_are_refused_except_newline_and_tab() {
        assert!(RoomName::parse("a\u{7}b").is_err());
        assert!(Sender::parse("al\u{0}ice").is_err());
        assert!(Content::parse("bell \u{7}").is_err());
        assert!(Content::parse("del \u{7f}").is_err());
        assert!(Content::parse("line\nnext\tcol").is_ok());
    }

    #[test]
    fn sender_and_content_limits() {
        assert!(Sender::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            Sender::parse(&"a".repeat(65)).unwrap_err().code(),
            "invalid_sender"
        );
        assert!(Content::parse(&"😀".repeat(4000)).is_ok());
        assert_eq!(
            Content::parse(&"a".repeat(4001)).unwrap_err().code(),
            "invalid_message"
        );
        assert!(Content::parse(" \n\t ").is_err());
        assert_eq!(Content::parse("  hi  ").unwrap().as_str(), "  hi  ");
    }

    #[test]
    fn room_ids_are_positive_decimal_integers() {
        assert_eq!(parse_room_id("42"), Ok(42));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.5",
            "abc",
            "99999999999999999999",
            " 1",
        ] {
            assert_eq!(parse_room_id(bad), Err(ApiError::InvalidRoomId), "{bad:?}");
        }
    }
}
