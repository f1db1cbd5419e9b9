//! The Pusher Channels protocol 7, as pure data.
//!
//! This crate is deterministic and does no I/O: no sockets, no clock, no randomness, no async runtime.
//! Everything that depends on the outside world is passed in by the caller: the current time for the
//! REST timestamp window, random numbers for socket ids. That keeps every signature and every frame
//! exactly testable against published vectors.
//!
//! Map of the crate:
//! - [`channel`]: [`ChannelName`] (validated) and [`ChannelKind`] (public, private, encrypted, presence,
//!   cache variants, server-to-user).
//! - [`socket_id`]: [`SocketId`], the `^\d+\.\d+$` connection identifier.
//! - [`event`]: event-name rules (`client-` prefix, length).
//! - [`frame`]: client frames parsed into [`ClientFrame`], one encoder per server frame.
//! - [`presence`]: presence `channel_data` and the member snapshot sent on subscription.
//! - [`user`]: `pusher:signin` user data (id, info, watchlist).
//! - [`sign`]: HMAC-SHA256 hex, MD5 hex, constant-time comparison.
//! - [`auth`]: channel authorization and user authentication tokens, encrypted-channel shared secrets.
//! - [`rest`]: REST request signing and verification, trigger and batch bodies.
//! - [`webhook`]: webhook payloads and their signature.
//! - [`error`]: the close/error code catalogue ([`ErrorCode`]) and the typed errors of this crate.
//! - [`limits`]: Pusher's limits as named constants.
//! - [`RawJson`]: JSON kept exactly as received, for values relayed without being looked at.

pub mod auth;
pub mod channel;
pub mod error;
pub mod event;
pub mod frame;
pub mod limits;
pub mod presence;
mod raw_json;
pub mod rest;
pub mod sign;
pub mod socket_id;
pub mod user;
pub mod webhook;

pub use channel::{ChannelKind, ChannelName};
pub use error::{ErrorCode, Reconnect};
pub use frame::client::ClientFrame;
pub use raw_json::RawJson;
pub use socket_id::SocketId;
