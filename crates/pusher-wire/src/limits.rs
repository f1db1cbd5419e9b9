//! Pusher's documented limits, as named constants.
//!
//! Where Pusher's documentation and the official SDKs disagree, the value is the one that refuses
//! nothing an SDK accepts (for example 200 characters for channel names, where the docs say 164).

/// Longest channel name, prefixes included (Ruby, Node and Python SDKs check 200).
pub const MAX_CHANNEL_NAME_LEN: usize = 200;
/// Longest event name (Node and Python SDKs check 200).
pub const MAX_EVENT_NAME_LEN: usize = 200;
/// Largest `data` of one event, in bytes (REST trigger, batch item and client event).
pub const MAX_EVENT_DATA_BYTES: usize = 10 * 1024;
/// Most channels in one `POST /events`.
pub const MAX_CHANNELS_PER_TRIGGER: usize = 100;
/// Most events in one `POST /batch_events`.
pub const MAX_EVENTS_PER_BATCH: usize = 10;
/// Most distinct users in one presence channel.
pub const MAX_PRESENCE_MEMBERS: usize = 100;
/// Largest presence `user_info`, as JSON text, in bytes.
pub const MAX_PRESENCE_USER_INFO_BYTES: usize = 1024;
/// Longest presence or signed-in user id, in characters.
pub const MAX_USER_ID_LEN: usize = 128;
/// Most channels one connection may be subscribed to. Pusher documents no limit; this one is far
/// above what pages use and keeps one client from filling the server with channels.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 1000;
/// Most user ids in a sign-in watchlist; the rest are dropped with error 4302.
pub const MAX_WATCHLIST_LEN: usize = 100;
/// Client events one connection may send per second (error 4301 beyond).
pub const MAX_CLIENT_EVENTS_PER_SECOND: u32 = 10;
/// REST `auth_timestamp` must be within this many seconds of the server's clock.
pub const REST_TIMESTAMP_WINDOW_SECS: u64 = 600;
/// `activity_timeout` announced in `pusher:connection_established`, in seconds.
pub const ACTIVITY_TIMEOUT_SECS: u64 = 120;
/// How long the server waits for any reply to its ping before closing with 4201, in seconds.
pub const PONG_TIMEOUT_SECS: u64 = 30;
/// How long a cache channel keeps its last event, in seconds.
pub const CACHE_TTL_SECS: u64 = 30 * 60;
/// Above this many subscribers, subscription-count updates are throttled.
pub const SUBSCRIPTION_COUNT_THROTTLE_ABOVE: usize = 100;
/// Minimum interval between subscription-count updates on a throttled channel, in seconds.
pub const SUBSCRIPTION_COUNT_THROTTLE_SECS: u64 = 5;
/// Delay before `channel_vacated` and `member_removed` webhooks, in seconds.
pub const WEBHOOK_REMOVAL_DELAY_SECS: u64 = 3;
/// How long a failing webhook is retried, in seconds.
pub const WEBHOOK_RETRY_WINDOW_SECS: u64 = 5 * 60;
/// The only protocol version pusher-js speaks.
pub const PROTOCOL_VERSION: u32 = 7;
/// Longest WebSocket close reason: a close frame's payload is 125 bytes, two of them the code.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;
