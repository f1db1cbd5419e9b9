//! [`ApiError`]: every way a REST request can fail, mapped to its status and JSON body in one place.
//! Errors caused by the caller are not logged above debug level; nothing here is ever a 500.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use pusher_wire::error::{RestAuthError, TriggerError};

/// A failed REST request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No such endpoint, app or resource.
    #[error("{0}")]
    NotFound(String),
    /// The endpoint exists but not with this method.
    #[error("method not allowed: use {0}")]
    MethodNotAllowed(&'static str),
    /// A WebSocket path was requested without a WebSocket upgrade.
    #[error("this is a WebSocket endpoint: connect with a WebSocket client (pusher-js)")]
    UpgradeRequired,
    /// Request authentication failed.
    #[error(transparent)]
    Auth(#[from] RestAuthError),
    /// The trigger or batch body is invalid.
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    /// The body is larger than any valid request.
    #[error("request body is larger than {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// The body could not be read.
    #[error("could not read the request body")]
    BodyRead,
    /// The request is well-formed but asks for something that does not apply.
    #[error("{0}")]
    BadRequest(String),
    /// A console request without a valid session.
    #[error(transparent)]
    Console(#[from] crate::console::auth::SessionError),
    /// As many debug consoles watch as may.
    #[error("{watching} console streams are open {scope}, the most allowed; close one and retry")]
    TooManyViewers {
        /// "for this app" or "on this node".
        scope: &'static str,
        /// How many are open.
        watching: usize,
    },
    /// The app's limit of requests per second is reached.
    #[error("{what} rate limit reached: at most {limit} per second for this app")]
    TooManyRequests {
        /// REST events or reads.
        what: &'static str,
        /// The limit.
        limit: u32,
    },
}

impl ApiError {
    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Self::Auth(error) => StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED),
            Self::Trigger(error) => StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooManyRequests { .. } | Self::TooManyViewers { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Console(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// The response: the status and `{"error": "…"}`.
    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        tracing::debug!(status = self.status().as_u16(), error = %self, "rest request refused");
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        super::json(self.status(), body)
    }
}
