//! Bad input never panics: valid frames, bodies and queries mutated at random (a fixed seed, so a
//! failure reproduces) go through every parser of the crate. Passing means no panic, whatever the
//! result.

use pusher_wire::ClientFrame;
use pusher_wire::presence::PresenceMember;
use pusher_wire::rest::auth::{QueryParams, verify_body, verify_query};
use pusher_wire::rest::types::{BatchEvent, Trigger, TriggerLimits};
use pusher_wire::user::UserData;

/// xorshift64*: deterministic and dependency-free.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    r#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":\"1\",\"user_info\":{\"name\":\"é\"}}"}}"#,
    r#"{"event":"pusher:subscribe","data":"{\"channel\":\"private-x\",\"auth\":\"k:s\"}"}"#,
    r#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\",\"watchlist\":[\"2\"]}"}}"#,
    r#"{"event":"client-typing","channel":"private-chat","data":{"a":[1,2,{"b":null}]}}"#,
    r##"{"event":"pusher:unsubscribe","data":{"channel":"#server-to-user-1"}}"##,
    r#"{"name":"e","channels":["a","b"],"data":"{\"x\":1}","socket_id":"1.2","info":"user_count"}"#,
    r#"{"batch":[{"channel":"a","name":"e","data":"d","socket_id":"1.1"}]}"#,
    "auth_key=k&auth_timestamp=1&auth_version=1.0&body_md5=d41d8cd98f00b204e9800998ecf8427e&auth_signature=ab",
];

/// Tokens that make interesting mutations: JSON syntax, escapes, multi-byte and huge numbers.
const TOKENS: &[&str] = &[
    "{", "}", "[", "]", "\"", "\\", ":", ",", "null", "\\u0000", "\\ud800", "é", "😀", "%", "%ff", "+", "&", "=",
    "1e999", "-0", "\u{0}",
];

fn mutate(seed: &str, random: &mut Random) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for _ in 0..=random.below(4) {
        let at = random.below(text.len() + 1);
        match random.below(4) {
            0 if !text.is_empty() && at < text.len() => {
                text.remove(at);
            }
            1 => text.splice(at..at, TOKENS[random.below(TOKENS.len())].chars()).for_each(drop),
            2 if at < text.len() => {
                let end = (at + random.below(8)).min(text.len());
                text.drain(at..end);
            }
            _ => {
                let from = random.below(text.len().max(1));
                if let Some(c) = text.get(from).copied() {
                    text.insert(at, c);
                }
            }
        }
    }
    text.into_iter().collect()
}

#[test]
fn mutated_input_never_panics() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let limits = TriggerLimits::default();
    for round in 0..20_000 {
        let seed = SEEDS[round % SEEDS.len()];
        let input = mutate(seed, &mut random);
        let _ = ClientFrame::parse(&input);
        let _ = PresenceMember::parse(&input);
        let _ = UserData::parse(&input);
        let _ = Trigger::parse(input.as_bytes(), &limits);
        let _ = BatchEvent::parse_batch(input.as_bytes(), &limits);
        let params = QueryParams::parse(&input);
        let _ = verify_query("POST", &input, &params, "k", "s", 1);
        let _ = verify_body(&params, input.as_bytes());
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut random = Random(42);
    for _ in 0..5_000 {
        let len = random.below(300);
        let bytes: Vec<u8> = (0..len).map(|_| random.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = ClientFrame::parse(&text);
        let _ = Trigger::parse(&bytes, &TriggerLimits::default());
        let _ = BatchEvent::parse_batch(&bytes, &TriggerLimits::default());
        let _ = QueryParams::parse(&text);
    }
}

#[test]
fn deep_nesting_is_not_a_stack_overflow() {
    // Client-event data is kept raw and skipped without recursion; anything parsed into values
    // stops at serde_json's depth limit. Either way: an answer, never a crash.
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let deep_event = format!(r#"{{"event":"client-x","channel":"private-a","data":{}}}"#, nested(100_000));
    let _ = ClientFrame::parse(&deep_event);
    let deep_subscribe =
        format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"a","auth":{}}}}}"#, nested(100_000));
    assert!(ClientFrame::parse(&deep_subscribe).is_err());
    let deep_body = format!(r#"{{"name":"e","channel":"a","data":"d","x":{}}}"#, nested(100_000));
    let _ = Trigger::parse(deep_body.as_bytes(), &TriggerLimits::default());
    assert!(PresenceMember::parse(&format!(r#"{{"user_id":{}}}"#, nested(100_000))).is_err());
}
