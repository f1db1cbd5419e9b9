//! The error-code catalogue of protocol 7 and the typed errors of this crate.
//!
//! [`ErrorCode`] holds the codes that travel in `pusher:error` frames and WebSocket close frames; its
//! [`Reconnect`] class is what pusher-js does when a connection is closed with that code. The other
//! enums are the ways input can be wrong, each with a short lowercase message that is safe to show
//! the client that sent it.

use thiserror::Error;

/// A Pusher error code (4000-4302), carried by `pusher:error` and, for most, by the close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 4000: the app only accepts TLS connections.
    TlsRequired,
    /// 4001: no app has this key.
    AppNotFound,
    /// 4003: the app is disabled.
    AppDisabled,
    /// 4004: the app is over its connection quota.
    AppOverQuota,
    /// 4005: the path is not `/app/{key}`.
    PathNotFound,
    /// 4006: the `version` query parameter is malformed.
    InvalidVersion,
    /// 4007: the `protocol` query parameter names a version this server does not speak.
    UnsupportedProtocol,
    /// 4008: the `protocol` query parameter is missing.
    NoProtocol,
    /// 4009: the connection is not authorized (failed sign-in, terminated by the app).
    Unauthorized,
    /// 4100: the server is over capacity, or the client reads too slowly.
    OverCapacity,
    /// 4200: generic "reconnect now" (server shutting down).
    Reconnect,
    /// 4201: no reply to the server's ping.
    PongNotReceived,
    /// 4202: closed after inactivity.
    ClosedAfterInactivity,
    /// 4301: client event refused by the rate limit (never a close code).
    ClientEventRateLimit,
    /// 4302: watchlist longer than allowed (never a close code).
    WatchlistLimit,
}

/// What pusher-js (4.3.1 and later) does when the connection closes with a given code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconnect {
    /// 4000: reconnect at once over TLS.
    WithTls,
    /// 4001-4099: stop for good.
    Never,
    /// 4100-4199: reconnect after at least a second.
    AfterBackoff,
    /// 4200-4299: reconnect at once.
    Immediately,
    /// 4300 and above: only ever sent in `pusher:error`, never as a close code.
    NotAClose,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::TlsRequired => 4000,
            Self::AppNotFound => 4001,
            Self::AppDisabled => 4003,
            Self::AppOverQuota => 4004,
            Self::PathNotFound => 4005,
            Self::InvalidVersion => 4006,
            Self::UnsupportedProtocol => 4007,
            Self::NoProtocol => 4008,
            Self::Unauthorized => 4009,
            Self::OverCapacity => 4100,
            Self::Reconnect => 4200,
            Self::PongNotReceived => 4201,
            Self::ClosedAfterInactivity => 4202,
            Self::ClientEventRateLimit => 4301,
            Self::WatchlistLimit => 4302,
        }
    }

    /// The code for a number, if it is one of the catalogue's.
    pub fn from_code(code: u16) -> Option<Self> {
        ALL.iter().copied().find(|c| c.code() == code)
    }

    /// How pusher-js reacts to a close with this code.
    pub fn reconnect(self) -> Reconnect {
        match self.code() {
            4000 => Reconnect::WithTls,
            4001..=4099 => Reconnect::Never,
            4100..=4199 => Reconnect::AfterBackoff,
            4200..=4299 => Reconnect::Immediately,
            _ => Reconnect::NotAClose,
        }
    }

    /// Whether the code may be used in a WebSocket close frame.
    pub fn is_close_code(self) -> bool {
        self.reconnect() != Reconnect::NotAClose
    }

    /// A short description, fit for a close frame's reason (under 123 bytes).
    pub fn description(self) -> &'static str {
        match self {
            Self::TlsRequired => "App requires TLS; reconnect with wss://",
            Self::AppNotFound => "App key does not exist",
            Self::AppDisabled => "App is disabled",
            Self::AppOverQuota => "App connection quota exceeded",
            Self::PathNotFound => "Unknown path",
            Self::InvalidVersion => "Malformed version string",
            Self::UnsupportedProtocol => "Protocol version not supported",
            Self::NoProtocol => "Protocol version missing",
            Self::Unauthorized => "Connection is unauthorized",
            Self::OverCapacity => "Server at capacity, retry later",
            Self::Reconnect => "Please reconnect",
            Self::PongNotReceived => "Pong reply not received",
            Self::ClosedAfterInactivity => "Closed after inactivity",
            Self::ClientEventRateLimit => "Client event rejected due to rate limit",
            Self::WatchlistLimit => "Watchlist limit exceeded",
        }
    }
}

const ALL: [ErrorCode; 15] = [
    ErrorCode::TlsRequired,
    ErrorCode::AppNotFound,
    ErrorCode::AppDisabled,
    ErrorCode::AppOverQuota,
    ErrorCode::PathNotFound,
    ErrorCode::InvalidVersion,
    ErrorCode::UnsupportedProtocol,
    ErrorCode::NoProtocol,
    ErrorCode::Unauthorized,
    ErrorCode::OverCapacity,
    ErrorCode::Reconnect,
    ErrorCode::PongNotReceived,
    ErrorCode::ClosedAfterInactivity,
    ErrorCode::ClientEventRateLimit,
    ErrorCode::WatchlistLimit,
];

/// Why a string is not a valid channel name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelNameError {
    /// The name is empty.
    #[error("channel name is empty")]
    Empty,
    /// The name is longer than the limit.
    #[error("channel name is {len} characters long, the limit is {max}")]
    TooLong {
        /// Length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside `A-Za-z0-9_-=@,.;`.
    #[error("channel name contains {0:?}; allowed are A-Z a-z 0-9 _ - = @ , . ;")]
    InvalidCharacter(char),
    /// The name starts with `#` but is not `#server-to-user-{id}`.
    #[error("channel names starting with '#' are reserved")]
    Reserved,
}

/// Why a string is not a valid socket id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid socket id: expected two numbers joined by a dot, like 1234.5678")]
pub struct SocketIdError;

/// Why an event name is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventNameError {
    /// The name is empty.
    #[error("event name is empty")]
    Empty,
    /// The name is longer than the limit.
    #[error("event name is {len} characters long, the limit is {max}")]
    TooLong {
        /// Length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a client frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The frame is not valid JSON.
    #[error("frame is not valid JSON")]
    NotJson,
    /// The frame is JSON but not an object.
    #[error("frame is not a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What it should have been, e.g. "a string".
        expected: &'static str,
    },
    /// A `pusher:subscribe` names an invalid channel. Kept apart from [`Self::InvalidChannel`]
    /// because the refusal is also reported on the channel itself (`pusher:subscription_error`).
    #[error("invalid channel {:?}: {source}", excerpt(.channel, EXCERPT_CHARS))]
    InvalidSubscription {
        /// The name as received, in full (the WebSocket message limit bounds it), so a client can
        /// match the refusal to its channel object.
        channel: String,
        /// Why it is invalid.
        source: ChannelNameError,
    },
    /// Another frame names an invalid channel.
    #[error("invalid channel {:?}: {source}", excerpt(.channel, EXCERPT_CHARS))]
    InvalidChannel {
        /// The name as received.
        channel: String,
        /// Why it is invalid.
        source: ChannelNameError,
    },
    /// The event name is empty or too long.
    #[error(transparent)]
    InvalidEventName(#[from] EventNameError),
}

/// Why a channel authorization or user authentication token is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No token was given where one is required.
    #[error("missing auth token")]
    Missing,
    /// The token's key part is not this app's key.
    #[error("invalid key in auth token")]
    WrongKey,
    /// The signature does not match.
    #[error("invalid signature: expected HMAC SHA256 hex digest of {string_to_sign}")]
    InvalidSignature {
        /// What the token should have signed, for the client's debugging; never the secret.
        string_to_sign: String,
    },
}

/// Why presence `channel_data` is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PresenceError {
    /// A presence subscription came without `channel_data` and the connection is not signed in.
    #[error("presence channels need channel_data or a signed-in user")]
    MissingChannelData,
    /// `channel_data` is not a JSON object.
    #[error("channel_data is not a JSON object")]
    NotAnObject,
    /// `user_id` is absent.
    #[error("channel_data has no user_id")]
    MissingUserId,
    /// `user_id` is neither a string nor a number, or is empty.
    #[error("user_id must be a non-empty string or a number")]
    InvalidUserId,
    /// `user_id` is too long.
    #[error("user_id is {len} characters long, the limit is {max}")]
    UserIdTooLong {
        /// Length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `user_info` is too large.
    #[error("user_info is {len} bytes, the limit is {max}")]
    UserInfoTooLarge {
        /// Size of its JSON text in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why `pusher:signin` user data is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserDataError {
    /// `user_data` is not a JSON object.
    #[error("user_data is not a JSON object")]
    NotAnObject,
    /// `id` is missing, not a string or empty.
    #[error("user_data must have a non-empty string id")]
    InvalidId,
    /// `id` is too long.
    #[error("user id is {len} characters long, the limit is {max}")]
    IdTooLong {
        /// Length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `watchlist` is not an array of strings.
    #[error("watchlist must be an array of user id strings")]
    InvalidWatchlist,
}

/// Why a REST request's authentication is refused. Each maps to an HTTP status in [`Self::status`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestAuthError {
    /// A required authentication parameter is absent.
    #[error("missing parameter: {0}")]
    MissingParameter(&'static str),
    /// `auth_key` names no key of this app.
    #[error("unknown auth_key")]
    UnknownKey,
    /// `auth_version` is not `1.0`.
    #[error("auth_version not supported: only 1.0 is")]
    UnsupportedVersion,
    /// `auth_timestamp` is not a number.
    #[error("auth_timestamp is not a unix time in seconds")]
    InvalidTimestamp,
    /// `auth_timestamp` is too far from the server's clock.
    #[error("timestamp expired: given timestamp {given} not within {window}s of server time {now}")]
    TimestampExpired {
        /// The request's timestamp.
        given: u64,
        /// The server's time.
        now: u64,
        /// The allowed distance.
        window: u64,
    },
    /// The body is not empty but `body_md5` is absent.
    #[error("missing parameter: body_md5 (required with a request body)")]
    MissingBodyMd5,
    /// `body_md5` does not match the body received.
    #[error("body_md5 does not match the MD5 of the request body")]
    BodyMd5Mismatch,
    /// `auth_signature` does not match.
    #[error(
        "invalid signature: you should have sent HmacSHA256Hex({string_to_sign:?}, your_secret_key), but you sent {given:?}"
    )]
    InvalidSignature {
        /// The string the server signed.
        string_to_sign: String,
        /// The signature received.
        given: String,
    },
}

impl RestAuthError {
    /// The HTTP status Pusher answers with. Every failure is 401: unknown keys too, since a key that
    /// exists for another app must not be distinguishable from one that exists nowhere.
    pub fn status(&self) -> u16 {
        401
    }
}

/// Why a trigger or batch request body is refused. Each maps to an HTTP status in [`Self::status`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TriggerError {
    /// The body is not the expected JSON.
    #[error("malformed request body: {0}")]
    Malformed(String),
    /// Neither `channel` nor `channels` is present, or the list is empty.
    #[error("missing channels: give `channels` (an array) or `channel`")]
    NoChannels,
    /// Both `channel` and `channels` are present.
    #[error("give either `channel` or `channels`, not both")]
    ChannelAndChannels,
    /// Too many channels in one trigger.
    #[error("{count} channels given, the limit is {max}")]
    TooManyChannels {
        /// Channels in the request.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A channel name is invalid.
    #[error("invalid channel {channel:?}: {source}")]
    InvalidChannel {
        /// The name as received (truncated when very long).
        channel: String,
        /// Why it is invalid.
        source: ChannelNameError,
    },
    /// The event name is invalid.
    #[error(transparent)]
    InvalidEventName(#[from] EventNameError),
    /// `data` is larger than allowed.
    #[error("event data is {size} bytes, the limit is {max}")]
    DataTooLarge {
        /// Size of `data` in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// `socket_id` is malformed.
    #[error(transparent)]
    InvalidSocketId(#[from] SocketIdError),
    /// An encrypted channel was listed with other channels.
    #[error("encrypted channels cannot be triggered together with other channels")]
    EncryptedMultiChannel,
    /// Too many events in one batch.
    #[error("{count} events in the batch, the limit is {max}")]
    BatchTooLarge {
        /// Events in the batch.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `info` names an attribute that does not exist.
    #[error("unknown info attribute {0:?}: use user_count or subscription_count")]
    UnknownInfo(String),
}

impl TriggerError {
    /// The HTTP status for this error: 413 for oversized data, 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            Self::DataTooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// Cut a client-supplied string to at most `max_chars` characters (plus an ellipsis) for an error
/// message, so that a huge input is never echoed whole.
pub fn excerpt(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// The length error messages quote client input at.
pub(crate) const EXCERPT_CHARS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_classes_follow_pusher_js() {
        for code in ALL {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
            assert!(code.description().len() <= crate::limits::MAX_CLOSE_REASON_BYTES);
        }
        let check = |code: ErrorCode, class: Reconnect| assert_eq!(code.reconnect(), class, "{code:?}");
        check(ErrorCode::TlsRequired, Reconnect::WithTls);
        check(ErrorCode::AppNotFound, Reconnect::Never);
        check(ErrorCode::Unauthorized, Reconnect::Never);
        check(ErrorCode::OverCapacity, Reconnect::AfterBackoff);
        check(ErrorCode::Reconnect, Reconnect::Immediately);
        check(ErrorCode::PongNotReceived, Reconnect::Immediately);
        check(ErrorCode::ClientEventRateLimit, Reconnect::NotAClose);
        check(ErrorCode::WatchlistLimit, Reconnect::NotAClose);
        assert!(!ErrorCode::WatchlistLimit.is_close_code());
        assert_eq!(ErrorCode::from_code(4002), None);
    }

    #[test]
    fn excerpt_cuts_long_strings_on_char_boundaries() {
        assert_eq!(excerpt("short", EXCERPT_CHARS), "short");
        let long = "é".repeat(100);
        assert_eq!(excerpt(&long, EXCERPT_CHARS).chars().count(), 65);
    }
}
