//! Reading the parts of a request line a client controls: the query string
//! (the original's `?name=` and `?sender=&content=` forms, and paging) and
//! path segments. Percent-escapes must decode to UTF-8: bytes that do not
//! are refused with `400 bad_request`, never replaced with U+FFFD, so a
//! query string and a JSON body holding the same bytes get the same answer.

use std::borrow::Cow;

use percent_encoding::percent_decode;

use crate::error::ApiError;

/// A decoded query string (`+` and `%xx` decoded, as in a form); the first
/// occurrence of a key wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes `raw` (the part after `?`, without it).
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        raw.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                Ok((decode_form(key)?, decode_form(value)?))
            })
            .collect::<Result<_, _>>()
            .map(Query)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The whole number `key` gives, within `min..=max` (`invalid_paging`
    /// otherwise: these are a page's bounds); `None` when it is absent.
    pub fn count(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        match raw.parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) && raw.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(v))
            }
            _ => Err(ApiError::InvalidPaging(format!(
                "{key} must be an integer from {min} to {max}"
            ))),
        }
    }
}

fn decode_form(part: &str) -> Result<String, ApiError> {
    let spaced: Cow<'_, str> = if part.contains('+') {
        Cow::Owned(part.replace('+', " "))
    } else {
        Cow::Borrowed(part)
    };
    decode(&spaced, "query string")
}

fn decode(part: &str, what: &str) -> Result<String, ApiError> {
    percent_decode(part.as_bytes())
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ApiError::BadRequest(format!("the {what} is not valid UTF-8")))
}

/// One path segment, percent-decoded (`+` stays a plus): an emoji or a
/// username in a path.
pub fn path_segment(raw: &str) -> Result<String, ApiError> {
    decode(raw, "path")
}

/// Refuses a path any of whose segments does not decode to UTF-8.
pub fn check_path(path: &str) -> Result<(), ApiError> {
    path.split('/')
        .try_for_each(|segment| decode(segment, "path").map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_and_keeps_the_first_value() {
        let q = Query::parse("name=Caf%C3%A9+au+lait&name=second&flag&x=%F0%9F%90%B1").unwrap();
        assert_eq!(q.get("name"), Some("Café au lait"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("x"), Some("🐱"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(Query::parse("").unwrap(), Query::default());
    }

    #[test]
    fn refuses_invalid_utf8_instead_of_replacing_it() {
        for raw in ["name=caf%FF", "sender=a&content=%C3", "%FF=x"] {
            let err = Query::parse(raw).unwrap_err();
            assert_eq!((err.status(), err.code()), (400, "bad_request"), "{raw}");
        }
        assert!(check_path("/chatrooms/1/messages").is_ok());
        assert_eq!(
            check_path("/chatrooms/%FF").unwrap_err().code(),
            "bad_request"
        );
    }
}
