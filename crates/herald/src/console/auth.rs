//! Console sessions: when someone signs in, the page signs, for each console request it will make,
//! `herald-console\n{key}\n{expires}\n{METHOD} {endpoint}` with the app's secret (or its console
//! token), in the browser, and then sends the key, the expiry and that request's signature with
//! each request. The credential itself never leaves the browser, a signature is only good until it
//! expires, and a signature seen in a log (the stream's, the one request that carries it in its URL)
//! opens that one endpoint only.

use pusher_wire::rest::auth::QueryParams;
use pusher_wire::sign::{constant_time_eq, hmac_sha256_hex};

use crate::config::AppConfig;

/// The longest a console signature may stay valid.
pub(crate) const MAX_SESSION_SECS: u64 = 24 * 60 * 60;

/// Leeway for a browser clock behind the server's.
const CLOCK_SKEW_SECS: u64 = 5 * 60;

/// The `Authorization` scheme of console requests: `HeraldConsole {key}:{expires}:{signature}`.
const SCHEME: &str = "HeraldConsole ";

/// Why a console request is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionError {
    /// A parameter is missing or malformed.
    #[error("sign in again: the request carries no valid key, expires and signature")]
    Missing,
    /// No app has this key.
    #[error("no app has this key")]
    UnknownKey,
    /// The signature is past its expiry.
    #[error("the session has expired; sign in again (or check this computer's clock)")]
    Expired,
    /// The expiry is further away than a session may last.
    #[error("a console session may last at most {MAX_SESSION_SECS} seconds (check this computer's clock)")]
    TooLong,
    /// Neither the secret nor the console token made this signature.
    #[error("wrong secret or console token")]
    BadSignature,
}

/// What a console request presents: an app key, an expiry and a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) key: String,
    pub(crate) expires: u64,
    pub(crate) signature: String,
}

impl Credentials {
    /// From the `Authorization` header, or else from the query (`key`, `expires`, `signature`:
    /// the stream's only way, since a browser's EventSource cannot send headers).
    pub(crate) fn from_request(authorization: Option<&str>, params: &QueryParams) -> Result<Self, SessionError> {
        if let Some(value) = authorization {
            let mut fields = value.strip_prefix(SCHEME).ok_or(SessionError::Missing)?.trim().splitn(3, ':');
            let (Some(key), Some(expires), Some(signature)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(SessionError::Missing);
            };
            return Self::new(key, expires, signature);
        }
        let field = |name| params.get(name).ok_or(SessionError::Missing);
        Self::new(field("key")?, field("expires")?, field("signature")?)
    }

    fn new(key: &str, expires: &str, signature: &str) -> Result<Self, SessionError> {
        let expires = expires.parse().map_err(|_| SessionError::Missing)?;
        Ok(Self { key: key.to_owned(), expires, signature: signature.to_owned() })
    }
}

/// The text a session signs for `request` (`"GET stream"`, `"POST events"`, …).
pub(crate) fn string_to_sign(key: &str, expires: u64, request: &str) -> String {
    format!("herald-console\n{key}\n{expires}\n{request}")
}

/// A session signature for `request` made with `credential` (the app's secret or console token).
pub(crate) fn sign(credential: &str, key: &str, expires: u64, request: &str) -> String {
    hmac_sha256_hex(credential.as_bytes(), string_to_sign(key, expires, request).as_bytes())
}

/// Check that `presented` opens `request` of `app` at `now` (Unix seconds).
pub(crate) fn verify(app: &AppConfig, presented: &Credentials, request: &str, now: u64) -> Result<(), SessionError> {
    let expires = presented.expires;
    if expires < now {
        return Err(SessionError::Expired);
    }
    if expires > now.saturating_add(MAX_SESSION_SECS + CLOCK_SKEW_SECS) {
        return Err(SessionError::TooLong);
    }
    let credentials = std::iter::once(app.secret.as_str()).chain(app.console_token.as_deref());
    // Both compared in full, so the answer's timing tells nothing about which one came close.
    let matches = credentials
        .map(|credential| {
            constant_time_eq(sign(credential, &app.key, expires, request).as_bytes(), presented.signature.as_bytes())
        })
        .fold(false, |any, this| any | this);
    if matches { Ok(()) } else { Err(SessionError::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const STREAM: &str = "GET stream";

    fn app() -> AppConfig {
        let mut app = AppConfig::new("1", "key", "secret");
        app.console_token = Some("a-console-token-of-some-length".into());
        app
    }

    fn presented(credential: &str, key: &str, expires: u64, request: &str) -> Credentials {
        Credentials { key: key.into(), expires, signature: sign(credential, key, expires, request) }
    }

    #[test]
    fn the_secret_or_the_console_token_opens_a_session_until_it_expires() {
        let app = app();
        let expires = NOW + 3_600;
        let check =
            |credential, key, expires, now| verify(&app, &presented(credential, key, expires, STREAM), STREAM, now);
        assert_eq!(check("secret", "key", expires, NOW), Ok(()));
        assert_eq!(check("a-console-token-of-some-length", "key", expires, NOW), Ok(()));
        assert_eq!(check("guess", "key", expires, NOW), Err(SessionError::BadSignature));
        assert_eq!(check("secret", "other", expires, NOW), Err(SessionError::BadSignature));
        assert_eq!(check("secret", "key", expires, expires + 1), Err(SessionError::Expired));
        let far = NOW + MAX_SESSION_SECS + 3_600;
        assert_eq!(check("secret", "key", far, NOW), Err(SessionError::TooLong));
        assert_eq!(check("secret", "key", u64::MAX, u64::MAX - 1), Ok(()), "no overflow");
        let mut without_token = app.clone();
        without_token.console_token = None;
        let by_token = presented("a-console-token-of-some-length", "key", expires, STREAM);
        assert_eq!(verify(&without_token, &by_token, STREAM, NOW), Err(SessionError::BadSignature));
    }

    #[test]
    fn a_signature_opens_the_one_request_it_was_made_for() {
        let app = app();
        let stream = presented("secret", "key", NOW + 60, STREAM);
        assert_eq!(verify(&app, &stream, "POST events", NOW), Err(SessionError::BadSignature));
        assert_eq!(verify(&app, &stream, STREAM, NOW), Ok(()));
    }

    #[test]
    fn credentials_come_from_the_authorization_header_or_the_query() {
        let from_header = Credentials::from_request(Some("HeraldConsole key:42:abc"), &QueryParams::parse("")).unwrap();
        assert_eq!(from_header, Credentials { key: "key".into(), expires: 42, signature: "abc".into() });
        let from_query = Credentials::from_request(None, &QueryParams::parse("key=key&expires=42&signature=abc"));
        assert_eq!(from_query, Ok(from_header));
        for bad in ["Bearer x", "HeraldConsole key:42", "HeraldConsole key:soon:abc"] {
            let query = QueryParams::parse("key=key&expires=42&signature=abc");
            assert_eq!(Credentials::from_request(Some(bad), &query), Err(SessionError::Missing), "{bad}");
        }
        assert_eq!(Credentials::from_request(None, &QueryParams::parse("key=key")), Err(SessionError::Missing));
    }

    #[test]
    fn the_signed_text_is_fixed() {
        // The page computes the same HMAC in JavaScript; this pins what both sides sign.
        assert_eq!(string_to_sign("key", 42, "GET stream"), "herald-console\nkey\n42\nGET stream");
        assert_eq!(
            sign("secret", "key", 42, "GET stream"),
            hmac_sha256_hex(b"secret", b"herald-console\nkey\n42\nGET stream")
        );
    }
}
