//! Socket ids: the `^\d+\.\d+$` identifier of one connection.
//!
//! Every SDK refuses to sign or trigger with any other shape, so the server must only ever hand out
//! ids of this form, and must check the ones REST callers send back.

use std::fmt;

use crate::error::SocketIdError;

/// Longest socket id accepted from a client, so that a REST caller cannot make us keep a huge string.
const MAX_LEN: usize = 41;

/// A connection's socket id, `{number}.{number}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SocketId(String);

impl SocketId {
    /// Build a socket id from two numbers chosen by the caller (random, or a node tag and a counter).
    pub fn new(high: u64, low: u64) -> Self {
        Self(format!("{high}.{low}"))
    }

    /// Check a socket id received from outside.
    pub fn parse(s: &str) -> Result<Self, SocketIdError> {
        let (high, low) = s.split_once('.').ok_or(SocketIdError)?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if s.len() <= MAX_LEN && digits(high) && digits(low) { Ok(Self(s.to_owned())) } else { Err(SocketIdError) }
    }

    /// The two numbers, when both fit in a `u64` (always true for ids built with [`Self::new`]).
    pub fn parts(&self) -> Option<(u64, u64)> {
        let (high, low) = self.0.split_once('.')?;
        Some((high.parse().ok()?, low.parse().ok()?))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, valid: bool) {
        assert_eq!(SocketId::parse(input).is_ok(), valid, "{input:?}");
    }

    #[test]
    fn only_two_numbers_joined_by_a_dot() {
        check("264774.13368624", true);
        check("1.1", true);
        check("0.0", true);
        check("1234", false);
        check("1.2.3", false);
        check(".1", false);
        check("1.", false);
        check("a.b", false);
        check("-1.2", false);
        check(" 1.2", false);
        check("1.2\n", false);
        check("１.２", false);
        check(&format!("{}.1", "9".repeat(40)), false);
    }

    #[test]
    fn built_ids_parse_back() {
        let id = SocketId::new(4_294_967_295, 42);
        assert_eq!(id.as_str(), "4294967295.42");
        assert_eq!(SocketId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.parts(), Some((4_294_967_295, 42)));
        assert_eq!(SocketId::parse("99999999999999999999.1").unwrap().parts(), None);
    }
}
