//! `pusher:signin`: user authentication.
//!
//! The token signs `{socket_id}::user::{user_data}` with `user_data` as received. On success the
//! connection is registered as that user (server-to-user events, `terminate_connections`,
//! watchlists), `pusher:signin_success` echoes `user_data`, and the watched users' current status
//! follows. A failure is a `pusher:error` with 4009; the connection stays open, because closing with
//! 4009 would stop pusher-js from ever reconnecting.

use pusher_wire::frame::client::Signin;
use pusher_wire::frame::server;
use pusher_wire::user::UserData;
use pusher_wire::{ErrorCode, RawJson, auth};

use super::outbox::Frame;
use super::session::Session;

/// The user a connection is signed in as.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    /// The user id.
    pub(crate) id: String,
    /// `user_info`, used for presence channels joined without `channel_data`.
    pub(crate) user_info: Option<RawJson>,
    /// Watched user ids.
    pub(crate) watchlist: Vec<String>,
}

/// Handle `pusher:signin`; `Err` holds the refusal sent (4009), for the debug console.
pub(crate) fn signin(session: &mut Session, request: Signin, replies: &mut Vec<Frame>) -> Result<(), String> {
    let config = session.app.config();
    let socket_id = session.socket_id.as_str();
    let mut refuse = |message: String| {
        replies.push(server::error(Some(ErrorCode::Unauthorized), &message).into());
        Err(message)
    };
    if let Err(error) =
        auth::verify_user(&config.key, &config.secret, socket_id, &request.user_data, Some(&request.auth))
    {
        return refuse(format!("sign-in refused: {error}"));
    }
    let user = match UserData::parse(&request.user_data) {
        Ok(user) => user,
        Err(error) => return refuse(format!("sign-in refused: {error}")),
    };
    let users = &session.app.hub.users;
    let status = match &session.user {
        Some(current) if current.id != user.id => {
            return refuse(format!("sign-in refused: this connection is already signed in as {}", current.id));
        }
        // Signing in again as the same user replaces the watchlist; the user never goes offline.
        Some(current) => users.rewatch(&session.outbox, &current.watchlist, &user.watchlist),
        None => users.sign_in(&user.id, &session.outbox, &user.watchlist),
    };
    replies.push(server::signin_success(&request.user_data).into());
    if user.watchlist_truncated {
        let message = format!("Watchlist limit exceeded: only the first {} user ids are watched", user.watchlist.len());
        replies.push(server::error(Some(ErrorCode::WatchlistLimit), &message).into());
    }
    if !status.online.is_empty() || !status.offline.is_empty() {
        let online: Vec<&str> = status.online.iter().map(String::as_str).collect();
        let offline: Vec<&str> = status.offline.iter().map(String::as_str).collect();
        replies.push(server::watchlist_events(&online, &offline).into());
    }
    session.user = Some(SignedIn { id: user.id, user_info: user.user_info, watchlist: user.watchlist });
    Ok(())
}
