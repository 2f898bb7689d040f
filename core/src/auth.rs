//! Identity (docs/protocol.md §7): HS256 JSON Web Tokens carrying the username in `sub`
//! and an expiry in `exp`, signed with one secret the component (a secret
//! Spin variable) and the sidecar (a flag) share. Off unless that secret is
//! set.
//!
//! Only HS256 is accepted: a token naming `none` or any other algorithm, a
//! bad signature, a missing `sub` or `exp`, or an `exp` more than
//! [`LEEWAY_SECS`] in the past is refused. Verification is
//! `jsonwebtoken`'s, with its pure-Rust crypto so the same code runs in the
//! wasm component.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::validate::Sender;

/// How far past `exp` a token is still accepted (clock skew).
pub const LEEWAY_SECS: u64 = 60;

/// Who is acting (docs/protocol.md §7), the one rule for every path: with
/// identity on, the token's user, and a name the request gives (a
/// `sender`, a `username`, a path's name) must be that user's
/// (`sender_mismatch` otherwise); with identity off, the name given, if
/// any (the caller decides what no name means).
pub fn acting_as<'a>(
    token_user: Option<&'a str>,
    named: Option<&'a str>,
) -> Result<Option<&'a str>, ApiError> {
    match (token_user, named) {
        (Some(user), Some(named)) if named.trim() != user => {
            Err(ApiError::SenderMismatch(user.to_owned()))
        }
        (Some(user), _) => Ok(Some(user)),
        (None, named) => Ok(named),
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Deployment-wide roles: [`OPERATOR_ROLE`] moderates every room
    /// (docs/protocol.md §10.4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// The token role of an operator: one who moderates (and reads) every room.
pub const OPERATOR_ROLE: &str = "admin";

/// Who a valid token speaks for: its user, and whether it carries the
/// operator claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: Sender,
    pub operator: bool,
}

/// The shared secret, ready to verify and sign.
#[derive(Clone)]
pub struct TokenKey {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<secret>)")
    }
}

impl TokenKey {
    /// The key for `secret`; `None` when it is empty (auth off).
    pub fn new(secret: &str) -> Option<Self> {
        if secret.is_empty() {
            return None;
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_exp = true;
        Some(TokenKey {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            validation,
        })
    }

    /// The username `token` speaks for, if it is valid; the username must
    /// itself be a valid sender name.
    pub fn verify(&self, token: &str) -> Result<Sender, ApiError> {
        self.principal(token).map(|p| p.user)
    }

    /// The user `token` speaks for and whether it is an operator.
    pub fn principal(&self, token: &str) -> Result<Principal, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthorized)?;
        Ok(Principal {
            user: Sender::parse(&data.claims.sub).map_err(|_| ApiError::Unauthorized)?,
            operator: data.claims.roles.iter().any(|r| r == OPERATOR_ROLE),
        })
    }

    /// A token for `sub` that expires at `exp` (Unix seconds).
    pub fn sign(&self, sub: &str, exp: u64) -> Result<String, ApiError> {
        self.sign_with_roles(sub, exp, &[])
    }

    /// A token for `sub` with deployment-wide `roles` (e.g. `admin`).
    pub fn sign_with_roles(&self, sub: &str, exp: u64, roles: &[&str]) -> Result<String, ApiError> {
        let claims = Claims {
            sub: sub.to_owned(),
            exp,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::BadRequest(format!("cannot sign a token: {e}")))
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(header).ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn b64(bytes: &[u8]) -> String {
        use std::fmt::Write as _;
        // base64url without padding, enough for test headers and bodies.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                let _ = out.write_char(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn only_the_admin_role_makes_an_operator() {
        let key = TokenKey::new("s3cret").unwrap();
        let admin = key.sign_with_roles("root", now() + 60, &["admin"]).unwrap();
        let other = key
            .sign_with_roles("eve", now() + 60, &["Admin", "mod"])
            .unwrap();
        assert!(key.principal(&admin).unwrap().operator);
        assert!(!key.principal(&other).unwrap().operator);
        assert!(
            !key.principal(&key.sign("bob", now() + 60).unwrap())
                .unwrap()
                .operator
        );
    }

    #[test]
    fn a_signed_token_names_its_user() {
        let key = TokenKey::new("s3cret").unwrap();
        let token = key.sign("alice", now() + 60).unwrap();
        assert_eq!(key.verify(&token).unwrap().as_str(), "alice");
    }

    #[test]
    fn no_secret_means_no_key() {
        assert!(TokenKey::new("").is_none());
    }

    #[test]
    fn refuses_forged_expired_and_unsigned_tokens() {
        let key = TokenKey::new("s3cret").unwrap();
        let other = TokenKey::new("other").unwrap();
        let refused = |t: &str| key.verify(t).unwrap_err();
        // Another secret.
        assert_eq!(
            refused(&other.sign("alice", now() + 60).unwrap()),
            ApiError::Unauthorized
        );
        // Expired beyond the leeway; within it, still good.
        assert_eq!(
            refused(&key.sign("alice", now() - 120).unwrap()),
            ApiError::Unauthorized
        );
        assert!(key.verify(&key.sign("alice", now() - 30).unwrap()).is_ok());
        // `alg: none`, and HS512 signed with the right secret.
        let claims = format!(r#"{{"sub":"alice","exp":{}}}"#, now() + 60);
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims.as_bytes())
        );
        assert_eq!(refused(&none), ApiError::Unauthorized);
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                sub: "alice".into(),
                exp: now() + 60,
                roles: vec![],
            },
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert_eq!(refused(&hs512), ApiError::Unauthorized);
        // A tampered payload.
        let good = key.sign("alice", now() + 60).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(format!(r#"{{"sub":"mallory","exp":{}}}"#, now() + 60).as_bytes()),
            parts[2]
        );
        assert_eq!(refused(&forged), ApiError::Unauthorized);
        // No `exp`, no `sub`, a `sub` that is no valid name, garbage.
        #[derive(Serialize)]
        struct NoExp {
            sub: String,
        }
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExp {
                sub: "alice".into(),
            },
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert_eq!(refused(&no_exp), ApiError::Unauthorized);
        assert_eq!(
            refused(&key.sign("", now() + 60).unwrap()),
            ApiError::Unauthorized
        );
        assert_eq!(
            refused(&key.sign("a\u{7}b", now() + 60).unwrap()),
            ApiError::Unauthorized
        );
        assert_eq!(refused("not a token"), ApiError::Unauthorized);
    }

    #[test]
    fn reads_bearer_headers() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"bearer  abc "), Some("abc"));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"\xff"), None);
    }
}
