//! REST request signing and verification.
//!
//! Every request carries `auth_key`, `auth_timestamp`, `auth_version=1.0`, `body_md5` (with a body)
//! and `auth_signature` in its query. The signature is the hex HMAC-SHA256 of
//! `METHOD\npath\nquery`, where `query` is every parameter except `auth_signature`, percent-decoded,
//! keys lowercased, sorted by key and joined `k=v` with `&` *without* re-encoding. SDKs differ in how
//! they encode the wire query (Guzzle percent-encodes, Node and Python send values raw), which is why
//! values are decoded before signing. The clock is the caller's: `now` is passed in.

use crate::error::{EXCERPT_CHARS, RestAuthError};
use crate::limits::REST_TIMESTAMP_WINDOW_SECS;
use crate::sign::{constant_time_eq, hmac_sha256_hex, md5_hex};

/// A request's query parameters: percent-decoded, keys lowercased, in the order received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parse a raw query string (without the `?`), decoding `%XX` and `+`.
    pub fn parse(raw: &str) -> Self {
        Self(form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.to_lowercase(), v.into_owned())).collect())
    }

    /// Build from pairs (keys are lowercased).
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.as_ref().to_lowercase(), v.into())).collect())
    }

    /// The first value of `key` (lowercase).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every pair.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Encode for the wire (percent-encoded), in the stored order.
    pub fn to_query_string(&self) -> String {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(self.iter()).finish()
    }
}

/// The string a REST request's signature covers.
pub fn string_to_sign(method: &str, path: &str, params: &QueryParams) -> String {
    let mut pairs: Vec<(&str, &str)> = params.iter().filter(|(k, _)| *k != "auth_signature").collect();
    // Stable sort on the key alone keeps repeated keys (`k[]=a&k[]=b`) in the order sent.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n{}\n{}", method.to_ascii_uppercase(), path, query.join("&"))
}

/// The signature of a request with these parameters.
pub fn sign(secret: &str, method: &str, path: &str, params: &QueryParams) -> String {
    hmac_sha256_hex(secret.as_bytes(), string_to_sign(method, path, params).as_bytes())
}

/// The full signed query string an SDK would send for a request, for Herald's own tools and tests.
/// `body_md5` is added when the body is not empty.
pub fn signed_query(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    timestamp: u64,
) -> String {
    let timestamp = timestamp.to_string();
    let body_md5 = md5_hex(body);
    let mut pairs = vec![("auth_key", key), ("auth_timestamp", &timestamp), ("auth_version", "1.0")];
    if !body.is_empty() {
        pairs.push(("body_md5", &body_md5));
    }
    pairs.extend_from_slice(extra);
    let mut params = QueryParams::from_pairs(pairs);
    let signature = sign(secret, method, path, &params);
    params.0.push(("auth_signature".into(), signature));
    params.to_query_string()
}

/// A request as received, for verification.
#[derive(Clone, Copy, Debug)]
pub struct RestRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path as the client signed it, e.g. `/apps/3/events`.
    pub path: &'a str,
    /// The decoded query parameters.
    pub params: &'a QueryParams,
    /// The raw body bytes.
    pub body: &'a [u8],
}

/// Check a request against an app's key and secret at time `now` (unix seconds): its query with
/// [`verify_query`], then its body with [`verify_body`].
pub fn verify(request: &RestRequest<'_>, key: &str, secret: &str, now: u64) -> Result<(), RestAuthError> {
    verify_query(request.method, request.path, request.params, key, secret, now)?;
    verify_body(request.params, request.body)
}

/// Check everything but the body: key, timestamp, version and signature. The signature covers
/// `body_md5`, so a server can refuse a forged request before reading its body, then tie the body
/// to the signature with [`verify_body`].
pub fn verify_query(
    method: &str,
    path: &str,
    params: &QueryParams,
    key: &str,
    secret: &str,
    now: u64,
) -> Result<(), RestAuthError> {
    let given_key = params.get("auth_key").ok_or(RestAuthError::MissingParameter("auth_key"))?;
    if !constant_time_eq(given_key.as_bytes(), key.as_bytes()) {
        return Err(RestAuthError::UnknownKey);
    }
    let timestamp = params.get("auth_timestamp").ok_or(RestAuthError::MissingParameter("auth_timestamp"))?;
    let timestamp: u64 = timestamp.parse().map_err(|_| RestAuthError::InvalidTimestamp)?;
    if timestamp.abs_diff(now) >= REST_TIMESTAMP_WINDOW_SECS {
        return Err(RestAuthError::TimestampExpired { given: timestamp, now, window: REST_TIMESTAMP_WINDOW_SECS });
    }
    match params.get("auth_version") {
        None => return Err(RestAuthError::MissingParameter("auth_version")),
        Some("1.0") => {}
        Some(_) => return Err(RestAuthError::UnsupportedVersion),
    }
    let given = params.get("auth_signature").ok_or(RestAuthError::MissingParameter("auth_signature"))?;
    let string_to_sign = string_to_sign(method, path, params);
    let expected = hmac_sha256_hex(secret.as_bytes(), string_to_sign.as_bytes());
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(RestAuthError::InvalidSignature {
            string_to_sign,
            given: crate::error::excerpt(given, EXCERPT_CHARS),
        });
    }
    Ok(())
}

/// Check that the body is the one the signed `body_md5` names. Python sends the MD5 of the empty
/// body on GETs, so a present `body_md5` is always checked, and required only with a body.
pub fn verify_body(params: &QueryParams, body: &[u8]) -> Result<(), RestAuthError> {
    match params.get("body_md5") {
        Some(md5) if md5 != md5_hex(body) => Err(RestAuthError::BodyMd5Mismatch),
        None if !body.is_empty() => Err(RestAuthError::MissingBodyMd5),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    const QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
    const NOW: u64 = 1353088179;

    fn check(query: &str, body: &str, now: u64) -> Result<(), RestAuthError> {
        let params = QueryParams::parse(query);
        let request = RestRequest { method: "POST", path: "/apps/3/events", params: &params, body: body.as_bytes() };
        verify(&request, KEY, SECRET, now)
    }

    #[test]
    fn docs_worked_example_verifies() {
        assert_eq!(check(QUERY, BODY, NOW), Ok(()));
        assert_eq!(check(QUERY, BODY, NOW + 599), Ok(()));
        assert_eq!(check(QUERY, BODY, NOW - 599), Ok(()));
    }

    #[test]
    fn each_failure_is_named() {
        assert_eq!(
            check(&QUERY.replace("auth_key=", "x="), BODY, NOW),
            Err(RestAuthError::MissingParameter("auth_key"))
        );
        assert_eq!(check(&QUERY.replace("auth_key=2", "auth_key=3"), BODY, NOW), Err(RestAuthError::UnknownKey));
        assert_eq!(
            check(QUERY, BODY, NOW + 600),
            Err(RestAuthError::TimestampExpired { given: NOW, now: NOW + 600, window: 600 })
        );
        assert!(matches!(check(QUERY, BODY, NOW - 600), Err(RestAuthError::TimestampExpired { .. })));
        assert_eq!(check(&QUERY.replace("=1353088179", "=soon"), BODY, NOW), Err(RestAuthError::InvalidTimestamp));
        assert_eq!(
            check(&QUERY.replace("auth_version=1.0", "auth_version=2.0"), BODY, NOW),
            Err(RestAuthError::UnsupportedVersion)
        );
        assert!(matches!(
            check(&QUERY.replace("signature=da", "signature=db"), BODY, NOW),
            Err(RestAuthError::InvalidSignature { .. })
        ));
        // A changed body with the original signature: the MD5 no longer matches.
        assert_eq!(check(QUERY, &BODY.replace("foo", "bar"), NOW), Err(RestAuthError::BodyMd5Mismatch));
    }

    #[test]
    fn keys_are_lowercased_and_values_decoded_before_signing() {
        let params = QueryParams::parse("B=2&a=1%2C2&c=x+y&Auth_Signature=zzz");
        assert_eq!(string_to_sign("get", "/p", &params), "GET\n/p\na=1,2&b=2&c=x y");
    }

    #[test]
    fn signed_query_round_trips_through_verify() {
        let body = br#"{"name":"e","channels":["a"],"data":"{}"}"#;
        let query = signed_query(
            KEY,
            SECRET,
            "POST",
            "/apps/3/events",
            &[("info", "user_count,subscription_count")],
            body,
            NOW,
        );
        assert!(query.contains("info=user_count%2Csubscription_count"));
        let params = QueryParams::parse(&query);
        let request = RestRequest { method: "POST", path: "/apps/3/events", params: &params, body };
        assert_eq!(verify(&request, KEY, SECRET, NOW), Ok(()));
        let get = signed_query(KEY, SECRET, "GET", "/apps/3/channels", &[], b"", NOW);
        assert!(!get.contains("body_md5"));
    }

    #[test]
    fn a_get_with_the_empty_body_md5_is_accepted() {
        let params = QueryParams::from_pairs([
            ("auth_key", KEY),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
            ("body_md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ]);
        let mut with_signature = params.clone();
        with_signature.0.push(("auth_signature".into(), sign(SECRET, "GET", "/apps/3/channels", &params)));
        let request = RestRequest { method: "GET", path: "/apps/3/channels", params: &with_signature, body: b"" };
        assert_eq!(verify(&request, KEY, SECRET, NOW), Ok(()));
    }
}
