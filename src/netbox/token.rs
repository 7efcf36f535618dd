//! NetBox API tokens as callers present them: `Token <40 characters>` (v1)
//! or `Bearer nbt_<key>.<secret>` (v2).
//!
//! The token is a secret: it is held in a [`SecretString`], shown only as a
//! short digest, and sent to NetBox with the keyword its version needs.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Length of a v1 token.
const V1_LENGTH: usize = 40;
/// Longest v2 token accepted; NetBox's are far shorter.
const V2_MAX_LENGTH: usize = 256;

/// A syntactically valid NetBox API token.
#[derive(Clone)]
pub struct ApiToken(SecretString);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiToken({})", self.fingerprint())
    }
}

impl ApiToken {
    /// Wraps a configured token without checking its shape (the service's
    /// own token is whatever the operator configured).
    pub fn from_secret(token: SecretString) -> Self {
        Self(token)
    }

    /// Parses an `Authorization` header value. Either keyword is accepted
    /// with either token version; `Err` says what is wrong, never echoing
    /// the value.
    pub fn from_authorization(header: &str) -> Result<Self, &'static str> {
        let (scheme, token) = header
            .trim()
            .split_once(' ')
            .ok_or("the Authorization header must be `Token <token>` or `Bearer <token>`")?;
        if !scheme.eq_ignore_ascii_case("token") && !scheme.eq_ignore_ascii_case("bearer") {
            return Err("the Authorization scheme must be `Token` or `Bearer`");
        }
        let token = token.trim();
        if is_v1(token) || is_v2(token) {
            Ok(Self(SecretString::from(token.to_string())))
        } else {
            Err("the token is neither a 40-character v1 token nor a v2 token `nbt_<key>.<secret>`")
        }
    }

    /// The secret itself, for the client that sends it.
    pub(super) fn secret(&self) -> &SecretString {
        &self.0
    }

    /// The header value NetBox expects: `Bearer` for v2 tokens, `Token` for v1.
    pub fn authorization(&self) -> String {
        let token = self.0.expose_secret();
        if token.starts_with("nbt_") {
            format!("Bearer {token}")
        } else {
            format!("Token {token}")
        }
    }

    /// A short, one-way digest naming the token in caches and logs.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.expose_secret().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

fn is_v1(token: &str) -> bool {
    token.len() == V1_LENGTH && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_v2(token: &str) -> bool {
    let Some(rest) = token.strip_prefix("nbt_") else {
        return false;
    };
    let Some((key, secret)) = rest.split_once('.') else {
        return false;
    };
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    token.len() <= V2_MAX_LENGTH && word(key) && word(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "0123456789abcdefghij0123456789ABCDEFGHIJ";

    #[test]
    fn both_token_styles_parse_with_either_keyword() {
        for header in [
            format!("Token {V1}"),
            format!("Bearer {V1}"),
            "Bearer nbt_abc123.Secret456".to_string(),
            "token nbt_abc123.Secret456".to_string(),
        ] {
            assert!(ApiToken::from_authorization(&header).is_ok(), "{header}");
        }
    }

    #[test]
    fn the_keyword_sent_to_netbox_follows_the_token_version() {
        let v2 = ApiToken::from_authorization("Token nbt_k.s").unwrap();
        assert_eq!(v2.authorization(), "Bearer nbt_k.s");
        let v1 = ApiToken::from_authorization(&format!("Bearer {V1}")).unwrap();
        assert_eq!(v1.authorization(), format!("Token {V1}"));
    }

    #[test]
    fn malformed_headers_are_refused_without_echoing_the_value() {
        for header in [
            "",
            "Token",
            "Basic dXNlcjpwYXNz",
            "Token short",
            "Bearer nbt_nodot",
            "Bearer nbt_a.b;c",
        ] {
            let err = ApiToken::from_authorization(header).unwrap_err();
            assert!(header.len() < 6 || !err.contains(header), "{err}");
        }
    }

    #[test]
    fn fingerprints_are_stable_short_and_do_not_contain_the_token() {
        let token = ApiToken::from_authorization(&format!("Token {V1}")).unwrap();
        assert_eq!(token.fingerprint(), token.clone().fingerprint());
        assert_eq!(token.fingerprint().len(), 16);
        assert!(!format!("{token:?}").contains(V1));
    }
}
