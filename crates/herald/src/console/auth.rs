//! Console sessions: the page signs `herald-console\n{key}\n{expires}` with the app's secret (or its
//! console token) in the browser and sends the key, the expiry and the signature with every request.
//! The credential itself never leaves the browser, and a signature is only good until it expires.

use pusher_wire::sign::{constant_time_eq, hmac_sha256_hex};

use crate::config::AppConfig;

/// The longest a console signature may stay valid.
pub(crate) const MAX_SESSION_SECS: u64 = 24 * 60 * 60;

/// Leeway for a browser clock behind the server's.
const CLOCK_SKEW_SECS: u64 = 5 * 60;

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
    #[error("the session has expired; sign in again")]
    Expired,
    /// The expiry is further away than a session may last.
    #[error("a console session may last at most {MAX_SESSION_SECS} seconds")]
    TooLong,
    /// Neither the secret nor the console token made this signature.
    #[error("wrong secret or console token")]
    BadSignature,
}

/// The text a session signs.
pub(crate) fn string_to_sign(key: &str, expires: u64) -> String {
    format!("herald-console\n{key}\n{expires}")
}

/// A session signature made with `credential` (the app's secret or console token).
pub(crate) fn sign(credential: &str, key: &str, expires: u64) -> String {
    hmac_sha256_hex(credential.as_bytes(), string_to_sign(key, expires).as_bytes())
}

/// Check a session of `app` at `now` (Unix seconds).
pub(crate) fn verify(app: &AppConfig, expires: u64, signature: &str, now: u64) -> Result<(), SessionError> {
    if expires < now {
        return Err(SessionError::Expired);
    }
    if expires > now + MAX_SESSION_SECS + CLOCK_SKEW_SECS {
        return Err(SessionError::TooLong);
    }
    let credentials = std::iter::once(app.secret.as_str()).chain(app.console_token.as_deref());
    // Both compared in full, so the answer's timing tells nothing about which one came close.
    let matches = credentials
        .map(|credential| constant_time_eq(sign(credential, &app.key, expires).as_bytes(), signature.as_bytes()))
        .fold(false, |any, this| any | this);
    if matches { Ok(()) } else { Err(SessionError::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn app() -> AppConfig {
        let mut app = AppConfig::new("1", "key", "secret");
        app.console_token = Some("a-console-token-of-some-length".into());
        app
    }

    #[test]
    fn the_secret_or_the_console_token_opens_a_session_until_it_expires() {
        let app = app();
        let expires = NOW + 3_600;
        assert_eq!(verify(&app, expires, &sign("secret", "key", expires), NOW), Ok(()));
        assert_eq!(verify(&app, expires, &sign("a-console-token-of-some-length", "key", expires), NOW), Ok(()));
        assert_eq!(verify(&app, expires, &sign("guess", "key", expires), NOW), Err(SessionError::BadSignature));
        assert_eq!(verify(&app, expires, &sign("secret", "other", expires), NOW), Err(SessionError::BadSignature));
        assert_eq!(verify(&app, expires, &sign("secret", "key", expires), expires + 1), Err(SessionError::Expired));
        let far = NOW + MAX_SESSION_SECS + 3_600;
        assert_eq!(verify(&app, far, &sign("secret", "key", far), NOW), Err(SessionError::TooLong));
        let mut without_token = app.clone();
        without_token.console_token = None;
        let by_token = sign("a-console-token-of-some-length", "key", expires);
        assert_eq!(verify(&without_token, expires, &by_token, NOW), Err(SessionError::BadSignature));
    }

    #[test]
    fn the_signed_text_is_fixed() {
        // The page computes the same HMAC in JavaScript; this pins what both sides sign.
        assert_eq!(string_to_sign("key", 42), "herald-console\nkey\n42");
        assert_eq!(sign("secret", "key", 42), hmac_sha256_hex(b"secret", b"herald-console\nkey\n42"));
    }
}
