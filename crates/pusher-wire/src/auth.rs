//! Channel authorization and user authentication tokens, and encrypted-channel shared secrets.
//!
//! A token is `"{app key}:{hex HMAC-SHA256(secret, string to sign)}"`:
//! - private and encrypted channels sign `{socket_id}:{channel}`;
//! - presence channels sign `{socket_id}:{channel}:{channel_data}`, with `channel_data` exactly as
//!   received (never re-serialized: Python's `json.dumps` puts spaces the signature covers);
//! - user sign-in signs `{socket_id}::user::{user_data}`.
//!
//! Verification compares the whole token in constant time; the key part is never parsed out, so a
//! key with odd characters cannot confuse it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::error::AuthError;
use crate::sign::{constant_time_eq, hmac_sha256_hex};

/// The string a channel authorization token signs.
pub fn channel_string_to_sign(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    }
}

/// The string a user authentication token signs.
pub fn user_string_to_sign(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// The token an app's auth endpoint returns for a channel subscription.
pub fn sign_channel(key: &str, secret: &str, socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    token(key, secret, &channel_string_to_sign(socket_id, channel, channel_data))
}

/// The token an app's user-authentication endpoint returns for `pusher:signin`.
pub fn sign_user(key: &str, secret: &str, socket_id: &str, user_data: &str) -> String {
    token(key, secret, &user_string_to_sign(socket_id, user_data))
}

/// Check a channel subscription's `auth` token.
pub fn verify_channel(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: Option<&str>,
) -> Result<(), AuthError> {
    verify(key, secret, channel_string_to_sign(socket_id, channel, channel_data), auth)
}

/// Check a `pusher:signin` `auth` token.
pub fn verify_user(
    key: &str,
    secret: &str,
    socket_id: &str,
    user_data: &str,
    auth: Option<&str>,
) -> Result<(), AuthError> {
    verify(key, secret, user_string_to_sign(socket_id, user_data), auth)
}

/// The shared secret of an encrypted channel: SHA-256 of the channel name followed by the app's
/// 32-byte master key, base64-encoded. The app's auth endpoint hands it to the client; the server
/// itself never needs it, but tests and tools do.
pub fn encrypted_channel_shared_secret(channel: &str, master_key: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(channel.as_bytes());
    hash.update(master_key);
    BASE64.encode(hash.finalize())
}

fn token(key: &str, secret: &str, string_to_sign: &str) -> String {
    format!("{key}:{}", hmac_sha256_hex(secret.as_bytes(), string_to_sign.as_bytes()))
}

fn verify(key: &str, secret: &str, string_to_sign: String, auth: Option<&str>) -> Result<(), AuthError> {
    let auth = auth.filter(|a| !a.is_empty()).ok_or(AuthError::Missing)?;
    let expected = token(key, secret, &string_to_sign);
    if constant_time_eq(auth.as_bytes(), expected.as_bytes()) {
        return Ok(());
    }
    // Only after the signature failed: tell a wrong key apart, it is the commonest setup mistake.
    match auth.rsplit_once(':') {
        Some((given_key, _)) if given_key != key => Err(AuthError::WrongKey),
        _ => Err(AuthError::InvalidSignature { string_to_sign }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn docs_private_example() {
        let auth = sign_channel(KEY, SECRET, "1234.1234", "private-foobar", None);
        assert_eq!(auth, "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4");
        assert_eq!(verify_channel(KEY, SECRET, "1234.1234", "private-foobar", None, Some(&auth)), Ok(()));
    }

    #[test]
    fn refusals_say_why() {
        let verify = |auth: Option<&str>| verify_channel(KEY, SECRET, "1.1", "private-a", None, auth);
        assert_eq!(verify(None), Err(AuthError::Missing));
        assert_eq!(verify(Some("")), Err(AuthError::Missing));
        assert_eq!(verify(Some("otherkey:abc")), Err(AuthError::WrongKey));
        assert_eq!(
            verify(Some(&format!("{KEY}:abc"))),
            Err(AuthError::InvalidSignature { string_to_sign: "1.1:private-a".into() })
        );
        assert_eq!(
            verify(Some("no-colon")),
            Err(AuthError::InvalidSignature { string_to_sign: "1.1:private-a".into() })
        );
        // A token for another socket or channel is not accepted.
        let other = sign_channel(KEY, SECRET, "1.2", "private-a", None);
        assert!(verify(Some(&other)).is_err());
    }

    #[test]
    fn presence_signature_covers_channel_data_bytes() {
        let data = r#"{"user_id": "1"}"#;
        let auth = sign_channel(KEY, SECRET, "1.1", "presence-a", Some(data));
        assert_eq!(verify_channel(KEY, SECRET, "1.1", "presence-a", Some(data), Some(&auth)), Ok(()));
        let reserialized = r#"{"user_id":"1"}"#;
        assert!(verify_channel(KEY, SECRET, "1.1", "presence-a", Some(reserialized), Some(&auth)).is_err());
    }

    #[test]
    fn user_tokens() {
        let auth = sign_user(KEY, SECRET, "1234.1234", r#"{"id":"12345"}"#);
        assert_eq!(auth, "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba");
        assert_eq!(verify_user(KEY, SECRET, "1234.1234", r#"{"id":"12345"}"#, Some(&auth)), Ok(()));
        assert!(verify_user(KEY, SECRET, "1234.1234", r#"{"id":"1"}"#, Some(&auth)).is_err());
    }
}
