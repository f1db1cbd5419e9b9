//! REST request authentication: find the app, then check the signature, timestamp and `body_md5` with
//! `pusher_wire::rest::auth` at the current time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pusher_wire::error::RestAuthError;
use pusher_wire::rest::auth::{QueryParams, RestRequest, verify};

use super::error::ApiError;
use crate::apps::{App, AppStore};

/// Authenticate a request for app `app_id`, or, when the path carries no app id (the Python SDK's
/// `terminate_connections` path), for the app named by `auth_key`.
pub fn authenticate(
    apps: &AppStore,
    app_id: Option<&str>,
    method: &str,
    path: &str,
    params: &QueryParams,
    body: &[u8],
) -> Result<Arc<App>, ApiError> {
    let app = match app_id {
        Some(id) => apps.by_id(id).ok_or_else(|| unknown_app(id))?,
        None => {
            let key = params.get("auth_key").ok_or(RestAuthError::MissingParameter("auth_key"))?;
            apps.by_key(key).ok_or(RestAuthError::UnknownKey)?
        }
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let check = |path: &str| {
        let request = RestRequest { method, path, params, body };
        verify(&request, &app.config.key, &app.config.secret, now)
    };
    match check(path) {
        Ok(()) => Ok(app.clone()),
        // SDKs sign the path unencoded; a client or proxy may have percent-encoded it on the way.
        Err(error @ RestAuthError::InvalidSignature { .. }) => {
            let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
            if decoded != path && check(&decoded).is_ok() { Ok(app.clone()) } else { Err(error.into()) }
        }
        Err(error) => Err(error.into()),
    }
}

/// The error for an app id no app has.
pub fn unknown_app(id: &str) -> ApiError {
    ApiError::NotFound(format!("unknown app id {:?}", excerpt(id)))
}

fn excerpt(s: &str) -> String {
    s.chars().take(64).collect()
}
