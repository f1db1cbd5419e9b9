//! Event-name rules.
//!
//! Pusher's REST documentation says alphanumeric, `-` and `_`, but Laravel sends names such as
//! `App\Events\OrderShipped`, so only emptiness and length are enforced.

use crate::error::EventNameError;
use crate::limits::MAX_EVENT_NAME_LEN;

/// The prefix every event sent by a client must carry.
pub const CLIENT_EVENT_PREFIX: &str = "client-";

/// Check an event name: non-empty, at most [`MAX_EVENT_NAME_LEN`] characters.
pub fn validate_event_name(name: &str) -> Result<(), EventNameError> {
    if name.is_empty() {
        return Err(EventNameError::Empty);
    }
    let len = name.chars().count();
    if len > MAX_EVENT_NAME_LEN {
        return Err(EventNameError::TooLong { len, max: MAX_EVENT_NAME_LEN });
    }
    Ok(())
}

/// Whether an event name is a client event (`client-*`).
pub fn is_client_event(name: &str) -> bool {
    name.starts_with(CLIENT_EVENT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_for_length_only() {
        assert_eq!(validate_event_name("new_message"), Ok(()));
        assert_eq!(validate_event_name("App\\Events\\OrderShipped"), Ok(()));
        assert_eq!(validate_event_name(".custom"), Ok(()));
        assert_eq!(validate_event_name(""), Err(EventNameError::Empty));
        assert_eq!(validate_event_name(&"é".repeat(200)), Ok(()));
        assert_eq!(validate_event_name(&"e".repeat(201)), Err(EventNameError::TooLong { len: 201, max: 200 }));
    }

    #[test]
    fn client_events_carry_the_prefix() {
        assert!(is_client_event("client-typing"));
        assert!(!is_client_event("typing"));
        assert!(!is_client_event("pusher:ping"));
    }
}
