//! [`RawJson`]: a piece of JSON kept exactly as received.

use std::fmt;

use serde_json::value::RawValue;

/// Valid JSON text kept byte for byte, for values the server relays without looking inside
/// (client-event `data`, presence `user_info`). Equality compares the text.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Copy a borrowed raw value.
    pub fn from_raw(raw: &RawValue) -> Self {
        Self(raw.to_owned())
    }

    /// Check that `text` is valid JSON and keep it.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text.to_owned()).map(Self)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// As a borrowed raw value.
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

/// Whether JSON text is an object. serde's derived structs also accept arrays (as tuples), so the
/// parsers check this first.
pub(crate) fn is_object_text(text: &str) -> bool {
    text.trim_start().starts_with('{')
}
