//! Who may publish and who may subscribe.
//!
//! - Publishing, when `--publish-token` is set, needs
//!   `Authorization: Bearer <token>` (401 without, 403 wrong). The token is
//!   compared in constant time.
//! - Subscribing, when `--jwt-secret` (HS256) or `--jwt-public-key` (RS256 or
//!   ES256, PEM) is set, needs a JWT whose `topics` claim matches the topic
//!   and whose `exp` has not passed (and `nbf`, if present, has), sent as
//!   `Authorization: Bearer` or, for clients that cannot set headers
//!   (EventSource, browser WebSocket), as `?token=`. Streams end when their
//!   token expires.
//!
//! Token times are untrusted input: an `exp` or `nbf` of any `u64` must give
//! an answer, never an arithmetic overflow.
//!
//! Tokens are never logged and never reach a metric label.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::{self, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

pub use crate::config::JwtKey;

/// A `--jwt-public-key` that is neither an RSA nor an EC public key in PEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an RSA or EC public key in PEM")]
pub struct BadKey;

/// The access rules of one server.
pub struct Auth {
    publish_token: Option<Vec<u8>>,
    jwt: Option<(DecodingKey, Validation)>,
}

/// Clock skew tolerated on `nbf`: a token that becomes valid within this
/// many seconds is accepted now.
const LEEWAY_S: u64 = 5;

/// Longest a grant is honoured from now. A token that claims to be valid for
/// longer (up to `exp = u64::MAX`) is held to this: its stream ends with
/// "token expired" after it and the client reconnects. It keeps every
/// deadline derived from a token (`SystemTime`, `Instant`, tokio timers) far
/// from overflow.
pub const MAX_GRANT: Duration = Duration::from_secs(366 * 24 * 3600);

/// The claims feedgate reads from a subscriber token (`nbf` is checked by
/// `jsonwebtoken`).
#[derive(Debug, Deserialize)]
struct Claims {
    /// Expiry, seconds since the Unix epoch (required).
    exp: u64,
    /// Topic patterns this token may read; `*` matches any run of characters.
    #[serde(default)]
    topics: Vec<String>,
}

/// What a subscriber's token allows: until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grant {
    /// When the token expires, if a token was needed.
    pub expires: Option<SystemTime>,
}

impl Grant {
    /// What holds for a subscription that needs both grants: the earlier
    /// expiry.
    pub fn and(self, other: Grant) -> Grant {
        let expires = match (self.expires, other.expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Grant { expires }
    }

    /// How long from now the grant holds (`None`: for ever).
    pub fn remaining(&self) -> Option<Duration> {
        self.expires
            .map(|e| e.duration_since(SystemTime::now()).unwrap_or_default())
    }
}

impl Auth {
    /// Builds the rules.
    ///
    /// # Errors
    /// [`BadKey`] when the public key is not a usable RSA or EC PEM key.
    pub fn new(publish_token: Option<String>, jwt: Option<JwtKey>) -> Result<Auth, BadKey> {
        let jwt = match jwt {
            None => None,
            Some(JwtKey::Secret(s)) => {
                Some((DecodingKey::from_secret(&s), validation(Algorithm::HS256)))
            }
            Some(JwtKey::PublicPem(pem)) => {
                if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
                    Some((k, validation(Algorithm::RS256)))
                } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
                    Some((k, validation(Algorithm::ES256)))
                } else {
                    return Err(BadKey);
                }
            }
        };
        Ok(Auth {
            publish_token: publish_token.map(String::into_bytes),
            jwt,
        })
    }

    /// No rules: everyone may publish and subscribe.
    pub fn open() -> Auth {
        Auth {
            publish_token: None,
            jwt: None,
        }
    }

    /// Checks a publish request.
    ///
    /// # Errors
    /// 401 without a bearer token, 403 with the wrong one.
    pub fn check_publish(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.publish_token else {
            return Ok(());
        };
        let Some(given) = bearer(headers) else {
            return Err(ApiError::Unauthorized(
                "publishing needs `Authorization: Bearer <publish token>`".into(),
            ));
        };
        if bool::from(given.as_bytes().ct_eq(expected)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("the publish token is not valid".into()))
        }
    }

    /// Checks a subscription to `topic`.
    ///
    /// # Errors
    /// 401 without a token, 403 for an invalid or expired token or one that
    /// does not cover `topic`.
    pub fn check_subscribe(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
        topic: &str,
    ) -> Result<Grant, ApiError> {
        self.check_token(subscriber_token(headers, query_token), topic)
    }

    /// Checks a subscription to `topic` with the subscriber's `token` (see
    /// [`subscriber_token`]), as [`Auth::check_subscribe`] does: for a topic
    /// added to an open subscription.
    ///
    /// # Errors
    /// As [`Auth::check_subscribe`].
    pub fn check_token(&self, token: Option<&str>, topic: &str) -> Result<Grant, ApiError> {
        let Some(claims) = self.claims(token)? else {
            return Ok(Grant { expires: None });
        };
        if !claims.topics.iter().any(|p| topic_matches(p, topic)) {
            return Err(ApiError::Forbidden(format!(
                "the token does not grant topic {topic:?}"
            )));
        }
        Ok(Grant {
            expires: Some(expiry(claims.exp, SystemTime::now())?),
        })
    }

    /// Checks the token of a subscription that names no topic yet (a
    /// WebSocket on `/ws` that will subscribe by message): when tokens are
    /// required, it must be present, signed and unexpired, and the socket
    /// holds only until it expires, whatever it subscribes to later.
    ///
    /// # Errors
    /// As [`Auth::check_subscribe`], but no topic is checked.
    pub fn check_bearer(&self, token: Option<&str>) -> Result<Grant, ApiError> {
        match self.claims(token)? {
            None => Ok(Grant { expires: None }),
            Some(claims) => Ok(Grant {
                expires: Some(expiry(claims.exp, SystemTime::now())?),
            }),
        }
    }

    /// The claims of a subscriber's token; `None` when tokens are not
    /// required.
    fn claims(&self, token: Option<&str>) -> Result<Option<Claims>, ApiError> {
        let Some((key, validation)) = &self.jwt else {
            return Ok(None);
        };
        let Some(token) = token else {
            return Err(ApiError::Unauthorized(
                "subscribing needs a token: `Authorization: Bearer <jwt>` or `?token=<jwt>`".into(),
            ));
        };
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|e| ApiError::Forbidden(format!("the token was refused: {}", describe(&e))))?
            .claims;
        Ok(Some(claims))
    }
}

/// When a token with this `exp` stops granting, seen at `now`.
///
/// `jsonwebtoken` accepts an `exp` up to the leeway in the past (the
/// leeway is there for `nbf`'s clock skew); such a token would open a
/// stream only to end it at once, and the client would loop on
/// reconnecting, so it is refused here. A far-future `exp` is clamped to
/// [`MAX_GRANT`].
fn expiry(exp: u64, now: SystemTime) -> Result<SystemTime, ApiError> {
    let latest = now + MAX_GRANT;
    let at = UNIX_EPOCH
        .checked_add(Duration::from_secs(exp))
        .map_or(latest, |t| t.min(latest));
    if at <= now {
        return Err(ApiError::Forbidden("the token was refused: expired".into()));
    }
    Ok(at)
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.required_spec_claims = ["exp".to_owned()].into();
    v.validate_aud = false;
    // RFC 7519 §4.1.5: a token is not accepted before its `nbf`.
    v.validate_nbf = true;
    v.leeway = LEEWAY_S;
    v
}

/// A user-facing reason that never echoes the token.
fn describe(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "expired",
        InvalidSignature => "bad signature",
        InvalidAlgorithm | InvalidAlgorithmName => "wrong algorithm",
        MissingRequiredClaim(_) => "missing exp claim",
        InvalidClaimFormat(_) => "exp or nbf is not a number of seconds",
        ImmatureSignature => "not valid yet (nbf is in the future)",
        _ => "malformed",
    }
}

/// The token of an `Authorization: Bearer …` header.
/// The subscriber's token: `Authorization: Bearer`, else `?token=`.
pub fn subscriber_token<'a>(
    headers: &'a HeaderMap,
    query_token: Option<&'a str>,
) -> Option<&'a str> {
    bearer(headers).or(query_token)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Glob match where `*` matches any run of characters (topic names hold no
/// `*`, so there is nothing to escape).
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == topic;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !topic.starts_with(first) || topic.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &topic[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use jsonwebtoken::{EncodingKey, Header};

    #[test]
    fn patterns() {
        assert!(topic_matches("prices", "prices"));
        assert!(!topic_matches("prices", "prices2"));
        assert!(topic_matches("user.*", "user.42"));
        assert!(!topic_matches("user.*", "users.42"));
        assert!(topic_matches("*", "anything"));
        assert!(topic_matches("a*b*c", "a-x-b-y-c"));
        assert!(!topic_matches("a*b*c", "a-c"));
        assert!(!topic_matches("ab*ba", "aba"));
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn publish_token() {
        let a = Auth::new(Some("s3cret".into()), None).unwrap();
        assert!(matches!(
            a.check_publish(&HeaderMap::new()),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            a.check_publish(&headers("Bearer nope")),
            Err(ApiError::Forbidden(_))
        ));
        assert!(a.check_publish(&headers("bearer s3cret")).is_ok());
        assert!(Auth::open().check_publish(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn subscriber_jwt() {
        let a = Auth::new(None, Some(JwtKey::Secret(b"k".to_vec()))).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = |exp: u64, topics: &[&str]| {
            jsonwebtoken::encode(
                &Header::default(),
                &serde_json::json!({"exp": exp, "topics": topics}),
                &EncodingKey::from_secret(b"k"),
            )
            .unwrap()
        };
        let good = token(now + 60, &["user.*"]);
        let grant = a
            .check_subscribe(&HeaderMap::new(), Some(&good), "user.7")
            .unwrap();
        assert!(grant.remaining().unwrap() > Duration::from_secs(50));
        assert!(matches!(
            a.check_subscribe(&HeaderMap::new(), Some(&good), "admin"),
            Err(ApiError::Forbidden(_))
        ));
        let expired = token(now - 60, &["*"]);
        assert!(matches!(
            a.check_subscribe(&headers(&format!("Bearer {expired}")), None, "x"),
            Err(ApiError::Forbidden(m)) if m.contains("expired") && !m.contains(&expired)
        ));
        assert!(matches!(
            a.check_subscribe(&HeaderMap::new(), None, "x"),
            Err(ApiError::Unauthorized(_))
        ));
    }

    fn signed(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k")).unwrap()
    }

    fn now_s() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn huge_expiry_is_clamped_not_a_panic() {
        let a = Auth::new(None, Some(JwtKey::Secret(b"k".to_vec()))).unwrap();
        for exp in [1u64 << 63, u64::MAX, (1 << 63) - 1 - now_s()] {
            let t = signed(serde_json::json!({"exp": exp, "topics": ["*"]}));
            let grant = a.check_subscribe(&HeaderMap::new(), Some(&t), "x").unwrap();
            let left = grant.remaining().unwrap();
            assert!(left <= MAX_GRANT && left > MAX_GRANT - Duration::from_secs(60));
        }
    }

    #[test]
    fn tokens_inside_the_expiry_leeway_are_refused() {
        let a = Auth::new(None, Some(JwtKey::Secret(b"k".to_vec()))).unwrap();
        for exp in [now_s() - 2, now_s()] {
            let t = signed(serde_json::json!({"exp": exp, "topics": ["*"]}));
            assert!(matches!(
                a.check_subscribe(&HeaderMap::new(), Some(&t), "x"),
                Err(ApiError::Forbidden(m)) if m.contains("expired")
            ));
        }
        assert!(expiry(0, SystemTime::now()).is_err());
    }

    #[test]
    fn not_before_is_checked_with_leeway() {
        let a = Auth::new(None, Some(JwtKey::Secret(b"k".to_vec()))).unwrap();
        let exp = now_s() + 600;
        for (nbf, ok) in [
            (now_s() - 60, true),
            (now_s() + 2, true),
            (now_s() + 60, false),
            (u64::MAX, false),
        ] {
            let t = signed(serde_json::json!({"exp": exp, "nbf": nbf, "topics": ["*"]}));
            let r = a.check_subscribe(&HeaderMap::new(), Some(&t), "x");
            assert_eq!(r.is_ok(), ok, "nbf = now + {}", nbf.wrapping_sub(now_s()));
            if !ok {
                assert!(matches!(r, Err(ApiError::Forbidden(m)) if m.contains("not valid yet")));
            }
        }
        let t = signed(serde_json::json!({"exp": exp, "nbf": "soon", "topics": ["*"]}));
        assert!(matches!(
            a.check_subscribe(&HeaderMap::new(), Some(&t), "x"),
            Err(ApiError::Forbidden(_))
        ));
    }
}
