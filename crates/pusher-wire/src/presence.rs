//! Presence channels: the member identity a subscription carries in `channel_data`, and its limits.
//!
//! `user_id` may be a string or a number (Laravel sends integers); it is normalized to a string, a
//! number becoming its JSON text, because pusher-js keys members by the string form anyway.
//! `user_info` is kept as the raw JSON text received, so it is relayed byte for byte.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::RawJson;
use crate::error::PresenceError;
use crate::limits::{MAX_PRESENCE_USER_INFO_BYTES, MAX_USER_ID_LEN};
use crate::raw_json::is_object_text;

/// One presence member: who a subscription says it is.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceMember {
    /// The user id, as a string.
    pub user_id: String,
    /// The `user_info` JSON exactly as received, if any (and not `null`).
    pub user_info: Option<RawJson>,
}

#[derive(Deserialize)]
struct ChannelData<'a> {
    #[serde(borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user_info: Option<&'a RawValue>,
}

impl PresenceMember {
    /// Parse a presence subscription's `channel_data` and check the member limits.
    pub fn parse(channel_data: &str) -> Result<Self, PresenceError> {
        if !is_object_text(channel_data) {
            return Err(PresenceError::NotAnObject);
        }
        let data: ChannelData<'_> = serde_json::from_str(channel_data).map_err(|_| PresenceError::NotAnObject)?;
        let user_id = data.user_id.ok_or(PresenceError::MissingUserId)?;
        Self::new(user_id_text(user_id)?, data.user_info)
    }

    /// A member from a user id and optional info (e.g. from a signed-in user), checking the limits.
    pub fn new(user_id: String, user_info: Option<&RawValue>) -> Result<Self, PresenceError> {
        let len = user_id.chars().count();
        if len == 0 {
            return Err(PresenceError::InvalidUserId);
        }
        if len > MAX_USER_ID_LEN {
            return Err(PresenceError::UserIdTooLong { len, max: MAX_USER_ID_LEN });
        }
        let user_info = user_info.filter(|info| info.get() != "null");
        if let Some(info) = user_info {
            let len = info.get().len();
            if len > MAX_PRESENCE_USER_INFO_BYTES {
                return Err(PresenceError::UserInfoTooLarge { len, max: MAX_PRESENCE_USER_INFO_BYTES });
            }
        }
        Ok(Self { user_id, user_info: user_info.map(RawJson::from_raw) })
    }

    /// The `user_info` JSON text, `null` when there is none.
    pub fn user_info_json(&self) -> &str {
        self.user_info.as_ref().map_or("null", RawJson::get)
    }
}

fn user_id_text(raw: &RawValue) -> Result<String, PresenceError> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).map_err(|_| PresenceError::InvalidUserId)
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err(PresenceError::InvalidUserId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(channel_data: &str, expected: Result<(&str, &str), PresenceError>) {
        let got = PresenceMember::parse(channel_data);
        let got = got.as_ref().map(|m| (m.user_id.as_str(), m.user_info_json()));
        assert_eq!(got, expected.as_ref().map(|&(id, info)| (id, info)), "{channel_data}");
    }

    #[test]
    fn user_ids_become_strings_and_info_stays_raw() {
        check(r#"{"user_id":"fred","user_info":{"key":"value"}}"#, Ok(("fred", r#"{"key":"value"}"#)));
        check(r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#, Ok(("10", r#"{"name":"Mr. Channels"}"#)));
        check(r#"{"user_id": "123"}"#, Ok(("123", "null")));
        check(r#"{"user_id":"1","user_info":null}"#, Ok(("1", "null")));
        check(r#"{"user_id":"1","user_info":{"b":1, "a":2}}"#, Ok(("1", r#"{"b":1, "a":2}"#)));
        check(r#"{"user_id":"\u00e9"}"#, Ok(("é", "null")));
    }

    #[test]
    fn bad_channel_data_is_refused() {
        check("not json", Err(PresenceError::NotAnObject));
        check(r#""a string""#, Err(PresenceError::NotAnObject));
        check(r#"{"user_info":{}}"#, Err(PresenceError::MissingUserId));
        check(r#"{"user_id":null}"#, Err(PresenceError::MissingUserId));
        check(r#"{"user_id":true}"#, Err(PresenceError::InvalidUserId));
        check(r#"{"user_id":{"a":1}}"#, Err(PresenceError::InvalidUserId));
        check(r#"{"user_id":""}"#, Err(PresenceError::InvalidUserId));
    }

    #[test]
    fn limits() {
        let long_id = format!(r#"{{"user_id":"{}"}}"#, "u".repeat(129));
        check(&long_id, Err(PresenceError::UserIdTooLong { len: 129, max: 128 }));
        let ok_id = format!(r#"{{"user_id":"{}"}}"#, "u".repeat(128));
        assert!(PresenceMember::parse(&ok_id).is_ok());
        let big_info = format!(r#"{{"user_id":"1","user_info":"{}"}}"#, "i".repeat(1023));
        check(&big_info, Err(PresenceError::UserInfoTooLarge { len: 1025, max: 1024 }));
    }
}
