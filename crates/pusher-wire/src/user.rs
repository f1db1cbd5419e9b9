//! User sign-in: the `user_data` a `pusher:signin` carries.
//!
//! `user_data` is the app's JSON text, signed as received. It must be an object whose `id` is a
//! non-empty string (every SDK and pusher-js enforce this); `user_info` is shared with presence
//! channels the user joins without `channel_data`; `watchlist` lists user ids whose online status the
//! user wants to follow, of which only the first [`MAX_WATCHLIST_LEN`] are kept.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::RawJson;
use crate::error::UserDataError;
use crate::limits::{MAX_USER_ID_LEN, MAX_WATCHLIST_LEN};
use crate::raw_json::is_object_text;

/// A signed-in user, as described by their `user_data`.
#[derive(Clone, Debug, PartialEq)]
pub struct UserData {
    /// The user id.
    pub id: String,
    /// `user_info` exactly as received, if any.
    pub user_info: Option<RawJson>,
    /// The watched user ids, at most [`MAX_WATCHLIST_LEN`].
    pub watchlist: Vec<String>,
    /// Whether ids past the limit were dropped (the client gets error 4302).
    pub watchlist_truncated: bool,
}

#[derive(Deserialize)]
struct RawUserData<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(borrow, default)]
    user_info: Option<&'a RawValue>,
    #[serde(default)]
    watchlist: Option<serde_json::Value>,
}

impl UserData {
    /// Parse and check `user_data`.
    pub fn parse(user_data: &str) -> Result<Self, UserDataError> {
        if !is_object_text(user_data) {
            return Err(UserDataError::NotAnObject);
        }
        let raw: RawUserData<'_> = serde_json::from_str(user_data).map_err(|_| UserDataError::NotAnObject)?;
        let id = match raw.id {
            Some(serde_json::Value::String(id)) if !id.is_empty() => id,
            _ => return Err(UserDataError::InvalidId),
        };
        let len = id.chars().count();
        if len > MAX_USER_ID_LEN {
            return Err(UserDataError::IdTooLong { len, max: MAX_USER_ID_LEN });
        }
        let mut watchlist = match raw.watchlist {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(ids)) => ids
                .into_iter()
                .map(|id| match id {
                    serde_json::Value::String(id) => Ok(id),
                    _ => Err(UserDataError::InvalidWatchlist),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(UserDataError::InvalidWatchlist),
        };
        let watchlist_truncated = watchlist.len() > MAX_WATCHLIST_LEN;
        watchlist.truncate(MAX_WATCHLIST_LEN);
        let user_info = raw.user_info.filter(|info| info.get() != "null").map(RawJson::from_raw);
        Ok(Self { id, user_info, watchlist, watchlist_truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_id_info_and_watchlist() {
        let user = UserData::parse(r#"{"id":"12345","user_info":{"name":"Ann"},"watchlist":["2","3"]}"#).unwrap();
        assert_eq!(user.id, "12345");
        assert_eq!(user.user_info.unwrap().get(), r#"{"name":"Ann"}"#);
        assert_eq!(user.watchlist, ["2", "3"]);
        assert!(!user.watchlist_truncated);
    }

    #[test]
    fn refuses_what_pusher_js_would_drop() {
        let check = |data: &str, err: UserDataError| assert_eq!(UserData::parse(data), Err(err), "{data}");
        check("nope", UserDataError::NotAnObject);
        check("[]", UserDataError::NotAnObject);
        check("{}", UserDataError::InvalidId);
        check(r#"{"id":12345}"#, UserDataError::InvalidId);
        check(r#"{"id":""}"#, UserDataError::InvalidId);
        check(r#"{"id":"1","watchlist":"2"}"#, UserDataError::InvalidWatchlist);
        check(r#"{"id":"1","watchlist":[2]}"#, UserDataError::InvalidWatchlist);
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(129));
        check(&long, UserDataError::IdTooLong { len: 129, max: 128 });
    }

    #[test]
    fn long_watchlists_keep_the_first_hundred() {
        let ids: Vec<String> = (0..150).map(|i| format!("\"{i}\"")).collect();
        let user = UserData::parse(&format!(r#"{{"id":"1","watchlist":[{}]}}"#, ids.join(","))).unwrap();
        assert_eq!(user.watchlist.len(), 100);
        assert_eq!(user.watchlist[99], "99");
        assert!(user.watchlist_truncated);
    }
}
