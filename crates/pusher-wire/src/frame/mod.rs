//! Protocol 7 frames: one JSON object per WebSocket text message,
//! `{"event": string, "channel"?: string, "data"?: any, "user_id"?: string}`.
//!
//! The double-encoding rule: the server sends `data` as a JSON-encoded *string* for
//! `connection_established`, `pusher_internal:*` frames and channel events (whose `data` is the
//! REST caller's string, relayed byte for byte), and as an *object* for `pusher:error`,
//! `pusher:subscription_error` and `pusher:signin_success`. Clients send `data` as an object, and
//! some send the object JSON-encoded in a string; both are accepted.

pub mod client;
pub mod server;

/// Append `s` to `out` as a JSON string literal, quotes included.
///
/// Hand-written because every server frame is assembled from a few fixed parts and one or two
/// strings; going through `serde_json` would allocate a string per part.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{byte:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_round_trip_through_serde() {
        for s in ["", "plain", "quote\"back\\slash", "nl\ncr\rtab\t", "\u{0}\u{1f}\u{8}\u{c}", "é€😀", "</script>"]
        {
            let mut out = String::new();
            push_json_string(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }
}
