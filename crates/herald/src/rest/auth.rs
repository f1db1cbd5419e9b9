//! REST request authentication: find the app and check the query (key, timestamp, signature) at the
//! current time before the body is read, then the body against the signed `body_md5`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pusher_wire::error::{RestAuthError, excerpt};
use pusher_wire::rest::auth::{QueryParams, verify_body, verify_query};

use super::error::ApiError;
use crate::apps::{App, AppStore};

/// Authenticate a request's query for app `app_id`, or, when the path carries no app id (the Python
/// SDK's `terminate_connections` path), for the app named by `auth_key`. Nothing is read from the
/// body yet, so forged requests cost no body buffering.
pub(crate) fn authenticate(
    apps: &AppStore,
    app_id: Option<&str>,
    method: &str,
    path: &str,
    params: &QueryParams,
) -> Result<Arc<App>, ApiError> {
    let app = match app_id {
        Some(id) => apps.by_id(id).ok_or_else(|| unknown_app(id))?,
        None => {
            let key = params.get("auth_key").ok_or(RestAuthError::MissingParameter("auth_key"))?;
            apps.by_key(key).ok_or(RestAuthError::UnknownKey)?
        }
    };
    let config = app.config();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let check = |path: &str| verify_query(method, path, params, &config.key, &config.secret, now);
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

/// Check the body against the `body_md5` the authenticated query signed.
pub(crate) fn check_body(params: &QueryParams, body: &[u8]) -> Result<(), ApiError> {
    verify_body(params, body).map_err(ApiError::from)
}

/// The error for an app id no app has.
pub(crate) fn unknown_app(id: &str) -> ApiError {
    ApiError::NotFound(format!("unknown app id {:?}", excerpt(id, 64)))
}
