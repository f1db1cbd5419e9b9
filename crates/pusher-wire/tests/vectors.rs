//! Every case of `fixtures/test-vectors.json`, the published Pusher signatures (and a few derived
//! with the same algorithms), checked against this crate.

use pusher_wire::auth::{encrypted_channel_shared_secret, sign_channel, sign_user, verify_channel, verify_user};
use pusher_wire::rest::auth::{QueryParams, RestRequest, sign, string_to_sign, verify};
use pusher_wire::sign::md5_hex;
use pusher_wire::webhook;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/test-vectors.json");
    let text = std::fs::read_to_string(path).expect("fixtures/test-vectors.json is readable");
    serde_json::from_str(&text).expect("test vectors are JSON")
}

fn cases<'a>(vectors: &'a Value, section: &str) -> &'a [Value] {
    let cases = vectors[section].as_array().unwrap_or_else(|| panic!("section {section} missing"));
    assert!(!cases.is_empty(), "section {section} is empty");
    cases
}

fn s<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field].as_str().unwrap_or_else(|| panic!("{}: field {field} missing", case["id"]))
}

fn opt<'a>(case: &'a Value, field: &str) -> Option<&'a str> {
    case[field].as_str()
}

fn query_params(map: &Value) -> QueryParams {
    let pairs = map.as_object().expect("query params are an object").iter().flat_map(|(k, v)| match v {
        Value::Array(items) => {
            items.iter().map(|item| (format!("{k}[]"), item.as_str().unwrap_or("").to_owned())).collect::<Vec<_>>()
        }
        Value::Null => vec![(k.clone(), String::new())],
        other => vec![(k.clone(), other.as_str().expect("string value").to_owned())],
    });
    QueryParams::from_pairs(pairs)
}

#[test]
fn rest_api_signatures() {
    let vectors = vectors();
    for case in cases(&vectors, "rest_api_signatures") {
        let id = s(case, "id");
        let params = query_params(&case["query_params"]);
        assert_eq!(string_to_sign(s(case, "method"), s(case, "path"), &params), s(case, "string_to_sign"), "{id}");
        let signature = sign(s(case, "secret"), s(case, "method"), s(case, "path"), &params);
        assert_eq!(signature, s(case, "expected_auth_signature"), "{id}");
        let body = opt(case, "body").unwrap_or("");
        if let Some(md5) = opt(case, "body_md5") {
            assert_eq!(md5_hex(body.as_bytes()), md5, "{id}");
        }

        // The server side: the request as sent verifies at its own timestamp, and not 600 s later.
        let mut signed: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        signed.push(("auth_signature".into(), signature));
        let wire = QueryParams::from_pairs(signed).to_query_string();
        let params = QueryParams::parse(&wire);
        let request =
            RestRequest { method: s(case, "method"), path: s(case, "path"), params: &params, body: body.as_bytes() };
        let now: u64 = params.get("auth_timestamp").and_then(|t| t.parse().ok()).expect("numeric timestamp");
        assert_eq!(verify(&request, s(case, "key"), s(case, "secret"), now), Ok(()), "{id}");
        assert!(verify(&request, s(case, "key"), s(case, "secret"), now + 600).is_err(), "{id}");
        assert!(verify(&request, s(case, "key"), "wrong secret", now).is_err(), "{id}");
    }
}

#[test]
fn rest_string_to_sign_only() {
    let vectors = vectors();
    for case in cases(&vectors, "rest_string_to_sign_only") {
        let params = query_params(&case["query_params_before_auth"]);
        assert_eq!(
            string_to_sign(s(case, "method"), s(case, "path"), &params),
            s(case, "expected_string_to_sign"),
            "{}",
            s(case, "id")
        );
    }
}

#[test]
fn body_md5() {
    let vectors = vectors();
    for case in cases(&vectors, "body_md5") {
        assert_eq!(md5_hex(s(case, "body").as_bytes()), s(case, "expected_body_md5"), "{}", s(case, "id"));
    }
}

#[test]
fn channel_authorization() {
    let vectors = vectors();
    for case in cases(&vectors, "channel_authorization") {
        let id = s(case, "id");
        let (key, secret, socket_id, channel) =
            (s(case, "key"), s(case, "secret"), s(case, "socket_id"), s(case, "channel_name"));
        let channel_data = opt(case, "channel_data");
        let auth = sign_channel(key, secret, socket_id, channel, channel_data);
        assert_eq!(auth, s(case, "expected_auth"), "{id}");
        assert_eq!(verify_channel(key, secret, socket_id, channel, channel_data, Some(&auth)), Ok(()), "{id}");
        assert!(verify_channel(key, secret, "9.9", channel, channel_data, Some(&auth)).is_err(), "{id}");
        if let (Some(master), Some(expected)) =
            (opt(case, "encryption_master_key_base64"), opt(case, "expected_shared_secret"))
        {
            assert_eq!(encrypted_channel_shared_secret(channel, &base64_decode(master)), expected, "{id}");
        }
    }
}

#[test]
fn user_authentication() {
    let vectors = vectors();
    for case in cases(&vectors, "user_authentication") {
        let id = s(case, "id");
        let (key, secret, socket_id, user_data) =
            (s(case, "key"), s(case, "secret"), s(case, "socket_id"), s(case, "user_data"));
        let auth = sign_user(key, secret, socket_id, user_data);
        assert_eq!(auth, s(case, "expected_auth"), "{id}");
        assert_eq!(verify_user(key, secret, socket_id, user_data, Some(&auth)), Ok(()), "{id}");
        assert!(verify_user(key, secret, socket_id, "{}", Some(&auth)).is_err(), "{id}");
    }
}

#[test]
fn encrypted_channel_shared_secret_vectors() {
    let vectors = vectors();
    for case in cases(&vectors, "encrypted_channel_shared_secret") {
        let master = match opt(case, "encryption_master_key_base64") {
            Some(b64) => base64_decode(b64),
            None => s(case, "encryption_master_key_raw_ascii").as_bytes().to_vec(),
        };
        assert_eq!(
            encrypted_channel_shared_secret(s(case, "channel_name"), &master),
            s(case, "expected_shared_secret_base64"),
            "{}",
            s(case, "id")
        );
    }
    for case in cases(&vectors, "encrypted_payload") {
        let master = s(case, "encryption_master_key_raw_ascii").as_bytes();
        assert_eq!(encrypted_channel_shared_secret(s(case, "channel_name"), master), s(case, "shared_secret_base64"));
    }
}

#[test]
fn webhook_signatures() {
    let vectors = vectors();
    for case in cases(&vectors, "webhook_signatures") {
        let (secret, body, expected) = (s(case, "secret"), s(case, "body"), s(case, "expected_x_pusher_signature"));
        assert_eq!(webhook::sign(secret, body.as_bytes()), expected, "{}", s(case, "id"));
        assert!(webhook::verify(secret, body.as_bytes(), expected));
        assert!(!webhook::verify(secret, b"{}", expected));
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).expect("valid base64")
}
