//! Channel names and kinds.
//!
//! A [`ChannelName`] is valid once constructed: only `A-Z a-z 0-9 _ - = @ , . ;`, at most
//! [`MAX_CHANNEL_NAME_LEN`] characters, or the reserved `#server-to-user-{user id}` form. Its
//! [`ChannelKind`] follows from the prefix, most specific prefix first.

use std::fmt;

use crate::error::ChannelNameError;
use crate::limits::MAX_CHANNEL_NAME_LEN;

/// The prefix of the channel that carries server-to-user events for one signed-in user.
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// What a channel is, decided by its name's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Anything without a known prefix. No authorization.
    Public,
    /// `cache-`: public, keeps its last event.
    PublicCache,
    /// `private-`: authorized by the app.
    Private,
    /// `private-cache-`: private, keeps its last event.
    PrivateCache,
    /// `private-encrypted-`: private; the server only ever sees ciphertext.
    PrivateEncrypted,
    /// `private-encrypted-cache-`: encrypted, keeps its last (encrypted) event.
    PrivateEncryptedCache,
    /// `presence-`: authorized, with a member roster.
    Presence,
    /// `presence-cache-`: presence, keeps its last event.
    PresenceCache,
    /// `#server-to-user-{id}`: events for every connection signed in as one user.
    ServerToUser,
}

impl ChannelKind {
    /// The kind of a channel name; the name is not validated here.
    pub fn of(name: &str) -> Self {
        // Longest prefix first: "private-encrypted-cache-" also starts with "private-".
        const PREFIXES: [(&str, ChannelKind); 8] = [
            ("private-encrypted-cache-", ChannelKind::PrivateEncryptedCache),
            ("private-encrypted-", ChannelKind::PrivateEncrypted),
            ("private-cache-", ChannelKind::PrivateCache),
            ("private-", ChannelKind::Private),
            ("presence-cache-", ChannelKind::PresenceCache),
            ("presence-", ChannelKind::Presence),
            ("cache-", ChannelKind::PublicCache),
            (SERVER_TO_USER_PREFIX, ChannelKind::ServerToUser),
        ];
        PREFIXES.iter().find(|(prefix, _)| name.starts_with(prefix)).map_or(ChannelKind::Public, |&(_, kind)| kind)
    }

    /// Whether a subscription needs an `auth` token signed by the app.
    pub fn requires_auth(self) -> bool {
        matches!(
            self,
            Self::Private
                | Self::PrivateCache
                | Self::PrivateEncrypted
                | Self::PrivateEncryptedCache
                | Self::Presence
                | Self::PresenceCache
        )
    }

    /// Whether the channel has a member roster.
    pub fn is_presence(self) -> bool {
        matches!(self, Self::Presence | Self::PresenceCache)
    }

    /// Whether the channel is end-to-end encrypted.
    pub fn is_encrypted(self) -> bool {
        matches!(self, Self::PrivateEncrypted | Self::PrivateEncryptedCache)
    }

    /// Whether the channel keeps its last event for new subscribers.
    pub fn is_cache(self) -> bool {
        matches!(self, Self::PublicCache | Self::PrivateCache | Self::PrivateEncryptedCache | Self::PresenceCache)
    }

    /// Whether subscribers may send `client-*` events: private and presence channels only, and not
    /// encrypted ones (their members could not read them anyway).
    pub fn allows_client_events(self) -> bool {
        matches!(self, Self::Private | Self::PrivateCache | Self::Presence | Self::PresenceCache)
    }
}

/// A valid channel name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(String);

impl ChannelName {
    /// Validate a channel name against the default length limit.
    pub fn parse(name: &str) -> Result<Self, ChannelNameError> {
        Self::parse_with_max_len(name, MAX_CHANNEL_NAME_LEN)
    }

    /// Validate a channel name against a custom length limit (164 is hosted Pusher's documented one).
    pub fn parse_with_max_len(name: &str, max_len: usize) -> Result<Self, ChannelNameError> {
        if name.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        let len = name.chars().count();
        if len > max_len {
            return Err(ChannelNameError::TooLong { len, max: max_len });
        }
        let checked = match name.strip_prefix(SERVER_TO_USER_PREFIX) {
            Some("") => return Err(ChannelNameError::Reserved),
            Some(user_id) => user_id,
            None if name.starts_with('#') => return Err(ChannelNameError::Reserved),
            None => name,
        };
        match checked.chars().find(|&c| !is_name_char(c)) {
            Some(c) => Err(ChannelNameError::InvalidCharacter(c)),
            None => Ok(Self(name.to_owned())),
        }
    }

    /// The server-to-user channel of a user id (which must itself use channel-name characters).
    pub fn server_to_user(user_id: &str) -> Result<Self, ChannelNameError> {
        Self::parse(&format!("{SERVER_TO_USER_PREFIX}{user_id}"))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The channel's kind, from its prefix.
    pub fn kind(&self) -> ChannelKind {
        ChannelKind::of(&self.0)
    }

    /// For `#server-to-user-{id}`, the user id.
    pub fn server_to_user_id(&self) -> Option<&str> {
        self.0.strip_prefix(SERVER_TO_USER_PREFIX)
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Result<ChannelKind, ChannelNameError>) {
        assert_eq!(ChannelName::parse(name).map(|n| n.kind()), expected, "{name:?}");
    }

    #[test]
    fn kinds_follow_the_most_specific_prefix() {
        check("test_chat_channel", Ok(ChannelKind::Public));
        check("cache-x", Ok(ChannelKind::PublicCache));
        check("private-x", Ok(ChannelKind::Private));
        check("private-cache-x", Ok(ChannelKind::PrivateCache));
        check("private-encrypted-x", Ok(ChannelKind::PrivateEncrypted));
        check("private-encrypted-cache-x", Ok(ChannelKind::PrivateEncryptedCache));
        check("presence-x", Ok(ChannelKind::Presence));
        check("presence-cache-x", Ok(ChannelKind::PresenceCache));
        check("#server-to-user-12345", Ok(ChannelKind::ServerToUser));
        check("private-App.Models.User.1", Ok(ChannelKind::Private));
        check("-azAZ9_=@,.;", Ok(ChannelKind::Public));
        // A prefix alone is a valid name of that kind; "privatex" has no prefix.
        check("private-", Ok(ChannelKind::Private));
        check("privatex", Ok(ChannelKind::Public));
    }

    #[test]
    fn invalid_names_are_refused_with_the_reason() {
        check("", Err(ChannelNameError::Empty));
        check("a b", Err(ChannelNameError::InvalidCharacter(' ')));
        check("a:b", Err(ChannelNameError::InvalidCharacter(':')));
        check("a/b", Err(ChannelNameError::InvalidCharacter('/')));
        check("a*", Err(ChannelNameError::InvalidCharacter('*')));
        check("café", Err(ChannelNameError::InvalidCharacter('é')));
        check("#other", Err(ChannelNameError::Reserved));
        check("#server-to-user-", Err(ChannelNameError::Reserved));
        check("#server-to-user-a#b", Err(ChannelNameError::InvalidCharacter('#')));
        check(&"a".repeat(200), Ok(ChannelKind::Public));
        check(&"a".repeat(201), Err(ChannelNameError::TooLong { len: 201, max: 200 }));
    }

    #[test]
    fn strict_length_and_server_to_user_helpers() {
        assert!(ChannelName::parse_with_max_len(&"a".repeat(165), 164).is_err());
        let channel = ChannelName::server_to_user("12345").unwrap();
        assert_eq!(channel.as_str(), "#server-to-user-12345");
        assert_eq!(channel.server_to_user_id(), Some("12345"));
        assert!(ChannelName::server_to_user("bad id").is_err());
    }

    #[test]
    fn client_events_only_on_private_and_presence() {
        let allowed: Vec<_> = [
            "x",
            "cache-x",
            "private-x",
            "private-cache-x",
            "private-encrypted-x",
            "presence-x",
            "presence-cache-x",
            "#server-to-user-1",
        ]
        .iter()
        .filter(|n| ChannelKind::of(n).allows_client_events())
        .copied()
        .collect();
        assert_eq!(allowed, ["private-x", "private-cache-x", "presence-x", "presence-cache-x"]);
    }
}
